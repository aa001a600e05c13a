"""Entry point: builds the Typer app and turns expected errors into one clear line."""

from __future__ import annotations

import sys

import typer

from synthwright.cli import classify, diversity, generate, instruct, judge, models, personas, pipeline, reranker, review, usage, validate
from synthwright.errors import UserError

app = typer.Typer(
    name="synthwright",
    help="Turn a teacher LLM into training data for a small model, and check it against real data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models.register(app)
generate.register(app)
usage.register(app)
pipeline.register(app)
instruct.register(app)
personas.register(app)
judge.register(app)
diversity.register(app)
validate.register(app)
reranker.register(app)
classify.register(app)
review.register(app)


def main() -> None:
    try:
        app()
    except UserError as exc:
        message = f"error: {exc.problem}" + (f"\n  fix: {exc.fix}" if exc.fix else "")
        print(message, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        # Typer turns Ctrl-C into a silent `sys.exit(130)` before it can reach the clause above.
        if exc.code == 130:
            _interrupted()
        raise


def _interrupted() -> None:
    print("interrupted: rerun the same command to resume (completed requests are cached)", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
    main()
