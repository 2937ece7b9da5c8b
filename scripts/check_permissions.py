#!/usr/bin/env python3
"""The permission test: the Terraform roles grant every AWS API operation the Rust code calls,
on the resources it calls them on, and nothing else.

  1. The calls are found in src/ (scripts/permissions/rust_calls.py): every AWS SDK fluent
     operation outside test code, named as the SDK crates in Cargo.lock name them.
  2. scripts/permissions/expected.toml says, for each part of src/ that calls AWS, when a
     deployment runs it and on which resource, plus what services do as the caller (Athena in
     Glue and S3, KMS through the services that store with the module's key) and which Glue
     actions each statement of sql/ needs. A call found that it does not cover, or an entry for
     a call no longer made, is a failure.
  3. The policy documents of the Terraform modules are parsed with python-hcl2 and evaluated
     (scripts/permissions/hcl_eval.py) in every combination of the configuration switches
     that matter (source, map or single-task mode, accounts, keys, partitions, Splunk), leaving
     out those the module's preconditions refuse.
  4. In each scenario the task role must grant exactly what that scenario needs: no missing
     action, no missing or extra resource, no action granted that nothing needs, the module's
     key only through the services that use it. The management account's role must grant the
     union of what the scenarios need from Organizations. No identity policy of any module may
     use an action wildcard, or Resource "*" except for the actions listed as having no
     resource type.
  5. terraform/PERMISSIONS.md names every action involved.

Then it proves it can fail: it reruns the comparison with one grant removed, one action added,
an action wildcard and a "*" resource, and each must be reported.

Exit status: 0 all matched, 1 a mismatch, 2 the check could not run (a form it cannot read).
"""

from __future__ import annotations

import copy
import itertools
import pathlib
import re
import sys
import tomllib
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "permissions"))

import policies  # noqa: E402
import rust_calls  # noqa: E402
from hcl_eval import EvalError, Module, Scope, parse_expression  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
NULL = "null"


class Findings:
    """Problems, each kept once with the scenarios it was seen in."""

    def __init__(self):
        self.seen: dict[str, list[str]] = {}

    def add(self, message: str, scenario: str = ""):
        self.seen.setdefault(message, [])
        if scenario:
            self.seen[message].append(scenario)

    def lines(self) -> list[str]:
        out = []
        for message, scenarios in self.seen.items():
            if scenarios:
                more = f" (+{len(scenarios) - 1} more)" if len(scenarios) > 1 else ""
                message = f"{message}\n      in: {scenarios[0]}{more}"
            out.append(message)
        return out


def holds(scope: Scope, condition: str) -> bool:
    return scope.truth(scope.eval(parse_expression(condition)))


def covers(entry_path: str, file: str) -> bool:
    return file == entry_path or (entry_path.endswith("/") and file.startswith(entry_path))


# ---------------------------------------------------------------------------------------------
# What the code needs


def code_actions(expected: dict, calls: list[rust_calls.Call], found: Findings):
    """IAM action -> call sites, after checking every call against expected.toml."""
    rename = expected.get("iam_action", {})
    sites: dict[str, list[str]] = defaultdict(list)
    by_file: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        action = rename.get(f"{call.service}:{call.operation}", f"{call.service}:{call.operation}")
        site = f"{call.path}:{call.line}"
        if site not in sites[action]:
            sites[action].append(site)
        by_file[call.path].add(action)

    for path, actions in sorted(by_file.items()):
        for action in sorted(actions):
            entries = [e for e in expected["code"] if covers(e["path"], path) and action in e["actions"]]
            entries += [e for e in expected["not_granted"] if covers(e["path"], path) and action in e["actions"]]
            if not entries:
                found.add(
                    f"UNMAPPED {action}: called in {path} ({', '.join(s for s in sites[action] if s.startswith(path + ':'))}), "
                    "but scripts/permissions/expected.toml says neither when the deployment runs it "
                    "(a [[code]] entry with its resource) nor why no role grants it ([[not_granted]])"
                )
    for entry in expected["code"] + expected["not_granted"]:
        for action in entry["actions"]:
            if not any(covers(entry["path"], p) and action in acts for p, acts in by_file.items()):
                found.add(
                    f"STALE {action}: expected.toml lists it for {entry['path']}, which no longer calls it; "
                    "remove the entry (and the grant, if any)"
                )
    return sites


def sql_needs(expected: dict, found: Findings) -> list[tuple[str, str, list[str], str]]:
    """(file, condition, glue actions, why) for each statement in sql/."""
    out = []
    files = expected["sql"]["files"]
    on_disk = sorted(p.name for p in (REPO / "sql").glob("*.sql"))
    for name in on_disk:
        if name not in files:
            found.add(f"SQL sql/{name} is not in [sql.files] of expected.toml: say when the deployment runs it")
            continue
        text = (REPO / "sql" / name).read_text(encoding="utf-8")
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()
        kinds = [
            (kind, spec)
            for kind, spec in expected["sql"]["kinds"].items()
            if re.match(spec["starts"], body, re.IGNORECASE)
        ]
        if len(kinds) != 1:
            found.add(
                f"SQL sql/{name} starts `{body[:40]}...`, which matches {len(kinds)} statement kinds of "
                "[sql.kinds]; add its kind with the Glue actions Athena needs for it"
            )
            continue
        kind, spec = kinds[0]
        out.append((name, files[name], spec["glue"], f"sql/{name} ({kind}): {spec['why']}"))
    for name in files:
        if name not in on_disk:
            found.add(f"SQL [sql.files] lists {name}, which is not in sql/")
    return out


def needs(expected: dict, scope: Scope, sql: list, role: str):
    """For one scenario: action -> {resource: [reasons]}, and the services that must be allowed
    to use the module's key (kms:ViaService)."""
    need: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for entry in expected["code"]:
        if not holds(scope, entry["runs_when"]):
            continue
        for action, spec in entry["actions"].items():
            spec = spec if isinstance(spec, dict) else {"role": "task", "on": spec}
            if spec.get("role", "task") == role:
                for resource in spec["on"]:
                    need[action][resource].append(f"{entry['path']}: {entry['why']}")
    if role == "task":
        for name, condition, glue, why in sql:
            if holds(scope, condition):
                for action in glue:
                    for resource in expected["sql"]["on"]:
                        need[action][resource].append(why)
    via: set[str] = set()
    # Implied actions can imply more (Athena reads the trail, which needs the trail's key).
    for _ in range(len(expected["implied"]) + 1):
        before = sum(len(r) for r in need.values()) + len(via)
        for entry in expected["implied"]:
            if role != "task" or not any(a in need for a in entry["because"]):
                continue
            if "when" in entry and not holds(scope, entry["when"]):
                continue
            if "via" in entry:
                via.add(entry["via"])
            for action, resources in entry["actions"].items():
                for resource in resources:
                    why = f"implied by {'/'.join(entry['because'])}: {entry['why']}"
                    if why not in need[action][resource]:
                        need[action][resource].append(why)
        if sum(len(r) for r in need.values()) + len(via) == before:
            break
    return need, via


# ---------------------------------------------------------------------------------------------
# What the roles grant, and the comparison


def granted(statements: list[policies.Statement]):
    grant: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for s in statements:
        if s.effect != "Allow":
            continue
        for action in s.actions:
            for resource in s.resources:
                grant[action][resource].append(s.sid)
    return grant


def wildcards(statements, star_ok: dict, role: str, found: Findings, scenario: str):
    for s in statements:
        if s.effect != "Allow" or s.has_principals:
            continue
        for action in s.actions:
            if "*" in action:
                found.add(f"WILDCARD {role}: statement {s.sid} grants the action pattern {action}; name the actions", scenario)
            for resource in s.resources:
                if resource == "*" and action not in star_ok:
                    found.add(f"STAR {role}: statement {s.sid} grants {action} on Resource \"*\"; scope it to a resource", scenario)
                parts = resource.split(":", 5)
                if resource != "*" and len(parts) == 6 and ("*" in parts[3] or "*" in parts[4]):
                    found.add(f"STAR {role}: statement {s.sid} grants {action} on {resource}, any region or account", scenario)


def compare(role: str, need, via_need, statements, found: Findings, scenario: str):
    grant = granted(statements)
    for action in sorted(need):
        if action not in grant:
            found.add(f"MISSING {role}: {action} is not granted; needed on {', '.join(sorted(need[action]))} "
                      f"({need[action][next(iter(need[action]))][0]})", scenario)
            continue
        for resource in sorted(set(need[action]) - set(grant[action])):
            found.add(f"MISSING {role}: {action} is not granted on {resource} ({need[action][resource][0]})", scenario)
        for resource in sorted(set(grant[action]) - set(need[action])):
            found.add(f"BROADER {role}: statement {'/'.join(grant[action][resource])} grants {action} on {resource}, "
                      f"which nothing needs; needed only on {', '.join(sorted(need[action]))}", scenario)
    for action in sorted(set(grant) - set(need)):
        sids = sorted({sid for r in grant[action].values() for sid in r})
        found.add(f"NOT NEEDED {role}: statement {'/'.join(sids)} grants {action}, which nothing in this "
                  "configuration calls (add it to expected.toml with a reason if a service needs it)", scenario)
    # The module's key: only through the services that use it.
    key_statements = [s for s in statements if s.effect == "Allow" and "<aws_kms_key.this.arn>" in s.resources]
    via_grant: set[str] = set()
    for s in key_statements:
        values = s.conditions.get("kms:ViaService")
        if not values:
            found.add(f"VIA {role}: statement {s.sid} lets the role use the module's key directly; "
                      "hold it to the services that store with it (kms:ViaService)", scenario)
        via_grant.update(values or [])
    if key_statements or via_need:
        for service in sorted(via_need - via_grant):
            found.add(f"MISSING {role}: the module's key is not usable through {service}", scenario)
        for service in sorted(via_grant - via_need):
            found.add(f"BROADER {role}: the module's key is usable through {service}, which nothing needs here", scenario)


def scenarios(expected: dict, module: Module):
    """(description, scope) for every combination of the axes the preconditions accept, and
    how many combinations there were."""
    axes = expected["task"]["axes"]
    names = list(axes)
    accepted, total = [], 0
    for combo in itertools.product(*(axes[n] for n in names)):
        total += 1
        values = {n: (None if v == NULL else v) for n, v in zip(names, combo)}
        scope = Scope(module, {**expected["task"]["base"], **values}, expected["data"])
        if all(scope.truth(scope.value(cond)) for _, cond, _ in module.preconditions()):
            desc = ", ".join(f"{n}={'null' if values[n] is None else values[n]}" for n in names)
            accepted.append((desc, scope))
    return accepted, total


def role_statements(module: Module, scope: Scope, role: str) -> list[policies.Statement]:
    docs = policies.role_documents(module).get(role)
    if not docs:
        raise EvalError(f"{module.folder}: no aws_iam_role_policy attaches a policy to aws_iam_role.{role}")
    return [s for d in docs for s in policies.document_statements(scope, d)]


def evaluate(expected: dict, calls) -> dict:
    """Everything the comparison needs, evaluated once: what the code calls, and per scenario
    what each role grants and what the task role needs."""
    found = Findings()
    sites = code_actions(expected, calls, found)
    sql = sql_needs(expected, found)
    task_module = Module(REPO / expected["task"]["module"])
    muster_module = Module(REPO / expected["muster"]["module"])
    for module in (task_module, muster_module):
        for problem in policies.other_grants(module):
            found.add(f"OTHER {problem}")
    task_role = expected["task"]["role"].removeprefix("aws_iam_role.")
    muster_role = expected["muster"]["role"].removeprefix("aws_iam_role.")

    accepted, total = scenarios(expected, task_module)
    runs = []
    muster_need: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for desc, scope in accepted:
        roles = {
            (task_role if role == task_role else role): [s for d in docs for s in policies.document_statements(scope, d)]
            for role, docs in policies.role_documents(task_module).items()
        }
        if task_role not in roles:
            raise EvalError(f"{task_module.folder}: no aws_iam_role_policy attaches a policy to aws_iam_role.{task_role}")
        need, via = needs(expected, scope, sql, "task")
        runs.append({"scenario": desc, "roles": roles, "need": need, "via": via})
        for action, resources in needs(expected, scope, sql, "muster")[0].items():
            for resource, why in resources.items():
                muster_need[action][resource].extend(w for w in why if w not in muster_need[action][resource])
    muster_scope = Scope(muster_module, expected["muster"]["base"], expected["data"])
    return {
        "found": found,
        "sites": sites,
        "sql": sql,
        "task_role": task_role,
        "runs": runs,
        "counts": (total, total - len(accepted)),
        "muster_need": muster_need,
        "muster_statements": role_statements(muster_module, muster_scope, muster_role),
        "star_ok": expected["star_resource"],
        "involved": set(sites)
        | {a for e in expected["implied"] for a in e["actions"]}
        | {a for _, _, g, _ in sql for a in g},
    }


def judge(ev: dict, tamper=None) -> tuple[Findings, dict]:
    """The comparison; `tamper(role, statements)` may edit the evaluated statements first (the
    self-test does)."""
    found = copy.deepcopy(ev["found"])
    edit = tamper or (lambda role, statements: statements)
    matched: dict[str, set[str]] = defaultdict(set)  # action -> {"role: sid"}
    for run in ev["runs"]:
        for role, statements in run["roles"].items():
            statements = edit("task" if role == ev["task_role"] else role, statements)
            wildcards(statements, ev["star_ok"], role, found, run["scenario"])
            if role == ev["task_role"]:
                compare("task", run["need"], run["via"], statements, found, run["scenario"])
                for s in statements:
                    for action in s.actions:
                        if action in run["need"]:
                            matched[action].add(f"task: {s.sid}")
    m_statements = edit("muster", ev["muster_statements"])
    compare("muster", ev["muster_need"], set(), m_statements, found, "every scenario")
    wildcards(m_statements, ev["star_ok"], "muster", found, "")
    for s in m_statements:
        for action in s.actions:
            if action in ev["muster_need"]:
                matched[action].add(f"muster: {s.sid}")

    # The document people read must name everything involved.
    doc = (REPO / "terraform" / "PERMISSIONS.md").read_text(encoding="utf-8")
    for action in sorted(ev["involved"]):
        if f"`{action}`" not in doc:
            found.add(f"DOC terraform/PERMISSIONS.md does not name `{action}`")
    return found, matched


# ---------------------------------------------------------------------------------------------
# Proof that the comparison can fail


def self_test(ev: dict, expected: dict, scanner: rust_calls.Scanner) -> tuple[list[str], list[str]]:
    """Each tampering must be reported. Returns (what was reported, what was not)."""

    def drop_one(role, statements):
        if role != "task":
            return statements
        out = copy.deepcopy(statements)
        for s in out:
            if "dynamodb:Query" in s.actions:
                s.actions.remove("dynamodb:Query")
        return out

    def add_one(role, statements):
        if role != "task":
            return statements
        out = copy.deepcopy(statements)
        out[0].actions.append("dynamodb:DeleteTable")
        return out

    def widen_action(role, statements):
        if role != "muster":
            return statements
        out = copy.deepcopy(statements)
        out[0].actions = ["organizations:*"]
        return out

    def star_resource(role, statements):
        if role != "task":
            return statements
        out = copy.deepcopy(statements)
        for s in out:
            if "secretsmanager:GetSecretValue" in s.actions:
                s.resources = ["*"]
        return out

    def widen_resource(role, statements):
        if role != "task":
            return statements
        out = copy.deepcopy(statements)
        for s in out:
            if s.sid == "WriteAccountList":
                s.resources = ["<aws_s3_bucket.results.arn>/*"]
        return out

    cases = [
        ("a removed grant (dynamodb:Query)", drop_one, "MISSING task: dynamodb:Query"),
        ("an added action (dynamodb:DeleteTable)", add_one, "NOT NEEDED task: statement"),
        ("an action wildcard (organizations:*)", widen_action, "WILDCARD muster"),
        ('a "*" resource (secretsmanager:GetSecretValue)', star_resource, "STAR task"),
        ("a wider resource (the whole results bucket for the account list)", widen_resource, "BROADER task: statement WriteAccountList"),
    ]
    reported, missed = [], []
    for what, tamper, marker in cases:
        found, _ = judge(ev, tamper)
        (reported if any(m.startswith(marker) for m in found.seen) else missed).append(
            f"{what} -> {marker}"
        )

    # The scanner: a new call is found (and unmapped), comments and test code are not calls.
    sample = """
        use aws_sdk_s3::Client;
        async fn f(client: &Client) {
            // client.delete_bucket().send().await;
            let url = "s3://bucket//not-a-comment"; client.delete_object().bucket("b").send().await;
            store.get_object(&key);
        }
        #[cfg(test)]
        mod tests { async fn t(c: &aws_sdk_s3::Client) { c.delete_bucket_policy().send().await; } }
    """
    calls = scanner.calls_in(sample, "src/source/s3.rs")
    what = "a new call in src/ (s3:DeleteObject), with a commented-out call, a wrapper and test code around it"
    marker = "UNMAPPED s3:DeleteObject"
    unmapped = Findings()
    code_actions(expected, calls, unmapped)
    ok = [(c.service, c.operation) for c in calls] == [("s3", "DeleteObject")] and any(
        m.startswith(marker) for m in unmapped.seen
    )
    (reported if ok else missed).append(f"{what} -> {marker}")
    return reported, missed


def main() -> int:
    expected = tomllib.loads((REPO / "scripts" / "permissions" / "expected.toml").read_text(encoding="utf-8"))
    try:
        scanner = rust_calls.Scanner(rust_calls.sdk_crates(REPO))
        calls, test_files = rust_calls.find_calls(REPO, scanner)
        ev = evaluate(expected, calls)
        found, matched = judge(ev)
        reported, missed = self_test(ev, expected, scanner)
    except (EvalError, rust_calls.SourceError) as e:
        print(f"permissions: cannot run the check: {e}", file=sys.stderr)
        return 2

    sites = ev["sites"]
    total, refused = ev["counts"]
    print(f"calls in src/ (test code left out: {len(test_files)} files and every #[cfg(test)] block):")
    not_granted = {a: e for e in expected["not_granted"] for a in e["actions"]}
    for action in sorted(sites):
        where = ", ".join(sites[action])
        if action in not_granted:
            print(f"  {action:44} {where}\n  {'':44} not granted: {not_granted[action]['why']}")
        else:
            grants = "; ".join(sorted(matched.get(action, []))) or "NOT MATCHED"
            print(f"  {action:44} {where}\n  {'':44} granted by {grants}")
    implied = sorted({a for e in expected["implied"] for a in e["actions"]} | {a for k in expected["sql"]["kinds"].values() for a in k["glue"]})
    print("granted with a written reason, for what services do as the caller (scripts/permissions/expected.toml):")
    for action in implied:
        grants = "; ".join(sorted(matched.get(action, []))) or "NOT MATCHED"
        print(f"  {action:44} {grants}")
    print("Resource \"*\" allowed for actions without a resource type: " + ", ".join(sorted(expected["star_resource"])))
    print(f"scenarios: {total} combinations of the switches, {refused} refused by the module's preconditions, {len(ev['runs'])} checked")

    print("self-test, each tampering must be reported:")
    for line in reported:
        print(f"  reported: {line}")
    problems = found.lines() + [f"the self-test's {m} was not reported" for m in missed]
    for p in problems:
        print(f"  FAILED {p}")
    matched_count = sum(1 for a in sites if a not in not_granted and a in matched)
    print(f"permissions: {matched_count} operations called in src/ matched to their grants, "
          f"{len(not_granted)} not granted on purpose, {len(implied)} service-side actions; "
          f"{len(problems)} problem{'' if len(problems) == 1 else 's'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
