"""Backup probe cost per run: checksum verification under its byte budget, and a
directory of many manifests (first run vs. steady state with the parse cache).

Prints medians; compares hashing throughput with coreutils ``sha256sum`` on the
same file. Not run by pytest:
``.venv/bin/python bench/bench_backups.py [--file-mib 256] [--manifests 2000] [--json F]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Report, add_json_argument, median
from exporter.kinds.backups import KIND, BackupTarget
from exporter.kinds.backups.probe import BackupState
from exporter.probe import ProbeContext
from stack.backups import write_manifest

MiB = 1 << 20
FILE_MIB = 256
BUDGET_MIB = 64
MANIFESTS = 2000
REPORT = Report("backups", "")


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _run(target: BackupTarget, state: BackupState) -> tuple[float, float, int]:
    ctx = ProbeContext(state, asyncio.get_running_loop().time() + 60, time.time)
    wall, cpu = time.perf_counter(), _cpu()
    result = await KIND.probe(target, ctx)
    return time.perf_counter() - wall, _cpu() - cpu, len(result.samples)


def make_big(directory: Path, file_mib: int) -> Path:
    dump = directory / "big.dump"
    with dump.open("wb") as fh:
        for _ in range(file_mib):
            fh.write(os.urandom(MiB))
    write_manifest(dump, time.time() - 60, time.time())
    return dump


async def bench_checksum(directory: Path, file_mib: int) -> tuple[list[float], list[float]]:
    target = BackupTarget.model_validate(
        {
            "name": "bench",
            "interval": 60,
            "timeout": 30,
            "source": {"type": "directory", "path": str(directory)},
            "checksum": {"bytes_per_run": BUDGET_MIB * MiB, "reverify_after": 0.001},
        }
    )
    state = BackupState(target)
    walls, cpus = [], []
    for _ in range(max(5, 5 * file_mib // BUDGET_MIB)):  # five full verifications
        wall, cpu, _ = await _run(target, state)
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def report_checksum(dump: Path, walls: list[float], cpus: list[float]) -> None:
    refs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(["sha256sum", str(dump)], check=True, capture_output=True)
        refs.append(time.perf_counter() - start)
    ref = median(refs)
    ours = statistics.median(walls)
    file_mib = dump.stat().st_size / MiB
    hashed = min(BUDGET_MIB, file_mib)
    REPORT.add("checksum run (wall)", "ms", 1000 * ours)
    REPORT.add("checksum run (CPU)", "ms", 1000 * median(cpus))
    REPORT.add("hash time per MiB (theirs: sha256sum)", "ms", 1000 * ours / hashed,
               1000 * ref / file_mib)  # fmt: skip
    print(f"checksum: {file_mib:.0f} MiB file, budget {BUDGET_MIB} MiB/run")
    print(
        f"  per run: median {ours * 1000:.0f} ms wall, {statistics.median(cpus) * 1000:.0f} ms CPU"
    )
    print(f"  throughput {hashed / ours:.0f} MiB/s; sha256sum {file_mib / ref:.0f} MiB/s")
    print(f"  ratio ours/sha256sum throughput: {(hashed / ours) / (file_mib / ref):.2f}")


def make_manifests(directory: Path, count: int) -> None:
    now = time.time()
    for i in range(count):
        f = directory / f"b{i:05d}.dump"
        f.write_bytes(b"x" * 64)
        write_manifest(f, now - i * 3600 - 60, now - i * 3600, kind=("full", "diff", "incr")[i % 3])


async def bench_manifests(directory: Path, count: int) -> None:
    target = BackupTarget.model_validate(
        {
            "name": "bench",
            "interval": 60,
            "timeout": 30,
            "source": {"type": "directory", "path": str(directory)},
        }
    )
    state = BackupState(target)
    first, _, series = await _run(target, state)
    steady = [await _run(target, state) for _ in range(20)]
    print(f"manifests: {count} backups, {series} series")
    REPORT.add("manifests: first run (parses every one)", "ms", 1000 * first)
    REPORT.add("manifests: steady run (listing + stat)", "ms",
               1000 * median([w for w, _, _ in steady]))  # fmt: skip
    print(f"  first run {first * 1000:.0f} ms (reads and parses every manifest)")
    print(
        f"  steady run: median {statistics.median(w for w, _, _ in steady) * 1000:.1f} ms wall, "
        f"{statistics.median(c for _, c, _ in steady) * 1000:.1f} ms CPU (listing + stat only)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--file-mib", type=int, default=FILE_MIB, help="size of the checked dump")
    p.add_argument("--manifests", type=int, default=MANIFESTS)
    add_json_argument(p)
    args = p.parse_args()
    REPORT.title = (
        f"checksums: a {args.file_mib} MiB dump under a {BUDGET_MIB} MiB/run budget; "
        f"a directory of {args.manifests} manifests"
    )
    REPORT.peer = "coreutils sha256sum"
    with tempfile.TemporaryDirectory() as tmp:
        big, many = Path(tmp, "big"), Path(tmp, "many")
        big.mkdir()
        many.mkdir()
        dump = make_big(big, args.file_mib)
        walls, cpus = asyncio.run(bench_checksum(big, args.file_mib))
        report_checksum(dump, walls, cpus)
        make_manifests(many, args.manifests)
        asyncio.run(bench_manifests(many, args.manifests))
    REPORT.write(args.json)


if __name__ == "__main__":
    main()
