#!/usr/bin/env python3
"""The bytes-and-money part of the cost model of issue 7: for an hourly run over one account,
how many bytes each way of reading CloudTrail reads (or Athena bills) relative to the bytes
delivered in the hour, measured on a generated corpus; with Athena's price applied.

    cost.py --root CORPUS [--docs docs/PERFORMANCE.md]

CORPUS holds objects in CloudTrail's S3 layout; only the object names and sizes are used (the
account, region and delivery minute are in the name). With --docs the result is written between
the `<!-- cost:begin -->` and `<!-- cost:end -->` markers (nothing else is touched).

The model, per account, per full delivery day D of the corpus, per hour h:
  window      delivery time [D+h, D+h+1h), queried at D+h+1h+settle (settle = 10 min), as
              trailhound's hunt does every hour
  delivered   bytes of the objects delivered in the window (all regions): the denominator
  S3 direct   src/source/s3.rs lists the window's day folder per region from the window start
              and reads only the objects named in the window: = delivered
  Athena, day partitions (managed or projection; partitions are (account, region, delivery
              day), the query names the account and the days the window touches): every object
              of those day folders that exists at query time, unless the "$path" filter prunes
  Athena, "$path" pruned: only the window's objects, = delivered
  public daily design: a table partitioned by day, queried on the hour for "today" (the
              partition of the query's own date) with an eventTime filter: every object
              delivered so far today; the run just after midnight reads the new, empty day
Athena bills bytes scanned (compressed bytes for gzip), rounded up to the megabyte, at least
10 MB per query, $5 per TB. S3 request prices (GET $0.0004 / 1,000, LIST $0.005 / 1,000) are
shown beside, since the direct scan pays those instead of a scan charge, and Athena's reads of
the objects are themselves S3 GETs.
"""

import argparse
import collections
import datetime
import math
import os
import re
import sys

# The one way a section of docs/PERFORMANCE.md is rewritten, shared with the scan report.
from report import write_between

NAME = re.compile(
    r"^([0-9]{12})_CloudTrail_([a-z][a-z0-9-]{0,31})_([0-9]{8})T([0-9]{2})([0-9]{2})Z(_|$)"
)
MB = 2**20
TB = 2**40
PRICE_PER_TB = 5.0
MIN_BILLED = 10 * MB
GET_PRICE = 0.0004 / 1000
LIST_PRICE = 0.005 / 1000
SETTLE_MIN = 10
HOURS_PER_MONTH = 730
ACCOUNTS = 1000

STRATEGIES = [
    ("s3", "S3 direct scan (trailhound `s3` source)", "S3 direct"),
    ("athena_path", "Athena, `\"$path\"` delivery-minute filter, if Athena prunes by it",
     "Athena, `\"$path\"` pruned"),
    ("athena_day", "Athena, day partitions (managed or projection), `\"$path\"` not pruning",
     "Athena, day partitions"),
    ("daily", "public daily-partition design (query \"today\" every hour)", "public daily design"),
]


def scan(root):
    """{account: {region: {minute_since_epoch: [bytes, objects]}}} of the log objects."""
    data = collections.defaultdict(lambda: collections.defaultdict(dict))
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("CloudTrail-Digest", "CloudTrail-Insight")]
        for name in filenames:
            m = NAME.match(name)
            if not m:
                continue
            account, region, day, hh, mm = m.group(1, 2, 3, 4, 5)
            t = datetime.datetime.strptime(day + hh + mm, "%Y%m%d%H%M").replace(
                tzinfo=datetime.timezone.utc)
            minute = int(t.timestamp()) // 60
            size = os.stat(os.path.join(dirpath, name)).st_size
            cell = data[account][region].setdefault(minute, [0, 0])
            cell[0] += size
            cell[1] += 1
    return data


def per_minute(regions):
    """Bytes and objects per delivery minute over all regions, as prefix sums from minute lo."""
    minutes = collections.Counter()
    objects = collections.Counter()
    for cells in regions.values():
        for minute, (size, count) in cells.items():
            minutes[minute] += size
            objects[minute] += count
    return minutes, objects


def measure(data):
    """Per strategy: bytes per (account, day, hour), with the delivered bytes and requests."""
    rows = []  # (account, day, hour, delivered, objects, {strategy: bytes}, {strategy: gets})
    for account, regions in sorted(data.items()):
        minutes, objects = per_minute(regions)
        if not minutes:
            continue
        first_day = min(minutes) // 1440
        last_day = max(minutes) // 1440
        lo = first_day * 1440
        hi = (last_day + 2) * 1440
        csum = [0] * (hi - lo + 1)
        cobj = [0] * (hi - lo + 1)
        for i in range(lo, hi):
            csum[i - lo + 1] = csum[i - lo] + minutes.get(i, 0)
            cobj[i - lo + 1] = cobj[i - lo] + objects.get(i, 0)

        def between(a, b):
            a, b = max(a, lo), min(b, hi)
            return (csum[b - lo] - csum[a - lo], cobj[b - lo] - cobj[a - lo]) if b > a else (0, 0)

        # Only whole days: the first and last day of a generated history are partial.
        for day in range(first_day + 1, last_day):
            d0 = day * 1440
            for h in range(24):
                w0, w1 = d0 + 60 * h, d0 + 60 * (h + 1)
                query = w1 + SETTLE_MIN
                delivered, n = between(w0, w1)
                day_bytes, day_n = between(d0, min(query, d0 + 1440))
                # The public design runs on the hour and reads the partition of its own date.
                cron = w1
                today = (cron // 1440) * 1440
                daily, daily_n = between(today, cron)
                rows.append({
                    "account": account,
                    "hour": h,
                    "delivered": delivered,
                    "objects": n,
                    "regions": len(regions),
                    "bytes": {"s3": delivered, "athena_path": delivered,
                              "athena_day": day_bytes, "daily": daily},
                    "gets": {"s3": n, "athena_path": n, "athena_day": day_n, "daily": daily_n},
                })
    return rows


def billed(b):
    return max(MIN_BILLED, math.ceil(b / MB) * MB)


def summarize(rows, scale=1.0):
    """Ratios and money per strategy; `scale` multiplies every object size (busier accounts)."""
    delivered = sum(r["delivered"] for r in rows) * scale
    first = [r for r in rows if r["hour"] == 0]
    last = [r for r in rows if r["hour"] == 23]
    out = {}
    for key, *_ in STRATEGIES:
        read = sum(r["bytes"][key] for r in rows) * scale
        ratio = read / delivered if delivered else 0
        r_first = sum(r["bytes"][key] for r in first) / max(1, sum(r["delivered"] for r in first))
        r_last = sum(r["bytes"][key] for r in last) / max(1, sum(r["delivered"] for r in last))
        if key == "s3":
            athena = 0.0
        else:
            athena = sum(billed(r["bytes"][key] * scale) for r in rows) / len(rows) / TB * PRICE_PER_TB
        # Requests: a GET per object read, a LIST per region and day folder touched.
        gets = sum(r["gets"][key] for r in rows) / len(rows)
        lists = sum(r["regions"] for r in rows) / len(rows)
        requests = gets * GET_PRICE + lists * LIST_PRICE
        out[key] = {
            "ratio": ratio, "first": r_first, "last": r_last,
            "read_per_hour": read / len(rows),
            "athena_per_hour": athena, "requests_per_hour": requests,
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


def markdown(root, data, rows):
    accounts = len(data)
    objects = sum(r["objects"] for r in rows)
    days = len(rows) // 24 // max(1, accounts)
    base, mean_hour = summarize(rows)
    lines = [
        "## Cost of an hourly run: bytes read and money (Athena, S3)",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d} by "
        f"`scripts/bench/cost.py` (run by `bash scripts/bench.sh`) on the generated corpus "
        f"`{root}`: {accounts} accounts, {days} whole delivery days each, "
        f"{objects:,} objects in those days, on average {fmt_bytes(mean_hour)} of gzip and "
        f"{objects / len(rows):.1f} objects delivered per account-hour. "
        "Sizes come from the object names and sizes (account, region, delivery minute); the "
        "window of each hourly run is one hour of delivery time, queried 10 minutes (`settle`) "
        "after it ends, as the hunt does.",
        "",
        "Bytes read (Athena: scanned) per byte delivered in the hour:",
        "",
        "| strategy | all hours | first hour of the day | last hour of the day | "
        "Athena $/account-hour | S3 requests $/account-hour | $/month, 1,000 accounts |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label, _ in STRATEGIES:
        s = base[key]
        month = (s["athena_per_hour"] + s["requests_per_hour"]) * HOURS_PER_MONTH * ACCOUNTS
        lines.append(
            f"| {label} | {s['ratio']:.2f}× | {s['first']:.2f}× | {s['last']:.2f}× "
            f"| {money(s['athena_per_hour'])} | {money(s['requests_per_hour'])} | {money(month)} |"
        )
    lines += [
        "",
        "Money: Athena bills compressed bytes scanned, rounded up to the megabyte with a 10 MB "
        "minimum per query, at $5 per TB (2^40 bytes); DDL (`ALTER TABLE ADD PARTITION` of "
        "managed mode) is not billed. S3 requests at $0.0004 per 1,000 GETs and $0.005 per "
        "1,000 LISTs: one GET per object read (Athena reads its objects with GETs too), one "
        "LIST per region and day folder. A month is 730 hours.",
        "",
        "The generated accounts are quiet: every Athena query stays under the 10 MB minimum, "
        "so all Athena strategies cost the same here, whatever they scan. The same delivery "
        "pattern scaled to busier accounts (every object larger by the same factor), "
        "$/month for 1,000 accounts, Athena plus S3 requests:",
        "",
        "| gzip delivered per account-hour | "
        + " | ".join(short for *_, short in STRATEGIES) + " |",
        "|---|" + "---:|" * len(STRATEGIES),
    ]
    for target in (1 * MB, 10 * MB, 100 * MB):
        scaled, _ = summarize(rows, target / mean_hour)
        cells = []
        for key, *_ in STRATEGIES:
            s = scaled[key]
            # Request counts do not grow with object size.
            month = (s["athena_per_hour"] + base[key]["requests_per_hour"]) * HOURS_PER_MONTH * ACCOUNTS
            cells.append(money(month))
        lines.append(f"| {fmt_bytes(target)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Does Athena prune objects by `\"$path\"`? We found nothing in Athena's documentation saying that a "
        "filter on `\"$path\"` reduces the data scanned. Athena's engine is Trino's: its Hive "
        "connector skips files for a `\"$path\"` predicate it can read as a domain of the "
        "column itself (equality, IN, ranges), and only from late 2025 (trinodb/trino pull "
        "request 27000) for other expressions of `\"$path\"`. `sql/activity.sql` compares "
        "`regexp_extract(\"$path\", ...)` with the window bounds, which is such an expression, "
        "so count on the day-partition figure: every object of the window's delivery "
        "day(s) up to the moment of the query. That is about as much as the public daily design "
        "reads (it scans the whole day so far every hour), though without its blind spot "
        "(the run just after midnight of the public design reads the new, empty day and misses "
        "the last hour of the old one). The pruned figure is what Athena would scan if it "
        "pruned; a filter written as ranges of `\"$path\"` itself (one per region: from "
        "`…/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_<window start>` up to the same with "
        "the window end) is a domain that Trino's split pruning handles. The S3 direct scan "
        "reads exactly the window's objects, by construction.",
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--docs")
    args = ap.parse_args()
    data = scan(args.root)
    rows = measure(data)
    if not rows:
        sys.exit(f"cost.py: no whole delivery day of CloudTrail-named objects under {args.root}")
    text = markdown(args.root, data, rows)
    print(text)
    if args.docs:
        write_between(args.docs, "<!-- cost:begin -->", "<!-- cost:end -->", text)
        print(f"(written to {args.docs})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
