"""aiokafka client settings from the Kafka connection schema (``KafkaConnection``).

One function for the Kafka probe's client and the event-bus canary's producer,
consumer and admin client, so their security settings cannot drift apart. It
builds a plain dict: importing this module imports no client library.
"""

from __future__ import annotations

import ssl
from typing import Any

from .config import KafkaConnection


def settings(
    conn: KafkaConnection, ssl_context: ssl.SSLContext | None, timeout_s: float
) -> dict[str, Any]:
    """The client's connection settings (client id, request timeout, security).

    ``ssl_context`` is ``conn.tls``'s context, built once by the caller (so an
    unreadable file fails where the caller reports it); ``timeout_s`` is the request
    timeout (a Kafka target's is its ``timeout_s``). The bootstrap servers are not
    included: ``conn.servers()``.
    """
    out: dict[str, Any] = {
        "client_id": conn.client_id,
        "request_timeout_ms": int(timeout_s * 1000),
        "security_protocol": "PLAINTEXT",
    }
    if conn.sasl is not None:
        out.update(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=conn.sasl.mechanism,
            sasl_plain_username=conn.sasl.username,
            sasl_plain_password=conn.sasl.password_value(),
        )
    if ssl_context is not None:
        protocol = "SASL_SSL" if conn.sasl is not None else "SSL"
        out.update(security_protocol=protocol, ssl_context=ssl_context)
    return out
