"""Issue 20: queries in the corpus's register (style examples, the code style), the first stage
chosen by the round trip of synthetic queries, the student as a retriever over the whole corpus,
and evaluation that streams and talks. Real MiniLM throughout; the student here is the untrained
base model saved as a student folder, so no training is needed to check the paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthwright.core.step import StepContext
from synthwright.ranking.first_stage import choose_first_stage
from synthwright.recipes.template import TemplatePrompt
from synthwright.reranker.corpus import first_stage_runs
from synthwright.reranker.queries import DOC_QUERY_PROMPT, STYLE_INSTRUCTIONS, judge_query
from synthwright.reranker.steps import CorpusOptions, CorpusStep
from synthwright.reranker.style import MAX_SHOWN, read_style_queries
from tests.conftest import run_cli

# Queries that share no word with their document: BM25 finds nothing, meaning-based search does.
PARAPHRASES = {
    "cat": ("The feline dozed for hours upon the rug beside the fireplace.", "kitty sleeping on carpet near hearth"),
    "car": ("Automobiles burn petrol in their engines to move along highways.", "vehicles using gasoline motors on roads"),
    "doctor": ("A physician examines patients and prescribes medication in the clinic.", "healer caring for unwell folks with pills"),
    "rain": ("Precipitation fell heavily, flooding the streets of the town.", "downpour causing city roads underwater"),
    "money": ("The bank lends cash to borrowers who repay it with interest.", "financial institution loans funds"),
    "music": ("The orchestra performed a symphony with violins and cellos.", "classical concert string instruments"),
    "ship": ("A large vessel crossed the ocean carrying cargo containers.", "big boat transporting freight overseas"),
    "bread": ("Bakers knead dough and bake loaves in hot ovens each morning.", "pastry cooks working at sunrise"),
}


def _corpus(tmp_path: Path, docs: dict[str, str]) -> str:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs.items()), encoding="utf-8")
    return str(path)


# -- the first stage chosen by data ---------------------------------------------------------------
def test_the_round_trip_picks_the_retriever_that_finds_the_sources(tmp_path):
    spec = _corpus(tmp_path, {doc: text for doc, (text, _) in PARAPHRASES.items()})
    queries = {f"q-{doc}": query for doc, (_, query) in PARAPHRASES.items()}
    sources = {f"q-{doc}": doc for doc in PARAPHRASES}
    runs = first_stage_runs(spec, queries, depth=20, keep=20)
    choice = choose_first_stage(runs, sources, k=5)
    assert choice.chosen == "dense" and not choice.forced
    assert choice.measured["bm25"]["mrr@10"] < 0.2  # no shared word: BM25 is lost
    assert choice.measured["dense"]["mrr@10"] >= 0.7
    assert choice.queries == len(PARAPHRASES)
    assert "dense" in choice.why and "BM25 MRR@10" in choice.why
    # Forced: the choice follows the option, and the report says what the data would pick.
    forced = choose_first_stage(runs, sources, k=5, force="hybrid")
    assert (forced.chosen, forced.forced) == ("hybrid", True)
    assert "forced" in forced.why and "would pick dense" in forced.why


def test_where_every_retriever_finds_every_source_the_fusion_is_chosen(tmp_path):
    # Documents told apart only by a made-up part number: BM25 and MiniLM both find each one.
    codes = ["zq7781", "xk4410", "vw9023", "pl5566", "rt3012", "mn8847", "gh2290", "bc6631"]
    spec = _corpus(tmp_path, {code: f"Replacement part {code} for the standard household appliance, sold in packs." for code in codes})
    runs = first_stage_runs(spec, {code: code for code in codes}, depth=20, keep=20)
    choice = choose_first_stage(runs, {code: code for code in codes}, k=5)
    assert choice.measured["bm25"]["mrr@10"] == choice.measured["dense"]["mrr@10"] == 1.0
    assert choice.chosen == "hybrid" and "comparable" in choice.why


def _ranked(first: dict[str, str], docs: list[str]) -> dict[str, list]:
    """A run: per query, `first[query]` at rank 1, then the other documents."""
    return {q: [(top, 1.0)] + [(d, 0.5) for d in docs if d != top] for q, top in first.items()}


def test_comparable_bm25_and_dense_give_hybrid_and_a_far_weaker_one_does_not():
    """The round trip overrates BM25 (the teacher copies its source's words): where BM25 leads
    dense only a little, hybrid is chosen and the report says why; where dense is far behind,
    BM25 alone is, as the data says."""
    docs = [f"d{i}" for i in range(10)]
    sources = {f"q{i}": f"d{i}" for i in range(10)}
    wrong_for = lambda n: {f"q{i}": (f"d{(i + 1) % 10}" if i < n else f"d{i}") for i in range(10)}  # noqa: E731
    runs = {"bm25": _ranked(wrong_for(0), docs), "dense": _ranked(wrong_for(1), docs), "hybrid": _ranked(wrong_for(1), docs)}
    close = choose_first_stage(runs, sources, k=5)  # dense MRR@10 0.95 against BM25's 1.0
    assert close.chosen == "hybrid" and close.measured["bm25"]["mrr@10"] > close.measured["hybrid"]["mrr@10"]
    assert "comparable" in close.why and "95%" in close.why
    assert choose_first_stage(runs, sources, k=5, fusion_ratio=1.0).chosen == "bm25"  # the measured best alone
    runs["dense"] = _ranked(wrong_for(6), docs)  # dense MRR@10 0.7: far weaker
    assert choose_first_stage(runs, sources, k=5).chosen == "bm25"


def test_no_synthetic_query_is_a_clear_error():
    from synthwright.errors import UserError

    with pytest.raises(UserError, match="No synthetic query"):
        choose_first_stage({"bm25": {}}, {})


# -- queries in the corpus's register -------------------------------------------------------------
STYLE = ["python check if a variable is iterable", "sort by a token in string python", "python read next line from file",
         "python convert text to bytes", "python list access with default value", "get the last record in sql python",
         "python cast hex string to int"]


def _code_rows(tmp_path: Path, seed: int = 0, **options) -> list[dict]:
    spec = _corpus(tmp_path, {f"f{i}": f"def f{i}(x):\n    '''Return x plus {i}.'''\n    return x + {i}\n" for i in range(6)})
    style = tmp_path / "style.txt"
    style.write_text("\n".join(STYLE) + "\n", encoding="utf-8")
    step = CorpusStep("documents", CorpusOptions(corpus=spec, styles=["code"], min_chars=0, style_examples=str(style), **options),
                      StepContext(workdir=tmp_path, run_seed=seed))
    return list(step.read())


def test_style_examples_rotate_per_request_and_are_seeded(tmp_path):
    rows = _code_rows(tmp_path, examples_per_prompt=3)
    windows = [row["examples"] for row in rows]
    assert all(len(window) == 3 and set(window) <= set(STYLE) for window in windows)
    assert windows[0] != windows[1]  # the window moves from one request to the next
    shown = [example for window in windows for example in window]  # 18 shown of 7: each 2 or 3 times
    assert {shown.count(example) for example in STYLE} <= {2, 3}
    assert [row["examples"] for row in _code_rows(tmp_path, examples_per_prompt=3)] == windows  # same seed, same windows
    assert [row["examples"] for row in _code_rows(tmp_path, seed=1, examples_per_prompt=3)] != windows
    prompt = TemplatePrompt(source=DOC_QUERY_PROMPT, name="queries.prompt").render(rows[0])
    assert prompt.startswith(STYLE_INSTRUCTIONS["code"] + "\n\nExamples of real search queries, to match in style:\n- ")
    assert all(f"- {example}\n" in prompt for example in windows[0])
    assert prompt.endswith(f"Passage: {rows[0]['document']}")
    assert "not the function's name" in prompt


def test_at_most_twenty_style_examples_are_ever_shown(tmp_path):
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"text": f"python how to do thing number {i}"}) + "\n" for i in range(50)), encoding="utf-8")
    assert len(read_style_queries(many)) == 50
    spec = _corpus(tmp_path, {f"d{i}": f"def d{i}(): return {i}  # a tiny function of its own" for i in range(30)})
    step = CorpusStep("documents", CorpusOptions(corpus=spec, styles=["code"], min_chars=0, style_examples=str(many),
                                                 examples_per_prompt=5), StepContext(workdir=tmp_path))
    shown = {example for row in step.read() for example in row["examples"]}
    assert len(shown) == MAX_SHOWN


def test_style_examples_from_a_beir_qrels_file_are_its_judged_queries(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in
                                                  [("a", "python sort dict by value"), ("b", "dev query never shown")]), encoding="utf-8")
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\na\td1\t1\n", encoding="utf-8")
    assert read_style_queries(folder / "qrels" / "train.tsv") == ["python sort dict by value"]


def test_a_bad_style_file_is_an_error_and_a_fix(tmp_path):
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--style-examples", str(tmp_path / "missing.tsv"),
                     "--run-dir", str(tmp_path / "run"), timeout=60)
    assert result.returncode != 0
    assert "error:" in result.stderr and "fix:" in result.stderr and "Traceback" not in result.stderr


def test_code_queries_keep_short_search_phrases():
    document = "def flatten(items):\n    return [x for sub in items for x in sub]"
    assert judge_query("```\npython flatten nested list\n```", document, "code").reason is None
    assert judge_query("flatten", document, "code").reason == "too_short"
    assert judge_query('Search for "python flatten nested list', document, "code").query == "python flatten nested list"
    assert judge_query('find python code that flattens a list', document, "code").reason is None


def test_code_queries_that_spell_a_name_from_the_code_are_dropped():
    document = "def filter_dict_by_key(d, keys):\n    return {k: v for k, v in d.items() if np.isin(k, keys)}"
    for query in ("python filter_dict_by_key", "python np.isin on dict keys", "find `filter_dict_by_key` in python"):
        assert judge_query(query, document, "code").reason == "names_identifier", query
    # A name the code does not contain, or plain words, are fine.
    assert judge_query("python dict keep only some keys", document, "code").reason is None
    assert judge_query("python os.path join two paths", document, "code").reason is None
    assert judge_query("python 2.7 filter dict keys", "# works on 2.7 and 3.x\n" + document, "code").reason is None  # a version, not a name
    assert judge_query("how to use filter_dict_by_key in python", document, "question").reason is None  # the rule is for code


def test_the_register_check_tells_real_from_synthetic(tmp_path):
    from synthwright.reranker.steps.register import register_check

    real = STYLE * 2 + ["python remove duplicates from list", "how to get file size in python", "python json to dict"]
    alike = [query.replace("python", "python3") for query in real]
    unlike = [f"The {word} gives evidence that protein expression rises in mice." for word in ("study", "trial", "paper", "cohort", "analysis")] * 4
    close, far = register_check(real, alike), register_check(real, unlike)
    assert far["two_sample_auc"]["auc"] > 0.9
    assert close["two_sample_auc"]["auc"] < far["two_sample_auc"]["auc"]
    assert close["coverage"]["coverage"] > far["coverage"]["coverage"]
    assert "note" in register_check(real, ["one query"])  # too few to compare: said, not failed


# -- the student as a retriever; evaluation that streams and talks ----------------------------
def _student_folder(tmp_path: Path) -> Path:
    """The untrained MiniLM saved as a student would be: a bi-encoder folder of its own."""
    import shutil

    from synthwright.embed.local import minilm_path

    folder = tmp_path / "student" / "model"
    shutil.copytree(minilm_path(), folder)
    return folder


def test_fused_retrievers_let_a_document_only_the_student_finds_rise():
    """The reranking fusion keeps to the first stage's candidates; fusing two retrievers does not."""
    from synthwright.reranker.evaluation import fuse_retrievers

    first_stage = {"q": [("a", 0.9), ("b", 0.8), ("c", 0.7)]}
    retrieved = {"q": [("z", 0.95), ("a", 0.9)]}
    fused = [doc for doc, _ in fuse_retrievers(first_stage, retrieved)["q"]]
    assert fused[0] == "a"  # found by both
    assert fused.index("z") < fused.index("b")  # the student's own find outranks the first stage's second
    assert set(fused) == {"a", "b", "c", "z"}
    assert len(fuse_retrievers(first_stage, retrieved, k=2)["q"]) == 2


def test_a_bi_encoder_student_is_evaluated_as_a_retriever_and_a_reranker(tmp_path, monkeypatch, capsys):
    from synthwright.cli import pipeline as cli_pipeline
    from synthwright.reranker.bi_encoder import BiEncoderOverCorpus, student_scorer
    from synthwright.reranker.corpus import corpus_texts, open_corpus
    from synthwright.reranker.evaluation import evaluate_students, fused_retriever_label, rerank_label, retriever_label

    monkeypatch.setattr(cli_pipeline, "PLAIN_LOG_EVERY_S", 0.0)  # a line at every update, not every 30 s
    spec = _corpus(tmp_path, {doc: text for doc, (text, _) in PARAPHRASES.items()})
    queries = {f"q-{doc}": query for doc, (_, query) in PARAPHRASES.items()}
    qrels = {f"q-{doc}": {doc: 1} for doc in PARAPHRASES}
    texts = corpus_texts(open_corpus(spec))

    def progress(description):
        return cli_pipeline.RequestsLine(None, description)  # plain lines, as under nohup or CI

    _student_folder(tmp_path)
    student = student_scorer(tmp_path / "student", texts, "student", progress)
    assert isinstance(student, BiEncoderOverCorpus)  # the saved kind decides: a bi-encoder gets the whole corpus

    evaluation = evaluate_students(spec, queries, qrels, {"student": student}, depth=5, first_stage="dense", resamples=200,
                                   progress=progress)
    # The untrained model as the student: over the whole corpus it is dense retrieval itself, and
    # reranking dense's own top 5 with dense's model changes nothing either.
    assert evaluation.table[retriever_label("student")] == evaluation.table["dense (MiniLM)"]
    assert evaluation.table[rerank_label("student", "dense", 5)]["ndcg@10"] == pytest.approx(evaluation.table["dense (MiniLM)"]["ndcg@10"])
    assert (evaluation.first_stage, evaluation.baseline) == ("dense", "dense (MiniLM)")
    assert evaluation.gains[retriever_label("student")]["difference"] == 0.0  # gains are over the chosen first stage
    # Two identical retrievers fused by RRF keep their common order.
    assert evaluation.table[fused_retriever_label("student", "dense")] == evaluation.table["dense (MiniLM)"]
    assert "dense + student (RRF)" in evaluation.table and "BM25 + student (RRF)" in evaluation.table
    # Every long phase said how far it got, with a rate and an ETA, and how long it took.
    lines = capsys.readouterr().err
    for phase in ("first stage: 8 queries", "student: encode 8 documents", "student: rerank for 8 queries", "student: exact search (top 100) for 8 queries"):
        assert phase in lines, lines
    assert "/s, " in lines and "ETA" in lines and "done in" in lines


def test_the_student_vectors_are_encoded_once_per_model(tmp_path):
    """A second evaluation of the same student reads the corpus's vectors back from the cache."""
    from synthwright.reranker.bi_encoder import BiEncoderOverCorpus

    _student_folder(tmp_path)
    texts = {doc: text for doc, (text, _) in PARAPHRASES.items()}
    first = BiEncoderOverCorpus(tmp_path / "student" / "model", texts)
    again = BiEncoderOverCorpus(tmp_path / "student" / "model", texts)
    assert again.dense.embedder.stats.encoded == 0 and again.dense.embedder.stats.cache_hits == len(texts)
    assert first.search(["kitty sleeping on carpet near hearth"], 1)[0][0][0] == "cat"


# -- end to end on a dozen code functions ---------------------------------------------------------
FUNCTIONS = {
    "flatten": "def flatten(items):\n    \"\"\"Flatten a list of lists into one list.\"\"\"\n    return [x for sub in items for x in sub]",
    "read_json": "def read_json(path):\n    \"\"\"Load a JSON file into a dict.\"\"\"\n    with open(path) as f:\n        return json.load(f)",
    "is_iterable": "def is_iterable(obj):\n    \"\"\"Check whether an object can be iterated over.\"\"\"\n    try:\n        iter(obj)\n    except TypeError:\n        return False\n    return True",
    "hex_to_int": "def hex_to_int(text):\n    \"\"\"Convert a hexadecimal string to an integer.\"\"\"\n    return int(text, 16)",
    "file_size": "def file_size(path):\n    \"\"\"Return the size of a file in bytes.\"\"\"\n    return os.path.getsize(path)",
    "dedupe": "def dedupe(items):\n    \"\"\"Remove duplicates from a list, keeping the order.\"\"\"\n    return list(dict.fromkeys(items))",
    "sort_by_value": "def sort_by_value(d):\n    \"\"\"Sort a dictionary by its values.\"\"\"\n    return dict(sorted(d.items(), key=lambda kv: kv[1]))",
    "last_line": "def last_line(path):\n    \"\"\"Read the last line of a text file.\"\"\"\n    with open(path) as f:\n        return f.readlines()[-1]",
    "to_bytes": "def to_bytes(text):\n    \"\"\"Encode a string as UTF-8 bytes.\"\"\"\n    return text.encode('utf-8')",
    "now_iso": "def now_iso():\n    \"\"\"Current time as an ISO 8601 string.\"\"\"\n    return datetime.now().isoformat()",
    "chunks": "def chunks(items, n):\n    \"\"\"Split a list into chunks of size n.\"\"\"\n    return [items[i:i + n] for i in range(0, len(items), n)]",
    "strip_html": "def strip_html(text):\n    \"\"\"Remove HTML tags from a string.\"\"\"\n    return re.sub(r'<[^>]+>', '', text)",
}
CODE_EVAL = {"q1": ("python remove duplicates from list keep order", "dedupe"), "q2": ("python get size of file", "file_size"),
             "q3": ("split list into equal parts python", "chunks"), "q4": ("python strip tags from html string", "strip_html")}


@pytest.mark.slow
def test_code_search_end_to_end(tmp_path, isolated_cache, smollm_path):
    """`synthwright reranker` on a dozen functions, as for CoSQA: the code style with real style
    examples, the first stage chosen by the round trip, the register check, and the bi-encoder
    student evaluated as a retriever and as a reranker of the chosen first stage."""
    corpus, queries, qrels, style = (tmp_path / name for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv", "style.txt"))
    corpus.write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in FUNCTIONS.items()), encoding="utf-8")
    queries.write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in CODE_EVAL.items()), encoding="utf-8")
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in CODE_EVAL.items()), encoding="utf-8")
    style.write_text("\n".join(STYLE) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = run_cli("reranker", "--corpus", str(corpus), "--teacher", "llamacpp:smollm2-135m", "--style", "code",
                     "--style-examples", str(style), "--budget", "4", "--candidates", "4", "--pairs-per-query", "6",
                     "--student", "bi", "--epochs", "1", "--max-length", "64", "--depth", "5",
                     "--eval-queries", str(queries), "--eval-qrels", str(qrels), "--run-dir", str(run_dir), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    # The teacher was shown real queries: each prompt a window of the style sample.
    prompts = [row for row in (json.loads(line) for line in (run_dir / "dataset.jsonl").read_text().splitlines())]
    assert prompts and all(set(row["examples"]) <= set(STYLE) and row["style"] == "code" for row in prompts)
    # The first stage: measured on the synthetic queries' round trip, chosen, and said why.
    choice = json.loads((run_dir / "first_stage.json").read_text())
    assert choice["chosen"] in ("bm25", "dense", "hybrid") and set(choice["measured"]) == {"bm25", "dense", "hybrid"}
    assert choice["queries"] >= len(prompts)  # measured on every unique query; candidates then drop failed round trips
    assert f"first stage: {choice['why']}" in " ".join(result.stdout.split())
    register = json.loads((run_dir / "register.json").read_text())
    assert register["real"] == len(STYLE) and (0.0 <= register["two_sample_auc"]["auc"] <= 1.0 or "note" in register)
    # Evaluation: the student as a retriever over the whole corpus, and as a reranker of the chosen first stage.
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["first_stage"] == choice["chosen"]
    assert "student: retriever (whole corpus, exact)" in evaluation["table"]
    assert any(name.startswith("student: rerank") for name in evaluation["table"])
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert f"<h2>First stage: {choice['chosen']}</h2>" in report and "Register of the synthetic queries" in report


def test_style_examples_from_the_evaluation_split_are_refused(tmp_path):
    queries, qrels = tmp_path / "queries.jsonl", tmp_path / "dev.tsv"
    queries.write_text(json.dumps({"_id": "d1", "text": "python sort dict by value"}) + "\n", encoding="utf-8")
    qrels.write_text("query-id\tcorpus-id\tscore\nd1\tassignment\t1\n", encoding="utf-8")
    style = tmp_path / "style.txt"
    style.write_text("python sort dict by value\npython read a file\n", encoding="utf-8")
    result = run_cli("reranker", "--corpus", "pydoc:topics", "--style-examples", str(style), "--eval-queries", str(queries),
                     "--eval-qrels", str(qrels), "--run-dir", str(tmp_path / "run"), timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "evaluation queries" in result.stderr and "fix:" in result.stderr and "train" in result.stderr
    assert not (tmp_path / "run" / "pipeline.yaml").exists()  # refused before any step


def test_learning_curve_points_are_nested_subsets_in_their_order():
    """train_student's `limit`: the smaller point of a learning curve trains on a subset of the
    larger one's queries (same run seed), in the data's own order; no limit keeps them all."""
    import random

    from synthwright.reranker.steps.student import nested_subset

    rows = [{"query": f"q{i}"} for i in range(50)]
    small, large = (nested_subset(rows, n, random.Random(7)) for n in (10, 30))
    assert len(small) == 10 and len(large) == 30
    assert all(row in large for row in small)
    assert large == [row for row in rows if row in large]  # order kept
    assert small != rows[:10]  # a draw, not the head of the file
    assert nested_subset(rows, None, random.Random(7)) == rows and nested_subset(rows, 80, random.Random(7)) == rows


def test_hard_queries_are_those_the_first_stage_ranks_below_the_top():
    from synthwright.reranker.steps.student import hard_queries

    rows = [{"query": "a", "source_rank": 1}, {"query": "b", "source_rank": 2}, {"query": "c", "source_rank": 7},
            {"query": "d", "source_rank": None}]
    assert [r["query"] for r in hard_queries(rows, 2)] == ["b", "c", "d"]
    assert [r["query"] for r in hard_queries(rows, 5)] == ["c", "d"]
    assert hard_queries(rows, 1) == rows


def test_subsets_of_synthetic_queries_are_refused_with_real_labels_and_an_empty_one_is_a_clear_error(tmp_path):
    from synthwright.core.step import StepContext
    from synthwright.errors import UserError
    from synthwright.reranker.steps.student import StudentOptions, TrainStudentStage

    for extra in ({"limit": 10}, {"min_source_rank": 2}):
        with pytest.raises(ValueError, match="real_limit"):
            StudentOptions(corpus="c.jsonl", kind="bi", label_source="real", **extra)
    stage = TrainStudentStage("student_hard", StudentOptions(corpus="c.jsonl", kind="bi", min_source_rank=2),
                              StepContext(workdir=tmp_path, run_dir=tmp_path))
    with pytest.raises(UserError) as caught:
        stage._drawn([{"query": "a", "source_rank": 1}, {"query": "b", "source_rank": 1}])
    assert "min_source_rank" in caught.value.problem and "Lower min_source_rank" in caught.value.fix
    assert [r["query"] for r in stage._drawn([{"query": "a", "source_rank": 1}, {"query": "b", "source_rank": 3}])] == ["b"]


def test_synthetic_and_real_pairs_train_together(tmp_path):
    """train_student's `with_real`: the synthetic queries' labels, then the real training pairs
    (their judged function 1, the first stage's top unjudged ones 0); refused where it means nothing."""
    from synthwright.core.step import StepContext
    from synthwright.reranker.steps.student import StudentOptions, TrainStudentStage

    corpus, queries, qrels = tmp_path / "corpus.jsonl", tmp_path / "queries.jsonl", tmp_path / "train.tsv"
    corpus.write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in FUNCTIONS.items()), encoding="utf-8")
    queries.write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in CODE_EVAL.items()), encoding="utf-8")
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tdedupe\t1\nq3\tchunks\t1\n", encoding="utf-8")
    real = {"real_queries": str(queries), "real_qrels": str(qrels)}
    with pytest.raises(ValueError, match="real_queries and real_qrels"):
        StudentOptions(corpus=str(corpus), kind="bi", with_real=True)
    with pytest.raises(ValueError, match="label_source: real needs real_queries and real_qrels"):
        StudentOptions(corpus=str(corpus), kind="bi", label_source="real", real_queries=str(queries))
    with pytest.raises(ValueError, match="alone"):
        StudentOptions(corpus=str(corpus), kind="bi", label_source="real", with_real=True, **real)

    synthetic = [{"query": "python flatten nested list", "doc_id": "flatten", "candidates": ["chunks", "dedupe"],
                  "first_stage": "dense", "source_rank": 1}]
    options = StudentOptions(corpus=str(corpus), kind="bi", label_source="binary", with_real=True, **real)
    groups = TrainStudentStage("student", options, StepContext(workdir=tmp_path, run_dir=tmp_path))._groups(synthetic)
    assert [g.query for g in groups] == ["python flatten nested list", CODE_EVAL["q1"][0], CODE_EVAL["q3"][0]]
    assert groups[0].labels == {"flatten": 1.0, "chunks": 0.0, "dedupe": 0.0}
    for group, judged in zip(groups[1:], ("dedupe", "chunks")):
        assert group.labels[judged] == 1.0 and sorted(group.labels.values()).count(1.0) == 1 and len(group.labels) > 1
    alone = StudentOptions(corpus=str(corpus), kind="bi", label_source="binary", **real)
    assert len(TrainStudentStage("student", alone, StepContext(workdir=tmp_path, run_dir=tmp_path))._groups(synthetic)) == 1
