"""docker-compose.yml, the Dockerfile and deploy/compose/, checked without a
Docker engine (none runs here).

- ``docker-compose config`` (Debian's docker-compose 1.29) accepts the file; the
  rest of the checks read its normalised output, so they see what compose sees.
- Every file or directory a service mounts or builds from exists in the
  repository; every image is pinned; the build context (.dockerignore) is what
  the Dockerfile copies, and nothing else.
- The configurations as the containers see them: each container path is
  translated to the repository file mounted there. The exporter's config passes
  ``--check-config``; Prometheus' passes ``promtool check config`` with the rules
  as mounted (every rules/*.yml must be found: an unmatched glob would pass); the
  Alertmanager config written by the ``alertmanager-config`` service's own
  command passes ``amtool check-config`` with its templates and secret files as
  mounted; Grafana's provisioned datasource is the default, of the type and uid
  the dashboards select.
- The addresses and ports agree: what a config names is a compose service
  listening there.
- The compose processes run natively: the FIX acceptor, the runtime stand-in,
  the traffic and the backups run from their compose commands against real
  services on loopback, and the exporter, on the compose config translated to
  those addresses, sees every target up (the runtime stand-in serves the
  runtime contract's series Prometheus scrapes as job trading-runtime); the
  image's HEALTHCHECK command answers on a real exporter; the sinks accept the
  demo secret files.
- Nothing drifts from the native demo: the compose exporter targets, Prometheus
  settings and wired Alertmanager config are compared with what
  ``python -m stack demo`` writes (but for the exceptions listed here, each
  with its reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from redis.exceptions import RedisError

from bundle.contract import CONTRACT
from stack import Postgres, Redis, Tansu, TimescaleLite, compose_traffic, free_port, wait_for_port
from stack import compose as stack_compose
from stack.alerting import SECRETS_PREFIX, TEMPLATES_PREFIX, wire_config
from stack.redis_ha import RedisCluster, SentinelGroup, wait_until
from stack.redis_ha import command as redis_command
from stack.services import find_binary
from stack.sim_hypertable import HYPERTABLE as HT
from stack.sim_kafka import KafkaSimulator
from stack.sinks import Sinks

from .helpers import Series, parse, service_root

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOY = REPO / "deploy" / "compose"
PYTHON = sys.executable
OUR_IMAGE = "tradeops-exporter:local"
SERVICES = {
    "redis",
    "redis-sessions",
    "redis-sessions-replica",
    "sentinel-1",
    "sentinel-2",
    "sentinel-3",
    "redis-trades-1",
    "redis-trades-2",
    "redis-trades-3",
    "redis-trades-init",
    "timescaledb",
    "kafka",
    "fix-acceptor",
    "eventbus",
    "traffic",
    "backups",
    "exporter",
    "sinks",
    "alertmanager-config",
    "alertmanager",
    "prometheus",
    "grafana",
    "drill",
}
ONLY_NATIVE = {
    ("backups", "pg-pgbackrest"): "pgBackRest runs beside the database's data directory,"
    " which in compose is another container",
}
"""Demo targets compose leaves out, and why (the exporter config says so too)."""
ONLY_NATIVE_FIELDS = {
    ("timescale", "tsdb"): {
        "statement_cache": False,
        "keep_connection": False,
    },
}
"""Fields of demo targets compose leaves out: the demo's TimescaleDB is PGlite, which
serves one client at a time through one backend shared by every client, so its
target sends unnamed statements and holds no connection between runs
(docs/timescale.md); compose runs the TimescaleDB image, a real server, where the
defaults apply (the exporter config says so too). The natively run compose
exporter, whose stand-in for that server is PGlite, gets them back."""
LOCATION_KEYS = {
    "address",
    "bootstrap_servers",
    "url",
    "path",
    "store_path",
    "log_path",
    "sentinels",
    "cluster",
}
"""Fields of an exporter target that say where, not what: they differ by design
(lists of addresses are compared by length)."""
ADDRESS_KEYS = {"address", "bootstrap_servers", "url", "sentinels", "cluster"}
"""Fields of an exporter target that name a server (a list: one per element)."""


# --- docker-compose config --------------------------------------------------------


def docker_compose() -> str:
    """Debian's docker-compose (``make setup`` installs it)."""
    return find_binary("docker-compose", "/usr/bin/docker-compose")


def compose_config(*args: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f docker-compose.yml [ARGS] config`` in the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [docker_compose(), "-f", str(COMPOSE_FILE), *args, "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as docker-compose normalises it (paths absolute, variables set)."""
    out = compose_config("--profile", "tools")
    assert out.returncode == 0, out.stdout + out.stderr
    doc: dict[str, Any] = yaml.safe_load(out.stdout)
    return doc


def service(compose: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One service of the normalised file."""
    svc: dict[str, Any] = compose["services"][name]
    return svc


def command(svc: Mapping[str, Any]) -> list[str]:
    """A service's command as a list."""
    cmd = svc.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def flag(cmd: Sequence[str], name: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in a command."""
    for i, arg in enumerate(cmd):
        if arg == name:
            return cmd[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {cmd}")


def port_of(address: str) -> int:
    """The port of ``host:port`` (``:port`` too)."""
    return int(address.rpartition(":")[2])


@dataclass(frozen=True)
class Mount:
    """One volume entry of a service."""

    source: str
    """A host path (bind mount) or a volume name."""
    target: str
    read_only: bool

    @property
    def bind(self) -> bool:
        """A bind mount of a host path (else a named volume)."""
        return self.source.startswith(("/", "."))


def mounts(svc: Mapping[str, Any]) -> list[Mount]:
    """A service's volumes, from the short (``src:dst:mode``) or long syntax."""
    found: list[Mount] = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, str):
            parts = entry.split(":")
            mode = parts[2] if len(parts) > 2 else "rw"
            found.append(Mount(parts[0], parts[1], "ro" in mode.split(",")))
        else:
            found.append(
                Mount(str(entry["source"]), str(entry["target"]), bool(entry.get("read_only")))
            )
    return found


def mount_at(svc: Mapping[str, Any], container_path: str) -> tuple[Mount, str]:
    """The mount a container path lies under (the deepest one) and the rest of the path."""
    best: tuple[Mount, str] | None = None
    for m in mounts(svc):
        target = m.target.rstrip("/")
        if container_path == target or container_path.startswith(target + "/"):
            rest = container_path[len(target) :].lstrip("/")
            if best is None or len(target) > len(best[0].target.rstrip("/")):
                best = (m, rest)
    assert best is not None, f"nothing is mounted at {container_path}"
    return best


def host_path(svc: Mapping[str, Any], container_path: str) -> Path:
    """The repository path a bind mount shows at ``container_path``."""
    m, rest = mount_at(svc, container_path)
    assert m.bind, f"{container_path} is in volume {m.source}, not a file of the repository"
    return Path(m.source) / rest if rest else Path(m.source)


def translated(text: str, svc: Mapping[str, Any], prefixes: Sequence[str]) -> str:
    """``text`` with each container directory in ``prefixes`` replaced by the
    repository directory mounted there in ``svc``."""
    for prefix in prefixes:
        text = text.replace(prefix, f"{host_path(svc, prefix.rstrip('/'))}/")
    return text


def test_docker_compose_config_accepts_the_file(compose: dict[str, Any]) -> None:
    """Every service is there; only the drill waits for ``--profile tools``."""
    assert set(compose["services"]) == SERVICES
    # `up` leaves the drill to `docker compose run --rm drill`
    profiled = {
        name: svc["profiles"] for name, svc in compose["services"].items() if "profiles" in svc
    }
    assert profiled == {"drill": ["tools"]}


def test_docker_compose_config_rejects_a_broken_copy(tmp_path: Path) -> None:
    """The check can fail: a misspelt service key."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("healthcheck:", "healthchek:", 1))
    out = subprocess.run(
        [docker_compose(), "-f", str(broken), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "healthchek" in out.stderr


# --- files, images, build context -------------------------------------------------------


def test_every_mounted_or_built_path_exists(compose: dict[str, Any]) -> None:
    """Build contexts and Dockerfiles, bind-mounted files and directories (inside the
    repository, read-only), named volumes (declared)."""
    volumes = set(compose.get("volumes") or {})
    binds = 0
    for name, svc in compose["services"].items():
        if "build" in svc:
            context = Path(svc["build"]["context"])
            assert context == REPO, name
            assert (context / svc["build"].get("dockerfile", "Dockerfile")).is_file(), name
            assert svc["image"] == OUR_IMAGE, name
        for m in mounts(svc):
            if m.bind:
                source = Path(m.source)
                assert source.exists(), f"{name}: {m.source} does not exist"
                assert source.resolve().is_relative_to(REPO), f"{name}: {m.source}"
                assert m.read_only, f"{name}: the repository's {m.source} is mounted writable"
                binds += 1
            else:
                assert m.source in volumes, f"{name}: volume {m.source} is not declared"
    assert binds >= 10


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    """Every image names a version; the database and broker are the official images."""
    for name, svc in compose["services"].items():
        image = str(svc["image"])
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and "/" not in tag, f"{name}: {image}"
        if image != OUR_IMAGE:
            assert re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"
    assert service(compose, "timescaledb")["image"].startswith("timescale/timescaledb:")
    assert service(compose, "kafka")["image"].startswith("apache/kafka:")


def test_our_services_run_entry_points_that_exist(compose: dict[str, Any]) -> None:
    """Every service of the exporter's image runs ``python -m MODULE``; the
    ``stack.compose`` commands parse."""
    parser = stack_compose._parser()
    seen: set[str] = set()
    for name, svc in compose["services"].items():
        if svc["image"] != OUR_IMAGE:
            continue
        cmd = command(svc)
        assert cmd[:2] == ["python", "-m"], f"{name}: {cmd}"
        module = REPO.joinpath(*cmd[2].split("."))
        assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), name
        if cmd[2] == "stack.compose":
            args = parser.parse_args(cmd[3:])
            seen.add(args.command)
        assert svc.get("init") is True, f"{name}: python as PID 1 ignores SIGTERM"
    assert seen == {
        "alertmanager-config",
        "sinks",
        "eventbus",
        "traffic",
        "backups",
        "redis-cluster",
    }


def test_health_checks_use_each_service_s_own_port(compose: dict[str, Any]) -> None:
    """The image's HEALTHCHECK is the exporter's; other services of the image say
    their own (or none)."""
    for name, svc in compose["services"].items():
        if svc["image"] != OUR_IMAGE or name == "exporter":
            continue
        test = svc["healthcheck"]["test"]
        if test == ["NONE"]:
            continue
        assert test[:5] == ["CMD", "python", "-m", "stack.compose", "healthcheck"], name
        cmd = command(svc)
        listen = flag(cmd, "--listen") if "--listen" in " ".join(cmd) else f":{flag(cmd, '--port')}"
        assert urlsplit(test[5]).port == port_of(listen), name
    assert "healthcheck" not in service(compose, "exporter"), "the image's HEALTHCHECK applies"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction."""

    keyword: str
    args: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped)."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            found.append(Instruction(keyword.upper(), args.strip()))
    return found


def final_stage() -> list[Instruction]:
    """The instructions of the Dockerfile's last stage."""
    steps = dockerfile()
    last = max(i for i, s in enumerate(steps) if s.keyword == "FROM")
    return steps[last:]


def build_arg(name: str) -> str:
    """The default of an ``ARG`` of the Dockerfile."""
    for step in dockerfile():
        if step.keyword == "ARG" and step.args.startswith(name + "="):
            return step.args.split("=", 1)[1]
    raise AssertionError(f"no ARG {name}")


def copy_sources() -> list[str]:
    """Every path the Dockerfile copies from the build context."""
    sources: list[str] = []
    for step in dockerfile():
        if step.keyword != "COPY":
            continue
        words = step.args.split()
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, pattern) per .dockerignore line, as Docker compiles them."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def in_context(relative: str, rules: Sequence[tuple[bool, re.Pattern[str]]]) -> bool:
    """True when the build context holds ``relative``: the last rule that matches it
    or one of its parent directories decides (Docker's semantics)."""
    parts = relative.split("/")
    excluded = False
    for negate, regex in rules:
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return not excluded


def context_files() -> set[str]:
    """Every repository file the build context holds (the .git and .venv trees are
    checked at their top only)."""
    rules = dockerignore_rules()
    found: set[str] = set()
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO).as_posix()
        if relative.split("/")[0] in (".git", ".venv"):
            continue
        if path.is_file() and in_context(relative, rules):
            found.add(relative)
    return found


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    """What .dockerignore lets in is exactly what the Dockerfile copies."""
    copied: set[str] = set()
    for source in copy_sources():
        path = REPO / source
        assert path.exists(), f"the Dockerfile copies {source}, which does not exist"
        if path.is_dir():
            copied |= {
                p.relative_to(REPO).as_posix()
                for p in path.rglob("*")
                if p.is_file() and not {"__pycache__", "node_modules"} & set(p.parts)
            }
        else:
            copied.add(source)
    context = context_files()
    assert copied <= context, f"copied but left out by .dockerignore: {sorted(copied - context)}"
    assert context <= copied, f"sent to the daemon, never copied: {sorted(context - copied)}"
    rules = dockerignore_rules()
    for outside in (".git/HEAD", ".venv/bin/python", "tests/test_compose.py", "dist/x.tar.gz"):
        assert not in_context(outside, rules), outside
    assert not in_context("exporter/__pycache__/cli.cpython-311.pyc", rules)


def test_the_image_is_slim_python_3_11_and_runs_as_a_user_of_its_own() -> None:
    """A python:3.11-slim base in every stage; the last runs as a numeric non-root user
    that the image creates."""
    base = build_arg("PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base
    assert all(s.args.split()[0] == "${PYTHON_IMAGE}" for s in dockerfile() if s.keyword == "FROM")
    users = [s.args for s in final_stage() if s.keyword == "USER"]
    assert users, "the image runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, users  # numeric: runAsNonRoot can check it
    run = " ".join(s.args for s in final_stage() if s.keyword == "RUN")
    assert f"--uid {uid}" in run


def healthcheck_command() -> list[str]:
    """The exec-form command of the image's HEALTHCHECK."""
    (check,) = [s.args for s in final_stage() if s.keyword == "HEALTHCHECK"]
    cmd = json.loads(check[check.index("CMD") + 3 :])
    assert isinstance(cmd, list)
    return [str(c) for c in cmd]


def healthcheck_url() -> str:
    """The URL the image's HEALTHCHECK requests."""
    found: list[str] = re.findall(r"https?://[^'\"]+", " ".join(healthcheck_command()))
    (url,) = found
    return url


def test_the_healthcheck_asks_the_exporter_s_port_for_healthy(compose: dict[str, Any]) -> None:
    """The HEALTHCHECK requests /-/healthy on the port the image's and the compose
    service's exporter command listen on (and compose publishes)."""
    url = urlsplit(healthcheck_url())
    assert url.path == "/-/healthy"
    assert url.hostname == "127.0.0.1"
    (cmd,) = [json.loads(s.args) for s in final_stage() if s.keyword == "CMD"]
    assert cmd[:3] == ["python", "-m", "exporter"]
    assert port_of(flag(cmd, "--listen")) == url.port
    exporter = command(service(compose, "exporter"))
    assert exporter[:3] == ["python", "-m", "exporter"]
    assert port_of(flag(exporter, "--listen")) == url.port
    assert flag(exporter, "--config") == flag(cmd, "--config")
    published = [str(p) for p in service(compose, "exporter")["ports"]]
    assert any(re.search(f":{url.port}(/tcp)?$", p) for p in published), published


def test_the_image_s_healthcheck_answers_on_a_real_exporter(tmp_path: Path) -> None:
    """The HEALTHCHECK command, run here against the exporter on a free port:
    0 while it serves, non-zero once it has stopped."""
    config = tmp_path / "exporter.yml"
    config.write_text("global:\n  interval: 5s\n")
    port = free_port()
    url = healthcheck_url()
    here = url.replace(f":{urlsplit(url).port}/", f":{port}/")
    check = [PYTHON if c == "python" else c.replace(url, here) for c in healthcheck_command()]
    proc = subprocess.Popen(
        [PYTHON, "-m", "exporter", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30, proc)
        assert subprocess.run(check, timeout=30, check=False).returncode == 0
    finally:
        proc.terminate()
        proc.wait(10)
    assert subprocess.run(check, timeout=30, capture_output=True, check=False).returncode != 0


# --- the exporter -------------------------------------------------------------------------


def exporter_config_path(compose: Mapping[str, Any]) -> Path:
    """The repository file the exporter container reads as its config."""
    svc = service(compose, "exporter")
    return host_path(svc, flag(command(svc), "--config"))


def compose_exporter_config(compose: Mapping[str, Any]) -> dict[str, Any]:
    """deploy/compose/exporter.yml (found through the exporter's mount), parsed."""
    doc: dict[str, Any] = yaml.safe_load(exporter_config_path(compose).read_text())
    return doc


def test_the_exporter_config_passes_check_config(compose: dict[str, Any]) -> None:
    """``--check-config`` with the environment compose gives the container (and not
    without it: the password is a ``${VAR}`` reference)."""
    svc = service(compose, "exporter")
    path = exporter_config_path(compose)
    assert path == DEPLOY / "exporter.yml"
    env = {**os.environ, **{k: str(v) for k, v in (svc.get("environment") or {}).items()}}

    def check_config(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "exporter", "--config", str(path), "--check-config"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env=environment,
            check=False,
        )

    out = check_config(env)
    assert out.returncode == 0, out.stdout + out.stderr
    # without the environment compose gives it, the password reference fails
    out = check_config({k: v for k, v in env.items() if k not in (svc.get("environment") or {})})
    assert out.returncode == 2 and "is not set" in out.stderr, out.stderr


def targets(config: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> target, for every section of an exporter config."""
    return {
        (kind, str(t["name"])): t
        for kind, section in config.items()
        if kind not in ("global", "modules", "calendars")
        for t in section
    }


def strings_at(value: Any, keys: set[str]) -> Iterator[tuple[str, str]]:
    """(key, value) of every string under one of ``keys``, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in keys and isinstance(v, str):
                yield k, v
            else:
                yield from strings_at(v, keys)
    elif isinstance(value, list):
        for v in value:
            yield from strings_at(v, keys)


def listen_ports(compose: Mapping[str, Any]) -> dict[str, set[int]]:
    """Service (or network alias) -> the ports it listens on inside the compose
    network. A redis image's server listens on 6379, a Sentinel on the ``port`` its
    config script writes."""
    ports: dict[str, set[int]] = {
        "timescaledb": {5432},
        "kafka": {port_of(service(compose, "kafka")["environment"]["KAFKA_ADVERTISED_LISTENERS"])},
    }
    for name, svc in compose["services"].items():
        cmd = command(svc)
        for option in ("--listen", "--web.listen-address", "--port"):
            if any(a == option or a.startswith(option + "=") for a in cmd):
                ports.setdefault(name, set()).add(port_of(flag(cmd, option)))
        if str(svc["image"]).startswith("redis:"):
            if "--sentinel" in " ".join(cmd):
                (port,) = re.findall(r"'port (\d+)'", " ".join(cmd))
                ports[name] = {int(port)}
            else:
                ports[name] = {6379}
    ports.setdefault("grafana", set()).add(3000)
    for name, svc in compose["services"].items():
        for network in (svc.get("networks") or {}).values():
            for alias in (network or {}).get("aliases") or []:
                ports[alias] = ports[name]
    return ports


def addresses(target: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, address or URL) of every server a target names."""
    for key in ADDRESS_KEYS:
        value = target.get(key)
        values = value if isinstance(value, list) else [value]
        yield from ((key, v) for v in values if isinstance(v, str))
    for nested in target.values():
        if isinstance(nested, dict):
            yield from addresses(nested)


def test_exporter_addresses_name_compose_services_on_their_ports(compose: dict[str, Any]) -> None:
    """Every address and URL of the exporter config is a compose service on a port it
    listens on."""
    listening = listen_ports(compose)
    found = 0
    for (kind, name), target in targets(compose_exporter_config(compose)).items():
        for key, value in addresses(target):
            netloc = urlsplit(value).netloc if "://" in value else value
            host, _, port = netloc.rpartition(":")
            assert port.isdigit() and int(port) in listening.get(host, set()), (
                f"{kind}/{name}: {key} {value} is no compose service listening there"
            )
            found += 1
    # fix, kafka, 2 timescale, the event bus and its canary, Redis: 1 + 3 Sentinels,
    # the replica, 3 cluster seeds
    assert found == 14


def test_exporter_paths_are_volumes_their_writers_share(compose: dict[str, Any]) -> None:
    """Each path the exporter reads lies in a volume mounted read-only into the
    exporter and writable into the service that writes it."""
    writers = {"fix": "fix-acceptor", "backups": "backups", "drills": "drill"}
    exporter = service(compose, "exporter")
    paths = list(strings_at(compose_exporter_config(compose), {"path", "store_path", "log_path"}))
    assert len(paths) == 5
    for key, path in paths:
        m, _ = mount_at(exporter, path)
        assert not m.bind and m.read_only, f"{key} {path}: {m}"
        writer = service(compose, writers[m.source])
        (theirs,) = [w for w in mounts(writer) if w.source == m.source]
        assert theirs.target == m.target and not theirs.read_only, (m, theirs)
    acceptor = command(service(compose, "fix-acceptor"))
    fix_store = targets(compose_exporter_config(compose))[("fix_store", "venue-sim")]
    assert fix_store["store_path"] == f"{flag(acceptor, '--dir')}/store"
    assert fix_store["log_path"] == f"{flag(acceptor, '--dir')}/log"
    backups = Path(flag(command(service(compose, "backups")), "--dir"))
    sources = {t["name"]: t["source"]["path"] for t in compose_exporter_config(compose)["backups"]}
    assert sources == {"pg-dumps": f"{backups}/dumps", "pg-restore-drill": f"{backups}/drills"}
    drills = compose_exporter_config(compose)["drills"][0]["path"]
    assert flag(command(service(compose, "drill")), "--record-dir") == drills


def test_the_postgres_password_is_one_setting(compose: dict[str, Any]) -> None:
    """TimescaleDB's password is the one the exporter and the PostgreSQL clients get."""
    password = service(compose, "timescaledb")["environment"]["POSTGRES_PASSWORD"]
    (ref,) = {v for _, v in strings_at(compose_exporter_config(compose), {"password"})}
    variable = ref.removeprefix("${").removesuffix("}")
    assert service(compose, "exporter")["environment"][variable] == password
    for client in ("traffic", "backups"):
        assert service(compose, client)["environment"]["PGPASSWORD"] == password


# --- Prometheus ---------------------------------------------------------------------------


def prometheus_config(compose: Mapping[str, Any]) -> tuple[dict[str, Any], Path]:
    """The compose Prometheus config (through its mount), parsed, and its path."""
    svc = service(compose, "prometheus")
    path = host_path(svc, flag(command(svc), "--config.file"))
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc, path


def mounted_rule_files(compose: Mapping[str, Any]) -> list[Path]:
    """The repository files the rule_files patterns match as mounted."""
    svc = service(compose, "prometheus")
    config, _ = prometheus_config(compose)
    found: list[Path] = []
    for pattern in config["rule_files"]:
        assert pattern.startswith("/"), "relative rule_files resolve against the config's directory"
        where = host_path(svc, posixpath.dirname(pattern))
        found += sorted(where.glob(posixpath.basename(pattern)))
    return found


def test_prometheus_config_passes_promtool_with_the_rules_as_mounted(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """promtool reads rule_files as the container would: each pattern is rewritten to
    the repository directory mounted there, and every rules/*.yml must be checked
    (a pattern that matches nothing passes promtool silently)."""
    config, path = prometheus_config(compose)
    assert path == DEPLOY / "prometheus.yml"
    svc = service(compose, "prometheus")
    local = dict(config)
    local["rule_files"] = [
        str(host_path(svc, posixpath.dirname(p)) / posixpath.basename(p))
        for p in config["rule_files"]
    ]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(local))
    out = subprocess.run(
        [find_binary("promtool"), "check", "config", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rules = sorted((REPO / "rules").glob("*.yml"))
    assert mounted_rule_files(compose) == rules
    assert f"SUCCESS: {len(rules)} rule files found" in out.stdout + out.stderr
    for rule_file in rules:
        assert f"Checking {rule_file}" in out.stdout + out.stderr, rule_file


def test_prometheus_scrapes_the_exporter_and_alerts_alertmanager(compose: dict[str, Any]) -> None:
    """The scrape and Alertmanager targets are those services on their listen ports:
    the exporter as job tradeops, the runtime stand-in as job trading-runtime."""
    config, _ = prometheus_config(compose)
    listening = listen_ports(compose)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"tradeops", "trading-runtime"}
    (scraped,) = [t for sc in jobs["tradeops"]["static_configs"] for t in sc["targets"]]
    (runtime,) = [t for sc in jobs["trading-runtime"]["static_configs"] for t in sc["targets"]]
    alertmanagers = config["alerting"]["alertmanagers"]
    (alerted,) = [t for am in alertmanagers for sc in am["static_configs"] for t in sc["targets"]]
    for address, name in ((scraped, "exporter"), (runtime, "eventbus"), (alerted, "alertmanager")):
        host, _, port = address.rpartition(":")
        assert host == name and int(port) in listening[name], address


# --- Alertmanager -------------------------------------------------------------------------


def wired_alertmanager_config(compose: Mapping[str, Any], out_dir: Path) -> Path:
    """Run the ``alertmanager-config`` service's command here (its source through
    its mount, its output into ``out_dir``); the file written."""
    svc = service(compose, "alertmanager-config")
    cmd = command(svc)
    source = flag(cmd, "--source")
    out = flag(cmd, "--out")
    here = {"python": PYTHON, source: str(host_path(svc, source)), out: str(out_dir / "am.yml")}
    local = [here.get(c, c) for c in cmd]
    result = subprocess.run(
        local, capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out_dir / "am.yml"


def sinks_url(compose: Mapping[str, Any]) -> str:
    """The stand-ins' base URL the wiring uses."""
    return flag(command(service(compose, "alertmanager-config")), "--sinks")


def test_alertmanager_runs_the_config_the_init_service_writes(compose: dict[str, Any]) -> None:
    """The init service writes into the volume Alertmanager reads its config from,
    from the shipped file, wired to the sinks service on its port."""
    init = service(compose, "alertmanager-config")
    am = service(compose, "alertmanager")
    written, rest = mount_at(init, flag(command(init), "--out"))
    read, rest_read = mount_at(am, flag(command(am), "--config.file"))
    assert not written.bind and written.source == read.source and rest == rest_read
    assert read.read_only and not written.read_only
    assert am["depends_on"]["alertmanager-config"]["condition"] == "service_completed_successfully"
    shipped = REPO / "alertmanager" / "alertmanager.yml"
    assert host_path(init, flag(command(init), "--source")) == shipped
    url = urlsplit(sinks_url(compose))
    assert url.hostname == "sinks"
    assert url.port == port_of(flag(command(service(compose, "sinks")), "--listen"))


def test_the_wired_alertmanager_config_passes_amtool(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """amtool on the config the init service writes, with the templates and secret
    files translated to what the alertmanager container mounts there; amtool checks
    neither, so the test does: the template glob matches the repository's
    templates, every secret file exists."""
    am = service(compose, "alertmanager")
    wired = wired_alertmanager_config(compose, tmp_path)
    local = tmp_path / "local.yml"
    local.write_text(translated(wired.read_text(), am, [TEMPLATES_PREFIX, SECRETS_PREFIX]))
    out = subprocess.run(
        [find_binary("amtool", "/usr/bin/amtool"), "check-config", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
    config = yaml.safe_load(local.read_text())
    templates = [p for pattern in config["templates"] for p in Path("/").glob(pattern[1:])]
    assert sorted(templates) == sorted((REPO / "alertmanager/templates").glob("*.tmpl"))
    file_keys = {"api_url_file", "routing_key_file", "credentials_file", "slack_api_url_file"}
    files = [v for _, v in strings_at(config, file_keys)]
    assert len(files) == 6
    for f in files:
        assert Path(f).is_file() and Path(f).is_relative_to(DEPLOY), f
    # every endpoint is a stand-in: nothing leaves the compose network
    base = sinks_url(compose)
    endpoints = [v for _, v in strings_at(config, {"url", "pagerduty_url", "slack_api_url"})]
    assert endpoints and all(e.startswith(base + "/") for e in endpoints), endpoints
    for f in files:
        text = Path(f).read_text().strip()
        if text.startswith("http"):
            assert text.startswith(base + "/slack/"), f


def test_the_demo_secret_files_are_the_ones_wire_config_writes(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The same files as the demo's wiring writes for the same stand-ins: the same
    names, the Slack webhook URLs, keys and tokens of the same shape; and the
    compose wiring is the demo's but for the secrets' and templates' directories."""
    am = service(compose, "alertmanager")
    secrets = host_path(am, SECRETS_PREFIX.rstrip("/"))
    assert secrets == DEPLOY / "alertmanager" / "secrets"
    assert host_path(service(compose, "sinks"), SECRETS_PREFIX.rstrip("/")) == secrets
    url = urlsplit(sinks_url(compose))
    assert url.hostname and url.port
    demo = wire_config(Sinks(host=url.hostname, port=url.port), tmp_path / "secrets")
    assert {p.name for p in demo.secret_files} == {p.name for p in secrets.iterdir()}
    for path, content in demo.secret_files.items():
        ours = (secrets / path.name).read_text(encoding="utf-8")
        assert ours.endswith("\n") and ours.count("\n") == 1, path.name
        if content.startswith("http"):
            assert ours.strip() == content, path.name
        elif "routing-key" in path.name:
            assert len(ours.strip()) == len(content) == 32, path.name
        else:
            assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", ours.strip()), path.name
    ours_wired = yaml.safe_load(wired_alertmanager_config(compose, tmp_path).read_text())
    demo_wired = yaml.safe_load(
        demo.text.replace(f"{tmp_path / 'secrets'}/", SECRETS_PREFIX).replace(
            f"{REPO / 'alertmanager/templates'}/", TEMPLATES_PREFIX
        )
    )
    assert ours_wired == demo_wired


async def test_the_sinks_accept_the_demo_secrets(compose: dict[str, Any]) -> None:
    """The sinks service's command, run here with its files through its mounts: the
    PagerDuty stand-in takes the demo routing keys (and no other), the dead-man's
    switch the demo token."""
    svc = service(compose, "sinks")
    cmd = command(svc)
    args = stack_compose._parser().parse_args(cmd[3:])
    port = free_port()
    sinks, read = stack_compose.make_sinks(
        f"127.0.0.1:{port}",
        host_path(svc, str(args.config)),
        host_path(svc, str(args.secrets)),
        host_path(svc, str(args.rules)),
    )
    await sinks.start()
    try:
        assert len(read) == 3 and len(sinks.alertnames) > 100
        keys = {
            f.name: f.read_text().strip()
            for f in (DEPLOY / "alertmanager/secrets").glob("pagerduty-*")
        }
        token = (DEPLOY / "alertmanager/secrets/deadmans-switch-token").read_text().strip()
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for key in [*keys.values(), "not-a-demo-key-0000000000000000"]:
                event = {
                    "routing_key": key,
                    "event_action": "trigger",
                    "payload": {"summary": "RedisDown", "source": "t", "severity": "critical"},
                }
                async with http.post(f"{base}/v2/enqueue", json=event) as resp:
                    assert resp.status == (202 if key in keys.values() else 400), key
            hook = f"{base}/heartbeat/deadmans-switch"
            async with http.post(hook, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
            async with http.post(hook) as resp:
                assert resp.status == 401
        receivers = sorted(n.receiver for n in sinks.notifications if n.sink == "pagerduty")
        assert receivers == ["pagerduty-oncall", "pagerduty-risk"]
    finally:
        await sinks.stop()


# --- Grafana ------------------------------------------------------------------------------


def provisioning(compose: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The provisioning documents Grafana reads for ``kind`` (datasources, dashboards)."""
    where = host_path(service(compose, "grafana"), f"/etc/grafana/provisioning/{kind}")
    assert where == DEPLOY / "grafana" / "provisioning" / kind
    docs = [yaml.safe_load(p.read_text()) for p in sorted(where.glob("*.y*ml"))]
    assert docs, where
    return docs


def datasource_refs(value: Any) -> Iterator[Any]:
    """Every ``datasource`` value in a dashboard, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "datasource":
                yield v
            yield from datasource_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from datasource_refs(v)


def test_grafana_provisions_the_compose_prometheus_as_the_default(compose: dict[str, Any]) -> None:
    """One datasource: the compose Prometheus, the default, with the scrape interval
    as its time interval (so ``$__rate_interval`` fits the scrapes)."""
    (doc,) = provisioning(compose, "datasources")
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["type"] == "prometheus" and ds["isDefault"] is True and ds["access"] == "proxy"
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", ds["uid"])
    url = urlsplit(ds["url"])
    assert url.hostname == "prometheus"
    assert url.port in listen_ports(compose)["prometheus"]
    prometheus, _ = prometheus_config(compose)
    assert ds["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]


def test_the_dashboards_select_the_provisioned_datasource(compose: dict[str, Any]) -> None:
    """Every query of every built dashboard goes through its ``datasource``
    variable, of the provisioned datasource's type, which starts on the default
    (the provisioned one); a concrete uid anywhere must be the provisioned one."""
    (ds,) = provisioning(compose, "datasources")[0]["datasources"]
    (provider_doc,) = provisioning(compose, "dashboards")
    (provider,) = provider_doc["providers"]
    assert provider["type"] == "file"
    grafana = service(compose, "grafana")
    folder = host_path(grafana, provider["options"]["path"])
    assert folder == REPO / "dashboards" / "build"
    assert mount_at(grafana, provider["options"]["path"])[0].read_only
    dashboards = sorted(folder.glob("*.json"))
    assert dashboards
    home = host_path(grafana, grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home in dashboards
    for path in dashboards:
        board = json.loads(path.read_text())
        variables = {v["name"]: v for v in board["templating"]["list"]}
        selector = variables["datasource"]
        assert selector["type"] == "datasource" and selector["query"] == ds["type"], path.name
        current = (selector.get("current") or {}).get("value")
        assert current in (None, "", "default", ds["uid"], ds["name"]), path.name
        refs = list(datasource_refs(board))
        assert refs, path.name
        for ref in refs:
            uid = ref.get("uid") if isinstance(ref, dict) else ref
            if isinstance(ref, dict) and ref.get("type") == "grafana":
                continue  # Grafana's built-in annotations
            if isinstance(ref, dict) and ref.get("type") not in (None, ds["type"]):
                raise AssertionError(f"{path.name}: a {ref.get('type')} datasource: {ref}")
            assert uid in ("${datasource}", "$datasource", ds["uid"]), f"{path.name}: {ref}"


# --- the compose processes, run natively ----------------------------------------------------


@dataclass
class Native:
    """Stack services standing in for the compose ones, on loopback: PGlite with
    TimescaleDB for the hypertable's server (the stack's PostgreSQL has no
    extension), a Sentinel group for the session store, cluster-mode nodes (not yet
    a cluster: the compose init joins them) for the trades cluster."""

    redis: Redis
    postgres: Postgres
    tansu: Tansu
    lite: TimescaleLite
    sessions: SentinelGroup
    trades: RedisCluster
    fix_port: int
    eventbus_port: int
    volumes: dict[str, Path]
    """Container directory -> the local directory standing in for its volume."""

    def addresses(self) -> dict[str, str]:
        """Compose address -> the local one."""
        found = {
            "fix-acceptor:9876": f"127.0.0.1:{self.fix_port}",
            "kafka:9092": self.tansu.bootstrap,
            "redis:6379": self.redis.address,
            "redis-sessions:6379": self.sessions.primary.address,
            "redis-sessions-replica:6379": self.sessions.replica.address,
            "timescaledb:5432": self.postgres.address,
            "tsdb:5432": self.lite.address,
            "eventbus:8089": f"127.0.0.1:{self.eventbus_port}",
            "0.0.0.0:8089": f"127.0.0.1:{self.eventbus_port}",
        }
        for i, sentinel in enumerate(self.sessions.sentinels, 1):
            found[f"sentinel-{i}:26379"] = sentinel.address
        for i, node in enumerate(self.trades.nodes, 1):
            found[f"redis-trades-{i}:6379"] = node.address
        return found

    def localise(self, text: str) -> str:
        """A compose argument or config text with local addresses and directories."""
        for compose_address, local in self.addresses().items():
            text = text.replace(compose_address, local)
        for container, local_dir in self.volumes.items():
            text = text.replace(container, str(local_dir))
        return text

    def exporter_config(self, compose_text: str) -> str:
        """The compose exporter config made local, with the fields the demo's PGlite
        targets need (:data:`ONLY_NATIVE_FIELDS`) given back: PGlite stands in."""
        doc = yaml.safe_load(self.localise(compose_text))
        for (kind, name), fields in ONLY_NATIVE_FIELDS.items():
            (target,) = [t for t in doc[kind] if t["name"] == name]
            target.update(fields)
        return yaml.safe_dump(doc, sort_keys=False)


def localised_command(native: Native, svc: Mapping[str, Any]) -> list[str]:
    """A compose service's command with local addresses, directories and python."""
    cmd = [PYTHON if c == "python" else native.localise(c) for c in command(svc)]
    if "--port" in cmd:  # the FIX acceptor: a free port on loopback
        cmd[cmd.index("--port") + 1] = str(native.fix_port)
        cmd[cmd.index("--host") + 1] = "127.0.0.1"
    return cmd


def localised_env(native: Native, svc: Mapping[str, Any]) -> dict[str, str]:
    """The process environment plus the service's, the database password replaced."""
    env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
    for key in env:
        if "PASSWORD" in key:
            env[key] = native.postgres.password
    return {**os.environ, **env}


ONE_SHOT = ("redis-trades-init",)
"""Compose services that do their work and exit (``restart: "no"``)."""


def test_the_compose_processes_run_natively_and_every_target_is_up(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """Redis, PostgreSQL, the Kafka-protocol broker, PGlite with TimescaleDB, a
    Sentinel group and cluster-mode Redis nodes of the native stack stand in for the
    compose images; the FIX acceptor, the runtime stand-in, the traffic, the backups
    and the cluster's init run their compose commands (addresses and volume
    directories made local; the init joins the nodes and exits); the exporter runs
    the compose config made local the same way, and sees every target up."""
    with service_root("compose") as root, ThreadPoolExecutor(1) as pool:
        volumes = {
            "/var/lib/tradeops/fix": root / "fix",
            "/var/lib/tradeops/backups": root / "backups",
            "/var/lib/tradeops/drills": root / "drills",
        }
        for d in volumes.values():
            d.mkdir()
        lite = TimescaleLite(root)
        lite_started = pool.submit(lite.start)  # the slowest to start: meanwhile
        redis, postgres, tansu = Redis(root), Postgres(root), Tansu(root)
        sessions = SentinelGroup(root / "sessions", master="sessions")
        trades = RedisCluster(root / "trades")
        started: list[Redis | Postgres | Tansu | SentinelGroup] = []
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for server in (redis, postgres, tansu, sessions):
                started.append(server.start())
            for node in trades.nodes:
                started.append(node.start())
            native = Native(
                redis, postgres, tansu, lite, sessions, trades, free_port(), free_port(), volumes
            )

            def run(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
                log = (root / f"{name}.log").open("wb")
                proc = subprocess.Popen(
                    cmd,
                    cwd=REPO,
                    env=localised_env(native, service(compose, name)),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                log.close()
                procs[name] = proc
                return proc

            for name in ("fix-acceptor", "eventbus", "redis-trades-init"):
                proc = run(name, localised_command(native, service(compose, name)))
                if name == "fix-acceptor":
                    wait_for_port(native.fix_port, 30, proc)
            lite_started.result(timeout=90)
            for name in ("traffic", "backups"):
                run(name, localised_command(native, service(compose, name)))
            config = root / "exporter.yml"
            config.write_text(native.exporter_config(exporter_config_path(compose).read_text()))
            port = free_port()
            exporter = localised_command(native, service(compose, "exporter"))
            exporter[exporter.index("--config") + 1] = str(config)
            exporter[exporter.index("--listen") + 1] = f"127.0.0.1:{port}"
            run("exporter", exporter)
            config_doc = compose_exporter_config(compose)
            expected = set(targets(config_doc))
            up, missing = wait_for_targets(f"http://127.0.0.1:{port}/metrics", config_doc, 90)
            logs = {p.name: p.read_text(errors="replace")[-1500:] for p in root.glob("*.log")}
            assert up == dict.fromkeys(expected, 1.0), f"{up}\n{logs}"
            assert not missing, f"{missing}\n{logs}"
            # what Prometheus scrapes as job trading-runtime: the runtime contract's series
            runtime_url = f"http://127.0.0.1:{native.eventbus_port}/metrics"
            with urllib.request.urlopen(runtime_url, timeout=5) as resp:
                runtime = parse(resp.read().decode())
            assert {name for name, _ in runtime} == {m.name for m in CONTRACT}, logs
            for name, proc in procs.items():
                if name in ONE_SHOT:
                    assert proc.wait(30) == 0, f"{name}: {logs}"
                else:
                    assert proc.poll() is None, f"{name}: {logs}"
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            for server in reversed(started):
                server.stop()
            with contextlib.suppress(Exception):
                lite_started.result(timeout=90)
            lite.stop()


def redis_image_command(
    svc: Mapping[str, Any], port: int, workdir: Path, ports: Mapping[str, int]
) -> list[str]:
    """A redis image service's ``redis-server`` command, run here: on ``port`` of
    loopback in ``workdir``, each compose hostname of ``ports`` (and its port 6379
    after it) as localhost on its local port."""
    cmd = command(svc)
    assert cmd[0] == "redis-server", cmd
    local = [find_binary("redis-server")]
    for i, arg in enumerate(cmd[1:], 1):
        if arg in ports:
            local.append("localhost")
        elif arg == "6379" and cmd[i - 1] in ports:
            local.append(str(ports[cmd[i - 1]]))
        else:
            local.append(arg)
    return [*local, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]


def sentinel_script(svc: Mapping[str, Any], port: int, workdir: Path, primary: int) -> list[str]:
    """A compose Sentinel's shell command, run here: compose's ``$$`` unescaped, its
    ``/data`` in ``workdir``, redis-server run directly (the image's entrypoint only
    drops root), on ``port``, monitoring the session store's primary as localhost
    on its local port."""
    sh, flag_c, script = command(svc)
    assert (sh, flag_c) == ("sh", "-c")
    for old, new in (
        ("$$", "$"),
        ("/data/", f"{workdir}/"),
        ("exec docker-entrypoint.sh redis-server", f"exec {find_binary('redis-server')}"),
        ("'port 26379'", f"'port {port}'"),
        ("redis-sessions 6379", f"localhost {primary}"),
    ):
        assert old in script, old
        script = script.replace(old, new)
    return ["sh", "-c", script]


def test_the_compose_sentinels_fail_over_the_session_store(compose: dict[str, Any]) -> None:
    """The session store's primary, replica and three Sentinels, run here from their
    compose commands (Debian's redis-server for the image's; hostnames resolved, as
    compose's are, with localhost for each): the Sentinels find the replica and each
    other, report quorum, and fail the primary over to the replica when it hangs."""
    names = ["redis-sessions", "redis-sessions-replica", "sentinel-1", "sentinel-2", "sentinel-3"]
    ports = {name: free_port() for name in names}
    procs: list[subprocess.Popen[bytes]] = []
    with service_root("sentinels") as root:
        try:
            for name in names:
                workdir = root / name
                workdir.mkdir()
                svc = service(compose, name)
                if name.startswith("sentinel"):
                    cmd = sentinel_script(svc, ports[name], workdir, ports["redis-sessions"])
                else:
                    cmd = redis_image_command(svc, ports[name], workdir, ports)
                env = {**os.environ, **{k: "localhost" for k in svc.get("environment") or {}}}
                log = (workdir / "log").open("wb")
                procs.append(subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=log))
                log.close()
                wait_for_port(ports[name], 30, procs[-1])
            sentinels = [ports[f"sentinel-{i}"] for i in (1, 2, 3)]

            def master(port: int) -> dict[str, str]:
                reply = redis_command(port, "SENTINEL", "master", "sessions").decode()
                lines = reply.split("\r\n")
                return dict(zip(lines[2::4], lines[4::4], strict=False))

            def settled() -> bool:
                views = [master(p) for p in sentinels]
                return all(
                    v.get("num-slaves") == "1" and v.get("num-other-sentinels") == "2"
                    for v in views
                )

            def logs() -> dict[str, str]:
                return {p.name: (p / "log").read_text()[-800:] for p in root.iterdir()}

            def failed_over() -> bool:
                return int(master(sentinels[0])["port"]) == ports["redis-sessions-replica"]

            try:
                wait_until(settled, 30, "Sentinels settled")
                quorum = redis_command(sentinels[0], "SENTINEL", "ckquorum", "sessions")
                assert quorum.startswith(b"+OK"), quorum
                assert master(sentinels[0])["ip"] == "localhost"  # announced as a hostname
                assert int(master(sentinels[0])["port"]) == ports["redis-sessions"]
                os.kill(procs[0].pid, signal.SIGSTOP)  # the primary hangs
                try:
                    wait_until(failed_over, 60, "a failover to the replica")
                finally:
                    os.kill(procs[0].pid, signal.SIGCONT)
            except (TimeoutError, AssertionError) as exc:
                raise AssertionError(f"{exc}\n{logs()}") from exc
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)


def series_with(series: Series, name: str, **labels: str) -> list[float]:
    """The values of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return [v for (n, lbl), v in series.items() if n == name and want <= lbl]


def missing_data(series: Series, config: Mapping[str, Any]) -> list[str]:
    """What the traffic should have put in front of each target and the exporter does
    not show (a target can be up with a heartbeat key nobody writes)."""
    now = time.time()
    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    for t in config["fix"]:
        success = series_with(series, "tradeops_fix_probe_success", session=t["name"])
        expect(success == [1.0], f"fix/{t['name']}: the monitoring session failed ({success})")
    for t in config["fix_store"]:
        logged_on = series_with(series, "tradeops_fix_session_logged_on", session=t["name"])
        expect(logged_on == [1.0], f"fix_store/{t['name']}: not logged on ({logged_on})")
    groups = set(KafkaSimulator("unused").groups)
    for t in config["kafka"]:
        seen = {
            dict(lbl)["group"]
            for (n, lbl), _ in series.items()
            if n == "tradeops_kafka_consumer_group_status" and ("target", t["name"]) in lbl
        }
        expect(groups <= seen, f"kafka/{t['name']}: groups {sorted(seen)}, not {sorted(groups)}")
    for t in config["redis"]:
        for hb in t.get("heartbeats") or []:
            present = series_with(
                series, "tradeops_redis_heartbeat_present", target=t["name"], heartbeat=hb["name"]
            )
            expect(present == [1.0], f"redis/{t['name']}: heartbeat {hb['name']} {present}")
        if t.get("canary"):
            canary = series_with(series, "tradeops_redis_canary_success", target=t["name"])
            expect(canary == [1.0], f"redis/{t['name']}: canary {canary}")
        if t.get("sentinels"):
            answering = series_with(
                series, "tradeops_redis_sentinel_sentinels_reachable", target=t["name"]
            )
            expect(answering == [len(t["sentinels"])], f"redis/{t['name']}: {answering} answer")
        if t.get("cluster"):
            ok = series_with(series, "tradeops_redis_cluster_state_ok", target=t["name"])
            expect(ok == [1.0], f"redis/{t['name']}: cluster state ok {ok}")
    for t in config["timescale"]:
        for table in t["tables"]:
            newest = series_with(
                series,
                "tradeops_timescale_table_newest_row_timestamp_seconds",
                target=t["name"],
                table=table["name"],
            )
            expect(bool(newest) and now - max(newest) < 30, f"timescale: {table['name']} {newest}")
        extension = series_with(series, "tradeops_timescale_extension_installed", target=t["name"])
        if extension == [1.0]:  # the ticks are a hypertable where TimescaleDB is
            chunks = series_with(
                series, "tradeops_timescale_hypertable_chunks", target=t["name"], hypertable=HT
            )
            expect(bool(chunks) and chunks[0] > 0, f"timescale/{t['name']}: chunks {chunks}")
    for t in config["backups"]:
        kind = t["source"]["type"]
        name = (
            "tradeops_backup_restore_drill_last_success"
            if kind == "restore_drill"
            else "tradeops_backup_last_success_timestamp_seconds"
        )
        found = series_with(series, name, target=t["name"])
        expect(bool(found) and all(v > 0 for v in found), f"backups/{t['name']}: {found}")
    for t in config["eventbus"]:
        received = series_with(series, "tradeops_eventbus_canary_received_total", target=t["name"])
        expect(bool(received) and received[0] > 0, f"eventbus/{t['name']}: canary {received}")
    for t in config["drills"]:
        records = series_with(series, "tradeops_drill_records", target=t["name"])
        expect(records == [0.0], f"drills/{t['name']}: {records}")
    return problems


def wait_for_targets(
    url: str, config: Mapping[str, Any], timeout: float
) -> tuple[dict[tuple[str, str], float], list[str]]:
    """``tradeops_up`` per (kind, target) and :func:`missing_data`, once every
    target is up and nothing is missing, or as last seen when ``timeout`` passes."""
    expected = set(targets(config))
    end = time.monotonic() + timeout
    up: dict[tuple[str, str], float] = {}
    missing = ["no scrape"]
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                series = parse(resp.read().decode())
        except OSError:
            time.sleep(1)
            continue
        up = {
            (dict(lbl)["kind"], dict(lbl)["target"]): v
            for (name, lbl), v in series.items()
            if name == "tradeops_up"
        }
        missing = missing_data(series, config)
        if set(up) == expected and all(v == 1.0 for v in up.values()) and not missing:
            break
        time.sleep(1)
    return up, missing


async def test_the_traffic_outlives_its_services() -> None:
    """A simulator whose service goes away is run again, not lost."""
    runs: list[float] = []
    stop = asyncio.Event()

    async def flaky() -> None:
        runs.append(time.monotonic())
        if len(runs) == 3:
            stop.set()
            return
        raise ConnectionRefusedError("the service went away")

    await asyncio.wait_for(compose_traffic.supervise("flaky", flaky, stop, (0.05, 0.1)), 5)
    assert len(runs) == 3
    assert runs[2] - runs[1] >= 0.09  # the delay doubled


async def test_the_redis_traffic_fails_when_redis_goes_away(redis_server: Redis) -> None:
    """``redis_once`` writes the heartbeats, and raises (for :func:`supervise` to run
    it again) when Redis stops, instead of going quiet."""
    stop = asyncio.Event()
    task = asyncio.create_task(compose_traffic.redis_once(redis_server.address, stop))
    probe = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        for _ in range(100):
            if await probe.get("heartbeat:risk"):
                break
            await asyncio.sleep(0.05)
        assert await probe.get("heartbeat:risk")
    finally:
        await probe.aclose()
    redis_server.stop()
    with pytest.raises(RedisError):
        await asyncio.wait_for(task, 10)


# --- the native demo --------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_files() -> Iterator[Path]:
    """The files ``python -m stack demo`` writes, from a run that stops at once."""
    out = subprocess.run(
        [PYTHON, "-m", "stack", "demo", "--duration", "0", "--keep"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        check=False,
    )
    found = re.search(r"files in (\S+)\)", out.stdout)
    assert out.returncode == 0 and found, out.stdout + out.stderr
    root = Path(found.group(1))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def without_locations(value: Any) -> Any:
    """A target with the values that say where (addresses, URLs, paths) blanked (a
    list of addresses keeps its length)."""
    if isinstance(value, dict):
        return {
            k: _blanked(v) if k in LOCATION_KEYS else without_locations(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_locations(v) for v in value]
    return value


def _blanked(value: Any) -> Any:
    return ["<where>"] * len(value) if isinstance(value, list) else "<where>"


def test_the_exporter_targets_are_the_demo_s(compose: dict[str, Any], demo_files: Path) -> None:
    """The demo's targets (but those left out, with a reason), field for field, but
    for addresses and paths and the fields only the demo's PGlite needs."""
    demo = yaml.safe_load((demo_files / "exporter.yml").read_text())
    ours = compose_exporter_config(compose)
    assert ours["global"] == demo["global"]
    demo_targets, our_targets = targets(demo), targets(ours)
    assert set(demo_targets) - set(ONLY_NATIVE) == set(our_targets)
    assert set(ONLY_NATIVE) <= set(demo_targets), "a target left out that the demo has not"
    for key, fields in ONLY_NATIVE_FIELDS.items():
        demo_target = demo_targets[key]
        assert {k: demo_target.get(k) for k in fields} == fields, f"{key}: not the demo's"
        assert not set(fields) & set(our_targets[key]), f"{key}: compose has them too"
        demo_targets[key] = {k: v for k, v in demo_target.items() if k not in fields}
    for key, target in our_targets.items():
        assert without_locations(target) == without_locations(demo_targets[key]), key
    assert set(ours["modules"]) == set(demo["modules"])
    for name, module in ours["modules"].items():
        theirs = demo["modules"][name]
        assert {**module, "allowed_targets": None} == {**theirs, "allowed_targets": None}


def test_prometheus_is_configured_as_the_demo_s(compose: dict[str, Any], demo_files: Path) -> None:
    """The demo's intervals, job and rule files."""
    demo = yaml.safe_load((demo_files / "prometheus" / "prometheus.yml").read_text())
    ours, _ = prometheus_config(compose)
    assert ours["global"] == demo["global"]
    assert [j["job_name"] for j in ours["scrape_configs"]] == [
        j["job_name"] for j in demo["scrape_configs"]
    ]
    assert [Path(p) for p in demo["rule_files"]] == mounted_rule_files(compose)
    assert "alerting" in ours and "alerting" in demo


def test_alertmanager_is_wired_as_the_demo_s(
    compose: dict[str, Any], demo_files: Path, tmp_path: Path
) -> None:
    """The demo's Alertmanager config and ours differ only in where the stand-ins,
    the secret files and the templates are."""
    demo_text = (demo_files / "alertmanager" / "alertmanager.yml").read_text()
    demo = yaml.safe_load(demo_text)
    demo_sinks = demo["global"]["pagerduty_url"].removesuffix("/v2/enqueue")
    demo_text = (
        demo_text.replace(demo_sinks, "<sinks>")
        .replace(f"{demo_files / 'alertmanager-secrets'}/", SECRETS_PREFIX)
        .replace(f"{REPO / 'alertmanager' / 'templates'}/", TEMPLATES_PREFIX)
    )
    ours_text = wired_alertmanager_config(compose, tmp_path).read_text()
    ours_text = ours_text.replace(sinks_url(compose), "<sinks>")
    assert yaml.safe_load(ours_text) == yaml.safe_load(demo_text)
    demo_secrets = {p.name for p in (demo_files / "alertmanager-secrets").iterdir()}
    assert demo_secrets == {p.name for p in (DEPLOY / "alertmanager/secrets").iterdir()}
