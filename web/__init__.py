"""hwprof.web: the browser view of the profile store (Flask app, payloads, exports, self-contained HTML).

Imports are lazy so `hwprof report` and the payload code do not pay for Flask until they serve."""

from __future__ import annotations

__all__ = ["create_app", "render_html", "render_diff_html", "build_payload"]


def __getattr__(name: str):
    if name == "create_app":
        from hwprof.web.app import create_app

        return create_app
    if name in ("render_html", "render_diff_html"):
        from hwprof.web import report

        return getattr(report, name)
    if name == "build_payload":
        from hwprof.web.payload import build_payload

        return build_payload
    raise AttributeError(name)
