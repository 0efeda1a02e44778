#!/usr/bin/env bash
# `make test-k8s`: the chart on a real single-node Kubernetes built on this machine
# (tests/k8s/cluster.sh). Steps, each a test that can fail:
#   cluster up; both images built with podman (charts/images/build.sh) and loaded into
#   containerd; helm install with one worker (--wait); the worker registered at the master;
#   helm test (a notebook cell through the kernel, on the cluster); helm upgrade to 3
#   workers; helm upgrade to bigger workers (more memory, and more cores when the node has
#   room); helm test again; helm uninstall (and the kept claim deleted) leaving nothing of
#   the release; cluster down leaving no process, mount, link or rule behind.
# Not part of `make test`. Run as root. Last line: "N passed, M failed".
# K8S_KEEP=1 leaves the cluster up at the end (tests/k8s/cluster.sh down stops it).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${K8S_CACHE:-/var/cache/sparkernel-k8s}
logs=${K8S_LOGS:-$root/build/k8s}
export K8S_LOGS=$logs
ns=sparkernel-k8s-test
rel=sparkernel
HELM_VERSION=v3.22.0
mkdir -p "$logs"
cluster="$here/cluster.sh"
eval "$(bash "$cluster" env)"
export PATH=/usr/local/go/bin:$PATH GOMAXPROCS=${GOMAXPROCS:-2}

passed=0 failed=0
times=()
step() {  # step NAME CMD...: one test, timed; its output goes to $logs/steps.log
  local name=$1; shift
  local t0=$SECONDS
  echo "---- $name" >>"$logs/steps.log"
  if "$@" >>"$logs/steps.log" 2>&1; then
    passed=$((passed + 1)); echo "PASS  $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); echo "FAIL  $name ($((SECONDS - t0)) s)"
    tail -n 40 "$logs/steps.log" | sed 's/^/      /'
  fi
  times+=("$name: $((SECONDS - t0)) s")
}
finish() {
  printf '%s\n' "${times[@]}" >"$logs/times.txt"
  echo "$passed passed, $failed failed"
  [[ $failed == 0 ]]; exit
}
: >"$logs/steps.log"

[[ $(id -u) == 0 ]] || { echo "tests/k8s/run.sh: run as root"; echo "0 passed, 1 failed"; exit 1; }

helm_bin() {  # helm as tests/charts/run.sh builds it, kept in the cache
  local h=$cache/bin/helm-$HELM_VERSION
  [[ -x $h ]] && return 0
  local ld="-w -s -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" p
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=34"
  done
  mkdir -p "$cache/helm"
  GOBIN=$cache/helm GOTOOLCHAIN=local nice -n 19 go install -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" &&
    mv "$cache/helm/helm" "$h"
}

images() {
  bash "$root/charts/images/build.sh" --base "${IMAGES_BASE:-auto}" || return 1
  # shellcheck disable=SC1091
  source "$root/build/images/tags.env"
  bash "$cluster" load "$SPARK_IMAGE" "$EDGENODE_IMAGE"
}

image_sets() {  # --set lines naming the images just built (tags.env)
  source "$root/build/images/tags.env"
  local s=${SPARK_IMAGE#localhost/} e=${EDGENODE_IMAGE#localhost/}
  echo "--set images.spark.repository=${s%:*} --set images.spark.tag=${s##*:}"
  echo "--set images.edgenode.repository=${e%:*} --set images.edgenode.tag=${e##*:}"
}

helm_() { "$cache/bin/helm-$HELM_VERSION" "$@"; }

pods_of() { kubectl -n $ns get pods -l "app.kubernetes.io/instance=$rel,app.kubernetes.io/component=$1" \
              -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}'; }

# alive workers and their cores/memory, as the master's /json/ says
master_workers() {
  kubectl -n $ns exec deploy/$rel-master -- python3 -c '
import json, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:8080/json/"))
alive = [w for w in d["workers"] if w["state"] == "ALIVE"]
print(len(alive), " ".join("%s:%dc/%dm" % (w["host"], w["cores"], w["memory"]) for w in alive))'
}

wait_workers() {  # wait_workers N CORES MEMORY_MB: N alive workers of that size at the master
  local n=$1 c=$2 m=$3 out
  for _ in $(seq 180); do
    out=$(master_workers 2>/dev/null) || out=""
    local count=${out%% *} ok=0
    if [[ $count == "$n" ]]; then
      ok=1
      for w in ${out#* }; do [[ $w == *":${c}c/${m}m" ]] || ok=0; done
    fi
    [[ $ok == 1 ]] && { echo "master: $out"; return 0; }
    sleep 2
  done
  echo "expected $n alive workers of ${c} cores and ${m} MiB, the master says: ${out:-nothing}"
  kubectl -n $ns get pods -o wide
  return 1
}

install() {
  # shellcheck disable=SC2046
  helm_ install $rel "$root/charts/sparkernel" -n $ns --create-namespace $(image_sets) \
    --set workers.replicas=1 --wait --timeout 15m
  kubectl -n $ns get pods -o wide
}

worker_registered() { wait_workers 1 1 1024; }

# JupyterLab from this host through its NodePort on the node's address (what `minikube
# service` opens): the kernelspec listed with the generated token, refused without it; the
# example notebooks on the shared volume (copied by the edgenode's initContainer), as the
# Jupyter contents API lists them. The token is read into a variable, never printed.
jupyter_nodeport() {
  local port token code
  port=$(kubectl -n $ns get svc $rel-jupyter -o jsonpath='{.spec.ports[0].nodePort}')
  token=$(kubectl -n $ns get secret $rel-jupyter -o jsonpath='{.data.token}' | base64 -d)
  [[ -n $port && -n $token ]] || { echo "no NodePort or no token"; return 1; }
  local url="http://10.218.0.1:$port"
  echo "JupyterLab at $url"
  curl -fsS -H "Authorization: token $token" "$url/api/kernelspecs" | python3 -c '
import json, sys
specs = json.load(sys.stdin)["kernelspecs"]
names = {k: v["spec"]["display_name"] for k, v in specs.items()}
print("kernelspecs:", names)
sys.exit(0 if "PySpark (sparkernel)" in names.values() else "no PySpark (sparkernel) kernelspec")' || return 1
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/kernelspecs")
  echo "without the token: HTTP $code"; [[ $code == 403 || $code == 401 ]] || return 1
  curl -fsS -H "Authorization: token $token" "$url/api/contents/" | python3 -c '
import json, sys
names = sorted(c["name"] for c in json.load(sys.stdin)["content"])
print("on the volume:", names)
missing = {"spark-example.ipynb", "linearRegressionBostonHousing.ipynb"} - set(names)
sys.exit("missing on the volume: %s" % sorted(missing) if missing else 0)'
}

helm_test() { helm_ test $rel -n $ns --logs --timeout 15m; }

node_cpu_m() {  # allocatable CPU of the node, in millicores
  local c; c=$(kubectl get node sk8s-node -o jsonpath='{.status.allocatable.cpu}')
  [[ $c == *m ]] && echo "${c%m}" || echo $((c * 1000))
}

# Scale out to 3 workers. Each worker asks for workers.cores (1) CPU; on a node without
# room for all three the Deployment still has three pods and those that do not fit stay
# Pending with "Insufficient cpu" (the README's promise): checked either way.
scale_out() {
  helm_ upgrade $rel "$root/charts/sparkernel" -n $ns --reuse-values --set workers.replicas=3 --timeout 15m
  local want=3 cpu; cpu=$(node_cpu_m)
  local others=$((250 + 500))   # master and edgenode requests (the chart's defaults)
  local fit=$(( (cpu - others) / 1000 )); (( fit > 3 )) && fit=3
  echo "node allocatable cpu ${cpu}m: $fit of $want workers fit"
  wait_workers "$fit" 1 1024 || return 1
  local pods; pods=$(pods_of worker); echo "$pods"
  [[ $(grep -c . <<<"$pods") == 3 ]] || { echo "expected 3 worker pods"; return 1; }
  if (( fit < want )); then
    local pending; pending=$(grep -c ' Pending$' <<<"$pods")
    [[ $pending == $((want - fit)) ]] || { echo "expected $((want - fit)) Pending workers"; return 1; }
    kubectl -n $ns get events --field-selector reason=FailedScheduling -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' | tail -n 1 |
      grep 'Insufficient cpu'
  fi
}

# Scale up. More memory per worker (2g: the container's request and limit become 3Gi), back
# to one worker: the worker is replaced (one at a time, the old pod first) and registers with
# 2048 MiB. Then 2 cores: where the node has 2 CPUs free beside the master's, the edgenode's
# (and its initContainer's) requests, the worker runs with 2 cores; where it has not (this
# machine: 2 CPUs in all), the new worker stays Pending with "Insufficient cpu", as the
# README says, and the step checks exactly that, then goes back to 1 core.
scale_up() {
  helm_ upgrade $rel "$root/charts/sparkernel" -n $ns --reuse-values --set workers.replicas=1 \
    --set workers.memory=2g --wait --timeout 15m || return 1
  wait_workers 1 1 2048 || return 1
  kubectl -n $ns get deploy/$rel-worker -o jsonpath='{.spec.template.spec.containers[0].resources}'; echo
  local cpu; cpu=$(node_cpu_m)
  if (( cpu >= 2000 + 750 + 50 )); then
    helm_ upgrade $rel "$root/charts/sparkernel" -n $ns --reuse-values --set workers.cores=2 \
      --wait --timeout 15m || return 1
    wait_workers 1 2 2048
  else
    echo "node allocatable cpu ${cpu}m: a 2-core worker cannot fit beside the master and the edgenode"
    helm_ upgrade $rel "$root/charts/sparkernel" -n $ns --reuse-values --set workers.cores=2 --timeout 15m || return 1
    local msg="" pod=""
    for _ in $(seq 60); do  # the new worker pod (2 CPUs requested) and why it is not scheduled
      pod=$(kubectl -n $ns get pods -l app.kubernetes.io/component=worker -o jsonpath=\
'{range .items[?(@.spec.containers[0].resources.requests.cpu=="2")]}{.metadata.name}{"\n"}{end}' | head -n 1)
      [[ -n $pod ]] && msg=$(kubectl -n $ns get events --field-selector "reason=FailedScheduling,involvedObject.name=$pod" \
              -o jsonpath='{range .items[*]}{.involvedObject.name} {.message}{"\n"}{end}' | tail -n 1)
      [[ $msg == *"Insufficient cpu"* ]] && break; sleep 2
    done
    echo "$msg"
    [[ $msg == *"Insufficient cpu"* ]] || { echo "no FailedScheduling (Insufficient cpu) for the 2-core worker"; return 1; }
    kubectl -n $ns get pods -l app.kubernetes.io/component=worker \
      -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase} {.spec.containers[0].resources.requests.cpu}{"\n"}{end}'
    helm_ upgrade $rel "$root/charts/sparkernel" -n $ns --reuse-values --set workers.cores=1 --wait --timeout 15m || return 1
    wait_workers 1 1 2048
  fi
}

uninstall() {
  helm_ uninstall $rel -n $ns --wait --timeout 5m || return 1
  # What helm leaves on purpose: the claim (persistence.keep) and the last `helm test` pod
  # (its hook is deleted only before the next test, so its logs stay readable); the pod
  # still mounts the claim, whose deletion waits for it (pvc-protection).
  # (the release's other pods are deleted in the background: give them time to go)
  local kept want="persistentvolumeclaim/$rel-data pod/$rel-test-notebook "
  for _ in $(seq 90); do
    kept=$(kubectl -n $ns get all,pvc -o name | sort | tr '\n' ' ')
    [[ $kept == "$want" ]] && break; sleep 2
  done
  echo "kept after uninstall: $kept"
  [[ $kept == "$want" ]] || { echo "expected only the claim and the test pod"; return 1; }
  kubectl -n $ns delete pod "$rel-test-notebook" --wait --timeout 2m || return 1
  kubectl -n $ns delete pvc "$rel-data" --wait --timeout 2m || return 1
  local left
  for _ in $(seq 60); do
    left=$(kubectl -n $ns get all,configmap,secret,pvc,networkpolicy,serviceaccount,endpointslice -o name 2>/dev/null |
           grep -vE '^(configmap/kube-root-ca.crt|serviceaccount/default)$')
    [[ -z $left ]] && break; sleep 2
  done
  [[ -z $left ]] || { echo "left in $ns after uninstall:"; echo "$left"; return 1; }
  kubectl delete namespace $ns --wait --timeout 2m || return 1
  bash "$cluster" recycle-volume
}

cluster_down() {
  bash "$cluster" down || return 1
  local left
  left=$(pgrep -a -f "$cache/bin/|containerd --config /var/lib/sparkernel-k8s|etcd --name sk8s-node|containerd-shim-runc-v2 -namespace k8s.io" || true)
  [[ -z $left ]] || { echo "still running:"; echo "$left"; return 1; }
  ! ip link show sk8sbr0 >/dev/null 2>&1 || { echo "bridge sk8sbr0 left"; return 1; }
  ! grep -q ' /var/lib/sparkernel-k8s/' /proc/mounts || { echo "mounts left:"; grep ' /var/lib/sparkernel-k8s/' /proc/mounts; return 1; }
  local t
  for t in filter nat mangle; do
    ! iptables -t $t -S | grep -q KUBE- || { echo "KUBE-* iptables rules left in $t:"; iptables -t $t -S | grep KUBE-; return 1; }
  done
}

leftover() {  # a release or namespace left by an interrupted run
  if helm_ status $rel -n $ns >/dev/null 2>&1; then helm_ uninstall $rel -n $ns --wait --timeout 5m; fi
  kubectl delete namespace $ns --ignore-not-found --wait --timeout 3m || return 1
  bash "$cluster" recycle-volume
}

t_all=$SECONDS
step "cluster up (build what is missing, start, node Ready)" bash "$cluster" up
if [[ $failed -gt 0 ]]; then bash "$cluster" down >/dev/null 2>&1; finish; fi
step "helm $HELM_VERSION built (cached)" helm_bin
step "no release left from an earlier run" leftover
step "images built (podman) and loaded into containerd" images
if [[ $failed -eq 0 ]]; then
  step "helm install, 1 worker (--wait)" install
  step "the worker registered at the master (RPC auth)" worker_registered
  step "JupyterLab through its NodePort: token, kernelspec, examples on the volume" jupyter_nodeport
  step "helm test: a notebook cell through the kernel on the cluster" helm_test
  step "helm upgrade: scale out to 3 workers" scale_out
  step "helm upgrade: scale up (2g; 2 cores where they fit)" scale_up
  step "helm test after the upgrades" helm_test
  step "helm uninstall leaves nothing" uninstall
fi
if [[ ${K8S_KEEP:-0} == 1 ]]; then echo "K8S_KEEP=1: the cluster is still up (tests/k8s/cluster.sh down)"
else step "cluster down leaves nothing running" cluster_down; fi
times+=("total: $((SECONDS - t_all)) s")
finish
