"""The exporter as a process: signals, reloads, secrets, promtool, TLS and basic auth."""

from __future__ import annotations

import base64
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from exporter.cli import http_limits
from exporter.server import HTTPLimits
from stack import Exporter, Redis, free_port, wait_for_port

from .helpers import parse, self_signed_cert, value

SECRET = "s3cr3t-Redis-pa55word"
WRONG = "wr0ng-Redis-pa55word"


def _get(url: str, **headers: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _wait_metrics(url: str, *checks: str, timeout: float = 10) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status, text = _get(url + "/metrics")
        if status == 200 and all(check in text for check in checks):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{checks!r} never all appeared in /metrics")


def _config(server: Redis, tmp: Path) -> Path:
    pw = tmp / "redis-password"
    pw.write_text(SECRET + "\n")
    cfg = tmp / "config.yml"
    cfg.write_text(rf"""
redis:
  - {{name: good, address: "{server.address}", password_file: {pw}, interval: 1s,
      timeout: 500ms}}
  - {{name: bad, address: "{server.address}", password: "${{TRADEOPS_WRONG_PW}}",
      interval: 1s, timeout: 500ms}}
modules:
  redis_local:
    kind: redis
    allowed_targets: ['127\.0\.0\.1:\d+']
    params: {{password_file: {pw}}}
""")
    return cfg


@pytest.fixture
def secret_redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path, password=SECRET).start()
    yield server
    server.stop()


def test_secrets_appear_nowhere(secret_redis: Redis, tmp_path: Path) -> None:
    os.environ["TRADEOPS_WRONG_PW"] = WRONG
    try:
        exp = Exporter(
            tmp_path, _config(secret_redis, tmp_path), extra_args=["--log-level", "debug"]
        ).start()
    finally:
        del os.environ["TRADEOPS_WRONG_PW"]
    url = f"http://{exp.address}"
    try:
        # each target reports on its own schedule: wait for both
        text = _wait_metrics(url, 'reason="auth"} 1', 'tradeops_up{kind="redis",target="good"}')
        m = parse(text)
        assert value(m, "tradeops_up", kind="redis", target="good") == 1
        assert value(m, "tradeops_up", kind="redis", target="bad") == 0
        bodies = [
            text,
            _get(url + "/")[1],
            _get(url + f"/probe?module=redis_local&target={secret_redis.address}")[1],
        ]
        # a reload with the secret written inline must fail without echoing it
        cfg = Path(exp.config_path)
        cfg.write_text(
            cfg.read_text().replace(
                f"password_file: {tmp_path}/redis-password", f"password: {SECRET}", 1
            )
        )
        req = urllib.request.Request(url + "/-/reload", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        bodies.append(err.value.read().decode())
        assert "inline secrets are not accepted" in bodies[-1]
    finally:
        exp.stop()
    log = exp.log_path.read_text()
    assert "probe failed" in log and "reason=auth" in log
    for body in [*bodies, log]:
        assert SECRET not in body
        assert WRONG not in body


def test_sigterm_drains_and_exits_quickly(redis_server: Redis, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        f"redis:\n  - {{name: c, address: '{redis_server.address}', interval: 1s, "
        f"timeout: 900ms}}\n"
    )
    redis_server.pause()  # a probe is in flight, hung, when the signal arrives
    exp = Exporter(tmp_path, cfg).start()
    try:
        assert exp.proc is not None
        time.sleep(0.3)
        start = time.monotonic()
        exp.proc.send_signal(signal.SIGTERM)
        assert exp.proc.wait(10) == 0
        assert time.monotonic() - start < 5
    finally:
        redis_server.resume()
        exp.stop()
    assert "msg=stopped" in exp.log_path.read_text()


def test_sighup_reloads(redis_server: Redis, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    line = "  - {{name: {n}, address: '{a}', interval: 1s, timeout: 500ms}}\n"
    cfg.write_text("redis:\n" + line.format(n="one", a=redis_server.address))
    exp = Exporter(tmp_path, cfg).start()
    try:
        assert exp.proc is not None
        _wait_metrics(f"http://{exp.address}", 'tradeops_up{kind="redis",target="one"} 1')
        cfg.write_text("redis:\n" + line.format(n="two", a=redis_server.address))
        exp.proc.send_signal(signal.SIGHUP)
        text = _wait_metrics(f"http://{exp.address}", 'tradeops_up{kind="redis",target="two"} 1')
        assert 'target="one"' not in text
    finally:
        exp.stop()


def _wait_value(url: str, want: float, name: str, timeout: float = 10, **labels: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status, text = _get(url + "/metrics")
        if status == 200 and value(parse(text), name, **labels) == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name}{labels} never became {want}")


def _post_reload(url: str) -> tuple[int, str]:
    req = urllib.request.Request(url + "/-/reload", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


RELOAD_OK = "tradeops_exporter_config_last_reload_successful"


def test_reload_of_a_file_that_is_not_utf8_keeps_the_running_config(
    redis_server: Redis, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yml"
    good = f"redis:\n  - {{name: one, address: '{redis_server.address}', interval: 1s}}\n"
    # Latin-1, as an editor might save it, with a line that must never reach the log
    bad = good.replace("one", "caf\xe9").encode("latin-1") + b"# MARKER-7f3a \xff\xfe\n"
    problem = f"{cfg}: line 2 column 15: not UTF-8 text"
    cfg.write_text(good)
    exp = Exporter(tmp_path, cfg).start()
    url = f"http://{exp.address}"
    try:
        assert exp.proc is not None
        _wait_value(url, 1, "tradeops_up", kind="redis", target="one")
        cfg.write_bytes(bad)
        exp.proc.send_signal(signal.SIGHUP)
        _wait_value(url, 0, RELOAD_OK)
        runs = value(
            parse(_get(url + "/metrics")[1]),
            "tradeops_probe_runs_total",
            target="one",
            kind="redis",
        )
        assert runs is not None
        _wait_value(url, runs + 1, "tradeops_probe_runs_total", kind="redis", target="one")

        cfg.write_text(good)
        assert _post_reload(url) == (200, "config reloaded\n")
        _wait_value(url, 1, RELOAD_OK)
        cfg.write_bytes(bad)
        assert _post_reload(url) == (500, problem + "\n")
        m = parse(_get(url + "/metrics")[1])
        assert value(m, RELOAD_OK) == 0
        assert value(m, "tradeops_up", kind="redis", target="one") == 1
        assert 'target="caf' not in _get(url + "/metrics")[1]
    finally:
        exp.stop()
    log = exp.log_path.read_bytes()
    failures = [
        line
        for line in log.decode("utf-8", "replace").splitlines()
        if "config reload failed" in line
    ]
    assert len(failures) == 2, log  # SIGHUP, then POST
    for line in failures:
        assert f'problem="{problem}"' in line
    assert b"MARKER" not in log and b"\xff" not in log and b"\\xff" not in log
    assert b"Traceback" not in log and b"codec" not in log


def test_reload_that_would_remove_every_target_needs_allow_empty(
    redis_server: Redis, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"redis:\n  - {{name: one, address: '{redis_server.address}', interval: 1s}}\n")
    exp = Exporter(tmp_path, cfg).start()
    url = f"http://{exp.address}"
    try:
        assert exp.proc is not None
        _wait_value(url, 1, "tradeops_up", kind="redis", target="one")
        cfg.write_text("# redis: moved to exporter-2\n")  # commented out, by accident
        exp.proc.send_signal(signal.SIGHUP)
        _wait_value(url, 0, RELOAD_OK)
        assert (
            value(parse(_get(url + "/metrics")[1]), "tradeops_up", kind="redis", target="one") == 1
        )

        cfg.write_text("allow_empty: true  # redis: moved to exporter-2\n")
        exp.proc.send_signal(signal.SIGHUP)
        _wait_value(url, 1, RELOAD_OK)
        assert (
            value(parse(_get(url + "/metrics")[1]), "tradeops_up", kind="redis", target="one")
            is None
        )
    finally:
        exp.stop()
    log = exp.log_path.read_text()
    assert (
        f'problem="{cfg}: no targets: this reload would remove every running target (1); if that is'
        " intended, say so with 'allow_empty: true' at the top level\"" in log
    )


def test_promtool_accepts_the_exposition(redis_server: Redis, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(rf"""
redis:
  - name: c
    address: "{redis_server.address}"
    interval: 1s
    timeout: 500ms
    canary: {{}}
    heartbeats: [{{name: hb, key: hb}}]
    streams: [{{name: s, key: s}}]
modules:
  m: {{kind: redis, allowed_targets: ['127\.0\.0\.1:\d+']}}
""")
    exp = Exporter(tmp_path, cfg).start()
    try:
        url = f"http://{exp.address}"
        text = _wait_metrics(url, "tradeops_redis_canary_success")
        probe = _get(url + f"/probe?module=m&target={redis_server.address}")[1]
    finally:
        exp.stop()
    for body in (text, probe):
        out = subprocess.run(
            ["promtool", "check", "metrics"], input=body, text=True, capture_output=True, timeout=30
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip() == "" and out.stderr.strip() == ""


def test_tls_and_basic_auth_from_web_config(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    cfg = tmp_path / "c.yml"
    cfg.write_text("")
    port = free_port()
    exp = Exporter(tmp_path, cfg, port=port, extra_args=["--web-config", str(web)])

    def listening() -> None:  # /-/healthy needs TLS and auth: the port, not a fixed sleep
        wait_for_port(port, exp.ready_timeout, exp.proc)  # (start-up is slow under load)

    exp.wait_ready = listening  # type: ignore[method-assign]
    exp.start()
    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}/metrics"

    def get(auth: str | None) -> int:
        headers = (
            {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
        )
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), context=ctx, timeout=5
            ) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    try:
        assert get(None) == 401
        assert get("prometheus:wrong") == 401
        assert get("nobody:scrape-pass") == 401
        assert get("prometheus:scrape-pass") == 200
        assert get("prometheus:scrape-pass") == 200  # second time from the verified cache
        with pytest.raises(OSError):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        exp.stop()


def test_bad_web_config_exits_2(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: plaintext\n")
    cfg = tmp_path / "c.yml"
    cfg.write_text("")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "--config",
            str(cfg),
            "--web-config",
            str(web),
            "--check-config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"{web}: basic_auth_users: user 'prometheus': the password must be a bcrypt hash"
    )


def test_web_config_that_is_not_utf8_exits_2_naming_it(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_bytes(b"basic_auth_users:\n  andr\xe9: '$2b$04$x'\n")
    cfg = tmp_path / "c.yml"
    cfg.write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "--config", str(cfg), "--web-config", str(web),
         "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == f"{web}: line 2 column 7: not UTF-8 text"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--header-timeout", "0"], "--header-timeout: must be greater than zero"),
        (
            ["--idle-timeout", "9" * 400],
            "--idle-timeout: must be a finite duration such as 15s or 500ms",
        ),
        (["--idle-timeout", "forever"], "--idle-timeout: expected a duration such as 15s or 500ms"),
        (["--max-connections", "0"], "--max-connections: expected a whole number of at least 1"),
        (["--max-connections", "-5"], "--max-connections: expected a whole number of at least 1"),
    ],
)
def test_bad_http_limits_are_refused(args: list[str], message: str) -> None:
    flags = dict(zip(args[::2], args[1::2], strict=True))
    with pytest.raises(ValueError) as err:
        http_limits(
            flags.get("--header-timeout", "10s"),
            flags.get("--idle-timeout", "2m"),
            flags.get("--max-connections", "256"),
        )
    assert str(err.value) == message


def test_http_limits_from_flags() -> None:
    assert http_limits("500ms", "2m", "64") == HTTPLimits(0.5, 120.0, 64)
    assert HTTPLimits() == HTTPLimits(10.0, 120.0, 256)


def test_bad_http_limit_flag_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "--config", str(cfg), "--header-timeout", "0s",
         "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == "--header-timeout: must be greater than zero"
