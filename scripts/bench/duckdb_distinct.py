#!/usr/bin/env python3
"""The DuckDB contender of scripts/bench.sh: the distinct (account, principal, eventSource,
eventName, outcome) rows of a list of CloudTrail files, with DuckDB's read_json and SQL.

    duckdb_distinct.py --list FILES --out ROWS.jsonl [--threads 2]

FILES names one file per line. The rows are computed as trailhound's scan computes them:
principal keys as Principal::of (src/cloudtrail/principal.rs), outcome classes as Outcome::of,
the account from the CloudTrail object name, else recipientAccountId, else
userIdentity.accountId (src/source/fold.rs). Records without string eventSource/eventName, a
parseable eventTime or a principal are left out. Prints one JSON array per row to ROWS, and a
summary (rows, records) as JSON on stdout.

How each file is read depends on its shape: CloudTrail-named objects are {"Records":[...]}
as CloudTrail delivers them; other files are looked at (their first bytes) and read as a bare
array of records, as {"Records":[...]} documents, or as one record per line. Every read gets
explicit column types, so DuckDB neither samples the files nor infers a schema per file.
"""

import argparse
import gzip
import json
import os
import re
import sys

import duckdb

NAMED = re.compile(r"^[0-9]{12}_CloudTrail_[a-z][a-z0-9-]{0,31}_[0-9]{8}T[0-9]{4}Z(_|$)")

TEXT = "VARCHAR"
IDENTITY = (
    "STRUCT(type VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR, "
    "userName VARCHAR, invokedBy VARCHAR, identityProvider VARCHAR, "
    "sessionContext STRUCT(sessionIssuer STRUCT(arn VARCHAR)), "
    "onBehalfOf STRUCT(userId VARCHAR, identityStoreArn VARCHAR))"
)
FIELDS = {
    "eventTime": TEXT,
    "eventSource": TEXT,
    "eventName": TEXT,
    "errorCode": TEXT,
    "recipientAccountId": TEXT,
    "userIdentity": IDENTITY,
}
RECORD = "STRUCT(" + ", ".join(f'"{k}" {v}' for k, v in FIELDS.items()) + ")"


def duck_struct(fields):
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in fields.items()) + "}"


def shape(path):
    """'records' ({"Records":[...]}), 'array' or 'lines', from the first bytes of a file."""
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        head = f.read(65536).lstrip()
    if head.startswith(b"["):
        return "array"
    # An object whose first key is Records (CloudTrail writes it first), else one record a line.
    if re.match(rb'\{\s*"Records"\s*:', head):
        return "records"
    return "lines"


# SQL macros: Text::get (a string field, "" is absent) and the pieces of Principal::of.
MACROS = r"""
CREATE OR REPLACE MACRO txt(s) AS nullif(s, '');
CREATE OR REPLACE MACRO session_head(a) AS regexp_extract(a, '^(.*?):assumed-role/', 1);
CREATE OR REPLACE MACRO session_role(a) AS regexp_extract(a, ':assumed-role/([^/]*)', 1);
CREATE OR REPLACE MACRO role_from_session(a) AS CASE
  WHEN a IS NULL OR NOT contains(a, ':assumed-role/') THEN NULL
  WHEN session_role(a) = '' OR NOT contains(session_head(a), '::') THEN NULL
  WHEN NOT starts_with(regexp_extract(session_head(a), '^(.*)::', 1), 'arn:') THEN NULL
  ELSE 'arn:' || split_part(substr(regexp_extract(session_head(a), '^(.*)::', 1), 5), ':', 1)
    || ':iam::' || regexp_extract(session_head(a), '^.*::(.*)$', 1) || ':role/' || session_role(a)
END;
"""

# The principal key of Principal::of, over the typed columns of a record `r`.
PRINCIPAL = r"""
CASE kind
  WHEN 'Root' THEN coalesce(arn, 'arn:aws:iam::' || pacct || ':root')
  WHEN 'IAMUser' THEN coalesce(
    arn,
    'arn:aws:iam::' || pacct || ':user/' || uname,
    'iam-user:' || pacct || ':' || pid)
  WHEN 'AssumedRole' THEN coalesce(
    issuer,
    role_from_session(arn),
    'role-id:' || pacct || ':' || split_part(pid, ':', 1))
  WHEN 'FederatedUser' THEN coalesce(issuer, arn, 'federated:' || pacct || ':' || pid)
  WHEN 'AWSService' THEN 'service:' || coalesce(invoked, pid)
  WHEN 'AWSAccount' THEN 'aws-account:' || coalesce(split_part(pid, ':', 1), idacct)
  WHEN 'IdentityCenterUser' THEN
    'identity-center:' || coalesce(obo_store, 'identitystore') || ':' || coalesce(obo_user, pid)
  WHEN 'WebIdentityUser' THEN
    'web-identity:' || coalesce(provider, 'unknown-provider') || ':' || coalesce(uname, pid)
  WHEN 'SAMLUser' THEN
    'saml:' || coalesce(provider, 'unknown-provider') || ':' || coalesce(uname, pid)
  ELSE coalesce(arn, 'unknown:' || pacct || ':' || pid)
END
"""

OUTCOME = r"""
CASE
  WHEN errcode IS NULL THEN 'success'
  WHEN regexp_matches(lower(errcode),
    'accessdenied|unauthorized|notauthorized|forbidden|authfailure|invalidclienttokenid|signaturedoesnotmatch')
    THEN 'denied'
  WHEN regexp_matches(lower(errcode), 'throttl|limitexceeded|slowdown') THEN 'throttled'
  ELSE 'failed'
END
"""

TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
)


def query(sources):
    """The whole statement over the reads in `sources` (SQL texts of (filename, r) rows)."""
    reads = "\nUNION ALL\n".join(sources)
    return f"""
WITH recs AS (
{reads}
),
fields AS (
  SELECT
    CASE WHEN regexp_matches(parse_filename(filename), '{NAMED.pattern}')
      THEN left(parse_filename(filename), 12) END AS name_account,
    r.eventSource AS source,
    r.eventName AS name,
    r.eventTime AS time,
    txt(r.errorCode) AS errcode,
    txt(r.recipientAccountId) AS recipient,
    r.userIdentity AS id,
    txt(r.userIdentity.accountId) AS idacct,
    txt(r.userIdentity.arn) AS arn,
    txt(r.userIdentity.principalId) AS pid,
    txt(r.userIdentity.userName) AS uname,
    txt(r.userIdentity.invokedBy) AS invoked,
    txt(r.userIdentity.identityProvider) AS provider,
    txt(r.userIdentity.sessionContext.sessionIssuer.arn) AS issuer,
    txt(r.userIdentity.onBehalfOf.userId) AS obo_user,
    txt(r.userIdentity.onBehalfOf.identityStoreArn) AS obo_store,
    txt(r.userIdentity.type) AS itype
  FROM recs
),
accounted AS (
  SELECT *,
    coalesce(name_account,
      CASE WHEN regexp_matches(coalesce(recipient, idacct), '^[0-9]{{12}}$')
        THEN coalesce(recipient, idacct) END) AS account
  FROM fields
  WHERE source IS NOT NULL AND name IS NOT NULL
    AND regexp_matches(coalesce(time, ''), '{TIME}')
),
kinded AS (
  SELECT *,
    coalesce(idacct, recipient, account) AS pacct,
    CASE
      WHEN itype IN ('Root', 'IAMUser', 'AssumedRole', 'FederatedUser', 'AWSService',
                     'AWSAccount', 'IdentityCenterUser', 'WebIdentityUser', 'SAMLUser') THEN itype
      WHEN itype IS NOT NULL THEN 'Unknown'
      WHEN invoked IS NOT NULL AND arn IS NULL THEN 'AWSService'
      ELSE 'Unknown'
    END AS kind
  FROM accounted
  WHERE account IS NOT NULL AND id IS NOT NULL
),
keyed AS (
  SELECT account, {PRINCIPAL} AS principal, source, name, {OUTCOME} AS outcome
  FROM kinded
)
SELECT account, principal, source, name, outcome, count(*) AS records
FROM keyed
WHERE principal IS NOT NULL
GROUP BY ALL
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    with open(args.list, encoding="utf-8") as f:
        files = [line.rstrip("\n") for line in f if line.strip()]

    groups = {"records": [], "array": [], "lines": []}
    for path in files:
        kind = "records" if NAMED.match(os.path.basename(path)) else shape(path)
        groups[kind].append(path)

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(MACROS)
    sources, params = [], {}
    if groups["records"]:
        params["records"] = groups["records"]
        sources.append(
            "  SELECT filename, unnest(Records) AS r FROM read_json($records, "
            f"format = 'unstructured', columns = {duck_struct({'Records': RECORD + '[]'})}, "
            "filename = true, maximum_object_size = 1073741824)"
        )
    for kind, fmt in (("array", "array"), ("lines", "unstructured")):
        if groups[kind]:
            params[kind] = groups[kind]
            cols = ", ".join(f'"{k}"' for k in FIELDS)
            pack = ", ".join(f'"{k}" := "{k}"' for k in FIELDS)
            sources.append(
                f"  SELECT filename, struct_pack({pack}) AS r FROM (SELECT filename, {cols} "
                f"FROM read_json(${kind}, format = '{fmt}', columns = {duck_struct(FIELDS)}, "
                "filename = true, maximum_object_size = 1073741824))"
            )
    if not sources:
        print("duckdb_distinct.py: no files", file=sys.stderr)
        return 2
    rows = con.execute(query(sources), params).fetchall()
    with open(args.out, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(list(row[:5]), ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
    print(json.dumps({"rows": len(rows), "records": sum(r[5] for r in rows),
                      "files": {k: len(v) for k, v in groups.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
