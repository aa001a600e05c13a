"""HTML reports: Jinja2 templates with autoescape, one shared layout and helpers.

Every report page (validation, the reranker run) extends `templates/layout.html` and draws
its tables and figures with `templates/_macros.html`; text that comes from data is escaped
by the template engine, never by hand. A page with a template of its own (classify's) takes
the same style sheet from `style()` and the figures from `figures`.
"""

from synthwright.reports.html import data_uri, render, style

__all__ = ["data_uri", "render", "style"]
