#!/usr/bin/env python3
"""Finds dependency cycles between the top-level modules of a Rust crate.

Usage: modcycles.py [--no-reexports] SRC_DIR      (e.g. session-runtime/src)

The modules are the files `X.rs` and the directories `X/` directly in SRC_DIR (lib.rs
excluded); every `.rs` file under `X/` belongs to module `X`. A file that lib.rs declares
with `#[path = "F.rs"] mod NAME;` is module NAME (so `private.rs` is `__private`).

Module A depends on module B when a file of A names `crate::B` (also inside a group:
`use crate::{b::X, c::Y}` names b and c; `$crate::B` in macros too). A name that is not a
module but an item lib.rs re-exports from one (`pub use b::X;` then `crate::X`) counts for
that module, unless --no-reexports is given. Comments (doc comments included), string,
byte-string, raw-string and char literals are skipped. `super::` paths are not followed.

Prints one `cycle: ...` line per strongly connected component of more than one module
(Tarjan), each followed by the references behind its edges, then a summary
`N modules, M edges, K cycles`. Exits 1 when there is a cycle, 2 on a usage error.
"""

import os
import re
import sys

IDENT_START = re.compile(r"[A-Za-z_]")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"[0-9][0-9A-Za-z_]*")


def tokens(text, keep_strings=False):
    """Yields (token, line) for identifiers, `::` and single punctuation characters,
    skipping whitespace, comments, and string, char and numeric literals (with
    keep_strings, plain string literals are yielded, quotes included)."""
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif raw_string_at(text, i):
            start = i
            while text[i] in "bcr":
                i += 1
            hashes = 0
            while text[i] == "#":
                hashes, i = hashes + 1, i + 1
            end = text.find('"' + "#" * hashes, i + 1)
            i = n if end < 0 else end + 1 + hashes
            line += text.count("\n", start, i)
        elif c == '"' or (c in "bc" and text.startswith('"', i + 1)):
            start, first = i, line
            i = text.index('"', i) + 1
            while i < n and text[i] != '"':
                line += text[i] == "\n"
                i += 2 if text[i] == "\\" else 1
            i += 1
            if keep_strings and c == '"':
                yield text[start:i], first
        elif c == "'" or (c == "b" and text.startswith("'", i + 1)):
            q = text.index("'", i)
            if text.startswith("\\", q + 1):  # '\n', '\'', '\u{..}'
                end = text.find("'", q + 3 if text.startswith("\\'", q + 1) else q + 2)
                i = n if end < 0 else end + 1
            elif q + 2 < n and text[q + 2] == "'":  # 'x'
                i = q + 3
            else:  # a lifetime or label: the name that follows is lexed as usual
                i = q + 1
        elif text.startswith("r#", i) and IDENT_START.match(text, i + 2):
            m = IDENT.match(text, i + 2)  # raw identifier r#name
            yield m.group(), line
            i = m.end()
        elif IDENT_START.match(c):
            m = IDENT.match(text, i)
            yield m.group(), line
            i = m.end()
        elif c.isdigit():
            i = NUMBER.match(text, i).end()
        elif text.startswith("::", i):
            yield "::", line
            i += 2
        else:
            yield c, line
            i += 1


def raw_string_at(text, i):
    """True at r"..", r#".."#, br"..", cr#"..."# and the like."""
    m = re.compile(r'(?:b|c)?r#*"').match(text, i)
    if not m:
        return False
    # Not the tail of an identifier such as `for"` (impossible in Rust, but cheap to check).
    return i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1])


def crate_names(toks):
    """Yields (name, line) for each `crate::name` and each first name of the items of a
    `crate::{...}` group (nested groups included)."""
    for k in range(len(toks) - 2):
        if toks[k][0] != "crate" or toks[k + 1][0] != "::":
            continue
        name, line = toks[k + 2]
        if name == "{":
            yield from group_names(toks, k + 2)
        elif IDENT.fullmatch(name):
            yield name, line


def group_names(toks, open_at):
    """The first name of each item of the `{...}` group opening at toks[open_at]."""
    depth, item_start = 0, True
    for k in range(open_at, len(toks)):
        tok, line = toks[k]
        if tok == "{":
            depth += 1
            if depth > 1 and item_start:
                # `{{a, b}}`: the items of a nested group directly at item start
                yield from group_names(toks, k)
            item_start = True
        elif tok == "}":
            depth -= 1
            item_start = False
            if depth == 0:
                return
        elif tok == ",":
            item_start = depth >= 1
        elif item_start and depth == 1:
            if IDENT.fullmatch(tok) and tok != "self":
                yield tok, line
            item_start = False
        else:
            item_start = False


def lib_declarations(lib_text):
    """From lib.rs: {file: module} for `#[path = "file"] mod module;`, and
    {root name: [path heads]} for items lib.rs imports or re-exports
    (`pub use m::{A, B as C};` gives A: [m], C: [m])."""
    toks = [tok for tok, _ in tokens(lib_text, keep_strings=True)]
    paths, reexports = {}, {}
    pending_path = None
    k = 0
    while k < len(toks):
        tok = toks[k]
        attribute = toks[k : k + 6]
        if attribute[:4] == ["#", "[", "path", "="] and attribute[4:5] and attribute[4][0] == '"':
            pending_path = attribute[4].strip('"')
            k += 5
        elif tok == "mod" and k + 1 < len(toks):
            if pending_path is not None:
                file = os.path.normpath(pending_path)
                paths[file] = toks[k + 1]
                if os.path.basename(file) == "mod.rs":  # #[path = "dir/mod.rs"]
                    paths[os.path.dirname(file)] = toks[k + 1]
            pending_path = None
        elif tok in (";", "}", "{"):
            pending_path = None
        elif tok == "use":
            end = k
            while end < len(toks) and toks[end] != ";":
                end += 1
            use_tree(toks[k + 1 : end], None, reexports)
            k = end
        k += 1
    return paths, reexports


def use_tree(toks, head, out):
    """Records {visible name: [first path segment]} for the leaves of a use tree; `head`
    is the first segment of the path above this (sub)tree, None at its root."""
    if toks and toks[0] == "{" and toks[-1] == "}":
        toks = toks[1:-1]
    items, item, depth = [], [], 0
    for tok in toks + [","]:
        if tok == "," and depth == 0:
            items.append(item)
            item = []
            continue
        depth += tok == "{"
        depth -= tok == "}"
        item.append(tok)
    for item in items:
        if not item or item[0] == "::":
            continue  # empty, or `::external_crate::...`
        rest, first = item, head
        if first is None and item[0] in ("crate", "self"):
            rest = item[2:] if item[1:2] == ["::"] else []
        if not rest:
            continue
        if first is None:
            if not IDENT.fullmatch(rest[0]) or rest[1:2] != ["::"]:
                continue  # `use m;` or `use m as n;`: a module, not an item of one
            first = rest[0]
        if "{" in rest:
            use_tree(rest[rest.index("{") :], first, out)
            continue
        name = rest[rest.index("as") + 1] if "as" in rest else rest[-1]
        if name not in ("_", "*", "self") and IDENT.fullmatch(name):
            out.setdefault(name, []).append(first)


def modules(src):
    """{module: [files]} for the top-level modules of src."""
    lib = os.path.join(src, "lib.rs")
    with open(lib, encoding="utf-8") as f:
        paths, reexports = lib_declarations(f.read())
    found = {}
    for entry in sorted(os.listdir(src)):
        full = os.path.join(src, entry)
        if os.path.isdir(full):
            files = sorted(
                os.path.join(root, name)
                for root, _, names in os.walk(full)
                for name in names
                if name.endswith(".rs")
            )
            if files:
                found.setdefault(paths.get(entry, entry), []).extend(files)
        elif entry.endswith(".rs") and entry != "lib.rs":
            name = paths.get(entry, entry[: -len(".rs")])
            found.setdefault(name, []).append(full)
    return found, reexports


def graph(src, follow_reexports=True):
    """(modules, {(a, b): [where a names b]})."""
    mods, reexports = modules(src)
    edges = {}
    for module, files in mods.items():
        for path in files:
            with open(path, encoding="utf-8") as f:
                toks = list(tokens(f.read()))
            for name, line in crate_names(toks):
                target, via = name, ""
                if target not in mods and follow_reexports:
                    heads = [h for h in reexports.get(name, []) if h in mods]
                    if heads:
                        target, via = heads[0], f" (re-exported from {heads[0]})"
                if target in mods and target != module:
                    where = f"{os.path.relpath(path, src)}:{line} crate::{name}{via}"
                    edges.setdefault((module, target), []).append(where)
    return sorted(mods), edges


def tarjan(nodes, edges):
    """The strongly connected components of the graph."""
    successors = {node: [] for node in nodes}
    for a, b in sorted(edges):
        successors[a].append(b)
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in successors[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    sys.setrecursionlimit(max(1000, 4 * len(nodes) + 100))
    for v in nodes:
        if v not in index:
            visit(v)
    return components


def tour(component, edges, limit=100_000):
    """A cycle through every module of the component if one is found quickly (the
    components are small), else None."""
    start = component[0]
    path, steps = [start], [0]

    def extend():
        steps[0] += 1
        if steps[0] > limit:
            return False
        last = path[-1]
        if len(path) == len(component):
            return (last, start) in edges
        for nxt in component:
            if nxt not in path and (last, nxt) in edges:
                path.append(nxt)
                if extend():
                    return True
                path.pop()
        return False

    return path + [start] if extend() else None


def main(argv):
    args = [a for a in argv[1:] if a != "--no-reexports"]
    if len(args) != 1 or not os.path.isfile(os.path.join(args[0], "lib.rs")):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    nodes, edges = graph(args[0], follow_reexports="--no-reexports" not in argv)
    cycles = [c for c in tarjan(nodes, edges) if len(c) > 1]
    for component in sorted(cycles):
        path = tour(component, edges)
        if path:
            print("cycle: " + " -> ".join(path))
        else:
            print(
                "cycle: " + " -> ".join(component)
                + " (strongly connected, no single cycle through all found; edges below)"
            )
        for a in component:
            for b in component:
                if (a, b) in edges:
                    refs = edges[(a, b)]
                    more = f" (+{len(refs) - 1} more)" if len(refs) > 1 else ""
                    print(f"    {a} -> {b}: {refs[0]}{more}")
    print(f"{len(nodes)} modules, {len(edges)} edges, {len(cycles)} cycles")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
