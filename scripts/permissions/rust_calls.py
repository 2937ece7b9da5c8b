"""The AWS API operations the Rust code under src/ calls, found from the source.

An AWS SDK for Rust operation is a method of the service's client named after the operation,
taking no argument and returning a fluent builder: `client.list_objects_v2()`,
`self.client.put_object()`. So a call is `.NAME()` with empty parentheses where NAME is an
operation of one of the SDK crates the project depends on; which operations each crate has is
read from the crate itself (its `src/operation/NAME.rs` files, which also give the operation's
own name, `ListObjectsV2`). Methods of our own with the same name take arguments
(`store.get_item(what, key, ...)`) and are not counted.

Also found: `aws_config::sts::AssumeRoleProvider`, which calls sts:AssumeRole.

Test code is left out: `#[cfg(test)] mod x { ... }` blocks and files declared with
`#[cfg(test)] mod x;`.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
from dataclasses import dataclass


class SourceError(Exception):
    pass


@dataclass(frozen=True)
class Call:
    service: str  # the SDK crate's service, e.g. "s3"
    operation: str  # the API operation, e.g. "ListObjectsV2"
    path: str  # relative to the repository, e.g. "src/source/s3.rs"
    line: int


def sdk_crates(repo: pathlib.Path) -> dict[str, pathlib.Path]:
    """aws-sdk-* packages the project resolves to, by service (`s3`) -> source folder."""
    cmd = ["cargo", "metadata", "--format-version", "1", "--locked"]
    try:
        out = subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise SourceError(f"`{' '.join(cmd)}` failed, so the SDK crates cannot be found: {detail.strip()}")
    meta = json.loads(out)
    # Only crates in the dependency graph of our package, not every one in the lock file.
    nodes = {n["id"]: n for n in (meta.get("resolve") or {}).get("nodes", [])}
    crates: dict[str, pathlib.Path] = {}
    for package in meta["packages"]:
        name = package["name"]
        if name.startswith("aws-sdk-") and package["id"] in nodes:
            crates[name.removeprefix("aws-sdk-")] = pathlib.Path(package["manifest_path"]).parent
    if not crates:
        raise SourceError("cargo metadata lists no aws-sdk-* crate; is this the trailhound repository?")
    return crates


_INVOKE = re.compile(r'invoke_with_stop_point\(\s*"[^"]*"\s*,\s*"([A-Za-z0-9]+)"')


def operations(crate: pathlib.Path) -> dict[str, str]:
    """snake_case method -> the operation's own name, from the crate's operation modules."""
    ops: dict[str, str] = {}
    for path in sorted((crate / "src" / "operation").glob("*.rs")):
        m = _INVOKE.search(path.read_text(encoding="utf-8"))
        if m:
            ops[path.stem] = m.group(1)
    if not ops:
        raise SourceError(f"{crate}: no operation found under src/operation/ (has the SDK's layout changed?)")
    return ops


def strip_comments(text: str) -> str:
    """The text with comments blanked out (newlines kept, so line numbers stay right) and
    string literals kept, so that `"s3://..."` is not taken for a comment."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(text[i:end])
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\'') or a lifetime ('a): only the first is skipped.
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(m.group(0))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


_TEST_BLOCK = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+\w+\s*\{")
_TEST_DECL = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+)\s*;")


def blank_test_blocks(text: str) -> str:
    """`#[cfg(test)] mod x { ... }` blanked out (newlines kept)."""
    while (m := _TEST_BLOCK.search(text)) is not None:
        depth, j = 0, m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        text = text[: m.start()] + re.sub(r"[^\n]", " ", text[m.start() : j + 1]) + text[j + 1 :]
    return text


def test_only_files(src: pathlib.Path, texts: dict[pathlib.Path, str]) -> set[pathlib.Path]:
    """Files that are modules declared `#[cfg(test)] mod x;`."""
    found = set()
    for path, text in texts.items():
        # A module's children live beside mod.rs/lib.rs/main.rs, else in a folder named after it.
        folder = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.with_suffix("")
        for name in _TEST_DECL.findall(text):
            for child in (folder / f"{name}.rs", folder / name / "mod.rs"):
                if child.exists():
                    found.add(child)
    # Whatever a test-only file declares is test-only too.
    grew = True
    while grew:
        grew = False
        for path in list(found):
            folder = path.parent if path.name == "mod.rs" else path.with_suffix("")
            for child in list(folder.glob("*.rs")) if folder.is_dir() else []:
                if child not in found:
                    found.add(child)
                    grew = True
    return found


class Scanner:
    """Finds operation calls in Rust text, knowing the SDK crates' operations."""

    def __init__(self, crates: dict[str, pathlib.Path]):
        self.ops = {service: operations(folder) for service, folder in crates.items()}
        self.by_method: dict[str, list[str]] = {}
        for service, table in self.ops.items():
            for method in table:
                self.by_method.setdefault(method, []).append(service)

    _METHOD = re.compile(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")

    def calls_in(self, text: str, rel: str) -> list[Call]:
        """The calls in one file's text (comments and test blocks are dropped here)."""
        code = blank_test_blocks(strip_comments(text))
        # The SDK crates this file names; they settle a method several services share.
        named = {s for s in self.ops if re.search(rf"\baws_sdk_{s}\b", code)}
        calls = []
        for m in self._METHOD.finditer(code):
            services = self.by_method.get(m.group(1))
            if not services:
                continue
            line = code.count("\n", 0, m.start()) + 1
            if len(services) > 1:
                narrowed = [s for s in services if s in named]
                if len(narrowed) != 1:
                    raise SourceError(
                        f"{rel}:{line}: `.{m.group(1)}()` is an operation of {', '.join(sorted(services))}, "
                        "and the file names none or several of those SDK crates, so the check cannot tell "
                        "which; name the client's type (aws_sdk_<service>::Client) in the file"
                    )
                services = narrowed
            calls.append(Call(services[0], self.ops[services[0]][m.group(1)], rel, line))
        for m in re.finditer(r"\bAssumeRoleProvider\b", code):
            calls.append(Call("sts", "AssumeRole", rel, code.count("\n", 0, m.start()) + 1))
        return calls


def find_calls(repo: pathlib.Path, scanner: Scanner) -> tuple[list[Call], list[str]]:
    """Every SDK operation call in src/ outside test code, and the files left out as test code."""
    src = repo / "src"
    texts = {p: p.read_text(encoding="utf-8") for p in sorted(src.rglob("*.rs"))}
    skipped_files = test_only_files(src, {p: strip_comments(t) for p, t in texts.items()})
    calls: list[Call] = []
    for path, text in texts.items():
        if path not in skipped_files:
            calls.extend(scanner.calls_in(text, path.relative_to(repo).as_posix()))
    return calls, sorted(p.relative_to(repo).as_posix() for p in skipped_files)
