"""`corpus`: the documents the teacher writes queries for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from synthwright.core.lineage import Row, derive_id
from synthwright.core.rotation import rotated_examples
from synthwright.core.step import SourceStep, StepOptions, register_step
from synthwright.reranker.corpus import corpus_fingerprint, open_corpus
from synthwright.reranker.queries import (
    DEFAULT_DOC_CHARS,
    SENTENCE_INSTRUCTIONS,
    STYLE_INSTRUCTIONS,
    draw_without_replacement,
    focus_sentences,
    truncate_document,
)
from synthwright.reranker.steps.base import ReadsCorpus, Style
from synthwright.reranker.style import MAX_SHOWN, read_style_queries, shown_examples


class CorpusOptions(StepOptions):
    corpus: str = Field(description="JSONL of {_id, title, text}, a BEIR folder, or pydoc:topics")
    sample: int | None = Field(None, ge=1, description="Documents to draw (seeded); all when unset")
    styles: list[Style] = Field(["question"], min_length=1, description="Query styles: one row per document and style")
    doc_chars: int = Field(DEFAULT_DOC_CHARS, ge=100, description="Characters of each document the teacher reads")
    min_chars: int = Field(80, ge=0, description="Skip documents shorter than this")
    focus: Literal["document", "sentence"] = Field("document", description="What the teacher reads: the document (its first doc_chars), or its title and one sentence (a query about one finding, like a citing paper's claim)")
    sentences_per_doc: int = Field(1, ge=1, description="focus: sentence: sentences drawn per document (seeded), one row each; fewer where a document has fewer")
    style_examples: str | None = Field(None, description="Real queries of the corpus's register shown to the teacher (a BEIR qrels TSV, a JSONL of {text}, or one query a line; never the evaluation queries): at most 20, a seeded draw")
    examples_per_prompt: int = Field(5, ge=1, le=MAX_SHOWN, description="style_examples: how many each prompt shows; the window moves from row to row")

    @model_validator(mode="after")
    def _sentences_need_sentence_focus(self) -> "CorpusOptions":
        if self.sentences_per_doc > 1 and self.focus != "sentence":
            raise ValueError("sentences_per_doc draws sentences for focus: sentence; with focus: document it would do nothing")
        return self



@register_step("corpus")
class CorpusStep(ReadsCorpus, SourceStep):
    Options = CorpusOptions
    description = "Sample documents from a corpus; one row per (document, query style) for doc_queries."

    def fingerprint_extra(self) -> dict[str, Any]:
        return {**corpus_fingerprint(self._spec()), **({"style_examples": self._style_pool()} if self.options.style_examples else {})}

    def read(self) -> Iterator[Row]:
        pool = self._style_pool()
        for position, row in enumerate(self._rows()):
            yield {**row, "examples": rotated_examples(pool, position, self.options.examples_per_prompt)} if pool else row

    def _style_pool(self) -> list[str]:
        """The real queries the prompts show, in the seeded order their windows rotate through."""
        if not self.options.style_examples:
            return []
        queries = read_style_queries(self.context.resolve(self.options.style_examples))
        return shown_examples(queries, self.context.rng(self.name, "style examples"))

    def _rows(self) -> Iterator[Row]:
        corpus = open_corpus(self._spec())
        ids = [doc_id for doc_id, doc in corpus.items() if len(doc.get("text") or "") >= self.options.min_chars]
        if self.options.sample and self.options.sample < len(ids):
            ids = sorted(self.context.rng(self.name, "sample").sample(ids, self.options.sample))
        for doc_id in ids:
            doc = corpus[doc_id]
            title = doc["title"] if doc.get("title") and doc["title"] != doc_id else ""
            text = f"{title}. {doc['text']}" if title else doc["text"]
            if self.options.focus == "document":
                for style in self.options.styles:
                    meta = {"id": derive_id(self.name, doc_id, style), "step": self.name, "source": "corpus", "doc_id": doc_id}
                    yield {"doc_id": doc_id, "document": truncate_document(text, self.options.doc_chars), "title": title,
                           "style": style, "instruction": STYLE_INSTRUCTIONS[style], "_meta": meta}
                continue
            # One draw per document: every style is asked about the same sentences.
            for number, sentence in enumerate(self._sentences(doc_id, doc["text"] or "", titled=bool(title))):
                for style in self.options.styles:
                    meta = {"id": derive_id(self.name, doc_id, style, number), "step": self.name, "source": "corpus", "doc_id": doc_id}
                    # `document` is the whole text: the query rules check a copy against every sentence.
                    yield {"doc_id": doc_id, "document": text, "title": title, "sentence": sentence, "style": style,
                           "instruction": SENTENCE_INSTRUCTIONS[style], "_meta": meta}

    def _sentences(self, doc_id: str, text: str, *, titled: bool) -> list[str]:
        """Seeded per document. A document that does not split into sentences (code, a list)
        gives its opening instead; a "sentence" where the split failed is cut like a document."""
        pool = focus_sentences(text, titled=titled) or ([text] if text.strip() else [])
        drawn = draw_without_replacement(pool, self.options.sentences_per_doc, self.context.rng(self.name, "sentences", doc_id))
        return [truncate_document(sentence, self.options.doc_chars) for sentence in drawn]
