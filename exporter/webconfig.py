"""TLS and basic auth for the HTTP server, from a web-config file in the format
of the Prometheus exporter-toolkit (``tls_server_config``, ``basic_auth_users``)."""

from __future__ import annotations

import base64
import hashlib
import ssl
from pathlib import Path
from typing import Literal

import bcrypt
from pydantic import Field, ValidationError, field_validator

from .config_file import ConfigError, load_yaml, pydantic_problems, read_text
from .model import StrictModel

ClientAuth = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TLSVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class TLSServerConfig(StrictModel):
    """``tls_server_config`` of the exporter-toolkit format."""

    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: TLSVersion = "TLS12"
    max_version: TLSVersion = "TLS13"

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a readable file")
        return path

    def context(self) -> ssl.SSLContext:
        """The server-side SSL context."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = _VERSIONS[self.min_version]
        ctx.maximum_version = _VERSIONS[self.max_version]
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        if self.client_ca_file is not None:
            ctx.load_verify_locations(str(self.client_ca_file))
        ctx.verify_mode = {
            "NoClientCert": ssl.CERT_NONE,
            "RequestClientCert": ssl.CERT_OPTIONAL,
            "RequireAnyClientCert": ssl.CERT_REQUIRED,
            "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
            "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
        }[self.client_auth_type]
        return ctx


class WebConfig(StrictModel):
    """The web-config file."""

    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ValueError(f"user {user!r}: the password must be a bcrypt hash")
        return users


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes.

    bcrypt is slow by design, so a verified (user, password digest) pair is
    remembered; only a digest of the password is kept in memory.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._verified: set[tuple[str, bytes]] = set()

    def check(self, header: str | None) -> bool:
        """True if the header carries valid credentials."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        digest = hashlib.sha256(f"{hashed}\0{password}".encode()).digest()
        if (user, digest) in self._verified:
            return True
        if bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1).encode()):
            self._verified.add((user, digest))
            return True
        return False


def load_web_config(path: str) -> WebConfig:
    """Read and validate a web-config file; raises ConfigError (unreadable, not UTF-8,
    a YAML syntax error or duplicate key, an invalid field)."""
    raw = load_yaml(read_text(path), path) or {}
    try:
        return WebConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(path, pydantic_problems(exc)) from None
