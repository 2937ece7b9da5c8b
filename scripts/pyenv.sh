#!/usr/bin/env bash
# Creates (once) the Python venv the tests need: the AWS emulator and the SQL engine.
# Prints the venv's folder. Idempotent: reinstalls only when requirements.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TRAILHOUND_VENV:-$PWD/.venv}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum scripts/requirements.txt | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
