"""Pytest plugin: a real local OpenAI-compatible LLM server for `@pytest.mark.llm` tests.

Loaded from tests/conftest.py (`pytest_plugins = ["llm_fixture"]`). Fixtures (session-scoped):

* `llm_server` — `python -m llama_cpp.server` serving a tiny Gemma 3 270M GGUF on 127.0.0.1; yields a
  `LocalLLMServer` with `.base_url`, `.model` and `.client` (an `app.llm.LLMClient`).
* `embed_server` — the same model started in embedding mode; yields `.base_url`, `.model`, `.embedder`.

When llama-cpp-python or the model is missing: under CI=true, `scripts/setup_llm.sh` runs once (it builds the wheel
only if its cache is cold); elsewhere the tests skip and say how to enable them (`bash scripts/setup_llm.sh`).
A server that cannot start fails the tests under CI and skips them elsewhere.

Environment knobs: OTCDESK_LLM_GGUF (a .gguf to serve instead), OTCDESK_MODEL_CACHE (where setup_llm.sh puts it),
OTCDESK_LLM_THREADS (default 2 under CI, else 1: on cores busy with other work 1 thread is 2-3x faster because
llama.cpp's threads spin-wait on each other).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup_llm.sh"
MODEL_FILENAME = "gemma3-270m-q4_k_m.gguf"  # keep in step with scripts/setup_llm.sh
MODEL_ALIAS = "gemma3-270m"
STARTUP_TIMEOUT_S = 120.0
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

_setup_attempted = False


@dataclass
class LocalLLMServer:
    base_url: str
    model: str
    process: subprocess.Popen
    log_path: Path
    client: object = None  # app.llm.LLMClient (chat) or None
    embedder: object = None  # app.llm.Embedder (embedding mode) or None
    startup_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _model_path() -> Path:
    if os.environ.get("OTCDESK_LLM_GGUF"):
        return Path(os.environ["OTCDESK_LLM_GGUF"])
    cache = os.environ.get("OTCDESK_MODEL_CACHE") or str(Path.home() / ".cache" / "otcdesk" / "models")
    return Path(cache) / MODEL_FILENAME


def _missing() -> list[str]:
    importlib.invalidate_caches()
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    model = _model_path()
    if not (model.is_file() and model.stat().st_size > 0):
        missing.append(f"model {model}")
    return missing


def _unavailable(reason: str) -> None:
    """Fail under CI (the LLM path must be exercised there), skip elsewhere, saying how to enable it."""
    if _in_ci():
        pytest.fail(f"local LLM server unavailable under CI: {reason}", pytrace=False)
    msg = f"local LLM server unavailable ({reason}); enable with: bash scripts/setup_llm.sh"
    print(f"\n[llm_fixture] {msg}", file=sys.stderr)
    pytest.skip(msg)


def _ensure_installed() -> None:
    global _setup_attempted
    missing = _missing()
    if not missing:
        return
    if not _in_ci():
        _unavailable("missing: " + ", ".join(missing))
    if not _setup_attempted:
        _setup_attempted = True
        print(f"\n[llm_fixture] CI: missing {missing}; running {SETUP_SCRIPT}", file=sys.stderr, flush=True)
        env = dict(os.environ, OTCDESK_PYTHON=sys.executable)
        rc = subprocess.run(["bash", str(SETUP_SCRIPT)], env=env, cwd=REPO_ROOT, timeout=1800).returncode
        if rc != 0:
            _unavailable(f"scripts/setup_llm.sh exited {rc}")
    missing = _missing()
    if missing:
        _unavailable("still missing after setup: " + ", ".join(missing))


def _threads() -> str:
    # llama.cpp's worker threads spin-wait on each other: on cores shared with other busy processes (developer
    # machines here) 2 threads run 2-3x slower than 1, while on CI's otherwise idle cores 2 are ~1.5x faster.
    return os.environ.get("OTCDESK_LLM_THREADS") or ("2" if _in_ci() else "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(log_path: Path, extra_args: list[str]) -> LocalLLMServer:
    _ensure_installed()
    port = _free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(_model_path()), "--model_alias", MODEL_ALIAS,
        "--chat_format", "gemma",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", _threads(), "--n_ctx", "4096",
        *extra_args,
    ]
    log = open(log_path, "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=REPO_ROOT, start_new_session=True)
    log.close()
    server = LocalLLMServer(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL_ALIAS, process=proc,
                            log_path=log_path)
    while True:
        if proc.poll() is not None:
            _unavailable(f"server exited with {proc.returncode}; log tail:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base_url + "/models", timeout=2) as resp:
                json.load(resp)
            break
        except OSError:
            if time.monotonic() - t0 > STARTUP_TIMEOUT_S:
                _stop(proc)
                _unavailable(f"server not ready after {STARTUP_TIMEOUT_S:.0f} s; log tail:\n{server.log_tail()}")
            time.sleep(0.25)
    server.startup_s = time.monotonic() - t0
    return server


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """A running llama.cpp chat server with the tiny Gemma model; `.client` is an `app.llm.LLMClient`."""
    from otcdesk.app.llm import LLMClient

    server = _start(tmp_path_factory.mktemp("llm_server") / "server.log", [])
    # The tiny model on 2 shared cores: allow slow answers, the tests set their own tighter timeouts.
    server.client = LLMClient(server.base_url, server.model, "sk-local", timeout=60.0, flavor="llama_cpp",
                              merge_system=True)  # the `gemma` chat format drops system messages
    try:
        yield server
    finally:
        _stop(server.process)


@pytest.fixture(scope="session")
def embed_server(tmp_path_factory):
    """The same model served in embedding mode (mean pooling); `.embedder` is an `app.llm.Embedder`."""
    from otcdesk.app.llm import Embedder

    server = _start(tmp_path_factory.mktemp("embed_server") / "server.log", ["--embedding", "true"])
    server.embedder = Embedder(server.base_url, server.model, "sk-local", timeout=60.0)
    try:
        yield server
    finally:
        _stop(server.process)
