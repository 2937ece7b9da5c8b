#!/usr/bin/env python3
"""Checks the dependency graph offline against scripts/dependencies.toml: every crate's licence
against the allowed ones, and crates present in more than one version.

    python3 scripts/check_dependencies.py [--policy FILE] [--metadata FILE]

Reads `cargo metadata --locked --offline --format-version 1` (or the JSON in --metadata, for
the script's own tests), so it needs no network and no tool beyond cargo and Python 3.11.
Prints one line per licence with the number of crates under it, then every problem; exits 1
when a licence is not allowed or a duplicate is not listed in the policy, 2 when it cannot run.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tomllib


def fail(message):
    print(f"check_dependencies: {message}", file=sys.stderr)
    sys.exit(2)


# --- SPDX expressions --------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def tokens(expression):
    # Old crates write "MIT/Apache-2.0" for "MIT OR Apache-2.0".
    text = expression.replace("/", " OR ")
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def parse(expression):
    """The expression as a tree: ("or"|"and", [children]) or ("id", name, exception)."""
    items = tokens(expression)
    pos = 0

    def peek():
        return items[pos] if pos < len(items) else None

    def take():
        nonlocal pos
        if pos >= len(items):
            return None
        pos += 1
        return items[pos - 1]

    def primary():
        t = take()
        if t is None:
            raise ValueError(f"`{expression}` ends too early")
        if t == "(":
            node = disjunction()
            if take() != ")":
                raise ValueError(f"`{expression}`: unbalanced parentheses")
            return node
        if t.upper() in ("AND", "OR", "WITH", ")"):
            raise ValueError(f"`{expression}`: `{t}` where a licence was expected")
        exception = None
        if peek() is not None and peek().upper() == "WITH":
            take()
            exception = take()
            if exception is None or exception in ("(", ")"):
                raise ValueError(f"`{expression}`: WITH names no exception")
        return ("id", t, exception)

    def conjunction():
        children = [primary()]
        while peek() is not None and peek().upper() == "AND":
            take()
            children.append(primary())
        return children[0] if len(children) == 1 else ("and", children)

    def disjunction():
        children = [conjunction()]
        while peek() is not None and peek().upper() == "OR":
            take()
            children.append(conjunction())
        return children[0] if len(children) == 1 else ("or", children)

    tree = disjunction()
    if peek() is not None:
        raise ValueError(f"`{expression}`: unexpected `{peek()}`")
    return tree


def satisfied(tree, allowed):
    kind = tree[0]
    if kind == "id":
        _, name, exception = tree
        # An exception only adds permissions to the licence it qualifies.
        return name in allowed or (exception is not None and f"{name} WITH {exception}" in allowed)
    results = [satisfied(child, allowed) for child in tree[1]]
    return any(results) if kind == "or" else all(results)


# --- The graph ----------------------------------------------------------------------------------


def metadata(path):
    if path:
        with open(path) as f:
            return json.load(f)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run(
        ["cargo", "metadata", "--locked", "--offline", "--format-version", "1"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        fail(f"cargo metadata failed:\n{run.stderr.strip()}")
    return json.loads(run.stdout)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=os.path.join(here, "dependencies.toml"))
    parser.add_argument("--metadata", help="cargo metadata JSON instead of running cargo")
    args = parser.parse_args()
    with open(args.policy, "rb") as f:
        policy = tomllib.load(f)
    allowed = set(policy.get("licenses", {}).get("allow", []))
    exceptions = {e["name"]: e for e in policy.get("licenses", {}).get("exceptions", [])}
    bans = policy.get("bans", {})
    mode = bans.get("multiple-versions", "deny")
    if mode not in ("deny", "warn"):
        fail(f"bans.multiple-versions must be deny or warn, got {mode!r}")
    skip = {s["name"]: s for s in bans.get("skip", [])}
    for name, entry in list(exceptions.items()) + list(skip.items()):
        if not entry.get("reason"):
            fail(f"the policy entry for {name} gives no reason")

    meta = metadata(args.metadata)
    resolve = meta.get("resolve") or fail("cargo metadata gave no resolved graph")
    used = {node["id"] for node in resolve["nodes"]}
    workspace = set(meta.get("workspace_members", []))
    packages = [p for p in meta["packages"] if p["id"] in used and p["id"] not in workspace]
    dependents = collections.defaultdict(set)
    names = {p["id"]: f'{p["name"]} {p["version"]}' for p in meta["packages"]}
    for node in resolve["nodes"]:
        for dep in node.get("deps", []):
            dependents[dep["pkg"]].add(names.get(node["id"], node["id"]))

    problems, warnings = [], []
    by_licence = collections.Counter()
    for p in sorted(packages, key=lambda p: (p["name"], p["version"])):
        who = f'{p["name"]} {p["version"]}'
        licence = p.get("license")
        by_licence[licence or "(none)"] += 1
        if p["name"] in exceptions:
            continue
        if not licence:
            problems.append(f"licence: {who} states no SPDX licence (license_file: {p.get('license_file')})")
            continue
        try:
            ok = satisfied(parse(licence), allowed)
        except ValueError as e:
            problems.append(f"licence: {who}: {e}")
            continue
        if not ok:
            problems.append(f"licence: {who} is `{licence}`, which the allowed licences do not satisfy")
    for name in exceptions:
        if not any(p["name"] == name for p in packages):
            warnings.append(f"licence exception for {name} matches no crate; remove it")

    versions = collections.defaultdict(list)
    for p in packages:
        versions[p["name"]].append(p)
    duplicates = {n: ps for n, ps in versions.items() if len(ps) > 1}
    for name, ps in sorted(duplicates.items()):
        detail = "; ".join(
            f'{p["version"]} (for {", ".join(sorted(dependents[p["id"]])) or "nothing"})'
            for p in sorted(ps, key=lambda p: p["version"])
        )
        line = f"duplicate: {name} in {len(ps)} versions: {detail}"
        if name in skip:
            print(f"accepted {line}")
        elif mode == "deny":
            problems.append(line + " (add it to bans.skip with a reason, or unify the versions)")
        else:
            warnings.append(line)
    for name in skip:
        if name not in duplicates:
            warnings.append(f"bans.skip lists {name}, which is no longer duplicated; remove it")

    for licence, n in sorted(by_licence.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n:4} {licence}")
    print(
        f"{len(packages)} crates, {len(by_licence)} licence expressions, "
        f"{len(duplicates)} crates in several versions ({len(set(duplicates) & set(skip))} accepted)"
    )
    for w in warnings:
        print(f"warning: {w}")
    for p in problems:
        print(f"error: {p}")
    print(f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
