"""Shared by the Alertmanager tests: the shipped files, amtool, label matchers,
the routing policy and representative label sets of the bundle's alerts."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bundle import check
from bundle.routes import Matcher
from stack.services import find_binary

REPO = Path(__file__).resolve().parents[2]
AM_DIR = REPO / "alertmanager"
CONFIG = AM_DIR / "alertmanager.yml"
TEMPLATES_DIR = AM_DIR / "templates"
TEMPLATE_FILES = sorted(TEMPLATES_DIR.glob("*.tmpl"))
HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
GOLDEN_DIR = HERE / "golden"

SECRETS_PREFIX = "/etc/alertmanager/secrets/"
TEMPLATES_PREFIX = "/etc/alertmanager/templates/"

Labels = dict[str, str]


def amtool() -> str:
    """The amtool of Debian's prometheus-alertmanager (``make setup`` installs it)."""
    return find_binary("amtool", "/usr/bin/amtool")


def run_amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """amtool with these arguments; never raises on a non-zero exit."""
    return subprocess.run(
        [amtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def shipped_config() -> dict[str, Any]:
    """alertmanager/alertmanager.yml, parsed."""
    doc: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return doc


def local_config(directory: Path, text: str | None = None) -> Path:
    """A copy of the shipped config (or of ``text``) whose templates are the
    repository's: the one rewrite a test needs to run amtool on it here."""
    text = CONFIG.read_text(encoding="utf-8") if text is None else text
    path = directory / "alertmanager.yml"
    path.write_text(text.replace(TEMPLATES_PREFIX, f"{TEMPLATES_DIR}/"), encoding="utf-8")
    return path


def label_args(labels: Mapping[str, str]) -> list[str]:
    """``name="value"`` arguments for ``amtool config routes test``."""
    out = []
    for name, value in sorted(labels.items()):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'{name}="{escaped}"')
    return out


def routes_test(
    config: Path, labels: Mapping[str, str], expect: Sequence[str]
) -> subprocess.CompletedProcess[str]:
    """``amtool config routes test --verify.receivers=...`` for one label set."""
    return run_amtool(
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        f"--verify.receivers={','.join(expect)}",
        *label_args(labels),
    )


def render(text: str, data: Path) -> subprocess.CompletedProcess[str]:
    """``amtool template render`` of ``text`` with the repository's templates."""
    return run_amtool(
        "template",
        "render",
        f"--template.glob={TEMPLATES_DIR}/*.tmpl",
        f"--template.text={text}",
        f"--template.data={data}",
    )


# --- label matchers, as Alertmanager evaluates them ---------------------------

_MATCHER = re.compile(r'^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"((?:[^"\\]|\\.)*)"$')


def parse_quoted(text: str) -> Matcher:
    """Parse one matcher of the ``matchers`` syntax, as the config writes them: every
    value quoted (``name="v"``, ``name!~"re"``...)."""
    if not _MATCHER.match(text.strip()):
        raise ValueError(f"not a quoted matcher: {text!r}")
    return Matcher.parse(text.strip())


def all_match(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """True if every matcher matches."""
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True)
class InhibitRule:
    """One inhibit rule of the config."""

    index: int
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def mutes(self, target: Mapping[str, str], source: Mapping[str, str]) -> bool:
        """Whether this firing ``source`` alert mutes ``target`` under this rule.

        As Alertmanager 0.25's inhibitor: the target must match the target
        matchers and the source the source matchers, the ``equal`` labels must
        have the same value (missing on both sides counts as equal), and when
        the target matches both sides only a source that does not match the
        target side may mute it."""
        if not all_match(self.target, target) or not all_match(self.source, source):
            return False
        if all_match(self.source, target) and all_match(self.target, source):
            return False
        return all(target.get(n, "") == source.get(n, "") for n in self.equal)


def inhibit_rules(config: Mapping[str, Any] | None = None) -> list[InhibitRule]:
    """The config's inhibit rules, parsed."""
    config = shipped_config() if config is None else config
    return [
        InhibitRule(
            i,
            tuple(Matcher.parse(m) for m in rule.get("source_matchers") or []),
            tuple(Matcher.parse(m) for m in rule.get("target_matchers") or []),
            tuple(rule.get("equal") or []),
        )
        for i, rule in enumerate(config.get("inhibit_rules") or [])
    ]


def muted_by(
    rules: Sequence[InhibitRule], target: Mapping[str, str], source: Mapping[str, str]
) -> list[int]:
    """The indexes of the rules under which ``source`` mutes ``target``."""
    return [r.index for r in rules if r.mutes(target, source)]


# --- the policy: who hears of an alert ----------------------------------------

TEAMS = {"execution", "risk"}


def expected_receivers(labels: Mapping[str, str]) -> list[str]:
    """The receivers an alert must reach, in route order, from its labels alone.

    The Watchdog goes to the dead-man's switch only. A team's alert reaches the
    team's channel (risk's critical ones page risk too) and then on-call as any
    other. Critical pages on-call and tells the channel, warning goes to the
    channel, info goes nowhere, and any other severity (a typo, none) goes to
    the channel: an alert is never silenced by a bad label."""
    if labels.get("alertname") == "Watchdog":
        return ["deadmans-switch"]
    severity = labels.get("severity", "")
    team = labels.get("team", "")
    out: list[str] = []
    if severity != "info":
        if team == "execution":
            out.append("slack-execution")
        elif team == "risk":
            out += ["pagerduty-risk", "slack-risk"] if severity == "critical" else ["slack-risk"]
    if severity == "critical":
        out += ["pagerduty-oncall", "slack-oncall"]
    elif severity == "info":
        out.append("null")
    else:
        out.append("slack-oncall")
    return out


# --- representative labels of the bundle's alerts -----------------------------

JOB = "tradeops"
INSTANCE = "exporter-0:9713"
# The labels that say which thing is broken, and the value every alert gets
# for them here (so that a down alert and a data alert are about the same one).
IDENTITY = {
    "kind": None,  # keeps the alert's own value
    "target": "t1",
    "session": "s1",
    "group": "g1",
    "table": "ticks",
    "heartbeat": "hb1",
    "stream": "st1",
    "job_id": "1001",
    "broker_id": "2",
    "slo": None,
}
# Labels an area's alerts carry when no promtool case shows them.
AREA_DEFAULT_LABELS: dict[str, Labels] = {
    "exporter": {"job": JOB, "instance": INSTANCE, "kind": "redis", "target": "t1"},
    "fix": {"job": JOB, "instance": INSTANCE, "session": "s1"},
    "kafka": {"target": "t1", "group": "g1"},
}
DEFAULT_LABELS: Labels = {"job": JOB, "instance": INSTANCE, "target": "t1"}


@dataclass(frozen=True)
class BundleAlert:
    """An alert of the rules bundle with the labels it fires with."""

    name: str
    file: str
    static: Labels
    """The rule's own labels (severity, area, team, ...)."""
    labels: Labels
    """alertname, the static labels and representative target labels."""
    from_test: bool
    """True when the target labels are those of one of its promtool cases."""


def _tested_labels() -> dict[str, Labels]:
    """Per alert name, the labels of the first alert its promtool tests expect."""
    out: dict[str, Labels] = {}
    for path in check.test_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for test in doc.get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                for exp in case.get("exp_alerts") or []:
                    labels = {str(k): str(v) for k, v in (exp.get("exp_labels") or {}).items()}
                    out.setdefault(case["alertname"], labels)
    return out


def _normalise(labels: Labels) -> Labels:
    """Common values for the identifying labels; the exporter's job and
    instance for the exporter's series (promtool tests use their own), while
    another job (the runtime's) keeps its own."""
    out = dict(labels)
    if out.get("job") == JOB and "instance" in out:
        out["instance"] = INSTANCE
    for name, value in IDENTITY.items():
        if name in out and value is not None:
            out[name] = value
    return out


def bundle_alerts() -> list[BundleAlert]:
    """Every alert of the rules bundle, with representative labels: those of
    its own promtool case where one fires it (the labels it really carries),
    else the usual labels of its area; identifying labels get common values."""
    tested = _tested_labels()
    out = []
    for rule in check.load_rules():
        if not rule.is_alert:
            continue
        static = {str(k): str(v) for k, v in (rule.body.get("labels") or {}).items()}
        seen = tested.get(rule.name)
        if seen is not None:
            base = seen
        else:
            base = AREA_DEFAULT_LABELS.get(static.get("area", ""), DEFAULT_LABELS)
        labels = _normalise({**base, **static, "alertname": rule.name})
        out.append(BundleAlert(rule.name, rule.file, static, labels, seen is not None))
    return out


def exporter_fed(labels: Mapping[str, str]) -> bool:
    """True for an alert on the exporter's series: the exporter's job, or none
    (aggregated across exporters); False for another job's (the runtime's)."""
    return labels.get("job", JOB) == JOB


def other_target(labels: Labels) -> Labels:
    """The same alert about another thing: every identifying label changed."""
    out = dict(labels)
    for name in [*IDENTITY, "instance"]:
        if name in out and name != "kind":
            out[name] = out[name] + "-other"
    return out


# --- templates -----------------------------------------------------------------

_DEFINE = re.compile(r'\{\{-?\s*define\s+"([^"]+)"\s*-?\}\}')
_TEMPLATE_CALL = re.compile(r'\{\{-?\s*template\s+"([^"]+)"')


def defined_templates() -> list[str]:
    """Every ``{{ define "..." }}`` name of alertmanager/templates/*.tmpl."""
    names: list[str] = []
    for path in TEMPLATE_FILES:
        names += _DEFINE.findall(path.read_text(encoding="utf-8"))
    return names


def template_calls(text: str) -> list[str]:
    """The names ``{{ template "..." }}`` refers to in ``text``."""
    return _TEMPLATE_CALL.findall(text)


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, string) in a parsed YAML document."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}[{i}]")
