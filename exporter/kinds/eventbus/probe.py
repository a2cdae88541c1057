"""Event bus: the runtime's health endpoint (HTTP JSON, mapped to metrics) and an
end-to-end canary published on the bus transport (Kafka topic or Redis stream)
and read back.

A run fails (``up`` 0) when either part fails; the log line says which part
and why. Canary counters and the round-trip histogram live in the target's
state, so a failed run loses nothing: they show the losses on the next success.

Every health request opens a new connection (none is kept across runs), which
charges the run's response budget; the body is read up to ``max_response_bytes``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import redis.exceptions as rexc
from aiokafka import errors as kerr
from pydantic import Field, ValidationInfo, field_validator, model_validator
from yarl import URL

from ...budget import BoundedProtocol, ReadBudget, format_size
from ...logs import log
from ...model import EnvSecret, FileSecret, TargetBase, TLSConfig
from ...probe import (
    KindRuntime,
    ProbeContext,
    ProbeError,
    ProbeKind,
    ProbeResult,
    ProbeState,
    Reason,
    classify_error,
)
from ...redact import error_text
from ..redis import client as redis_client
from . import metrics as M
from .canary import (
    CanaryConfig,
    CanaryTracker,
    Transport,
    decode,
    encode,
    make_transport,
    new_instance_id,
)
from .mapping import (
    UNKNOWN_STATE,
    FieldError,
    FieldMap,
    Resolved,
    base_unit,
    convert,
    lookup,
    parse_path,
    resolve_mapping,
)

CLOSE_TIMEOUT = 2.0
RESPONSE_BUDGET = 4 << 20
"""The kind's default ``response_budget``: a body of ``max_response_bytes`` (1 MiB by
default), its headers (aiohttp reads at most 128 lines of 8 KiB) and the canary's reads."""
BUDGET_HEADROOM = RESPONSE_BUDGET - (1 << 20)
"""What the budget holds besides the body: the headers and the canary's reads."""


class EventBusTarget(TargetBase):
    """One runtime: its health endpoint and, optionally, a canary on its bus transport."""

    url: str
    token: EnvSecret | None = None
    token_file: FileSecret | None = None
    tls: TLSConfig | None = None
    max_response_bytes: int = Field(default=1_048_576, ge=256, le=64 * 1_048_576)
    root: str = ""
    """JSON path of the event-bus snapshot inside the document (default: the document)."""
    default_mapping: bool = True
    mapping: dict[str, FieldMap | None] = Field(default_factory=dict)
    canary: CanaryConfig | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            url = URL(value)
        except (ValueError, TypeError):
            raise ValueError("expected an http:// or https:// URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("expected an http:// or https:// URL")
        if url.user or url.password:
            raise ValueError("credentials in the URL are not accepted: use token or token_file")
        return value

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        parse_path(value)
        return value

    @field_validator("mapping")
    @classmethod
    def _mapping(
        cls, value: dict[str, FieldMap | None], info: ValidationInfo
    ) -> dict[str, FieldMap | None]:
        if "root" in info.data:
            resolve_mapping(value, info.data["root"], info.data.get("default_mapping", True))
        return value

    @model_validator(mode="after")
    def _one_token(self) -> EventBusTarget:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give token or token_file, not both")
        return self

    @model_validator(mode="before")
    @classmethod
    def _budget_fits_the_body(cls, data: Any) -> Any:
        """Without a ``response_budget``, a larger ``max_response_bytes`` raises it too."""
        if isinstance(data, dict) and data.get("response_budget") is None:
            body = data.get("max_response_bytes")
            if type(body) is int and body + BUDGET_HEADROOM > RESPONSE_BUDGET:
                data = {**data, "response_budget": body + BUDGET_HEADROOM}
        return data

    @model_validator(mode="after")
    def _body_within_budget(self) -> EventBusTarget:
        budget = self.response_budget or RESPONSE_BUDGET
        if self.max_response_bytes > budget:
            raise ValueError(
                f"max_response_bytes ({self.max_response_bytes}) is over the response budget"
                f" ({format_size(budget)}): raise response_budget with it"
            )
        return self

    @property
    def fields(self) -> tuple[Resolved, ...]:
        """The effective mapping (defaults applied)."""
        return resolve_mapping(self.mapping, self.root, self.default_mapping)

    def token_value(self) -> str | None:
        """The bearer token, from whichever source was configured."""
        secret = self.token or self.token_file
        return secret.reveal() if secret else None


class EventBusState(ProbeState):
    """The HTTP session, the canary transport and the canary's counters."""

    def __init__(self, target: EventBusTarget) -> None:
        self.ssl = target.tls.context() if target.tls is not None else None
        if target.canary is not None:  # unreadable TLS files: a config error now, not later
            for transport in (target.canary.kafka, target.canary.redis):
                if transport is not None and transport.tls is not None:
                    transport.tls.context()
        self.fields = target.fields
        self.session: aiohttp.ClientSession | None = None
        self.tracker = CanaryTracker(M.CANARY_ROUNDTRIP.buckets)
        self.instance = new_instance_id()
        self.transport: Transport | None = None
        self.transport_started = False
        self.reported_status: str | None = None
        self.closing: set[asyncio.Task[None]] = set()

    def http(self) -> aiohttp.ClientSession:
        """The session (created on first use, inside the event loop)."""
        if self.session is None or self.session.closed:
            connector = BoundedConnector(
                lambda: self.budget, limit=2, ssl=self.ssl if self.ssl else True, force_close=True
            )
            self.session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self.session

    async def canary_transport(self, target: EventBusTarget) -> Transport:
        """The started transport; a half-started one is discarded and rebuilt."""
        assert target.canary is not None
        if self.transport is not None and not self.transport_started:
            await self.drop_transport()
        if self.transport is None:
            self.transport = make_transport(
                target.canary, target.name, target.timeout_s, self.budget
            )
            await self.transport.start()
            self.transport_started = True
        return self.transport

    async def drop_transport(self) -> None:
        """Forget the transport; it is closed in the background (bounded), so a broker
        that is down cannot eat the run's deadline. The next run reconnects."""
        transport, self.transport, self.transport_started = self.transport, None, False
        if transport is not None:
            task = asyncio.create_task(_close(transport), name="eventbus-canary-close")
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)

    async def aclose(self) -> None:
        await self.drop_transport()
        if self.closing:
            await asyncio.gather(*self.closing, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


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


async def _close(transport: Transport) -> None:
    try:
        await asyncio.wait_for(transport.aclose(), CLOSE_TIMEOUT)
    except Exception as exc:
        log(logging.DEBUG, "closing canary transport failed", error=error_text(exc))


def classify(exc: BaseException) -> Reason | None:
    """Map aiohttp, aiokafka and redis-py exceptions to reasons."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return "protocol"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return None  # an OSError with errno: the generic rules tell refused from the rest
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return "protocol"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientConnectionError):
        return "protocol"
    if isinstance(
        exc,
        kerr.SaslAuthenticationFailed
        | kerr.TopicAuthorizationFailedError
        | kerr.ClusterAuthorizationFailedError,
    ):
        return "auth"
    if isinstance(exc, kerr.KafkaTimeoutError | kerr.RequestTimedOutError):
        return "timeout"
    if isinstance(exc, kerr.KafkaConnectionError | kerr.NodeNotReadyError):
        return "refused"
    if isinstance(exc, kerr.KafkaError):
        return "protocol"
    if isinstance(exc, rexc.RedisError):
        return redis_client.classify(exc)
    return None


# ---------------------------------------------------------------- health endpoint


async def fetch(target: EventBusTarget, state: EventBusState) -> tuple[int, bytes]:
    """GET the health URL: (status, body), reading at most ``max_response_bytes``."""
    headers = {"Accept": "application/json", "User-Agent": "tradeops-exporter"}
    token = target.token_value()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limit = target.max_response_bytes
    sni = target.tls.server_name if target.tls is not None else None
    get = state.http().get(target.url, headers=headers, allow_redirects=False, server_hostname=sni)
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


def parse_document(body: bytes) -> dict[str, Any]:
    """The health document; ProbeError(protocol) unless it is a JSON object."""
    try:
        doc = json.loads(body)
    except ValueError:  # includes undecodable bytes
        raise ProbeError("protocol", "health response is not JSON") from None
    except RecursionError:
        raise ProbeError("protocol", "health response is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ProbeError(
            "protocol", f"health response is a JSON {type(doc).__name__}, not an object"
        )
    return doc


def map_fields(
    r: ProbeResult, target: EventBusTarget, state: EventBusState, doc: dict[str, Any], now: float
) -> None:
    """Evaluate every mapping entry; missing required or wrongly typed fields fail the run."""
    name = target.name
    problems: list[str] = []
    for f in state.fields:
        try:
            found, raw = lookup(doc, f.path)
            if found:
                _emit(r, target, state, f, raw, now)
        except FieldError as exc:
            problems.append(f"{f.name} at {f.path}: {exc}")
            continue
        r.add(M.FIELD_PRESENT, found, name, f.name)
        if not found and f.required:
            problems.append(f"{f.name} at {f.path}: missing or null")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ProbeError("protocol", "health response: " + "; ".join(problems[:3]) + more)


def _emit(
    r: ProbeResult, target: EventBusTarget, state: EventBusState, f: Resolved, raw: Any, now: float
) -> None:
    name = target.name
    if f.kind == "state":
        if not isinstance(raw, str):
            raise FieldError(f"expected a string, got {type(raw).__name__}")
        _emit_status(r, target, state, f, raw)
        return
    value = convert(raw, f.unit)
    if f.kind == "counter" and value < 0:
        raise FieldError("a counter cannot be negative")
    if f.kind == "start_time":
        r.add(f.family, round(now - value), name)
    elif f.family in (M.FIELD, M.FIELD_TOTAL):
        r.add(f.family, value, name, f.name, base_unit(f.unit))
    else:
        r.add(f.family, value, name)


def _emit_status(
    r: ProbeResult, target: EventBusTarget, state: EventBusState, f: Resolved, raw: str
) -> None:
    current = raw.strip().lower()
    known = {s.lower() for s in f.states}
    for s in f.states:
        r.add(f.family, s.lower() == current, target.name, s)
    r.add(f.family, current not in known, target.name, UNKNOWN_STATE)
    if current not in known and state.reported_status != current:
        log(
            logging.WARNING,
            "event-bus status not among the configured states",
            kind="eventbus",
            target=target.name,
            status=raw[:64],
        )
    state.reported_status = current


async def health(
    r: ProbeResult, target: EventBusTarget, state: EventBusState, ctx: ProbeContext[EventBusState]
) -> None:
    """Fetch, parse and map the health document; failures name the health endpoint."""
    budget = _margin_deadline(ctx.deadline, target.timeout_s)
    seconds = budget - asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout_at(budget):
            status, body = await fetch(target, state)
    except TimeoutError:
        raise ProbeError(
            "timeout", f"health endpoint: no complete answer within {seconds:.2f}s"
        ) from None
    except ProbeError:
        raise
    except Exception as exc:
        reason = classify_error(exc, classify)
        raise ProbeError(reason, f"health endpoint: {error_text(exc)}") from exc
    r.add(M.HTTP_STATUS, status, target.name)
    r.add(M.RESPONSE_SIZE, len(body), target.name)
    map_body(r, target, state, body, ctx.now())


def map_body(
    r: ProbeResult, target: EventBusTarget, state: EventBusState, body: bytes, now: float
) -> None:
    """A fetched health body into samples: parsed, its ``root`` checked, its fields mapped."""
    doc = parse_document(body)
    if target.root:
        try:
            found, sub = lookup(doc, parse_path(target.root))
        except FieldError:
            found, sub = False, None
        if not found or not isinstance(sub, dict):
            raise ProbeError("protocol", f"health response: no object at root {target.root}")
    map_fields(r, target, state, doc, now)


def _margin_deadline(deadline: float, timeout: float) -> float:
    """Stop a part slightly before the run's deadline so it can report its own reason."""
    return deadline - min(0.1, timeout * 0.1)


# ---------------------------------------------------------------- canary


async def canary(
    r: ProbeResult, target: EventBusTarget, state: EventBusState, ctx: ProbeContext[EventBusState]
) -> None:
    """Publish canaries on the bus transport and read them back; wrap failures with context."""
    assert target.canary is not None
    transport_name = target.canary.transport_name
    try:
        await _canary_round(target, state, ctx)
    except asyncio.CancelledError:
        state.transport_started = False  # half-used: rebuilt on the next run
        raise
    except ProbeError:
        await state.drop_transport()
        raise
    except Exception as exc:
        await state.drop_transport()
        reason = classify_error(exc, classify)
        raise ProbeError(reason, f"canary via {transport_name}: {error_text(exc)}") from exc
    finally:
        _canary_samples(r, target, state)


async def _canary_round(
    target: EventBusTarget, state: EventBusState, ctx: ProbeContext[EventBusState]
) -> None:
    assert target.canary is not None
    cfg, tracker = target.canary, state.tracker
    loop = asyncio.get_running_loop()
    tracker.expire(loop.time(), cfg.deadline)
    end_of_run = _margin_deadline(ctx.deadline, target.timeout_s)
    mine: list[int] = []
    for _ in range(cfg.count):
        seq = tracker.new(loop.time())
        mine.append(seq)
        try:
            async with asyncio.timeout_at(min(end_of_run, loop.time() + cfg.deadline)):
                transport = await state.canary_transport(target)
                await transport.publish(encode(state.instance, target.name, seq))
        except BaseException:
            tracker.failed(seq)
            raise
    end = min(end_of_run, tracker.pending.get(mine[0], loop.time()) + cfg.deadline)
    while any(s in tracker.pending for s in mine) and (left := end - loop.time()) > 0:
        for raw in await transport.poll(left):
            got = decode(raw, state.instance)
            if got is not None:
                tracker.seen(got, loop.time(), ctx.now(), cfg.deadline)
    transport.idle()
    lost_before = tracker.lost
    tracker.expire(loop.time(), cfg.deadline)
    waiting = [s for s in mine if s in tracker.pending]
    if tracker.lost > lost_before:
        raise ProbeError(
            "timeout",
            f"canary via {cfg.transport_name}: {tracker.lost - lost_before} not read back "
            f"within {cfg.deadline:g}s",
        )
    if waiting:
        raise ProbeError(
            "timeout",
            f"canary via {cfg.transport_name}: {len(waiting)} not back before the run's deadline",
        )


def _canary_samples(r: ProbeResult, target: EventBusTarget, state: EventBusState) -> None:
    t, name = state.tracker, target.name
    r.add_histogram(t.rtt.sample(M.CANARY_ROUNDTRIP, name))
    r.add(M.CANARY_LAST_ROUNDTRIP, t.last_rtt, name)
    r.add(M.CANARY_SENT, t.sent, name)
    r.add(M.CANARY_RECEIVED, t.received, name)
    r.add(M.CANARY_LOST, t.lost, name)
    r.add(M.CANARY_OUT_OF_ORDER, t.out_of_order, name)
    r.add(M.CANARY_LAST_SUCCESS, t.last_success, name)


# ---------------------------------------------------------------- the probe


async def probe(target: EventBusTarget, ctx: ProbeContext[EventBusState]) -> ProbeResult:
    """Probe one runtime: health endpoint and, when configured, the canary, concurrently.

    A failed part fails the run (up 0, its reason counted) but does not hide the
    other: a healthy endpoint's series and the canary's counters (losses included)
    are kept as the run's partial result.
    """
    r, health_r = ProbeResult(), ProbeResult()
    parts = [health(health_r, target, ctx.state, ctx)]
    if target.canary is not None:
        parts.append(canary(r, target, ctx.state, ctx))
    outcomes = await asyncio.gather(*parts, return_exceptions=True)
    if not isinstance(outcomes[0], BaseException):  # half-mapped documents are dropped
        r.samples.extend(health_r.samples)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if not errors:
        return r
    named = [e for e in errors if isinstance(e, ProbeError)]
    if len(named) < len(errors):
        raise next(e for e in errors if not isinstance(e, ProbeError))
    message = "; and ".join(str(e) for e in named)
    raise ProbeError(named[0].reason, message, partial=r) from named[0]


RUNTIME: KindRuntime[EventBusTarget, EventBusState] = KindRuntime(probe, EventBusState, classify)

KIND: ProbeKind[EventBusTarget, EventBusState] = ProbeKind(
    name="eventbus",
    target_model=EventBusTarget,
    families=M.FAMILIES,
    load=lambda: RUNTIME,
    address_field="url",
    example_address="http://127.0.0.1:8080/health",
    response_budget=RESPONSE_BUDGET,
)
