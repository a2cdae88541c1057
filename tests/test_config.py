"""Config validation: one bad file per error class, each with its exact message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter import config as cfg
from exporter.config import ConfigError
from exporter.kinds import KINDS

FIXTURES = Path(__file__).parent / "fixtures" / "config"
BAD = sorted((FIXTURES / "bad").glob("*.yml"))
ROOT = Path(__file__).parent.parent
LOADERS = sorted(cfg.YAML_LOADERS)
PYTHON_LOADER_EXPECTS = "# expect with the python loader: "


def _expected(path: Path, loader: str = cfg.DEFAULT_LOADER) -> str:
    """The ``# expect:`` line (bytes: some fixtures are not UTF-8 on purpose); a
    second line gives the pure-Python loader's wording where it differs. ``{kinds}``
    stands for the registered kinds, in registry order (a new kind edits no fixture)."""
    first, second = (
        line.decode() for line in path.read_bytes().splitlines()[:2]
    )  # the comment lines are ASCII
    assert first.startswith("# expect: ")
    if loader == "python" and second.startswith(PYTHON_LOADER_EXPECTS):
        return second.removeprefix(PYTHON_LOADER_EXPECTS)
    return first.removeprefix("# expect: ").replace("{kinds}", ", ".join(KINDS))


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_names_file_field_and_problem(path: Path, loader: str) -> None:
    with pytest.raises(ConfigError) as err:
        cfg.load(path, loader=loader)
    assert err.value.lines() == [f"{path}: {_expected(path, loader)}"]


@pytest.mark.parametrize("loader", LOADERS)
def test_merge_keys_and_aliases_are_not_duplicates(loader: str) -> None:
    text = """\
redis:
  - &a {name: a, address: "127.0.0.1:1", interval: 5s}
  - <<: *a
    name: b
  - {<<: [*a], name: c, interval: 7s}
"""
    config = cfg.parse(text, "c.yml", loader=loader)
    assert [(t.name, t.interval_s) for t in config.targets["redis"]] == [
        ("a", 5.0),
        ("b", 5.0),
        ("c", 7.0),
    ]


def test_allow_empty_is_read() -> None:
    assert cfg.parse("allow_empty: true\n").allow_empty
    assert not cfg.parse("").allow_empty
    assert not cfg.parse("# all targets moved to the new exporter\n").allow_empty


def test_every_problem_is_reported_at_once() -> None:
    text = """
redis:
  - {name: a, address: "127.0.0.1:1", interval: 2s, timeout: 3s}
  - {name: a, address: "127.0.0.1:2"}
"""
    with pytest.raises(ConfigError) as err:
        cfg.parse(text, "c.yml")
    assert err.value.lines() == [
        "c.yml: redis[0].timeout: must be shorter than the interval (2s)",
        "c.yml: redis[1].name: duplicate target name 'a' (also redis[0])",
    ]


def test_defaults_fill_in_and_secrets_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\n")
    monkeypatch.setenv("TRADEOPS_TEST_PW", "from-env")
    config = cfg.parse(f"""
global: {{interval: 30s, timeout: 4s}}
redis:
  - {{name: a, address: "127.0.0.1:1", password: "${{TRADEOPS_TEST_PW}}"}}
  - {{name: b, address: "127.0.0.1:2", password_file: {pw_file}, interval: 2s}}
""")
    a, b = config.targets["redis"]
    assert (a.interval_s, a.timeout_s) == (30.0, 4.0)
    assert (b.interval_s, b.timeout_s) == (2.0, 2.0)  # timeout capped by a shorter interval
    assert a.password_value() == "from-env"  # type: ignore[attr-defined]
    assert b.password_value() == "from-file"  # type: ignore[attr-defined]
    assert "from-env" not in repr(a) and "from-file" not in repr(b)


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "example")
    config = cfg.load(ROOT / "examples" / "config.yml")
    assert config.targets["redis"][0].name == "cache-primary"
    assert config.modules["redis"].allows("10.20.1.7:6379")
    assert not config.modules["redis"].allows("10.20.1.7:6379.evil")
    assert [c.name for c in config.calendars] == ["xnys"]
    assert config.targets["redis"][0].calendar == "xnys"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_check_config_exits_2_with_the_message() -> None:
    bad = FIXTURES / "bad" / "timeout_not_shorter.yml"
    out = _cli("--config", str(bad), "--check-config")
    assert out.returncode == 2
    assert out.stderr.strip() == f"{bad}: {_expected(bad)}"


def test_check_config_names_the_file_of_non_utf8_text() -> None:
    bad = FIXTURES / "bad" / "not_utf8.yml"
    out = _cli("--config", str(bad), "--check-config")
    assert out.returncode == 2
    assert out.stderr.strip() == f"{bad}: line 3 column 15: not UTF-8 text"


def test_check_config_accepts_the_example() -> None:
    out = _cli("--config", "examples/config.yml", "--check-config", env={"REDIS_PASSWORD": "x"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "examples/config.yml: ok (1 targets, 1 modules)"
