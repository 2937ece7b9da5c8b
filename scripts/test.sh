#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run calls this script).
# It needs nothing set up by hand:
# - the real CloudTrail samples are found beside the project (../shared/data/cloudtrail)
#   unless TRAILHOUND_REAL_DATA points elsewhere;
# - a Python venv (.venv) gets the AWS emulator (moto), the SQL engine (DuckDB, sqlglot) and
#   python-hcl2; checkov gets a venv of its own (.venv/checkov);
# - the emulator runs on a loopback port for the duration of the tests;
# - the deployment's static checks run first (scripts/check_terraform.sh: every .tf file
#   parses, checkov, the permission test). Their failure fails the run, after the cargo tests
#   have still run, so that one red run shows every failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TRAILHOUND_REAL_DATA:-}" ]; then
  TRAILHOUND_REAL_DATA="$(cd .. && pwd)/shared/data/cloudtrail"
  export TRAILHOUND_REAL_DATA
fi
if [ ! -d "$TRAILHOUND_REAL_DATA" ]; then
  echo "test.sh: the real CloudTrail samples are not at $TRAILHOUND_REAL_DATA;" >&2
  echo "         set TRAILHOUND_REAL_DATA to the shared/data/cloudtrail folder" >&2
  exit 2
fi

# Assigned apart from `export`, so that a failed install stops the run here.
TRAILHOUND_VENV="$(bash scripts/pyenv.sh)"
export TRAILHOUND_VENV

terraform_status=0
bash scripts/check_terraform.sh || terraform_status=$?
# Licences and duplicate versions of the dependencies, offline (scripts/dependencies.toml).
deps_status=0
"$TRAILHOUND_VENV/bin/python" scripts/check_dependencies.py || deps_status=$?

read -r endpoint moto_pid < <(bash scripts/emulator.sh)
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
export TRAILHOUND_AWS_ENDPOINT="$endpoint"
# Credentials for the emulator only; it accepts any.
export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

cargo_status=0
cargo test --all-targets --locked "$@" || cargo_status=$?
if [ "$terraform_status" != 0 ]; then
  echo "test.sh: the deployment checks failed (scripts/check_terraform.sh exited $terraform_status; see above)" >&2
fi
if [ "$deps_status" != 0 ]; then
  echo "test.sh: the dependency check failed (scripts/check_dependencies.py exited $deps_status; see above)" >&2
fi
if [ "$cargo_status" != 0 ]; then
  exit "$cargo_status"
fi
if [ "$terraform_status" != 0 ]; then
  exit "$terraform_status"
fi
exit "$deps_status"
