"""Unit tests of the recipes' rules: filters, elimination rules, parsers, typos, personas."""

import random

import pytest

from synthwright.core.lineage import derive_id
from synthwright.core.step import StepContext
from synthwright.recipes import quality
from synthwright.recipes.evol_instruct import HOW, OPERATIONS, evolution_prompt
from synthwright.recipes.magpie import KNOWN_TEMPLATES
from synthwright.recipes.perturb import KEYBOARD_NEIGHBOURS, MalformOptions, MalformStep, TypoOptions, TypoStep, inject_typos, malform
from synthwright.recipes.personas import PersonaSampler
from synthwright.recipes.self_instruct import builtin_seed_path, parse_instance, parse_tasks


# -- shared quality rules ----------------------------------------------------------------------
@pytest.mark.parametrize("text, reason", [
    ("Hi", "too_short"), ("word " * 151, "too_long"), ("Write a poem about the sea.", None),
])
def test_length_bounds(text, reason):
    assert quality.length_problem(text, 3, 150) == reason


@pytest.mark.parametrize("text, reason", [
    ("Draw a diagram of the water cycle.", "blacklisted_keyword"),
    ("Describe this image in detail.", "blacklisted_keyword"),
    ("Explain the water cycle.", None),
    ("Describe the imagery in this poem.", None),  # a word boundary, not a substring
])
def test_blacklist(text, reason):
    assert quality.blacklist_problem(text) == reason


@pytest.mark.parametrize("text, reason", [
    ("- list three fruits", "starts_with_punctuation"), ("¿Qué hora es?", "starts_non_ascii"),
    ("", "empty"), ("List three fruits.", None), ("3 ways to save money", None),
])
def test_start_rule(text, reason):
    assert quality.start_problem(text) == reason


def test_refusal_needs_both_a_marker_and_a_short_response():
    assert quality.refusal_problem("I'm sorry, but I cannot help with that request.") == "teacher_cannot_answer"
    assert quality.refusal_problem("As an AI, I am unable to browse the internet.") == "teacher_cannot_answer"
    long_answer = "Sorry for the wait. " + "Here is a detailed plan with many steps. " * 20
    assert quality.refusal_problem(long_answer) is None
    assert quality.refusal_problem("Paris is the capital of France.") is None


def test_stopword_only_responses():
    assert quality.stopword_only_problem("... it is, and so on!") == "response_only_stopwords"
    assert quality.stopword_only_problem("?!") == "response_only_stopwords"
    assert quality.stopword_only_problem("It is Paris.") is None


def test_scaffolding_copies():
    assert quality.scaffolding_problem("#Rewritten Prompt#: explain DNS") == "copies_prompt_scaffolding"
    assert quality.scaffolding_problem("Rewrite the given prompt to be harder.") == "copies_prompt_scaffolding"
    assert quality.scaffolding_problem("Explain how DNS resolves a name, step by step.") is None


def test_clean_generated_text_strips_wrappers():
    assert quality.clean_generated_text('"Explain DNS."') == "Explain DNS."
    assert quality.clean_generated_text("Rewritten prompt: Explain DNS.") == "Explain DNS."
    assert quality.clean_generated_text("```\nExplain DNS.\n```") == "Explain DNS."
    assert quality.clean_generated_text("**Question**: Explain DNS.") == "Explain DNS."


# -- Self-Instruct parsers -----------------------------------------------------------------------
def test_parse_tasks_handles_task_labels_numbers_and_bullets():
    text = " Write a haiku about rain.\nTask 10: Sort these numbers.\n\nSome chatter after a blank line\nTask 11: Name a colour."
    assert parse_tasks(text) == ["Write a haiku about rain.", "Sort these numbers.", "Name a colour."]
    assert parse_tasks("1. First task.\n2) Second task.\n- Third task.") == ["First task.", "Second task.", "Third task."]


def test_parse_instance_input_first_and_none():
    assert parse_instance("Input: 3, 1, 2\nOutput: 1, 2, 3", output_first=False) == ("3, 1, 2", "1, 2, 3")
    assert parse_instance("Input: <none>\nOutput: Blue.", output_first=False) == ("", "Blue.")
    assert parse_instance("Output: positive\nInput: I loved it.", output_first=True) == ("I loved it.", "positive")
    assert parse_instance("no structure here", output_first=False) is None


def test_builtin_seeds_ship_with_the_package():
    lines = builtin_seed_path().read_text().splitlines()
    assert len(lines) >= 20


# -- Evol-Instruct prompts -------------------------------------------------------------------------
def test_every_operation_has_a_distinct_prompt():
    prompts = {op: evolution_prompt(op, "Explain recursion.") for op in OPERATIONS}
    assert len(set(prompts.values())) == len(OPERATIONS) == 6
    assert set(HOW) == set(OPERATIONS) - {"breadth"}
    assert all("Explain recursion." in p for p in prompts.values())


def test_magpie_chatml_template_ends_at_the_user_turn():
    assert KNOWN_TEMPLATES["chatml"].format(system="S").endswith("<|im_start|>user\n")


# -- typos and malformed inputs ----------------------------------------------------------------------
SENTENCE = "Please explain how list comprehensions work in Python, with two short examples."


def test_typos_are_deterministic_for_a_seed_and_differ_across_seeds():
    first = inject_typos(SENTENCE, 0.3, random.Random(5))
    assert inject_typos(SENTENCE, 0.3, random.Random(5)) == first
    assert len({inject_typos(SENTENCE, 0.3, random.Random(s))[0] for s in range(10)}) > 5


def test_typo_rate_is_met_within_tolerance():
    words = " ".join(["keyboard", "language", "question", "answer", "python", "example"] * 500)
    for rate in (0.05, 0.2):
        noisy, made = inject_typos(words, rate, random.Random(1), kinds=("substitution", "deletion", "doubling"))
        changed = sum(a != b for a, b in zip(words.split(), noisy.split()))
        assert abs(changed / 3000 - rate) < 0.02, (rate, changed)
        assert made == changed


def test_substitutions_use_keyboard_neighbours():
    assert set("fhtyvb") <= set(KEYBOARD_NEIGHBOURS["g"]) and "p" not in KEYBOARD_NEIGHBOURS["g"]
    noisy, made = inject_typos("aaaa", 1.0, random.Random(0), kinds=("substitution",))
    assert made == 1 and noisy != "aaaa"
    changed = next(c for c in noisy if c != "a")
    assert changed in KEYBOARD_NEIGHBOURS["a"]


def test_malform_kinds():
    rng = random.Random(0)
    assert len(malform(SENTENCE, "truncate", rng).split()) < len(SENTENCE.split())
    assert malform("a\n  b\tc", "no_whitespace", rng) == "a b c"
    assert malform("Hi there", "shouting", rng) == "HI THERE"
    assert "," not in malform(SENTENCE, "no_punctuation", rng)


def _rows(n):
    return [{"text": SENTENCE, "_meta": {"id": derive_id("t", i)}} for i in range(n)]


def test_typo_step_tags_lineage_keeps_originals_and_respects_fraction():
    step = TypoStep("typos", TypoOptions(column="text", rate=0.3, fraction=0.5), StepContext(run_seed=3))
    result = step.process(_rows(200))
    changed = [r for r in result.kept if r["text"] != SENTENCE]
    assert 70 <= len(changed) <= 130
    for row in changed:
        assert row["text_original"] == SENTENCE
        assert row["_meta"]["perturbations"][0].startswith("typos:")
    again = TypoStep("typos", TypoOptions(column="text", rate=0.3, fraction=0.5), StepContext(run_seed=3)).process(_rows(200))
    assert [r["text"] for r in again.kept] == [r["text"] for r in result.kept]


def test_malform_step_tags_the_kind():
    step = MalformStep("m", MalformOptions(column="text", fraction=1.0, kinds=["shouting"]), StepContext())
    [row] = step.process(_rows(1)).kept
    assert row["text"] == SENTENCE.upper() and row["_meta"]["perturbations"] == ["malformed:shouting"]


# -- personas ----------------------------------------------------------------------------------------------
def test_persona_sampler_is_seeded_and_varied():
    sampler = PersonaSampler(seed=4)
    assert sampler.sample("row-1") == PersonaSampler(seed=4).sample("row-1")
    personas = {sampler.sample(i).id for i in range(100)}
    assert len(personas) > 80
    description = sampler.sample(0).description
    assert description.startswith("You are ") and " aged " in description
    occupations = [sampler.sample(i).attributes["occupation"] for i in range(2000)]
    # weights matter: "student" (weight 4) is far more common than "farmer" (weight 1)
    assert occupations.count("student") > 2 * occupations.count("farmer")


def test_new_content_words_separates_added_constraints_from_paraphrases():
    parent = "Suggest three dinner recipes that use only ingredients found in a typical student kitchen."
    assert quality.new_content_words(parent, parent + " Each must be under 500 calories and ready in 20 minutes.") >= 3
    virus = "Explain the difference between a virus and a bacterium to a ten-year-old."
    assert quality.new_content_words(virus, "Can you explain to a ten-year-old how a virus differs from a bacterium?") < 3


def test_magpie_asks_the_backend_whether_it_can_show_its_chat_template():
    """A server's model cannot show its chat template: Magpie says to name one, before any request."""
    from synthwright.errors import UserError
    from synthwright.recipes.magpie import MagpieOptions, MagpieStage

    step = MagpieStage("queries", MagpieOptions(model="openai:m@http://127.0.0.1:9/v1"), StepContext())
    with pytest.raises(UserError, match="template: chatml"):
        step.pre_query_text()
    named = MagpieStage("queries", MagpieOptions(model="openai:m@http://127.0.0.1:9/v1", template="chatml"), StepContext())
    assert named.pre_query_text().endswith("<|im_start|>user\n")
