#!/usr/bin/env bash
# Makes this machine able to build and run the chart's images with podman, as root:
# installs podman, buildah, runc and debootstrap from Debian's packages when missing, and
# writes a containers.conf drop-in that selects runc (crun fails on hybrid cgroups, as on
# this project's machines) and default ulimits within the machine's hard limits (podman's
# own defaults ask for more than a container here may have). Idempotent: a machine that
# is already set up is left as it is. Used by `make images` and `make test-containers`.
set -euo pipefail

conf_dir=/etc/containers/containers.conf.d
conf=$conf_dir/50-sparkernel.conf

need=()
for tool in podman buildah runc debootstrap; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [[ ${#need[@]} -gt 0 || ! -f $conf ]]; then
  [[ $(id -u) == 0 ]] || {
    echo "setup-podman.sh: ${need[*]:-$conf} missing and not root: run it as root, or install podman, buildah, runc and debootstrap and write $conf yourself" >&2
    exit 1
  }
fi

if [[ ${#need[@]} -gt 0 ]]; then
  command -v apt-get >/dev/null || {
    echo "setup-podman.sh: ${need[*]} missing and no apt-get: install them with this system's package manager" >&2
    exit 1
  }
  echo "== installing ${need[*]} (Debian packages)"
  # debootstrap's package is debootstrap; the others are named after their command.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman buildah runc debootstrap uidmap fuse-overlayfs slirp4netns \
    containernetworking-plugins iptables >/dev/null
fi

# Ulimits: the machine's hard limits bound what a container may ask for.
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[[ $nofile == unlimited || $nofile -gt 20000 ]] && nofile=20000
[[ $nproc == unlimited || $nproc -gt 4096 ]] && nproc=4096
want=$(cat <<CONF
# Written by sparkernel's charts/images/setup-podman.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
CONF
)
if [[ ! -f $conf || "$(cat "$conf")" != "$want" ]]; then
  mkdir -p "$conf_dir"
  printf '%s\n' "$want" >"$conf"
  echo "== wrote $conf"
fi

runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null) || {
  echo "setup-podman.sh: 'podman info' fails: run it to see why" >&2; exit 1; }
[[ $runtime == runc ]] || {
  echo "setup-podman.sh: podman uses $runtime, not runc: another containers.conf overrides $conf" >&2; exit 1; }
