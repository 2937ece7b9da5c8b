"""The Athena side of the cost model, executed on DuckDB (the SQL engine of the tests).

Which objects a statement makes Athena read is decided before any row is read, by the
statement's own predicates:
  partition predicates  conjuncts over the partition columns only (account, region,
                        delivery_date): Athena lists and reads the partitions they select
  "$path" domains       conjuncts over "$path" alone made of comparisons with constants (=, <,
                        >=, IN, BETWEEN, AND, OR): Trino's Hive connector, Athena's engine, turns
                        them into a domain of the column and skips every file outside it
Any other conjunct (regexp_extract("$path", ...), eventTime) is evaluated on rows, after the
objects have been read: it prunes nothing. Each predicate is taken from the rendered statement
with sqlglot and run, transpiled, against a catalog table of the sampled objects ("$path",
account, region, delivery_date, size, delivery minute); only objects delivered before the
statement runs exist.

It also runs the whole activity query on DuckDB over the sampled objects, as the tests do
(tests/sql/run_athena_sql.py loads them as Athena would), with and without its "$path" ranges,
to show that the ranges lose no row.
"""

import csv
import json
import os
import sys
import tempfile

import duckdb
import sqlglot
from sqlglot import exp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "sql"))
import run_athena_sql  # noqa: E402  (the tests' loader and dialect shims)

PARTITION_COLUMNS = {"account", "region", "delivery_date"}
COMPARISONS = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def is_domain(node):
    """Whether `node` is a predicate a connector can read as a set of ranges of one column:
    comparisons and IN lists of a bare column against constants, combined with AND and OR."""
    if isinstance(node, exp.Paren):
        return is_domain(node.this)
    if isinstance(node, (exp.And, exp.Or)):
        return is_domain(node.left) and is_domain(node.right)
    if isinstance(node, exp.Boolean):
        return True
    if isinstance(node, COMPARISONS):
        sides = (node.left, node.right)
        return any(isinstance(s, exp.Column) for s in sides) and any(isinstance(s, exp.Literal) for s in sides)
    if isinstance(node, exp.In):
        return isinstance(node.this, exp.Column) and all(isinstance(e, exp.Literal) for e in node.expressions)
    if isinstance(node, exp.Between):
        return isinstance(node.this, exp.Column) and isinstance(node.args["low"], exp.Literal) \
            and isinstance(node.args["high"], exp.Literal)
    return False


def kind(conjunct):
    columns = {c.name for c in conjunct.find_all(exp.Column)}
    if columns and columns <= PARTITION_COLUMNS:
        return "partition"
    if columns == {"$path"} and is_domain(conjunct):
        return "path"
    return "row"


def scan_select(ast):
    """The SELECT that reads the table: the `delivered` CTE of the activity query, else the
    statement itself."""
    for cte in ast.find_all(exp.CTE):
        if cte.alias == "delivered":
            return cte.this
    return ast


def predicates(athena_sql):
    """{'partition': [...], 'path': [...], 'row': [...]}: the conjuncts of the statement's
    table scan, as DuckDB SQL."""
    where = scan_select(sqlglot.parse_one(athena_sql, read=run_athena_sql.READ_DIALECT)).args["where"].this
    parts = {"partition": [], "path": [], "row": []}
    for c in (where.flatten() if isinstance(where, exp.And) else [where]):
        parts[kind(c)].append(c.sql(dialect="duckdb"))
    return parts


def both(conditions):
    return " AND ".join(f"({c})" for c in conditions) or "TRUE"


class Catalog:
    """The sampled objects as a DuckDB table, and the partitions Athena would have."""

    def __init__(self, objs, regions_of):
        self.con = duckdb.connect()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["$path", "account", "region", "delivery_date", "size", "delivered"])
            for o in objs:
                w.writerow([o.path, o.account, o.region, o.delivery_date, o.size,
                            o.delivered.strftime("%Y-%m-%d %H:%M:%S")])
            f.flush()
            self.con.execute(
                "CREATE TABLE catalog AS SELECT * FROM read_csv(?, header = true, columns = "
                "{'$path': 'VARCHAR', 'account': 'VARCHAR', 'region': 'VARCHAR', "
                "'delivery_date': 'VARCHAR', 'size': 'BIGINT', 'delivered': 'TIMESTAMP'})",
                [f.name])
        # Partition projection has a partition for every configured region and every day, with
        # objects or not; the catalog's days are the ones any statement here can name.
        self.con.execute("CREATE TABLE partitions (account VARCHAR, region VARCHAR, delivery_date VARCHAR)")
        days = sorted({o.delivery_date for o in objs})
        rows = [(a, r, d) for a, regions in regions_of.items() for r in regions for d in days]
        self.con.executemany("INSERT INTO partitions VALUES (?, ?, ?)", rows)

    def read(self, conditions, exists_before):
        """(objects, bytes) that `conditions` leave of the objects that exist at
        `exists_before`."""
        objects, size = self.con.execute(
            f"SELECT count(*), coalesce(sum(size), 0) FROM catalog "
            f"WHERE delivered < TIMESTAMP '{exists_before:%Y-%m-%d %H:%M:%S}' AND {both(conditions)}"
        ).fetchone()
        return objects, size

    def partitions(self, conditions):
        """How many partitions `conditions` select: the folders Athena lists."""
        return self.con.execute(f"SELECT count(*) FROM partitions WHERE {both(conditions)}").fetchone()[0]

    def delivered(self, account, start, end):
        """(objects, bytes) delivered in [start, end): the window's objects, by their names."""
        return self.con.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM catalog WHERE account = ? "
            "AND delivered >= ? AND delivered < ?", [account, start, end]).fetchone()

    def against_window(self, conditions, account, start, end, exists_before):
        """(extra, missing): existing objects `conditions` choose outside the window, and
        objects of the window they leave out."""
        return self.con.execute(
            f"SELECT count(*) FILTER (WHERE chosen AND NOT inside), "
            f"count(*) FILTER (WHERE inside AND NOT chosen) FROM ("
            f"SELECT ({both(conditions)}) AS chosen, "
            f"(account = ? AND delivered >= ? AND delivered < ?) AS inside FROM catalog "
            f"WHERE delivered < TIMESTAMP '{exists_before:%Y-%m-%d %H:%M:%S}')",
            [account, start, end]).fetchone()


def without_path_ranges(athena_sql):
    """The statement as DuckDB runs it, and the same without its "$path" domain conjuncts:
    what Athena ran before they were added."""
    ast = sqlglot.parse_one(athena_sql, read=run_athena_sql.READ_DIALECT)
    full = ast.sql(dialect="duckdb")
    select = scan_select(ast)
    where = select.args["where"].this
    kept = [c for c in (where.flatten() if isinstance(where, exp.And) else [where]) if kind(c) != "path"]
    select.set("where", exp.Where(this=exp.and_(*kept)))
    return full, ast.sql(dialect="duckdb")


def rows_of(con, duckdb_sql):
    cursor = con.execute(duckdb_sql)
    rows = [[run_athena_sql.as_athena_text(v) for v in row] for row in cursor.fetchall()]
    return sorted(rows, key=json.dumps)


def full_queries_agree(sample_dir, statements):
    """Runs each (ddl, activity) on DuckDB over the objects under `sample_dir`, with and without
    the "$path" ranges. Returns (windows, windows that differ, rows compared, records loaded)."""
    con = duckdb.connect()
    for shim in run_athena_sql.TRINO_SHIMS:
        con.execute(shim)
    tables, done = {}, set()
    for ddl, _ in statements:
        for text in ddl:
            if text not in done:
                done.add(text)
                run_athena_sql.run_ddl(text, con, tables)
    records = 0
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as out:
        for table in tables.values():
            records += run_athena_sql.load(con, table, sample_dir, out)["records"]
            out.seek(0)
            out.truncate()
    differ, compared = 0, 0
    for _, activity in statements:
        full, bare = without_path_ranges(activity)
        a, b = rows_of(con, full), rows_of(con, bare)
        differ += a != b
        compared += len(a)
    return len(statements), differ, compared, records
