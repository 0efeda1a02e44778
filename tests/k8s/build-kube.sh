#!/usr/bin/env bash
# Builds the Kubernetes binaries that tests/k8s/cluster.sh runs (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl) from the Go module
# k8s.io/kubernetes, and CoreDNS from github.com/coredns/coredns, through the Go module proxy.
#
# k8s.io/kubernetes's go.mod points its k8s.io/* staging modules at ./staging/src/..., which
# the module's zip does not contain (each staging dir is a module of its own). So the source
# is copied out of the module cache, go.work is dropped and go.mod is rewritten to require the
# published staging modules (k8s.io/api v0.34.N for Kubernetes v1.34.N) instead of the
# replace lines; then one `go build` builds every command.
#
# Everything lands in $K8S_CACHE (default /var/cache/sparkernel-k8s): bin/<version>/ holds the
# binaries, and a binary already there is not rebuilt. Builds run under nice/ionice.
# Usage: tests/k8s/build-kube.sh            prints the bin directory on its last line
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.4}
cache=${K8S_CACHE:-/var/cache/sparkernel-k8s}
export PATH=/usr/local/go/bin:$PATH GOMAXPROCS=${GOMAXPROCS:-2} GOWORK=off GOFLAGS=-mod=mod
bin=$cache/bin/$KUBE_VERSION
mkdir -p "$bin"
low() { nice -n 19 ionice -c3 "$@"; }

cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
missing=()
for c in "${cmds[@]}"; do [[ -x $bin/$c ]] || missing+=("$c"); done

if (( ${#missing[@]} )); then
  command -v go >/dev/null || { echo "build-kube: go not found (expected /usr/local/go/bin/go)" >&2; exit 1; }
  echo "== build-kube: downloading k8s.io/kubernetes@$KUBE_VERSION" >&2
  dir=$(low go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d $dir ]] || { echo "build-kube: go mod download k8s.io/kubernetes@$KUBE_VERSION gave no source dir" >&2; exit 1; }
  src=$cache/src/kubernetes-$KUBE_VERSION
  if [[ ! -f $src/.prepared ]]; then
    rm -rf "$src"; mkdir -p "$cache/src"
    cp -r "$dir" "$src"; chmod -R u+w "$src"
    rm -f "$src/go.work" "$src/go.work.sum"
    staging=v0.${KUBE_VERSION#v1.}
    # requirements "k8s.io/X v0.0.0" -> the published staging version; drop "=> ./staging/..."
    sed -i -E "s#^(\s+k8s\.io/[a-z0-9-]+) v0\.0\.0\$#\1 $staging#; /=> \.\/staging\//d" "$src/go.mod"
    if grep -qE 'v0\.0\.0$|=> \./staging' "$src/go.mod"; then
      echo "build-kube: go.mod still refers to staging after the rewrite:" >&2
      grep -nE 'v0\.0\.0$|=> \./staging' "$src/go.mod" >&2; exit 1
    fi
    touch "$src/.prepared"
  fi
  ver=$KUBE_VERSION; minor=${ver#v1.}; minor=${minor%%.*}
  ldflags=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$ver -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  pkgs=(); for c in "${missing[@]}"; do pkgs+=("./cmd/$c"); done
  echo "== build-kube: go build ${missing[*]} (cold: tens of minutes on 2 cores)" >&2
  start=$SECONDS
  (cd "$src" && CGO_ENABLED=0 low go build -trimpath -ldflags "-s -w$ldflags" -o "$bin/" "${pkgs[@]}")
  echo "== build-kube: built in $((SECONDS - start)) s" >&2
fi

if [[ ! -x $bin/coredns ]]; then
  echo "== build-kube: go install github.com/coredns/coredns@$COREDNS_VERSION" >&2
  start=$SECONDS
  GOBIN=$bin CGO_ENABLED=0 GOFLAGS= low go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  echo "== build-kube: coredns built in $((SECONDS - start)) s" >&2
fi
echo "$bin"
