"""Load and validate the YAML configuration: its sections, one per probe kind
(generated from ``exporter.kinds``), the ``/probe`` modules and the calendars.

Every error names the file, the field path and the problem, in the form
``FILE: path.to.field: problem``; the CLI prints them and exits 2. Reading the file
and its YAML is ``exporter.config_file``'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    ValidationError,
    create_model,
    field_validator,
)

from .calendars import CalendarConfig
from .config_file import (
    DEFAULT_LOADER,
    YAML_LOADERS,
    ConfigError,
    load_yaml,
    pydantic_problems,
    read_text,
)
from .kinds import KINDS
from .model import ALWAYS, Duration, Interval, Name, Regex, StrictModel, TargetBase
from .probe import ProbeKind

__all__ = [
    "DEFAULT_LOADER",
    "SECTIONS",
    "YAML_LOADERS",
    "Config",
    "ConfigError",
    "GlobalConfig",
    "ModuleConfig",
    "calendar_fields",
    "load",
    "load_yaml",
    "parse",
    "pydantic_problems",
    "read_text",
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


def load(path: str | Path, loader: str | None = None) -> Config:
    """Read and validate a config file (``loader``: see ``parse``)."""
    return parse(read_text(path), str(path), loader)
