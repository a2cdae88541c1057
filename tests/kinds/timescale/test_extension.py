"""The timescaledb extension's series against the mirror of its views
(tests/fixtures_timescale.py); the real extension is in test_timescale_real.py.
"""

from __future__ import annotations

from stack import Postgres

from ...fixtures_timescale import (
    MIRROR_EXTENSION_VERSION,
    Factory,
    T,
    create_database,
    db_config,
    install_mirror,
    up,
)
from ...helpers import Running, scrape_until, value


async def test_job_states_only_the_mirror_can_show(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    """Hypertables, chunks, compression and job runs are tested on the real extension
    (test_timescale_real.py). Two job states it cannot produce run here against the
    mirror of the ``timescaledb_information`` views (tests/fixtures_timescale.py): a
    job the scheduler is running (PGlite has no background workers and an empty
    ``pg_stat_activity``), and the shape of versions before 2.23, where a job that
    never ran has no ``job_stats`` row at all. The statements are the probe's own."""
    pg = postgres_server
    create_database(pg, "ts_mirror")
    install_mirror(pg, "ts_mirror", "postgres")
    pg.psql(
        """
        INSERT INTO timescaledb_information.jobs (job_id, application_name, proc_schema,
            proc_name, scheduled, next_start, hypertable_schema, hypertable_name) VALUES
          (1, 'Telemetry Reporter [1]', '_timescaledb_functions', 'policy_telemetry', true,
           '2026-11-24 00:00:00+00', NULL, NULL),
          (1002, 'User-Defined Action [1002]', 'public', 'custom_job', true,
           '2026-11-23 06:00:00+00', NULL, NULL);
        INSERT INTO timescaledb_information.job_stats VALUES
          (NULL, NULL, 1, '2026-11-23 00:00:00+00', '2026-11-23 00:00:03+00',
           'Success', 'Running', '3 seconds', '2026-11-24 00:00:00+00', 2, 2, 0);
        """,
        "ts_mirror",
    )
    run: Running = await exporter_factory(db_config(pg, "ts_mirror"))
    m = await scrape_until(run, lambda m: up(m) == 1)
    version = pg.psql("SHOW server_version").strip()
    info = {"server_version": version, "extension_version": MIRROR_EXTENSION_VERSION}
    assert value(m, "tradeops_timescale_info", **T, **info) == 1
    tele = {**T, "job_id": "1", "proc": "policy_telemetry", "hypertable": ""}
    never = {**T, "job_id": "1002", "proc": "custom_job", "hypertable": ""}
    assert value(m, "tradeops_timescale_job_running", **tele) == 1
    assert value(m, "tradeops_timescale_job_runs_total", **tele) == 2
    # no stats row: state known, run results absent
    assert value(m, "tradeops_timescale_job_paused", **never) == 0
    assert value(m, "tradeops_timescale_job_running", **never) == 0
    assert value(m, "tradeops_timescale_job_last_run_success", **never) is None
    assert value(m, "tradeops_timescale_job_runs_total", **never) is None
    assert value(m, "tradeops_timescale_job_next_start_timestamp_seconds", **never) is None
