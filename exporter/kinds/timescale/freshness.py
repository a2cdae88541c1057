"""Ingest freshness: each watched table's newest row, in batches, a slow table alone."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg

from ...probe import ProbeContext, ProbeResult
from . import metrics as M
from . import sql as SQL
from .config import TimescaleTarget, WatchedTable

if TYPE_CHECKING:
    from .probe import TimescaleState

BATCH = 50
"""Watched tables looked up per round trip."""
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

Answer = tuple[bool, object]
"""A table's query: whether it succeeded, and the newest time value (None: no rows)."""


def to_unix(value: object, unit: str) -> float | None:
    """A time column's value as Unix seconds; None for types that are not times."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value) * _UNIT_SECONDS[unit]
    return None


def _table_series(
    r: ProbeResult,
    target: TimescaleTarget,
    table: WatchedTable,
    answer: Answer,
    now: float,
) -> None:
    name = target.name
    ok, raw = answer
    newest = to_unix(raw, table.time_unit) if ok and raw is not None else None
    ok = ok and (raw is None or newest is not None)  # a non-time column is a failure
    r.add(M.TABLE_QUERY_OK, ok, name, table.name)
    calendar = table.calendar or target.calendar
    r.add(M.TABLE_SLA, table.freshness_sla, name, table.name, calendar)
    if not ok:
        return
    r.add(M.TABLE_HAS_ROWS, newest is not None, name, table.name)
    r.add(M.TABLE_NEWEST, newest, name, table.name)
    within = newest is not None and now - newest <= table.freshness_sla
    r.add(M.TABLE_WITHIN_SLA, within, name, table.name)


def _spec(table: WatchedTable) -> tuple[str, str, str]:
    return (table.schema_, table.table, table.time_column)


async def tables(
    r: ProbeResult, target: TimescaleTarget, conn: Any, ctx: ProbeContext[TimescaleState]
) -> None:
    """Newest rows in batches of BATCH tables. A batch that hits statement_timeout is
    queried table by table from the next run on, so one slow table blinds only itself:
    the fast ones go back to the batch, the slow one stays alone and is asked last,
    while the run's time allows."""
    state, now = ctx.state, ctx.now()
    batched = [t for t in target.tables if t.name not in state.isolated]
    alone = sorted(
        (t for t in target.tables if t.name in state.isolated),
        key=lambda t: state.isolated[t.name],  # suspects before confirmed slow ones
    )
    for i in range(0, len(batched), BATCH):
        batch = batched[i : i + BATCH]
        for table, answer in zip(batch, await _batch(conn, state, batch), strict=True):
            _table_series(r, target, table, answer, now)
    loop = asyncio.get_running_loop()
    for table in alone:
        in_time = loop.time() + target.statement_timeout_s < ctx.deadline
        answer = await _isolated(conn, state, table) if in_time else (False, None)
        _table_series(r, target, table, answer, now)


async def _batch(conn: Any, state: TimescaleState, batch: list[WatchedTable]) -> list[Answer]:
    """One statement for the batch's tables; on an error, which one failed."""
    try:
        row = await conn.fetchrow(SQL.newest_rows([_spec(t) for t in batch]))
        return [(True, v) for v in row.values()]
    except asyncpg.QueryCanceledError:
        await conn.execute(state.restart)
        state.isolated.update(dict.fromkeys((t.name for t in batch), False))
        return [(False, None)] * len(batch)  # too slow to retry in this run
    except asyncpg.PostgresError:
        await conn.execute(state.restart)
        return await _each_table(conn, state, batch)


async def _isolated(conn: Any, state: TimescaleState, table: WatchedTable) -> Answer:
    """A table asked alone since its batch hit statement_timeout: back to the batch
    once it answers, confirmed slow when it hits the timeout alone too."""
    try:
        answer = await _one_table(conn, state, table)
    except asyncpg.QueryCanceledError:
        state.isolated[table.name] = True
        return (False, None)
    del state.isolated[table.name]
    return answer


async def _each_table(conn: Any, state: TimescaleState, batch: list[WatchedTable]) -> list[Answer]:
    """A failed batch's tables one by one. Once one hits statement_timeout the rest
    are not asked in this run; from the next on they are asked alone, as after a
    batch's timeout."""
    results: list[Answer] = []
    for i, table in enumerate(batch):
        try:
            results.append(await _one_table(conn, state, table))
        except asyncpg.QueryCanceledError:
            state.isolated[table.name] = True
            rest = batch[i + 1 :]
            state.isolated.update(dict.fromkeys((t.name for t in rest), False))
            return results + [(False, None)] * (1 + len(rest))
    return results


async def _one_table(conn: Any, state: TimescaleState, table: WatchedTable) -> Answer:
    """One table's newest value; a failure ends the run's transaction, so a new one
    is opened before the next statement (a statement timeout is raised after it)."""
    try:
        return True, await conn.fetchval(SQL.newest_row(*_spec(table)))
    except asyncpg.PostgresError as exc:
        await conn.execute(state.restart)
        if isinstance(exc, asyncpg.QueryCanceledError):
            raise
        return False, None
