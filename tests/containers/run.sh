#!/usr/bin/env bash
# make test-containers: the chart's pods as podman containers (test_containers.py), with the
# images that charts/images/build.sh built last (build/images/tags.env). Needs root (podman
# as root with runc: charts/images/setup-podman.sh), helm (the one tests/charts/run.sh builds
# into .tools/bin, built here the same way when missing) and $PYTHON with pytest, PyYAML
# and tornado (the repo's .venv: make deps-run); its browser test also node, /usr/bin/chromium
# and tests/lab/node_modules (make deps).
# Usage: tests/containers/run.sh [pytest args]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-$root/.venv/bin/python}

[[ $(id -u) == 0 ]] || { echo "tests/containers: podman runs the containers as root here: run as root" >&2; exit 1; }
[[ -s $root/build/images/tags.env ]] || { echo "tests/containers: no images built yet: run 'make images' first" >&2; exit 1; }
"$PYTHON" -c 'import pytest, yaml, tornado' 2>/dev/null || {
  echo "tests/containers: $PYTHON lacks pytest, PyYAML or tornado: run 'make deps-run' (or set PYTHON)" >&2; exit 1; }
bash "$root/charts/images/setup-podman.sh"

# helm: $HELM, else the one tests/charts/run.sh builds (same version and flags), else build it.
tools=${SPARKERNEL_TOOLS_DIR:-$root/.tools}
helm=${HELM:-$tools/bin/helm}
if [[ ! -x $helm ]]; then
  version=$(sed -n 's/^HELM_VERSION=//p' "$root/tests/charts/run.sh")
  command -v go >/dev/null || { echo "tests/containers: helm is missing and go is needed to build it: set HELM=/path/to/helm" >&2; exit 1; }
  echo "== building helm $version into $tools/bin"
  mkdir -p "$tools/bin"
  [[ -f $tools/.gitignore ]] || echo '*' >"$tools/.gitignore"
  GOBIN="$tools/bin" GOTOOLCHAIN=local go install -ldflags "-w -s" "helm.sh/helm/v3/cmd/helm@$version"
fi

set -a; source "$root/build/images/tags.env"; set +a
cd "$root"
HELM=$helm exec "$PYTHON" -m pytest -v -p no:cacheprovider --durations=0 "$here" "$@"
