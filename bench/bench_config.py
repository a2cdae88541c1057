"""Loading a large configuration: libyaml's safe loader against the pure-Python one.

Writes a config of about ``--size-mb`` MB (Redis targets with two heartbeat keys
each), then loads it with ``exporter.config.load`` once per loader, each in a fresh
process so that its peak RSS is its own. Prints the file size and target count,
and per loader the load time (YAML, duplicate-key check and validation) and the
peak RSS, then how long the duplicate-key check alone takes on the composed file.

    python bench/bench_config.py [--size-mb 10] [--json F]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Report, add_json_argument
from exporter import config as cfg
from exporter.config_file import duplicate_keys


def target(i: int) -> str:
    """One Redis target of about 225 bytes."""
    return (
        f"  - name: cache-{i:06d}\n"
        f'    address: "10.20.{i // 250 % 256}.{i % 250}:6379"\n'
        "    interval: 15s\n    timeout: 5s\n    heartbeats:\n"
        f'      - {{name: risk, key: "hb:risk:{i}", max_gap: 60s}}\n'
        f'      - {{name: pricing, key: "hb:pricing:{i}", max_gap: 30s}}\n'
    )


def write_config(path: Path, size: int) -> int:
    """A config of at least ``size`` bytes; returns the number of targets."""
    parts, length, n = ["redis:\n"], 7, 0
    while length < size:
        parts.append(target(n))
        length += len(parts[-1])
        n += 1
    path.write_text("".join(parts))
    return n


def child(mode: str, loader: str, path: str) -> None:
    """In a fresh process: time one load (or the duplicate-key check), print JSON."""
    start = time.perf_counter()
    if mode == "load":
        targets = len(cfg.load(path, loader=loader).all_targets())
    else:
        reader = cfg.YAML_LOADERS[loader](Path(path).read_text())
        node = reader.get_single_node()
        start = time.perf_counter()
        targets = len(duplicate_keys(node))  # no duplicates: 0
        reader.dispose()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": peak, "targets": targets}))


def measure(mode: str, loader: str, path: Path) -> dict[str, float]:
    """Run ``child`` in a subprocess."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, loader, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    """Write the config, load it with every loader, print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=float, default=10.0)
    add_json_argument(p)
    p.add_argument("--child", nargs=3, metavar=("MODE", "LOADER", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-config-") as tmp:
        path = Path(tmp) / "config.yml"
        n = write_config(path, int(args.size_mb * 1e6))
        print(f"config: {path.stat().st_size / 1e6:.1f} MB, {n:,} targets")
        print(f"{'loader':<10} {'load':>8} {'peak RSS':>10}")
        results = {}
        for loader in sorted(cfg.YAML_LOADERS, key=lambda name: name != "python"):
            r = results[loader] = measure("load", loader, path)
            assert r["targets"] == n
            print(f"{loader:<10} {r['seconds']:>7.1f}s {r['peak_rss'] / 2**20:>7.0f} MiB")
        if "libyaml" in results:
            py, c = results["python"], results["libyaml"]
            print(
                f"libyaml/python: time {c['seconds'] / py['seconds']:.2f}, "
                f"peak RSS {c['peak_rss'] / py['peak_rss']:.2f}"
            )
        check = measure("dupcheck", cfg.DEFAULT_LOADER, path)
        print(f"duplicate-key check alone: {check['seconds']:.2f}s")
        size = path.stat().st_size / 1e6
    report = Report(
        "config",
        f"loading a {size:.1f} MB config ({n:,} Redis targets), each loader in a fresh process",
        peer="PyYAML's pure-Python loader",
    )
    ours = results[cfg.DEFAULT_LOADER]
    peer = results["python"] if cfg.DEFAULT_LOADER != "python" else None
    report.add(
        f"load ({cfg.DEFAULT_LOADER})", "s", ours["seconds"], peer["seconds"] if peer else None
    )
    report.add(
        f"peak RSS ({cfg.DEFAULT_LOADER})", "MiB", ours["peak_rss"] / 2**20,
        peer["peak_rss"] / 2**20 if peer else None,
    )  # fmt: skip
    report.add("duplicate-key check alone", "s", check["seconds"])
    report.write(args.json)


if __name__ == "__main__":
    main()
