#!/usr/bin/env python3
"""Checks that the scan benchmark's contenders produced the same distinct rows.

    compare.py --trailhound SCAN.csv --jq ROWS.jsonl --duckdb ROWS.jsonl [--strict] [--json OUT]

trailhound's CSV is reduced to its key columns (account, principal, event_source, event_name,
outcome); the other two files hold one JSON array of those five values per line. Prints the
size of each set and of each set difference, with a few examples of every difference. With
--strict, exits 1 unless all three sets are equal. --json writes the figures for the report.
"""

import argparse
import csv
import json
import sys

KEY = ("account", "principal", "event_source", "event_name", "outcome")


def load_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {tuple(row[k] for k in KEY) for row in csv.DictReader(f)}


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return {tuple(json.loads(line)) for line in f if line.strip()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trailhound")
    ap.add_argument("--jq")
    ap.add_argument("--duckdb")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    sets = {}
    if args.trailhound:
        sets["trailhound"] = load_csv(args.trailhound)
    if args.jq:
        sets["jq"] = load_jsonl(args.jq)
    if args.duckdb:
        sets["duckdb"] = load_jsonl(args.duckdb)
    report = {"rows": {k: len(v) for k, v in sets.items()}, "only": {}}
    print("  distinct rows: " + ", ".join(f"{k} {len(v):,}" for k, v in sets.items()))
    names = list(sets)
    equal = True
    for a in names:
        for b in names:
            if a == b:
                continue
            only = sorted(sets[a] - sets[b])
            report["only"][f"{a}-{b}"] = len(only)
            if only:
                equal = False
                print(f"  in {a}, not in {b}: {len(only):,}")
                for row in only[:5]:
                    print("      " + " | ".join(row))
    if equal:
        print("  the sets are equal")
    report["equal"] = equal
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f)
    if args.strict and not equal:
        print("  the distinct rows differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
