#!/usr/bin/env python3
"""No module import cycle in any crate (`make lint`).

A crate's top-level modules (`src/NAME.rs` or `src/NAME/`) import each
other through `crate::NAME`; a cycle among them means neither can be read,
tested or moved without the other. Prints every cycle and exits 1 if there
is one. Unit tests (from a file's `#[cfg(test)]` on) are left out: a test
may use whatever it checks against.

    module-cycles.py [CRATE_DIR…]     default: every workspace crate
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def crates():
    """The folders holding a Cargo.toml and a src/ (the workspace's crates)."""
    for manifest in sorted(ROOT.rglob("Cargo.toml")):
        folder = manifest.parent
        if (folder / "src").is_dir() and "target" not in folder.parts and folder != ROOT:
            yield folder


def code_without_tests(path):
    """The file's code: comments (doc links are no imports) and unit tests left out."""
    text = path.read_text(encoding="utf-8", errors="replace")
    cut = text.find("#[cfg(test)]")
    code = text if cut < 0 else text[:cut]
    return re.sub(r"//[^\n]*", "", code)


def module_graph(src):
    """Top-level module name → the modules its code refers to."""
    modules = {}
    for entry in src.iterdir():
        if entry.name in ("lib.rs", "main.rs") or entry.name == "bin":
            continue
        if entry.suffix == ".rs":
            modules.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir():
            modules.setdefault(entry.name, []).extend(sorted(entry.rglob("*.rs")))
    graph = {}
    for name, files in modules.items():
        refs = set()
        for path in files:
            refs.update(REFERENCE.findall(code_without_tests(path)))
        graph[name] = sorted(ref for ref in refs if ref in modules and ref != name)
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(folders):
    problems = 0
    for folder in folders:
        graph = module_graph(folder / "src")
        for component in cycles(graph):
            problems += 1
            edges = [f"{a} → {b}" for a in component for b in graph[a] if b in component]
            print(f"module-cycles: {folder.relative_to(ROOT)}: {', '.join(component)} ({'; '.join(edges)})",
                  file=sys.stderr)
    print(f"module-cycles: {len(folders)} crates, {problems} cycle(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    chosen = [pathlib.Path(arg).resolve() for arg in sys.argv[1:]] or list(crates())
    sys.exit(main(chosen))
