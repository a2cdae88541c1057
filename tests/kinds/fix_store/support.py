"""What the fix_store unit suites share: a session's files written in the engine's
exact line format, its target, and the plain series of one cycle."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from exporter.kinds.fix_store.config import FixStoreTarget
from exporter.probe import ProbeResult, Sample

PREFIX = "FIX.4.2-ENGINE-BROKER"
SOH = "\x01"


def fix(msg_type: str, sender: str, seq: int, *extra: str) -> str:
    """A raw message between ENGINE (the engine) and BROKER, as the log holds it."""
    target = "BROKER" if sender == "ENGINE" else "ENGINE"
    fields = [f"35={msg_type}", f"49={sender}", f"56={target}", f"34={seq}", *extra]
    return SOH.join(["8=FIX.4.2", "9=0", *fields, "10=000"]) + SOH


def line(ts: float, text: str) -> str:
    """A FileLog line: ``YYYYMMDD-HH:MM:SS.fffffffff : text``."""
    t = dt.datetime.fromtimestamp(ts, dt.UTC)
    return t.strftime("%Y%m%d-%H:%M:%S.") + f"{t.microsecond * 1000:09d} : {text}\n"


def write_store(
    tmp_path: Path, seqnums: str = "00000000000000000005 : 00000000000000000007"
) -> None:
    """The session's ``.seqnums`` and ``.session`` files."""
    (tmp_path / f"{PREFIX}.seqnums").write_text(seqnums)
    (tmp_path / f"{PREFIX}.session").write_text("20261123-02:36:37")


def store_target(tmp_path: Path, **kw: object) -> FixStoreTarget:
    """The target reading the session in ``tmp_path``; ``kw`` overrides fields."""
    return FixStoreTarget.model_validate(
        {
            "name": "broker",
            "store_path": tmp_path,
            "begin_string": "FIX.4.2",
            "sender_comp_id": "ENGINE",
            "target_comp_id": "BROKER",
            "interval": 5,
            "timeout": 1,
            **kw,
        }
    )


def values(r: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    """(family name without ``tradeops_fix_session_``, labels after ``session``) -> value."""
    return {
        (s.family.name.removeprefix("tradeops_fix_session_"), s.labels[1:]): s.value
        for s in r.samples
        if isinstance(s, Sample)
    }


def messages_log(tmp_path: Path) -> Path:
    """The session's messages log."""
    return tmp_path / f"{PREFIX}.messages.current.log"


def order_lines(start: float, n: int, first_seq: int = 1) -> str:
    """``n`` NewOrderSingle lines from the engine, a second apart."""
    return "".join(
        line(start + i, fix("D", "ENGINE", first_seq + i, f"11=ORD{i}")) for i in range(n)
    )
