#!/usr/bin/env bash
# Creates (once) a Python venv and prints its folder. Idempotent: reinstalls only when its
# requirements file changes.
#
#   bash scripts/pyenv.sh           the tests' venv (.venv, or $TRAILHOUND_VENV):
#                                   scripts/requirements.txt (emulator, SQL engine, python-hcl2)
#   bash scripts/pyenv.sh checkov   checkov's own venv (.venv/checkov, or
#                                   $TRAILHOUND_CHECKOV_VENV): scripts/requirements-checkov.txt,
#                                   kept apart because its pins clash with the tests' venv
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-tests}" in
  tests)
    venv="${TRAILHOUND_VENV:-$PWD/.venv}"
    requirements=scripts/requirements.txt
    ;;
  checkov)
    venv="${TRAILHOUND_CHECKOV_VENV:-$PWD/.venv/checkov}"
    requirements=scripts/requirements-checkov.txt
    ;;
  *)
    echo "pyenv.sh: unknown venv '$1'; use no argument (the tests' venv) or 'checkov'" >&2
    exit 2
    ;;
esac
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "pyenv.sh: installing $requirements into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
