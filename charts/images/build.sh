#!/usr/bin/env bash
# Builds the chart's two images with podman, from the repo root as build context and the
# versions of versions.env (every KEY=VALUE line becomes a --build-arg):
#   sparkernel/spark:<SPARK_VERSION>[-<suffix>]     master and workers (spark/Dockerfile)
#   sparkernel/edgenode:<SPARK_VERSION>[-<suffix>]  JupyterLab + the kernel built from this repo
#
# Usage: charts/images/build.sh [--base temurin|local|auto] [spark|edgenode]...  (default: both)
#   temurin  the Dockerfiles' default base, the published eclipse-temurin JRE on Ubuntu
#            (what minikube users get; needs a reachable image registry); tags without suffix
#   local    Debian 12 with Debian's OpenJDK 17 and Python, made here by make-base.sh
#            (debootstrap + podman import, no registry needed); PYTHON_VERSION is that base's
#            Python (3.11), not versions.env's; tags end in -bookworm
#   auto     temurin when its base is present or can be pulled, else local (the default)
# Each image's build time and size are printed at the end (and kept in
# build/images/last-build.txt); build/images/tags.env names the images built last
# (SPARK_IMAGE=..., EDGENODE_IMAGE=..., read by tests/containers). NO_CACHE=1 builds
# without podman's layer cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

base=auto
images=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base=${2:-}; shift 2 ;;
    --base=*) base=${1#--base=}; shift ;;
    spark|edgenode) images+=("$1"); shift ;;
    *) echo "build.sh: unknown argument '$1' (usage: build.sh [--base temurin|local|auto] [spark|edgenode]...)" >&2; exit 1 ;;
  esac
done
[[ ${#images[@]} -gt 0 ]] || images=(spark edgenode)
case "$base" in temurin|local|auto) ;; *) echo "build.sh: --base must be temurin, local or auto, not '$base'" >&2; exit 1 ;; esac

bash "$here/setup-podman.sh"

declare -A args=()
order=()
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  args[$key]=$value; order+=("$key")
done < "$here/versions.env"
: "${args[SPARK_VERSION]:?versions.env has no SPARK_VERSION}"

# The Dockerfiles' default base, fully qualified for podman (which resolves no short names
# here); docker and minikube resolve eclipse-temurin:... to this same image.
temurin="docker.io/library/eclipse-temurin:${args[JAVA_VERSION]}-jre-${args[DISTRO]}"
if [[ $base == auto ]]; then
  if podman image exists "$temurin" || timeout 120 podman pull -q "$temurin" >/dev/null 2>&1; then
    base=temurin
  else
    echo "== the Temurin base ($temurin) cannot be pulled here: building on the local Debian 12 base (--base local)"
    base=local
  fi
fi

suffix=""
if [[ $base == temurin ]]; then
  args[BASE_IMAGE]=$temurin
else
  bash "$here/make-base.sh"
  args[BASE_IMAGE]=localhost/sparkernel/base:bookworm-jdk17
  # Both images take the base's own Python: Debian 12's is 3.11, versions.env's 3.12 is
  # not packaged there. The driver and the executors then agree, as PySpark requires.
  py=$(podman run --rm "${args[BASE_IMAGE]}" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ $py != "${args[PYTHON_VERSION]}" ]]; then
    echo "== the local base has Python $py: both images use it (versions.env says ${args[PYTHON_VERSION]})"
  fi
  args[PYTHON_VERSION]=$py
  args[RUNTIME_LIBS]="libzmq5 libjansson4 libsodium23 libssl3 libcurl4"
  suffix=-bookworm
fi
order+=(BASE_IMAGE RUNTIME_LIBS)

# pip inside the build verifies PyPI's certificate against the host's CA bundle when the
# host has one (a TLS-intercepting proxy's CA is in it, not in the base's); it goes in as a
# build secret, so it is in no layer.
ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
secret=()
[[ -s $ca ]] && secret=(--secret "id=pip_cert,src=$ca")

mkdir -p "$root/build/images"
summary=$root/build/images/last-build.txt
: >"$summary"
for image in "${images[@]}"; do
  tag="sparkernel/$image:${args[SPARK_VERSION]}$suffix"
  build_args=()
  for key in "${order[@]}"; do
    [[ $image == spark && $key == RUNTIME_LIBS ]] && continue   # the edgenode's only
    [[ -n ${args[$key]:-} ]] && build_args+=(--build-arg "$key=${args[$key]}")
  done
  echo "== building $tag (base ${args[BASE_IMAGE]}, Python ${args[PYTHON_VERSION]})"
  start=$SECONDS
  (cd "$root" && podman build ${NO_CACHE:+--no-cache} --layers \
      -f "charts/images/$image/Dockerfile" --ignorefile "charts/images/$image/Dockerfile.dockerignore" \
      "${build_args[@]}" "${secret[@]}" -t "$tag" .) || {
    echo "build.sh: building $tag failed (podman's output above)" >&2; exit 1; }
  secs=$((SECONDS - start))
  size=$(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')
  printf '%s  %d s  %s  (base %s)\n' "$tag" "$secs" "$size" "${args[BASE_IMAGE]}" | tee -a "$summary"
  tags=$root/build/images/tags.env
  touch "$tags"
  key=$(tr '[:lower:]' '[:upper:]' <<<"$image")_IMAGE
  { grep -v "^$key=" "$tags" || true; echo "$key=localhost/$tag"; } >"$tags.new" && mv "$tags.new" "$tags"
done
echo "== images built:"; cat "$summary"
