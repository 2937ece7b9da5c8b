#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run calls this script).
# It needs nothing set up by hand: the real CloudTrail samples are found beside the project
# (../shared/data/cloudtrail) unless TRAILHOUND_REAL_DATA points elsewhere.
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

cargo test --all-targets --locked "$@"
