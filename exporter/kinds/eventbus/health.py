"""The health part of a run: fetch the health document, parse it, map its fields to series."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...logs import log
from ...probe import ProbeError, ProbeResult, classify_error
from ...redact import error_text
from . import metrics as M
from .client import classify, fetch
from .config import EventBusTarget
from .mapping import UNKNOWN_STATE, FieldError, Resolved, base_unit, convert, lookup, parse_path

if TYPE_CHECKING:
    from .probe import EventBusState


async def health(
    r: ProbeResult,
    target: EventBusTarget,
    state: EventBusState,
    until: float,
    now: Callable[[], float],
) -> None:
    """Fetch (by ``loop.time()`` ``until``), parse and map the health document (``now``:
    the wall clock); failures name the health endpoint."""
    seconds = until - asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout_at(until):
            status, body = await fetch(target, state.http())
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
    map_body(r, target, state, body, now())


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
