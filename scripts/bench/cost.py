#!/usr/bin/env python3
"""The cost of an hourly run (issue 7), measured on a sample of account-hours of a generated
corpus: how many objects and bytes each way of reading CloudTrail reads per byte delivered in
the hour, and what Athena and S3 charge for it.

    cost.py --root CORPUS [--accounts 2] [--days 2] [--seed 7] [--probe PATH] [--docs FILE]

The sample is ACCOUNTS accounts x DAYS whole delivery days of each, chosen by SEED: every hour
of a sampled day is one account-hour, the window [D+h, D+h+1h) of delivery time, run 10 minutes
(`settle`) after it ends, as the hunt runs. Per account-hour:

  S3 direct    trailhound's S3 source (src/source/s3.rs) runs the window on the local AWS
               emulator, with the sampled days uploaded, through a counting proxy: its
               ListObjectsV2 and GetObject calls and the bytes of the objects it got
               (examples/cost_probe.rs s3)
  Athena       the activity statement trailhound renders for the window (examples/cost_probe.rs
               sql) is taken apart with sqlglot; its partition predicates, and its "$path"
               ranges, run on DuckDB over a catalog of the objects that exist when it runs
               (scripts/bench/cost_engine.py): the objects Athena reads with partition pruning
               only, and with Trino's file pruning by the "$path" domain as well
  public daily the statement of scripts/bench/daily_design.sql, run the same way
  delivered    the objects whose names carry a delivery minute in the window

It also runs every sampled window's whole activity query on DuckDB over the sampled objects with
and without its "$path" ranges and checks that the rows agree. It exits 1 when a check fails:
the ranges choose other objects than the window's, the partitions miss one, or rows differ.

With --docs the result is written between the `<!-- cost:begin -->` and `<!-- cost:end -->`
markers of that file (nothing else is touched). Needs the tests' venv (DuckDB, sqlglot, moto)
and the release build of examples/cost_probe.rs (scripts/bench.sh builds it).
"""

import argparse
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

import cost_engine
import cost_sample
from report import commit, machine, write_between

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MB = 2**20
TB = 2**40
PRICE_PER_TB = 5.0
MIN_BILLED = 10 * MB
GET_PRICE = 0.0004 / 1000
LIST_PRICE = 0.005 / 1000
SETTLE = datetime.timedelta(minutes=10)
HOUR = datetime.timedelta(hours=1)
HOURS_PER_MONTH = 730
ACCOUNTS = 1000

STRATEGIES = [
    ("s3", "S3 direct scan (trailhound `s3` source), on the emulator", "S3 direct"),
    ("ranges", "Athena, trailhound's query: day partitions and `\"$path\"` ranges",
     "Athena, `\"$path\"` ranges"),
    ("partitions", "Athena, day partitions only (the query before the ranges)",
     "Athena, day partitions only"),
    ("daily", "public daily-partition design (query \"today\" every hour)", "public daily design"),
]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def windows_of(chosen):
    """[(Account, day, hour, start, end)] of every sampled account-hour."""
    out = []
    for account, day in chosen:
        midnight = datetime.datetime(day.year, day.month, day.day)
        for h in range(24):
            start = midnight + h * HOUR
            out.append((account, day, h, start, start + HOUR))
    return out


def probe_input(windows):
    lines = []
    for account, _, _, start, end in windows:
        trail = {"bucket": cost_sample.BUCKET, "prefix": "", "org_id": account.org,
                 "regions": account.regions}
        table = "cloudtrail_" + (account.org or "trail").replace("-", "_")
        lines.append(json.dumps({"trail": trail, "athena": {"table": table}, "account": account.id,
                                 "from": iso(start), "until": iso(end)}))
    return "\n".join(lines) + "\n"


def run_probe(probe, args, windows, env=None):
    done = subprocess.run([probe, *args], input=probe_input(windows), capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"cost.py: {probe} {' '.join(args)} failed:\n{done.stderr}")
    out = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if len(out) != len(windows):
        sys.exit(f"cost.py: {probe} {args[0]} answered {len(out)} windows of {len(windows)}")
    return out


def daily_statement(account, end):
    """The public design's statement as the scheduler runs it at `end`, on the hour."""
    with open(os.path.join(HERE, "daily_design.sql"), encoding="utf-8") as f:
        text = "\n".join(l for l in f.read().splitlines() if not l.lstrip().startswith("--"))
    return text.format(account=account.id, today=f"{end:%Y/%m/%d}", since=iso(end - HOUR))


def measure_athena(catalog, windows, statements):
    """Per window: the objects and bytes each Athena strategy reads, its partitions, and the
    checks of the ranges against the window."""
    rows, problems = [], []
    for (account, day, h, start, end), stmt in zip(windows, statements):
        at = end + SETTLE
        parts = cost_engine.predicates(stmt["activity"])
        if not parts["path"]:
            problems.append(f"{account.id} {iso(start)}: the activity query has no \"$path\" ranges")
        daily = cost_engine.predicates(daily_statement(account, end))
        strategies = {
            "partitions": (parts["partition"], at),
            "ranges": (parts["partition"] + parts["path"], at),
            # On the hour: what exists when the scheduler fires.
            "daily": (daily["partition"], end),
        }
        row = {"account": account.id, "day": str(day), "hour": h, "bytes": {}, "gets": {}, "lists": {}}
        row["objects"], row["delivered"] = catalog.delivered(account.id, start, end)
        for key, (conditions, exists_before) in strategies.items():
            row["gets"][key], row["bytes"][key] = catalog.read(conditions, exists_before)
            row["lists"][key] = catalog.partitions(daily["partition"] if key == "daily" else parts["partition"])
        extra, missing = catalog.against_window(parts["partition"] + parts["path"], account.id, start, end, at)
        if extra or missing:
            problems.append(f"{account.id} {iso(start)}: the ranges choose {extra} objects outside "
                            f"the window and miss {missing} of it")
        _, missing = catalog.against_window(parts["partition"], account.id, start, end, at)
        if missing:
            problems.append(f"{account.id} {iso(start)}: the partitions miss {missing} objects")
        rows.append(row)
    return rows, problems


def measure_s3(probe, sample_dir, windows):
    """The S3 source on the emulator: one fresh emulator, stopped afterwards."""
    started = subprocess.run(["bash", os.path.join(REPO, "scripts", "emulator.sh")],
                             capture_output=True, text=True, check=True)
    url, pid = started.stdout.split()[-2:]
    env = dict(os.environ, AWS_ENDPOINT_URL=url, TRAILHOUND_AWS_ENDPOINT=url,
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    try:
        return run_probe(probe, ["s3", "--logs", sample_dir], windows, env)
    finally:
        os.kill(int(pid), signal.SIGTERM)


def billed(b):
    return max(MIN_BILLED, math.ceil(b / MB) * MB)


def summarize(rows, scale=1.0):
    """Ratios and money per strategy; `scale` multiplies every object size (busier accounts)."""
    delivered = sum(r["delivered"] for r in rows)
    out = {}
    for key, *_ in STRATEGIES:
        def ratio(subset):
            return sum(r["bytes"][key] for r in subset) / max(1, sum(r["delivered"] for r in subset))
        athena = 0.0 if key == "s3" else \
            sum(billed(r["bytes"][key] * scale) for r in rows) / len(rows) / TB * PRICE_PER_TB
        gets = sum(r["gets"][key] for r in rows) / len(rows)
        lists = sum(r["lists"][key] for r in rows) / len(rows)
        out[key] = {
            "ratio": ratio(rows),
            "first": ratio([r for r in rows if r["hour"] == 0]),
            "last": ratio([r for r in rows if r["hour"] == 23]),
            "read": sum(r["bytes"][key] for r in rows) / len(rows),
            "gets": gets, "lists": lists,
            "athena": athena, "requests": gets * GET_PRICE + lists * LIST_PRICE,
        }
    return out, delivered / len(rows)


def fmt_bytes(b):
    for unit, size in (("GB", 2**30), ("MB", MB), ("KB", 2**10)):
        if b >= size:
            return f"{b / size:,.1f} {unit}"
    return f"{b:,.0f} B"


def money(x):
    if x == 0:
        return "$0"
    if x < 0.01:
        return f"${x:.6f}"
    return f"${x:,.2f}"


def markdown(args, corpus, chosen, rows, checks, seconds):
    base, mean_hour = summarize(rows)
    m = machine()
    objects = sum(r["objects"] for r in rows)
    sampled = ", ".join(f"{a.id} ({a.org or 'no org'}) {d}" for a, d in chosen)
    windows, differ, compared, records = checks["full"]
    lines = [
        "## Cost of an hourly run: bytes read and money (Athena, S3)",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d} at commit "
        f"`{commit(REPO)}` by `scripts/bench/cost.py` (run by `bash scripts/bench.sh`), on "
        f"{m['cores']} cores ({m['cpu']}), in {seconds:.0f} s (load average {checks['load']} as "
        f"it started; the counts do not depend on it). Sample: {len(chosen)} account-days "
        f"of the generated corpus `{args.root}` ({len(corpus)} accounts, "
        f"{len({a.org for a in corpus})} organisations; seed {args.seed}: {sampled}), every "
        f"hour of each: {len(rows)} account-hours, {objects:,} objects delivered in them, on "
        f"average {fmt_bytes(mean_hour)} of gzip and {objects / len(rows):.1f} objects per "
        "account-hour. The window of each hourly run is one hour of delivery time, run 10 "
        "minutes (`settle`) after it ends, as the hunt runs; only objects delivered before "
        "that exist.",
        "",
        "Bytes read (Athena: scanned) per byte delivered in the hour:",
        "",
        "| strategy | all hours | first hour of the day | last hour of the day | "
        "Athena $/account-hour | S3 requests $/account-hour | $/month, 1,000 accounts |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label, _ in STRATEGIES:
        s = base[key]
        month = (s["athena"] + s["requests"]) * HOURS_PER_MONTH * ACCOUNTS
        lines.append(f"| {label} | {s['ratio']:.2f}× | {s['first']:.2f}× | {s['last']:.2f}× "
                     f"| {money(s['athena'])} | {money(s['requests'])} | {money(month)} |")
    lines += [
        "",
        "Per account-hour, on average:",
        "",
        "| strategy | objects read (GETs) | LISTs | bytes read |",
        "|---|---:|---:|---:|",
        f"| delivered in the hour | {objects / len(rows):.1f} | | {fmt_bytes(mean_hour)} |",
    ]
    for key, label, _ in STRATEGIES:
        s = base[key]
        lines.append(f"| {label} | {s['gets']:.1f} | {s['lists']:.1f} | {fmt_bytes(s['read'])} |")
    lines += [
        "",
        "What each figure is measured by:",
        "",
        "- S3 direct: trailhound's S3 source (`src/source/s3.rs`) ran every sampled window "
        "against the local AWS emulator (moto) holding the sampled days, through a counting "
        "proxy (`examples/cost_probe.rs`): its ListObjectsV2 calls, GetObject calls and the "
        f"bytes of the objects it got. Measured: {checks['s3']}.",
        "- Athena: the activity statement trailhound renders for each window "
        "(`examples/cost_probe.rs sql`) is split by sqlglot into its partition predicates "
        "(`account`, `delivery_date`) and its `\"$path\"` ranges, and each is run on DuckDB "
        "against a catalog of the sampled objects and the days either side (`\"$path\"`, "
        "partition values, size, delivery minute), limited to the objects that exist when the "
        "statement runs (`scripts/bench/cost_engine.py`). \"Day partitions only\" counts the "
        "objects of the partitions the statement selects; \"`\"$path\"` ranges\" counts those "
        "the ranges leave of them. "
        f"The ranges chose exactly the window's objects in {checks['exact']} of {len(rows)} "
        "account-hours (none outside, none missing).",
        "- The public daily design: the statement of `scripts/bench/daily_design.sql` (a "
        "partition per delivery day, queried on the hour for the query's own date, with an "
        "eventTime filter that prunes nothing), run the same way on the objects that exist on "
        "the hour. Its last run of a day (on the next day's first hour) reads the new, empty "
        "day and never sees the last hour of the old one.",
        f"- Rows: the whole activity query of each of the {windows} windows ran on DuckDB over "
        f"the sampled objects ({records:,} records, loaded as Athena reads them by "
        "`tests/sql/run_athena_sql.py`) with and without its `\"$path\"` ranges: "
        + (f"the same {compared:,} rows both ways." if differ == 0
           else f"**{differ} windows gave different rows**."),
        "",
        "Inferred, not measured: what Athena itself does with these predicates. The emulator "
        "runs no SQL, and Athena is not here. Athena's engine is Trino's: its Hive connector "
        "lists each selected partition's folder, then skips every file whose path lies outside "
        "the domain it reads from predicates on the `\"$path\"` column itself (comparisons, "
        "IN, ranges: `BackgroundHiveSplitLoader` hands the effective predicate to "
        "`InternalHiveSplitFactory`, which checks each file's path against it) and reads the "
        "rest whole (gzip does not split). Other predicates on `\"$path\"`, such as "
        "`regexp_extract`, prune nothing there: trinodb/trino pull request 27000 (merged "
        "October 2025) says splits \"were only pruned if the $path predicate was representable "
        "as a Domain\" before it. So the query before the ranges read every object of its day "
        "partitions that existed (the \"day partitions only\" row), and trailhound's query, "
        "whose ranges are such a domain, reads the window's objects. AWS documents neither; "
        "should Athena's fork not prune by the domain, trailhound's query reads the \"day "
        "partitions only\" figure, with the same rows (the ranges sit beside the "
        "`regexp_extract` filter, not instead of it). A domain of many ranges may be widened "
        "to one span (`hive.domain-compaction-threshold`), which reads more, never less. One "
        "GET per object read and one LIST per selected partition (folders of under 1,000 "
        "objects) are assumed for Athena's own requests.",
        "",
        "Money: Athena bills compressed bytes scanned, rounded up to the megabyte with a 10 MB "
        "minimum per query, at $5 per TB (2^40 bytes); DDL (`ALTER TABLE ADD PARTITION` of "
        "managed mode) is not billed. S3 requests at $0.0004 per 1,000 GETs and $0.005 per "
        "1,000 LISTs. A month is 730 hours.",
        "",
        "The generated accounts are quiet: every Athena query stays under the 10 MB minimum, "
        "so all Athena strategies cost the same here, whatever they scan. The same sample "
        "scaled to busier accounts (every object larger by the same factor, requests "
        "unchanged), $/month for 1,000 accounts, Athena plus S3 requests:",
        "",
        "| gzip delivered per account-hour | " + " | ".join(s for *_, s in STRATEGIES) + " |",
        "|---|" + "---:|" * len(STRATEGIES),
    ]
    for target in (1 * MB, 10 * MB, 100 * MB):
        scaled, _ = summarize(rows, target / mean_hour)
        cells = [money((scaled[k]["athena"] + base[k]["requests"]) * HOURS_PER_MONTH * ACCOUNTS)
                 for k, *_ in STRATEGIES]
        lines.append(f"| {fmt_bytes(target)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="the corpus, in CloudTrail's S3 layout")
    ap.add_argument("--accounts", type=int, default=2, help="accounts sampled (default 2)")
    ap.add_argument("--days", type=int, default=2, help="whole days sampled per account (default 2)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the sample (default 7)")
    ap.add_argument("--probe", default=os.path.join(REPO, "target", "release", "examples", "cost_probe"),
                    help="the built examples/cost_probe.rs")
    ap.add_argument("--docs", help="write the section into this Markdown file")
    args = ap.parse_args()
    if not os.access(args.probe, os.X_OK):
        sys.exit(f"cost.py: no {args.probe}; build it: cargo build --release --example cost_probe")
    began = time.monotonic()
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            load = f.read().split()[0]
    except OSError:
        load = "unknown"

    corpus = cost_sample.discover(args.root)
    if not corpus:
        sys.exit(f"cost.py: no CloudTrail account folders under {args.root}")
    chosen = cost_sample.sample(corpus, args.accounts, args.days, args.seed)
    windows = windows_of(chosen)
    objs = cost_sample.catalog(chosen)
    sampled_days = {(a.id, f"{d:%Y/%m/%d}") for a, d in chosen}
    print(f"cost.py: {len(windows)} account-hours, {len(objs):,} objects in the catalog", file=sys.stderr)

    statements = run_probe(args.probe, ["sql"], windows)
    catalog = cost_engine.Catalog(objs, {a.id: a.regions for a, _ in chosen})
    rows, problems = measure_athena(catalog, windows, statements)
    print(f"cost.py: Athena strategies measured ({time.monotonic() - began:.0f} s)", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="trailhound-cost-") as sample_dir:
        cost_sample.link([o for o in objs if (o.account, o.delivery_date) in sampled_days], sample_dir)
        full = cost_engine.full_queries_agree(sample_dir, [(s["ddl"], s["activity"]) for s in statements])
        print(f"cost.py: whole activity queries compared ({time.monotonic() - began:.0f} s)", file=sys.stderr)
        s3 = measure_s3(args.probe, sample_dir, windows)
        print(f"cost.py: S3 source measured ({time.monotonic() - began:.0f} s)", file=sys.stderr)

    exact_s3 = 0
    for row, m in zip(rows, s3):
        row["bytes"]["s3"], row["gets"]["s3"], row["lists"]["s3"] = \
            m["get_body_bytes"], m["get_calls"], m["list_calls"]
        exact_s3 += m["get_body_bytes"] == row["delivered"] and m["get_calls"] == row["objects"]
    if full[1]:
        problems.append(f"{full[1]} windows gave other rows with the \"$path\" ranges than without")
    checks = {
        "load": load,
        "full": full,
        "exact": len(rows) - sum(1 for p in problems if "the ranges choose" in p),
        "s3": f"it got exactly the window's objects in {exact_s3} of {len(rows)} account-hours",
    }
    text = markdown(args, corpus, chosen, rows, checks, time.monotonic() - began)
    print(text)
    for p in problems:
        print(f"cost.py: {p}", file=sys.stderr)
    if args.docs:
        write_between(args.docs, "<!-- cost:begin -->", "<!-- cost:end -->", text)
        print(f"(written to {args.docs})", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
