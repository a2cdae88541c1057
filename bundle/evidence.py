"""Session evidence: a metrics snapshot of one time window, exported from
Prometheus' HTTP API for the post-session archive (seed 004, section 6).

    python -m bundle.evidence --prometheus URL (--start T --end T | --last 8h)
                              [--step 30s] [--out DIR] [--timeout 30s]

Times are RFC 3339 (``2026-12-01T16:30:00Z``) or Unix seconds. For the window
it runs, with ``/api/v1/query_range`` at ``--step``: the SLA packet's series
(order acknowledgement p95, the SLA heartbeats' ages, maximum gaps and
presence, the runtime's position drift, the risk heartbeat's age, with the
selectors the SLA rules use, read from the bundle config) and the readiness
status (area, target, overall); and with ``/api/v1/query`` at the window's end
over a range as long as the window, every alert that fired in it (each raw
``ALERTS{alertstate="firing"}`` sample, so a short firing between two steps is
not missed): its name, labels, first and last evaluation seen firing.

It writes ``metrics_<end, UTC, 20261201T163000Z>.json.gz`` and
``metrics_<…>.sha256`` (a ``sha256sum -c`` line) into ``--out`` (default the
current directory). The JSON holds the window, the Prometheus URL without
credentials, the bundle version, every query with its endpoint, parameters and
result, and the fired alerts. Basic auth comes from ``user:pass@`` in the URL;
the credentials are sent, never written or printed. Exit 0 when written, 1
when Prometheus is unreachable or answers an error, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from exporter.model import parse_duration

from .build import evaluate
from .contract import CONTRACT
from .drill import public_url, rfc3339
from .release import version

MAX_POINTS = 11000
"""Prometheus refuses a range query of more points per series than this."""
FORMAT = 1


class EvidenceError(Exception):
    """Prometheus cannot give the evidence (unreachable, an error answer)."""


@dataclass(frozen=True)
class Query:
    """One query of the evidence: a name, its group and the PromQL."""

    name: str
    group: str
    expr: str
    range: bool = True
    """``query_range`` over the window at the step; else ``query`` at the end."""


def _selector(*matchers: str) -> str:
    return "{" + ", ".join(m for m in matchers if m) + "}"


def queries(config: Mapping[str, Any] | None = None) -> list[Query]:
    """What the evidence holds, with the selectors of the bundle config (default: the
    bundle's own): the SLA packet and readiness as ranges."""
    config = config if config is not None else evaluate()["config"]
    sla = config["sla"]
    exporter = config["selector"]
    beats = f'heartbeat=~"{sla["heartbeats"]}"'
    risk = f'heartbeat=~"{sla["riskHeartbeat"]}"'
    drift = next(m.name for m in CONTRACT if m.name.endswith("position_drift_ratio"))
    hb = "tradeops_redis_heartbeat"
    return [
        Query("order_ack_latency_p95_seconds", "sla", "tradeops:fix_order_ack_latency_seconds:p95"),
        Query(
            "heartbeat_age_seconds",
            "sla",
            f"time() - {hb}_timestamp_seconds{_selector(exporter, beats)}",
        ),
        Query(
            "heartbeat_max_gap_seconds", "sla", f"{hb}_max_gap_seconds{_selector(exporter, beats)}"
        ),
        Query("heartbeat_present", "sla", f"{hb}_present{_selector(exporter, beats)}"),
        Query("position_drift_ratio", "sla", f"{drift}{_selector(sla['runtimeSelector'])}"),
        Query(
            "risk_heartbeat_age_seconds",
            "sla",
            f"time() - {hb}_timestamp_seconds{_selector(exporter, risk)}",
        ),
        Query("risk_heartbeat_present", "sla", f"{hb}_present{_selector(exporter, risk)}"),
        Query("area_status", "readiness", "tradeops:area_status"),
        Query("target_status", "readiness", "tradeops:target_status"),
        Query("overall_status", "readiness", "tradeops:overall_status"),
    ]


class Client:
    """Prometheus' HTTP API at a base URL; basic auth from the URL's credentials."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL")
        self.url = public_url(url)
        """The base URL without credentials: what may be printed and written."""
        self.timeout = timeout
        self._headers = {"Accept": "application/json"}
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()

    def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET path?params``: the answer's ``data`` (and ``warnings``) on success."""
        request = urllib.request.Request(
            f"{self.url}{path}?{urlencode(params)}", headers=self._headers
        )
        where = f"Prometheus at {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _api_error(exc.read())
            raise EvidenceError(
                f"{where} answered {exc.code} {exc.reason} to {path}"
                + (f": {detail}" if detail else "")
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise EvidenceError(f"{where} is unreachable: {reason}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise EvidenceError(
                f"{where}: {path} did not answer JSON (is this Prometheus?)"
            ) from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            detail = answer.get("error", "no error given") if isinstance(answer, dict) else ""
            raise EvidenceError(f"{where} answered an error to {path}: {detail}")
        out: dict[str, Any] = {"data": answer.get("data")}
        if answer.get("warnings"):
            out["warnings"] = answer["warnings"]
        return out


def _api_error(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200]
    return str(answer.get("error", "")) if isinstance(answer, dict) else ""


def _num(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


def fired_alerts(matrix: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Raw ``ALERTS{alertstate="firing"}`` samples -> one entry per alert (name and
    labels), with the first and last evaluation seen firing."""
    out = []
    for series in matrix:
        labels = {k: v for k, v in series["metric"].items() if k not in ("__name__", "alertstate")}
        stamps = [float(t) for t, _ in series["values"]]
        if not stamps:
            continue
        name = labels.pop("alertname", "")
        first, last = min(stamps), max(stamps)
        out.append(
            {
                "alertname": name,
                "labels": dict(sorted(labels.items())),
                "first_seen": rfc3339(first),
                "last_seen": rfc3339(last),
                "first_seen_unix": first,
                "last_seen_unix": last,
                "samples": len(stamps),
            }
        )
    return sorted(out, key=lambda a: (a["alertname"], sorted(a["labels"].items())))


def collect(client: Client, start: float, end: float, step: float) -> dict[str, Any]:
    """Run every query over the window; the evidence document."""
    results = []
    for q in queries():
        params = {"query": q.expr, "start": _num(start), "end": _num(end), "step": _num(step)}
        answer = client.get("/api/v1/query_range", params)
        results.append(
            {
                "name": q.name,
                "group": q.group,
                "endpoint": "/api/v1/query_range",
                **params,
                **answer,
            }
        )
    seconds = max(1, math.ceil(end - start))
    alerts_q = {"query": f'ALERTS{{alertstate="firing"}}[{seconds}s]', "time": _num(end)}
    answer = client.get("/api/v1/query", alerts_q)
    data = answer.get("data") or {}
    if data.get("resultType") != "matrix":
        raise EvidenceError(
            f"Prometheus at {client.url} answered a {data.get('resultType')} to a range selector"
        )
    fired = fired_alerts(data.get("result") or [])
    results.append(
        {
            "name": "alerts_fired",
            "group": "alerts",
            "endpoint": "/api/v1/query",
            **alerts_q,
            "data": {"resultType": "summary", "alerts": len(fired)},
            **({"warnings": answer["warnings"]} if "warnings" in answer else {}),
        }
    )
    return {
        "format": FORMAT,
        "kind": "session_evidence",
        "window": {
            "start": rfc3339(start),
            "end": rfc3339(end),
            "start_unix": start,
            "end_unix": end,
            "step_seconds": step,
        },
        "prometheus": client.url,
        "bundle_version": version(),
        "exported_at": rfc3339(time.time()),
        "queries": results,
        "alerts_fired": fired,
    }


def stamp(end: float) -> str:
    """``20261201T163000Z``: the window's end in UTC, to the second."""
    return datetime.fromtimestamp(math.floor(end), UTC).strftime("%Y%m%dT%H%M%SZ")


def write(document: Mapping[str, Any], end: float, out: Path) -> tuple[Path, Path]:
    """``metrics_<stamp>.json.gz`` and its ``.sha256`` line, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    base = f"metrics_{stamp(end)}"
    path, manifest = out / f"{base}.json.gz", out / f"{base}.sha256"
    text = json.dumps(document, indent=1, ensure_ascii=False).encode() + b"\n"
    data = gzip.compress(text, compresslevel=9, mtime=0)
    for target, content in ((path, data), (manifest, _sha_line(data, path.name))):
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target)
    return path, manifest


def _sha_line(data: bytes, name: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()


def parse_time(value: str) -> float:
    """RFC 3339 (with ``Z`` or an offset) or Unix seconds -> Unix seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r}: expected RFC 3339 or Unix seconds") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r}: give a time zone (Z or +HH:MM)")
    return parsed.timestamp()


def window(
    start: str | None, end: str | None, last: str | None, step: str, now: float
) -> tuple[float, float, float]:
    """(start, end, step) in seconds from the arguments; ValueError says what is wrong."""
    step_s = parse_duration(step)
    if last is not None:
        if start is not None or end is not None:
            raise ValueError("--last excludes --start and --end")
        t1 = now
        t0 = now - parse_duration(last)
    elif start is None or end is None:
        raise ValueError("give --start and --end, or --last")
    else:
        t0, t1 = parse_time(start), parse_time(end)
    if t1 <= t0:
        raise ValueError("the window ends before it starts")
    points = math.floor((t1 - t0) / step_s) + 1
    if points > MAX_POINTS:
        raise ValueError(
            f"{points} steps of {step} in the window; Prometheus returns at most "
            f"{MAX_POINTS} points per series: use a larger --step"
        )
    return t0, t1, step_s


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bundle.evidence", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--prometheus", required=True, help="Prometheus base URL (user:pass@ allowed)")
    p.add_argument("--start", help="window start: RFC 3339 or Unix seconds")
    p.add_argument("--end", help="window end: RFC 3339 or Unix seconds")
    p.add_argument("--last", help="the window is the last DURATION up to now (e.g. 8h)")
    p.add_argument("--step", default="30s", help="resolution of the ranges (default 30s)")
    p.add_argument("--out", type=Path, default=Path("."), help="directory (default .)")
    p.add_argument("--timeout", default="30s", help="timeout of each request (default 30s)")
    args = p.parse_args(argv)
    try:
        t0, t1, step = window(args.start, args.end, args.last, args.step, time.time())
        client = Client(args.prometheus, parse_duration(args.timeout))
    except ValueError as exc:
        p.error(str(exc))
    try:
        document = collect(client, t0, t1, step)
    except EvidenceError as exc:
        print(f"bundle.evidence: {exc}", file=sys.stderr)
        return 1
    try:
        path, manifest = write(document, t1, args.out)
    except OSError as exc:
        print(f"bundle.evidence: cannot write the evidence: {exc}", file=sys.stderr)
        return 1
    n = sum(len((q.get("data") or {}).get("result") or []) for q in document["queries"])
    print(
        f"wrote {path} ({path.stat().st_size} bytes; {len(document['queries'])} queries, "
        f"{n} series, {len(document['alerts_fired'])} alerts fired) and {manifest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
