"""Command line: ``python -m exporter --config FILE`` and its other modes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import signal
import ssl
import sys
from collections.abc import Sequence

from . import config as cfg
from . import kinds
from .app import Exporter
from .logs import log, setup
from .model import parse_duration, parse_host_port
from .server import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    HTTPLimits,
    HTTPThread,
    ProbeLoop,
    build_app,
)
from .version import VERSION
from .webconfig import WebConfig, load_web_config

DEFAULT_LISTEN = "127.0.0.1:9713"
SHUTDOWN_SECONDS = 4.0
GIL_SWITCH_SECONDS = 0.001
"""How long a busy thread (the probe loop parsing a flood) keeps the GIL from one that
waits for it (the HTTP thread, after each read, write or accept): Python's default,
5 ms, would be paid several times per scrape."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tradeops-exporter", description=__doc__)
    p.add_argument("--config", help="YAML configuration file")
    p.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration (and web config) and exit",
    )
    p.add_argument("--listen", default=DEFAULT_LISTEN, help="host:port to serve HTTP on")
    p.add_argument(
        "--web-config", dest="web_config", help="exporter-toolkit web config: TLS and basic auth"
    )
    p.add_argument(
        "--header-timeout",
        default=f"{DEFAULT_HEADER_TIMEOUT:g}s",
        help="close a connection whose request headers (and TLS handshake) are not complete"
        " within this long of its accept or of the request's first byte (default %(default)s)",
    )
    p.add_argument(
        "--idle-timeout",
        default=f"{DEFAULT_IDLE_TIMEOUT:g}s",
        help="close a keep-alive connection idle this long, or whose client has not read"
        " on its response for this long (default %(default)s)",
    )
    p.add_argument(
        "--max-connections",
        default=str(DEFAULT_MAX_CONNECTIONS),
        help="HTTP connections open at once; one accepted beyond it is closed at once"
        " (default %(default)s)",
    )
    p.add_argument("--log-format", choices=("logfmt", "json"), default="logfmt")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    p.add_argument(
        "--list-metrics",
        action="store_true",
        help="print the metric catalogue (name, type, labels, help) and exit",
    )
    p.add_argument("--version", action="version", version=VERSION)
    return p


def list_metrics() -> str:
    """The catalogue as tab-separated lines: name, type, labels, help."""
    return "".join(f"{f.name}\t{f.type}\t{','.join(f.labels)}\t{f.help}\n" for f in kinds.ALL)


def http_limits(header_timeout: str, idle_timeout: str, max_connections: str) -> HTTPLimits:
    """The HTTP server's limits from their flags; ValueError names the flag at fault."""
    seconds: list[float] = []
    for flag, text in (("--header-timeout", header_timeout), ("--idle-timeout", idle_timeout)):
        try:
            seconds.append(parse_duration(text))
        except ValueError as exc:
            raise ValueError(f"{flag}: {exc}") from None
    if not max_connections.isdigit() or int(max_connections) < 1:
        raise ValueError("--max-connections: expected a whole number of at least 1")
    return HTTPLimits(seconds[0], seconds[1], int(max_connections))


async def serve(
    config: cfg.Config,
    listen: str,
    web_config: WebConfig | None,
    limits: HTTPLimits | None = None,
) -> None:
    """Run the exporter until SIGTERM/SIGINT; SIGHUP reloads the config.

    The probes run on this loop (the main thread); the HTTP server on a loop of its
    own in the ``http`` thread, so a scrape never waits for this loop's turns.
    """
    limits = limits or HTTPLimits()
    exporter = Exporter(config.path)
    await exporter.start(config)
    ssl_ctx = (
        web_config.tls_server_config.context()
        if (web_config and web_config.tls_server_config)
        else None
    )
    http = await _start_http(exporter, listen, web_config, limits, ssl_ctx)
    log(
        logging.INFO,
        "listening",
        address=listen,
        tls=ssl_ctx is not None,
        targets=len(config.all_targets()),
        version=VERSION,
        header_timeout_seconds=limits.header_timeout,
        idle_timeout_seconds=limits.idle_timeout,
        max_connections=limits.max_connections,
    )
    await _until_stopped(exporter)
    await _shut_down(exporter, http)


async def _start_http(
    exporter: Exporter,
    listen: str,
    web_config: WebConfig | None,
    limits: HTTPLimits,
    ssl_ctx: ssl.SSLContext | None,
) -> HTTPThread:
    """The HTTP thread, serving; the exporter stopped again if it cannot listen."""
    host, port = parse_host_port(listen)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    # A full collection holds the GIL, so every thread, for as long as it walks every
    # tracked object: what lives as long as the process (modules, the catalogue, the
    # first config's models) is set aside once, which roughly halves those pauses.
    gc.collect()
    gc.freeze()
    _unmap_large_blocks()
    app = build_app(exporter, web_config, ProbeLoop(asyncio.get_running_loop()))
    http = HTTPThread(app, host, port, limits, ssl_ctx)
    try:
        await http.start()
    except BaseException:
        await exporter.stop()
        raise
    return http


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter: blocks from this size up get a mapping of their own."""
MMAP_THRESHOLD_BYTES = 128 << 10


def _unmap_large_blocks() -> None:
    """Fix glibc's mmap threshold at 128 KiB (its initial value). Left alone, glibc
    raises it each time a large block is freed, so the next /metrics bodies and
    rendered families (tens of MB on a large Kafka cluster) come from the heap and
    stay resident: 319 MB instead of 212 MB at 100,000 group-partitions
    (docs/kafka.md). Elsewhere than glibc, nothing happens."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


async def _until_stopped(exporter: Exporter) -> None:
    """Wait for SIGTERM or SIGINT; reload on each SIGHUP meanwhile."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: loop.create_task(exporter.reload(), name="reload")
    )
    await stop.wait()


async def _shut_down(exporter: Exporter, http: HTTPThread) -> None:
    """Stop serving, then probing, within SHUTDOWN_SECONDS."""
    log(logging.INFO, "shutting down")
    try:
        async with asyncio.timeout(SHUTDOWN_SECONDS):
            await http.stop()
            await exporter.stop()
    except TimeoutError:
        log(
            logging.WARNING,
            "shutdown deadline passed; exiting anyway",
            shutdown_seconds=SHUTDOWN_SECONDS,
            http_thread_alive=http.thread.is_alive(),
        )
    log(logging.INFO, "stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.list_metrics:
        sys.stdout.write(list_metrics())
        return 0
    if not args.config:
        print("error: --config is required", file=sys.stderr)
        return 2
    setup(args.log_format, args.log_level)
    try:
        config = cfg.load(args.config)
        web_config = load_web_config(args.web_config) if args.web_config else None
    except cfg.ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    try:
        parse_host_port(args.listen)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return 2
    try:
        limits = http_limits(args.header_timeout, args.idle_timeout, args.max_connections)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check_config:
        print(
            f"{args.config}: ok ({len(config.all_targets())} targets, "
            f"{len(config.modules)} modules)"
        )
        return 0
    asyncio.run(serve(config, args.listen, web_config, limits))
    return 0
