"""Framework and exporter families: emitted for every target, whatever its kind."""

from __future__ import annotations

from typing import Literal, get_args

from .base import family

TARGET = ("kind", "target")

UP = family("up", "gauge", "1 if the target's last probe run succeeded, else 0.", *TARGET)
PROBE_SUCCESS = family(
    "probe_success", "gauge", "1 if this on-demand /probe run succeeded, else 0.", *TARGET
)
PROBE_DURATION = family(
    "probe_duration_seconds", "gauge", "Wall time of the target's last probe run.", *TARGET
)
PROBE_LAST_SUCCESS = family(
    "probe_last_success_timestamp_seconds",
    "gauge",
    "Unix time the target's last successful probe run finished.",
    *TARGET,
)
PROBE_LAST_RUN = family(
    "probe_last_run_timestamp_seconds",
    "gauge",
    "Unix time the target's last probe run finished, successful or not.",
    *TARGET,
)
PROBE_RUNS = family("probe_runs_total", "counter", "Probe runs started for the target.", *TARGET)
PROBE_ERRORS = family(
    "probe_errors_total",
    "counter",
    "Failed probe runs by reason (timeout, refused, auth, protocol, config, other).",
    *TARGET,
    "reason",
)
PROBE_INTERVAL = family(
    "probe_interval_seconds", "gauge", "Configured probe interval of the target.", *TARGET
)
PROBE_TIMEOUT = family(
    "probe_timeout_seconds", "gauge", "Configured deadline of one probe run.", *TARGET
)

BUILD_INFO = family(
    "exporter_build_info",
    "gauge",
    "Exporter and monitoring-bundle versions; always 1.",
    "version",
    "bundle_version",
    "python_version",
)
START_TIME = family(
    "exporter_start_time_seconds", "gauge", "Unix time the exporter process started."
)
RELOAD_OK = family(
    "exporter_config_last_reload_successful",
    "gauge",
    "1 if the last configuration load or reload succeeded, else 0.",
)
RELOAD_TIME = family(
    "exporter_config_last_reload_success_timestamp_seconds",
    "gauge",
    "Unix time of the last successful configuration load.",
)
TARGETS = family("exporter_targets", "gauge", "Configured targets by kind.", "kind")
LOOP_RESTARTS = family(
    "exporter_loop_restarts_total",
    "counter",
    "Probe loops restarted after an unexpected crash of the loop itself.",
    *TARGET,
)
PROBE_REQUESTS = family(
    "exporter_probe_requests_total",
    "counter",
    "On-demand /probe requests by module and outcome (ok, failed, denied, bad_request).",
    "module",
    "outcome",
)

HttpCloseReason = Literal["limit", "header_timeout", "idle_timeout", "not_reading"]
"""Why the HTTP server closed a connection itself (docs/configuration.md, "HTTP server")."""
HTTP_CLOSE_REASONS: tuple[HttpCloseReason, ...] = get_args(HttpCloseReason)
"""The fixed set of ``why`` values, each present from the start."""

HTTP_CONNECTIONS = family(
    "exporter_http_connections",
    "gauge",
    "HTTP connections open now, counted from accept (TLS handshakes under way included).",
)
HTTP_CONNECTIONS_LIMIT = family(
    "exporter_http_connections_limit",
    "gauge",
    "HTTP connections the server holds at once (--max-connections); more are closed on accept.",
)
HTTP_CONNECTIONS_CLOSED = family(
    "exporter_http_connections_closed_total",
    "counter",
    "HTTP connections the server closed itself, by why (limit, header_timeout, idle_timeout,"
    " not_reading).",
    "why",
)

FAMILIES = (
    UP,
    PROBE_SUCCESS,
    PROBE_DURATION,
    PROBE_LAST_SUCCESS,
    PROBE_LAST_RUN,
    PROBE_RUNS,
    PROBE_ERRORS,
    PROBE_INTERVAL,
    PROBE_TIMEOUT,
    BUILD_INFO,
    START_TIME,
    RELOAD_OK,
    RELOAD_TIME,
    TARGETS,
    LOOP_RESTARTS,
    PROBE_REQUESTS,
    HTTP_CONNECTIONS,
    HTTP_CONNECTIONS_LIMIT,
    HTTP_CONNECTIONS_CLOSED,
)
