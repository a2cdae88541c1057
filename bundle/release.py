"""The monitoring bundle as one versioned, reproducible release archive.

    python -m bundle.release [--out DIR]

writes ``DIR/tradeops-bundle-<VERSION>.tar.gz`` (default ``dist/``; VERSION from
``rules/VERSION``) holding, under ``tradeops-bundle-<VERSION>/``: the rule files,
the Alertmanager config and templates, the built dashboards when
``dashboards/build/`` exists, the runbooks, the alert index, the bundle docs,
the changelog, ``VERSION`` and a ``MANIFEST`` with the sha256 of every other
file (``sha256sum -c MANIFEST`` in the top directory verifies them).

The same inputs give a byte-identical archive: entries in name order, fixed
modes, owner 0/0 without names, every mtime ``SOURCE_DATE_EPOCH`` (default 0),
and a gzip header without a name or time. The archive is refused (exit 1)
while the committed rule files differ from a fresh build of their sources.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .build import ROOT, stale

NAME = "tradeops-bundle"

_PATTERNS: tuple[tuple[str, str], ...] = (
    ("rules", "*.yml"),
    ("alertmanager", "alertmanager.yml"),
    ("alertmanager/templates", "*"),
    ("dashboards/build", "*.json"),
    ("docs/runbooks", "*.md"),
    ("docs", "alerts.md"),
    ("docs", "bundle.md"),
    ("docs", "alerting.md"),
    ("docs", "contract.md"),
    (".", "CHANGELOG.md"),
)
"""(directory, glob) under the tree: what the archive holds besides VERSION and
MANIFEST. A directory that does not exist (``dashboards/build`` before
``make dashboards``) contributes nothing."""

_REQUIRED = ("rules", "alertmanager/alertmanager.yml", "docs/runbooks", "CHANGELOG.md")


class ReleaseError(Exception):
    """The archive cannot be built (stale rules, missing inputs)."""


@dataclass(frozen=True)
class Archive:
    """A written archive: its path and the files it holds (MANIFEST included)."""

    path: Path
    members: tuple[str, ...]

    @property
    def size(self) -> int:
        """Bytes on disk."""
        return self.path.stat().st_size


def version(root: Path = ROOT) -> str:
    """The bundle version, ``rules/VERSION``."""
    text = (root / "rules" / "VERSION").read_text(encoding="utf-8").strip()
    if not text or any(c.isspace() or c == "/" for c in text):
        raise ReleaseError(f"{root / 'rules' / 'VERSION'}: not a version: {text!r}")
    return text


def collect(root: Path = ROOT) -> dict[str, bytes]:
    """Path inside the top directory -> content, for every file the archive holds
    (MANIFEST excluded), in name order."""
    for required in _REQUIRED:
        if not (root / required).exists():
            raise ReleaseError(f"{root / required}: missing")
    files: dict[str, bytes] = {"VERSION": (version(root) + "\n").encode()}
    for directory, pattern in _PATTERNS:
        base = root / directory
        if not base.is_dir():
            continue
        for path in base.glob(pattern):
            if path.is_file():
                name = path.relative_to(root).as_posix()
                files[name] = path.read_bytes()
    return dict(sorted(files.items()))


def manifest(files: dict[str, bytes]) -> bytes:
    """``sha256sum``-format lines (``<hex>  <path>``), one per file, in name order."""
    lines = (
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    )
    return "".join(lines).encode()


def _mtime() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        return int(value)
    except ValueError as exc:
        raise ReleaseError(f"SOURCE_DATE_EPOCH: not a number of seconds: {value!r}") from exc


def _dirs(names: Iterable[str]) -> list[str]:
    """Every parent directory of the names (not the names themselves)."""
    found: set[str] = set()
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            found.add("/".join(parts[:i]))
    return sorted(found)


def tar_gz(top: str, files: dict[str, bytes], mtime: int = 0) -> bytes:
    """A gzip-compressed tar of ``files`` under ``top/``, the same bytes for the same
    input."""

    def info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.mtime = kind, mode, size, mtime
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info(top, tarfile.DIRTYPE, 0o755))
        entries = [(d, None) for d in _dirs(files)] + list(files.items())
        for name, data in sorted(entries, key=lambda e: e[0]):
            if data is None:
                tar.addfile(info(f"{top}/{name}", tarfile.DIRTYPE, 0o755))
            else:
                tar.addfile(
                    info(f"{top}/{name}", tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data)
                )
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_archive(root: Path = ROOT, out: Path | None = None) -> Archive:
    """Check the tree's rule files against a fresh build, then write the archive
    into ``out`` (default ``<root>/dist``)."""
    problems = stale(root / "rules")
    if problems:
        raise ReleaseError(
            "the committed rules differ from a fresh build of their sources "
            f"({', '.join(problems)}): run make rules and commit the result"
        )
    ver = version(root)
    top = f"{NAME}-{ver}"
    files = collect(root)
    files["MANIFEST"] = manifest(files)
    data = tar_gz(top, files, _mtime())
    out = out if out is not None else root / "dist"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{top}.tar.gz"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return Archive(path, tuple(sorted(files)))


def main(argv: list[str] | None = None) -> int:
    """The command line: 0 when written, 1 when refused."""
    parser = argparse.ArgumentParser(
        prog="python -m bundle.release", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--out", type=Path, help="output directory (default dist/)")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the tree to package (default this repository)"
    )
    args = parser.parse_args(argv)
    try:
        archive = build_archive(args.root.resolve(), args.out)
    except (ReleaseError, OSError) as exc:
        print(f"bundle.release: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {archive.path} ({len(archive.members)} files, {archive.size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
