#!/usr/bin/env python3
"""Checks that every public function and member of MoE.Core has an XML doc block with a <summary> and a <param>
for each named parameter. Internal and private code is exempt (internal modules, `let private`, `let internal`).
Prints one line per problem and exits 1 if there is any."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "MoE.Core"
LET = re.compile(r"^(\s*)let\s+(?:inline\s+|rec\s+)?(private\s+|internal\s+)?(?:inline\s+)?(\w+)")
MEMBER = re.compile(r"^(\s*)(?:static\s+)?member\s+(?:\w+\.)?(\w+)\s*\(")
MODULE = re.compile(r"^(\s*)module\s+(internal\s+|private\s+)?([\w.]+)")
TYPE = re.compile(r"^(\s*)type\s+(internal\s+|private\s+)?(\w+)")
PARAM = re.compile(r"[(,]\s*(\w+)\s*:")


def signature(lines, i):
    """The text of a definition from line i up to the '=' that ends its header."""
    text = []
    for j in range(i, min(i + 40, len(lines))):
        text.append(lines[j])
        stripped = lines[j].rstrip()
        if stripped.endswith("=") or re.search(r"\)\s*:\s*[^=]*=\s*$", stripped) or "= " in stripped.split(":")[-1]:
            break
    return "\n".join(text)


def doc_before(lines, i):
    """The /// block above line i (attributes in between are skipped)."""
    j = i - 1
    while j >= 0 and lines[j].strip().startswith("[<"):
        j -= 1
    block = []
    while j >= 0 and lines[j].strip().startswith("///"):
        block.append(lines[j])
        j -= 1
    return "\n".join(reversed(block))


def check(path):
    problems = []
    lines = path.read_text(encoding="utf-8").split("\n")
    # A stack of (indent, is_internal) for enclosing modules and types.
    scopes = []
    file_internal = False
    for i, line in enumerate(lines):
        if not line.strip() or line.strip().startswith("//"):
            continue
        indent = len(line) - len(line.lstrip())
        while scopes and indent <= scopes[-1][0] and not line.strip().startswith("|"):
            scopes.pop()
        m = MODULE.match(line)
        if m:
            internal = bool(m.group(2))
            if "." in m.group(3) and indent == 0:
                file_internal = internal
            else:
                scopes.append((indent, internal, "module"))
            continue
        t = TYPE.match(line)
        if t:
            scopes.append((indent, bool(t.group(2)), "type"))
            continue
        if file_internal or any(s[1] for s in scopes):
            continue
        name, params = None, []
        in_type = bool(scopes) and scopes[-1][2] == "type"
        m = LET.match(line)
        if m and not in_type and not m.group(2) and indent <= 4 and (not scopes or indent > scopes[-1][0]):
            name = m.group(3)
            header = signature(lines, i)
            params = PARAM.findall(header.split("=")[0]) if "(" in header.split("\n")[0] or "\n" in header else []
        else:
            mm = MEMBER.match(line)
            if mm and "private" not in line and "internal" not in line:
                name = mm.group(2)
                header = signature(lines, i)
                params = PARAM.findall(header.split("=")[0])
        if name is None or name == "_":
            continue
        doc = doc_before(lines, i)
        where = f"{path.relative_to(ROOT.parent)}:{i + 1} {name}"
        if "///" not in doc:
            problems.append(f"{where}: no doc comment")
            continue
        for p in params:
            if f'<param name="{p}">' not in doc:
                problems.append(f"{where}: parameter '{p}' has no <param> doc")
    return problems


def main():
    problems = []
    for path in sorted(ROOT.rglob("*.fs")):
        if "obj" in path.parts or "bin" in path.parts:
            continue
        problems += check(path)
    for p in problems:
        print(p)
    if problems:
        print(f"check-docs: {len(problems)} public definitions lack docs", file=sys.stderr)
        return 1
    print("check-docs: every public function documents its parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
