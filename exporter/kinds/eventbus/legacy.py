"""The canary's old Kafka spellings, accepted for one more release.

Before the canary took the Kafka kind's connection schema, its ``kafka:`` section
had ``bootstrap`` (a list, or a comma-separated string) and flat
``sasl_mechanism``, ``username``, ``password`` and ``password_file``. They are
checked as they were (the same errors), mapped onto the schema, and remembered,
so that the load can log one deprecation warning per old field; an old and a
new spelling of one setting together are a config error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from ...logs import log
from ...model import PasswordMixin, parse_host_port

REPLACEMENTS = {
    "bootstrap": "bootstrap_servers",
    "sasl_mechanism": "sasl.mechanism",
    "username": "sasl.username",
    "password": "sasl.password",
    "password_file": "sasl.password_file",
}
"""Old field -> its place in the Kafka connection schema."""
PLACEHOLDER = "127.0.0.1:9092"
"""Stands in for an old ``bootstrap`` that failed, so the other fields are still checked."""


@dataclass(frozen=True, slots=True)
class Rename:
    """One old field a config used."""

    old: str
    new: str
    idle: bool = False
    """The old field had no effect (SASL fields without ``sasl_mechanism``), and still has none."""


class OldKafkaFields(PasswordMixin):
    """The old fields, with their old rules and messages."""

    bootstrap: list[str] = Field(default_factory=list, min_length=1)
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None

    @field_validator("bootstrap", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [v.strip() for v in value.split(",")] if isinstance(value, str) else value

    @field_validator("bootstrap")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            parse_host_port(address)
        return value

    @model_validator(mode="after")
    def _sasl(self) -> OldKafkaFields:
        if self.sasl_mechanism and (self.username is None or self.password_value() is None):
            raise ValueError("sasl_mechanism needs username and password (or password_file)")
        return self

    def upgraded(self) -> dict[str, Any]:
        """The same settings in the Kafka connection schema."""
        out: dict[str, Any] = {}
        if "bootstrap" in self.model_fields_set:
            out["bootstrap_servers"] = ",".join(self.bootstrap)
        if self.sasl_mechanism is not None:
            sasl = {
                "mechanism": self.sasl_mechanism,
                "username": self.username,
                "password": self.password,
                "password_file": self.password_file,
            }
            out["sasl"] = {k: v for k, v in sasl.items() if v is not None}
        return out

    def renames(self, given: list[str]) -> tuple[Rename, ...]:
        """The old fields given, each with its replacement."""
        sasl = self.sasl_mechanism is not None
        return tuple(Rename(o, REPLACEMENTS[o], o != "bootstrap" and not sasl) for o in given)


def upgrade(data: Any) -> tuple[Any, tuple[Rename, ...], list[InitErrorDetails]]:
    """A ``kafka:`` section in the new schema, the old fields it used, and their
    problems (old rules, or an old and a new spelling given together)."""
    if not isinstance(data, dict):
        return data, (), []
    given = [k for k in data if k in REPLACEMENTS]
    if not given:
        return data, (), []
    new = {k: v for k, v in data.items() if k not in REPLACEMENTS}
    problems = _both_spellings(given, data)
    try:
        old = OldKafkaFields.model_validate({k: data[k] for k in given})
    except ValidationError as exc:
        problems += [details(e) for e in exc.errors()]
    if problems:
        return {"bootstrap_servers": PLACEHOLDER, **new}, (), problems
    return {**new, **old.upgraded()}, old.renames(given), []


def _both_spellings(given: list[str], data: dict[str, Any]) -> list[InitErrorDetails]:
    problems = []
    for old in given:
        new = REPLACEMENTS[old]
        if new.split(".")[0] in data:
            error = ValueError(f"give {new} or the deprecated {old}, not both")
            problems.append(
                InitErrorDetails(type="value_error", loc=(old,), input=data, ctx={"error": error})
            )
    return problems


def details(error: Any) -> InitErrorDetails:
    """A validation error's details as pydantic takes them back (known types only)."""
    out = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
    if "ctx" in error:
        out["ctx"] = error["ctx"]
    return out


def warn(target: str, renames: tuple[Rename, ...]) -> None:
    """One WARNING per old field a target's canary uses."""
    for r in renames:
        note = {"note": "no effect without sasl_mechanism, as before"} if r.idle else {}
        log(
            logging.WARNING,
            "deprecated config field, to be removed in the next release",
            kind="eventbus",
            target=target,
            field=f"canary.kafka.{r.old}",
            replacement=f"canary.kafka.{r.new}",
            **note,
        )
