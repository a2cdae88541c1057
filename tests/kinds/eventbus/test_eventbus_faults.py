"""The event-bus health endpoint against hostile peers (``tests.hostile``): one stable
reason per behaviour, bounded reads, one short log line per episode, /metrics fast,
no growth. Targets have the health endpoint only (no canary).

The peers are fakes: the runtime stand-in cannot be made to announce a 2 GB body
or answer in random bytes. What a real endpoint does is in ``test_eventbus.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.eventbus.config import BUDGET_HEADROOM, EventBusTarget
from exporter.kinds.eventbus.probe import EventBusState

from ... import faults
from ...fixtures_eventbus import Outcome, probe_once, target_from
from ...helpers import Running, report, scrape_until
from ...hostile import Behaviour, hostile_peer, hostile_peers, record_fault

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
ANNOUNCED = OK_HEAD + b"Content-Length: 2000000000\r\n\r\n"
CHUNKED = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n7fffffff\r\n"  # one 2 GiB chunk
HEADER_LINE = OK_HEAD + b"X-Flood: "  # then filler: a header line without end
UNAUTHORIZED = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
DRIPPED = OK_HEAD + b"Content-Length: 2\r\n\r\n{}"

# case -> (behaviour, what the peer answers, reason)
CASES: dict[str, tuple[Behaviour, bytes, str]] = {
    "silent": ("silent", b"", "timeout"),
    "close": ("close", b"", "protocol"),
    "garbage": ("garbage", b"", "protocol"),
    "stream": ("stream", b"", "protocol"),
    "slow": ("slow", DRIPPED, "timeout"),
    "huge": ("huge", ANNOUNCED, "protocol"),
    "huge-chunked": ("huge", CHUNKED, "protocol"),
    "huge-header": ("huge", HEADER_LINE, "protocol"),
    "auth": ("auth", UNAUTHORIZED, "auth"),
    "auth-403": ("auth", FORBIDDEN, "auth"),
}


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("bus-token-123\n")
    return path


def _yaml(url: str, token_file: Path, extra: str = "", timeout: str = "900ms") -> str:
    return f"""
eventbus:
  - name: runtime
    url: "{url}"
    token_file: {token_file}
    interval: 1s
    timeout: {timeout}
{extra}
"""


async def _runs(target: EventBusTarget, n: int) -> tuple[list[Outcome], EventBusState]:
    state = EventBusState(target)
    try:
        return [await probe_once(target, state) for _ in range(n)], state
    finally:
        await state.aclose()


@pytest.mark.parametrize("case", list(CASES))
async def test_each_hostile_peer_has_one_stable_reason(case: str, token_file: Path) -> None:
    behaviour, reply, reason = CASES[case]
    async with hostile_peer(behaviour, reply=reply) as peer:
        hangs = behaviour in ("silent", "slow")
        url = f"http://{peer.address}/health"
        target = target_from(_yaml(url, token_file, timeout="300ms" if hangs else "900ms"))
        outs, _ = await _runs(target, 3 if hangs else 10)
    assert faults.same_reason(outs) == reason
    assert all(o.series == {} for o in outs)
    assert all("bus-token-123" not in o.error for o in outs)
    if case == behaviour:
        record_fault("eventbus", behaviour, reason)


@pytest.mark.parametrize("reply", [ANNOUNCED, HEADER_LINE], ids=["content-length", "header"])
async def test_announced_or_endless_headers_are_refused_before_reading(
    reply: bytes, token_file: Path
) -> None:
    async with hostile_peer("huge", reply=reply) as peer:
        target = target_from(_yaml(f"http://{peer.address}/health", token_file))
        (out,), state = await _runs(target, 1)
    assert out.reason == "protocol"
    assert 0 < state.budget.used < 512 * 1024, state.budget.used  # charged, not read on
    assert out.duration < 0.5


async def test_an_endless_chunk_is_read_up_to_max_response_bytes(token_file: Path) -> None:
    async with hostile_peer("huge", reply=CHUNKED) as peer:
        extra = "    max_response_bytes: 65536"
        target = target_from(_yaml(f"http://{peer.address}/health", token_file, extra))
        (out,), state = await _runs(target, 1)
    assert out.reason == "protocol"
    assert "larger than 65536 bytes" in out.error
    # what arrives is handed to aiohttp 16 KiB per loop turn while the socket is read
    # 256 KiB per turn: reading stops ~16x past the body's limit, within the budget
    assert 65536 < state.budget.used < state.budget.limit, state.budget.used
    report(f"eventbus endless chunk, max_response_bytes 64 KiB: {state.budget.used} bytes read")


async def test_headers_within_aiohttp_limits_are_cut_at_the_response_budget(
    token_file: Path,
) -> None:
    """100 header lines of 8000 bytes: under aiohttp's own limits (128 lines of 8190
    bytes), so only the budget stops the reading."""
    flood = OK_HEAD + (b"X-Pad: " + b"a" * 8000 + b"\r\n") * 100
    async with hostile_peer("huge", reply=flood) as peer:
        extra = "    response_budget: 64KiB\n    max_response_bytes: 65536"
        target = target_from(_yaml(f"http://{peer.address}/health", token_file, extra))
        (out,), state = await _runs(target, 1)
    assert out.reason == "protocol"
    assert "response budget of 64KiB" in out.error
    assert state.budget.exceeded


def test_max_response_bytes_must_fit_a_given_response_budget() -> None:
    text = """
eventbus:
  - {name: other, url: "http://127.0.0.1:1/health", max_response_bytes: 1048576,
     response_budget: 512KiB}
"""
    with pytest.raises(ConfigError) as err:
        parse(text, "cfg.yml")
    assert err.value.lines() == [
        "cfg.yml: eventbus[0]: max_response_bytes (1048576) is over the response budget"
        " (512KiB): raise response_budget with it",
    ]


def test_a_larger_body_limit_raises_the_default_budget_with_it() -> None:
    """A config written before the budget existed keeps loading: 8 MiB bodies get room."""
    text = """
eventbus:
  - {name: big, url: "http://127.0.0.1:1/health", max_response_bytes: 8388608}
  - {name: small, url: "http://127.0.0.1:1/health"}
"""
    big, small = parse(text, "cfg.yml").targets["eventbus"]
    assert big.response_budget == 8388608 + BUDGET_HEADROOM
    assert small.response_budget is None  # the kind's default, 4 MiB


async def test_many_failed_runs_log_once_and_metrics_stay_fast(
    exporter_factory: Any, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    async with hostile_peers({case: (b, reply) for case, (b, reply, _) in CASES.items()}) as peers:
        urls = {name: f'url: "http://{p.address}/health"' for name, p in peers.items()}
        common = f"token_file: {token_file}, interval: 600ms, timeout: 500ms"
        run: Running = await exporter_factory(faults.targets_yaml("eventbus", urls, common))
        await scrape_until(run, faults.each_ran("eventbus", peers, 5), timeout=15)
        expected = {case: reason for case, (_, _, reason) in CASES.items()}
        scrapes, longest = await faults.check_one_warning_each(
            run, "eventbus", expected, caplog.records
        )
    faults.assert_not_logged(caplog.records, "bus-token-123")
    report(
        f"eventbus faults: /metrics {scrapes.latency} with {len(CASES)} hostile targets;"
        f" longest log line {longest} characters"
    )


@pytest.mark.parametrize("behaviour", ["close", "garbage"])
async def test_usage_plateaus_over_a_thousand_runs(behaviour: Behaviour, token_file: Path) -> None:
    async with hostile_peer(behaviour) as peer:
        target = target_from(_yaml(f"http://{peer.address}/health", token_file))
        state = EventBusState(target)
        try:
            # warm-up: RSS settles after a few hundred runs
            flat = await faults.plateau(lambda: probe_once(target, state), warmup=500)
        finally:
            await state.aclose()
    report(f"eventbus {behaviour}: {flat}")
    assert flat.same_reason() == "protocol"
    flat.assert_flat()
