"""llama-cpp-python's private parts behind one adapter: checked against the installed version,
with what to install when a part is missing; on the real tiny model, what it reads and changes."""

from __future__ import annotations

import pytest

from synthwright.errors import UserError
from synthwright.llm.backends.llamacpp_internals import TESTED_VERSION, LlamaInternals, installed_version, version_warning
from synthwright.llm.spec import load_backend

TINY = "llamacpp:smollm2-135m"


def test_the_tested_release_is_installed_and_another_one_is_named():
    assert installed_version() == TESTED_VERSION  # what the Makefile installs
    assert version_warning(TESTED_VERSION) is None
    message = version_warning("0.4.1")
    assert "0.4.1" in message and TESTED_VERSION in message and f"pip install llama-cpp-python=={TESTED_VERSION}" in message


def test_a_missing_private_part_is_a_user_error_with_the_fix():
    class NotALlama:
        n_tokens = 0

    with pytest.raises(UserError) as info, pytest.warns(RuntimeWarning, match="9.9.9"):
        LlamaInternals(NotALlama(), installed="9.9.9")
    assert "9.9.9" in info.value.problem and "Llama._ctx" in info.value.problem
    assert f"llama-cpp-python=={TESTED_VERSION}" in info.value.fix


def test_on_the_real_model_it_reads_and_trims_what_is_held():
    backend = load_backend(TINY)
    llm, internals = backend.llama(), backend.internals()
    tokens = llm.tokenize(b"The owl hunts at night in the quiet forest", add_bos=True, special=True)
    internals.keep_prefix(0)
    llm.eval(tokens)
    assert internals.held_tokens()[: len(tokens)] == tokens and llm.n_tokens == len(tokens)
    assert internals.logits(-1).shape == (llm.n_vocab(),)
    internals.keep_prefix(3)
    assert llm.n_tokens == 3
    internals.decode_with_logits(tokens[3:5])
    assert llm.n_tokens == 5 and internals.held_tokens()[:5] == tokens[:5]
    sampled: list[int] = []
    with internals.noting_sampled(sampled.append):
        llm.create_completion(prompt=tokens, max_tokens=3, temperature=0.0)
    assert 1 <= len(sampled) <= 3 and "sample" not in vars(llm)  # the method is itself again afterwards


def test_a_differing_release_warns_once(recwarn):
    backend = load_backend(TINY)
    LlamaInternals(backend.llama(), installed="0.3.99")
    LlamaInternals(backend.llama(), installed="0.3.99")
    warned = [w for w in recwarn.list if issubclass(w.category, RuntimeWarning) and "0.3.99" in str(w.message)]
    assert len(warned) == 1
