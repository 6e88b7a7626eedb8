#!/usr/bin/env bash
# Fonts for the trade confirmation PDF (交易确认书): a CJK font (Droid Sans Fallback) and a Latin one for its
# digits (DejaVu Sans). Idempotent; without apt-get it only says what is missing (the service then refuses to
# draw a confirmation and names the font to install, or use OTCDESK_CJK_FONT=/path/to/font.ttf).
set -euo pipefail
NEED=()
[[ -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ]] || NEED+=(fonts-droid-fallback)
[[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || NEED+=(fonts-dejavu-core)
(( ${#NEED[@]} )) || exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "[setup_fonts] missing ${NEED[*]} and no apt-get: install a CJK font or set OTCDESK_CJK_FONT" >&2
    exit 0
fi
echo "[setup_fonts] installing ${NEED[*]}"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${NEED[@]}" >/dev/null
