"""Each recipe end to end in a pipeline on the embedded tiny model (plumbing), plus one slow
test on the default teacher asserting outputs parse and pass the recipe's filters."""

import json

import pytest

from synthwright.pipeline import Pipeline
from synthwright.pipeline.rundir import RunDirectory
from synthwright.recipes.quality import blacklist_problem, length_problem, start_problem
from synthwright.recipes.self_instruct import builtin_seed_path
from tests.conftest import run_cli

TINY = "llamacpp:smollm2-135m"
TEACHER = "llamacpp:qwen2.5-coder-1.5b"


def rows_of(run_dir, step, kind="out"):
    return list(RunDirectory(run_dir).rows(step, kind))


def test_self_instruct_plumbing(tmp_path):
    p = Pipeline("si", seed=1).step("si", "self_instruct", model=TINY, n=3, prompts_per_round=2, max_rounds=3, max_tokens=120)
    result = p.run(tmp_path / "run")
    stats = result.outcomes[-1].stats
    kept, dropped = rows_of(tmp_path / "run", "si"), rows_of(tmp_path / "run", "si", "dropped")
    assert stats.rows_out == len(kept) and sum(stats.dropped.values()) == len(dropped)
    assert stats.requests_sent > 0
    for row in kept:
        assert {"instruction", "input", "output", "is_classification"} <= set(row)
        assert row["_meta"]["recipe"] == "self_instruct" and row["_meta"]["round"] >= 1
        assert len(row["_meta"]["parents"]) >= 6  # 6 human + up to 2 machine in-context tasks
    assert all(r["_drop_reason"] for r in dropped)


def test_magpie_plumbing_with_the_models_own_template(tmp_path):
    p = Pipeline("mp", seed=1).step("mp", "magpie", model=TINY, n=2, query_max_tokens=48, response_max_tokens=32, min_words=2)
    result = p.run(tmp_path / "run")
    kept = rows_of(tmp_path / "run", "mp")
    stats = result.outcomes[-1].stats
    assert stats.rows_out + sum(stats.dropped.values()) + sum(stats.failed.values()) >= 2
    for row in kept:
        assert row["instruction"].strip() and row["response"].strip()
        assert not row["response"].startswith("assistant")  # the chat template was intact for the answer
        assert row["_meta"]["recipe"] == "magpie"


def test_magpie_draws_again_until_n_queries_pass(tmp_path):
    # A tight word limit drops most drafts: later rounds draw new samples for what is missing.
    p = Pipeline("mp", seed=3).step("mp", "magpie", model=TINY, n=3, oversample=1.0, max_rounds=4, max_words=10,
                                     query_max_tokens=32, response_max_tokens=8, min_words=2)
    result = p.run(tmp_path / "run")
    stats = result.outcomes[-1].stats
    assert stats.rows_in == stats.rows_out + sum(stats.dropped.values()) + sum(stats.failed.values())
    assert stats.rows_out <= 3
    if stats.rows_out < 3 or sum(stats.dropped.values()):
        assert stats.rows_in > 3  # a second round drew
    ids = [r["_meta"]["sample_index"] for r in rows_of(tmp_path / "run", "mp") + rows_of(tmp_path / "run", "mp", "dropped")]
    assert len(ids) == len(set(ids))  # every draw a distinct sample


def test_evol_instruct_plumbing_keeps_the_tree_in_lineage(tmp_path):
    p = Pipeline("evol", seed=2)
    p.step("seeds", "load", path=str(builtin_seed_path()), limit=2)
    p.step("evol", "evol_instruct", model=TINY, rounds=2, max_tokens=60, response_max_tokens=40)
    p.run(tmp_path / "run")
    seeds = {r["_meta"]["id"] for r in rows_of(tmp_path / "run", "seeds")}
    kept, dropped = rows_of(tmp_path / "run", "evol"), rows_of(tmp_path / "run", "evol", "dropped")
    assert kept or dropped
    known = set(seeds)
    for row in sorted(kept + dropped, key=lambda r: r["_meta"]["round"]):
        meta = row["_meta"]
        assert meta["evolution"] in {"add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input", "breadth"}
        assert meta["round"] in (1, 2) and len(meta["parents"]) == 1
        if meta["round"] == 1:
            assert meta["parents"][0] in seeds
        known.add(meta["id"])
    for row in kept:
        assert row["_meta"]["parents"][0] in known
        assert row["response"].strip()
    for row in dropped:
        assert row["_drop_reason"] in {
            "no_information_gain", "teacher_cannot_answer", "response_only_stopwords", "copies_prompt_scaffolding", "empty_evolution",
        }


def test_personas_and_typos_tag_rows(tmp_path):
    topics = tmp_path / "topics.jsonl"
    topics.write_text("".join(json.dumps({"topic": t}) + "\n" for t in ("tax returns", "sourdough", "bike repair")))
    template = tmp_path / "ask.j2"
    template.write_text("Write one question you would ask about {{ topic }}. Reply with the question only.")
    p = Pipeline("persona-typos", seed=5)
    p.step("topics", "load", path=str(topics))
    p.step("who", "personas")
    p.step("ask", "generate", model=TINY, template=str(template), max_tokens=24, persona_column="persona", output_column="question")
    p.step("noisy", "typos", column="question", rate=0.3, fraction=1.0)
    p.run(tmp_path / "run")
    rows = rows_of(tmp_path / "run", "noisy")
    assert len(rows) == 3
    assert all(r["_meta"]["persona_id"] for r in rows)
    assert len({r["persona"] for r in rows}) >= 2
    tagged = [r for r in rows if r["_meta"].get("perturbations")]
    assert tagged and all(r["question_original"] != r["question"] for r in tagged)


def test_instruct_cli_writes_rows_with_lineage_and_inspect_shows_them(tmp_path):
    result = run_cli("instruct", "--recipe", "magpie", "--n", "2", "--model", TINY, "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "instructions.jsonl").read_text().splitlines()]
    assert all(row["_meta"]["recipe"] == "magpie" and row["_meta"]["id"] for row in rows)
    inspect = run_cli("inspect", str(tmp_path / "run"))
    assert inspect.returncode == 0 and "magpie" in inspect.stdout and "done" in inspect.stdout


@pytest.mark.slow
def test_self_instruct_on_the_default_teacher_parses_and_passes_filters(tmp_path):
    p = Pipeline("si-teacher", seed=3).step("si", "self_instruct", model=TEACHER, n=3, prompts_per_round=1, max_tokens=160)
    p.run(tmp_path / "run")
    rows = rows_of(tmp_path / "run", "si")
    assert len(rows) == 3
    for row in rows:
        text = row["instruction"]
        assert start_problem(text) is None and length_problem(text, 3, 150) is None and blacklist_problem(text) is None
        assert row["output"].strip()
        assert row["_meta"]["model"] == TEACHER


def test_magpie_tags_quality_and_difficulty_and_dedups_semantically(tmp_path):
    p = Pipeline("mp-tags", seed=4).step(
        "mp", "magpie", model=TINY, n=3, query_max_tokens=40, response_max_tokens=16, min_words=2,
        judge_model=TINY, novelty_epsilon=0.05,
    )
    p.run(tmp_path / "run")
    kept = rows_of(tmp_path / "run", "mp")
    for row in kept:
        assert 1.0 <= row["query_quality"] <= 5.0 and 1.0 <= row["query_difficulty"] <= 5.0
        assert row["_meta"]["scores"]["magpie.quality"]["score"] == row["query_quality"]
