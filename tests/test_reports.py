"""HTML reports come from Jinja2 templates with autoescape and one shared layout."""

from __future__ import annotations

from synthwright.reports import render
from synthwright.reports.html import number
from synthwright.reranker.report import render as reranker_page
from synthwright.validate.html_report import render_projection_page


def test_text_from_data_is_escaped_by_the_template():
    page = render("reranker/calibration.html", rows=[["<b>member</b>", 3, 0.5, None, None, 1.25, float("nan")]], queries=2, pairs=3)
    assert "&lt;b&gt;member&lt;/b&gt;" in page and "<b>member" not in page
    assert "<td class=\"\">0.500</td>" in page and "<td class=\"\">–</td>" in page


def test_numbers_in_tables():
    assert [number(None), number(float("inf")), number(True), number(12345), number(0.5), number(0.00012), number("a<b")] == \
        ["–", "–", "yes", "12,345", "0.500", "0.00012", "a<b"]  # text is escaped by the template, not here


def test_every_report_page_extends_the_one_layout(tmp_path):
    pages = [reranker_page(tmp_path, [], "run <1>"),
             render_projection_page({"method": "pca", "coords": [[0.0, 0.0], [1.0, 1.0]], "labels": ["real", "synthetic"], "texts": ["a", "<b>"]})]
    for page in pages:
        assert page.startswith("<!DOCTYPE html>") and page.count("<style>") == 1 and "td.l,th.l{text-align:left}" in page
    assert "<title>run &lt;1&gt;</title>" in pages[0] and "<h1>PCA projection</h1>" in pages[1]
