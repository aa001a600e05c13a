"""The review page as a user meets it: `synthwright review RUN` started in a subprocess, driven
in real headless Chromium (Playwright with Debian's /usr/bin/chromium), and its labels fed to
`synthwright calibrate`. Plus the parts that need no browser: the stratified sample, the
labels file, agreement, and the page's guards (bind, host, token, traversal, cross-site).
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from synthwright.errors import UserError
from synthwright.review.guard import check_bind
from synthwright.review.labels import LabelStore, spearman, stratified_sample
from synthwright.review.source import Entry, open_source
from tests.conftest import REPO, free_port, run_cli
from tests.review_run import N_QUESTIONS, XSS, make_review_run

CHROMIUM = "/usr/bin/chromium"
needs_browser = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install -y chromium)")


# -- a real server ------------------------------------------------------------------------------
class Server:
    def __init__(self, target: Path, *args: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(target.parent / f"review-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synthwright.cli.main", "review", str(target), "--port", str(self.port), *args],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, Path(self.log.name).read_text()
            try:
                if self.raw("GET", "/static/review.css")[0] in (200, 401):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the review server did not start"
            time.sleep(0.1)

    def raw(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None) -> tuple[int, str, dict]:
        """A request sent as written: no client normalises `..` out of the path."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        connection.close()
        return response.status, text, dict(response.getheaders())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return make_review_run(tmp_path / "run")


@pytest.fixture
def server(run_dir):
    served = Server(run_dir, "--sample", "30")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def open_page(browser, url: str):
    """A fresh page that records every dialog, page error and console error."""
    page = browser.new_page()
    page.events = []
    page.on("dialog", lambda dialog: (page.events.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("pageerror", lambda error: page.events.append(f"pageerror: {error}"))
    page.on("console", lambda message: page.events.append(f"console: {message.text}") if message.type == "error" else None)
    page.goto(url)
    return page


def wait_progress(page, start: str) -> None:
    """Until the progress line starts with `start` (waits in Playwright's own world: the
    page's Content-Security-Policy forbids evaluating strings in the page)."""
    from playwright.sync_api import expect

    expect(page.locator("#progress-text")).to_have_text(re.compile("^" + re.escape(start)))


def read_labels(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- labelling in the browser ------------------------------------------------------------------
@needs_browser
def test_label_five_rows_with_the_keyboard_reload_and_calibrate(server, run_dir, browser):
    page = open_page(browser, server.base + "/label?step=judged")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#progress-text") == "0 / 30 labelled"
    criteria = page.eval_on_selector_all(".criterion", "nodes => nodes.map(n => n.dataset.criterion)")
    assert criteria == ["relevance", "naturalness", "difficulty"]  # the run's rubric, as its judge scored it

    ratings = [(5, 4, 3), (1, 2, 1), (4, 4, 4), (2, 3, 2), (5, 5, 4)]
    labelled = []
    for n, (first, second, third) in enumerate(ratings):
        labelled.append(page.inner_text("#item-key"))
        page.keyboard.press(str(first))
        if n == 1:  # a slip: take it back before the row is complete, then rate again
            page.keyboard.press("9")  # not a rating: ignored
            page.keyboard.press("u")
            assert page.eval_on_selector_all(".scale button.chosen", "nodes => nodes.length") == 0
            page.keyboard.press(str(first))
        page.keyboard.press(str(second))
        page.keyboard.press(str(third))
        wait_progress(page, f"{n + 1} / 30")
    # a saved label undone and redone from the keyboard: the file follows
    page.keyboard.press("Backspace")
    wait_progress(page, "4 / 30")
    assert page.inner_text("#item-key") == labelled[-1] and page.inner_text("#item-state") == "not labelled yet"
    assert len(read_labels(run_dir / "review" / "judged.human.jsonl")) == 4
    for key in "554":
        page.keyboard.press(key)
    wait_progress(page, "5 / 30")
    assert "agreement with judge: Spearman" in page.inner_text("#agreement")
    assert page.events == []
    page.close()

    # reload: the five labels are there, and the page carries on at the sixth row
    page = open_page(browser, server.base + "/label?step=judged")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#progress-text") == "5 / 30 labelled"
    assert page.inner_text("#item-key") not in labelled
    page.keyboard.press("ArrowLeft")
    assert page.inner_text("#item-state") == "labelled"
    page.close()

    labels = read_labels(run_dir / "review" / "judged.human.jsonl")
    assert [r["id"] for r in labels] == labelled
    assert [tuple(r["criteria"].values()) for r in labels] == ratings
    assert [r["score"] for r in labels] == pytest.approx([sum(r) / 3 for r in ratings], abs=1e-4)  # default rubric: equal weights

    calibrated = run_cli("calibrate", "--judged", str(run_dir), "--step", "judged", "--bootstrap", "200", "--output", str(run_dir / "cal.json"))
    assert calibrated.returncode == 0, calibrated.stdout + calibrated.stderr
    assert "5 human labels matched judged rows" in calibrated.stdout
    report = json.loads((run_dir / "cal.json").read_text())
    assert report["matched"] == 5 and report["mode"] == "pointwise" and report["agreement"]["combined"]["spearman"]["value"] is not None


@needs_browser
def test_pairwise_labels_follow_the_shown_order(server, run_dir, browser):
    state = json.loads(urllib.request.urlopen(server.base + "/api/label?step=pairs").read())
    assert state["mode"] == "pairwise"
    assert {item["left"]["side"] for item in state["items"]} == {"a", "b"}  # the order is randomised
    page = open_page(browser, server.base + "/label?step=pairs")
    page.wait_for_selector("body[data-ready='1']")
    shown = []
    for n, key in enumerate(["1", "2", "1", "0"]):
        shown.append((page.inner_text("#item-key"), page.inner_text("#left-text"), key))
        page.keyboard.press(key)
        wait_progress(page, f"{n + 1} / ")
    page.close()
    labels = {r["id"]: r for r in read_labels(run_dir / "review" / "pairs.human.jsonl")}
    for key, left_text, pressed in shown:
        left_side = "a" if left_text.startswith("answer A") else "b"
        want = {"1": left_side, "2": "b" if left_side == "a" else "a", "0": "tie"}[pressed]
        assert labels[key]["preference"] == want and labels[key]["shown_first"] == left_side
    calibrated = run_cli("calibrate", "--judged", str(run_dir), "--step", "pairs", "--bootstrap", "200")
    assert calibrated.returncode == 0, calibrated.stdout + calibrated.stderr
    assert "3 human labels matched judged rows" in calibrated.stdout and "1 ties left out" in calibrated.stdout


# -- browsing in the browser --------------------------------------------------------------------
@needs_browser
def test_hostile_rows_render_as_text_and_run_nothing(server, browser):
    for path in ("/rows?step=questions", "/rows?step=questions&q=script", "/rows?step=judged&min=1&max=5", "/label?step=judged"):
        page = open_page(browser, server.base + path)
        page.wait_for_load_state("load")
        if path.startswith("/label"):
            page.wait_for_selector("body[data-ready='1']")
            shown = []
            for _ in range(30):  # walk the whole sample (every judged row): the hostile row is in it
                shown.append(page.inner_text("#texts"))
                page.keyboard.press("ArrowRight")
            assert any(XSS in text for text in shown)
        else:
            assert XSS in page.inner_text("main")  # the literal text, tags and all
            assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
            assert page.locator("b", has_text="markup").count() == 0  # a judge's reason is text too
        assert page.evaluate("window.__xss") is None
        assert not [e for e in page.events if e.startswith(("dialog", "pageerror"))], page.events
        page.close()


@needs_browser
def test_browse_filters_lineage_and_pairs(server, run_dir, browser):
    page = open_page(browser, server.base + "/")
    assert page.locator("table.steps tbody tr").count() == 4
    page.click("text=browse >> nth=0")
    assert page.inner_text("#found") == str(N_QUESTIONS + 3 + 1)  # kept, dropped, failed
    page.fill("input[name=q]", "topic 16")
    page.select_option("select[name=persona]", "nurse")
    page.click("button[type=submit]")
    assert page.inner_text("#found") == "1"
    page.goto(server.base + "/rows?step=questions&tag=ambiguity")
    assert page.inner_text("#found") == str(len(range(0, N_QUESTIONS, 7)) + 1)  # and the near-duplicate of row 0
    page.goto(server.base + "/rows?step=questions&reason=dropped_near_duplicate")
    assert page.inner_text("#found") == "3"
    page.goto(server.base + "/rows?step=kept&kind=dropped")
    assert page.inner_text("#found") == "9"
    page.goto(server.base + "/rows?step=judged&min=4.5&max=5")
    assert page.inner_text("#found") == "6"  # scores 4.56 and 5.0: rows 8, 9, 18, 19, 28, 29
    # lineage: a near-duplicate links to its twin, side by side on the pairs page
    page.goto(server.base + "/pairs?step=questions")
    assert page.locator(".pair").count() == 3
    first = page.locator(".pair").first
    assert "cosine_distance 0.01" in first.inner_text() and first.locator("article.row").count() == 2
    twin_link = first.locator("article.row").first.locator("dl.lineage a.rowid").first.get_attribute("href")
    page.goto(server.base + twin_link)
    assert "Question 0:" in page.inner_text("main") and "dropped_near_duplicate" not in page.inner_text("main")
    assert page.events == []
    page.close()


# -- guards -------------------------------------------------------------------------------------
def test_paths_outside_the_run_cannot_be_read(server, run_dir):
    secret = run_dir.parent / "secret.txt"
    secret.write_text("TOP-SECRET")
    probes = [
        "/static/../../../../etc/passwd", "/static/..%2f..%2f..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/review.js/../../manifest.json", "/rows?step=../../../../etc", "/rows?step=..%2f..%2fsecret.txt",
        "/rows?step=%2Fetc%2Fpasswd", "/label?step=../secret.txt", "/api/label?step=..%2F..%2Fsecret.txt",
        "/pairs?step=/etc", "/row/..%2F..%2Fsecret.txt", "/row/%2e%2e%2fmanifest.json", "/../../etc/passwd", "/manifest.json",
        "/steps/questions/stats.json", "/review/judged.human.jsonl",
    ]
    for probe in probes:
        status, text, _ = server.raw("GET", probe)
        assert status in (400, 404), (probe, status)
        assert "root:" not in text and "TOP-SECRET" not in text and '"history"' not in text, probe
    status, _, _ = server.raw("POST", "/api/label?step=../x", {"Content-Type": "application/json"}, b'{"key": "x"}')
    assert status == 404


def test_guards_host_origin_and_headers(server):
    status, _, headers = server.raw("GET", "/")
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    # DNS rebinding: another host name pointing at 127.0.0.1 gets nothing
    assert server.raw("GET", "/", {"Host": f"evil.example:{server.port}"})[0] == 400
    body = json.dumps({"key": "x", "criteria": {}}).encode()
    # a cross-site form (no JSON) and a cross-origin script are refused before any label is touched
    assert server.raw("POST", "/api/undo?step=judged", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1")[0] == 415
    cross = server.raw("POST", "/api/label?step=judged", {"Content-Type": "application/json", "Origin": "http://evil.example"}, body)
    assert cross[0] == 403
    # a label that is not whole is refused with the reason
    status, text, _ = server.raw("POST", "/api/label?step=judged", {"Content-Type": "application/json"}, body)
    assert status == 422 and "not a row of this calibration sample" in text


def test_token_is_required_and_traded_for_a_cookie(run_dir):
    served = Server(run_dir, "--token", "s3cret-token")
    try:
        assert served.raw("GET", "/")[0] == 401
        assert served.raw("GET", "/?token=wrong")[0] == 401
        assert served.raw("GET", "/", {"Authorization": "Bearer s3cret-token"})[0] == 200
        status, _, headers = served.raw("GET", "/rows?step=judged&token=s3cret-token")
        assert status == 303 and headers["location"] == "/rows?step=judged"  # the token leaves the address bar
        assert served.raw("GET", "//evil.example/x?token=s3cret-token")[2]["location"] == "/evil.example/x"  # no open redirect
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]
        status, text, _ = served.raw("GET", "/rows?step=judged", {"Cookie": cookie})
        assert status == 200 and "judged" in text
    finally:
        served.stop()


def test_non_loopback_bind_needs_a_token(run_dir):
    with pytest.raises(UserError, match="other machines"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "tok")
    check_bind("::1", None)
    check_bind("127.0.0.2", None)
    refused = run_cli("review", str(run_dir), "--host", "0.0.0.0", timeout=60)
    assert refused.returncode == 2 and "--token" in refused.stderr
    missing = run_cli("review", str(run_dir.parent / "nope"), timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


# -- the parts underneath ----------------------------------------------------------------------
def _entries(scores: list[float]) -> list[Entry]:
    return [Entry({"text": f"t{i}", "judge_score": s, "_meta": {"id": f"r{i}"}}, f"r{i}", "s", "out") for i, s in enumerate(scores)]


def test_stratified_sample_covers_every_score_bin():
    # a judge that loves everything: 90 rows at 4-5, a handful low
    scores = [5.0] * 60 + [4.2] * 30 + [3.0] * 6 + [2.1] * 3 + [1.0] * 1
    keys, quota = stratified_sample(_entries(scores), "judge", "pointwise", 20, seed=1)
    assert quota == [1, 3, 6, 5, 5]  # small bins give all they have, the rest is shared out
    assert len(keys) == len(set(keys)) == 20
    again, _ = stratified_sample(_entries(scores), "judge", "pointwise", 20, seed=1)
    other, _ = stratified_sample(_entries(scores), "judge", "pointwise", 20, seed=2)
    assert again == keys and other != keys  # seeded: the same sample on every start
    everything, quota = stratified_sample(_entries(scores), "judge", "pointwise", 500, seed=1)
    assert len(everything) == 100 and quota == [1, 3, 6, 30, 60]


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    import random

    rng = random.Random(3)
    x = [rng.randint(1, 5) for _ in range(40)]
    y = [v + rng.uniform(-2, 2) for v in x]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_label_store_replaces_undoes_and_survives_a_restart(tmp_path):
    path = tmp_path / "labels.jsonl"
    store = LabelStore(path)
    store.put({"id": "a", "score": 2})
    store.put({"id": "b", "score": 5})
    store.put({"id": "a", "score": 4})  # a changed mind
    assert read_labels(path) == [{"id": "b", "score": 5}, {"id": "a", "score": 4}]
    assert store.undo() == "a" and read_labels(path) == [{"id": "b", "score": 5}, {"id": "a", "score": 2}]
    assert store.undo() == "b" and read_labels(path) == [{"id": "a", "score": 2}]
    assert LabelStore(path).records == {"a": {"id": "a", "score": 2}}  # what a new server sees
    assert not list(tmp_path.glob("*.tmp"))


def test_a_rows_file_is_reviewed_and_its_labels_sit_beside_it(tmp_path, run_dir):
    rows = [r for r in open_source(run_dir).entries("judged")]
    data = tmp_path / "queries.judged.jsonl"
    data.write_text("".join(json.dumps({k: v for k, v in e.row.items() if k != "_meta"}) + "\n" for e in rows))
    source = open_source(data)
    assert source.steps() == ["queries.judged"] and [e.key for e in source.entries("queries.judged")][:3] == ["0", "1", "2"]
    assert source.labels_path("queries.judged") == tmp_path / "queries.judged.human.jsonl"
    with pytest.raises(KeyError):
        source.entries("../queries.judged")


def test_row_ids_with_a_slash_link_to_their_row(tmp_path):
    data = tmp_path / "docs.jsonl"
    ids = ["docs/intro.md", "src/pkg/mod.py#L10"]
    data.write_text("".join(json.dumps({"id": i, "text": f"text of {i}"}) + "\n" for i in ids), encoding="utf-8")
    served = Server(data)
    try:
        status, listing, _ = served.raw("GET", "/rows?step=docs")
        assert status == 200, listing
        links = re.findall(r'class="rowid" href="([^"]+)"', listing)
        assert len(links) == len(ids)
        for link, row_id in zip(sorted(links), sorted(ids)):
            status, page, _ = served.raw("GET", link.replace("&amp;", "&"))
            assert status == 200, (link, status)
            assert f"text of {row_id}" in page
    finally:
        served.stop()
