#!/usr/bin/env bash
# Static checks of the deployment (terraform/, Dockerfile), for machines where Terraform's
# providers cannot be downloaded:
#
#   1. every .tf file parses (python-hcl2), each failure named with its file;
#   2. checkov passes on terraform/ (framework terraform) and on the Dockerfile, with no
#      failed check: a check that must not apply is skipped in the code itself with
#      `#checkov:skip=CKV_...:<reason>`, and the skips are listed here with their reasons;
#   3. the Dockerfile's default TRAILHOUND_VERSION is Cargo.toml's version.
#
# The tools live in a venv under ${TRAILHOUND_TF_VENV:-$HOME/.cache/trailhound/tf-venv},
# made on first use and remade when the pins below change. checkov depends on bc-python-hcl2,
# a fork that installs a Python package also named `hcl2`, so python-hcl2 goes into its own
# folder inside the venv (pip --target) and step 1 puts only that folder on PYTHONPATH.
#
# Exit status: 0 when everything passes, 1 when a check fails, 2 when the tools cannot be set up.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION="3.3.30"
PYTHON_HCL2_VERSION="8.1.4"

venv="${TRAILHOUND_TF_VENV:-$HOME/.cache/trailhound/tf-venv}"
hcl2_dir="$venv/python-hcl2"
stamp="$venv/.pins"
pins="checkov==$CHECKOV_VERSION python-hcl2==$PYTHON_HCL2_VERSION"
python="${PYTHON:-python3}"

started=$(date +%s)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
  echo "check_terraform: installing $pins into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" || exit 2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION" || exit 2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --target "$hcl2_dir" "python-hcl2==$PYTHON_HCL2_VERSION" || exit 2
  echo "$pins" > "$stamp"
  echo "check_terraform: tools installed in $(( $(date +%s) - started ))s" >&2
fi

status=0

# 1. Every .tf file parses.
echo "== parse: every .tf file under terraform/ with python-hcl2 $PYTHON_HCL2_VERSION"
if ! PYTHONPATH="$hcl2_dir" "$venv/bin/python" - <<'PY'
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
  echo "== checkov $CHECKOV_VERSION: $name"
  # --skip-download: no call to the vendor's platform (no network, no API key needed).
  # Its exit status is not used: the report decides (a failed check, or no report at all).
  "$venv/bin/checkov" "$@" --compact --skip-download --skip-path "/\.terraform/" \
    --output json --output-file-path "$report/$name" > "$report/$name.log" 2>&1 || true
  if [ ! -s "$report/$name/results_json.json" ]; then
    echo "checkov wrote no report for $name; its output:" >&2
    cat "$report/$name.log" >&2
    status=1
  fi
}
run_checkov terraform -d terraform --framework terraform
run_checkov dockerfile -f Dockerfile --framework dockerfile

"$venv/bin/python" - "$report" <<'PY' || status=1
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

echo "check_terraform: $([ "$status" = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - started ))s"
exit "$status"
