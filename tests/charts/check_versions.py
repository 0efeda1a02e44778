#!/usr/bin/env python3
"""Check that the Spark version is written once and agreed on everywhere else.

charts/images/versions.env is the one place (SPARK_VERSION, PYTHON_VERSION, ...). It must
equal: the chart's appVersion, both image tags in values.yaml, and the pyspark pin of the
repo's requirements.txt. The Dockerfiles must take every version as a build arg with no
default (so none can drift from versions.env), and build-minikube.sh must read
versions.env and tag the images with SPARK_VERSION. And the edgenode image must install,
for every pkg-config module the kernel's Makefile links (PKGS), its -dev package in the
build stage and its library in the runtime stage.

Usage: check_versions.py REPO_ROOT      Prints one line per agreement; exits 1 on any
disagreement.
"""

import re
import sys

import yaml


def read_env(path):
    env = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=([^\s#]+)", line)
            if not m:
                raise SystemExit("%s:%d: not KEY=VALUE: %r" % (path, n, line))
            env[m.group(1)] = m.group(2)
    return env


# pkg-config module -> (Ubuntu 24.04 -dev package, runtime package) of the edgenode image.
PKG_PACKAGES = {
    "libzmq": ("libzmq3-dev", "libzmq5"),
    "jansson": ("libjansson-dev", "libjansson4"),
    "libsodium": ("libsodium-dev", "libsodium23"),
    "libcrypto": ("libssl-dev", "libssl3t64"),
    "libssl": ("libssl-dev", "libssl3t64"),
    "openssl": ("libssl-dev", "libssl3t64"),
    "libcurl": ("libcurl4-openssl-dev", "libcurl4t64"),
    "uuid": ("uuid-dev", "libuuid1"),
}


def check_build_deps(root, failures):
    try:
        with open(root + "/Makefile") as f:
            makefile = f.read()
    except FileNotFoundError:
        print("  FAIL  no Makefile at the repo root: the edgenode image runs make there")
        failures.append("Makefile")
        return
    m = re.search(r"^PKGS\s*:?=\s*(.*)$", makefile, re.MULTILINE)
    if not m:
        print("  FAIL  the Makefile has no PKGS line to compare the edgenode image with")
        failures.append("Makefile PKGS")
        return
    with open(root + "/charts/images/edgenode/Dockerfile") as f:
        text = f.read()
    build, _, runtime = text.partition("# ---- runtime")
    for module in m.group(1).split():
        if module not in PKG_PACKAGES:
            print("  FAIL  the Makefile links %s: add its packages to the edgenode Dockerfile and to "
                  "PKG_PACKAGES in %s" % (module, __file__))
            failures.append(module)
            continue
        dev, lib = PKG_PACKAGES[module]
        ok = re.search(r"\b%s\b" % re.escape(dev), build) and re.search(r"\b%s\b" % re.escape(lib), runtime)
        print("  %s  edgenode image: %s in the build stage, %s at runtime (Makefile links %s)"
              % ("ok  " if ok else "FAIL", dev, lib, module))
        if not ok:
            failures.append(module)


def main(root):
    failures = []

    def agree(what, got, want):
        ok = got == want
        print("  %s  %s: %s%s" % ("ok  " if ok else "FAIL", what, got, "" if ok else " (versions.env: %s)" % want))
        if not ok:
            failures.append(what)

    env = read_env(root + "/charts/images/versions.env")
    for key in ("SPARK_VERSION", "PYTHON_VERSION", "JAVA_VERSION", "DISTRO", "JUPYTERLAB_VERSION"):
        if key not in env:
            print("  FAIL  versions.env has no %s" % key)
            failures.append(key)
    spark = env.get("SPARK_VERSION")

    with open(root + "/charts/sparkernel/Chart.yaml") as f:
        chart = yaml.safe_load(f)
    agree("Chart.yaml appVersion", str(chart.get("appVersion")), spark)

    with open(root + "/charts/sparkernel/values.yaml") as f:
        values = yaml.safe_load(f)
    for image in ("spark", "edgenode"):
        agree("values.yaml images.%s.tag" % image, str(values["images"][image].get("tag")), spark)

    pins = []
    with open(root + "/requirements.txt") as f:
        for line in f:
            m = re.match(r"\s*pyspark\s*==\s*([^\s;#]+)", line, re.IGNORECASE)
            if m:
                pins.append(m.group(1))
    if len(pins) != 1:
        print("  FAIL  requirements.txt: expected one pyspark==X pin, found %s" % (pins or "none"))
        failures.append("requirements.txt")
    else:
        agree("requirements.txt pyspark pin", pins[0], spark)

    # The Dockerfiles declare each version as an ARG without a default and use it.
    uses = {"spark": ("JAVA_VERSION", "DISTRO", "SPARK_VERSION", "PYTHON_VERSION"),
            "edgenode": ("JAVA_VERSION", "DISTRO", "SPARK_VERSION", "PYTHON_VERSION", "JUPYTERLAB_VERSION")}
    for image, keys in uses.items():
        path = "charts/images/%s/Dockerfile" % image
        with open(root + "/" + path) as f:
            text = f.read()
        for key in keys:
            declared = re.findall(r"^ARG\s+%s(=.*)?$" % key, text, re.MULTILINE)
            ok = bool(declared) and not any(declared)
            used = "${%s}" % key in text
            print("  %s  %s: ARG %s without a default, used as ${%s}" % ("ok  " if ok and used else "FAIL", path, key, key))
            if not (ok and used):
                failures.append("%s %s" % (path, key))
        for m in re.finditer(r"(pyspark|jupyterlab)==([0-9][^\s\"']*)", text):
            print("  FAIL  %s: hard-coded %s" % (path, m.group(0)))
            failures.append(path)
        if '"pyspark==${SPARK_VERSION}"' not in text:
            print("  FAIL  %s: does not install pyspark==${SPARK_VERSION}" % path)
            failures.append(path)

    with open(root + "/charts/images/build-minikube.sh") as f:
        script = f.read()
    ok = "versions.env" in script and "sparkernel/$image:$SPARK_VERSION" in script
    print("  %s  build-minikube.sh reads versions.env and tags sparkernel/<image>:$SPARK_VERSION" % ("ok  " if ok else "FAIL"))
    if not ok:
        failures.append("build-minikube.sh")
    for image in ("spark", "edgenode"):
        repo = values["images"][image]["repository"]
        if repo != "sparkernel/%s" % image:
            print("  FAIL  values.yaml images.%s.repository %s is not what build-minikube.sh builds" % (image, repo))
            failures.append("repository " + image)

    check_build_deps(root, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1].rstrip("/")))
