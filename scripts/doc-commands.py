#!/usr/bin/env python3
"""The commands the docs print, checked against what the code accepts.

    doc-commands.py check [BIN_DIR]   every printed `make` target and variable
                                      exists; every printed orderstream
                                      command line parses (its subcommands,
                                      flags and literal values are in its
                                      --help). Needs the built binaries.
    doc-commands.py examples VAR      the values the README prints for a make
                                      variable (e.g. DL_ARGS), one per line,
                                      for scripts/test-make-run.sh to run.

Commands are read from inline code (`make …`, `orderstream-… …`) and from
the lines of fenced code blocks, in README.md and every docs/*.md and
*/README.md. A value written as a placeholder (upper case, `…`, `<…>`,
`[…]`) is taken as such and not checked.
"""
import pathlib
import re
import shlex
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The make variables that hold a binary's arguments, and that binary.
ARGS_OF = {
    "DL_ARGS": ["orderstream-consumer", "dead-letters"],
    "STATUS_ARGS": ["orderstream-status"],
    "VERIFY_ARGS": ["orderstream-verify"],
}
# Shell words that end a command printed on one line.
ENDS = {"#", "|", "&&", ";", "||", "or:", "(or", "(", ")"}


def documents():
    """README.md, docs/*.md and the folders' README.md files."""
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").glob("*.md"))
    yield from sorted(ROOT.glob("*/README.md"))


def printed_commands():
    """(document, command) for every command a reader is shown."""
    for path in documents():
        text = path.read_text(encoding="utf-8")
        fenced = False
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                stripped = line.strip()
                if re.match(r"^(make|orderstream-[a-z-]+) ", stripped + " "):
                    yield path, stripped
            else:
                for code in re.findall(r"`([^`]+)`", line):
                    if re.match(r"^(make|orderstream-[a-z-]+)( |$)", code):
                        yield path, code
                    elif re.match(r"^(" + "|".join(ARGS_OF) + r")=", code):
                        yield path, "make " + code  # `DL_ARGS="…"` beside its make command


def words(command):
    """The command's words up to its comment or the next command."""
    try:
        parts = shlex.split(command, comments=False)
    except ValueError:
        parts = command.split()
    taken = []
    for part in parts:
        if part in ENDS or part.startswith("#"):
            break
        taken.append(part)
    return taken


def is_placeholder(value):
    return (
        value.isupper()
        or "…" in value
        or value.startswith(("<", "[", "$"))
        or value in {"path", "dir", "N", "FILE", "RFC3339", "PATH", "NAME", "KIND"}
        or "|" in value
    )


def make_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):", text, flags=re.M))


def variable_is_read(name):
    """Whether the Makefile or a script reads this variable."""
    sources = [ROOT / "Makefile", *sorted((ROOT / "scripts").rglob("*.sh"))]
    pattern = re.compile(r"\$\(" + name + r"\)|\$\{" + name + r"\b|\$" + name + r"\b|\b" + name + r"\s*[?:]?=")
    return any(pattern.search(path.read_text(encoding="utf-8", errors="replace")) for path in sources)


def help_text(bin_dir, argv):
    result = subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:], "--help"], capture_output=True, text=True, timeout=30
    )
    return result.returncode, result.stdout + result.stderr


def flag_help(text, flag):
    """The lines of --help that describe `flag`: its line, up to the next flag's."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if re.match(r"^\s+(-[a-zA-Z], )?" + re.escape(flag) + r"\b", line):
            end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\s+-{1,2}[a-zA-Z]", lines[i])), len(lines))
            return "\n".join(lines[start:end])
    return ""


def check_binary_command(bin_dir, argv):
    """Problems with one `orderstream-…` command line, or []."""
    binary = bin_dir / argv[0]
    if not binary.exists():
        return [f"{argv[0]}: no such binary in {bin_dir}"]
    # Subcommands: the leading words that are not flags or placeholders.
    path = [argv[0]]
    rest = argv[1:]
    while rest and not rest[0].startswith("-") and not is_placeholder(rest[0]):
        code, text = help_text(bin_dir, path)
        if code != 0:
            return [f"`{' '.join(path)} --help` exits {code}"]
        commands = re.findall(r"^  ([a-z][a-z-]*)\s", text, flags=re.M)
        if rest[0] not in commands:
            break  # a positional argument (a file), not a subcommand
        path.append(rest[0])
        rest = rest[1:]
    code, text = help_text(bin_dir, path)
    if code != 0:
        return [f"`{' '.join(path)} --help` exits {code}"]
    problems = []
    for index, word in enumerate(rest):
        if not word.startswith("--"):
            continue
        flag, _, inline_value = word.partition("=")
        if not re.search(re.escape(flag) + r"\b", text):
            problems.append(f"`{' '.join(path)}` has no {flag}")
            continue
        value = inline_value or (rest[index + 1] if index + 1 < len(rest) else "")
        if not value or value.startswith("-") or is_placeholder(value):
            continue
        block = flag_help(text, flag)
        allowed = re.search(r"\[possible values: ([^\]]+)\]", block)
        if allowed and value not in [v.strip() for v in allowed.group(1).split(",")]:
            problems.append(f"`{' '.join(path)} {flag} {value}`: not one of {allowed.group(1)}")
    return problems


def check(bin_dir):
    targets = make_targets()
    problems = []
    seen = set()
    for document, command in printed_commands():
        argv = words(command)
        if not argv or (document.name, tuple(argv)) in seen:
            continue
        seen.add((document.name, tuple(argv)))
        where = document.relative_to(ROOT)
        if argv[0] == "make":
            for word in argv[1:]:
                word = word.strip("[]")  # an optional variable: [SINCE=…]
                if "=" in word:
                    name, _, value = word.partition("=")
                    if not variable_is_read(name):
                        problems.append(f"{where}: `{command}`: nothing reads {name}")
                    if name in ARGS_OF and value and not is_placeholder(value):
                        problems += [f"{where}: `{command}`: {p}" for p in
                                     check_binary_command(bin_dir, ARGS_OF[name] + shlex.split(value))]
                elif not word.startswith("[") and word not in targets:
                    problems.append(f"{where}: `{command}`: no make target {word}")
        else:
            problems += [f"{where}: `{command}`: {p}" for p in check_binary_command(bin_dir, argv)]
    for problem in problems:
        print(f"doc-commands: {problem}", file=sys.stderr)
    print(f"doc-commands: {len(seen)} printed commands checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def examples(variable):
    """The values the README prints for VARIABLE="…" (or VARIABLE=word)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(variable + r'="([^"]*)"', text)
    for value in dict.fromkeys(found):
        print(value)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "check":
        sys.exit(check(pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "target" / "debug"))
    if len(sys.argv) == 3 and sys.argv[1] == "examples":
        sys.exit(examples(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
