#!/usr/bin/env bash
# The scan benchmark of issue 7, in one command:
#
#   bash scripts/bench.sh            generated corpus of >= 1 GB of gzip (and one 10x smaller)
#                                    plus the real logs; writes docs/PERFORMANCE.md
#   bash scripts/bench.sh --quick    a one-week generated corpus plus the real logs; prints only
#
# On the same files it times (wall seconds and peak RSS, by /usr/bin/time):
#   trailhound   `trailhound -q scan --logs DIR --format csv`: the distinct Activity rows
#   jq           `zcat | jq` computing the same distinct rows (scripts/bench/distinct.jq), one
#                batch of files per core (xargs -P), then `sort -u`
#   duckdb       DuckDB's read_json and SQL computing them (scripts/bench/duckdb_distinct.py)
#   floor        decompressing the files with libdeflate on all cores and touching every byte
#                (examples/floor.rs): what any tool must at least spend
# checks that the three tools' distinct rows agree (exit 1 if not, on generated logs), prints
# the table, and (full run) writes it between the scan markers of docs/PERFORMANCE.md, with the
# Athena/S3 cost model (scripts/bench/cost.py: a few minutes on a sample of the large corpus,
# with DuckDB and a local AWS emulator of its own) between the cost markers.
#
# Environment:
#   TRAILHOUND_BENCH_DIR   where corpora and results go (default /work/bench; not the repo)
#   TRAILHOUND_REAL_DATA   the real logs (default ../shared/data/cloudtrail from the repo root)
#   TRAILHOUND_VENV        the Python venv (default .venv, made by scripts/pyenv.sh)
# Corpora already generated (a .bench-complete file in their folder) are reused.
#
#   bash scripts/bench.sh --reuse RESULTS_DIR
# times trailhound and the floor again but takes jq's and DuckDB's rows and times from an
# earlier full run on the same corpora (their speed does not depend on trailhound's code, and
# they take most of the run's 20 minutes); the agreement is checked again on the new rows.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

quick=0
write_docs=1
reuse=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; write_docs=0 ;;
    --no-docs) write_docs=0 ;;
    --reuse) reuse=${2:?--reuse needs a results folder}; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (use --quick, --no-docs or --reuse RUN_DIR)" >&2; exit 2 ;;
  esac
  shift
done

bench_dir="${TRAILHOUND_BENCH_DIR:-/work/bench}"
real_data="${TRAILHOUND_REAL_DATA:-$repo/../shared/data/cloudtrail}"
mkdir -p "$bench_dir"
bench_dir="$(cd "$bench_dir" && pwd)"
case "$bench_dir/" in
  "$repo"/*) echo "bench.sh: TRAILHOUND_BENCH_DIR must be outside the repository" >&2; exit 2 ;;
esac
cores="$(nproc)"

say() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------- tools
need_apt() {
  # need_apt COMMAND PACKAGE: installs the Debian package when the command is missing.
  if ! command -v "$1" >/dev/null 2>&1; then
    say "installing $2 (for $1)"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2 && apt-get install -y -qq "$2" >&2
    else
      sudo apt-get update -qq >&2 && sudo apt-get install -y -qq "$2" >&2
    fi
  fi
}
if [ ! -x /usr/bin/time ]; then
  need_apt /usr/bin/time time
fi
need_apt jq jq
need_apt zcat gzip

say "python venv (DuckDB)"
venv="$(bash scripts/pyenv.sh | tail -n 1)"
py="$venv/bin/python"

say "building (release)"
# One invocation for all, so that the library is compiled once.
cargo build --release --locked --bins --example floor --example cost_probe >&2
th="$repo/target/release/trailhound"
floor="$repo/target/release/examples/floor"
probe="$repo/target/release/examples/cost_probe"

# ------------------------------------------------------------------------------- corpora
generate() {
  # generate DIR SEED DAYS: one organisation's logs in CloudTrail's S3 layout under DIR.
  local dir=$1 seed=$2 days=$3
  if [ -f "$dir/.bench-complete" ]; then
    return 0
  fi
  say "generating $dir (seed $seed, $days days)"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$th" demo --generate-only --keep "$dir" --seed "$seed" --days "$days" > "$dir/.manifest.tmp"
  mv "$dir/.manifest.tmp" "$dir/.bench-complete"
}

list_files() {
  # The files trailhound's scan reads under $1 (CloudTrail-named logs and files with a log
  # extension, no digests or insights), sorted by path.
  find "$1" -type f \( -iname '*.json' -o -iname '*.gz' -o -iname '*.jsonl' -o -iname '*.ndjson' \
      -o -iname '*.cloudtrail' -o -name '*_CloudTrail_*' \) \
    ! -path '*/CloudTrail-Digest/*' ! -path '*/CloudTrail-Insight/*' \
    ! -name '*_CloudTrail-Digest_*' ! -name '*_CloudTrail-Insight_*' | LC_ALL=C sort
}

# corpora: NAME|ROOT|STRICT|DESCRIPTION
corpora=()
if [ "$quick" = 1 ]; then
  generate "$bench_dir/quick/seed-201" 201 7
  corpora+=("quick|$bench_dir/quick|1|generated: 1 organisation (seed 201) x 7 days")
else
  for seed in 1 2 3 4 5 6 7 8; do
    generate "$bench_dir/large/seed-$seed" "$seed" 60
  done
  generate "$bench_dir/small/seed-101" 101 48
  corpora+=("large|$bench_dir/large|1|generated: 8 organisations (seeds 1-8) x 60 days")
  corpora+=("small|$bench_dir/small|1|generated: 1 organisation (seed 101) x 48 days (a tenth of large)")
fi
if [ -d "$real_data" ]; then
  corpora+=("real|$(cd "$real_data" && pwd)|0|real: the public CloudTrail sets of ../shared/data/cloudtrail")
else
  echo "bench.sh: no real logs at $real_data (set TRAILHOUND_REAL_DATA); skipping them" >&2
fi

# ------------------------------------------------------------------------------ the runs
timed() {
  # timed OUT.time COMMAND...: runs COMMAND, writing "seconds peak_rss_kb" to OUT.time (wall
  # time to the microsecond; /usr/bin/time gives the peak RSS, its own %e only centiseconds).
  local out=$1 t0 t1
  shift
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$out.rss" "$@"
  t1=$(date +%s%N)
  printf '%s %s\n' "$(( (t1 - t0) / 1000 ))e-6" "$(tail -n 1 "$out.rss")" > "$out"
}

run_dir="$bench_dir/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run_dir"
"$py" scripts/bench/report.py --run "$run_dir" --save-commit
status=0
for entry in "${corpora[@]}"; do
  IFS='|' read -r name root strict description <<< "$entry"
  out="$run_dir/$name"
  mkdir -p "$out"
  say "corpus $name: $root"
  list_files "$root" > "$out/files.list"
  tr '\n' '\0' < "$out/files.list" > "$out/files.list0"
  echo "  $(wc -l < "$out/files.list") files" >&2

  # Other work on the machine skews every figure: the report shows the load it started with.
  cut -d' ' -f1-3 /proc/loadavg > "$out/loadavg" 2>/dev/null || echo unknown > "$out/loadavg"
  # Warm the page cache so that no tool pays for the first read from disk.
  "$floor" "$out/files.list" > /dev/null

  say "[$name] floor (libdeflate, $cores threads)"
  timed "$out/floor.time" "$floor" "$out/files.list" > "$out/floor.json"
  cat "$out/floor.json" >&2

  say "[$name] trailhound scan"
  (cd "$out" && timed "$out/trailhound.time" "$th" -q scan --logs "$root" --format csv > "$out/trailhound.csv")

  if [ -n "$reuse" ]; then
    say "[$name] jq and DuckDB: reused from $reuse/$name"
    for f in jq.time jq.time.rss jq.jsonl duckdb.time duckdb.time.rss duckdb.jsonl duckdb.json; do
      cp "$reuse/$name/$f" "$out/$f"
    done
    echo "$reuse" > "$out/reused"
  else
  say "[$name] zcat | jq ($cores processes)"
  # shellcheck disable=SC2016 # the inner script's arguments expand in the inner shell
  timed "$out/jq.time" bash -c '
    set -o pipefail
    xargs -0 -P "$1" -n 500 bash "$2" < "$3" | LC_ALL=C sort -u > "$4"
  ' jq-bench "$cores" "$repo/scripts/bench/jq_batch.sh" "$out/files.list0" "$out/jq.jsonl"

  say "[$name] duckdb read_json ($cores threads)"
  timed "$out/duckdb.time" "$py" scripts/bench/duckdb_distinct.py --list "$out/files.list" \
    --out "$out/duckdb.jsonl" --threads "$cores" > "$out/duckdb.json"
  cat "$out/duckdb.json" >&2
  fi

  say "[$name] do the distinct rows agree?"
  strict_flag=()
  if [ "$strict" = 1 ]; then strict_flag=(--strict); fi
  if ! "$py" scripts/bench/compare.py --trailhound "$out/trailhound.csv" --jq "$out/jq.jsonl" \
      --duckdb "$out/duckdb.jsonl" --json "$out/agreement.json" "${strict_flag[@]}"; then
    status=1
  fi
  printf '%s\n%s\n' "$root" "$description" > "$out/corpus.txt"
done

# ----------------------------------------------------------------------------- reporting
names=()
for entry in "${corpora[@]}"; do names+=("${entry%%|*}"); done
say "results ($run_dir)"
report_args=(--run "$run_dir" --corpora "${names[@]}")
if [ "$write_docs" = 1 ]; then
  report_args+=(--docs "$repo/docs/PERFORMANCE.md")
fi
"$py" scripts/bench/report.py "${report_args[@]}"

if [ "$quick" = 0 ]; then
  say "cost model (Athena / S3) on $bench_dir/large"
  cost_args=(--root "$bench_dir/large" --probe "$probe")
  if [ "$write_docs" = 1 ]; then
    cost_args+=(--docs "$repo/docs/PERFORMANCE.md")
  fi
  cost_status=0
  "$py" scripts/bench/cost.py "${cost_args[@]}" || cost_status=$?
  if [ "$cost_status" != 0 ]; then
    echo "bench.sh: the cost model failed or one of its checks did (see above)" >&2
  fi
fi

if [ "$status" != 0 ]; then
  echo "bench.sh: the tools' distinct rows differ on generated logs (see above)" >&2
fi
if [ "$status" = 0 ] && [ "${cost_status:-0}" != 0 ]; then
  status=1
fi
exit "$status"
