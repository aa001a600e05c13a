"""Queries from documents (InPars / Promptagator style): the prompts, and the rules that
clean a generated query or reject it.

The teacher reads one document and writes one query of a given style. Styles exist because
real query logs differ: SciFact's queries are claims, a search box gets keywords, a help
desk gets questions. Fit the style to the queries the student will face.

Rules (each rejection has a reason, counted by the run):
- cleaning: first line only, markdown labels ("**Claim:**"), list markers and surrounding
  quotes removed (the 1.5B teacher adds them often);
- `too_short` / `too_long`: word limits per style;
- `mentions_document`: "according to the passage ..." queries only make sense to someone
  who already holds the document;
- `copies_document`: a query that is a sentence of its document teaches the student
  string matching, not relevance (the 0.5B model did this for half its queries);
- `names_identifier` (code): a query that spells a name from the code (`filter_dict_by_key`,
  `numpy.allclose`, `isNullable`) is the function's name, not what a person searching for it
  types (CoSQA's real queries almost never do); it teaches the student what dense retrieval
  already matches;
- `low_logprob`: the teacher's own mean token log-probability below a threshold (InPars).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synthwright.filters.lcs import lcs_length, tokenize

STYLE_INSTRUCTIONS = {
    "claim": (
        "Read the scientific passage below. Write one short claim, a single declarative sentence of at most "
        "20 words, that a researcher might want to check and that this passage gives evidence about. "
        "Use your own words; do not copy a sentence. Write only the claim."
    ),
    "question": (
        "Read the passage below. Write one question that a person would type into a search engine and that "
        "this passage answers. Use your own words; do not copy a sentence. Write only the question."
    ),
    "keyword": (
        "Read the passage below. Write a short keyword search query (2 to 6 words) that someone looking for "
        "this passage would type. Write only the query."
    ),
    # Asked for "keywords", the coder teacher writes identifiers ("flatten_list"); real code
    # search queries say what the code does in words ("python check if a variable is iterable").
    "code": (
        "Read the code below. Write what a programmer would type into a web search engine to find code that does "
        "this: say what it does in plain words (3 to 10 words), not the function's name or identifiers. "
        "Write only the query, without quotes."
    ),
}
STYLE_WORDS = {"claim": (4, 40), "question": (4, 40), "keyword": (1, 8), "code": (2, 16)}
# The pairwise question for the LLM judge, fitted to the query style (SciFact's queries are claims).
JUDGE_INSTRUCTIONS = {
    "claim": "Which of the two documents gives evidence about the claim? Reply with 1 or 2.",
    "question": "Which of the two documents answers the search query? Reply with 1 or 2.",
    "keyword": "Which of the two documents answers the search query? Reply with 1 or 2.",
    "code": "Which of the two pieces of code does what the search query asks for? Reply with 1 or 2.",
}
JUDGE_CONTEXT_LABELS = {"claim": "Claim", "question": "Query", "keyword": "Query", "code": "Query"}
# The yes/no question for the teacher used directly as a pointwise reranker (score = P(Yes)).
POINTWISE_QUESTIONS = {
    "claim": "Does the document give evidence about the claim, supporting or refuting it?",
    "question": "Does the document answer the search query?",
    "keyword": "Does the document answer the search query?",
    "code": "Does the code do what the search query asks for?",
}
# Sentence focus: the teacher reads the document's title and one sentence of it, not the whole
# document. Real SciFact claims were written from citing papers about one finding, often one
# deep in the abstract; a claim written from the whole abstract restates its title and rarest
# terms, which hybrid retrieval already matches (the source at rank 1 for 96 of 97). The short
# prompt is also about three times cheaper on a CPU, and the fixed instruction comes first so
# llama.cpp reuses it from the previous prompt.
SENTENCE_INSTRUCTIONS = {
    "claim": (
        "Write the claim another paper would make when citing the finding below: one short sentence of at most "
        "14 words, stated as a general fact. Do not mention the study, its methods, or numbers. Write only the claim."
    ),
    "question": (
        "Write one question that a person would type into a search engine and that the sentence below answers. "
        "Use your own words; do not copy the sentence. Write only the question."
    ),
    "keyword": (
        "Write a short keyword search query (2 to 6 words) that someone looking for the fact in the sentence below "
        "would type. Write only the query."
    ),
    "code": STYLE_INSTRUCTIONS["code"],  # code has no sentences worth a query of their own
}
# Rows without a `sentence` (document focus, or rows from elsewhere) render the prompt of
# earlier versions exactly, so their cached answers still count.
# Rows with `examples` (real queries of the corpus's register, rotated per row) show them
# between the instruction and the document; rows without render as before.
DOC_QUERY_PROMPT = (
    "{{ instruction }}\n\n{% if examples is defined and examples %}Examples of real search queries, to match in style:\n"
    "{% for example in examples %}- {{ example }}\n{% endfor %}\n{% endif %}{% if sentence is defined and sentence %}"
    "{% if title is defined and title %}{{ 'Paper' if style == 'claim' else 'Document' }}: {{ title }}\n{% endif %}"
    "{{ 'Finding' if style == 'claim' else 'Sentence' }}: {{ sentence }}"
    "{% else %}Passage: {{ document }}{% endif %}"
)
OPTIONAL_PROMPT_COLUMNS = ("sentence", "title", "style", "examples")  # only sentence focus or style examples add them: optional in doc_queries' input
# A second pass over a generated query: the same need in other words. The teacher's queries
# reuse their document's rarest terms, so BM25 and MiniLM already rank the source first for
# nearly all of them (SciFact: 228 of 236 at MiniLM rank 1), and a student learns nothing from
# them; real users do not know the document's vocabulary.
REWRITE_PROMPT = (
    "{% if style == 'claim' %}Rewrite this scientific claim the way a science journalist would put it: replace "
    "technical terms, gene and protein names and abbreviations with plain words or broader terms. Keep the meaning; "
    "at most 15 words. Write only the rewritten claim.\n\nClaim: {{ query }}"
    "{% else %}Rewrite this search query the way someone who does not know the subject's vocabulary would type it: "
    "use everyday words and synonyms instead of technical terms. Keep the meaning. Write only the rewritten query."
    "\n\nQuery: {{ query }}{% endif %}"
)
DEFAULT_DOC_CHARS = 1200

_LABEL = re.compile(r"^\s*(?:[-*#>]+\s*)?(?:\*\*|__)?\s*(?:claim|question|query|search query|keywords?|answer)\s*\d*\s*(?:\*\*|__)?\s*[:\-]\s*(?:\*\*|__)?\s*", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_QUOTES = "\"'`“”‘’«»"
_FENCE = re.compile(r"^\s*(?:```|~~~)\s*[\w+-]*\s*$")  # a markdown code fence line, e.g. ```text
# "Search for \"...", "Python search query: \"...": a lead-in before the quoted query itself.
_SEARCH_LEAD_IN = re.compile(r"^\s*(?:python\s+)?(?:search(?:\s+query)?(?:\s+for)?|find)\s*:?\s*(?=[\"'`“‘])", re.IGNORECASE)
# A token that is a name in code: snake_case, camelCase or dotted (module.function).
_IDENTIFIER = re.compile(r"^(?:\w*_\w+|[a-z]+[A-Z]\w*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)$")  # not a version: 2.7
_MENTIONS = re.compile(r"\b(?:the|this|that|above|given)\s+(?:passage|text|document|article|abstract|excerpt|study|paper)\b", re.IGNORECASE)


@dataclass(frozen=True)
class QueryVerdict:
    query: str  # cleaned text
    reason: str | None  # None when kept


def truncate_document(text: str, max_chars: int = DEFAULT_DOC_CHARS) -> str:
    """Cut at a sentence or word boundary: prompt processing is the cost on a CPU."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    sentence_end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[: sentence_end + 1] if sentence_end > max_chars // 2 else cut.rsplit(" ", 1)[0] + " ..."


# A sentence starts after . ! or ? and a space, at a capital, digit or bracket. (copies_document
# splits more loosely, at any such space: it looks for copies, where a split too many is harmless.)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


def focus_sentences(text: str, *, titled: bool = True, min_words: int = 6) -> list[str]:
    """The sentences a focused query may be written from: at least `min_words` words, and, in
    a titled document with more than two, not the first (it is usually background, and the
    teacher sees the title anyway)."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if len(s.split()) >= min_words]
    return sentences[1:] if titled and len(sentences) > 2 else sentences


def draw_without_replacement(pool: list, count: int, rng) -> list:
    """`count` items of `pool` in the order drawn: asking for more later keeps the earlier
    draws (random.sample switches algorithm with the sample size, so it does not)."""
    remaining, drawn = list(pool), []
    for _ in range(min(count, len(remaining))):
        drawn.append(remaining.pop(rng.randrange(len(remaining))))
    return drawn


def clean_query(text: str) -> str:
    # The coder teacher wraps queries in code fences and backticks half the time.
    lines = [line for line in (text or "").strip().splitlines() if line.strip() and not _FENCE.match(line)]
    if not lines:
        return ""
    line = lines[0]
    if _LABEL.match(line) and not _LABEL.sub("", line).strip() and len(lines) > 1:
        line = lines[1]  # "**Claim:**" alone on the first line, the claim below it
    line = _SEARCH_LEAD_IN.sub("", _LIST_MARKER.sub("", _LABEL.sub("", line)))
    line = line.replace("**", "").replace("__", "").replace("```", "").strip()
    while len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
        line = line[1:-1].strip()
    line = line.strip(_QUOTES).strip()
    return " ".join(line.split())


def copies_document(query: str, document: str, threshold: float = 0.9) -> bool:
    """True when nearly all of the query's words appear, in order, within one sentence of
    the document (LCS over the query's length)."""
    words = tokenize(query)
    if len(words) < 4:
        return False  # short keyword queries legitimately reuse document words
    for sentence in re.split(r"(?<=[.!?])\s+", document):
        if lcs_length(words, tokenize(sentence)) >= threshold * len(words):
            return True
    return False


def names_identifier(query: str, document: str) -> bool:
    """True when a word of the query is an identifier (snake_case, camelCase, dotted) that the
    code itself contains."""
    for word in query.split():
        word = word.strip(_QUOTES + ",;:()[]?!")
        if len(word) > 2 and _IDENTIFIER.match(word) and word in document:
            return True
    return False


def judge_query(text: str, document: str, style: str, *, logprob: float | None = None, min_logprob: float | None = None) -> QueryVerdict:
    query = clean_query(text)
    low, high = STYLE_WORDS.get(style, (3, 40))
    words = len(query.split())
    if words < low:
        return QueryVerdict(query, "too_short")
    if words > high:
        return QueryVerdict(query, "too_long")
    if _MENTIONS.search(query):
        return QueryVerdict(query, "mentions_document")
    if copies_document(query, document):
        return QueryVerdict(query, "copies_document")
    if style == "code" and names_identifier(query, document):
        return QueryVerdict(query, "names_identifier")
    if min_logprob is not None and logprob is not None and logprob < min_logprob:
        return QueryVerdict(query, "low_logprob")
    return QueryVerdict(query, None)
