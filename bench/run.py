"""Every benchmark in turn, then one table of their figures (``make bench``).

Runs each ``bench/bench_*.py`` in a process of its own (its own output is shown
as it goes), collects the figures each writes with ``--json``, and prints one
table: figure, ours, the peer's value where the bench compares with a peer, and
ours/peer, under a line that says what machine it ran on (cores, CPU, memory,
load average before and after). ``--doc`` also writes the table, as Markdown,
between the markers of that file (docs/benchmarks.md).

    python bench/run.py [--quick] [--only scale,redis] [--json F] [--doc docs/benchmarks.md]

``--quick`` runs every bench at a small size (a minute or two in all): a check
that the benches and the table work, not figures to quote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Figure, Report

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TIMEOUT_SECONDS = 1800
QUICK = "quick run (small sizes: a check that the benches work, not figures to quote)"


@dataclass(frozen=True, slots=True)
class Bench:
    """One benchmark script and the arguments of a quick run."""

    name: str
    script: str
    quick: str
    """The arguments of a quick run, separated by spaces."""


BENCHES = (
    Bench("scale", "bench_scale.py", "--streams 125 --interval 5 --scrapes 50"),
    Bench("redis", "bench_redis.py", "--scrapes 100 --rounds 2 --window 3"),
    Bench("timescale", "bench_timescale.py", "--scrapes 100 --window 5"),
    Bench(
        "kafka",
        "bench_kafka.py",
        "--groups 50 --topics 10 --partitions 12 --cycles 3 --interval 2 --scrapes 20",
    ),
    Bench("fix_store", "bench_fix_store.py", "--sessions 10 --mb-per-session 1"),
    Bench("backups", "bench_backups.py", "--file-mib 64 --manifests 300"),
    Bench("eventbus", "bench_eventbus.py", "50"),
    Bench("config", "bench_config.py", "--size-mb 1"),
)


def machine(load_before: float, quick: bool) -> str:
    """One line about where and how the figures were made."""
    model = "unknown CPU"
    mem_kb = 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    load_after = os.getloadavg()[0]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{os.cpu_count()} cores ({model}), {mem_kb / 2**20:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}; load average {load_before:.1f} before, "
        f"{load_after:.1f} after; {QUICK if quick else 'full run'}, {when}, "
        f"{revision()}"
    )


def revision() -> str:
    """The checked-out commit, marked when the tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "no git revision"
    return f"commit {head}{' + local changes' if dirty else ''}"


def run_bench(bench: Bench, quick: bool, out: Path) -> Report | str:
    """Run one bench; its report, or why there is none."""
    path = out / f"{bench.name}.json"
    cmd = [sys.executable, str(HERE / bench.script), "--json", str(path)]
    cmd += bench.quick.split() if quick else []
    print(f"== {bench.name}: {' '.join(cmd[1:])}", flush=True)
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT_SECONDS} s"
    print(f"== {bench.name}: {time.monotonic() - start:.0f} s", flush=True)
    if done.returncode != 0:
        return f"exited with {done.returncode}"
    if not path.is_file():
        return "wrote no figures"
    return Report.read(path)


def number(value: float) -> str:
    """A figure to three significant digits (thousands in full)."""
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 999.5:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def with_unit(value: float | None, unit: str) -> str:
    """``7.8 ms``; counts of series, requests and the like without their unit."""
    if value is None:
        return ""
    if unit in ("series", "requests", "canaries"):
        return number(value)
    return f"{number(value)} {unit}"


def ratio(f: Figure) -> str:
    """ours/peer, where that means something."""
    if f.peer is None or not f.ratio or f.peer == 0 or math.isnan(f.ours):
        return ""
    r = f.ours / f.peer
    return f"{r:.2g}" if r < 0.1 else f"{r:.2f}" if r < 10 else f"{r:.0f}"


def rows(reports: Sequence[Report | tuple[str, str]]) -> list[tuple[str, str, str, str] | str]:
    """Section headings (str) and figure rows (figure, ours, peer, ratio)."""
    out: list[tuple[str, str, str, str] | str] = []
    for r in reports:
        if isinstance(r, tuple):
            out.append(f"{r[0]}: FAILED ({r[1]})")
            continue
        peer = f"; peer: {r.peer}" if r.peer else ""
        out.append(f"{r.bench}: {r.title}{peer}")
        for f in r.figures:
            out.append((f.name, with_unit(f.ours, f.unit), with_unit(f.peer, f.unit), ratio(f)))
    return out


def text_table(header: str, body: list[tuple[str, str, str, str] | str]) -> str:
    """The table for a terminal."""
    lines = [*textwrap.wrap(header, 100), "ratio = ours / peer: below 1, ours costs less", ""]
    lines.append(f"{'figure':<50}{'ours':>16}{'peer':>16}{'ratio':>8}")
    for row in body:
        if isinstance(row, str):
            lines += ["", *textwrap.wrap(row, 100, subsequent_indent="    ")]
        else:
            lines.append(f"  {row[0]:<48}{row[1]:>16}{row[2]:>16}{row[3]:>8}")
    return "\n".join(lines)


def markdown_table(header: str, body: list[tuple[str, str, str, str] | str]) -> str:
    """The table for docs/benchmarks.md."""
    lines = [
        f"Measured on {header}.",
        "",
        "| figure | ours | peer | ours/peer |",
        "|---|--:|--:|--:|",
    ]
    for row in body:
        if isinstance(row, str):
            name, _, rest = row.partition(": ")
            lines.append(f"| **{name}**: {rest} | | | |")
        else:
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_doc(path: Path, table: str) -> None:
    """Replace what is between the markers of ``path`` with ``table``."""
    text = path.read_text()
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} block to write the table into")
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


def main() -> int:
    """Run the benches, print the table; exit 1 when a bench failed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: checks, not figures")
    p.add_argument(
        "--only", help="comma-separated bench names: " + ",".join(b.name for b in BENCHES)
    )
    p.add_argument("--json", metavar="PATH", help="also write every report here")
    p.add_argument("--doc", metavar="PATH", help="write the table into this Markdown file")
    args = p.parse_args()
    chosen: tuple[Bench, ...] = BENCHES
    if args.only:
        names = set(args.only.split(","))
        if unknown := names - {b.name for b in BENCHES}:
            p.error(f"unknown bench: {', '.join(sorted(unknown))}")
        chosen = tuple(b for b in BENCHES if b.name in names)
    load_before = os.getloadavg()[0]
    results: list[Report | tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tradeops-bench-") as tmp:
        for bench in chosen:
            got = run_bench(bench, args.quick, Path(tmp))
            results.append(got if isinstance(got, Report) else (bench.name, got))
    header = machine(load_before, args.quick)
    body = rows(results)
    print("\n" + text_table(header, body))
    if args.json:
        reports = [asdict(r) for r in results if isinstance(r, Report)]
        Path(args.json).write_text(json.dumps({"machine": header, "reports": reports}, indent=1))
    if args.doc:
        if args.only:
            print(f"--only: {args.doc} left as it is (it holds the table of every bench)")
        else:
            write_doc(Path(args.doc), markdown_table(header, body))
    return 1 if any(isinstance(r, tuple) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
