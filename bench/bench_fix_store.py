"""Benchmark: the passive FIX reader over 50 sessions with >= 100 MB of logs.

Shows that a cycle costs what was appended since the last one, not the size
of the logs: the per-cycle time with nothing new, then with 10 KB, 100 KB and
1 MB appended per session, on big logs and on small ones. Prints medians and
ratios; not run by pytest.

    .venv/bin/python bench/bench_fix_store.py [--sessions 50] [--mb-per-session 2.2] [--json F]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Report, add_json_argument
from exporter.kinds.fix_store.config import FixStoreTarget
from exporter.kinds.fix_store.probe import FixStoreState, collect

SOH = "\x01"
REPEATS = 7


def _ts(t: float) -> str:
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%Y%m%d-%H:%M:%S.") + f"{d.microsecond * 1000:09d}"


def _msg(msg_type: str, sender: str, target: str, seq: int, t: float, *extra: str) -> str:
    sending = _ts(t)[:21]
    body = SOH.join([f"35={msg_type}", f"49={sender}", f"56={target}", f"34={seq}"])
    body += SOH + f"52={sending}" + "".join(SOH + e for e in extra) + SOH
    return f"8=FIX.4.4{SOH}9={len(body)}{SOH}{body}10=123{SOH}"


class Session:
    """One engine session's files, with a writer that appends realistic traffic."""

    def __init__(self, root: Path, n: int) -> None:
        self.ours, self.peer = "ENGINE", f"BROKER{n:02d}"
        self.prefix = f"FIX.4.4-{self.ours}-{self.peer}"
        self.root = root
        self.out_seq = self.in_seq = 1
        self.t = time.time() - 86400
        (root / f"{self.prefix}.session").write_text("20261123-00:00:00")
        self.log = root / f"{self.prefix}.messages.current.log"
        (root / f"{self.prefix}.event.current.log").write_text(
            f"{_ts(self.t)} : Initiated logon request\n{_ts(self.t)} : Received logon response\n"
        )
        self.log.write_text(
            f"{_ts(self.t)} : {_msg('A', self.ours, self.peer, 1, self.t, '98=0', '108=30')}\n"
        )
        self._write_seqnums()

    def _write_seqnums(self) -> None:
        (self.root / f"{self.prefix}.seqnums").write_text(
            f"{self.out_seq:020d} : {self.in_seq:020d}"
        )

    def _lines(self, n_bytes: int) -> str:
        out: list[str] = []
        size = 0
        k = 0
        while size < n_bytes:
            self.t += 0.01
            k += 1
            if k % 50 == 0:
                line = _msg("0", self.peer, self.ours, self.in_seq, self.t)
                self.in_seq += 1
            elif k % 2:
                line = _msg(
                    "D", self.ours, self.peer, self.out_seq, self.t,
                    f"11=ORD{self.out_seq}", "21=1", "55=AAPL", "54=1", "38=100", "40=2",
                    "44=101.25", "59=0", f"60={_ts(self.t)[:21]}",
                )  # fmt: skip
                self.out_seq += 1
            else:
                line = _msg(
                    "8", self.peer, self.ours, self.in_seq, self.t,
                    f"37=O{self.in_seq}", f"17=E{self.in_seq}", "150=F", "39=2",
                    f"11=ORD{self.out_seq - 1}", "55=AAPL", "54=1", "38=100", "32=100",
                    "31=101.25", "151=0", "14=100", "6=101.25",
                )  # fmt: skip
                self.in_seq += 1
            text = f"{_ts(self.t)} : {line}\n"
            out.append(text)
            size += len(text)
        return "".join(out)

    def append(self, n_bytes: int) -> None:
        """Append about ``n_bytes`` of traffic and update the seqnums."""
        with self.log.open("a") as f:
            f.write(self._lines(n_bytes))
        self._write_seqnums()

    def target(self) -> FixStoreTarget:
        return FixStoreTarget.model_validate(
            {
                "name": self.peer.lower(),
                "store_path": self.root,
                "sender_comp_id": self.ours,
                "target_comp_id": self.peer,
                "interval": 15,
                "timeout": 10,
                "backfill_bytes": 1 << 40,  # read the whole log once, to count it
                "max_read_bytes": 1 << 30,
            }
        )


def _cycle(pairs: list[tuple[FixStoreTarget, FixStoreState]]) -> float:
    start = time.perf_counter()
    now = time.time()
    for target, state in pairs:
        collect(target, state, now)
    return time.perf_counter() - start


def _median_cycle(
    sessions: list[Session], pairs: list[tuple[FixStoreTarget, FixStoreState]], append: int
) -> float:
    times = []
    for _ in range(REPEATS):
        if append:
            for s in sessions:
                s.append(append)
        times.append(_cycle(pairs))
    return statistics.median(times)


def _setup(
    root: Path, n: int, mb: float
) -> tuple[list[Session], list[tuple[FixStoreTarget, FixStoreState]], float, int]:
    sessions = [Session(root, i) for i in range(n)]
    for s in sessions:
        s.append(int(mb * 1_000_000))
    total = sum(s.log.stat().st_size for s in sessions)
    pairs = [(s.target(), FixStoreState(s.target())) for s in sessions]
    first = _cycle(pairs)
    return sessions, pairs, first, total


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--mb-per-session", type=float, default=2.2)
    add_json_argument(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as big_dir, tempfile.TemporaryDirectory() as small_dir:
        big, big_pairs, first, total = _setup(Path(big_dir), args.sessions, args.mb_per_session)
        small, small_pairs, _, small_total = _setup(Path(small_dir), args.sessions, 0.02)
        print(
            f"sessions: {args.sessions}; logs: {total / 1e6:.1f} MB big, "
            f"{small_total / 1e6:.1f} MB small"
        )
        print(f"first read of every big log (full backfill): {first:.2f} s "
              f"= {total / 1e6 / first:.0f} MB/s")  # fmt: skip
        report = Report(
            "fix_store",
            f"passive FIX reader: {args.sessions} sessions, {total / 1e6:.0f} MB of logs "
            f"(small logs: {small_total / 1e6:.1f} MB); median of {REPEATS} cycles",
        )
        report.add("first read of every log (full backfill)", "MB/s", total / 1e6 / first)
        print(
            f"{'appended/session':>17} {'big logs':>10} {'small logs':>11} "
            f"{'big/small':>10} {'us/KB':>7}"
        )
        for append in (0, 10_000, 100_000, 1_000_000):
            t_big = _median_cycle(big, big_pairs, append)
            t_small = _median_cycle(small, small_pairs, append)
            per_kb = t_big / (append * args.sessions / 1000) * 1e6 if append else float("nan")
            report.add(f"cycle, {append / 1000:.0f} KB appended per session", "ms", t_big * 1000)
            if not append:
                idle = t_big / t_small
                report.add("cycle, nothing appended: big/small logs", "x", idle, ratio=False)
            print(
                f"{append / 1000:>14.0f} KB {t_big * 1000:>8.1f}ms {t_small * 1000:>9.1f}ms "
                f"{t_big / t_small:>10.2f} {per_kb:>7.2f}"
            )
        report.add("cost per KB appended (at 1 MB per session)", "us", per_kb)
        total_after = sum(s.log.stat().st_size for s in big)
        print(f"big logs at the end: {total_after / 1e6:.1f} MB (median of {REPEATS} cycles each)")
    report.write(args.json)


if __name__ == "__main__":
    main()
