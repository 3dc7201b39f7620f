"""hwprof serve: the web view over the profile store."""

from __future__ import annotations

import argparse
import sys

from hwprof.errors import HwprofError


class ServeCommand:
    name = "serve"
    help = "browse the profile store: flame graphs, diffs, stat runs"
    description = (
        "Serve the profile store over HTTP: recordings as interactive flame graphs (icicle, inverted, sandwich,\n"
        "per-frame counter ratios, counters over time), comparisons of two profiles, stat runs, exports.\n"
        "Binds 127.0.0.1 by default. Any other --host needs a token, generated and printed unless given;\n"
        "every request must carry it. The server only reads, renames and deletes; it never starts a capture."
    )
    epilog = (
        "examples:\n"
        "  hwprof serve                         # http://127.0.0.1:8470/ over the default store\n"
        "  hwprof serve --store /tmp/profiles --port 0   # any free port, printed on start\n"
        "  hwprof serve --open latest           # print the URL of the newest recording's flame graph\n"
        "  hwprof serve --host 0.0.0.0          # reachable from other hosts, with a generated token\n"
        "  hwprof serve --host 10.0.0.5 --token \"$(cat token)\"\n"
        "  hwprof serve --store clickhouse://ch:9000/profiles   # the fleet view at /fleet"
    )

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--store", metavar="DIR|URL", help="profile store directory (default $HWPROF_HOME or "
                            "~/.local/share/hwprof), or a fleet store clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DB "
                            "served at /fleet beside the default directory")
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        parser.add_argument("-p", "--port", type=int, default=8470, help="port (default 8470; 0 picks a free one)")
        parser.add_argument("--token", help="access token (required by every request; generated when --host is "
                            "not loopback)")
        parser.add_argument("--no-warm", action="store_true", help="do not prepare the newest recordings' pages in "
                            "the background at start")
        parser.add_argument("--open", metavar="ID", help="print the URL of this entry ('latest' for the newest "
                            "recording) as well")

    def run(self, args: argparse.Namespace) -> int:
        import secrets
        import socket

        from hwprof.store import ProfileStore, validate_id
        from hwprof.web.app import create_app, is_loopback
        from hwprof.web.server import log_access_to_stderr, make_server

        if not 0 <= args.port <= 65535:
            raise HwprofError(f"port {args.port} is out of range 0..65535")
        token = args.token
        if token is not None and len(token) < 16:
            raise HwprofError("a token must be at least 16 characters")
        if not is_loopback(args.host) and not token:
            token = secrets.token_urlsafe(24)
        from hwprof.fleet.url import is_store_url

        fleet_url = args.store if is_store_url(args.store) else None
        if fleet_url:
            from hwprof.fleet.clickhouse import ClickHouseStore

            ClickHouseStore.open(fleet_url).close()  # a wrong URL, password or schema fails here, in one line
        store = ProfileStore(None if fleet_url else args.store)
        open_path = ""
        if args.open:
            entry = store.latest("record") if args.open == "latest" else store.get(validate_id(args.open))
            open_path = f"{'stat' if entry.kind == 'stat' else 'profile'}/{entry.id}"
        try:
            socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise HwprofError(f"cannot resolve --host {args.host!r}: {exc.args[-1] if exc.args else exc}") from None
        app = create_app(store, token=token, fleet_url=fleet_url)
        try:
            server = make_server(app, args.host, args.port)
        except OSError as exc:
            raise HwprofError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        except (ValueError, UnicodeError) as exc:
            raise HwprofError(f"bad --host {args.host!r}: {exc}") from None
        shown_host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
        base = f"http://{shown_host}:{server.port}/"
        query = f"?token={token}" if token else ""
        print(f"hwprof: serving {store.root} at {base}{query}", flush=True)
        if open_path:
            print(f"hwprof: {base}{open_path}{query}", flush=True)
        if fleet_url:
            print(f"hwprof: fleet view of {fleet_url.split('@')[-1]} at {base}fleet{query}", flush=True)
        if not args.no_warm:
            import threading

            threading.Thread(target=app.extensions["hwprof_source"].warm, name="hwprof-warm", daemon=True).start()
        if token and not args.token:
            print("hwprof: the token above was generated for this run; pass --token to choose one", file=sys.stderr)
        log_access_to_stderr()
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
        return 0


COMMAND = ServeCommand()
