#!/usr/bin/env bash
# Builds the two images of the chart into minikube, with the versions of versions.env:
#   sparkernel/spark:<SPARK_VERSION>     master and workers (spark/Dockerfile)
#   sparkernel/edgenode:<SPARK_VERSION>  JupyterLab + sparkernel (edgenode/Dockerfile)
# The build context is the repo root (the edgenode builds the kernel from source).
#
# Usage: charts/images/build-minikube.sh [spark|edgenode]...   (default: both)
# With a docker CLI it builds against minikube's Docker daemon (eval $(minikube
# docker-env)); without one it uses `minikube image build`. SPARKERNEL_BUILDER=docker or
# SPARKERNEL_BUILDER=minikube chooses explicitly.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# Every KEY=VALUE line of versions.env becomes a build arg.
build_args=()
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  build_args+=("$key=$value")
  printf -v "$key" '%s' "$value"
done < "$here/versions.env"
: "${SPARK_VERSION:?versions.env has no SPARK_VERSION}"

command -v minikube >/dev/null || { echo "minikube is not installed" >&2; exit 1; }
minikube status >/dev/null || { echo "minikube is not running: minikube start --cpus 4 --memory 10g" >&2; exit 1; }

images=("$@")
[[ ${#images[@]} -gt 0 ]] || images=(spark edgenode)

builder=${SPARKERNEL_BUILDER:-}
if [[ -z "$builder" ]]; then
  if command -v docker >/dev/null; then builder=docker; else builder=minikube; fi
fi
case "$builder" in
  docker) eval "$(minikube docker-env)" ;;   # docker now talks to minikube's daemon
  minikube) ;;
  *) echo "SPARKERNEL_BUILDER must be docker or minikube, not $builder" >&2; exit 1 ;;
esac

for image in "${images[@]}"; do
  dockerfile="charts/images/$image/Dockerfile"
  [[ -f "$root/$dockerfile" ]] || { echo "no such image: $image (spark or edgenode)" >&2; exit 1; }
  tag="sparkernel/$image:$SPARK_VERSION"
  echo "== building $tag"
  args=()
  if [[ $builder == docker ]]; then
    for a in "${build_args[@]}"; do args+=(--build-arg "$a"); done
    DOCKER_BUILDKIT=1 docker build -f "$root/$dockerfile" -t "$tag" "${args[@]}" "$root"
  else
    for a in "${build_args[@]}"; do args+=(--build-opt "build-arg=$a"); done
    (cd "$root" && minikube image build -f "$dockerfile" -t "$tag" "${args[@]}" .)
  fi
done
echo "== done; install or upgrade the chart: helm upgrade --install sparkernel charts/sparkernel"
