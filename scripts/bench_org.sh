#!/usr/bin/env bash
# Organization scale (issue 7, part 4): a simulated hourly run over an organization of 1,000
# accounts on the local AWS emulator, with Athena's latency and concurrent-query quota
# injected (examples/org_scale.rs). One command: builds the example in release mode, starts the
# emulator, runs the first hour and a steady-state hour, prints the figures and writes them
# between <!-- org:begin --> and <!-- org:end --> in docs/PERFORMANCE.md (nothing else of the
# file is touched).
#
# Arguments go to the example, e.g. `--accounts 200`, `--concurrency 25 --quota 25`,
# `--running-ms 1000-3000`, `--no-rules`. ORG_NO_DOC=1 leaves docs/PERFORMANCE.md alone.
# Exits non-zero when an account is lost or an account-hour did not get exactly one activity
# query (the figures are then printed but not written).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --example org_scale

read -r url pid < <(bash scripts/emulator.sh)
trap 'kill "$pid" 2>/dev/null || true' EXIT
export TRAILHOUND_AWS_ENDPOINT="$url" AWS_ENDPOINT_URL="$url" AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
status=0
/usr/bin/time -f '%M %e' -o "$work/time" \
  target/release/examples/org_scale --emulator-pid "$pid" --markdown "$work/body.md" "$@" \
  || status=$?
read -r max_kb elapsed < "$work/time" || true

if [ "$status" -ne 0 ]; then
  echo "bench_org.sh: the run failed (exit $status); docs/PERFORMANCE.md is left as it was" >&2
  exit "$status"
fi

# The commit, read from .git without running git.
commit="unknown"
if [ -f .git/HEAD ]; then
  head="$(cat .git/HEAD)"
  if [[ "$head" == ref:* ]]; then
    ref="${head#ref: }"
    if [ -f ".git/$ref" ]; then
      commit="$(cut -c1-12 ".git/$ref")"
    elif [ -f .git/packed-refs ]; then
      commit="$(awk -v r="$ref" '$2 == r { print substr($1, 1, 12) }' .git/packed-refs)"
    fi
  else
    commit="${head:0:12}"
  fi
fi
cpu="$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
cores="$(nproc)"
memory="$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
venv="$(bash scripts/pyenv.sh)"
moto="$("$venv/bin/python" -c 'import moto; print(moto.__version__)')"
args="${*:-}"

section="$work/section.md"
{
  echo "## Organization scale"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on ${cores} cores (${cpu}, ${memory} RAM), commit \`${commit}\`, with moto ${moto} as the emulator: \`bash scripts/bench_org.sh${args:+ $args}\`. The whole process (setup included) peaked at $((max_kb / 1024)) MB RSS and ran ${elapsed} s."
  echo
  cat "$work/body.md"
} > "$section"

if [ "${ORG_NO_DOC:-}" != "1" ]; then
  python3 - docs/PERFORMANCE.md "$section" <<'PY'
import sys
path, section = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
begin, end = "<!-- org:begin -->", "<!-- org:end -->"
i, j = text.find(begin), text.find(end)
if i < 0 or j < i:
    sys.exit(f"{path}: the {begin} ... {end} markers are missing")
body = open(section, encoding="utf-8").read().strip()
text = text[: i + len(begin)] + "\n" + body + "\n" + text[j:]
open(path, "w", encoding="utf-8").write(text)
PY
  echo "bench_org.sh: figures written to docs/PERFORMANCE.md" >&2
fi
