"""Masks every configured secret in text bound for logs, errors and HTTP bodies."""

from __future__ import annotations

import threading


class Redactor:
    """Holds the secret values seen at config load and masks them in text."""

    MASK = "***"

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Register a secret. Values under 3 characters are masked only as whole text,
        since masking every occurrence of one or two characters would garble logs."""
        with self._lock:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 3 or text == secret:
                text = text.replace(secret, self.MASK)
        return text


REDACTOR = Redactor()


MAX_TEXT = 512
"""Characters of one log value or error message; the rest is counted, not kept."""


def bounded(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` safe to log whatever a peer put in it: control and other unprintable
    characters escaped (``\\x00``), the result at most ``limit`` characters plus a note
    counting the characters left out."""
    if len(text) <= limit and text.isprintable():
        return text
    out: list[str] = []
    size = kept = 0
    for c in text[:limit]:
        piece = c if c.isprintable() else _escape(c)
        if size + len(piece) > limit:
            break
        out.append(piece)
        size += len(piece)
        kept += 1
    cut = len(text) - kept
    return "".join(out) + (f"...[{cut} more characters]" if cut else "")


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def error_text(exc: BaseException) -> str:
    """A one-line description of an exception, secrets masked, peer bytes bounded."""
    text = str(exc).strip()
    text = text.splitlines()[0] if text else ""
    return bounded(REDACTOR(f"{type(exc).__name__}: {text}" if text else type(exc).__name__))
