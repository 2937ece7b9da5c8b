"""The IAM statements of a Terraform module's roles, evaluated for one scenario.

Only inline policies made with `aws_iam_policy_document` and attached with
`aws_iam_role_policy` are read; anything else that could give a role permissions (managed
policy attachments, `aws_iam_policy`, `managed_policy_arns`, `inline_policy` blocks) is
reported by `other_grants`, so that it cannot slip past the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hcl_eval import EvalError, Module, Scope


@dataclass
class Statement:
    document: str  # the aws_iam_policy_document's name
    sid: str
    effect: str
    actions: list[str]
    resources: list[str]
    # Condition values by key, e.g. {"kms:ViaService": ["dynamodb.us-east-1.amazonaws.com"]}.
    conditions: dict[str, list[str]]
    has_principals: bool


def _single(scope: Scope, raw, what: str) -> str:
    values = scope.strings(raw, what)
    if len(values) != 1:
        raise EvalError(f"{what}: expected one string, got {values!r}")
    return values[0]


def _statement(scope: Scope, document: str, body: dict) -> Statement:
    where = f"data.aws_iam_policy_document.{document}"
    for forbidden in ("not_actions", "not_resources"):
        if forbidden in body:
            raise EvalError(f"{where}: {forbidden} grants everything else; the check refuses it")
    sid = _single(scope, body["sid"], f"{where} sid") if "sid" in body else "(no sid)"
    where = f"{where} statement {sid}"
    conditions: dict[str, list[str]] = {}
    for cond in body.get("condition", []):
        key = _single(scope, cond["variable"], f"{where} condition variable")
        conditions.setdefault(key, []).extend(scope.strings(cond["values"], f"{where} condition {key}"))
    return Statement(
        document=document,
        sid=sid,
        effect=_single(scope, body["effect"], f"{where} effect") if "effect" in body else "Allow",
        actions=scope.strings(body.get("actions", []), f"{where} actions"),
        resources=scope.strings(body.get("resources", []), f"{where} resources"),
        conditions=conditions,
        has_principals=bool(body.get("principals")),
    )


def document_statements(scope: Scope, name: str) -> list[Statement]:
    """The statements of `data "aws_iam_policy_document" NAME` present in this scenario."""
    body = scope.module.data.get(("aws_iam_policy_document", name))
    if body is None:
        raise EvalError(f"{scope.module.folder}: no data.aws_iam_policy_document.{name}")
    for unsupported in ("source_policy_documents", "override_policy_documents", "source_json", "override_json"):
        if unsupported in body:
            raise EvalError(f"data.aws_iam_policy_document.{name}: {unsupported} is not read by the check")
    out = [_statement(scope, name, s) for s in body.get("statement", [])]
    for block in body.get("dynamic", []):
        for label, dyn in block.items():
            if label.strip('"') != "statement":
                raise EvalError(f"data.aws_iam_policy_document.{name}: dynamic {label} is not read by the check")
            items = scope.value(dyn["for_each"])
            if isinstance(items, dict):
                pairs = list(items.items())
            elif isinstance(items, list):
                pairs = list(enumerate(items))
            else:
                raise EvalError(f"data.aws_iam_policy_document.{name}: for_each gave {items!r}")
            iterator = dyn.get("iterator", "statement")
            for key, value in pairs:
                inner = scope.child(**{iterator: {"key": key, "value": value}})
                for content in dyn["content"]:
                    out.append(_statement(inner, name, content))
    return out


_DOC = re.compile(r"^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}$")
_ROLE = re.compile(r"^\$\{aws_iam_role\.([A-Za-z0-9_-]+)\.(?:id|name)\}$")


def role_documents(module: Module) -> dict[str, list[str]]:
    """aws_iam_role NAME -> the policy documents attached to it with aws_iam_role_policy."""
    out: dict[str, list[str]] = {}
    for (rtype, rname), body in module.resources.items():
        if rtype != "aws_iam_role_policy":
            continue
        role = _ROLE.match(str(body.get("role", "")).strip())
        doc = _DOC.match(str(body.get("policy", "")).strip())
        if not role or not doc:
            raise EvalError(
                f"{module.origin[(rtype, rname)]}: aws_iam_role_policy.{rname} must name its role as "
                "aws_iam_role.X.id and its policy as data.aws_iam_policy_document.Y.json for the check to read it"
            )
        out.setdefault(role.group(1), []).append(doc.group(1))
    return out


def other_grants(module: Module) -> list[str]:
    """Ways a role could get permissions that the check does not read."""
    found = []
    for (rtype, rname), body in module.resources.items():
        place = f"{module.origin[(rtype, rname)]}: {rtype}.{rname}"
        if rtype in ("aws_iam_role_policy_attachment", "aws_iam_policy_attachment", "aws_iam_policy"):
            found.append(f"{place}: managed policies are not read by the permission check")
        if rtype == "aws_iam_role" and ("managed_policy_arns" in body or "inline_policy" in body):
            found.append(f"{place}: managed_policy_arns and inline_policy are not read by the permission check")
    return found
