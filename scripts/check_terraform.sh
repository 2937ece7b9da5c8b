#!/usr/bin/env bash
# Static checks of the deployment (terraform/, Dockerfile), for machines where Terraform's
# providers cannot be downloaded. scripts/test.sh (and so CI) runs it.
#
#   1. every .tf file parses (python-hcl2), each failure named with its file;
#   2. checkov passes on terraform/ (framework terraform) and on the Dockerfile, with no
#      failed check: a check that must not apply is skipped in the code itself with
#      `#checkov:skip=CKV_...:<reason>`, and the skips are listed here with their reasons;
#   3. the Dockerfile's default TRAILHOUND_VERSION is Cargo.toml's version;
#   4. the permission test (scripts/check_permissions.py): the task role grants every AWS
#      operation src/ calls, on its resources, and nothing else.
#
# The tools come from scripts/pyenv.sh: python-hcl2 from the tests' venv
# (scripts/requirements.txt), checkov from its own (scripts/requirements-checkov.txt).
#
# Exit status: 0 when everything passes, 1 when a check fails, 2 when the tools cannot be set up.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
venv="$(bash scripts/pyenv.sh)" || { echo "check_terraform: cannot set up the tests' venv" >&2; exit 2; }
checkov_venv="$(bash scripts/pyenv.sh checkov)" || { echo "check_terraform: cannot set up checkov's venv" >&2; exit 2; }
python="$venv/bin/python"
hcl2_version="$("$python" -c 'import importlib.metadata as m; print(m.version("python-hcl2"))')"
checkov_version="$("$checkov_venv/bin/checkov" --version)"

status=0

# 1. Every .tf file parses.
echo "== parse: every .tf file under terraform/ with python-hcl2 $hcl2_version"
if ! "$python" - <<'PY'
import pathlib, sys

import hcl2

files = sorted(p for p in pathlib.Path("terraform").rglob("*.tf") if ".terraform" not in p.parts)
if not files:
    print("parse: no .tf file found under terraform/", file=sys.stderr)
    sys.exit(1)
bad = 0
for path in files:
    try:
        with path.open(encoding="utf-8") as f:
            hcl2.load(f)
    except Exception as e:  # the parser raises several types; each names the place
        bad += 1
        print(f"parse: {path}: {type(e).__name__}: {e}", file=sys.stderr)
print(f"parse: {len(files) - bad} of {len(files)} files parse")
sys.exit(1 if bad else 0)
PY
then
  status=1
fi

# 2. checkov, once over terraform/ and once over the Dockerfile, each writing a JSON report;
# the summary below names every failed check and lists every skip with its reason.
report="$(mktemp -d)"
trap 'rm -rf "$report"' EXIT
run_checkov() { # NAME ARGS...
  local name="$1"
  shift
  echo "== checkov $checkov_version: $name"
  # --skip-download: no call to the vendor's platform (no network, no API key needed).
  # Its exit status is not used: the report decides (a failed check, or no report at all).
  "$checkov_venv/bin/checkov" "$@" --compact --skip-download --skip-path "/\.terraform/" \
    --output json --output-file-path "$report/$name" > "$report/$name.log" 2>&1 || true
  if [ ! -s "$report/$name/results_json.json" ]; then
    echo "checkov wrote no report for $name; its output:" >&2
    cat "$report/$name.log" >&2
    status=1
  fi
}
run_checkov terraform -d terraform --framework terraform
run_checkov dockerfile -f Dockerfile --framework dockerfile

"$python" - "$report" <<'PY' || status=1
import json, pathlib, sys

totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
failed, skips = [], []
reports = sorted(pathlib.Path(sys.argv[1]).glob("*/results_json.json"))
for path in reports:
    data = json.loads(path.read_text())
    for report in data if isinstance(data, list) else [data]:
        summary = report.get("summary", {})
        for k in totals:
            totals[k] += summary.get(k, 0)
        results = report.get("results", {})
        for c in results.get("failed_checks", []):
            lines = "-".join(str(n) for n in c.get("file_line_range", []))
            failed.append(f"{c['check_id']} {c.get('check_name', '')}: {c.get('resource', '')} ({c.get('file_path', '')}:{lines})")
        for c in results.get("skipped_checks", []):
            reason = (c.get("check_result") or {}).get("suppress_comment") or "(no reason given)"
            skips.append(f"{c['check_id']} on {c.get('resource', '')} ({c.get('file_path', '')}): {reason}")
for line in failed:
    print(f"  FAILED {line}")
for line in sorted(skips):
    print(f"  skipped {line}")
print(f"checkov: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped, "
      f"{totals['parsing_errors']} parsing errors ({len(reports)} reports)")
sys.exit(1 if totals["failed"] or totals["parsing_errors"] or len(reports) < 2 else 0)
PY

# 3. The image label's default version is the crate's.
echo "== Dockerfile version"
cargo_version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
docker_version="$(sed -n 's/^ARG TRAILHOUND_VERSION=\(.*\)$/\1/p' Dockerfile | head -n 1)"
if [ -z "$cargo_version" ] || [ "$cargo_version" != "$docker_version" ]; then
  echo "Dockerfile: ARG TRAILHOUND_VERSION=$docker_version, but Cargo.toml's version is $cargo_version" >&2
  status=1
else
  echo "Dockerfile: TRAILHOUND_VERSION=$docker_version is Cargo.toml's version"
fi

# 4. The permission test. Exit 2 (it could not read something) is kept: it is not a pass.
echo "== permissions: the task role against the AWS operations src/ calls"
perm=0
"$python" scripts/check_permissions.py || perm=$?
if [ "$perm" = 2 ]; then
  exit 2
elif [ "$perm" != 0 ]; then
  status=1
fi

echo "check_terraform: $([ "$status" = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - started ))s"
exit "$status"
