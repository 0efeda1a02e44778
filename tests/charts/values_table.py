#!/usr/bin/env python3
"""The values table of charts/README.md, made from values.yaml's own comments.

Every value in values.yaml carries a "# -- meaning" comment (continued on the following
"#" lines) right above it. This prints one Markdown row per value: its dotted name, its
default and its meaning. A documented key whose children are documented too is a group
(no row of its own); a documented key whose children are not (resources, security
contexts) is one value whose default is the whole object.

Usage:
  values_table.py VALUES.yaml              print the table
  values_table.py VALUES.yaml README.md    exit 1 unless README.md holds exactly this table
                                           between its values-table markers, and every
                                           value of values.yaml is documented
"""

import json
import re
import sys

import yaml

START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"


def comments_by_path(lines):
    """{dotted path: description} from the "# --" comments above each key."""
    docs, stack, pending = {}, [], None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        m = re.match(r"^( *)([A-Za-z0-9_.-]+):", line)
        if not m:
            if stripped and not stripped.startswith("-"):
                pending = None
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        if pending is not None:
            docs[".".join(k for _, k in stack)] = " ".join(p for p in pending if p)
        pending = None
    return docs


def fmt(value):
    if isinstance(value, str):
        return '`"%s"`' % value if value == "" or value != value.strip() or re.fullmatch(r"[0-9.]+", value) else "`%s`" % value
    if isinstance(value, bool):
        return "`%s`" % str(value).lower()
    if value is None:
        return "`null`"
    if isinstance(value, (int, float)):
        return "`%s`" % value
    return "`%s`" % json.dumps(value, separators=(", ", ": "))


def rows(values, docs, prefix=""):
    out, undocumented = [], []
    for key, value in values.items():
        path = prefix + key
        children_documented = isinstance(value, dict) and any(p.startswith(path + ".") for p in docs)
        if isinstance(value, dict) and (children_documented or path not in docs) and value:
            sub, missing = rows(value, docs, path + ".")
            out += sub
            undocumented += missing
        elif path in docs:
            meaning = docs[path].replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            out.append("| `%s` | %s | %s |" % (path, fmt(value), meaning))
        else:
            undocumented.append(path)
    return out, undocumented


def table(values_path):
    with open(values_path) as f:
        text = f.read()
    docs = comments_by_path(text.splitlines())
    body, undocumented = rows(yaml.safe_load(text), docs)
    head = ["| Value | Default | Meaning |", "| --- | --- | --- |"]
    return "\n".join(head + body), undocumented


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    text, undocumented = table(argv[1])
    if undocumented:
        print("values without a '# --' comment in %s: %s" % (argv[1], ", ".join(undocumented)))
        return 1
    if len(argv) == 2:
        print(text)
        return 0
    with open(argv[2]) as f:
        readme = f.read()
    if START not in readme or END not in readme:
        print("%s lacks the %s ... %s markers" % (argv[2], START, END))
        return 1
    current = readme.split(START, 1)[1].split(END, 1)[0].strip()
    if current != text:
        print("the values table of %s is out of date; regenerate it with:\n  %s %s" % (argv[2], argv[0], argv[1]))
        for a, b in zip(current.splitlines() + [""] * 999, text.splitlines()):
            if a != b:
                print("  README:      %s\n  values.yaml: %s" % (a, b))
                break
        return 1
    print("%d values documented, README table up to date" % (len(text.splitlines()) - 2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
