"""TLS to PostgreSQL: verify-full against the server's CA, and a wrong CA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ...fixtures_timescale import TLSPostgres
from ...helpers import Running, eventually, self_signed_cert, service_root, value

Factory = Callable[..., Any]
KIND = {"kind": "timescale", "target": "db"}


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[TLSPostgres]:
    """A cluster with TLS on, in a ``service_root``."""
    with service_root("ts-tls") as root:
        server = TLSPostgres(root).start()
        yield server
        server.stop()


def _config(pg: TLSPostgres, sslmode: str, ca: Path) -> str:
    return f"""
timescale:
  - name: db
    address: {pg.address}
    database: postgres
    user: postgres
    password: ${{TS_TLS_PASSWORD}}
    sslmode: {sslmode}
    tls: {{ca_file: {ca}}}
    interval: 1s
    timeout: 800ms
"""


async def test_verify_full_with_the_servers_ca(
    tls_postgres: TLSPostgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TS_TLS_PASSWORD", tls_postgres.password)
    run: Running = await exporter_factory(_config(tls_postgres, "verify-full", tls_postgres.cert))

    async def up() -> bool:
        return value(await run.scrape(), "tradeops_up", **KIND) == 1

    await eventually(up, timeout=10)
    in_use = tls_postgres.psql(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
        " WHERE a.application_name = 'tradeops-exporter'"
    )
    assert in_use.strip() == "t"


async def test_wrong_ca_fails_the_handshake(
    tls_postgres: TLSPostgres,
    exporter_factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TS_TLS_PASSWORD", tls_postgres.password)
    other_ca, _ = self_signed_cert(tmp_path, "other")
    run: Running = await exporter_factory(_config(tls_postgres, "verify-full", other_ca))

    async def failed() -> bool:
        m = await run.scrape()
        return value(m, "tradeops_probe_runs_total", **KIND) is not None and (
            value(m, "tradeops_up", **KIND) == 0
        )

    await eventually(failed, timeout=10)
    m = await run.scrape()
    errors = {
        r: value(m, "tradeops_probe_errors_total", **KIND, reason=r)
        for r in ("protocol", "timeout", "other")
    }
    assert (errors["protocol"] or 0) >= 1 and errors["timeout"] == errors["other"] == 0


async def test_require_with_a_ca_checks_the_chain_not_the_name(
    tls_postgres: TLSPostgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq semantics: sslmode require plus a CA file behaves like verify-ca."""
    monkeypatch.setenv("TS_TLS_PASSWORD", tls_postgres.password)
    config = _config(tls_postgres, "require", tls_postgres.cert).replace(
        f"address: {tls_postgres.address}", f"address: localhost:{tls_postgres.port}"
    )
    run: Running = await exporter_factory(config)

    async def up() -> bool:
        return value(await run.scrape(), "tradeops_up", **KIND) == 1

    await eventually(up, timeout=10)  # the certificate names 127.0.0.1, not localhost
