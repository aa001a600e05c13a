"""The `split_sentences` step: a review becomes one row per sentence, each a child of the review
(lineage, label and prompt columns carried over), with too-short sentences dropped by reason."""

from __future__ import annotations

from synthwright.core.lineage import meta_of
from synthwright.core.step import StepContext
from synthwright.recipes.split import SplitSentencesOptions, SplitSentencesStep

REVIEW = ("the plot is thin and the dialogue often clumsy . yet the lead gives it a warmth you do n't expect ! "
          "ok . by the end , i was won over by its quiet charm .")


def split(rows, **options):
    return SplitSentencesStep("sentences", SplitSentencesOptions(**options), StepContext(run_seed=0)).process(rows)


def test_a_review_becomes_its_sentences_each_a_child_of_the_review():
    rows = [{"text": REVIEW, "label": "positive", "subtopic": "acting", "_meta": {"id": "r1", "source": "class_prompts"}}]
    result = split(rows)
    assert [row["text"] for row in result.kept] == [
        "the plot is thin and the dialogue often clumsy .", "yet the lead gives it a warmth you do n't expect !",
        "by the end , i was won over by its quiet charm ."]
    assert [(row["text"], reason) for row, reason in result.dropped] == [("ok .", "too_short")]
    for row in result.kept:
        meta = meta_of(row)
        assert meta["parents"] == ["r1"] and meta["recipe"] == "split_sentences" and meta["sentences"] == 4
        assert row["label"] == "positive" and row["subtopic"] == "acting" and row["text_source"] == REVIEW
    assert len({meta_of(row)["id"] for row in result.kept}) == 3  # distinct ids
    again = split(rows)
    assert [meta_of(row)["id"] for row in again.kept] == [meta_of(row)["id"] for row in result.kept]  # derived, not random


def test_long_sentences_and_empty_texts_are_dropped_by_reason_and_the_source_can_be_left_out():
    long_sentence = " ".join(["word"] * 12) + " ."
    result = split([{"review": long_sentence + " short but fine here .", "_meta": {"id": "a"}}, {"review": "  ", "_meta": {"id": "b"}}],
                   column="review", max_words=10, keep_source=False)
    assert [row["review"] for row in result.kept] == ["short but fine here ."]
    assert sorted(reason for _, reason in result.dropped) == ["empty", "too_long"]
    assert "review_source" not in result.kept[0]
