#!/usr/bin/env python3
"""Runs trailhound's rendered Athena SQL on DuckDB over a folder of CloudTrail objects.

The AWS emulator accepts Athena queries without running them, so the tests prove the SQL here:
the statements are the very text the Athena source sends, transpiled from Athena's dialect
(Trino for queries, Hive for DDL) to DuckDB's by sqlglot.

    run_athena_sql.py --logs DIR --ddl FILE [--ddl FILE ...] [--query FILE ...]

DIR holds objects in CloudTrail's S3 layout (`AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/
YYYY/MM/DD/NAME`) as they would lie under the bucket (and prefix) of the table's LOCATION.

The DDL files are executed in order, as Athena would:
  CREATE DATABASE                       a DuckDB schema
  CREATE EXTERNAL TABLE                 a DuckDB table with the same columns, types and partition
                                        columns, plus "$path"; the objects are then loaded the way
                                        Athena would read them (below)
  ALTER TABLE ... SET TBLPROPERTIES     updates the table's properties (partition projection)
  ALTER TABLE ... ADD IF NOT EXISTS PARTITION
                                        registers partitions (managed mode)

Loading follows Athena: only objects under the table's LOCATION, in a partition that exists
(projected from TBLPROPERTIES, or added), with partition values from the partition, not from
the data. Each element of an object's `Records` array is one row (CloudTrailInputFormat).
Values are typed as the Hive JsonSerDe types them: keys match columns case-insensitively,
a JSON object or array in a STRING column is kept as its JSON text, a JSON bool or number in a
STRING column as its text, anything else of the wrong shape is NULL.

The queries' rows are printed on stdout as a JSON array with one object per query, in order:
  [{"columns": [NAME, ...], "rows": [[VALUE-or-null, ...], ...]}, ...]
with every value as the text Athena's GetQueryResults gives (numbers in decimal, booleans as
true/false), so the Rust side types them with the same code it uses for Athena's results.
What was loaded and skipped is reported on stderr.
"""

import argparse
import datetime
import gzip
import json
import os
import re
import sys
import tempfile

import duckdb
import sqlglot
from sqlglot import exp

# Athena's DDL is Hive; its queries are Trino. sqlglot's "athena" dialect picks between them.
READ_DIALECT = "athena"

# Trino functions that sqlglot passes through unchanged, defined in DuckDB with Trino's meaning.
TRINO_SHIMS = [
    # slice(array, start, length): `length` elements from the 1-based `start`.
    "CREATE MACRO slice(a, s, n) AS list_slice(a, s, s + n - 1)",
]


class Table:
    """What a CREATE EXTERNAL TABLE said, and what later DDL added."""

    def __init__(self, schema, name, columns, partitions, location, properties):
        self.schema = schema
        self.name = name
        self.columns = columns  # [(name, sqlglot DataType)]
        self.partitions = partitions  # [name]
        self.location = location
        self.properties = properties  # {key: value}
        self.added = {}  # managed partitions: location -> {column: value}

    def projected(self):
        return self.properties.get("projection.enabled", "false").lower() == "true"


def fail(message):
    print(f"run_athena_sql.py: {message}", file=sys.stderr)
    sys.exit(2)


def literal(node):
    return node.this if isinstance(node, exp.Literal) else node.sql()


def create_table(statement):
    schema_node = statement.this
    table = schema_node.this
    columns = [
        (c.name.lower(), c.args["kind"])
        for c in schema_node.expressions
        if isinstance(c, exp.ColumnDef)
    ]
    partitions, location, properties = [], None, {}
    for prop in statement.args["properties"].expressions:
        if isinstance(prop, exp.PartitionedByProperty):
            partitions = [c.name.lower() for c in prop.this.expressions]
        elif isinstance(prop, exp.LocationProperty):
            location = literal(prop.this)
        elif type(prop) is exp.Property:
            properties[literal(prop.this)] = literal(prop.args["value"])
    if location is None:
        fail("the CREATE TABLE statement has no LOCATION")
    return Table(table.db, table.name, columns, partitions, location, properties)


# The clauses of ALTER TABLE ... ADD IF NOT EXISTS PARTITION (...) LOCATION '...' [...].
PARTITION_CLAUSE = re.compile(
    r"PARTITION\s*\(([^)]*)\)\s*LOCATION\s*'((?:[^']|'')*)'", re.IGNORECASE
)
PARTITION_VALUE = re.compile(r"(\w+)\s*=\s*'((?:[^']|'')*)'")


def add_partitions(text, table):
    for spec, location in PARTITION_CLAUSE.findall(text):
        values = {k.lower(): v.replace("''", "'") for k, v in PARTITION_VALUE.findall(spec)}
        if set(values) != set(table.partitions):
            fail(f"partition {values} does not name the columns {table.partitions}")
        table.added[location.replace("''", "'").rstrip("/") + "/"] = values


ADD_PARTITIONS = re.compile(
    r"^\s*ALTER\s+TABLE\s+(\S+)\s+ADD\s+IF\s+NOT\s+EXISTS\s+(.*)$", re.IGNORECASE | re.DOTALL
)


def run_add_partitions(match, tables):
    """sqlglot parses one PARTITION clause of an ADD, not several: each clause is parsed on its
    own, to prove it well formed, then read."""
    target, clauses = match.groups()
    found = PARTITION_CLAUSE.findall(clauses)
    rest = PARTITION_CLAUSE.sub("", clauses).strip()
    if not found or rest:
        fail(f"ADD IF NOT EXISTS has no PARTITION ... LOCATION clauses, or text besides them: {rest[:80]!r}")
    for clause in PARTITION_CLAUSE.finditer(clauses):
        single = f"ALTER TABLE {target} ADD IF NOT EXISTS {clause.group(0)}"
        statement = sqlglot.parse_one(single, read=READ_DIALECT, error_level=sqlglot.ErrorLevel.RAISE)
        if not isinstance(statement, exp.Alter):
            fail(f"not a partition clause: {clause.group(0)}")
    table_node = sqlglot.parse_one(f"SELECT 1 FROM {target}", read=READ_DIALECT).find(exp.Table)
    table = tables.get((table_node.db, table_node.name))
    if table is None:
        fail(f"ALTER TABLE of a table not created first: {target}")
    add_partitions(clauses, table)


def run_ddl(text, con, tables):
    match = ADD_PARTITIONS.match(text)
    if match:
        run_add_partitions(match, tables)
        return
    statement = sqlglot.parse_one(text, read=READ_DIALECT, error_level=sqlglot.ErrorLevel.RAISE)
    if isinstance(statement, exp.Create) and statement.args.get("kind") == "DATABASE":
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{statement.this.name}"')
        return
    if isinstance(statement, exp.Create) and statement.args.get("kind") == "TABLE":
        table = create_table(statement)
        tables[(table.schema, table.name)] = table
        return
    if isinstance(statement, exp.Alter):
        target = statement.this
        table = tables.get((target.db, target.name))
        if table is None:
            fail(f"ALTER TABLE of a table not created first: {target.sql()}")
        for action in statement.args.get("actions", []):
            if isinstance(action, exp.AlterSet):
                for props in action.expressions:
                    for prop in props.expressions:
                        table.properties[literal(prop.this)] = literal(prop.args["value"])
            else:
                fail(f"unsupported ALTER TABLE action: {action.sql()}")
        return
    fail(f"unsupported DDL statement: {text[:80]}")


# --- Partitions ---------------------------------------------------------------------------


def projection_matcher(table):
    """A function from an object's folder to its partition values, or None, by the table's
    projection rules."""
    props = table.properties
    template = props.get("storage.location.template")
    if template is None:
        fail("projection is enabled but storage.location.template is not set")
    pattern = re.escape(template.rstrip("/") + "/")
    rules = {}
    for column in table.partitions:
        kind = props.get(f"projection.{column}.type")
        if kind == "injected":
            group = r"[^/]+"
            rules[column] = None
        elif kind == "enum":
            values = props.get(f"projection.{column}.values", "").split(",")
            group = "|".join(re.escape(v) for v in values)
            rules[column] = None
        elif kind == "date":
            fmt = props.get(f"projection.{column}.format")
            if fmt != "yyyy/MM/dd":
                fail(f"date projection format {fmt!r} is not supported here")
            group = r"[0-9]{4}/[0-9]{2}/[0-9]{2}"
            start, end = props.get(f"projection.{column}.range", "").split(",")
            rules[column] = (start, end)
        else:
            fail(f"projection.{column}.type = {kind!r} is not supported here")
        pattern = pattern.replace(re.escape("${" + column + "}"), f"(?P<{column}>{group})")
    compiled = re.compile(pattern + "$")
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")

    def match(folder):
        m = compiled.match(folder)
        if not m:
            return None
        values = m.groupdict()
        for column, rule in rules.items():
            if rule is not None:
                start, end = rule
                end = today if end.strip().upper() == "NOW" else end
                if not start <= values[column] <= end:
                    return None
        return values

    return match


def partition_of(table, matcher, folder):
    """The partition values of the objects in `folder`, or None when Athena would not read
    them: with projection, by the projection rules; otherwise only added partitions."""
    if matcher is not None:
        return matcher(folder)
    return table.added.get(folder)


# --- Typing records as the JsonSerDe does --------------------------------------------------


def convert(value, dtype):
    """`value` (decoded JSON) as the column type `dtype` would hold it."""
    if value is None:
        return None
    kind = dtype.this
    if kind == exp.DataType.Type.STRUCT:
        if not isinstance(value, dict):
            return None
        lowered = {k.lower(): v for k, v in value.items()}
        return {f.name.lower(): convert(lowered.get(f.name.lower()), f.args["kind"]) for f in dtype.expressions}
    if kind == exp.DataType.Type.ARRAY:
        if not isinstance(value, list):
            return None
        return [convert(v, dtype.expressions[0]) for v in value]
    if kind == exp.DataType.Type.MAP:
        if not isinstance(value, dict):
            return None
        return {str(k): convert(v, dtype.expressions[1]) for k, v in value.items()}
    if kind in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return json.dumps(value)
    fail(f"column type {dtype.sql('hive')} is not supported here")


def read_records(path, stats):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        body = json.loads(data)
    except ValueError as e:
        stats["objects_unreadable"] += 1
        print(f"run_athena_sql.py: skipped {path}: {e}", file=sys.stderr)
        return []
    records = body.get("Records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        stats["objects_unreadable"] += 1
        return []
    return [r for r in records if isinstance(r, dict)]


def load(con, table, logs, out):
    """Writes the table's rows as JSON lines to `out` and loads them into DuckDB."""
    if not table.location.startswith("s3://") or "AWSLogs/" not in table.location:
        fail(f"LOCATION {table.location} is not s3://BUCKET/[PREFIX/]AWSLogs/...")
    base = table.location[: table.location.index("AWSLogs/")]
    matcher = projection_matcher(table) if table.projected() else None
    stats = {"objects": 0, "objects_outside": 0, "objects_unreadable": 0, "records": 0}
    for folder, _, files in sorted(os.walk(logs)):
        for name in sorted(files):
            if name.startswith((".", "_")):
                continue
            relative = os.path.relpath(os.path.join(folder, name), logs).replace(os.sep, "/")
            s3_path = base + relative
            object_folder = s3_path.rsplit("/", 1)[0] + "/"
            partition = partition_of(table, matcher, object_folder) if s3_path.startswith(table.location) else None
            if partition is None:
                stats["objects_outside"] += 1
                continue
            stats["objects"] += 1
            for record in read_records(os.path.join(folder, name), stats):
                row = {c: convert(record_value(record, c), t) for c, t in table.columns}
                row["$path"] = s3_path
                row.update(partition)
                out.write(json.dumps(row, ensure_ascii=False))
                out.write("\n")
                stats["records"] += 1
    out.flush()
    names = [c for c, _ in table.columns] + ["$path"] + table.partitions
    types = [t.sql("duckdb") for _, t in table.columns] + ["VARCHAR"] * (1 + len(table.partitions))
    columns_sql = ", ".join(f'"{n}" {t}' for n, t in zip(names, types))
    qualified = f'"{table.schema}"."{table.name}"'
    con.execute(f"CREATE TABLE {qualified} ({columns_sql})")
    if stats["records"]:
        spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in zip(names, types)) + "}"
        con.execute(
            f"INSERT INTO {qualified} SELECT * FROM read_json('{out.name}', "
            f"format = 'newline_delimited', columns = {spec}, maximum_object_size = 1073741824)"
        )
    return stats


def record_value(record, column):
    for key, value in record.items():
        if key.lower() == column:
            return value
    return None


# --- Results as Athena gives them -----------------------------------------------------------


def as_athena_text(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", required=True, help="folder holding AWSLogs/")
    parser.add_argument("--ddl", action="append", default=[], help="a rendered DDL statement, in order")
    parser.add_argument("--query", action="append", default=[], help="a rendered query to run")
    parser.add_argument("--print-duckdb", action="store_true", help="print the transpiled query to stderr")
    args = parser.parse_args()

    con = duckdb.connect()
    for shim in TRINO_SHIMS:
        con.execute(shim)
    tables = {}
    for path in args.ddl:
        with open(path, encoding="utf-8") as f:
            run_ddl(f.read(), con, tables)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as out:
        for table in tables.values():
            stats = load(con, table, args.logs, out)
            print(f"run_athena_sql.py: {table.schema}.{table.name}: {json.dumps(stats)}", file=sys.stderr)
            out.seek(0)
            out.truncate()
    results = []
    for path in args.query:
        with open(path, encoding="utf-8") as f:
            athena_sql = f.read()
        statements = sqlglot.transpile(athena_sql, read=READ_DIALECT, write="duckdb")
        if len(statements) != 1:
            fail(f"{path}: expected one query, got {len(statements)}")
        if args.print_duckdb:
            print(statements[0], file=sys.stderr)
        cursor = con.execute(statements[0])
        columns = [d[0] for d in cursor.description]
        rows = [[as_athena_text(v) for v in row] for row in cursor.fetchall()]
        results.append({"columns": columns, "rows": rows})
    json.dump(results, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
