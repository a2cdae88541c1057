"""Properties of the config loader: whatever the file holds, ``--check-config`` exits 0
or 2, and every line it prints on stderr is ``FILE: field: problem`` (or ``FILE:
problem`` for the file as a whole) — never a traceback, never another exit code,
never a secret.

Documents are generated structures that use the real section and field names mixed
with junk keys, values of the wrong type, huge, NaN and negative numbers, unicode,
then sometimes damaged as text: a line repeated (duplicate keys), bytes spliced in
(not UTF-8), deep nesting, YAML tags, a cut in the middle. ``cli.main`` runs
in-process, so an example costs milliseconds; two examples also go through a real
``python -m exporter`` process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from exporter import cli
from exporter import config as cfg
from exporter.calendars import CalendarConfig
from exporter.kinds import KINDS

from .properties import examples

ROOT = Path(__file__).parent.parent
ENV_SECRET = "env-secret-4c1f"
"""The value of ``SECRET_ENV``: only a secret field that leaks could print it."""
SECRET_ENV = "TRADEOPS_PROPERTY_SECRET"
INLINE_SECRET = "inline-secret-b8e1"
"""Written only as the value of a ``password`` or ``token`` field (which refuse it)."""


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    """``model`` and every model its fields hold (nested settings, list items)."""
    if model in seen:
        return
    seen.add(model)
    yield model
    for info in model.model_fields.values():
        todo: list[Any] = [info.annotation]
        while todo:
            t = todo.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                yield from _models(t, seen)
            todo.extend(typing.get_args(t))


def _field_names() -> list[str]:
    roots: list[type[BaseModel]] = [cfg.GlobalConfig, cfg.ModuleConfig, CalendarConfig]
    roots += [kind.target_model for kind in KINDS.values()]
    seen: set[type[BaseModel]] = set()
    names = {
        info.alias or name
        for root in roots
        for model in _models(root, seen)
        for name, info in model.model_fields.items()
    }
    return sorted(names | set(cfg.SECTIONS))


FIELDS = _field_names()
PLAUSIBLE = [
    "15s", "500ms", "0", "0s", "-1s", "1e400", "1h", "2m", ".nan", "10GiB", "16MiB",
    "64KiB", "127.0.0.1:6379", "[::1]:5432", "localhost", "host:99999", "a:b@h:1",
    "redis://u:p@h:1/0", "http://127.0.0.1:1/health", "${" + SECRET_ENV + "}",
    "${TRADEOPS_PROPERTY_UNSET}", "/", "/dev/null", "/nonexistent/x", __file__,
    ".*", "(", "a[", "redis", "fix", "kafka", "timescale", "always", "xnys", "XNYS",
    "America/New_York", "Mars/Olympus", "09:30", "25:00", "2026-02-30", "FIX.4.4", "FIX.9",
    "mon", "sun", "gauge", "counter", "seconds", "timestamp", "ok", "unknown", "sha256",
    "require", "PLAIN", "SCRAM-SHA-512", "topic", "group", "name.with:odd-chars",
]  # fmt: skip
"""Values the real fields take (and near misses), so validation gets past the types."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.text(max_size=16),
    st.sampled_from(PLAUSIBLE),
)
secrets = st.sampled_from([INLINE_SECRET, "${" + SECRET_ENV + "}", "${TRADEOPS_PROPERTY_UNSET}"])
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def _target(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = KINDS[kind].target_model.model_fields
    optional = {info.alias or name: values for name, info in fields.items() if name != "name"}
    optional["junk"] = values
    for secret in ("password", "token"):
        if secret in optional:
            optional[secret] = values | secrets
    return st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b", "c", "x y", ""])}, optional=optional
    )


modules = st.dictionaries(
    st.sampled_from(["m", "n", "bad name"]),
    st.fixed_dictionaries(
        {"kind": st.sampled_from([*KINDS, "nope"])},
        optional={
            "allowed_targets": st.lists(st.sampled_from([".*", "(", "a.*"]), max_size=2),
            "timeout": values,
            "params": st.dictionaries(keys, values, max_size=4),
        },
    ),
    max_size=2,
)
calendars = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["xnys", "always", "c"])},
        optional={
            "timezone": values,
            "exchange": values,
            "sessions": st.lists(
                st.fixed_dictionaries(
                    {"days": st.lists(values, max_size=2), "open": values, "close": values}
                ),
                max_size=2,
            ),
            "holidays": values,
            "early_closes": values,
            "warmup": values,
        },
    ),
    max_size=2,
)
sections: dict[Any, st.SearchStrategy[Any]] = {
    kind: st.lists(_target(kind), max_size=2) | values for kind in KINDS
}
sections |= {
    "global": st.dictionaries(st.sampled_from(["interval", "timeout", "x"]), values) | values,
    "calendars": calendars | values,
    "modules": modules | values,
    "allow_empty": values,
}
documents = st.one_of(
    st.fixed_dictionaries({}, optional=sections),
    st.dictionaries(keys, values, max_size=4),
    values,
)

TAGS = [
    "!!python/object/apply:os.system ['true']", "!!binary", "!!set", "!!omap", "!!int",
    "!!float", "!!timestamp", "!!str", "!!null", "!local", "!<tag:x,2000:y>", "*undefined",
    "&anchor", "<<:",
]  # fmt: skip


@st.composite
def damaged(draw: st.DrawFn, text: str) -> bytes:
    """``text`` as bytes, sometimes damaged the way a hand-edited file gets damaged."""
    data = text.encode()
    how = draw(
        st.sampled_from(["none", "repeat", "splice", "cut", "tag", "digits", "nest", "indent"])
    )
    at = draw(st.integers(0, len(data)))
    if how == "repeat":  # a key given twice (or a sequence item twice)
        lines = data.splitlines(keepends=True) or [b"x: 1\n"]
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i + 1, lines[i] if lines[i].endswith(b"\n") else lines[i] + b"\n")
        return b"".join(lines)
    if how == "splice":  # not UTF-8, control characters, a BOM in the middle
        return data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    if how == "cut":
        return data[:at]
    if how == "tag":
        return data[:at] + draw(st.sampled_from(TAGS)).encode() + b" " + data[at:]
    if how == "digits":  # more than Python converts to an int (4,300 digits)
        return data[:at] + b"9" * draw(st.integers(4000, 6000)) + data[at:]
    depth = draw(st.integers(900, 3000))
    if how == "nest":
        return data[:at] + b"[" * depth + b"]" * depth + data[at:]
    if how == "indent":
        return b"".join(b" " * i + b"k:\n" for i in range(depth // 3)) + data
    return data


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    """The bytes of a config file: a dumped document (maybe damaged), or raw bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    doc = draw(documents)
    flow = draw(st.sampled_from([False, True, None]))
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, default_flow_style=flow)
    return draw(damaged(text))


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """stdout and stderr captured; the root logger (which ``main`` sets up) restored."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _check_config(path: Path) -> tuple[int, str, str]:
    """``--check-config`` in-process: (exit code, stdout, stderr)."""
    with _captured() as (out, err):
        code = cli.main(["--config", str(path), "--check-config"])
    return code, out.getvalue(), err.getvalue()


def _assert_well_formed(path: Path, code: int, stdout: str, stderr: str) -> None:
    assert code in (0, 2), (code, stderr)
    assert ENV_SECRET not in stdout + stderr
    assert INLINE_SECRET not in stdout + stderr
    if code == 0:
        assert stderr == ""
        assert stdout.startswith(f"{path}: ok (")
        return
    lines = stderr.splitlines()
    assert lines, "exit 2 without a message"
    for line in lines:
        assert line.startswith(f"{path}: "), line
        assert line.removeprefix(f"{path}: ").strip(), line
        assert line.isprintable(), line


@examples(200, deadline_ms=5000)
@given(config_files())
@example(b"{!!timestamp }\n")  # AttributeError out of PyYAML's constructor: a traceback
@example(b"{!!int }\n")  # IndexError, likewise (and !!float, !!bool x: KeyError)
@example(b"redis: [{name: a, address: '1:1', password: !!int " + INLINE_SECRET.encode() + b"}]")
@example(b'eventbus:\n- name: a\n  token_file: "\\x1E"\n')  # a path that breaks the line
def test_any_file_gives_exit_0_or_2_with_file_field_problem_lines(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yml"
        path.write_bytes(data)
        os.environ[SECRET_ENV] = ENV_SECRET
        try:
            code, stdout, stderr = _check_config(path)
        finally:
            del os.environ[SECRET_ENV]
        _assert_well_formed(path, code, stdout, stderr)


def test_two_documents_through_a_real_process(tmp_path: Path) -> None:
    """The in-process run is what the property exercises; this shows the process
    behaves the same (exit code, stderr lines) for a bad and a good document."""
    bad = tmp_path / "bad.yml"
    bad.write_bytes(b"redis:\n  - {name: a, address: 1.0e999, interval: .nan}\n  - \xff\n")
    good = tmp_path / "good.yml"
    good.write_text("allow_empty: true\nredis: []\n")
    for path in (bad, good):
        want = _check_config(path)
        proc = subprocess.run(
            [sys.executable, "-m", "exporter", "--config", str(path), "--check-config"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert (proc.returncode, proc.stdout, proc.stderr) == want
        _assert_well_formed(path, *want)
