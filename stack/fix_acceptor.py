"""A QuickFIX acceptor playing a venue, run as its own process.

It writes a FileStore and a FileLog under ``--dir`` (``store/`` and ``log/``),
answers NewOrderSingle (35=D) with an ExecutionReport (35=8) and, for sessions
given a password file, rejects logons whose Password (554) does not match.

Orders are filled in full at once, except a limit order (40=2) priced below
1.00 (``RESTING_BELOW``, far from any market): it is acknowledged as New
(150=0, 39=0) and stays open. An OrderCancelRequest (35=F) for an open order
(OrigClOrdID 41) is answered with an ExecutionReport Canceled (150=4, 39=4),
an OrderCancelReplaceRequest (35=G) with one Replaced (150=5, 39=0; the order
then stays open under the new ClOrdID); either for an order not known as open
(never seen, filled, canceled or replaced) with an OrderCancelReject (35=9,
434=1 for F or 2 for G, 102=1 unknown order). Open orders live in memory only.

    python -m stack.fix_acceptor --port 9876 --dir DIR --sender VENUE \
        --session MONITOR --session SIM:/path/to/password [--host 0.0.0.0]

It listens on loopback unless ``--host`` says otherwise (docker compose runs it
with ``--host 0.0.0.0``, so the exporter and the FIX simulator reach it).

Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import quickfix as fix

BEGIN_STRING = "FIX.4.4"
RESTING_BELOW = 1.0
"""A limit order priced below this is left open instead of filled."""


def data_dictionary() -> str | None:
    """The FIX 4.4 data dictionary installed with the quickfix package, if any."""
    for base in (Path(sys.prefix), Path(sys.base_prefix)):
        path = base / "share" / "quickfix" / "FIX44.xml"
        if path.is_file():
            return str(path)
    return None


@dataclass
class _Order:
    """An open order: what its reports repeat."""

    order_id: str
    symbol: str
    side: str
    qty: str
    price: str


def _get(message: fix.Message, tag: int, default: str) -> str:
    return str(message.getField(tag)) if message.isSetField(tag) else default


def _resting(message: fix.Message) -> bool:
    """A limit order priced below ``RESTING_BELOW``: left open, not filled."""
    if _get(message, 40, "") != "2":
        return False
    try:
        return float(_get(message, 44, "100")) < RESTING_BELOW
    except ValueError:
        return False


class Venue(fix.Application):  # type: ignore[misc]
    """Acks and fills orders, cancels and replaces open ones; checks passwords."""

    def __init__(self, passwords: dict[str, str]) -> None:
        super().__init__()
        self.passwords = passwords
        self.ids = itertools.count(1)
        self.open: dict[tuple[str, str], _Order] = {}
        """(session, ClOrdID) -> the open order."""
        self.lock = threading.Lock()

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
        """Answer NewOrderSingle, OrderCancelRequest and OrderCancelReplaceRequest."""
        msg_type = message.getHeader().getField(35)
        with self.lock:
            if msg_type == "D":
                self._new_order(message, session_id)
            elif msg_type in ("F", "G"):
                self._cancel_or_replace(msg_type, message, session_id)

    def _new_order(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """Fill in full at the limit price (or 100), or leave a resting order open."""
        n = next(self.ids)
        order = _Order(
            f"O{n}",
            _get(message, 55, "UNKNOWN"),
            _get(message, 54, "1"),
            _get(message, 38, "1"),
            _get(message, 44, "100"),
        )
        clordid = message.getField(11)
        if _resting(message):
            self.open[(session_id.toString(), clordid)] = order
            self._report(session_id, n, order, "0", "0", [(11, clordid)], filled=False)
            return
        self._report(session_id, n, order, "F", "2", [(11, clordid)], filled=True)

    def _cancel_or_replace(
        self, msg_type: str, message: fix.Message, session_id: fix.SessionID
    ) -> None:
        """Cancel or replace the open order named by OrigClOrdID (41), or reject."""
        n = next(self.ids)
        clordid, orig = message.getField(11), _get(message, 41, "")
        order = self.open.pop((session_id.toString(), orig), None)
        ids = [(11, clordid), (41, orig)]
        if order is None:
            reject = fix.Message()
            reject.getHeader().setField(fix.MsgType("9"))
            for tag, value in (
                (37, "NONE"),
                *ids,
                (39, "8"),
                (434, "1" if msg_type == "F" else "2"),
                (102, "1"),
            ):
                reject.setField(tag, value)
            fix.Session.sendToTarget(reject, session_id)
        elif msg_type == "F":
            self._report(session_id, n, order, "4", "4", ids, filled=False, leaves="0")
        else:
            order.qty = _get(message, 38, order.qty)
            order.price = _get(message, 44, order.price)
            self.open[(session_id.toString(), clordid)] = order
            self._report(session_id, n, order, "5", "0", ids, filled=False)

    def _report(
        self,
        session_id: fix.SessionID,
        n: int,
        order: _Order,
        exec_type: str,
        status: str,
        ids: list[tuple[int, str]],
        *,
        filled: bool,
        leaves: str | None = None,
    ) -> None:
        """Send an ExecutionReport for ``order``: a full fill, or one with nothing done."""
        report = fix.Message()
        report.getHeader().setField(fix.MsgType("8"))
        fields: list[tuple[int, str]] = [
            (37, order.order_id),
            (17, f"E{n}"),
            (150, exec_type),
            (39, status),
            *ids,
            (55, order.symbol),
            (54, order.side),
            (38, order.qty),
        ]
        if filled:
            fields += [(32, order.qty), (31, order.price), (151, "0"), (14, order.qty)]
            fields += [(6, order.price)]
        else:
            fields += [(44, order.price), (151, order.qty if leaves is None else leaves)]
            fields += [(14, "0"), (6, "0")]
        for tag, value in fields:
            report.setField(tag, value)
        fix.Session.sendToTarget(report, session_id)


def write_settings(
    directory: Path,
    port: int,
    sender: str,
    sessions: list[str],
    use_dictionary: bool = True,
    host: str = "127.0.0.1",
) -> Path:
    """Write the QuickFIX settings file for the acceptor (listening on ``host``)
    and return its path."""
    dictionary = data_dictionary() if use_dictionary else None
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptPort={port}",
        f"SocketAcceptHost={host}",
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
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
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
        str(
            write_settings(
                args.dir, args.port, args.sender, targets, not args.no_dictionary, args.host
            )
        )
    )
    app = Venue(passwords)
    acceptor = fix.SocketAcceptor(
        app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    acceptor.start()
    print(f"acceptor listening on {args.host}:{args.port}", flush=True)
    while not stop.wait(0.2):
        pass
    acceptor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
