"""`synthwright instruct`: instruction data from one recipe, as a resumable pipeline run."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from synthwright.cli.console import out
from synthwright.cli.pipeline import ProgressObserver, print_step_table
from synthwright.errors import UserError
from synthwright.llm.offline_models import DEFAULT_TEACHER
from synthwright.pipeline.config import validate_pipeline
from synthwright.pipeline.pipeline import run_pipeline
from synthwright.pipeline.rundir import RunDirectory
from synthwright.recipes.self_instruct import builtin_seed_path


class Recipe(str, Enum):
    self_instruct = "self-instruct"
    evol_instruct = "evol-instruct"
    magpie = "magpie"


def _recipe_steps(recipe: Recipe, model: str, n: int, seeds: Path | None, rounds: int, system: str | None) -> list[dict]:
    if recipe is Recipe.self_instruct:
        options = {"model": model, "n": n}
        if seeds:
            options["seeds"] = str(seeds.resolve())
        return [{"name": "self_instruct", "uses": "self_instruct", "with": options}]
    if recipe is Recipe.magpie:
        options = {"model": model, "n": n}
        if system:
            options["system"] = system
        return [{"name": "magpie", "uses": "magpie", "with": options}]
    source = str((seeds or builtin_seed_path()).resolve())
    return [
        {"name": "seeds", "uses": "load", "with": {"path": source}},
        {"name": "evol_instruct", "uses": "evol_instruct", "with": {"model": model, "rounds": rounds, "n": n}},
    ]


def register(app: typer.Typer) -> None:
    @app.command("instruct")
    def instruct(
        recipe: Recipe = typer.Option(..., "--recipe", help="self-instruct, evol-instruct or magpie."),
        n: int = typer.Option(20, "--n", min=1, help="Rows to make."),
        model: str = typer.Option(DEFAULT_TEACHER, "--model", "-m", help="Teacher model spec."),
        seeds: Path = typer.Option(None, "--seeds", help="Seed tasks JSONL (default: the built-in seeds)."),
        rounds: int = typer.Option(3, "--rounds", min=1, help="Evol-Instruct: at most this many rounds (stops at n kept)."),
        system: str = typer.Option(None, "--system", help="Magpie: system prompt that steers topic or persona."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Run folder (default: runs/RECIPE)."),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Make instruction data with one recipe; the run folder can be inspected and exported.

        Example: synthwright instruct --recipe evol-instruct --n 20
        """
        if seeds is not None and not seeds.is_file():
            raise UserError(f"Seed file '{seeds}' does not exist.", "Check the --seeds path.")
        steps = _recipe_steps(recipe, model, n, seeds, rounds, system)
        last = steps[-1]["name"]
        steps.append({"name": "export", "uses": "export", "with": {"path": "instructions.jsonl"}})
        config = validate_pipeline({"name": recipe.value, "seed": seed, "steps": steps}, source=f"instruct --recipe {recipe.value}")
        folder = run_dir or Path("runs") / recipe.value
        observer = ProgressObserver()
        try:
            result = run_pipeline(config, folder, observer=observer)
        finally:
            observer.close()
        print_step_table(RunDirectory(result.run_dir), title=f"instruct {recipe.value}")
        count = RunDirectory(result.run_dir).count_rows(last)
        out.print(f"{count} rows from {last}: {result.run_dir / 'instructions.jsonl'}  ({result.requests_sent} requests sent)")
