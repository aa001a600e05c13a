"""`split_sentences`: one row per sentence of a text column.

Many real classification sets are sentences cut from longer texts: SST-2's are sentences of
movie reviews. A teacher asked for one such sentence writes a self-contained verdict ("a
delightful film with a wonderful cast"), far easier than the real ones. Asked for a whole
review, it writes what reviews hold: plot summary, concessions, faint praise, then a verdict.
Cut into sentences, that review gives texts in the real data's register, each of which needs
its own label, as the real sentences did: the label check relabels or drops them.

spaCy's rule-based sentencizer does the cutting (no model to load); each sentence is a child row
of its text, so lineage leads from a sentence back to the review and its prompt.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pydantic import Field

from synthwright.core.lineage import Row, child_row
from synthwright.core.step import BatchResult, RowStep, StepOptions, register_step
from synthwright.errors import require_module


class SplitSentencesOptions(StepOptions):
    column: str = Field("text", description="The text column to split; each sentence replaces it in its own row")
    min_words: int = Field(3, ge=1, description="Drop sentences shorter than this (reason too_short)")
    max_words: int = Field(60, ge=1, description="Drop sentences longer than this (reason too_long)")
    keep_source: bool = Field(True, description="Keep the whole text in the column `<column>_source`")


@register_step("split_sentences")
class SplitSentencesStep(RowStep):
    Options = SplitSentencesOptions
    description = "One row per sentence of a text column (spaCy's sentencizer); each sentence a child row of its text."
    default_batch_size = 256

    def required_columns(self) -> tuple[str, ...]:
        return (self.options.column,)

    @cached_property
    def _nlp(self) -> Any:
        spacy = require_module("spacy", "Sentence splitting", "'synthwright[validate]'")
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp

    def process(self, rows: list[Row]) -> BatchResult:
        o = self.options
        result = BatchResult.for_input(len(rows))
        texts = [str(row.get(o.column) or "") for row in rows]
        for row, text, doc in zip(rows, texts, self._nlp.pipe(texts)):
            sentences = [sentence.text.strip() for sentence in doc.sents if sentence.text.strip()]
            if not sentences:
                result.drop(row, "empty")
            for index, sentence in enumerate(sentences):
                child = child_row(row, self.name, index, recipe="split_sentences", sentence_index=index, sentences=len(sentences))
                child[o.column] = sentence
                if o.keep_source:
                    child[f"{o.column}_source"] = text
                words = len(sentence.split())
                if words < o.min_words:
                    result.drop(child, "too_short")
                elif words > o.max_words:
                    result.drop(child, "too_long")
                else:
                    result.keep(child)
        return result
