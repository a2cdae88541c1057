"""The web config (TLS, basic auth): read without the probe kinds, validated, checked."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from exporter.config_file import ConfigError
from exporter.webconfig import BasicAuth, load_web_config

from .helpers import self_signed_cert

CLIENT_LIBRARIES = ("aiokafka", "redis", "asyncpg", "aiohttp", "simplefix", "yarl")


def test_reading_the_web_config_imports_no_kind_and_no_client_library(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {}\n")
    code = (
        "import sys\n"
        "from exporter.webconfig import load_web_config\n"
        f"load_web_config({str(web)!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))\n"
        "print(sorted(m for m in sys.modules if m.startswith('exporter.kinds')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *CLIENT_LIBRARIES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.splitlines() == ["[]", "[]"]


def test_tls_and_users_are_read(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config: {{cert_file: {cert}, key_file: {key}, min_version: TLS13}}\n"
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
    )
    config = load_web_config(str(web))
    assert config.tls_server_config is not None
    assert config.tls_server_config.context().minimum_version.name == "TLSv1_3"
    assert config.basic_auth_users == {"prometheus": hashed}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("basic_auth_users: {p: plain}\n", "basic_auth_users: user 'p': the password must be"),
        ("tls_server_config: {cert_file: /nope, key_file: /nope}\n", "/nope is not a readable"),
        ("listen: 1\n", "listen: unknown field"),
        ("a: [\n", "YAML syntax error"),
    ],
)
def test_a_bad_web_config_names_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_web_config(str(web))
    assert err.value.lines()[0].startswith(f"{web}: ")
    assert problem in err.value.lines()[0]


def test_basic_auth_checks_user_and_password() -> None:
    auth = BasicAuth({"p": bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()})

    def header(credentials: bytes) -> str:
        return "Basic " + base64.b64encode(credentials).decode()

    assert auth.check(header(b"p:secret"))
    assert auth.check(header(b"p:secret"))  # from the verified cache
    for bad in (header(b"p:wrong"), header(b"q:secret"), "Basic !!", "Bearer x", None):
        assert not auth.check(bad)
