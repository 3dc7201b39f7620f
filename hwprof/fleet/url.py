"""The store URL of the fleet backend, in the form clickhouse-driver's own `Client.from_url` takes.

`clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DB` speaks ClickHouse's native protocol (port 9000 by default);
`clickhouses://` is the same over TLS (port 9440). Parsed here rather than handed to the driver so a wrong URL
fails with one line before any connection is tried, and so the password never appears in what hwprof prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from hwprof.errors import HwprofError

SCHEMES = {"clickhouse": (False, 9000), "clickhouses": (True, 9440)}
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class ClickHouseURL:
    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""
    secure: bool = False

    def display(self) -> str:
        """The URL without its password: what messages and `hwprof ls` show."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        user = f"{self.user}@" if self.user != "default" else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}/{self.database}"


def is_store_url(text: str | None) -> bool:
    return bool(text) and text.split("://", 1)[0] in SCHEMES and "://" in text


def parse_store_url(text: str) -> ClickHouseURL:
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise HwprofError(f"store URL {text!r}: the scheme must be clickhouse:// or clickhouses://")
    secure, default_port = SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise HwprofError(f"store URL {_redact(text)}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise HwprofError(f"store URL {_redact(text)}: no host (clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DB)")
    database = parts.path.strip("/")
    if not database:
        raise HwprofError(f"store URL {_redact(text)}: no database (clickhouse://HOST[:PORT]/DB)")
    if not _DB_NAME.match(database):
        raise HwprofError(f"store URL {_redact(text)}: database name {database!r} must be letters, digits and _")
    if parts.query or parts.fragment:
        raise HwprofError(f"store URL {_redact(text)}: query parameters are not supported")
    return ClickHouseURL(host=parts.hostname, port=port, database=database,
                         user=unquote(parts.username) if parts.username else "default",
                         password=unquote(parts.password) if parts.password else "", secure=secure)


def _redact(text: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
