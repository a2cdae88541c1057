"""The release archive (bundle/release.py): what it holds, its manifest, that it is
reproducible, that it includes built dashboards when they exist, and that it is
refused while the committed rules are stale."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bundle.build import ROOT
from bundle.release import ReleaseError, build_archive, version

VERSION = version()
TOP = f"tradeops-bundle-{VERSION}"


def _tree(dest: Path) -> Path:
    """A copy of the repository's bundle inputs (what the archive reads)."""
    for rel in ("rules", "alertmanager", "docs"):
        shutil.copytree(ROOT / rel, dest / rel, ignore=shutil.ignore_patterns("src", "tests"))
    shutil.copy(ROOT / "CHANGELOG.md", dest / "CHANGELOG.md")
    return dest


def _members(path: Path) -> dict[str, bytes]:
    """File name (without the top directory) -> content; checks every entry's owner,
    mode and time."""
    out: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as tar:
        for m in tar.getmembers():
            assert m.name == TOP or m.name.startswith(f"{TOP}/"), m.name
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0), m.name
            if m.isfile():
                assert m.mode == 0o644, m.name
                f = tar.extractfile(m)
                assert f is not None
                out[m.name.removeprefix(f"{TOP}/")] = f.read()
            else:
                assert m.isdir() and m.mode == 0o755, m.name
    return out


def _check_manifest(files: dict[str, bytes]) -> None:
    lines = files["MANIFEST"].decode().splitlines()
    listed = {}
    for line in lines:
        digest, name = line.split("  ", 1)
        listed[name] = digest
    assert [line.split("  ", 1)[1] for line in lines] == sorted(listed)
    assert set(listed) == set(files) - {"MANIFEST"}
    for name, digest in listed.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name


def test_repository_archive_holds_the_bundle_and_is_reproducible(tmp_path: Path) -> None:
    first = build_archive(out=tmp_path / "a")
    second = build_archive(out=tmp_path / "b")
    assert first.path.name == f"{TOP}.tar.gz"
    assert first.path.read_bytes() == second.path.read_bytes()
    data = first.path.read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    files = _members(first.path)
    assert set(files) == set(first.members)
    _check_manifest(files)
    assert files["VERSION"].decode() == VERSION + "\n"
    expected = {f"rules/{p.name}" for p in (ROOT / "rules").glob("*.yml")}
    expected |= {f"docs/runbooks/{p.name}" for p in (ROOT / "docs" / "runbooks").glob("*.md")}
    expected |= {
        f"alertmanager/templates/{p.name}" for p in (ROOT / "alertmanager/templates").iterdir()
    }
    expected |= {"alertmanager/alertmanager.yml", "CHANGELOG.md", "VERSION", "MANIFEST"}
    expected |= {f"docs/{n}.md" for n in ("alerts", "bundle", "alerting", "contract")}
    if (ROOT / "dashboards" / "build").is_dir():
        expected |= {
            f"dashboards/build/{p.name}" for p in (ROOT / "dashboards/build").glob("*.json")
        }
    assert set(files) == expected
    for name in expected - {"VERSION", "MANIFEST"}:
        assert files[name] == (ROOT / name).read_bytes(), name
    print(f"\nrelease archive: {len(files)} files, {len(data)} bytes")


def test_sha256sum_verifies_the_extracted_archive(tmp_path: Path) -> None:
    archive = build_archive(out=tmp_path)
    with tarfile.open(archive.path, "r:gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    out = subprocess.run(
        ["sha256sum", "-c", "--strict", "MANIFEST"],
        cwd=tmp_path / "x" / TOP,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": OK") == len(archive.members) - 1


def test_built_dashboards_are_included_when_present(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    without = _members(build_archive(tree, tmp_path / "without").path)
    assert not any(n.startswith("dashboards/") for n in without)
    build = tree / "dashboards" / "build"
    build.mkdir(parents=True)
    (build / "overview.json").write_text('{"uid": "tradeops-overview"}\n')
    (build / "notes.txt").write_text("not a dashboard\n")
    with_dash = _members(build_archive(tree, tmp_path / "with").path)
    assert set(with_dash) - set(without) == {"dashboards/build/overview.json"}
    assert with_dash["dashboards/build/overview.json"] == b'{"uid": "tradeops-overview"}\n'
    _check_manifest(with_dash)
    assert with_dash["MANIFEST"] != without["MANIFEST"]


def test_the_same_inputs_in_another_tree_give_the_same_bytes(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    for path in tree.rglob("*"):  # other mtimes and modes must not matter
        path.touch()
        if path.is_file():
            path.chmod(0o600)
    copy = build_archive(tree, tmp_path / "copy")
    repo = build_archive(out=tmp_path / "repo")
    if not (ROOT / "dashboards" / "build").is_dir():
        assert copy.path.read_bytes() == repo.path.read_bytes()
    assert copy.members == tuple(m for m in repo.members if not m.startswith("dashboards/"))


def test_stale_rules_refuse_the_archive(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    rule = tree / "rules" / "redis.yml"
    rule.write_text(rule.read_text() + "# edited by hand\n")
    (tree / "rules" / "extra.yml").write_text("groups: []\n")
    out = subprocess.run(
        [sys.executable, "-m", "bundle.release", "--root", str(tree), "--out", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == ""
    assert "differ from a fresh build" in out.stderr
    assert "redis.yml" in out.stderr and "extra.yml" in out.stderr
    assert "make rules" in out.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_command_line_writes_into_out(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bundle.release", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    path = tmp_path / f"{TOP}.tar.gz"
    assert out.stdout.startswith(f"wrote {path} (")
    assert path.is_file()


@pytest.mark.parametrize("bad", ["", "1.0 beta", "../x"])
def test_a_bad_version_is_refused(tmp_path: Path, bad: str) -> None:
    tree = _tree(tmp_path / "tree")
    (tree / "rules" / "VERSION").write_text(bad + "\n")
    with pytest.raises(ReleaseError, match="not a version"):
        build_archive(tree, tmp_path / "d")
