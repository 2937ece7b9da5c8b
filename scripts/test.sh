#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run calls this script).
# It needs nothing set up by hand:
# - the real CloudTrail samples are found beside the project (../shared/data/cloudtrail)
#   unless TRAILHOUND_REAL_DATA points elsewhere;
# - a Python venv (.venv) gets the AWS emulator (moto) and the SQL engine (DuckDB, sqlglot);
# - the emulator runs on a loopback port for the duration of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TRAILHOUND_REAL_DATA:-}" ]; then
  export TRAILHOUND_REAL_DATA="$(cd .. && pwd)/shared/data/cloudtrail"
fi
if [ ! -d "$TRAILHOUND_REAL_DATA" ]; then
  echo "test.sh: the real CloudTrail samples are not at $TRAILHOUND_REAL_DATA;" >&2
  echo "         set TRAILHOUND_REAL_DATA to the shared/data/cloudtrail folder" >&2
  exit 2
fi

export TRAILHOUND_VENV="$(bash scripts/pyenv.sh)"
read -r endpoint moto_pid < <(bash scripts/emulator.sh)
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
export TRAILHOUND_AWS_ENDPOINT="$endpoint"
# Credentials for the emulator only; it accepts any.
export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

cargo test --all-targets --locked "$@"
