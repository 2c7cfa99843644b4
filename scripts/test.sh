#!/usr/bin/env bash
# Installs the dependencies, builds everything and runs every test. The one command CI runs
# (.ci/run). Run it as root on a fresh Debian 12:
#
#   scripts/test.sh
#
# Environment:
#   BUILD_DIR   build directory (default: ./build in the repository)
#   TEST_JOBS   tests run at once (default 2)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
jobs=$(nproc)
test_jobs=${TEST_JOBS:-2}
step=setup
trap 'rc=$?; echo; echo "scripts/test.sh: FAILED during: $step (exit $rc)" >&2' ERR

case "$test_jobs" in
  '' | *[!0-9]* | 0) echo "scripts/test.sh: TEST_JOBS='$test_jobs' must be a whole number from 1" >&2; exit 2 ;;
esac

step="installing dependencies (scripts/install-deps.sh)"
echo "== $step"
"$root/scripts/install-deps.sh"

step="configuring $build"
echo "== $step"
cmake -S "$root" -B "$build"

step="building with $jobs jobs"
echo "== $step"
cmake --build "$build" --parallel "$jobs"

step="running the tests (ctest, $test_jobs at a time)"
echo "== $step"
ctest --test-dir "$build" --no-tests=error --output-on-failure --parallel "$test_jobs"

echo
echo "scripts/test.sh: build and all tests passed ($build)"
