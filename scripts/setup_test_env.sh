#!/usr/bin/env bash
# Everything the test suite needs beyond the Python packages, idempotent and quick when warm:
# Debian's chromium for the console's browser test, and the local LLM server (cached wheel + model).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# CJK fonts so the browser's screenshots and the generated PDFs show Chinese (shared with `make run`)
bash "$REPO/scripts/setup_fonts.sh"
# chromium for the browser test
NEED=()
command -v chromium >/dev/null 2>&1 || NEED+=(chromium)
if (( ${#NEED[@]} )); then
    echo "[setup_test_env] installing ${NEED[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${NEED[@]}" >/dev/null
fi
bash "$REPO/scripts/setup_llm.sh"
