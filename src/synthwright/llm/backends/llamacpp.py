"""In-process GGUF inference with llama-cpp-python.

Spec: `llamacpp:NAME` for an offline model (see `offline_models`) or `llamacpp:/path/m.gguf`.

Chat messages are rendered with the model's own chat template (from the GGUF metadata)
and tokenized here, so generation, choice probabilities and Magpie-style raw prompts all
see exactly the same tokens. llama.cpp keeps one evaluated token sequence; consecutive
requests that share a prefix (same system prompt and query, say) only evaluate the rest.

Probabilities never need `logits_all=True` (which reserves n_ctx x vocab floats, ~1.2 GB
for Qwen at n_ctx=2048, and slows prompt processing ~30%): choice probabilities read the
last position's logits after evaluating the prompt, top-k logprobs of generated tokens are
read by a logits processor as each token is sampled, and a continuation's log-probability
asks llama.cpp for logits at the continuation's positions only. Those need llama-cpp-python's
private parts, which `llamacpp_internals.LlamaInternals` wraps, checked against its version.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from synthwright.errors import UserError, require_module
from synthwright.llm.backends.base import Backend, BackendOptions, PermanentError, register_backend
from synthwright.llm.backends.llamacpp_internals import LlamaInternals
from synthwright.llm.offline_models import OFFLINE_MODELS, ensure_model_file
from synthwright.llm.records import LLMRequest, LLMResponse, TokenLogprob, Usage, parse_json_answer

LLAMACPP_PIP = "'synthwright[llamacpp]'  (or: pip install llama-cpp-python==0.3.36)"


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


class LlamaCppOptions(BackendOptions):
    n_ctx: int = Field(4096, ge=64, description="Context length in tokens (prompt and answer together)")
    n_threads: int | None = Field(None, ge=1, description="CPU threads (default: all cores)")
    n_batch: int = Field(512, ge=1, description="Prompt tokens evaluated per llama.cpp call")


@register_backend("llamacpp")
class LlamaCppBackend(Backend):
    """In-process GGUF model (llama-cpp-python): llamacpp:NAME of an offline model, or llamacpp:/path/m.gguf."""

    Options = LlamaCppOptions
    default_concurrency = 1  # one model, one sequence: requests queue, in order
    scores_continuations = True
    renders_chat = True

    def __init__(self, target: str, n_ctx: int = 4096, n_threads: int | None = None, n_batch: int = 512, **options: Any):
        super().__init__(target, **options)
        self.n_ctx, self.n_batch = n_ctx, n_batch
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._offline = OFFLINE_MODELS.get(target)
        if self._offline is None:
            path = Path(target).expanduser()
            if path.suffix.lower() != ".gguf" and "/" not in target:
                known = ", ".join(OFFLINE_MODELS)
                raise UserError(f"Unknown llama.cpp model '{target}'.", f"Use one of: {known}, or a path to a .gguf file.")
            if not path.is_file():
                raise UserError(f"Model file '{path}' does not exist.", "Give the path to a local .gguf file.")
            self._path: Path | None = path
        else:
            self._path = None  # assembled on first use
        self._llm = None
        self._internals: LlamaInternals | None = None
        self._formatter = None
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    @property
    def identity(self) -> str:
        if self._offline is not None:
            return f"llamacpp:{self._offline.name}:{self._offline.sha256[:16]}"
        stat = self._path.stat()
        return f"llamacpp:{self._path.name}:{stat.st_size}"

    @property
    def model_path(self) -> Path:
        if self._path is None:
            self._path = ensure_model_file(self._offline.name)
        return self._path

    # -- loading ------------------------------------------------------------------------
    def llama(self):
        """The loaded `llama_cpp.Llama` (loaded on first call)."""
        if self._llm is None:
            llama_cpp = require_module("llama_cpp", "The llamacpp backend", LLAMACPP_PIP)
            llm = llama_cpp.Llama(
                model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                n_batch=self.n_batch, logits_all=False, verbose=False,
            )
            self._internals = LlamaInternals(llm)  # checks the parts it reaches into, before any request
            self._llm = llm
        return self._llm

    def internals(self) -> LlamaInternals:
        """The loaded model's private parts (loads it on first call)."""
        self.llama()
        return self._internals

    def chat_formatter(self):
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llm = self.llama()
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise PermanentError(f"{self.model_path.name} has no chat template; send a raw prompt instead")
            internals = self.internals()
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=internals.token_text(eos) if eos != -1 else "",
                bos_token=internals.token_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        return self._formatter

    def render_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The model's own chat template applied to `messages` (what Magpie builds on)."""
        formatter = self.chat_formatter()
        # The formatter is shared with every chat request, which runs in a worker thread:
        # flip its flag only while no request can use it.
        with self._lock:
            formatter.add_generation_prompt = add_generation_prompt
            try:
                return formatter(messages=messages).prompt
            finally:
                formatter.add_generation_prompt = True

    def tokens_for(self, request: LLMRequest) -> tuple[list[int], list[str]]:
        """Prompt tokens and the extra stop strings the chat template implies."""
        llm = self.llama()
        if request.prompt is not None:
            return llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True), []
        formatted = self.chat_formatter()(messages=[m.model_dump() for m in request.messages])
        tokens = llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
        return tokens, [s for s in (formatted.stop or []) if s]

    def count_tokens(self, text: str) -> int:
        return len(self.llama().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render_for_count(self, request: LLMRequest) -> str:
        if request.prompt is not None:
            return request.prompt
        return self.chat_formatter()(messages=[m.model_dump() for m in request.messages]).prompt

    # -- calls --------------------------------------------------------------------------
    async def complete(self, request: LLMRequest, timeout_s: float) -> LLMResponse:
        # llama.cpp is CPU-bound and holds one sequence: run in a thread, one at a time,
        # so the event loop stays free for progress and other backends.
        return await asyncio.to_thread(self._complete_locked, request)

    def _complete_locked(self, request: LLMRequest) -> LLMResponse:
        with self._lock:
            started = time.perf_counter()
            tokens, template_stops = self.tokens_for(request)
            if len(tokens) >= self.n_ctx:
                raise PermanentError(f"prompt has {len(tokens)} tokens; the context holds {self.n_ctx} (raise n_ctx)")
            if request.continuation is not None:
                response = self._score_continuation(tokens, request.continuation)
            elif request.choices:
                response = self._choose(request, tokens)
            else:
                response = self._generate(request, tokens, template_stops)
            return response.model_copy(update={"latency_s": time.perf_counter() - started})

    def _generate(self, request: LLMRequest, tokens: list[int], template_stops: list[str]) -> LLMResponse:
        llm = self.llama()
        p = request.params
        recorder = _TopLogprobRecorder(request.top_logprobs) if request.top_logprobs else None
        kwargs: dict[str, Any] = {
            "max_tokens": min(p.max_tokens, self.n_ctx - len(tokens)),
            "temperature": p.temperature,
            "stop": list(p.stop) + template_stops,
            "seed": p.seed,
            "grammar": self._grammar(request.json_schema) if request.json_schema is not None else None,
        }
        optional = {
            "top_p": p.top_p, "top_k": p.top_k, "min_p": p.min_p, "repeat_penalty": p.repeat_penalty,
            "presence_penalty": p.presence_penalty, "frequency_penalty": p.frequency_penalty,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        if recorder is not None:
            from llama_cpp import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([recorder])
        with self.internals().noting_sampled(recorder.sampled.append) if recorder is not None else nullcontext():
            result = llm.create_completion(prompt=tokens, **kwargs)
        choice = result["choices"][0]
        text = choice["text"]
        usage = result.get("usage") or {}
        fields: dict[str, Any] = {
            "text": text,
            "finish_reason": choice.get("finish_reason"),
            "usage": Usage(prompt_tokens=usage.get("prompt_tokens", len(tokens)), completion_tokens=usage.get("completion_tokens", 0)),
        }
        if recorder is not None:
            fields["logprobs"] = recorder.records(llm, text)
        if request.json_schema is not None:
            fields["parsed"], fields["parse_error"] = parse_json_answer(text)
        return LLMResponse(**fields)

    def _grammar(self, schema: dict[str, Any]):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar

            try:
                self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as exc:
                raise PermanentError(f"the JSON schema cannot be turned into a grammar: {exc}") from None
        return self._grammars[key]

    def _choose(self, request: LLMRequest, tokens: list[int]) -> LLMResponse:
        """Next-token probabilities over `request.choices`, renormalised among them.

        Tokenisers often split " 1" into [" ", "1"]. When the model's next token is such a
        bare space, the choice comes one token later, so its probability is
        P(c | x) + P(" " | x) * P(c | x + " "): one extra one-token evaluation.
        """
        logprobs = self._next_token_logprobs(tokens)
        mass = {choice: float(np.exp(logprobs[self._choice_token_ids(choice)]).sum()) for choice in request.choices}
        for space_id in self._bare_space_ids(request.choices):
            p_space = float(np.exp(logprobs[space_id]))
            if p_space < 1e-4:
                continue
            after_space = self._next_token_logprobs(tokens + [space_id])
            for choice in request.choices:
                mass[choice] += p_space * float(np.exp(after_space[self._choice_token_ids(choice, spaced=False)]).sum())
        total = sum(mass.values()) or 1.0
        probs = {choice: value / total for choice, value in mass.items()}
        best = max(probs, key=probs.get)
        return LLMResponse(
            text=best, choice_probs=probs, finish_reason="choice",
            usage=Usage(prompt_tokens=len(tokens), completion_tokens=0),
        )

    def _score_continuation(self, tokens: list[int], continuation: str) -> LLMResponse:
        """log P(continuation | prompt), summed over the continuation's tokens. The prompt is
        evaluated as usual (its last logits give the first token); then every continuation
        token but the last is decoded, asking llama.cpp for logits at each of them (one decode
        per n_batch tokens), and position i scores token i + 1."""
        llm, internals = self.llama(), self.internals()
        following = self._first_tokens(continuation)
        if len(tokens) + len(following) > self.n_ctx:
            raise PermanentError(f"prompt and continuation have {len(tokens) + len(following)} tokens; the context holds {self.n_ctx} (raise n_ctx)")
        total = float(self._next_token_logprobs(tokens)[following[0]])
        context = following[:-1]  # the tokens whose logits score the next one
        for start in range(0, len(context), llm.n_batch):
            chunk = context[start: start + llm.n_batch]
            internals.decode_with_logits(chunk)
            for i in range(len(chunk)):
                total += float(_log_softmax(internals.logits(i))[following[start + i + 1]])
        return LLMResponse(
            text=continuation, continuation_logprob=total, continuation_tokens=len(following), finish_reason="continuation",
            usage=Usage(prompt_tokens=len(tokens) + len(following), completion_tokens=0),
        )

    def _next_token_logprobs(self, tokens: list[int]) -> np.ndarray:
        self._evaluate_reusing_prefix(tokens)
        return _log_softmax(self.internals().logits(-1))

    def _first_tokens(self, text: str) -> list[int]:
        return self.llama().tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def _is_blank(self, token_id: int) -> bool:
        return not self.llama().detokenize([token_id]).strip()

    def _choice_token_ids(self, choice: str, spaced: bool = True) -> list[int]:
        """Token ids that start `choice` (and " choice"), leaving out a bare-space first token."""
        variants = (choice, " " + choice) if spaced else (choice,)
        ids = {self._first_tokens(v)[0] for v in variants}
        return sorted(i for i in ids if not self._is_blank(i))

    def _bare_space_ids(self, choices: tuple[str, ...]) -> set[int]:
        """First tokens of " choice" that are only whitespace (the split-off space)."""
        return {first for c in choices if self._is_blank(first := self._first_tokens(" " + c)[0])}

    def _evaluate_reusing_prefix(self, tokens: list[int]) -> None:
        """Evaluate `tokens`, keeping whatever prefix llama.cpp already holds."""
        internals = self.internals()
        prefix = 0
        for a, b in zip(internals.held_tokens(), tokens):
            if a != b:
                break
            prefix += 1
        prefix = min(prefix, len(tokens) - 1)  # at least one token is evaluated, for fresh logits
        internals.keep_prefix(prefix)
        self.llama().eval(tokens[prefix:])

    async def aclose(self) -> None:
        # The model stays loaded for the backend's lifetime: reloading costs seconds.
        return None


class _TopLogprobRecorder:
    """Notes the top-k log-probabilities at each sampled position (as a logits processor)
    and the token actually sampled there (through `LlamaInternals.noting_sampled`).

    The sampled ids matter: re-tokenising the returned text can merge tokens the model
    sampled separately (' wand' + 'er'), which would shift every later entry.
    """

    def __init__(self, k: int):
        self.k = k
        self.steps: list[tuple[np.ndarray, np.ndarray]] = []
        self.sampled: list[int] = []

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        logprobs = _log_softmax(np.asarray(logits, dtype=np.float64))
        top = np.argpartition(-logprobs, self.k)[: self.k]
        top = top[np.argsort(-logprobs[top])]
        self.steps.append((top, logprobs))
        return logits

    def records(self, llm, text: str) -> tuple[TokenLogprob, ...]:
        """One entry per sampled token that starts inside the returned text (tokens after a
        stop string or the end-of-turn token are not part of the answer)."""
        limit = len(text.encode("utf-8"))
        out, offset = [], 0
        for token_id, (top, logprobs) in zip(self.sampled, self.steps):
            piece = llm.detokenize([token_id])
            if offset >= limit or not piece:
                break
            out.append(
                TokenLogprob(
                    token=piece.decode("utf-8", "replace"), logprob=float(logprobs[token_id]),
                    top={llm.detokenize([int(i)]).decode("utf-8", "replace"): float(logprobs[i]) for i in top},
                )
            )
            offset += len(piece)
        return tuple(out)

