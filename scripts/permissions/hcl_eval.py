"""A Terraform module as python-hcl2 parses it, and just enough of Terraform's expression
language to evaluate its IAM policy documents for given variable values: string templates,
references to variables, locals, data sources and resources, `? :`, `||`, `&&`, `!`,
comparisons, lists, and the functions concat, length and coalesce.

Anything else raises EvalError naming the expression, so that a policy written in a form this
file does not know fails the check instead of being misread.

References to resource attributes (`aws_kms_key.this.arn`) evaluate to the text
`<aws_kms_key.this.arn>`: one specific resource of the module, known only after apply.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import hcl2


class EvalError(Exception):
    pass


def unquote_key(key: str) -> str:
    """python-hcl2 keeps the quotes of block labels (`"aws_iam_role"`)."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


# ---------------------------------------------------------------------------------------------
# Tokens and parsing

_PUNCT = ["==", "!=", ">=", "<=", "||", "&&", "?", ":", "!", ">", "<", "(", ")", "[", "]", ",", "."]


def _scan_string(text: str, i: int) -> int:
    """Index just past the closing quote of the string literal opening at text[i]."""
    assert text[i] == '"'
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if text.startswith("${", i):
            i = _scan_braces(text, i + 1)
            continue
        i += 1
    raise EvalError(f"unterminated string in {text!r}")


def _scan_braces(text: str, i: int) -> int:
    """Index just past the `}` matching the `{` at text[i], skipping strings inside."""
    assert text[i] == "{"
    depth = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _scan_string(text, i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise EvalError(f"unbalanced braces in {text!r}")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == '"':
            end = _scan_string(text, i)
            out.append(("str", text[i + 1 : end - 1]))
            i = end
        elif c.isdigit():
            m = re.match(r"\d+", text[i:])
            out.append(("num", int(m.group(0))))
            i += len(m.group(0))
        elif c.isalpha() or c == "_":
            m = re.match(r"[A-Za-z_][A-Za-z0-9_-]*", text[i:])
            out.append(("id", m.group(0)))
            i += len(m.group(0))
        else:
            for p in _PUNCT:
                if text.startswith(p, i):
                    out.append(("op", p))
                    i += len(p)
                    break
            else:
                raise EvalError(f"cannot read `{text[i:]}` in {text!r}")
    return out


@dataclass
class _Parser:
    text: str
    toks: list
    pos: int = 0

    def peek(self, kind=None, value=None):
        if self.pos >= len(self.toks):
            return None
        tok = self.toks[self.pos]
        if (kind is None or tok[0] == kind) and (value is None or tok[1] == value):
            return tok
        return None

    def take(self, kind=None, value=None):
        tok = self.peek(kind, value)
        if tok is None:
            got = self.toks[self.pos] if self.pos < len(self.toks) else "the end"
            raise EvalError(f"expected {value or kind}, got {got} in {self.text!r}")
        self.pos += 1
        return tok

    def expr(self):
        cond = self.binary(0)
        if self.peek("op", "?"):
            self.take()
            yes = self.expr()
            self.take("op", ":")
            no = self.expr()
            return ("if", cond, yes, no)
        return cond

    _LEVELS = [["||"], ["&&"], ["==", "!=", ">", "<", ">=", "<="]]

    def binary(self, level):
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (tok := self.peek("op")) and tok[1] in self._LEVELS[level]:
            self.take()
            left = ("bin", tok[1], left, self.binary(level + 1))
        return left

    def unary(self):
        if self.peek("op", "!"):
            self.take()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while True:
            if self.peek("op", "."):
                self.take()
                node = ("attr", node, self.take("id")[1])
            elif self.peek("op", "["):
                self.take()
                index = self.expr()
                self.take("op", "]")
                node = ("index", node, index)
            else:
                return node

    def primary(self):
        tok = self.take()
        kind, value = tok
        if kind == "num":
            return ("lit", value)
        if kind == "str":
            return ("tmpl", value)
        if kind == "op" and value == "(":
            inner = self.expr()
            self.take("op", ")")
            return inner
        if kind == "op" and value == "[":
            items = []
            while not self.peek("op", "]"):
                items.append(self.expr())
                if not self.peek("op", ","):
                    break
                self.take()
            self.take("op", "]")
            return ("list", items)
        if kind == "id":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            if self.peek("op", "("):
                self.take()
                args = []
                while not self.peek("op", ")"):
                    args.append(self.expr())
                    if not self.peek("op", ","):
                        break
                    self.take()
                self.take("op", ")")
                return ("call", value, args)
            return ("ref", value)
        raise EvalError(f"unexpected {value!r} in {self.text!r}")


def parse_expression(text: str):
    parser = _Parser(text, _tokens(text))
    node = parser.expr()
    if parser.pos != len(parser.toks):
        raise EvalError(f"trailing `{parser.toks[parser.pos:]}` in {text!r}")
    return node


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Path:
    """A reference not yet resolved to a value: `data.x.y`, `aws_kms_key.this`."""

    parts: tuple

    def text(self) -> str:
        return ".".join(self.parts)


class Module:
    """One Terraform module folder: its variables, locals, data, resources and preconditions."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self.files = sorted(p for p in folder.glob("*.tf"))
        if not self.files:
            raise EvalError(f"{folder}: no .tf file")
        self.variables: dict[str, dict] = {}
        self.locals: dict[str, Any] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.resources: dict[tuple[str, str], dict] = {}
        self.origin: dict[tuple[str, str], pathlib.Path] = {}
        for path in self.files:
            with path.open(encoding="utf-8") as f:
                doc = hcl2.load(f)
            for block in doc.get("variable", []):
                for name, body in block.items():
                    self.variables[unquote_key(name)] = body
            for block in doc.get("locals", []):
                for name, value in block.items():
                    if not name.startswith("__"):
                        self.locals[name] = value
            for kind, table in (("data", self.data), ("resource", self.resources)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for rname, body in named.items():
                            key = (unquote_key(rtype), unquote_key(rname))
                            table[key] = body
                            self.origin[key] = path

    def preconditions(self):
        """(resource, condition, error_message) of every lifecycle precondition."""
        for key, body in self.resources.items():
            for lifecycle in body.get("lifecycle", []):
                for pre in lifecycle.get("precondition", []):
                    yield key, pre["condition"], pre.get("error_message", "")


@dataclass
class Scope:
    """Variable values of one scenario, and the values of the data sources."""

    module: Module
    variables: dict[str, Any]
    data: dict[str, Any]
    bindings: dict[str, Any] = field(default_factory=dict)
    _locals: dict[str, Any] = field(default_factory=dict)
    _busy: set = field(default_factory=set)

    def var(self, name: str):
        if name in self.variables:
            return self.variables[name]
        decl = self.module.variables.get(name)
        if decl is None:
            raise EvalError(f"{self.module.folder}: var.{name} is not declared")
        if "default" not in decl:
            raise EvalError(
                f"{self.module.folder}: var.{name} has no default; give it a value in the "
                "scenarios' base values"
            )
        return self.value(decl["default"])

    def local(self, name: str):
        if name in self._locals:
            return self._locals[name]
        if name not in self.module.locals:
            raise EvalError(f"{self.module.folder}: local.{name} is not defined")
        if name in self._busy:
            raise EvalError(f"{self.module.folder}: local.{name} refers to itself")
        self._busy.add(name)
        try:
            result = self.value(self.module.locals[name])
        finally:
            self._busy.discard(name)
        self._locals[name] = result
        return result

    def child(self, **bindings) -> "Scope":
        return Scope(self.module, self.variables, self.data, {**self.bindings, **bindings}, self._locals, self._busy)

    # A value as python-hcl2 gives it: a str holding an expression (`${...}`), a quoted
    # template (`"..."`), or a bare literal; lists and dicts of those; bools and numbers.
    def value(self, raw):
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        if isinstance(raw, dict):
            return {k: self.value(v) for k, v in raw.items() if not k.startswith("__")}
        if not isinstance(raw, str):
            return raw
        text = raw.strip()
        if text.startswith("${") and _scan_braces(text, 1) == len(text):
            return self.eval(parse_expression(text[2:-1]))
        if text.startswith('"') and text.endswith('"') and _scan_string(text, 0) == len(text):
            return self.template(text[1:-1])
        return raw

    def template(self, body: str) -> Any:
        parts: list[str] = []
        i = 0
        while i < len(body):
            if body.startswith("$${", i):
                parts.append("${")
                i += 3
            elif body.startswith("${", i):
                end = _scan_braces(body, i + 1)
                value = self.eval(parse_expression(body[i + 2 : end - 1]))
                if body == body[i:end] and not isinstance(value, (str, Path)):
                    return value  # "${x}" alone keeps x's type
                parts.append(self.text(value, body))
                i = end
            elif body[i] == "\\" and i + 1 < len(body):
                parts.append({"n": "\n", "t": "\t"}.get(body[i + 1], body[i + 1]))
                i += 2
            else:
                parts.append(body[i])
                i += 1
        return "".join(parts)

    def text(self, value, where: str) -> str:
        if isinstance(value, Path):
            return self.resolve_path(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, str)):
            return str(value)
        raise EvalError(f"cannot write {value!r} into the string {where!r}")

    def resolve_path(self, path: Path) -> str:
        if path.parts[0] == "data":
            key = ".".join(path.parts[1:])
            if key not in self.data:
                raise EvalError(f"{self.module.folder}: no value for data.{key}; add it to the scenarios' data")
            return self.data[key]
        return f"<{path.text()}>"

    def eval(self, node):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "tmpl":
            return self.template(node[1])
        if kind == "list":
            return [self.eval(n) for n in node[1]]
        if kind == "if":
            return self.eval(node[2]) if self.truth(self.eval(node[1])) else self.eval(node[3])
        if kind == "not":
            return not self.truth(self.eval(node[1]))
        if kind == "bin":
            op, left = node[1], self.eval(node[2])
            if op == "||":
                return self.truth(left) or self.truth(self.eval(node[3]))
            if op == "&&":
                return self.truth(left) and self.truth(self.eval(node[3]))
            right = self.eval(node[3])
            left, right = (self.plain(left), self.plain(right))
            if op == "==":
                return left == right
            if op == "!=":
                return left != right
            return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
        if kind == "ref":
            name = node[1]
            if name in self.bindings:
                return self.bindings[name]
            return Path((name,))
        if kind == "attr":
            base = self.eval(node[1])
            name = node[2]
            if isinstance(base, Path):
                if base.parts == ("var",):
                    return self.var(name)
                if base.parts == ("local",):
                    return self.local(name)
                return Path(base.parts + (name,))
            if isinstance(base, dict) and name in base:
                return base[name]
            raise EvalError(f"cannot take .{name} of {base!r}")
        if kind == "index":
            base, index = self.eval(node[1]), self.eval(node[2])
            if isinstance(base, Path):
                return Path(base.parts[:-1] + (f"{base.parts[-1]}[{index}]",))
            return base[index]
        if kind == "call":
            return self.call(node[1], [self.eval(a) for a in node[2]])
        raise EvalError(f"cannot evaluate {node!r}")

    def plain(self, value):
        return self.resolve_path(value) if isinstance(value, Path) else value

    def truth(self, value) -> bool:
        if not isinstance(value, bool):
            raise EvalError(f"a condition must be true or false, got {value!r}")
        return value

    def call(self, name: str, args: list):
        if name == "concat":
            out = []
            for a in args:
                if not isinstance(a, list):
                    raise EvalError(f"concat of a non-list {a!r}")
                out.extend(a)
            return out
        if name == "length":
            return len(args[0])
        if name == "coalesce":
            for a in args:
                if a is not None and a != "":
                    return self.plain(a)
            raise EvalError("coalesce of nothing")
        raise EvalError(f"the function {name}() is not known to the permission check; extend scripts/permissions/hcl_eval.py")

    def strings(self, raw, what: str) -> list[str]:
        """A list of strings (actions, resources), whatever form it is written in."""
        value = self.value(raw)
        if isinstance(value, (str, Path)):
            value = [value]
        if not isinstance(value, list):
            raise EvalError(f"{what}: expected a list of strings, got {value!r}")
        return [self.text(v, what) for v in value]
