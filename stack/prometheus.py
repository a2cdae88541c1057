"""Prometheus and Alertmanager (Debian packages) on free loopback ports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .services import Service, find_binary, wait_for_http


class Alertmanager(Service):
    """Alertmanager with a config file: ``config`` (a mapping), or ``config_text``
    (YAML as it is, such as the shipped config pointed at the local sinks by
    ``stack.alerting.wire_config``); default a null receiver."""

    name = "alertmanager"

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        config: dict[str, Any] | None = None,
        config_text: str | None = None,
    ) -> None:
        super().__init__(root, port)
        self.config = config or {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}
        self.config_text = config_text

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the API is under ``/api/v2/``."""
        return f"http://{self.address}"

    def prepare(self) -> None:
        text = self.config_text if self.config_text is not None else yaml.safe_dump(self.config)
        (self.dir / "alertmanager.yml").write_text(text)

    def command(self) -> list[str]:
        return [
            find_binary("prometheus-alertmanager", "/usr/bin/alertmanager"),
            f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        wait_for_http(f"http://{self.address}/-/ready", self.ready_timeout)


class Prometheus(Service):
    """Prometheus scraping the given targets, with rules and an Alertmanager."""

    name = "prometheus"

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        scrape_targets: Sequence[str] = (),
        rule_files: Sequence[str] = (),
        alertmanager: str | None = None,
        scrape_interval: str = "5s",
        resend_delay: str | None = None,
        jobs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(root, port)
        self.scrape_targets = list(scrape_targets)
        """Scraped as job ``tradeops`` (the exporters)."""
        self.jobs = {name: list(targets) for name, targets in (jobs or {}).items()}
        """Further scrape jobs: job name -> targets (``host:port``, at ``/metrics``)."""
        self.rule_files = list(rule_files)
        self.alertmanager = alertmanager
        self.scrape_interval = scrape_interval
        self.resend_delay = resend_delay
        """``--rules.alert.resend-delay`` (Prometheus' default: 1m). Alerts of the
        first evaluations, before Alertmanager is discovered (about 5 s), are
        dropped and sent again only after this delay."""

    def prepare(self) -> None:
        cfg: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {"job_name": name, "static_configs": [{"targets": targets}]}
                for name, targets in {"tradeops": self.scrape_targets, **self.jobs}.items()
            ],
            "rule_files": self.rule_files,
        }
        if self.alertmanager:
            cfg["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]
            }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(cfg))

    def command(self) -> list[str]:
        return [
            find_binary("prometheus"),
            f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            *([f"--rules.alert.resend-delay={self.resend_delay}"] if self.resend_delay else []),
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        wait_for_http(f"http://{self.address}/-/ready", self.ready_timeout)
