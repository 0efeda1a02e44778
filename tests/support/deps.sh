#!/usr/bin/env bash
# Installs what `make run` (profile "run") or `make test` (profile "test") needs, and nothing
# when it is already there: system packages (Debian 12 / Ubuntu 24.04, apt), the pinned Python
# venvs and the JupyterLab test driver's npm packages. `make deps` runs the "test" profile.
#
# Fast when done: one dpkg-query for the system packages, and stamp files that hold the
# sha256 of the requirement file they were installed from (.venv/.sparkernel-deps,
# .venv-compat/.sparkernel-deps, tests/lab/node_modules/.sparkernel-deps), so a changed
# requirements.txt or package-lock.json reinstalls and an unchanged one costs nothing.
#
# Without root and without sudo, missing system packages stop it before anything else is
# built, with the one command to run. A venv or node_modules whose install fails is removed
# (when this run created it), so nothing half-built is left behind.
#
# Environment: PYTHON3 (interpreter for new venvs, default python3), VENV (default .venv),
# COMPAT_VENV (default .venv-compat), LAB_DIR (default tests/lab: package.json and its lock),
# SPARKERNEL_DEPS_CHECK_ONLY=1 (check the system packages,
# install nothing there: for tests of this script).
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=${1:-test}
case "$profile" in run | test) ;; *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
PYTHON3=${PYTHON3:-python3}
VENV=${VENV:-.venv}
COMPAT_VENV=${COMPAT_VENV:-.venv-compat}
LAB_DIR=${LAB_DIR:-tests/lab}

say() { printf 'deps: %s\n' "$*"; }
die() {
    printf 'deps: %s\n' "$*" >&2
    exit 1
}

# --- system packages -------------------------------------------------------------------
# What each profile needs: build (C toolchain and the libraries the kernel links), Java 17 for
# Spark, python3-venv for the venvs; the tests add criterion, clang with its sanitizer and
# fuzzer runtimes (libclang-rt-dev), clang-format, valgrind, iproute2 (network namespaces),
# Chromium for JupyterLab in a headless browser, and Node.js/npm where missing.
run_pkgs=(build-essential pkg-config libzmq3-dev libsodium-dev libjansson-dev
    libcurl4-openssl-dev openjdk-17-jre-headless python3-venv procps)
test_pkgs=(clang clang-format libclang-rt-dev valgrind iproute2 libcriterion-dev)

os_id=$(. /etc/os-release 2>/dev/null && echo "${ID:-unknown}")
pkgs=("${run_pkgs[@]}")
if [ "$profile" = test ]; then
    pkgs+=("${test_pkgs[@]}")
    # Debian packages Chromium as `chromium`; Ubuntu's `chromium-browser` is a snap wrapper.
    if [ "$os_id" = ubuntu ]; then pkgs+=(chromium-browser); else pkgs+=(chromium); fi
    # NodeSource's nodejs ships npm and conflicts with Debian's npm package: add Debian's
    # only when npm is missing.
    command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    die "this is not a Debian or Ubuntu system (no dpkg-query): install by hand the equivalents of: ${pkgs[*]}"
fi
# One dpkg-query for all of them: "<name> ii" for an installed package; unknown names are
# not listed at all.
declare -A installed=()
while read -r name status; do
    [ "$status" = ii ] && installed[${name%%:*}]=1
done < <(dpkg-query -W -f='${binary:Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null || true)
missing=()
for p in "${pkgs[@]}"; do
    [ -n "${installed[$p]:-}" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "${SPARKERNEL_DEPS_CHECK_ONLY:-}" = 1 ]; then
        die "missing system packages: ${missing[*]}; run as root: $cmd"
    fi
    if [ "$(id -u)" = 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        die "missing system packages: ${missing[*]}. Install them (this needs root), then run make again: sudo sh -c '$cmd'"
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python ----------------------------------------------------------------------------
# Only when a venv has to be made or updated: python3 through pyenv's shim alone takes 0.3 s.
check_python() {
    py_ok=$("$PYTHON3" -c 'import sys; print(int(sys.version_info >= (3, 10)))' 2>/dev/null || echo none)
    if [ "$py_ok" = none ]; then
        die "no Python 3 found as '$PYTHON3': install Python 3.10 or newer (apt-get install python3 python3-venv) or set PYTHON3=/path/to/python3"
    elif [ "$py_ok" != 1 ]; then
        die "$("$PYTHON3" -V 2>&1) is too old: sparkernel needs Python 3.10 or newer; set PYTHON3=/path/to/python3.10+"
    fi
}

sha() { cat "$@" | sha256sum | cut -c1-64; }

# install_venv DIR REQUIREMENTS: (re)installs DIR from REQUIREMENTS unless its stamp matches.
install_venv() {
    local dir=$1 req=$2 want created=0
    want=$(sha "$req")
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.sparkernel-deps" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    check_python
    say "python venv $dir from $req"
    if [ ! -x "$dir/bin/python" ]; then
        rm -rf "$dir"
        "$PYTHON3" -m venv "$dir" || {
            rm -rf "$dir"
            die "cannot create a venv with $PYTHON3 (Debian/Ubuntu: apt-get install python3-venv)"
        }
        created=1
    fi
    rm -f "$dir/.sparkernel-deps"
    if ! "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"; then
        [ "$created" = 1 ] && rm -rf "$dir"
        die "pip could not install $req into $dir (see pip's message above); nothing was kept"
    fi
    echo "$want" >"$dir/.sparkernel-deps"
}

install_venv "$VENV" requirements.txt
if [ "$profile" = test ]; then
    install_venv "$COMPAT_VENV" requirements-compat.txt
    # --- npm: playwright-core drives Debian's Chromium (no browser download) -----------
    lab=$LAB_DIR
    want=$(sha "$lab/package-lock.json" "$lab/package.json")
    if [ "$(cat "$lab/node_modules/.sparkernel-deps" 2>/dev/null)" != "$want" ]; then
        say "npm packages for the JupyterLab test ($lab)"
        if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$lab" --no-audit --no-fund \
            --loglevel=error >/dev/null; then
            rm -rf "$lab/node_modules"
            die "npm ci failed in $lab (see npm's message above); nothing was kept"
        fi
        echo "$want" >"$lab/node_modules/.sparkernel-deps"
    fi
fi
exit 0
