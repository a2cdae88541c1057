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


def error_text(exc: BaseException) -> str:
    """A one-line description of an exception, with secrets masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return REDACTOR(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
