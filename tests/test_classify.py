"""`synthwright classify` and its steps: prompts, cleaning, label likelihood, balance, students,
evaluation and report, with the real tiny model (and the 1.5B teacher where the answer matters)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from synthwright.classify.clean import clean_text
from synthwright.classify.evaluation import paired_gain, scores
from synthwright.classify.labelling import ensemble, label_probabilities, label_requests
from synthwright.classify.prompts import clean_items, merge_distinct, prompt_rows, rotated_examples
from synthwright.classify.task import TaskSpec, load_labelled, load_task
from synthwright.core.step import StepContext
from synthwright.errors import UserError
from tests.conftest import run_cli
from tests.test_cli_errors import assert_one_clear_error

TINY = "llamacpp:smollm2-135m"
SENTIMENT = {"labels": {"negative": "the reviewer disliked the film", "positive": "the reviewer liked the film"},
             "register": "movie-review sentence"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- task spec ---------------------------------------------------------------------------------------
def test_task_from_mapping_and_file(tmp_path):
    style = write_jsonl(tmp_path / "style.jsonl", [{"text": "a fine film ."}, {"text": "too long by half and dull ."}, {"text": "ok"}])
    (tmp_path / "task.yaml").write_text(
        "register: review sentence\nlabels: {neg: bad, pos: good}\nstyle_examples: style.jsonl\nstyle_min_words: 3\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    task = load_task("../task.yaml", elsewhere)  # the style path is relative to the task file, not the pipeline
    assert task.names == ["neg", "pos"] and task.description("pos") == "good" and task.text_register == "review sentence"
    assert task.style_sample(elsewhere) == ["a fine film .", "too long by half and dull ."]


@pytest.mark.parametrize("bad, fragment", [
    ({"labels": {"only": "one"}}, "at least two labels"),
    ({"labels": [{"name": "a"}, {"name": "a"}]}, "given twice"),
    ({"labels": {"a": "x", "b": "y"}, "colour": "red"}, "colour"),
])
def test_bad_task_spec_is_a_clear_error(bad, fragment, tmp_path):
    with pytest.raises(UserError) as caught:
        load_task(bad, tmp_path)
    assert fragment in caught.value.problem


def test_unknown_label_in_labelled_file_is_refused(tmp_path):
    task = load_task(SENTIMENT, tmp_path)
    path = write_jsonl(tmp_path / "dev.jsonl", [{"text": "great", "label_text": "positive"}, {"text": "meh", "label_text": "neutral"}])
    with pytest.raises(UserError) as caught:
        load_labelled(path, task)
    assert "'neutral'" in caught.value.problem and "negative, positive" in caught.value.problem


# -- prompts -------------------------------------------------------------------------------------------
def test_prompt_rows_are_balanced_rotated_and_seeded():
    task = TaskSpec.model_validate(SENTIMENT)
    style = [f"real text {i}" for i in range(7)]
    subtopics = {"negative": ["plot", "acting", "pacing"], "positive": ["score", "camera"]}

    def draw(seed):
        return prompt_rows(task, subtopics, ["critic", "fan"], style, per_label=6, lengths=["short", "long"], examples_per_prompt=3,
                           rng_for=lambda *parts: random.Random(f"{seed}{parts}"))

    rows = draw(1)
    assert [r["label"] for r in rows[:4]] == ["negative", "positive", "negative", "positive"]  # interleaved
    assert sum(r["label"] == "positive" for r in rows) == 6
    negative_topics = [r["subtopic"] for r in rows if r["label"] == "negative"]
    assert sorted(negative_topics) == sorted(subtopics["negative"] * 2)  # each subtopic equally often
    assert rows[0]["examples"] == rows[1]["examples"] and len(rows[0]["examples"]) == 3  # a round of labels shares its prefix
    assert rows[1]["examples"] != rows[2]["examples"]  # the next round sees other texts
    assert draw(1) == rows and draw(2) != rows  # same seed, same rows
    smaller = prompt_rows(task, subtopics, ["critic", "fan"], style, per_label=4, lengths=["short", "long"], examples_per_prompt=3,
                          rng_for=lambda *parts: random.Random(f"1{parts}"))
    assert smaller == rows[:8]  # a larger run starts with the smaller run's rows (its requests come from the cache)


def test_rotation_shows_every_style_text_equally():
    style = list("abcdef")
    shown = [x for position in range(4) for x in rotated_examples(style, position, 3)]
    assert sorted(shown) == sorted(style * 2)


def test_proposal_lists_are_cleaned_and_near_repeats_merged():
    answer = "Here you go:\n1. NBA game\n2. **Boxing match**\n3) Boxing match (pro)\n- MMA match\n4. NBA game"
    items = clean_items(answer, 10)
    assert items[:2] == ["NBA game", "Boxing match"] and "Here you go:" not in items
    assert merge_distinct([], items) == ["NBA game", "Boxing match", "MMA match"]


def test_subtopics_nearer_another_label_are_dropped():
    from synthwright.classify.prompts import fitting_subtopics
    from synthwright.embed import load_embedder

    task = TaskSpec.model_validate({"labels": {"World": "international politics, elections, wars", "Sports": "games, athletes, teams",
                                               "Business": "companies, markets, the economy"}})
    proposals = {"World": ["Elections in Europe", "Sports news", "Stock market news"], "Sports": ["Tennis finals"], "Business": []}
    kept, dropped = fitting_subtopics(task, proposals, load_embedder("minilm").embed)
    assert kept["World"] == ["Elections in Europe"] and dropped["World"] == ["Sports news", "Stock market news"]
    assert kept["Sports"] == ["Tennis finals"] and kept["Business"] == []


def test_edge_cases_join_their_label_subtopics_past_the_fit_filter(tmp_path):
    from synthwright.classify.prompts import fitting_subtopics, with_edge_cases
    from synthwright.embed import load_embedder

    plain = {"labels": {"Business": "companies, markets, the economy", "Sci/Tech": "computers, software, science"}}
    edged = {"labels": {"Business": "companies, markets, the economy",
                        "Sci/Tech": {"description": "computers, software, science", "edge_cases": ["a tech company's share price"]}}}
    task = load_task(edged, tmp_path)
    assert task.edge_cases("Sci/Tech") == ["a tech company's share price"] and task.edge_cases("Business") == []
    # MiniLM puts the edge case nearer Business: as a proposed subtopic it would be dropped...
    kept, dropped = fitting_subtopics(task, {"Sci/Tech": ["Laptops", "a tech company's share price"], "Business": ["Bank mergers"]},
                                      load_embedder("minilm").embed)
    assert dropped["Sci/Tech"] == ["a tech company's share price"]
    # ...as a stated edge case it is kept, once, and a label with neither subtopics nor edges stays unset.
    assert with_edge_cases(task, kept) == {"Sci/Tech": ["Laptops", "a tech company's share price"], "Business": ["Bank mergers"]}
    assert with_edge_cases(task, {}) == {"Sci/Tech": ["a tech company's share price"]}
    repeated = load_task({"labels": {"Business": "companies", "Sci/Tech": {"edge_cases": ["a tech company's share price"] * 2}}}, tmp_path)
    assert with_edge_cases(repeated, {"Sci/Tech": ["Laptops"]}) == {"Sci/Tech": ["Laptops", "a tech company's share price"]}
    # A task without edge cases dumps (so fingerprints) exactly as before the field existed.
    assert "edge_cases" not in json.dumps(load_task(plain, tmp_path).model_dump(mode="json"))
    assert "edge_cases" in json.dumps(task.model_dump(mode="json"))


# -- cleaning ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, text, stripped, drop", [
    ("Sure! Here is a story:\n\n**Headline:** Stocks rally\nNEW YORK - Stocks rose.", "Stocks rally NEW YORK - Stocks rose.", {"preamble", "field_prefix"}, None),
    ('"it is a charming film ."', "it is a charming film .", {"quotes"}, None),
    ("```\nSports: The Yankees won the game.\n```", "The Yankees won the game.", {"code_fence", "label_prefix"}, None),
    ("Source: AP\nThe senate voted on a bill today.", "The senate voted on a bill today.", {"field_line"}, None),
    ("I'm sorry, but I cannot write that.", None, None, "refusal"),
    ("Good.", None, None, "too_short"),
    ("The category: Sports, as this is about a game.", None, None, "names_its_label"),
    ("[Company Name] announced record profits this quarter.", None, None, "placeholder"),
    ("**Title:**", "", None, "empty"),
    ("A report quoting an official: Oil rose on Monday, a minister said.", "Oil rose on Monday, a minister said.", {"prompt_echo"}, None),
])
def test_cleaning_strips_scaffolding_and_names_drop_reasons(raw, text, stripped, drop):
    cleaned = clean_text(raw, ["Sports"], min_words=3, echoes=["a report quoting an official"])
    assert cleaned.drop == drop
    if text is not None:
        assert cleaned.text == text
    if stripped is not None:
        assert stripped <= set(cleaned.stripped)


# -- label likelihood and the ensemble ------------------------------------------------------------------
def test_label_probabilities_are_a_softmax_of_label_likelihoods(tmp_path):
    """One request per (text, label), answered by the real tiny model: the probabilities are the
    softmax of log P(label | prompt) that the backend reports for each label on its own."""
    task = TaskSpec.model_validate(SENTIMENT)
    texts = ["a wonderful , moving film .", "a dull , lifeless mess ."]
    context = StepContext(workdir=tmp_path, run_dir=tmp_path)
    requests = label_requests(task, texts, by_likelihood=True)
    assert len(requests) == 4 and [r.continuation for r in requests] == ["negative", "positive"] * 2
    responses, _ = context.ask(TINY, "test", requests)
    probs, errors = label_probabilities(task, responses, by_likelihood=True)
    assert errors == [None, None]
    logps = np.array([r.continuation_logprob for r in responses]).reshape(2, 2)
    expected = np.exp(logps) / np.exp(logps).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-9)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    context.close()


def test_calibration_divides_out_a_prior_from_the_teachers_probabilities(tmp_path):
    """Content-free: the prior is the mean answer to "N/A", "[MASK]" and an empty text, asked of
    the real tiny model; batch: the mean over the texts themselves. Calibrated rows are the raw
    ones divided by the prior, so a label the prior favours loses ground."""
    from synthwright.classify.labelling import CONTENT_FREE, teacher_label_probabilities

    task = TaskSpec.model_validate(SENTIMENT)
    texts = ["a wonderful , moving film .", "a dull , lifeless mess .", "it is a film ."]
    context = StepContext(workdir=tmp_path, run_dir=tmp_path)
    labels = teacher_label_probabilities(context, TINY, "test", task, texts, "test", content_free=True)
    free, _ = label_probabilities(task, context.ask(TINY, "test", label_requests(task, list(CONTENT_FREE), by_likelihood=True))[0],
                                  by_likelihood=True)
    np.testing.assert_allclose(labels.content_free, free.mean(axis=0))
    for how, prior in (("content_free", labels.content_free), ("batch", labels.probs.mean(axis=0))):
        calibrated = labels.calibrated(how)
        expected = labels.probs / prior
        np.testing.assert_allclose(calibrated, expected / expected.sum(axis=1, keepdims=True))
        favoured = int(np.argmax(prior))
        assert (calibrated[:, favoured] <= labels.probs[:, favoured] + 1e-12).all()
    batch = labels.calibrated("batch")
    np.testing.assert_allclose(batch.mean(axis=0), [0.5, 0.5], atol=0.2)  # the texts' own lean is mostly gone
    uncalibrated = teacher_label_probabilities(context, TINY, "test", task, texts, "test")
    assert uncalibrated.content_free is None and np.allclose(uncalibrated.probs, labels.probs)
    assert uncalibrated.calibrated("none") is uncalibrated.probs
    with pytest.raises(ValueError, match="content_free=True"):
        uncalibrated.calibrated("content_free")
    context.close()


@pytest.mark.slow
def test_teacher_label_likelihood_on_hand_checked_texts(tmp_path):
    """The 1.5B teacher on texts whose topic nobody would dispute."""
    task = TaskSpec.model_validate({"register": "news story", "labels": {
        "World": "international politics and conflicts", "Sports": "games, athletes and teams",
        "Business": "companies, markets and the economy", "Sci/Tech": "science, computers and technology"}})
    texts = ["The Red Sox beat the Yankees 5-3 to win the American League pennant.",
             "Oil prices rose as shares of airlines fell on Wall Street.",
             "NASA's rover found signs of water on Mars, scientists said."]
    context = StepContext(workdir=tmp_path, run_dir=tmp_path)
    responses, _ = context.ask("llamacpp:qwen2.5-coder-1.5b", "test", label_requests(task, texts, by_likelihood=True))
    probs, _ = label_probabilities(task, responses, by_likelihood=True)
    assert [task.names[i] for i in probs.argmax(axis=1)] == ["Sports", "Business", "Sci/Tech"]
    context.close()


def test_ensemble_weights_members_and_skips_missing_scores():
    teacher = np.array([[0.9, 0.1], [np.nan, np.nan]])
    embedding = np.array([[0.2, 0.8], [0.3, 0.7]])
    combined = ensemble({"teacher": teacher, "embedding": embedding}, {"teacher": 3.0})
    np.testing.assert_allclose(combined[0], [(3 * 0.9 + 0.2) / 4, (3 * 0.1 + 0.8) / 4])
    np.testing.assert_allclose(combined[1], [0.3, 0.7])  # the teacher failed on this row: the others decide


# -- evaluation -----------------------------------------------------------------------------------------
def test_scores_and_paired_gain():
    truth = [0, 0, 1, 1, 1, 0, 1, 0] * 10
    a = [0, 1, 1, 0, 1, 0, 0, 0] * 10  # 5 of 8 right
    b = list(truth)  # all right
    result = scores(truth, a, 2)
    assert result["accuracy"] == pytest.approx(5 / 8) and result["confusion"] == [[30, 10], [20, 20]]
    gain = paired_gain(truth, a, b, 2)
    assert gain.difference == pytest.approx(3 / 8) and 0 < gain.low < gain.difference < gain.high and gain.p_value < 0.01
    same = paired_gain(truth, a, a, 2, metric="macro_f1")
    assert same.difference == 0 and same.p_value == 1.0


# -- pipeline: balance, errors, end to end ---------------------------------------------------------------
def run_pipeline_yaml(tmp_path: Path, steps: str, name: str = "t"):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"name: {name}\nseed: 0\nsteps:\n{steps}", encoding="utf-8")
    return run_cli("run", str(pipeline), "--run-dir", str(tmp_path / "run"))


def labelled_rows(counts: dict[str, int]) -> list[dict]:
    return [{"text": f"{label} text number {i} here", "label": label, "label_confidence": (i % 5) / 5}
            for label, n in counts.items() for i in range(n)]


def test_balance_keeps_the_same_number_per_label_most_confident_first(tmp_path):
    (tmp_path / "task.yaml").write_text(json.dumps(SENTIMENT), encoding="utf-8")
    write_jsonl(tmp_path / "rows.jsonl", labelled_rows({"negative": 7, "positive": 4}))
    result = run_pipeline_yaml(tmp_path, "  - {name: rows, uses: load, with: {path: rows.jsonl}}\n"
                                         "  - {name: balanced, uses: balance_classes, with: {task: task.yaml}}\n"
                                         "  - {name: out, uses: export, with: {path: out.jsonl}}\n")
    assert result.returncode == 0, result.stderr
    kept = [json.loads(line) for line in (tmp_path / "run" / "out.jsonl").read_text().splitlines()]
    negative = [row for row in kept if row["label"] == "negative"]
    assert len(negative) == 4 and sum(row["label"] == "positive" for row in kept) == 4
    assert sorted(row["label_confidence"] for row in negative) == [0.2, 0.4, 0.6, 0.8]  # the 3 least confident (0, 0, 0.2) went


def test_a_label_emptied_by_filtering_is_a_clear_error(tmp_path):
    (tmp_path / "task.yaml").write_text(json.dumps(SENTIMENT), encoding="utf-8")
    write_jsonl(tmp_path / "rows.jsonl", labelled_rows({"negative": 3}))
    result = run_pipeline_yaml(tmp_path, "  - {name: rows, uses: load, with: {path: rows.jsonl}}\n"
                                         "  - {name: balanced, uses: balance_classes, with: {task: task.yaml}}\n")
    assert_one_clear_error(result, "positive", "no examples left")


def test_classify_refuses_an_unknown_evaluation_label_before_any_work(tmp_path):
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": "fine", "label_text": "positive"}, {"text": "so-so", "label_text": "mixed"}])
    result = run_cli("classify", "--label", "positive=liked it", "--label", "negative=disliked it", "--eval-data", str(dev),
                     "--teacher", TINY, "--run-dir", str(tmp_path / "run"))
    assert_one_clear_error(result, "'mixed'", "does not name")
    assert not (tmp_path / "run" / "pipeline.yaml").exists()


@pytest.mark.parametrize("args, fragment", [
    ([], "No labels"),
    (["--label", "=nothing"], "has no name"),
    (["--label", "a=x", "--label", "a=y"], "given twice"),
    (["--label", "only=one"], "at least two labels"),
])
def test_classify_bad_labels(args, fragment, tmp_path):
    assert_one_clear_error(run_cli("classify", *args, "--run-dir", str(tmp_path / "run")), fragment)


def test_classify_end_to_end_with_the_tiny_model(tmp_path):
    """A dozen examples from the tiny model, a student, the evaluation and the report."""
    positive = ["a joyous , moving film .", "the best comedy of the year .", "warm , funny and smart .", "a triumph of acting ."]
    negative = ["a dull , lifeless mess .", "the plot makes no sense .", "boring from start to end .", "an ugly , stupid film ."]
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"id": f"p{i}", "text": t, "label_text": "positive"} for i, t in enumerate(positive)]
                      + [{"id": f"n{i}", "text": t, "label_text": "negative"} for i, t in enumerate(negative)])
    style = write_jsonl(tmp_path / "style.jsonl", [{"text": t} for t in positive[:2] + negative[:2]])
    run_dir = tmp_path / "run"
    result = run_cli("classify", "--label", "positive=the reviewer liked the film", "--label", "negative=the reviewer disliked the film",
                     "--register", "movie-review sentence", "--style-examples", str(style), "--eval-data", str(dev),
                     "--real-train", str(dev), "--per-label", "6", "--subtopics", "4", "--teacher", TINY, "--curve", "4",
                     "--run-dir", str(run_dir), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "student_lr" / "student.json").is_file() and (run_dir / "dataset.jsonl").is_file()
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    names = [system["name"] for system in evaluation["systems"]]
    assert names[0] == "synthetic student (lr)" and any(name.startswith("teacher zero-shot") for name in names)
    assert any(name.startswith("real-label student") for name in names) and "MiniLM zero-shot (nearest label description)" in names
    assert all(system["rows"] == 8 for system in evaluation["systems"])
    assert {gain["a"] for gain in evaluation["gains"]} == set(names[1:])
    report = (run_dir / "report.html").read_text()
    assert "the teacher" in report and "Confusion matrices" in report and "<script" not in report
    check = json.loads((run_dir / "label_check.json").read_text())
    assert set(check["members"]) == {"teacher", "embedding", "crossfit"}
    # the command wrote the pipeline it ran: `run` on it finds every step done and redoes nothing
    written = (run_dir / "evaluation.json").stat().st_mtime_ns
    again = run_cli("run", str(run_dir / "pipeline.yaml"), "--run-dir", str(run_dir))
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run_dir / "evaluation.json").stat().st_mtime_ns == written


# -- failures, policies, sampling -----------------------------------------------------------------------
DEAD = "openai:nobody@http://127.0.0.1:9/v1"  # nothing listens there: every request fails at once


def make_stage(step_type: str, tmp_path: Path, task: dict = SENTIMENT, **options):
    from synthwright.core.step import step_class
    from synthwright.pipeline.steps import load_step_types

    load_step_types()
    cls = step_class(step_type)
    context = StepContext(workdir=tmp_path, run_dir=tmp_path, max_attempts=1, timeout_s=5)
    return cls("s", cls.Options.model_validate({"task": task, **options}), context)


def sentiment_rows() -> list[dict]:
    texts = {"positive": ["a joyous , moving film .", "the best comedy of the year .", "warm , funny and smart ."],
             "negative": ["a dull , lifeless mess .", "boring from start to end .", "an ugly , stupid film ."]}
    return [{"text": t, "label": label, "_meta": {"id": f"{label}{i}"}} for label, ts in texts.items() for i, t in enumerate(ts)]


def test_label_check_fails_rows_the_teacher_could_not_score(tmp_path):
    stage = make_stage("label_check", tmp_path, model=DEAD)
    result = stage.run(sentiment_rows())
    assert not result.kept and not result.dropped and len(result.failed) == 6  # no decision on half the evidence
    report = json.loads((tmp_path / "label_check.json").read_text())
    assert report["teacher_failures"] == 6 and report["per_label"]["positive"]["failed"] == 3


@pytest.mark.parametrize("policy", ["drop", "relabel", "weight", "keep"])
def test_label_check_policies(policy, tmp_path):
    """The embedding and cross-fit members only; one positive text is written as 'negative'."""
    rows = sentiment_rows()
    rows[0] = {**rows[0], "label": "negative"}  # "a joyous , moving film ." labelled negative
    plain_words = {"labels": {"negative": "a bad, boring, ugly, awful film", "positive": "a good, joyous, funny, wonderful film"}}
    stage = make_stage("label_check", tmp_path, task=plain_words, members=["embedding"], policy=policy)
    result = stage.run(rows)
    flipped = [r for r in result.kept if r["text"] == "a joyous , moving film ."]
    if policy == "drop":
        assert [r["text"] for r, reason in result.dropped] == ["a joyous , moving film ."] and not flipped
    elif policy == "relabel":
        assert flipped[0]["label"] == "positive" and flipped[0]["_meta"]["relabelled_from"] == "negative"
    elif policy == "weight":
        assert flipped[0]["label"] == "negative" and flipped[0]["weight"] < 0.5 < min(r["weight"] for r in result.kept if r is not flipped[0])
    else:
        assert flipped[0]["label"] == "negative" and len(result.kept) == 6


def test_label_check_votes_with_the_calibrated_teacher(tmp_path):
    """teacher_calibration: batch, with the real tiny model: the teacher member's score for a
    row is its calibrated probability (the rows' own mean divided out), not the raw one."""
    from synthwright.classify.labelling import teacher_label_probabilities

    rows = sentiment_rows()
    raw = make_stage("label_check", tmp_path / "raw", task=SENTIMENT, members=["teacher"], model=TINY, policy="keep").run(rows)
    stage = make_stage("label_check", tmp_path / "batch", task=SENTIMENT, members=["teacher"], model=TINY, policy="keep",
                       teacher_calibration="batch")
    calibrated = stage.run(rows)
    task = TaskSpec.model_validate(SENTIMENT)
    labels = teacher_label_probabilities(stage.context, TINY, "test", task, [r["text"] for r in rows], "test")
    expected = labels.calibrated("batch")
    for i, row in enumerate(calibrated.kept):
        assert row["label_confidence"] == pytest.approx(expected[i][task.index(row["label"])], abs=1e-4)
    assert [r["label_confidence"] for r in raw.kept] != [r["label_confidence"] for r in calibrated.kept]


def test_evaluation_with_a_dead_teacher_is_a_clear_error(tmp_path):
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": r["text"], "label_text": r["label"]} for r in sentiment_rows()])
    stage = make_stage("evaluate_classifier", tmp_path, eval_data=str(dev), students={}, teacher=DEAD, zero_shot=False)
    with pytest.raises(UserError) as caught:
        stage.run([])
    assert "answered none of its 6" in caught.value.problem


def test_stratified_positions_keep_each_labels_share():
    from collections import Counter

    from synthwright.classify.task import LabelledTexts

    data = LabelledTexts([str(i) for i in range(40)], ["t"] * 40, ["A"] * 10 + ["B"] * 10 + ["C"] * 10 + ["D"] * 10)
    for limit in (6, 14, 39):
        counts = Counter(data.labels[p] for p in data.stratified_positions(limit, 0))
        assert sum(counts.values()) == limit and max(counts.values()) - min(counts.values()) <= 1
    assert data.stratified_positions(None, 0) == list(range(40))


def test_macro_f1_matches_scikit_learn_when_a_label_is_absent():
    from sklearn.metrics import f1_score

    truth, predicted = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]  # label 3 of 4 appears nowhere
    assert scores(truth, predicted, 4)["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))


@pytest.mark.parametrize("kind, weighted", [("lr", False), ("finetune", False), ("finetune", True)])
def test_students_train_save_load_and_predict(kind, weighted, tmp_path):
    """Both student kinds on the real MiniLM weights; a saved student predicts as it did."""
    from synthwright.classify.students import ClassifierSettings, load_student, train_classifier

    rows = sentiment_rows()
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    settings = ClassifierSettings(kind=kind, epochs=1, batch_size=4, max_length=32, regularisation=10.0)
    card = train_classifier(texts, labels, ["negative", "positive"], settings, tmp_path / "s",
                            weights=[1.0, 0.5, 1.0, 1.0, 0.2, 1.0] if weighted else None, key="k1")
    assert card["examples"] == 6 and card["key"] == "k1" and card["weighted"] is weighted
    student = load_student(tmp_path / "s")
    probs = student.predict_proba(texts)
    assert probs.shape == (6, 2) and np.allclose(probs.sum(axis=1), 1.0)
    if kind == "lr":  # ten-fold weaker regularisation on six clear texts: it fits them
        assert [["negative", "positive"][i] for i in probs.argmax(axis=1)] == labels


def test_a_folder_without_a_student_is_a_clear_error(tmp_path):
    from synthwright.classify.students import load_student

    with pytest.raises(UserError) as caught:
        load_student(tmp_path)
    assert "no trained classifier" in caught.value.problem


def test_description_prior_multiplies_the_students_probabilities(tmp_path):
    """The lr student with a description prior predicts the normalised product of its
    regression and MiniLM's nearness to each description; saved and loaded, it still does."""
    from synthwright.classify.labelling import description_probabilities, label_texts
    from synthwright.classify.students import ClassifierSettings, load_student, train_classifier
    from synthwright.embed import load_embedder

    task = TaskSpec.model_validate(SENTIMENT)
    rows = sentiment_rows()
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    for name, prior in (("plain", 0.0), ("prior", 0.7)):
        train_classifier(texts, labels, task.names, ClassifierSettings(description_prior=prior), tmp_path / name,
                         label_descriptions=label_texts(task))
    probe = ["A dull, lifeless film I could barely sit through.", "An uneven film with one great scene."]
    plain, with_prior = load_student(tmp_path / "plain").predict_proba(probe), load_student(tmp_path / "prior").predict_proba(probe)
    embedder = load_embedder("minilm")
    nearness = description_probabilities(embedder.embed(probe), embedder.embed(label_texts(task)))
    expected = plain * nearness ** 0.7
    assert np.allclose(with_prior, expected / expected.sum(axis=1, keepdims=True), atol=1e-6)
    assert not np.allclose(with_prior, plain, atol=1e-3)


def test_the_finetuned_student_takes_the_description_prior_too(tmp_path):
    """A fine-tuned student with a description prior predicts its own softmax times MiniLM's
    nearness to each description (read by the untouched MiniLM), renormalised; the prior is
    saved beside the model."""
    from synthwright.classify.labelling import description_probabilities, label_texts
    from synthwright.classify.students import ClassifierSettings, FineTunedStudent, load_student, train_classifier
    from synthwright.embed import load_embedder

    task = TaskSpec.model_validate(SENTIMENT)
    rows = sentiment_rows()
    settings = ClassifierSettings(kind="finetune", epochs=1, batch_size=4, max_length=32, description_prior=0.7)
    train_classifier([r["text"] for r in rows], [r["label"] for r in rows], task.names, settings, tmp_path / "s",
                     label_descriptions=label_texts(task))
    assert (tmp_path / "s" / "prior.npz").is_file()
    probe = ["A dull, lifeless film I could barely sit through.", "An uneven film with one great scene."]
    with_prior = load_student(tmp_path / "s").predict_proba(probe)
    plain = FineTunedStudent.load(tmp_path / "s", task.names, 32)
    plain.prior_weight = 0.0
    embedder = load_embedder("minilm")
    expected = plain.predict_proba(probe) * description_probabilities(embedder.embed(probe), embedder.embed(label_texts(task))) ** 0.7
    assert np.allclose(with_prior, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)
    assert not np.allclose(with_prior, plain.predict_proba(probe), atol=1e-3)


def test_a_setting_added_later_keeps_old_students_keys_at_its_default():
    """Students trained before description_prior existed keep their key while it is 0."""
    from dataclasses import asdict

    from synthwright.classify.students import ClassifierSettings, settings_key

    before = {k: v for k, v in asdict(ClassifierSettings()).items() if k != "description_prior"}
    assert settings_key(ClassifierSettings()) == before
    assert settings_key(ClassifierSettings(description_prior=0.5)) == {**before, "description_prior": 0.5}


def test_a_student_predicts_in_blocks_that_show_progress(tmp_path, capsys, monkeypatch):
    """The evaluation's slow part (a fine-tuned student on thousands of rows) is not silent:
    each student predicts in blocks, and the progress line counts rows, with rate and ETA."""
    import synthwright.classify.training as training
    import synthwright.cli.pipeline as cli_pipeline
    from synthwright.classify.students import ClassifierSettings, load_student, train_classifier
    from synthwright.classify.task import LabelledTexts
    from synthwright.cli.pipeline import ProgressObserver

    rows = sentiment_rows()
    train_classifier([r["text"] for r in rows], [r["label"] for r in rows], ["negative", "positive"], ClassifierSettings(), tmp_path / "s")
    monkeypatch.setattr(training, "PREDICT_BLOCK", 4)
    monkeypatch.setattr(cli_pipeline, "PLAIN_LOG_EVERY_S", 0.0)
    texts = [r["text"] for r in rows] + ["a fine film .", "a poor film ."]
    evaluation = LabelledTexts([str(i) for i in range(8)], texts, ["negative"] * 8)
    system = training._predict("synthetic student", "student", load_student(tmp_path / "s"), evaluation, list(range(8)),
                               ProgressObserver(live=False).request_progress)
    assert len(system.predicted) == 8
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("  evaluation: synthetic student on 8 rows")]
    assert [line.split(": ")[2].split(",")[0] for line in lines] == ["4/8 rows", "8/8 rows", "8/8 rows"], lines
    assert "/s" in lines[0] and "ETA" in lines[0] and lines[-1].endswith(tuple("0123456789")) and "done in" in lines[-1]


def test_the_classify_command_passes_the_description_prior_to_every_student():
    from synthwright.cli.classify import classify_steps

    def students(prior: float) -> list[dict]:
        steps = classify_steps("task.yaml", teacher=TINY, per_label=4, subtopics=0, styles=[], lengths=None, policy="drop",
                               students=["lr", "finetune"], epochs=1.0, eval_data=None, text_columns=["text"], label_column="label_text",
                               eval_limit=None, teacher_limit=None, real_train=None, curve=[], novelty=0.08, description_prior=prior)
        return [step["with"] for step in steps if step["uses"] == "train_classifier"]

    assert [s["kind"] for s in students(0.5)] == ["lr", "finetune"] and all(s["description_prior"] == 0.5 for s in students(0.5))
    assert all("description_prior" not in s for s in students(0.0))
