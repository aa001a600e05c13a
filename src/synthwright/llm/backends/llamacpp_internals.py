"""Every use of llama-cpp-python's private parts, in one place, checked against its version.

The llamacpp backend needs more than the public `Llama` API gives: logits at chosen positions
without `logits_all=True`, the evaluated token sequence to reuse a prompt prefix, the ids of
sampled tokens, and the text of a special token. Those live in private attributes (`_ctx`,
`_batch`, `_input_ids`, `_model`) and in `Llama.sample`, which change between releases without
notice. `LlamaInternals` wraps one loaded `Llama`: it checks the installed version once, and
says what to install when it differs and a part is missing, instead of failing deep inside a
request with an AttributeError.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from synthwright.errors import UserError

#: The llama-cpp-python release these internals were written and tested against.
TESTED_VERSION = "0.3.36"
FIX = f"Install the tested release: pip install llama-cpp-python=={TESTED_VERSION} (or: pip install 'synthwright[llamacpp]')."
#: (object, attribute) pairs the backend reaches into; checked before the first request.
REQUIRED = (("llm", "_ctx"), ("llm", "_batch"), ("llm", "_input_ids"), ("llm", "_model"), ("llm", "sample"),
            ("llm", "n_tokens"), ("llm", "input_ids"), ("_ctx", "get_logits_ith"), ("_ctx", "decode"),
            ("_ctx", "kv_cache_seq_rm"), ("_batch", "set_batch"), ("_model", "token_get_text"))


def installed_version() -> str | None:
    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def version_warning(installed: str | None) -> str | None:
    """What to tell the user when the installed release is not the tested one, else None."""
    if installed is None or installed == TESTED_VERSION:
        return None
    return (f"llama-cpp-python {installed} is installed; synthwright's llamacpp backend uses its internals as of "
            f"{TESTED_VERSION}. If scoring or log-probabilities fail, {FIX[0].lower()}{FIX[1:]}")


_WARNED: set[str] = set()


class LlamaInternals:
    """The private parts of one loaded `llama_cpp.Llama`, behind a small stable surface."""

    def __init__(self, llm: Any, installed: str | None = None):
        installed = installed if installed is not None else installed_version()
        message = version_warning(installed)
        if message and installed not in _WARNED:
            _WARNED.add(installed)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self._check_parts(llm, installed)
        self.llm = llm

    @staticmethod
    def _check_parts(llm: Any, installed: str | None) -> None:
        for owner, attribute in REQUIRED:
            holder = llm if owner == "llm" else getattr(llm, owner, None)
            if not hasattr(holder, attribute):
                name = attribute if owner == "llm" else f"{owner}.{attribute}"
                raise UserError(f"The installed llama-cpp-python ({installed or 'unknown version'}) has no Llama.{name}, "
                                "which the llamacpp backend needs.", FIX)

    # -- reading ------------------------------------------------------------------------------
    def token_text(self, token_id: int) -> str:
        """The text of a (special) token, e.g. the end-of-turn marker a chat template needs."""
        return self.llm._model.token_get_text(token_id)

    def logits(self, position: int) -> np.ndarray:
        """Logits at `position` of the last decode (-1: its last token), as float64."""
        raw = self.llm._ctx.get_logits_ith(position)
        return np.ctypeslib.as_array(raw, shape=(self.llm.n_vocab(),)).astype(np.float64)

    def held_tokens(self) -> list[int]:
        """The token sequence llama.cpp holds evaluated now."""
        return self.llm._input_ids.tolist()

    # -- changing what is held ----------------------------------------------------------------
    def keep_prefix(self, prefix: int) -> None:
        """Keep the first `prefix` evaluated tokens and forget the rest (all of them when the
        cache cannot be trimmed), so the next `eval` continues from there."""
        if prefix == 0 or not self.llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
            prefix = 0
            self.llm.reset()
        self.llm.n_tokens = prefix

    def decode_with_logits(self, tokens: list[int]) -> None:
        """Evaluate `tokens` after what is held, asking for logits at every one of them (read
        them with `logits(i)`, i in range(len(tokens))); the held sequence grows by them."""
        llm = self.llm
        n_past = llm.n_tokens
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        # What llama.cpp now holds, so the next request reuses (or trims) this prefix correctly.
        llm.input_ids[n_past: n_past + len(tokens)] = tokens
        llm.n_tokens += len(tokens)

    @contextmanager
    def noting_sampled(self, note: Callable[[int], None]) -> Iterator[None]:
        """Within the block, every token id `Llama.sample` returns is passed to `note`: the ids
        the model really sampled (re-tokenising the text can merge tokens it sampled apart)."""
        llm = self.llm
        original = llm.sample

        def sample_and_note(*args, **kwargs):
            token = original(*args, **kwargs)
            note(int(token))
            return token

        llm.sample = sample_and_note  # an instance attribute shadows the method for this block only
        try:
            yield
        finally:
            del llm.sample
