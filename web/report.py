"""Self-contained HTML: the profile (or diff) page with its CSS, scripts and payload inlined, for
`hwprof report --html FILE`. The file works offline and from file://, with no server and no network."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from hwprof.web.payload import build_payload, dumps_payload
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hwprof.profile import Profile

_WEB = Path(__file__).parent
SCRIPTS = ("model.js", "flame.js", "pages.js")


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(_WEB / "templates")), autoescape=select_autoescape(["html"]))


def _assets() -> dict:
    scripts = []
    for name in SCRIPTS:
        text = (_WEB / "static" / name).read_text()
        if "</script" in text.lower():
            raise AssertionError(f"{name} contains '</script', which would end the inline element")
        scripts.append(text)
    return {"css": (_WEB / "static" / "hwprof.css").read_text(), "scripts": scripts}


def render_html(profile: Profile, title: str | None = None, *, max_bins: int | None = None) -> str:
    """The interactive profile page as one HTML document."""
    from hwprof.web.export import EXPORTERS, ExportView

    title = title or profile.meta.target or "hwprof profile"
    kwargs = {"max_bins": max_bins} if max_bins else {}
    payload = dumps_payload(build_payload(profile, title=title, **kwargs))
    # No server to ask offline: the page carries the whole profile's exports, rendered by the same registry.
    offline = [e for e in EXPORTERS.values() if e.embeddable]
    view = ExportView(np.ones(profile.n_samples, dtype=bool), None, title)
    exports = {e.name: {"media_type": e.media_type, "suffix": e.suffix,
                        "data": base64.b64encode(e.render(profile, view)).decode()} for e in offline}
    inline = dict(_assets(), payload=payload, exports=dumps_payload(exports))
    return _environment().get_template("profile.html").render(inline=inline, entry=None, title=title,
                                                              exporters=offline)


def render_diff_html(before: Profile, after: Profile, title_before: str = "before", title_after: str = "after") -> str:
    """The diff page (before vs after, normalised) as one HTML document."""
    inline = dict(_assets(), before=dumps_payload(build_payload(before, title=title_before)),
                  after=dumps_payload(build_payload(after, title=title_after)))
    return _environment().get_template("diff.html").render(inline=inline, before=None, after=None,
                                                           title_before=title_before, title_after=title_after)


def write_html(profile: Profile, path: str | Path, title: str | None = None) -> None:
    Path(path).write_text(render_html(profile, title), encoding="utf-8")
