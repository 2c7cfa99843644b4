#!/bin/sh
# Makes the test image the docker tests run: a one-layer image holding Debian's busybox-static
# and the applet links the tests use, imported with `docker import` (no registry involved).
# Idempotent: an existing tag is kept. Prints the image ID.
#
#   tests/docker/test-image.sh [tag]     # default swarm-test/busybox:latest
#
# Environment: DOCKER (default /usr/bin/docker, Debian's CLI), DOCKER_SOCKET, BUSYBOX (default
# /bin/busybox).
set -eu

tag=${1:-swarm-test/busybox:latest}
docker=${DOCKER:-/usr/bin/docker}
busybox=${BUSYBOX:-/bin/busybox}
export DOCKER_HOST="unix://${DOCKER_SOCKET:-/var/run/docker.sock}"

id=$("$docker" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
if [ -n "$id" ]; then
  echo "$id"
  exit 0
fi

# The image has no libc, so only a static busybox runs in it (ldd fails on a static binary).
if ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
  echo "test-image: $busybox is not a static busybox; install busybox-static" >&2
  exit 1
fi

exec 9>/run/swarm-test-image.lock
flock 9
id=$("$docker" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
if [ -n "$id" ]; then
  echo "$id"
  exit 0
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/root"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh ash sleep echo cat ls env id true false test printf kill ps wget nc hostname \
              mkdir rm touch grep head tail wc date stat pwd whoami uname; do
  ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

tar -C "$root" -cf - . | "$docker" import \
  --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' \
  --message 'swarm-kernel test image (busybox-static)' - "$tag" >/dev/null
"$docker" image inspect --format '{{.Id}}' "$tag"
