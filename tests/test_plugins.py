"""Plugins: a tiny package, installed for the test (its module and a dist-info folder with
entry points on PYTHONPATH, as pip lays them out), adds a model backend and a step; the CLI
finds both through the `synthwright.backends` and `synthwright.steps` entry points."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.conftest import run_cli

PLUGIN = '''
"""A backend that answers with its prefix and the prompt, and a step that shouts a column."""
from pydantic import Field

from synthwright.core.step import FilterStep, StepOptions, register_step
from synthwright.llm.backends.base import Backend, BackendOptions, register_backend
from synthwright.llm.records import LLMResponse


class ParrotOptions(BackendOptions):
    prefix: str = Field("parrot", description="Said before every answer")


@register_backend("parrot")
class ParrotBackend(Backend):
    """Repeats the last message after its prefix."""

    Options = ParrotOptions

    def __init__(self, target, prefix="parrot", **options):
        super().__init__(target, **options)
        self.prefix = prefix

    @property
    def identity(self):
        return f"parrot:{self.target}:{self.prefix}"

    async def complete(self, request, timeout_s):
        return LLMResponse(text=f"{self.prefix}: {request.messages[-1].content}")


class ShoutOptions(StepOptions):
    column: str


@register_step("shout_filter")
class ShoutFilter(FilterStep):
    Options = ShoutOptions
    description = "Keep rows whose column is in capitals."

    def keep(self, row):
        return None if row[self.options.column].isupper() else "not_shouted"
'''


def install_plugin(folder: Path) -> dict[str, str]:
    """The plugin's module and its dist-info folder; the environment that puts them on the path."""
    folder.mkdir()
    (folder / "parrot_plugin.py").write_text(PLUGIN, encoding="utf-8")
    info = folder / "parrot_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: parrot-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[synthwright.backends]\nparrot = parrot_plugin\n\n[synthwright.steps]\nshout_filter = parrot_plugin\n", encoding="utf-8")
    return {"PYTHONPATH": str(folder)}


def test_a_plugin_package_adds_a_backend_and_a_step(tmp_path):
    env = install_plugin(tmp_path / "site")
    listed = run_cli("steps", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "shout_filter  Keep rows whose column is in capitals." in listed.stdout
    backends = listed.stdout[listed.stdout.index("Model backends"):]
    assert "parrot  Repeats the last message after its prefix." in backends and "prefix: default 'parrot'" in backends

    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"word": w}) + "\n" for w in ("hi", "HEY")), encoding="utf-8")
    (tmp_path / "pipe.yaml").write_text(textwrap.dedent("""\
        name: plugged
        models:
          - {id: bird, spec: "parrot:polly", options: {prefix: SQUAWK}}
        steps:
          - {name: words, uses: load, with: {path: rows.jsonl}}
          - {name: said, uses: generate, with: {model: bird, prompt: "{{ word }}", output_column: said}}
          - {name: loud, uses: shout_filter, with: {column: said}}
          - {name: out, uses: export, with: {path: out.jsonl, include_meta: false}}
        """), encoding="utf-8")
    ran = run_cli("run", str(tmp_path / "pipe.yaml"), "--run-dir", str(tmp_path / "run"), env=env)
    assert ran.returncode == 0, ran.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "out.jsonl").read_text().splitlines()]
    assert [row["said"] for row in rows] == ["SQUAWK: HEY"]  # the backend's option reached it; the step dropped "hi"


def test_without_the_plugin_its_names_are_unknown(tmp_path):
    (tmp_path / "pipe.yaml").write_text("name: p\nsteps:\n  - {name: loud, uses: shout_filter, with: {column: x}}\n", encoding="utf-8")
    result = run_cli("run", str(tmp_path / "pipe.yaml"), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "Unknown step type 'shout_filter'" in result.stderr and "Traceback" not in result.stderr
