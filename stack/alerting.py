"""The shipped Alertmanager configuration, pointed at the local stand-ins.

``wire_config`` reads ``alertmanager/alertmanager.yml`` and does to a copy what a
user does on a real host: the secrets under ``/etc/alertmanager/secrets/`` become
files in a directory of ours (each Slack ``api_url_file`` holds a webhook URL of
the stand-in, each ``routing_key_file`` a fresh routing key the PagerDuty
stand-in accepts), the templates under ``/etc/alertmanager/templates/`` are the
repository's, and the non-secret endpoints (``pagerduty_configs[].url``, the
webhook ``url`` of the dead-man route) point at the stand-ins. Nothing else
changes: the routes, timings, inhibitions and templates are the shipped ones.

``bundle.routes.routes_for`` walks the route tree of the result, so a test reads
the timings that apply to an alert from the file rather than restating them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .sinks import Sinks

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "alertmanager" / "alertmanager.yml"
TEMPLATES_DIR = REPO / "alertmanager" / "templates"
SECRETS_PREFIX = "/etc/alertmanager/secrets/"
TEMPLATES_PREFIX = "/etc/alertmanager/templates/"


@dataclass(frozen=True)
class Wired:
    """A configuration pointed at the stand-ins."""

    config: dict[str, Any]
    """The rewritten configuration (what ``text`` holds)."""
    text: str
    secret_files: dict[Path, str]
    """Each secret file written and what it holds."""
    routing_keys: dict[str, str]
    """PagerDuty routing key -> the receiver it was made for (registered with the sinks)."""


def wire_config(
    sinks: Sinks,
    secrets_dir: Path,
    source: Path = SHIPPED_CONFIG,
    templates_dir: Path = TEMPLATES_DIR,
    adjust: Callable[[dict[str, Any]], None] | None = None,
) -> Wired:
    """The shipped configuration with its secrets, templates and endpoints rewritten
    to ``secrets_dir``, ``templates_dir`` and ``sinks``; ``adjust`` may change the
    parsed configuration further (a test's copy only)."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    text = source.read_text(encoding="utf-8")
    text = text.replace(TEMPLATES_PREFIX, f"{templates_dir}/")
    text = text.replace(SECRETS_PREFIX, f"{secrets_dir}/")
    config: dict[str, Any] = yaml.safe_load(text)
    files: dict[Path, str] = {}
    keys: dict[str, str] = {}

    def secret(path_text: str, make: Callable[[str], str]) -> None:
        path = Path(path_text)
        if path in files:
            return
        content = make(path.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content + "\n", encoding="utf-8")
        path.chmod(0o600)
        files[path] = content

    def routing_key_for(receiver: str) -> Callable[[str], str]:
        def make(_stem: str) -> str:
            key = secrets.token_hex(16)  # 32 characters, like a PagerDuty integration key
            keys[key] = receiver
            sinks.add_routing_key(key, receiver)
            return key

        return make

    def bearer_for(name: str) -> Callable[[str], str]:
        def make(_stem: str) -> str:
            token = secrets.token_urlsafe(24)
            sinks.add_heartbeat_token(name, token)
            return token

        return make

    glob = config.setdefault("global", {}) or {}
    config["global"] = glob
    if "slack_api_url_file" in glob:
        secret(glob["slack_api_url_file"], sinks.slack_url)
    if "slack_api_url" in glob:
        glob["slack_api_url"] = sinks.slack_url("global")
    glob["pagerduty_url"] = sinks.pagerduty_url
    for receiver in config.get("receivers") or []:
        for slack in receiver.get("slack_configs") or []:
            if "api_url_file" in slack:
                secret(slack["api_url_file"], sinks.slack_url)
            elif "api_url" in slack:
                slack["api_url"] = sinks.slack_url(receiver["name"])
        for pd in receiver.get("pagerduty_configs") or []:
            if "service_key" in pd or "service_key_file" in pd:
                raise ValueError(f"receiver {receiver['name']}: PagerDuty v1 is not supported")
            if "routing_key_file" in pd:
                secret(pd["routing_key_file"], routing_key_for(str(receiver["name"])))
            pd["url"] = sinks.pagerduty_url
        for hook in receiver.get("webhook_configs") or []:
            name = str(receiver["name"])
            hook["url"] = sinks.heartbeat_url(name)
            auth = (hook.get("http_config") or {}).get("authorization") or {}
            if "credentials_file" in auth:
                secret(auth["credentials_file"], bearer_for(name))
    for leftover in _strings_under(config, f"{secrets_dir}/"):
        secret(leftover, lambda name: f"placeholder-{name}")
    if adjust is not None:
        adjust(config)
    out = yaml.safe_dump(config, sort_keys=False)
    return Wired(config=config, text=out, secret_files=files, routing_keys=keys)


def _strings_under(value: Any, prefix: str) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith(prefix) and "*" not in value else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_under(v, prefix)]
    if isinstance(value, list):
        return [s for v in value for s in _strings_under(v, prefix)]
    return []
