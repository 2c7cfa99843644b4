#!/usr/bin/env bash
# Installs every Debian 12 package swarm-kernel needs to build, test and run.
# Idempotent: re-running installs nothing new. Run as root.
set -euo pipefail

# Never install an unversioned libboost-*-dev: those are 1.74 and remove 1.81 (stack.md §1).
packages=(
  build-essential cmake pkg-config git
  libboost1.81-dev libboost-filesystem1.81-dev libboost-json1.81-dev libboost-system1.81-dev
  capnproto libcapnp-dev
  libsodium-dev libssl-dev openssl
  libspdlog-dev catch2
  docker.io busybox-static docker-registry
  procps psmisc curl ca-certificates
  jq  # test scripts only: they read the API's JSON (docs/decisions/0005-jq-in-tests.md)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run this script as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
