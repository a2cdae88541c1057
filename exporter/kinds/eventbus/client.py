"""The health endpoint's HTTP client: bounded connections, the GET, and the reasons.

Every health request opens a new connection (none is kept across runs), which
charges the run's response budget; the body is read up to ``max_response_bytes``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp
import redis.exceptions as rexc
from aiokafka import errors as kerr

from ...budget import BoundedProtocol, ReadBudget
from ...probe import ProbeError, Reason
from ..kafka import client as kafka_client
from ..redis import client as redis_client
from .config import EventBusTarget


class BoundedConnector(aiohttp.TCPConnector):
    """A TCPConnector whose connections charge the current run's budget.

    aiohttp has no public hook for the protocol of a connection: this overrides
    the one method that creates it (``_wrap_create_connection``, aiohttp 3.14),
    wrapping aiohttp's protocol in ``BoundedProtocol``.
    The fault tests fail if a new aiohttp stops calling it.
    """

    def __init__(self, budget: Callable[[], ReadBudget], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._budget = budget

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        factory, *rest = args
        made: list[asyncio.BaseProtocol] = []

        def bounded() -> BoundedProtocol:
            made.append(factory())
            return BoundedProtocol(made[-1], self._budget())

        transport, _ = await super()._wrap_create_connection(bounded, *rest, **kwargs)
        return transport, made[-1]


def new_session(
    budget: Callable[[], ReadBudget], ssl_context: ssl.SSLContext | None
) -> aiohttp.ClientSession:
    """A session whose connections are new for every request and charge ``budget()``."""
    connector = BoundedConnector(
        budget, limit=2, ssl=ssl_context if ssl_context else True, force_close=True
    )
    return aiohttp.ClientSession(connector=connector, raise_for_status=False)


async def fetch(target: EventBusTarget, session: aiohttp.ClientSession) -> tuple[int, bytes]:
    """GET the health URL: (status, body), reading at most ``max_response_bytes``."""
    headers = {"Accept": "application/json", "User-Agent": "tradeops-exporter"}
    token = target.token_value()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limit = target.max_response_bytes
    sni = target.tls.server_name if target.tls is not None else None
    get = session.get(target.url, headers=headers, allow_redirects=False, server_hostname=sni)
    async with get as resp:
        if resp.status in (401, 403):
            raise ProbeError("auth", f"health endpoint answered HTTP {resp.status}")
        if not (200 <= resp.status < 300 or resp.status == 503):
            raise ProbeError("protocol", f"health endpoint answered HTTP {resp.status}")
        if resp.content_length is not None and resp.content_length > limit:
            raise ProbeError("protocol", f"health response larger than {limit} bytes")
        body = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            body += chunk
            if len(body) > limit:
                raise ProbeError("protocol", f"health response larger than {limit} bytes")
        return resp.status, bytes(body)


def classify(exc: BaseException) -> Reason | None:
    """Map aiohttp exceptions to reasons; aiokafka's and redis-py's as the Kafka and
    Redis kinds map them (the canary's transports are those kinds' clients)."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return "protocol"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return None  # an OSError with errno: the generic rules tell refused from the rest
    if isinstance(
        exc,
        aiohttp.ClientPayloadError | aiohttp.ClientResponseError | aiohttp.ClientConnectionError,
    ):
        return "protocol"
    if isinstance(exc, kerr.KafkaError):
        return kafka_client.classify(exc)
    if isinstance(exc, rexc.RedisError):
        return redis_client.classify(exc)
    return None
