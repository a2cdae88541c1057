"""Load and validate the YAML configuration.

Every error names the file, the field path and the problem, in the form
``FILE: path.to.field: problem``; the CLI prints them and exits 2.

The file must be UTF-8. It is read with libyaml's safe loader when PyYAML has it
(on a 10 MB file about 3x faster than the pure-Python one, with a quarter less peak
memory: ``bench/bench_config.py``); a key given twice in one mapping is an error
naming both lines, whichever loader reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    ValidationError,
    create_model,
    field_validator,
)

from .calendars import CalendarConfig
from .kinds import KINDS
from .model import ALWAYS, Duration, Interval, Name, Regex, StrictModel, TargetBase
from .probe import ProbeKind
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


class GlobalConfig(StrictModel):
    """Defaults applied to targets that do not set their own."""

    interval: Interval = 15.0
    timeout: Duration = 10.0


class ModuleConfig(StrictModel):
    """A ``/probe`` module: a target template of one kind and the targets it may probe."""

    kind: str
    allowed_targets: list[Regex] = Field(min_length=1)
    """Regular expressions; a requested target must fully match one of them."""
    timeout: Duration = 10.0
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown kind {value!r}; expected one of {', '.join(KINDS)}")
        return value

    def allows(self, target: str) -> bool:
        """True if ``target`` fully matches one of the allowed patterns."""
        return any(re.fullmatch(p, target) for p in self.allowed_targets)


def _root_model() -> type[StrictModel]:
    fields: dict[str, Any] = {
        "global_": (GlobalConfig, Field(default_factory=GlobalConfig, alias="global")),
        "calendars": (list[CalendarConfig], Field(default_factory=list)),
        "modules": (dict[Name, ModuleConfig], Field(default_factory=dict)),
    }
    for name, kind in KINDS.items():
        fields[name] = (list[kind.target_model], Field(default_factory=list))  # type: ignore[name-defined]
    fields["allow_empty"] = (StrictBool, False)
    return create_model("Config", __base__=StrictModel, **fields)


_ROOT = _root_model()
SECTIONS = ["global", "calendars", "modules", *KINDS, "allow_empty"]


@dataclass(frozen=True)
class Config:
    """A validated configuration: targets per kind (defaults filled in), modules and
    the configured calendars (``always`` is built in and not listed).

    ``allow_empty`` is the file's explicit consent to having no targets: without it
    a reload that would remove every running target is refused (see ``Exporter``)."""

    path: str
    targets: dict[str, tuple[TargetBase, ...]]
    modules: dict[str, ModuleConfig]
    calendars: tuple[CalendarConfig, ...] = ()
    allow_empty: bool = False

    def all_targets(self) -> list[tuple[ProbeKind[Any, Any], TargetBase]]:
        """Every (kind, target) pair, in config order."""
        return [(KINDS[k], t) for k, ts in self.targets.items() for t in ts]


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


def _fill_defaults(
    data: Any, glob: GlobalConfig, section: str, problems: list[tuple[str, str]]
) -> tuple[TargetBase, ...]:
    out = []
    seen: dict[str, int] = {}
    for i, target in enumerate(data):
        interval = target.interval or glob.interval
        timeout = target.timeout or min(glob.timeout, interval)
        if timeout >= interval and target.timeout is not None:
            problems.append(
                (f"{section}[{i}].timeout", f"must be shorter than the interval ({interval:g}s)")
            )
        if target.name in seen:
            problems.append(
                (
                    f"{section}[{i}].name",
                    f"duplicate target name {target.name!r} (also {section}[{seen[target.name]}])",
                )
            )
        seen.setdefault(target.name, i)
        out.append(target.model_copy(update={"interval": interval, "timeout": timeout}))
    return tuple(out)


def _check_modules(
    modules: dict[str, ModuleConfig], calendars: set[str], problems: list[tuple[str, str]]
) -> None:
    for name, module in modules.items():
        kind = KINDS[module.kind]
        template = {
            **module.params,
            "name": "module-check",
            kind.address_field: kind.example_address,
        }
        try:
            spec = kind.target_model.model_validate(template)
        except ValidationError as exc:
            for loc, msg in pydantic_problems(exc):
                problems.append((f"modules.{name}.params.{loc}", msg))
            continue
        problems.extend(_unknown_calendars(spec, f"modules.{name}.params", calendars))


def _check_calendar_names(
    calendars: list[CalendarConfig], problems: list[tuple[str, str]]
) -> set[str]:
    """The defined calendar names (``always`` included); duplicates are problems."""
    seen: dict[str, int] = {}
    for i, cal in enumerate(calendars):
        if cal.name in seen:
            problems.append(
                (
                    f"calendars[{i}].name",
                    f"duplicate calendar name {cal.name!r} (also calendars[{seen[cal.name]}])",
                )
            )
        seen.setdefault(cal.name, i)
    return {ALWAYS, *seen}


def calendar_fields(model: BaseModel, loc: str) -> Iterator[tuple[str, str]]:
    """(field path, calendar name) of every ``calendar`` field set in ``model`` and
    the models nested in it (heartbeat keys, tables, lag objectives ...)."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        where = f"{loc}.{info.alias or name}" if loc else info.alias or name
        if name == "calendar" and isinstance(value, str):
            yield where, value
        else:
            yield from _nested_calendar_fields(value, where)


def _nested_calendar_fields(value: Any, loc: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, BaseModel):
        yield from calendar_fields(value, loc)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _nested_calendar_fields(item, f"{loc}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nested_calendar_fields(item, f"{loc}.{key}")


def _unknown_calendars(model: BaseModel, loc: str, defined: set[str]) -> list[tuple[str, str]]:
    known = ", ".join(sorted(defined))
    return [
        (where, f"unknown calendar {name!r}; defined: {known}")
        for where, name in calendar_fields(model, loc)
        if name not in defined
    ]


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
with it) and ``python``. Both report the same duplicate keys (``_duplicate_keys``)."""
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


def _duplicate_keys(root: yaml.Node) -> list[tuple[str, str]]:
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
            duplicates = _duplicate_keys(node)
            if duplicates:
                raise ConfigError(path, duplicates)
            return reader.construct_document(node)
        finally:
            reader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(path, [("", _syntax_error(exc, text, name))]) from None
    except RecursionError:  # the pure-Python composer recurses; libyaml stops at 1,000
        raise ConfigError(path, [("", "YAML syntax error: nested too deeply")]) from None


def parse(text: str, path: str = "<config>", loader: str | None = None) -> Config:
    """Validate YAML text; raises ConfigError with every problem found. ``loader`` is
    a name from ``YAML_LOADERS`` (default ``DEFAULT_LOADER``)."""
    raw = load_yaml(text, path, loader)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, [("", "the top level must be a mapping of sections")])
    try:
        root = _ROOT.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(path, pydantic_problems(exc, SECTIONS)) from None
    problems: list[tuple[str, str]] = []
    glob: GlobalConfig = root.global_  # type: ignore[attr-defined]
    calendars: list[CalendarConfig] = root.calendars  # type: ignore[attr-defined]
    defined = _check_calendar_names(calendars, problems)
    targets = {name: _fill_defaults(getattr(root, name), glob, name, problems) for name in KINDS}
    for section, section_targets in targets.items():
        for i, target in enumerate(section_targets):
            problems.extend(_unknown_calendars(target, f"{section}[{i}]", defined))
    for kind in KINDS.values():
        if kind.cross_check is not None:
            problems.extend(kind.cross_check(targets))
    modules: dict[str, ModuleConfig] = root.modules  # type: ignore[attr-defined]
    _check_modules(modules, defined, problems)
    if problems:
        raise ConfigError(path, problems)
    return Config(
        path=path,
        targets=targets,
        modules=modules,
        calendars=tuple(calendars),
        allow_empty=root.allow_empty,  # type: ignore[attr-defined]
    )


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


def load(path: str | Path, loader: str | None = None) -> Config:
    """Read and validate a config file (``loader``: see ``parse``)."""
    return parse(read_text(path), str(path), loader)
