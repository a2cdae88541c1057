"""A QuickFIX acceptor playing a venue, run as its own process.

It writes a FileStore and a FileLog under ``--dir`` (``store/`` and ``log/``),
answers NewOrderSingle (35=D) with an ExecutionReport (35=8) and, for sessions
given a password file, rejects logons whose Password (554) does not match.

    python -m stack.fix_acceptor --port 9876 --dir DIR --sender VENUE \
        --session MONITOR --session SIM:/path/to/password

Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
from pathlib import Path

import quickfix as fix

BEGIN_STRING = "FIX.4.4"


def data_dictionary() -> str | None:
    """The FIX 4.4 data dictionary installed with the quickfix package, if any."""
    for base in (Path(sys.prefix), Path(sys.base_prefix)):
        path = base / "share" / "quickfix" / "FIX44.xml"
        if path.is_file():
            return str(path)
    return None


class Venue(fix.Application):  # type: ignore[misc]
    """Acks and fills every order; checks passwords where configured."""

    def __init__(self, passwords: dict[str, str]) -> None:
        super().__init__()
        self.passwords = passwords
        self.ids = itertools.count(1)

    def onCreate(self, session_id: fix.SessionID) -> None:
        """Called when a session is created."""

    def onLogon(self, session_id: fix.SessionID) -> None:
        """Called on a successful logon."""

    def onLogout(self, session_id: fix.SessionID) -> None:
        """Called on logout or disconnect."""

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """Outgoing admin messages pass unchanged."""

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """Reject a Logon whose password does not match the configured one."""
        if message.getHeader().getField(35) != "A":
            return
        expected = self.passwords.get(session_id.getTargetCompID().getValue())
        if expected is None:
            return
        given = message.getField(554) if message.isSetField(554) else None
        if given != expected:
            raise fix.RejectLogon("invalid credentials")

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """Outgoing application messages pass unchanged."""

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """Fill each NewOrderSingle in full at its limit price (or 100)."""
        if message.getHeader().getField(35) != "D":
            return
        n = next(self.ids)
        qty = message.getField(38) if message.isSetField(38) else "1"
        px = message.getField(44) if message.isSetField(44) else "100"
        report = fix.Message()
        report.getHeader().setField(fix.MsgType("8"))
        for tag, value in (
            (37, f"O{n}"),
            (17, f"E{n}"),
            (150, "F"),
            (39, "2"),
            (11, message.getField(11)),
            (55, message.getField(55) if message.isSetField(55) else "UNKNOWN"),
            (54, message.getField(54) if message.isSetField(54) else "1"),
            (38, qty),
            (32, qty),
            (31, px),
            (151, "0"),
            (14, qty),
            (6, px),
        ):
            report.setField(tag, value)
        fix.Session.sendToTarget(report, session_id)


def write_settings(
    directory: Path, port: int, sender: str, sessions: list[str], use_dictionary: bool = True
) -> Path:
    """Write the QuickFIX settings file for the acceptor and return its path."""
    dictionary = data_dictionary() if use_dictionary else None
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptPort={port}",
        "SocketAcceptHost=127.0.0.1",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"FileStorePath={directory / 'store'}",
        f"FileLogPath={directory / 'log'}",
        f"UseDataDictionary={'Y' if dictionary else 'N'}",
    ]
    if dictionary:
        lines.append(f"DataDictionary={dictionary}")
    for target in sessions:
        lines += [
            "",
            "[SESSION]",
            f"BeginString={BEGIN_STRING}",
            f"SenderCompID={sender}",
            f"TargetCompID={target}",
        ]
    path = directory / "acceptor.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the acceptor until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--sender", default="VENUE")
    parser.add_argument(
        "--session",
        action="append",
        default=[],
        help="TargetCompID[:password_file] of an initiator allowed to log on (repeatable)",
    )
    parser.add_argument("--no-dictionary", action="store_true")
    args = parser.parse_args(argv)
    passwords: dict[str, str] = {}
    targets: list[str] = []
    for spec in args.session or ["MONITOR"]:
        target, _, pw_file = spec.partition(":")
        targets.append(target)
        if pw_file:
            passwords[target] = Path(pw_file).read_text().rstrip("\r\n")
    args.dir.mkdir(parents=True, exist_ok=True)
    settings = fix.SessionSettings(
        str(write_settings(args.dir, args.port, args.sender, targets, not args.no_dictionary))
    )
    app = Venue(passwords)
    acceptor = fix.SocketAcceptor(
        app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    acceptor.start()
    print(f"acceptor listening on 127.0.0.1:{args.port}", flush=True)
    while not stop.wait(0.2):
        pass
    acceptor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
