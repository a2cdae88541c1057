"""Reading a configuration file: its text (UTF-8), its one YAML document, and the
errors, each naming the file, the field path and the problem
(``FILE: path.to.field: problem``), that the CLI prints before it exits 2.

The document is read with libyaml's safe loader when PyYAML has it (on a 10 MB file
about 3x faster than the pure-Python one, with a quarter less peak memory:
``bench/bench_config.py``); a key given twice in one mapping is an error naming both
lines, whichever loader reads it. Nothing here knows the probe kinds, so a file of
another format (the web config) is read without importing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .redact import bounded


class ConfigError(Exception):
    """Invalid configuration; ``problems`` are ``(field path, message)`` pairs."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One ``FILE: field: problem`` line per problem; whatever a validator put in
        the text (a path with a newline in it), it stays one bounded line."""
        return [
            f"{self.path}: {bounded(loc)}: {bounded(msg)}"
            if loc
            else f"{self.path}: {bounded(msg)}"
            for loc, msg in self.problems
        ]


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.isprintable() or any(c.isspace() for c in part):
            out += f"[{part!r}]"  # a key that would break the line or the path
        else:
            out += ("." if out else "") + ("global" if part == "global_" else part)
    return out


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def pydantic_problems(
    err: ValidationError, top_level: list[str] | None = None
) -> list[tuple[str, str]]:
    """Turn pydantic errors into (field path, message) pairs, never echoing input."""
    problems = []
    for e in err.errors(include_url=False, include_input=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        msg = _MESSAGES.get(e["type"], e["msg"])
        if e["type"] == "extra_forbidden" and len(loc) == 1 and top_level is not None:
            msg = f"unknown section; expected one of {', '.join(top_level)}"
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        problems.append((_loc(loc), msg))
    return problems


class _ValueProblem(yaml.constructor.ConstructorError):
    """A scalar YAML reads but Python cannot hold (``2026-02-30``, a 5,000-digit int)."""


class _ValueChecks:
    """Turns the error of a scalar constructor into a YAML error at its node.

    Explicit tags reach constructors with text they do not expect (``!!int ""``
    raises IndexError, ``!!timestamp x`` AttributeError, ``!!bool x`` KeyError).
    The error's text is kept only when it does not quote the value."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, OverflowError, IndexError, AttributeError, KeyError) as exc:
            raise _ValueProblem(None, None, _value_problem(node, exc), node.start_mark) from None


def _value_problem(node: yaml.Node, exc: Exception) -> str:
    detail = str(exc)
    if isinstance(exc, ValueError | OverflowError) and not any(q in detail for q in "'\""):
        return f"cannot read this value: {detail}"
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return f"cannot read this value as {tag if tag.isprintable() else 'its tag'}"


def _loader(base: type[Any]) -> type[Any]:
    doc = f"{base.__name__}, with the value errors of a scalar as YAML errors."
    return type(f"Config{base.__name__}", (_ValueChecks, base), {"__doc__": doc})


YAML_LOADERS: dict[str, type[Any]] = {"python": _loader(yaml.SafeLoader)}
"""The safe YAML loaders available, by name: ``libyaml`` (when PyYAML was built
with it) and ``python``. Both report the same duplicate keys (``duplicate_keys``)."""
if getattr(yaml, "__with_libyaml__", False):
    YAML_LOADERS["libyaml"] = _loader(yaml.CSafeLoader)
DEFAULT_LOADER = "libyaml" if "libyaml" in YAML_LOADERS else "python"
"""The loader ``parse`` and ``load`` use unless told otherwise."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _line(mark: Any, other: Any) -> str:
    """``line N`` (with the column when ``other`` is on the same line)."""
    if mark.line == other.line:
        return f"line {mark.line + 1} column {mark.column + 1}"
    return f"line {mark.line + 1}"


def duplicate_keys(root: yaml.Node) -> list[tuple[str, str]]:
    """Every key given twice in one mapping, as (field path, problem), in file order.

    Checked on the composed nodes, before construction, so it is the same for both
    loaders and cannot confuse a merge key (``<<: *base``) with a duplicate. Each
    node is visited once, at its first (anchored) place, however many aliases point
    at it."""
    found: list[tuple[tuple[int, int], str, str]] = []
    visited: set[int] = set()
    todo: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(root, ())]
    while todo:
        node, parts = todo.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        children: list[tuple[yaml.Node, tuple[int | str, ...]]] = []
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], yaml.Node] = {}
            for key, item in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    children.append((item, parts))
                    continue
                where = (*parts, key.value)
                seen = first.setdefault((key.tag, key.value), key)
                if seen is not key:
                    a, b = seen.start_mark, key.start_mark
                    problem = f"duplicate key: first on {_line(a, b)}, again on {_line(b, a)}"
                    found.append(((b.line, b.column), _loc(where), problem))
                children.append((item, where))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*parts, i)) for i, item in enumerate(node.value)]
        todo.extend(reversed(children))  # depth first, in file order
    return [(loc, problem) for _, loc, problem in sorted(found)]


def _syntax_error(exc: yaml.YAMLError, text: str, loader: str) -> str:
    """One line: where (when known) and what, never the offending text."""
    if isinstance(exc, yaml.reader.ReaderError):
        # a character index into the text, or (libyaml) a byte offset into its UTF-8
        if loader == "libyaml":
            before = text.encode("utf-8")[: exc.position].decode("utf-8", "replace")
        else:
            before = text[: exc.position]
        line = before.count("\n") + 1
        column = len(before) - before.rfind("\n")
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return (
            f"line {line} column {column}: YAML syntax error: "
            f"unacceptable character #x{char:04x}: {exc.reason}"
        )
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, _ValueProblem):
        return f"{where}{problem}"
    return f"{where}YAML syntax error: {problem}"


def load_yaml(text: str, path: str = "<config>", loader: str | None = None) -> Any:
    """The one YAML document in ``text`` (None when there is none), read with a safe
    loader; raises ConfigError on a syntax error or a duplicate key."""
    name = loader or DEFAULT_LOADER
    try:
        reader = YAML_LOADERS[name](text)  # the pure-Python reader checks characters here
        try:
            node = reader.get_single_node()
            if node is None:
                return None
            duplicates = duplicate_keys(node)
            if duplicates:
                raise ConfigError(path, duplicates)
            return reader.construct_document(node)
        finally:
            reader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(path, [("", _syntax_error(exc, text, name))]) from None
    except RecursionError:  # the pure-Python composer recurses; libyaml stops at 1,000
        raise ConfigError(path, [("", "YAML syntax error: nested too deeply")]) from None


def read_text(path: str | Path) -> str:
    """A config file's text; raises ConfigError naming the file when it cannot be read
    or is not UTF-8 (with where, never with the bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [("", f"cannot read: {exc.strerror}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8")) + 1
        raise ConfigError(
            str(path), [("", f"line {line} column {column}: not UTF-8 text")]
        ) from None
