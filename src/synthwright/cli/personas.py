"""`synthwright personas`: sample personas, and measure what they do for diversity."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from synthwright.cli.console import out
from synthwright.errors import UserError
from synthwright.pipeline import Pipeline
from synthwright.pipeline.rundir import RunDirectory
from synthwright.recipes.personas import PersonaSampler


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Personas: sample them; compare output diversity with and without them.")

    @group.command("sample")
    def sample(n: int = typer.Option(5, "--n", min=1), seed: int = typer.Option(0, "--seed")) -> None:
        """Print N personas from the built-in attribute library.

        Example: synthwright personas sample --n 5 --seed 1
        """
        sampler = PersonaSampler(seed=seed)
        for i in range(n):
            persona = sampler.sample(i)
            out.print(f"[dim]{persona.id}[/]  {persona.description}")

    @group.command("compare")
    def compare(
        model: str = typer.Option(..., "--model", "-m"),
        template: Path = typer.Option(..., "--template", "-t", help="Jinja template; input columns are its variables."),
        input: Path = typer.Option(..., "--input", "-i", help="Input rows (.jsonl or .parquet)."),
        samples: int = typer.Option(3, "--samples", "-n", min=1, help="Samples per input row, in both arms."),
        max_tokens: int = typer.Option(64, "--max-tokens", min=1),
        run_dir: Path = typer.Option(Path("runs/persona-compare"), "--run-dir"),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Generate the same budget with and without personas, then compare diversity measures.

        Example: synthwright personas compare -m llamacpp:qwen2.5-coder-1.5b -t examples/question.j2 -i examples/topics.jsonl
        """
        if not input.is_file():
            raise UserError(f"Input file '{input}' does not exist.", "Check the --input path.")
        arms = {}
        for arm, with_personas in (("plain", False), ("personas", True)):
            p = Pipeline(f"persona-compare-{arm}", seed=seed)
            p.step("rows", "load", path=str(input.resolve()))
            if with_personas:
                p.step("who", "personas")
            p.step("gen", "generate", model=model, template=str(template.resolve()), samples=samples, max_tokens=max_tokens,
                   temperature=0.9, persona_column="persona" if with_personas else None)
            p.run(run_dir / arm)
            arms[arm] = [row["generation"] for row in RunDirectory(run_dir / arm).rows("gen")]
        report = _compare(arms)
        _print(report)
        (run_dir / "report.json").write_text(json.dumps(report, indent=2))
        out.print(f"report: {run_dir / 'report.json'}")

    app.add_typer(group, name="personas")


def _compare(arms: dict[str, list[str]]) -> dict[str, dict]:
    from synthwright.diversity import diversity_measures
    from synthwright.embed import load_embedder

    embedder = load_embedder("minilm")
    return {arm: diversity_measures(embedder.embed(texts), texts).to_dict() for arm, texts in arms.items()}


def _print(report: dict[str, dict]) -> None:
    table = Table(title="Output diversity, same budget (higher is more diverse)")
    table.add_column("measure")
    for arm in report:
        table.add_column(arm, justify="right")
    plain, personas = report["plain"], report["personas"]
    rows = [("rows", "rows"), ("mean pairwise distance", "mean_pairwise_distance"), ("clusters covering 90%", "clusters_for_90pct")]
    for label, key in rows:
        table.add_row(label, str(plain[key]), str(personas[key]))
    for q in plain["nn_distance_quantiles"]:
        table.add_row(f"nearest-neighbour distance {q}", str(plain["nn_distance_quantiles"][q]), str(personas["nn_distance_quantiles"].get(q)))
    for n in plain["distinct_ngrams"]:
        table.add_row(n, str(plain["distinct_ngrams"][n]), str(personas["distinct_ngrams"].get(n)))
    out.print(table)
