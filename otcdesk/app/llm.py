"""OpenAI-compatible LLM and embeddings clients, built from `Settings`.

Production talks to vLLM; tests talk to a local llama.cpp server (`tests/llm_fixture.py`). Both speak the
OpenAI chat API, but they take a JSON schema in different request shapes, chosen by `flavor`:

* ``"llama_cpp"`` — ``response_format={"type": "json_object", "schema": S}``; llama-cpp-python's server turns
  the schema into a grammar (it does not accept ``json_schema``).
* ``"vllm"`` — ``response_format={"type": "json_schema", "json_schema": {"name", "schema"}}``, the OpenAI form,
  which vLLM enforces with its structured-output backend. (vLLM's old ``extra_body={"guided_json": S}`` was
  removed in vLLM 0.12; the replacement ``{"structured_outputs": {"json": S}}`` is equivalent to this.)
* ``"openai"`` — the same ``json_schema`` form with nothing non-standard, for any other OpenAI-compatible API.
* ``"auto"`` (default) — asks ``GET /models`` once: ``owned_by == "vllm"`` selects ``vllm``, anything else
  ``llama_cpp``; if the server rejects the request shape (HTTP 400/422, or llama.cpp's HTTP 500 naming the
  response_format) it retries once with the other shape and keeps whichever worked.

Whatever the flavor, the answer is parsed and validated against the schema client-side, so a server that
ignores the schema still cannot hand back unchecked data: every failure surfaces as `LLMError`.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any, Sequence

import jsonschema
import openai

log = logging.getLogger(__name__)

FLAVORS = ("auto", "llama_cpp", "vllm", "openai")


class LLMError(RuntimeError):
    """The LLM could not produce a usable answer (timeout, connection, HTTP error, bad JSON, schema violation)."""


class LLMTimeoutError(LLMError):
    """The request did not finish within its timeout."""


class LLMConnectionError(LLMError):
    """The endpoint could not be reached."""


class LLMResponseError(LLMError):
    """The server answered, but not with something usable: HTTP error, empty/invalid JSON, schema violation."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # HTTP status when the server refused the request


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def _parse_json(text: str) -> Any:
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    return json.loads(text)


def validate_json(data: Any, schema: dict) -> None:
    """Raise `LLMResponseError` unless `data` validates against the JSON `schema`."""
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON schema: {exc.message}") from exc
    errors = sorted(cls(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "<root>"
        raise LLMResponseError(f"LLM answer violates the schema at {where}: {errors[0].message}")


class LLMClient:
    """Chat client for an OpenAI-compatible endpoint (vLLM, llama.cpp server, OpenAI).

    `timeout` is the default per-request timeout in seconds; no automatic retries, so a dead endpoint fails fast.
    `merge_system=True` folds system messages into the next user turn, for chat templates that silently drop the
    system role (llama.cpp's `gemma` format does).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "sk-local",
        timeout: float = 20.0,
        *,
        flavor: str = "auto",
        max_tokens: int = 512,
        temperature: float = 0.0,
        merge_system: bool = False,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}, got {flavor!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.flavor = flavor
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.merge_system = merge_system
        self._resolved: str | None = None if flavor == "auto" else flavor
        self._lock = threading.Lock()
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "sk-none", timeout=self.timeout,
                                     max_retries=0)
        self.metrics = None  # app.metrics.Metrics, app.tracing.Tracing: set by `instrument`
        self.tracing = None

    def instrument(self, metrics: Any, tracing: Any) -> None:
        """Count every chat completion (`metrics`) and make it a span (`tracing`)."""
        self.metrics, self.tracing = metrics, tracing

    def __repr__(self) -> str:
        return f"LLMClient(base_url={self.base_url!r}, model={self.model!r}, flavor={self.flavor!r})"

    # -- public API -----------------------------------------------------------------------------------

    def complete_json(self, messages: list[dict], schema: dict, timeout: float | None = None, *,
                      request_schema: dict | None = None, max_tokens: int | None = None) -> dict:
        """Ask for a JSON answer constrained by `schema`; return it parsed and validated against `schema`.

        `request_schema`, when given, is what the server is asked to follow instead of `schema` (for servers whose
        grammar compiler cannot take every keyword of the full schema); the answer is still validated against
        `schema`. `max_tokens` overrides the client's default for this call. Raises `LLMError` (or a subclass) on
        timeout, connection failure, HTTP error, invalid JSON or a schema violation.
        """
        flavor = self._flavor(timeout)
        sent = schema if request_schema is None else request_schema
        try:
            text = self._chat(messages, timeout, max_tokens, response_format=self._response_format(flavor, sent))
        except LLMResponseError as exc:
            if self.flavor != "auto" or not _rejects_request_shape(exc):
                raise
            other = "vllm" if flavor == "llama_cpp" else "llama_cpp"
            log.info("LLM server rejected the %s request shape (%s); retrying as %s", flavor, exc, other)
            text = self._chat(messages, timeout, max_tokens, response_format=self._response_format(other, sent))
            self._resolved = other
        try:
            data = _parse_json(text)
        except (json.JSONDecodeError, ValueError) as exc:
            raise LLMResponseError(f"LLM answer is not valid JSON ({exc}): {text[:200]!r}") from exc
        validate_json(data, schema)
        return data

    def complete_text(self, messages: list[dict], timeout: float | None = None, *,
                      max_tokens: int | None = None) -> str:
        """Plain chat completion; returns the assistant's text. Raises `LLMError` on failure."""
        return self._chat(messages, timeout, max_tokens)

    def complete_tools(self, messages: list[dict], tools: list[dict], tool_choice: str | dict = "auto",
                       timeout: float | None = None, *, max_tokens: int | None = None) -> dict:
        """A chat completion offered `tools` (the OpenAI tools API): {"content", "tool_calls": [{"id", "name",
        "arguments"}]}, `arguments` the raw JSON text the model wrote (the caller validates it). `tool_choice` is
        "auto", "none", "required" or {"type": "function", "function": {"name"}}. Raises `LLMError` on failure."""
        choice = self._create(messages, timeout, max_tokens, tools=tools, tool_choice=tool_choice).message
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                 for c in (choice.tool_calls or []) if getattr(c, "function", None) is not None]
        return {"content": choice.content or "", "tool_calls": calls}

    # -- internals ------------------------------------------------------------------------------------

    @staticmethod
    def _response_format(flavor: str, schema: dict) -> dict:
        if flavor == "llama_cpp":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}

    def _flavor(self, timeout: float | None) -> str:
        if self._resolved is not None:
            return self._resolved
        with self._lock:
            if self._resolved is None:
                self._resolved = self._detect_flavor(timeout)
        return self._resolved

    def _detect_flavor(self, timeout: float | None) -> str:
        try:
            models = self._client.with_options(timeout=self._t(timeout)).models.list()
            owners = {getattr(m, "owned_by", None) for m in models.data}
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(f"LLM endpoint {self.base_url} timed out") from exc
        except openai.APIConnectionError as exc:
            raise LLMConnectionError(f"LLM endpoint {self.base_url} unreachable: {exc}") from exc
        except openai.APIError as exc:  # /models missing or forbidden: fall back to the llama.cpp shape
            log.info("could not list models at %s (%s); assuming llama_cpp request shape", self.base_url, exc)
            return "llama_cpp"
        return "vllm" if "vllm" in owners else "llama_cpp"

    def _t(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else float(timeout)

    def _chat(self, messages: list[dict], timeout: float | None, max_tokens: int | None = None,
              **extra: Any) -> str:
        text = self._create(messages, timeout, max_tokens, **extra).message.content or ""
        if not text.strip():
            raise LLMResponseError("LLM answer is empty")
        return text

    def _create(self, messages: list[dict], timeout: float | None, max_tokens: int | None = None, **extra: Any):
        """One chat completion; its first choice. Raises `LLMError` on failure. Observed (counted, traced) when
        instrumented."""
        if self.tracing is None and self.metrics is None:
            return self._create_once(messages, timeout, max_tokens, **extra)
        from contextlib import nullcontext

        started = time.perf_counter()
        with (self.tracing.llm_call(self.model) if self.tracing is not None else nullcontext()) as span:
            try:
                choice, usage = self._create_once(messages, timeout, max_tokens, with_usage=True, **extra)
            except LLMError as exc:
                outcome = {LLMTimeoutError: "timeout", LLMConnectionError: "connection"}.get(type(exc), "response")
                if self.metrics is not None:
                    self.metrics.llm_calls.labels(model=self.model, outcome=outcome).inc()
                    self.metrics.llm_fallbacks.labels(reason=outcome).inc()
                    self.metrics.llm_latency.labels(model=self.model).observe(time.perf_counter() - started)
                raise
            prompt, completion = (getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None))
            if span is not None:
                span.done(prompt, completion)
            if self.metrics is not None:
                self.metrics.llm_calls.labels(model=self.model, outcome="ok").inc()
                self.metrics.llm_latency.labels(model=self.model).observe(time.perf_counter() - started)
                for kind, n in (("prompt", prompt), ("completion", completion)):
                    if n:
                        self.metrics.llm_tokens.labels(model=self.model, type=kind).inc(n)
        return choice

    def _create_once(self, messages: list[dict], timeout: float | None, max_tokens: int | None = None, *,
                     with_usage: bool = False, **extra: Any):
        if self.merge_system:
            messages = _merge_system(messages)
        try:
            resp = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=self.max_tokens if max_tokens is None else max_tokens,
                temperature=self.temperature,
                timeout=self._t(timeout),
                **extra,
            )
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(f"LLM request timed out after {self._t(timeout)} s") from exc
        except openai.APIConnectionError as exc:
            raise LLMConnectionError(f"LLM endpoint {self.base_url} unreachable: {exc}") from exc
        except openai.APIStatusError as exc:
            raise LLMResponseError(f"LLM server answered HTTP {exc.status_code}: {str(exc)[:300]}",
                                   status=exc.status_code) from exc
        except openai.APIError as exc:
            raise LLMResponseError(f"LLM request failed: {exc}") from exc
        if not resp.choices:
            raise LLMResponseError("LLM answer has no choices")
        return (resp.choices[0], getattr(resp, "usage", None)) if with_usage else resp.choices[0]


def _rejects_request_shape(exc: LLMResponseError) -> bool:
    # vLLM/OpenAI answer 400/422; llama-cpp-python answers 500 with its pydantic validation error in the body
    if exc.status in (400, 422):
        return True
    return exc.status == 500 and bool(re.search(r"response_format|json_schema|json_object", str(exc)))


def _merge_system(messages: list[dict]) -> list[dict]:
    out: list[dict] = []
    pending: list[str] = []
    for m in messages:
        if m.get("role") == "system":
            pending.append(str(m.get("content") or ""))
        elif pending and m.get("role") == "user":
            out.append({**m, "content": "\n\n".join(pending + [str(m.get("content") or "")])})
            pending = []
        else:
            out.append(m)
    if pending:
        out.append({"role": "user", "content": "\n\n".join(pending)})
    return out


class Embedder:
    """Client for an OpenAI-compatible `/embeddings` endpoint (vLLM embedding model, llama.cpp, OpenAI)."""

    def __init__(self, base_url: str, model: str, api_key: str = "sk-local", timeout: float = 20.0,
                 *, batch_size: int = 64) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.batch_size = batch_size
        self._one_at_a_time = False
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "sk-none", timeout=self.timeout,
                                     max_retries=0)

    def __repr__(self) -> str:
        return f"Embedder(base_url={self.base_url!r}, model={self.model!r})"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in input order. Raises `LLMError` on failure."""
        out: list[list[float]] = []
        texts = list(texts)
        step = 1 if self._one_at_a_time else self.batch_size
        i = 0
        while i < len(texts):
            batch = texts[i:i + step]
            rows = self._request(batch)
            if len(batch) > 1 and any(_is_per_token(r) for r in rows):
                # llama-cpp-python without a pooling head mixes up tokens across the inputs of one request
                # (same text, different vectors); its per-request answers are right, so go one text at a time.
                log.info("embeddings endpoint %s returns per-token vectors; sending one text per request",
                         self.base_url)
                self._one_at_a_time = True
                step = 1
                continue
            out.extend(_flat_vector(r) for r in rows)
            i += len(batch)
        return out

    def _request(self, batch: list[str]) -> list[Any]:
        try:
            resp = self._client.embeddings.create(model=self.model, input=batch, encoding_format="float")
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(f"embeddings request timed out after {self.timeout} s") from exc
        except openai.APIConnectionError as exc:
            raise LLMConnectionError(f"embeddings endpoint {self.base_url} unreachable: {exc}") from exc
        except openai.APIError as exc:
            raise LLMResponseError(f"embeddings request failed: {exc}") from exc
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(batch):
            raise LLMResponseError(f"asked for {len(batch)} embeddings, got {len(rows)}")
        return [r.embedding for r in rows]


def _is_per_token(vec: Any) -> bool:
    return bool(vec) and isinstance(vec[0], list)


def _flat_vector(vec: Any) -> list[float]:
    # llama-cpp-python's server returns one vector per token for models without a pooling head (generative
    # GGUFs); mean-pool them so callers always get one vector per text.
    if _is_per_token(vec):
        n = len(vec)
        return [sum(col) / n for col in zip(*vec)]
    return [float(x) for x in vec]


def build_llm_client(settings: Any) -> LLMClient | None:
    """The app's chat client from `settings` (llm_base_url, llm_model, llm_api_key, llm_timeout_s; optional
    llm_flavor, llm_merge_system); None when no LLM is configured."""
    if not getattr(settings, "llm_base_url", None):
        return None
    return LLMClient(
        settings.llm_base_url,
        settings.llm_model,
        settings.llm_api_key,
        settings.llm_timeout_s,
        flavor=getattr(settings, "llm_flavor", None) or "auto",
        merge_system=bool(getattr(settings, "llm_merge_system", False)),
    )


def build_embedder(settings: Any) -> Embedder | None:
    """The embeddings client from `settings` (embed_base_url, embed_model); None when not configured."""
    if not getattr(settings, "embed_base_url", None):
        return None
    return Embedder(
        settings.embed_base_url,
        settings.embed_model,
        getattr(settings, "llm_api_key", "sk-local"),
        getattr(settings, "llm_timeout_s", 20.0),
    )
