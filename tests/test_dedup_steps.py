"""Dedup and the novelty gate as pipeline steps: drops name their twin, counters say why."""

import json

from synthwright.pipeline import Pipeline
from synthwright.pipeline.rundir import RunDirectory
from tests.support.openai_stub import StubServer

TEXTS = [
    "How do I reset my router to factory settings?",
    "What is the capital of Australia?",
    "How do I reset my router to factory settings?",  # exact copy of row 0
    "Explain photosynthesis to a child.",
    "How can I restore my router to its factory settings?",  # paraphrase of row 0
    "Recommend a book about the history of mathematics.",
]


def write_rows(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_exact_dedup_step_drops_the_copy_and_names_its_twin(tmp_path):
    p = Pipeline("exact", seed=0)
    p.step("rows", "load", path=str(write_rows(tmp_path / "in.jsonl", TEXTS)))
    p.step("dedup", "dedup", column="text", method="exact")
    p.run(tmp_path / "run")
    run = RunDirectory(tmp_path / "run")
    ids = [r["_meta"]["id"] for r in run.rows("rows")]
    [dropped] = list(run.rows("dedup", "dropped"))
    assert dropped["text"] == TEXTS[2] and dropped["_drop_reason"] == "exact_duplicate"
    assert dropped["_meta"]["duplicate_of"] == ids[0]
    assert run.merged_stats("dedup").dropped == {"exact_duplicate": 1}


def test_semantic_dedup_step_catches_the_paraphrase_too(tmp_path):
    p = Pipeline("semantic", seed=0)
    p.step("rows", "load", path=str(write_rows(tmp_path / "in.jsonl", TEXTS)))
    p.step("dedup", "dedup", column="text", method="semantic", epsilon=0.2)
    p.run(tmp_path / "run")
    run = RunDirectory(tmp_path / "run")
    ids = [r["_meta"]["id"] for r in run.rows("rows")]
    dropped = {r["text"]: r for r in run.rows("dedup", "dropped")}
    assert set(dropped) == {TEXTS[2], TEXTS[4]}
    assert all(r["_meta"]["duplicate_of"] == ids[0] for r in dropped.values())
    assert all(r["_meta"]["cosine_distance"] <= 0.2 for r in dropped.values())
    assert [r["text"] for r in run.rows("dedup")] == [TEXTS[0], TEXTS[1], TEXTS[3], TEXTS[5]]


def test_novelty_gate_in_generate_rejects_near_duplicates_and_asks_for_replacements(tmp_path):
    # The stub answers "echo: <hash> <prompt>": two samples of one prompt differ only in the
    # hash, so they are near-duplicates; different prompts are not.
    topics = write_rows(tmp_path / "topics.jsonl", ["volcanoes erupting under glaciers", "baking rye bread at home"])
    with StubServer() as server:
        p = Pipeline("gate", seed=0)
        p.step("rows", "load", path=str(topics))
        p.step("gen", "generate", model=f"openai:stub@{server.base_url}", prompt="Tell me about {{ text }}", samples=2,
               novelty_epsilon=0.15, max_replacements=1)
        result = p.run(tmp_path / "run")
        sent = server.stats()["total_answered"]
    run = RunDirectory(tmp_path / "run")
    kept, dropped = list(run.rows("gen")), list(run.rows("gen", "dropped"))
    assert len(kept) == 2 and {k["_meta"]["parents"][0] for k in kept} == {r["_meta"]["id"] for r in run.rows("rows")}
    # each row: sample 1 rejected, its replacement (sample 3) rejected too; each names the kept twin
    assert len(dropped) == 4 and all(d["_drop_reason"] == "dropped_near_duplicate" for d in dropped)
    kept_ids = {k["_meta"]["id"] for k in kept}
    assert all(d["_meta"]["duplicate_of"] in kept_ids for d in dropped)
    assert sorted(d["_meta"]["sample_index"] for d in dropped) == [1, 1, 3, 3]
    assert sent == 6 and result.requests_sent == 6
