#!/usr/bin/env python3
"""Turns one run of scripts/bench.sh into the scan table: printed, and with --docs written
between the `<!-- scan:begin -->` and `<!-- scan:end -->` markers of docs/PERFORMANCE.md
(nothing outside the markers is touched).

    report.py --run RUN_DIR --corpora NAME... [--docs docs/PERFORMANCE.md]

RUN_DIR/NAME/ holds, per corpus: floor.json, TOOL.time ("seconds peak_rss_kb"), duckdb.json,
agreement.json and corpus.txt (root, description), as bench.sh leaves them.
"""

import argparse
import datetime
import json
import os
import platform
import sys

TOOLS = [
    ("trailhound", "trailhound `scan`"),
    ("jq", "`zcat \\| jq` (xargs -P)"),
    ("duckdb", "DuckDB `read_json`"),
    ("floor", "floor: libdeflate + read"),
]

# What issue 7 asks of the scan on 2 cores.
TARGET_VS_DUCKDB = 15.0
TARGET_VS_JQ = 5.0
TARGET_VS_FLOOR = 2.0
TARGET_RSS_MB = 256.0
TARGET_RSS_GROWTH = 1.3


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = 0
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "ram_gb": ram / 2**30, "kernel": platform.release()}


def commit(repo):
    """The checked-out commit, read from .git without running git."""
    git = os.path.join(repo, ".git")
    try:
        if os.path.isfile(git):  # a worktree: "gitdir: PATH"
            with open(git, encoding="utf-8") as f:
                git = f.read().split(":", 1)[1].strip()
        with open(os.path.join(git, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
        if not head.startswith("ref:"):
            return head[:12]
        ref = head.split(None, 1)[1]
        path = os.path.join(git, ref)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return f.read().strip()[:12]
        with open(os.path.join(git, "packed-refs"), encoding="utf-8") as f:
            for line in f:
                if line.rstrip().endswith(" " + ref):
                    return line.split()[0][:12]
    except (OSError, IndexError):
        pass
    return "unknown"


def load(run, name):
    d = os.path.join(run, name)

    def read_json(file):
        with open(os.path.join(d, file), encoding="utf-8") as f:
            return json.load(f)

    times = {}
    for tool, _ in TOOLS:
        with open(os.path.join(d, f"{tool}.time"), encoding="utf-8") as f:
            # /usr/bin/time may print a "Command exited" line first.
            last = [l for l in f.read().splitlines() if l.strip()][-1].split()
        times[tool] = (float(last[0]), int(last[1]) / 1024)
    with open(os.path.join(d, "corpus.txt"), encoding="utf-8") as f:
        root, description = f.read().splitlines()[:2]
    try:
        with open(os.path.join(d, "loadavg"), encoding="utf-8") as f:
            load = f.read().strip()
    except OSError:
        load = "unknown"
    try:
        with open(os.path.join(d, "reused"), encoding="utf-8") as f:
            reused = os.path.basename(f.read().strip().rstrip("/"))
    except OSError:
        reused = None
    return {
        "name": name,
        "root": root,
        "description": description,
        "floor": read_json("floor.json"),
        "duckdb": read_json("duckdb.json"),
        "agreement": read_json("agreement.json"),
        "times": times,
        "load": load,
        "reused": reused,
    }


def mb(n):
    return n / 1e6


def corpus_markdown(c):
    f = c["floor"]
    th_s = c["times"]["trailhound"][0]
    fl_s = c["times"]["floor"][0]
    json_mb = mb(f["bytes_out"])
    lines = [
        f"**{c['name']}**: {c['description']}. {f['files']:,} files, "
        f"{mb(f['bytes_in']):,.1f} MB as stored, {json_mb:,.1f} MB of JSON, "
        f"{c['duckdb']['records']:,} records with a principal."
        + (f" Load average when it started: {c['load']}." if c["load"] != "unknown" else ""),
        "",
        "| tool | seconds | MB/s of JSON | × trailhound | × floor | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for tool, label in TOOLS:
        s, rss = c["times"][tool]
        rate = json_mb / s if s > 0 else float("inf")
        lines.append(
            f"| {label} | {s:.2f} | {rate:,.0f} | {s / th_s if th_s else 0:.2f} "
            f"| {s / fl_s if fl_s else 0:.2f} | {rss:,.0f} |"
        )
    a = c["agreement"]
    rows = a["rows"]
    differ = [f"{v:,} in {k.split('-')[0]} and not in {k.split('-')[1]}"
              for k, v in a["only"].items() if v]
    lines += [
        "",
        f"Distinct rows: trailhound {rows.get('trailhound', 0):,}, jq {rows.get('jq', 0):,}, "
        f"DuckDB {rows.get('duckdb', 0):,}: "
        + ("the three sets are equal." if a["equal"] else "; ".join(differ) + "."),
    ]
    if c.get("note"):
        lines += ["", c["note"]]
    return "\n".join(lines)


def targets(corpora):
    """The issue's targets, on the largest generated corpus (and small vs large for RSS)."""
    by = {c["name"]: c for c in corpora}
    main = by.get("large") or by.get("quick")
    if not main:
        return []
    t = {k: v[0] for k, v in main["times"].items()}
    rss = main["times"]["trailhound"][1]
    out = []

    def check(ok, text):
        out.append(f"- {'met' if ok else 'NOT met'}: {text}")

    check(t["duckdb"] / t["trailhound"] >= TARGET_VS_DUCKDB,
          f"≥ {TARGET_VS_DUCKDB:.0f}× faster than DuckDB — {t['duckdb'] / t['trailhound']:.1f}×")
    check(t["jq"] / t["trailhound"] >= TARGET_VS_JQ,
          f"≥ {TARGET_VS_JQ:.0f}× faster than jq — {t['jq'] / t['trailhound']:.1f}×")
    check(t["trailhound"] / t["floor"] <= TARGET_VS_FLOOR,
          f"within {TARGET_VS_FLOOR:.0f}× of the floor — {t['trailhound'] / t['floor']:.2f}×")
    check(rss < TARGET_RSS_MB, f"peak RSS under {TARGET_RSS_MB:.0f} MB — {rss:.0f} MB")
    if "large" in by and "small" in by:
        small = by["small"]["times"]["trailhound"][1]
        growth = by["large"]["floor"]["bytes_in"] / max(1, by["small"]["floor"]["bytes_in"])
        check(rss / small <= TARGET_RSS_GROWTH,
              f"peak RSS flat (≤ {TARGET_RSS_GROWTH}×) when the corpus grows {growth:.1f}× — "
              f"{small:.0f} MB → {rss:.0f} MB ({rss / small:.2f}×)")
    return out


def markdown(corpora, m, sha, run):
    # bench.sh names each run's folder by its start time.
    try:
        started = datetime.datetime.strptime(os.path.basename(os.path.normpath(run)),
                                             "%Y%m%dT%H%M%SZ")
    except ValueError:
        started = datetime.datetime.now(datetime.timezone.utc)
    when = started.strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "## Scan: trailhound against jq, DuckDB and the decompression floor",
        "",
        f"Measured {when} at commit `{sha}` by `bash scripts/bench.sh`, on {m['cores']} cores "
        f"({m['cpu']}), {m['ram_gb']:.0f} GB RAM, Linux {m['kernel']}.",
        "",
        "Every tool reads the same files (listed once; digests left out), from a warm page cache, "
        "and produces the distinct (account, principal, event source, event name, outcome) rows "
        "with trailhound's principal keys, outcome classes and account attribution: "
        "trailhound `-q scan --format csv`; `zcat | jq` with scripts/bench/distinct.jq, one "
        "batch of 500 files per core through `xargs -P`, then `sort -u`; DuckDB `read_json` "
        "with explicit column types and SQL (scripts/bench/duckdb_distinct.py, threads = cores); "
        "the floor (examples/floor.rs) only decompresses with libdeflate on every core and counts "
        "newlines. Seconds are wall time, MB/s is decompressed JSON per second, peak RSS is "
        "/usr/bin/time's maximum resident set (for jq: the largest single process).",
        "",
    ]
    for c in corpora:
        parts += [corpus_markdown(c), ""]
        if c.get("reused"):
            parts += [f"(jq's and DuckDB's rows and times for {c['name']} are those of the full "
                      f"run {c['reused']} on the same files; trailhound and the floor were timed "
                      "again, and the agreement checked on the new rows.)", ""]
    t = targets(corpora)
    if t:
        parts += ["Issue 7's targets (on the largest generated corpus):", ""] + t + [""]
    return "\n".join(parts).rstrip() + "\n"


def write_between(path, begin, end, text):
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {path} has no {begin} ... {end} section")
    doc = doc[: i + len(begin)] + "\n" + text + doc[j:]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(doc)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--corpora", nargs="+", default=[])
    ap.add_argument("--docs")
    ap.add_argument("--save-commit", action="store_true",
                    help="only note the checked-out commit in RUN_DIR/commit (at the run's start)")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    saved = os.path.join(args.run, "commit")
    if args.save_commit:
        with open(saved, "w", encoding="utf-8") as f:
            f.write(commit(repo) + "\n")
        return 0
    try:
        with open(saved, encoding="utf-8") as f:
            sha = f.read().strip()
    except OSError:
        sha = commit(repo)
    corpora = [load(args.run, n) for n in args.corpora]
    text = markdown(corpora, machine(), sha, args.run)
    print(text)
    with open(os.path.join(args.run, "scan.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if args.docs:
        write_between(args.docs, "<!-- scan:begin -->", "<!-- scan:end -->", text)
        print(f"(written to {args.docs})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
