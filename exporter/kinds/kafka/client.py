"""The Kafka client that keeps a target's response budget, for the probe and the canary.

``BoundedClient`` is an ``AIOKafkaClient`` that opens only ``BoundedConnection``s
(``frames``: every byte charged to the run's budget, each frame checked before it
is read), and says why a broker could not be reached (aiokafka drops the cause).
The canary's producer, consumer and admin client build their own client; ``adopt``
turns that one into a ``BoundedClient``. ``classify`` maps aiokafka's errors to
reasons for both.

aiokafka offers no hook for either: the overrides below follow aiokafka 0.14's
private methods line for line where they are not the point, and
``tests/kinds/kafka/test_kafka_conn.py`` pins those methods' source.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka.errors as kerr
from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.conn import collect_hosts
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.util import create_task

from ...budget import ReadBudget
from ...probe import Reason
from ...redact import error_text
from .frames import BoundedConnection, FrameRejected, frame_limit

__all__ = [
    "AUTH_ERRORS",
    "BoundedClient",
    "BoundedConnection",
    "BrokersOnly",
    "FrameRejected",
    "classify",
    "describe",
    "frame_limit",
]


def describe(exc: BaseException) -> str:
    """``error_text`` of an exception and of its root cause, when that differs
    (aiokafka reports a closed connection as "Connection at h:p closed")."""
    root = exc
    seen = {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    text = _text(exc)
    return text if root is exc else f"{text} ({_text(root)})"


def _text(exc: BaseException) -> str:
    """``error_text``, without the class name twice (aiokafka's errors name themselves)."""
    text = error_text(exc)
    prefix = f"{type(exc).__name__}: "
    if text.startswith(prefix) and type(exc).__name__ in text[len(prefix) :]:
        return text[len(prefix) :]
    return text


class BrokersOnly:
    """A Metadata answer without its topics, for ``ClusterMetadata.update_metadata``:
    a client that needs only the brokers' addresses then costs O(brokers) on the
    loop, where the whole answer costs O(partitions)."""

    topics: tuple[Any, ...] = ()

    def __init__(self, response: Any) -> None:
        self.API_VERSION = response.API_VERSION
        self.brokers = response.brokers
        self.controller_id = getattr(response, "controller_id", -1)


class BoundedClient(AIOKafkaClient):  # type: ignore[misc]
    """An ``AIOKafkaClient`` whose connections are ``BoundedConnection``s on ``budget``.

    ``send`` raises ``NodeNotReadyError`` with the connection's failure as its cause,
    and ``bootstrap`` raises ``KafkaConnectionError`` from the first configured server's
    failure.
    """

    budget: ReadBudget
    failures: dict[tuple[Any, Any], BaseException]
    """Why the last connection to (node, group) failed, until one succeeds."""
    _conn_locks: dict[tuple[Any, Any], asyncio.Lock]
    """One lock per (node, group): connecting to one broker never waits for another."""
    bootstrap_until: float | None
    """``loop.time()`` by which ``bootstrap`` must be done (None: its start plus
    ``request_timeout_ms``)."""
    _sync_task: Any
    _loop: Any

    def __init__(
        self, *, budget: ReadBudget, background_metadata: bool = True, **settings: Any
    ) -> None:
        super().__init__(**settings)
        self._bind(budget)
        self.background_metadata = background_metadata
        """False: no metadata refresh task, and a failed connection does not trigger
        one (the probe fetches the metadata itself, every cycle)."""

    @classmethod
    def adopt(cls, client: AIOKafkaClient, budget: ReadBudget) -> BoundedClient:
        """Make a client that aiokafka built (a producer's, consumer's or admin
        client's) open bounded connections from now on; call before it connects."""
        client.__class__ = cls
        client._bind(budget)
        return client  # type: ignore[no-any-return]

    def _bind(self, budget: ReadBudget) -> None:
        self.budget = budget
        self.failures = {}
        self.background_metadata = True
        self.bootstrap_until = None
        self._conn_locks = {}

    def force_metadata_update(self) -> Any:
        """aiokafka's, or (without ``background_metadata``) nothing: done at once."""
        if self.background_metadata:
            return super().force_metadata_update()
        done = self._loop.create_future()
        done.set_result(False)
        return done

    async def _open(self, host: str, port: int, **extra: Any) -> BoundedConnection:
        """``create_conn`` with this client's settings, bounded."""
        conn = BoundedConnection(
            host,
            port,
            budget=self.budget,
            client_id=self._client_id,
            request_timeout_ms=self._request_timeout_ms,
            ssl_context=self._ssl_context,
            security_protocol=self._security_protocol,
            sasl_mechanism=self._sasl_mechanism,
            sasl_plain_username=self._sasl_plain_username,
            sasl_plain_password=self._sasl_plain_password,
            sasl_kerberos_service_name=self._sasl_kerberos_service_name,
            sasl_kerberos_domain_name=self._sasl_kerberos_domain_name,
            sasl_oauth_token_provider=self._sasl_oauth_token_provider,
            **extra,
        )
        await conn.connect()
        return conn

    async def bootstrap(self) -> None:
        """aiokafka's bootstrap over bounded connections, in aiokafka's random order,
        each server given an equal share of the time left (until ``bootstrap_until``),
        so one hung server does not use up the time of the others.

        When none answers, ``KafkaConnectionError`` is raised from the failure of the
        first server in the configured order: servers failing for different reasons
        give one reason on every run, whatever order they were tried in.
        """
        loop = asyncio.get_running_loop()
        end = self.bootstrap_until
        if end is None:
            end = loop.time() + self._request_timeout_ms / 1000
        hosts = list(self.hosts)
        failures: dict[tuple[str, int], BaseException] = {}
        for i, (host, port, _) in enumerate(hosts):
            seconds = max(0.0, end - loop.time()) / (len(hosts) - i)
            try:
                conn, metadata = await self._ask_metadata(host, port, seconds)
            except (TimeoutError, OSError, kerr.KafkaError) as err:
                failures[(host, port)] = err
                continue
            # asked for no topics: a broker that lists some anyway is not read for them
            self.cluster.update_metadata(BrokersOnly(metadata))
            if not len(self.cluster.brokers()):  # kept until the cluster shows brokers
                self._conns[("bootstrap", ConnectionGroup.DEFAULT)] = conn
            else:
                conn.close()
            break
        else:
            configured = [(h, p) for h, p, _ in collect_hosts(self._bootstrap_servers, False)]
            first = next((failures[a] for a in configured if a in failures), None)
            cause = describe(first) if first is not None else "no bootstrap server"
            raise kerr.KafkaConnectionError(
                f"Unable to bootstrap ({len(failures)} of {len(hosts)} servers failed);"
                f" the first configured: {cause}"
            ) from first
        if self._sync_task is None and self.background_metadata:
            self._sync_task = create_task(self._md_synchronizer())

    async def _ask_metadata(
        self, host: str, port: int, seconds: float
    ) -> tuple[BoundedConnection, Any]:
        """A bounded connection to one bootstrap server and its Metadata answer (about
        no topic), within ``seconds``; the connection is closed when that fails."""
        conn: BoundedConnection | None = None
        try:
            async with asyncio.timeout(seconds):
                conn = await self._open(host, port, max_idle_ms=self._connections_max_idle_ms)
                metadata = await conn.send(MetadataRequest([]))
        except TimeoutError as err:
            if conn is not None:
                conn.close()
            raise TimeoutError(f"no answer within {seconds:.2f}s") from err
        except BaseException:  # also cancelled at the run's deadline: aiokafka leaks it
            if conn is not None:
                conn.close()
            raise
        return conn, metadata

    async def _get_conn(
        self, node_id: Any, *, group: Any = ConnectionGroup.DEFAULT, no_hint: bool = False
    ) -> BoundedConnection | None:
        """aiokafka's, opening a bounded connection and keeping why it failed, under a
        lock per connection rather than aiokafka's one lock for all: a broker whose
        connection hangs must not hold up connecting to the others."""
        conn_id = (node_id, group)
        conn = self._conns.get(conn_id)
        if conn is not None:
            if conn.connected():
                return conn  # type: ignore[no-any-return]
            del self._conns[conn_id]
        try:
            broker = self.cluster.broker_metadata(node_id)
            if broker is None:
                raise kerr.StaleMetadata(f"Broker id {node_id} not in current metadata")
            async with self._conn_locks.setdefault(conn_id, asyncio.Lock()):
                if conn_id in self._conns:
                    return self._conns[conn_id]  # type: ignore[no-any-return]
                self._conns[conn_id] = await self._open(
                    broker.host,
                    broker.port,
                    on_close=self._on_connection_closed,
                    max_idle_ms=self._connections_max_idle_ms,
                )
        except (TimeoutError, OSError, kerr.KafkaError) as err:
            self.failures[conn_id] = err
            self.force_metadata_update()  # connection failures imply stale metadata
            return None
        self.failures.pop(conn_id, None)
        return self._conns[conn_id]  # type: ignore[no-any-return]

    async def send(
        self, node_id: Any, request: Any, *, group: Any = ConnectionGroup.DEFAULT
    ) -> Any:
        """aiokafka's; a broker that could not be reached names the reason."""
        try:
            return await super().send(node_id, request, group=group)
        except kerr.NodeNotReadyError:
            cause = self.failures.get((node_id, group))
            if cause is None:
                raise
            raise kerr.NodeNotReadyError(f"broker {node_id}: {describe(cause)}") from cause


AUTH_ERRORS: tuple[type[Exception], ...] = (
    kerr.AuthenticationFailedError,
    kerr.AuthenticationMethodNotSupported,
    kerr.SaslAuthenticationFailed,
    kerr.UnsupportedSaslMechanismError,
    kerr.IllegalSaslStateError,
    kerr.GroupAuthorizationFailedError,
    kerr.ClusterAuthorizationFailedError,
    kerr.TopicAuthorizationFailedError,
)
"""Credentials or permissions the cluster refused: reason ``auth``."""


def classify(exc: BaseException) -> Reason | None:
    """Map aiokafka exceptions to reasons (the event-bus canary's Kafka side too).

    aiokafka wraps what went wrong on a connection in ``KafkaConnectionError`` or
    ``NodeNotReadyError``; the generic rules have already looked through the causes
    for a refused connection and a timeout, so what is left is a peer that accepted
    and then closed, reset or sent what is not a Kafka answer: ``protocol``.
    """
    for cause in _causes(exc):
        if isinstance(cause, AUTH_ERRORS):
            return "auth"
        if isinstance(cause, FrameRejected):
            return "protocol"
    if isinstance(exc, kerr.RequestTimedOutError | kerr.KafkaTimeoutError):
        return "timeout"
    if isinstance(exc, kerr.KafkaError | EOFError | ConnectionError):
        return "protocol"
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not seen for seen in out) and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out
