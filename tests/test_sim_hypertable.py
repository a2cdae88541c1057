"""The hypertable simulator of the demo and compose (stack/sim_hypertable.py) on the
stack's real TimescaleDB (PGlite): the hypertable, its seeded history, compression
and policy; the policy run on schedule and recorded as TimescaleDB's scheduler
records it; a second set-up (compose's traffic restarted) that changes nothing; and
writes that never lock other clients out of PGlite's one backend."""

from __future__ import annotations

import asyncio
import time

from stack import TimescaleLite
from stack.sim_hypertable import HISTORY_MINUTES, SCHEDULE_SECONDS, HypertableTicks
from stack.sim_timescale import SCHEMA, SYMBOLS, TABLE

from .fixtures_timescale import lite_fetch

_CHUNKS = (
    "SELECT count(*) AS chunks, count(*) FILTER (WHERE is_compressed) AS compressed,"
    " count(*) FILTER (WHERE range_end < now() - interval '10 minutes') AS old"
    " FROM timescaledb_information.chunks WHERE hypertable_schema = $1 AND hypertable_name = $2"
)
_STATS = (
    "SELECT s.total_runs, s.total_failures, s.last_run_status,"
    " extract(epoch FROM s.next_start - s.last_run_started_at) AS schedule"
    " FROM timescaledb_information.job_stats s WHERE s.job_id = $1"
)


def _dsn(lite: TimescaleLite) -> str:
    return f"postgresql://{lite.user}:{lite.password}@{lite.address}/tsdb"


async def test_the_hypertable_is_compressed_by_its_policy_and_set_up_once(
    timescale_lite: TimescaleLite,
) -> None:
    lite = timescale_lite
    sim = HypertableTicks(_dsn(lite), interval=0.05, run_jobs=True)
    await sim.start()
    try:
        end = time.monotonic() + 20
        while sim.ticks_written < 5 * len(SYMBOLS) and time.monotonic() < end:
            # another client gets its turn while the writer writes
            (row,) = await asyncio.wait_for(lite_fetch(lite, "SELECT 1 AS one"), 5)
            assert row["one"] == 1
        assert sim.ticks_written >= 5 * len(SYMBOLS)
    finally:
        await sim.stop()
    assert sim.job_id is not None and sim.job_runs == 1  # run once at the start
    (chunks,) = await lite_fetch(lite, _CHUNKS, SCHEMA, TABLE)
    assert chunks["old"] >= 10  # an hour of history in 5-minute chunks
    assert chunks["compressed"] == chunks["old"]  # the policy compressed them all
    (stats,) = await lite_fetch(lite, _STATS, sim.job_id)
    assert (stats["total_runs"], stats["total_failures"]) == (1, 0)
    assert stats["last_run_status"] == "Success"
    assert float(stats["schedule"]) == SCHEDULE_SECONDS  # next start: a schedule after
    count = "SELECT count(*) AS n FROM market.ticks"
    (rows,) = await lite_fetch(lite, count)
    assert rows["n"] >= (HISTORY_MINUTES + 5) * len(SYMBOLS)

    again = HypertableTicks(_dsn(lite))
    assert await again.setup() == sim.job_id  # the same policy, not a second one
    assert (await lite_fetch(lite, count))[0]["n"] == rows["n"]  # history seeded once
    policies = await lite_fetch(
        lite,
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
        " AND hypertable_schema = $1 AND hypertable_name = $2",
        SCHEMA,
        TABLE,
    )
    assert [p["job_id"] for p in policies] == [sim.job_id]
    assert await sim.run_policy()
    (stats,) = await lite_fetch(lite, _STATS, sim.job_id)
    assert stats["total_runs"] == 2
