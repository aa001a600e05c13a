"""The report templates' environment: autoescape on, and the filters they share."""

from __future__ import annotations

import base64
import functools
import math
from typing import Any

from markupsafe import Markup


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def number(value: Any, digits: int = 3) -> str:
    """A table cell: numbers rounded to `digits`, thousands separated; None and NaN as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return str(value)


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("synthwright.reports", "templates"),
        autoescape=True,  # every template, whatever its file name: report text comes from data
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["num"] = number
    env.filters["data_uri"] = data_uri
    return env


def style() -> str:
    """The reports' style sheet (templates/style.css), for a page with a template of its own."""
    env = _environment()
    return env.loader.get_source(env, "style.css")[0]


def render(template: str, **context: Any) -> Markup:
    """A report template rendered with `context` (escaped: safe to put in another page)."""
    return Markup(_environment().get_template(template).render(**context))
