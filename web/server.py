"""The HTTP server under `hwprof serve`: waitress, not Flask's development server.

Why waitress: Flask's development server gives every connection its own thread and never times an idle one out,
so 300 half-open connections held 300 threads for ever. Waitress reads requests in one asyncore loop and hands only
complete requests to a fixed pool of worker threads; it closes connections idle for `idle_timeout` seconds and stops
accepting beyond `max_connections` (new ones wait in the listen backlog until a slot frees). Pure Python, no C
extension, nothing to configure for the user.

The access log is ours (one line per request on stderr, like the development server's) so that it can leave the
token out: `?token=` values are replaced by `[redacted]`, whether the token was right or wrong.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from hwprof.terminal import printable

IDLE_TIMEOUT_S = 30
MAX_CONNECTIONS = 500  # well under the usual 1024 open-file limit
WORKER_THREADS = 8
ACCESS_LOG = "hwprof.web.access"
REDACTED = "[redacted]"
SECRET_QUERY_KEYS = frozenset({"token"})


def redact_query(query: str) -> str:
    """'a=1&token=abc' -> 'a=1&token=[redacted]': never write a token (right or wrong) into a log."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(key in SECRET_QUERY_KEYS for key, _ in pairs):
        return query
    return urlencode([(key, REDACTED if key in SECRET_QUERY_KEYS else value) for key, value in pairs], safe="[]")


class AccessLog:
    """WSGI middleware writing `HOST "METHOD PATH?QUERY" STATUS` per request to the `hwprof.web.access` logger."""

    def __init__(self, app):
        self.app = app
        self.log = logging.getLogger(ACCESS_LOG)

    def __call__(self, environ, start_response):
        def logged_start_response(status, headers, exc_info=None):
            query = redact_query(environ.get("QUERY_STRING", ""))
            path = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
            self.log.info('%s "%s %s" %s', environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD", "-"),
                          printable(path), status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return self.app(environ, logged_start_response)


def log_access_to_stderr() -> None:
    """Send the access log to stderr (what `hwprof serve` does; tests and embedders may route it elsewhere)."""
    logger = logging.getLogger(ACCESS_LOG)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@dataclass
class Server:
    """A listening waitress server: `port` is the one bound (useful with port 0); `run()` serves until closed."""

    waitress_server: object
    port: int

    def run(self) -> None:
        self.waitress_server.run()

    def close(self) -> None:
        self.waitress_server.close()


def make_server(app, host: str, port: int, *, idle_timeout: int = IDLE_TIMEOUT_S,
                max_connections: int = MAX_CONNECTIONS, threads: int = WORKER_THREADS) -> Server:
    """Bind `host:port` (raises OSError when it cannot) and return the server, not yet serving."""
    from waitress.server import create_server

    waitress_server = create_server(
        AccessLog(app), host=host.strip("[]"), port=port, threads=threads, connection_limit=max_connections,
        channel_timeout=idle_timeout, cleanup_interval=max(1, min(30, idle_timeout // 2)), ident="hwprof",
        clear_untrusted_proxy_headers=True, expose_tracebacks=False)
    listening = getattr(waitress_server, "effective_listen", None)
    bound = listening[0][1] if listening else waitress_server.effective_port
    return Server(waitress_server, int(bound))
