"""The review web app: server-rendered pages to browse rows, and a small script to label them.

Pages
  /                 the steps, their row counts, links
  /rows             one step's rows: search and filters (drop reason, score range, persona, tag)
  /row/KEY          one row: every text, its lineage (linked), every judge's score and reason
  /pairs            a dedup step's dropped rows beside the row each duplicates
  /label            label the calibration sample (review.js talks to /api/label)

Templates are rendered with autoescaping on for every template, whatever its name; the
script puts generated text into the page with `textContent` only.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

from synthwright.judges.apply import judged_mode
from synthwright.review.guard import Guard
from synthwright.review.labels import LabelTask, open_task
from synthwright.review.source import KINDS, Entry, Source

PAGE_SIZE = 50
STATIC = {"review.js": "text/javascript; charset=utf-8", "review.css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class ReviewOptions:
    prefix: str = "judge"
    sample_size: int = 200
    seed: int = 0
    rubric: str | None = None
    token: str | None = None


@dataclass
class RowQuery:
    """What the rows page filters by; empty fields filter nothing."""

    q: str = ""
    kind: str = "all"
    reason: str = ""
    persona: str = ""
    tag: str = ""
    low: float | None = None
    high: float | None = None

    def matches(self, entry: Entry, prefix: str) -> bool:
        if self.q and self.q.lower() not in entry.haystack:
            return False
        if self.reason and entry.reason != self.reason:
            return False
        if self.persona and entry.persona != self.persona:
            return False
        if self.tag and self.tag not in entry.tags:
            return False
        if self.low is not None or self.high is not None:
            score = entry.score(prefix)
            if score is None or (self.low is not None and score < self.low) or (self.high is not None and score > self.high):
                return False
        return True


def facets(entries: list[Entry]) -> dict[str, list[str]]:
    """The values the filters offer, from the rows themselves."""
    reasons = sorted({e.reason for e in entries if e.reason})
    personas = sorted({e.persona for e in entries if e.persona})
    tags = sorted({t for e in entries for t in e.tags})
    return {"reasons": reasons, "personas": personas, "tags": tags}


def duplicate_pairs(source: Source, step: str) -> list[dict[str, Any]]:
    """Dropped rows that name the row they duplicate, with that row and how close they are."""
    pairs = []
    for entry in source.entries(step, "dropped"):
        twin_key = entry.meta.get("duplicate_of")
        if twin_key is None:
            continue
        twin = source.find(str(twin_key), prefer_step=step)
        measures = {k: v for k, v in entry.meta.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("sample_index", "round")}
        pairs.append({"dropped": entry, "twin": twin, "twin_key": str(twin_key), "measures": measures})
    return pairs


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or math.isfinite(number) else None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def create_app(source: Source, options: ReviewOptions = ReviewOptions()):
    """The FastAPI app serving `source`."""
    import jinja2
    from fastapi import Body, FastAPI, HTTPException, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import (
        HTTPException as AnyHTTPException,  # the router's 404s too
    )

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("synthwright.review", "templates"),
        autoescape=True,  # every template, whatever its file name: generated text is untrusted
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = _fmt
    static = {name: resources.files("synthwright.review").joinpath("static", name).read_bytes() for name in STATIC}
    tasks: dict[str, LabelTask] = {}
    tasks_lock = threading.Lock()

    app = FastAPI(title="synthwright review", docs_url=None, redoc_url=None, openapi_url=None)
    app.middleware("http")(Guard(options.token))

    def page(name: str, **context: Any) -> HTMLResponse:
        body = env.get_template(name).render(source=source, prefix=options.prefix, columns=source.columns, **context)
        return HTMLResponse(body)

    def known_step(step: str | None) -> str:
        steps = source.steps()
        if step is None and steps:
            return steps[-1]
        if step not in steps:
            raise HTTPException(404, "No such step in this run.")
        return step

    def task_for(step: str) -> LabelTask:
        with tasks_lock:
            if step not in tasks:
                tasks[step] = open_task(source, step, prefix=options.prefix, size=options.sample_size, seed=options.seed, rubric=options.rubric)
            return tasks[step]

    @app.exception_handler(AnyHTTPException)
    async def _http_error(request: Request, exc: AnyHTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return HTMLResponse(env.get_template("error.html").render(source=source, status=exc.status_code, detail=exc.detail),
                            status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse)
    def index():
        steps = []
        for step in source.steps():
            entries = source.step_entries(step)
            steps.append({
                "name": step, "counts": source.counts(step),
                "judged": any(e.score(options.prefix) is not None for e in entries),
                "labellable": judged_mode((e.row for e in entries), options.prefix) is not None,
                "pairs": any(e.meta.get("duplicate_of") is not None for e in source.entries(step, "dropped")),
            })
        return page("index.html", steps=steps)

    @app.get("/rows", response_class=HTMLResponse)
    def rows(
        step: str | None = None, kind: str = "all", q: str = "", reason: str = "", persona: str = "", tag: str = "",
        low: str | None = Query(None, alias="min"), high: str | None = Query(None, alias="max"), page_number: int = Query(1, alias="page", ge=1),
    ):
        step = known_step(step)
        if kind != "all" and kind not in KINDS:
            raise HTTPException(404, "Rows are out, dropped, failed or all.")
        entries = source.step_entries(step, KINDS if kind == "all" else (kind,))
        query = RowQuery(q=q.strip(), kind=kind, reason=reason, persona=persona, tag=tag, low=_number(low), high=_number(high))
        found = [e for e in entries if query.matches(e, options.prefix)]
        pages = max(1, math.ceil(len(found) / PAGE_SIZE))
        page_number = min(page_number, pages)
        shown = found[(page_number - 1) * PAGE_SIZE : page_number * PAGE_SIZE]
        return page("rows.html", step=step, query=query, entries=shown, found=len(found), total=len(entries),
                    page_number=page_number, pages=pages, facets=facets(source.step_entries(step)), kinds=KINDS,
                    low=low or "", high=high or "")

    # `:path`: a row id may hold "/" (a file path, a URL), which the link keeps as it is.
    @app.get("/row/{key:path}", response_class=HTMLResponse)
    def row(key: str, step: str | None = None):
        entry = source.find(key, prefer_step=step if step in source.steps() else None)
        if entry is None:
            raise HTTPException(404, "No row with that id.")
        children = [e for e in source.step_entries(entry.step) if key in (e.meta.get("parents") or [])]
        return page("row.html", entry=entry, children=children)

    @app.get("/pairs", response_class=HTMLResponse)
    def pairs(step: str | None = None):
        step = known_step(step)
        return page("pairs.html", step=step, pairs=duplicate_pairs(source, step))

    @app.get("/label", response_class=HTMLResponse)
    def label(step: str | None = None):
        step = known_step(step)
        task = task_for(step)
        return page("label.html", step=step, task=task)

    @app.get("/api/label")
    def label_state(step: str):
        return task_for(known_step(step)).to_dict()

    @app.post("/api/label")
    def save_label(step: str, payload: dict = Body(...)):
        task = task_for(known_step(step))
        try:
            record = task.record(str(payload.get("key")), payload)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        task.store.put(record)
        return {"label": record, "progress": task.progress()}

    @app.post("/api/undo")
    def undo(step: str):
        task = task_for(known_step(step))
        key = task.store.undo()
        return {"key": key, "label": task.store.records.get(key) if key else None, "progress": task.progress()}

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)  # browsers ask; an empty answer keeps their consoles clean

    @app.get("/static/{name}")
    def static_file(name: str):
        if name not in static:  # a fixed list: no file name from the request ever reaches the disk
            raise HTTPException(404, "Not found.")
        return Response(static[name], media_type=STATIC[name])

    return app
