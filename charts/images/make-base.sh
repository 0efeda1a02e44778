#!/usr/bin/env bash
# Makes the local base image of the chart's images, for machines that reach no image
# registry (the published Temurin base cannot be pulled there): Debian 12 (bookworm) from
# Debian's packages with debootstrap, plus OpenJDK 17 (openjdk-17-jre-headless) and
# Debian's Python 3 (3.11 on bookworm), imported with `podman import` as
#   sparkernel/base:bookworm-jdk17
# The Dockerfiles take it as BASE_IMAGE (build.sh --base local). Skips the work when the
# image exists with this script's recipe (a label holds its hash); FORCE=1 remakes it.
# DEBIAN_MIRROR overrides debootstrap's default mirror. Needs root (debootstrap, chroot).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${BASE_TAG:-sparkernel/base:bookworm-jdk17}
recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)

[[ $(id -u) == 0 ]] || { echo "make-base.sh: debootstrap needs root: run it as root" >&2; exit 1; }
bash "$here/setup-podman.sh"

if [[ -z ${FORCE:-} ]] \
   && [[ $(podman image inspect --format '{{index .Labels "sparkernel.base.recipe"}}' "$image" 2>/dev/null) == "$recipe" ]]; then
  echo "== $image is up to date (recipe $recipe)"
  exit 0
fi

work=$(mktemp -d /var/tmp/sparkernel-base.XXXXXX)
root=$work/rootfs
cleanup() {
  mountpoint -q "$root/proc" && umount "$root/proc"
# The host's name and resolver, which debootstrap copied, are no part of the image.
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
  rm -rf "$work"
}
trap cleanup EXIT

start=$SECONDS
echo "== debootstrap bookworm into $root"
# minbase: apt and essentials only; the JRE and Python come next, with apt in the chroot.
debootstrap --variant=minbase bookworm "$root" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  echo "make-base.sh: debootstrap failed (log above); set DEBIAN_MIRROR if Debian's default mirror is not reachable" >&2
  exit 1
}

echo "== installing openjdk-17-jre-headless and python3 in the chroot"
mount -t proc proc "$root/proc"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -ec '
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      openjdk-17-jre-headless python3 python3-venv ca-certificates procps >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /var/cache/debconf/*-old
    java -version 2>&1 | head -n1
    python3 --version
  '
umount "$root/proc"
# The host's name and resolver, which debootstrap copied, are no part of the image.
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"

java_home=$(chroot "$root" readlink -f /usr/bin/java)   # .../bin/java, in the chroot
java_home=${java_home%/bin/java}
echo "== importing as $image (JAVA_HOME=$java_home)"
tar -C "$root" -c . | podman import \
  --change "ENV JAVA_HOME=$java_home" \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "LABEL sparkernel.base.recipe=$recipe" \
  --change 'CMD ["/bin/bash"]' \
  - "$image" >/dev/null 2>"$work/import.log" || { cat "$work/import.log" >&2; exit 1; }
echo "== $image made in $((SECONDS - start)) s, $(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
