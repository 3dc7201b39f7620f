"""The Flask app over a profile store: pages, the JSON API, exports, and the security rules around them.

Security model (each rule has a test in tests/integration/web/test_security.py):
- The server only reads the store and renames/deletes entries; no route starts a capture or a probe, and this
  package never imports hwprof.collectors.
- A token, when set (it must be for any non-loopback bind), is required on every request: `X-Hwprof-Token`
  header, `?token=` (which also sets an HttpOnly SameSite=Strict cookie so the page's own requests carry it), or
  that cookie. Compared in constant time.
- Without a token the server is loopback-only and refuses foreign Host headers (DNS rebinding): `localhost` and
  loopback address literals (127.0.0.0/8, ::1) only.
- State changes need a JSON body (a cross-site form cannot send one) and a same-origin Origin when present: same
  scheme, host and port.
- A body that is not JSON, nests deeper than the parser can follow, or carries text that is not valid Unicode is a
  400 with a JSON error, never a 500.
- Ids go through ProfileStore.validate_id; no path is built from request text.
- Bodies are bounded (MAX_CONTENT_LENGTH); every name reaches the page as data and is rendered as text
  (Jinja autoescape, textContent / canvas fillText in the scripts) under a CSP that forbids inline script.
"""

from __future__ import annotations

import gzip
import hmac
import ipaddress
from collections.abc import Callable
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from flask import Flask, Response, jsonify, render_template, request
from hwprof.web.payload import SampleFilter
from hwprof.web.sources import EntrySource, default_symbolizer, entry_summary
from werkzeug.exceptions import BadRequest

from hwprof.errors import HwprofError
from hwprof.store import ProfileStore, validate_id

MAX_BODY_BYTES = 16 * 1024
TOKEN_COOKIE = "hwprof_token"
PID_MAX = 2**31 - 1  # pid_t is a signed 32-bit int
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
STATIC_DIR = Path(__file__).parent / "static"
TEMPLATE_DIR = Path(__file__).parent / "templates"


def host_name(host: str) -> str:
    """'127.0.0.1:8080' -> '127.0.0.1', '[::1]:80' -> '[::1]', 'localhost' -> 'localhost'."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """'localhost', '127.0.0.2', '::1' or '[::1]': a name or address that never leaves this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(parts: SplitResult) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL, the default port filled in; None when it is not a web origin."""
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether an Origin header names this server: scheme, host and port all equal (RFC 6454)."""
    mine = origin_key(urlsplit(f"{scheme}://{host}"))
    return mine is not None and origin_key(urlsplit(origin)) == mine


def json_body() -> object:
    """The request's JSON body, or a HwprofError (a 400): not JSON, nested too deep, or not valid Unicode."""
    try:
        body = request.get_json(silent=False)
    except RecursionError:
        raise HwprofError("the JSON body is nested too deeply") from None
    except BadRequest:  # werkzeug's answer to every decoding problem (invalid UTF-8 and bad syntax alike)
        raise HwprofError("the body is not valid JSON") from None
    return body


def id_arg(args, name: str) -> int | None:
    """A pid/tid query value: decimal ASCII digits within the kernel's pid range, else a clear 400."""
    raw = args.get(name)
    if raw in (None, ""):
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= PID_MAX):
        raise HwprofError(f"{name} must be a process/thread id (0..{PID_MAX}), got {raw[:40]!r}")
    return int(raw)


def create_app(store: ProfileStore, token: str | None = None, *,
               symbolizer_factory: Callable[[], object] = default_symbolizer,
               allowed_hosts: frozenset[str] | None = None, max_body: int = MAX_BODY_BYTES,
               fleet_url: str | None = None) -> Flask:
    """A WSGI app serving `store`. With token=None only loopback Host headers are accepted. With `fleet_url` (a
    clickhouse:// store), /fleet and `fleet-` profile ids serve merged profiles of the fleet (hwprof.web.fleet)."""
    app = Flask("hwprof.web", static_folder=str(STATIC_DIR), template_folder=str(TEMPLATE_DIR))
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.config["JSON_SORT_KEYS"] = False
    source = EntrySource(store, symbolizer_factory)
    if fleet_url:
        from hwprof.web.fleet import FleetSource, RoutedSource, fleet_blueprint

        fleet = FleetSource(fleet_url)
        source = RoutedSource(source, fleet)
        app.register_blueprint(fleet_blueprint(fleet))
    app.extensions["hwprof_source"] = source
    host_allowed = (lambda host: host in allowed_hosts) if allowed_hosts is not None else is_loopback

    def error(status: int, message: str) -> Response:
        response = jsonify({"error": message})
        response.status_code = status
        return response

    @app.before_request
    def guard():
        if token:
            given = (request.headers.get("X-Hwprof-Token") or request.args.get("token")
                     or request.cookies.get(TOKEN_COOKIE) or "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return error(403, "a valid token is required (open the URL printed by hwprof serve)")
        else:
            host = host_name(request.host or "")
            if not host_allowed(host):
                return error(403, f"host {host[:60]!r} is not served (loopback only without a token)")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("Origin")
            if origin and not same_origin(origin, request.scheme, request.host):
                return error(403, "cross-origin request refused")
            if request.mimetype != "application/json":
                return error(415, "state changes need a JSON body")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        if token and request.args.get("token") and response.mimetype == "text/html":
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response

    @app.errorhandler(HwprofError)
    def hwprof_error(exc: HwprofError):
        message = str(exc)
        status = 404 if message.startswith("no profile") else 400
        if request.path.startswith("/api/"):
            return error(status, message)
        return render_template("error.html", message=message), status

    @app.errorhandler(413)
    def too_large(_exc):
        return error(413, f"request body larger than {max_body} bytes")

    @app.errorhandler(404)
    def not_found(_exc):
        return error(404, "not found")

    def entry_or_404(entry_id: str):
        validate_id(entry_id)
        return source.entry(entry_id)

    # --- pages --------------------------------------------------------------------------------------
    @app.get("/")
    def store_page():
        return render_template("store.html", store_root=str(store.root))

    @app.get("/profile/<entry_id>")
    def profile_page(entry_id: str):
        entry = entry_or_404(entry_id)
        if entry.kind == "stat":
            return stat_page(entry_id)
        from hwprof.web.export import EXPORTERS

        return render_template("profile.html", entry=entry, inline=None, exporters=list(EXPORTERS.values()))

    @app.get("/stat/<entry_id>")
    def stat_page(entry_id: str):
        entry = entry_or_404(entry_id)
        return render_template("stat.html", entry=entry)

    @app.get("/diff")
    def diff_page():
        a, b = request.args.get("a", ""), request.args.get("b", "")
        entries = [entry_or_404(a), entry_or_404(b)]
        return render_template("diff.html", before=entries[0], after=entries[1], inline=None)

    # --- API ----------------------------------------------------------------------------------------
    @app.get("/api/entries")
    def api_entries():
        return jsonify({"root": str(store.root), "entries": [entry_summary(e) for e in store.list()]})

    @app.get("/api/entries/<entry_id>")
    def api_entry(entry_id: str):
        return jsonify(entry_summary(entry_or_404(entry_id)))

    @app.post("/api/entries/<entry_id>/rename")
    def api_rename(entry_id: str):
        entry_or_404(entry_id)
        body = json_body()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return error(400, "expected a JSON body {\"name\": \"...\"}")
        renamed = store.rename(entry_id, body["name"])
        source.forget(entry_id)
        return jsonify(entry_summary(renamed))

    @app.post("/api/entries/<entry_id>/delete")
    @app.delete("/api/entries/<entry_id>")
    def api_delete(entry_id: str):
        entry_or_404(entry_id)
        body = json_body()
        if not isinstance(body, dict) or body.get("confirm") != entry_id:
            return error(400, "expected a JSON body {\"confirm\": \"<id>\"}")
        source.forget(entry_id)
        store.delete(entry_id)
        return jsonify({"deleted": entry_id})

    @app.get("/api/profile/<entry_id>")
    def api_profile(entry_id: str):
        entry = entry_or_404(entry_id)
        sample_filter = SampleFilter(pid=id_arg(request.args, "pid"), tid=id_arg(request.args, "tid"))
        if "gzip" in request.accept_encodings:
            response = Response(source.payload_gzip(entry, sample_filter), mimetype="application/json")
            response.headers["Content-Encoding"] = "gzip"
            response.headers["Vary"] = "Accept-Encoding"
            return response
        return Response(source.payload_json(entry, sample_filter), mimetype="application/json")

    @app.get("/api/profile/<entry_id>/preview")
    def api_preview(entry_id: str):
        entry = entry_or_404(entry_id)
        blob = source.preview_gzip(entry)
        if "gzip" in request.accept_encodings:
            response = Response(blob, mimetype="application/json")
            response.headers["Content-Encoding"] = "gzip"
            response.headers["Vary"] = "Accept-Encoding"
            return response
        return Response(gzip.decompress(blob), mimetype="application/json")

    @app.get("/api/stat/<entry_id>")
    def api_stat(entry_id: str):
        entry = entry_or_404(entry_id)
        if entry.kind != "stat":
            raise HwprofError(f"{entry_id} is a {entry.kind} entry, not a stat run")
        return jsonify(source.stat_run(entry))

    @app.get("/api/profile/<entry_id>/export/<fmt>")
    def api_export(entry_id: str, fmt: str):
        from hwprof.web.export import Selection, export, exporter

        entry = entry_or_404(entry_id)
        chosen = exporter(fmt)
        selection = Selection.from_query(request.args)
        data = export(source.profile(entry), chosen.name, selection, name=entry.name or entry.target)
        response = Response(data, mimetype=chosen.media_type)
        response.headers["Content-Disposition"] = f'attachment; filename="{entry.id}.{chosen.suffix}"'
        return response

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    return app
