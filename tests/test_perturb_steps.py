"""The `ambiguity`, `text_to_persona` and `mix_real` steps: what they keep, change, fail and
record, against the stub server on 127.0.0.1 (it answers "echo: ..." deterministically, or
fails on purpose) and a real tiny model."""

from __future__ import annotations

import json

import pytest

from synthwright.core.lineage import meta_of
from synthwright.core.step import StepContext
from synthwright.recipes.perturb import AmbiguityOptions, AmbiguityStep, MixRealOptions, MixRealStep
from synthwright.recipes.personas import TextToPersonaOptions, TextToPersonaStep
from tests.support.openai_stub import FaultPlan, StubServer


def requests_rows(count: int) -> list[dict]:
    return [{"request": f"Summarise report {i} for the board by Friday", "_meta": {"id": f"r{i}"}} for i in range(count)]


def test_ambiguity_rewrites_a_seeded_fraction_and_keeps_the_originals(tmp_path):
    rows = requests_rows(20)
    with StubServer() as server:
        options = AmbiguityOptions(column="request", model=f"openai:stub-model@{server.base_url}", fraction=0.5)
        context = StepContext(run_seed=3, cache_file=tmp_path / "cache.sqlite")
        result = AmbiguityStep("vague", options, context).process(rows)
        again = AmbiguityStep("vague", options, context).process(rows)
        context.close()
    rewritten = [row for row in result.kept if "ambiguity" in (meta_of(row).get("perturbations") or [])]
    untouched = [row for row in result.kept if "ambiguity" not in (meta_of(row).get("perturbations") or [])]
    assert len(result.kept) == 20 and not result.failed
    assert 0 < len(rewritten) < 20 and result.stats.requests_sent == len(rewritten)  # a fraction, one request each
    assert all(row["request"].startswith("echo: ") and row["request_original"].startswith("Summarise") for row in rewritten)
    assert all(meta_of(row)["model"] == options.model for row in rewritten)
    assert all(row in rows for row in untouched)  # not chosen: passed on unchanged
    # The draw is seeded by the run seed and the row id: a rerun chooses the same rows (from the cache).
    assert again.kept == result.kept and again.stats.cache_hits == len(rewritten)


def test_ambiguity_records_a_refused_rewrite_as_failed(tmp_path):
    with StubServer(plan=FaultPlan(always_fail_matching="report 2 ")) as server:
        options = AmbiguityOptions(column="request", model=f"openai:stub-model@{server.base_url}", fraction=1.0)
        context = StepContext(cache_file=tmp_path / "cache.sqlite", max_attempts=2)
        result = AmbiguityStep("vague", options, context).process(requests_rows(4))
        context.close()
    assert [meta_of(row)["id"] for row in result.kept] == ["r0", "r1", "r3"]
    assert [(meta_of(row)["id"], reason) for row, reason in result.failed] == [("r2", "ambiguity rewrite failed")]
    assert result.stats.rows_out + sum(result.stats.failed.values()) == result.stats.rows_in == 4


def test_text_to_persona_fails_an_answer_that_is_not_a_persona(tmp_path):
    docs = [{"text": f"Quarterly tax filing guide, part {i}", "_meta": {"id": f"d{i}"}} for i in range(4)]
    with StubServer() as server:
        context = StepContext(cache_file=tmp_path / "cache.sqlite")
        step = TextToPersonaStep("personas", TextToPersonaOptions(column="text", model=f"openai:stub-model@{server.base_url}"), context)
        result = step.process(docs)
        context.close()
    assert result.kept == [] and len(result.failed) == 4  # "echo: ..." does not start with "You are"
    assert {reason for _, reason in result.failed} == {"persona_unparsed: answer does not start with 'You are'"}
    assert dict(result.stats.failed) == {"persona_unparsed": 4}


@pytest.mark.slow
def test_text_to_persona_with_a_real_model(tmp_path):
    docs = [{"text": "How to file quarterly estimated taxes as a freelance designer.", "_meta": {"id": "d0"}},
            {"text": "Dosage tables for paediatric antibiotics, for ward nurses.", "_meta": {"id": "d1"}}]
    context = StepContext(cache_file=tmp_path / "cache.sqlite")
    step = TextToPersonaStep("personas", TextToPersonaOptions(column="text", model="llamacpp:qwen2.5-coder-0.5b", temperature=0.0), context)
    result = step.process(docs)
    context.close()
    assert len(result.kept) + len(result.failed) == 2
    for row in result.kept:
        assert row["persona"].lower().startswith("you are") and meta_of(row)["persona_id"]
    for _, reason in result.failed:
        assert reason.startswith("persona_unparsed")


def test_mix_real_blends_a_seeded_share_of_real_rows_marked_real(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text("".join(json.dumps({"question": f"real question {i}", "_meta": {"id": "theirs"}}) + "\n" for i in range(10)))
    synthetic = [{"text": f"synthetic {i}", "_meta": {"id": f"s{i}"}} for i in range(8)]
    options = MixRealOptions(path="real.jsonl", fraction=0.2, column_map={"question": "text"})

    def mixed(seed: int):
        return MixRealStep("mixed", options, StepContext(run_seed=seed, workdir=tmp_path)).run(iter(synthetic)).kept

    rows = mixed(1)
    real_rows = [row for row in rows if meta_of(row).get("real")]
    assert rows[:8] == synthetic  # the synthetic rows first, unchanged
    assert len(real_rows) == 2  # 20% of the output: 2 of 10
    assert all(row["text"].startswith("real question") and "question" not in row for row in real_rows)
    assert all(meta_of(row)["source"] == "real.jsonl" and meta_of(row)["id"] != "theirs" for row in real_rows)
    assert mixed(1) == rows  # the draw is seeded by the run seed
    draws = {tuple(meta_of(r)["source_index"] for r in mixed(seed) if meta_of(r).get("real")) for seed in range(6)}
    assert len(draws) > 1  # and another seed draws other rows
