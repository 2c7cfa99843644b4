#!/usr/bin/env bash
# Proves the installed SDK is all a third party needs: installs the project into a temp dir,
# builds tests/third_party/example-scheduler against that install only, checks its exports, runs
# the scheduler conformance suite on it in and out of process, and runs `swarm-kernel --check`
# with it as the scheduler and the fakes for the other kinds. Writes only under a temp dir
# (plus the install_manifest.txt cmake --install leaves in the build dir).
#
#   run-example.sh --build <project build dir> --source <project source dir> \
#     --example <example-scheduler dir> --conformance <swarm-conformance> --kernel <swarm-kernel> \
#     --check-exports <tests/sdk/check-exports.sh> [--cmake cmake] [--ctest ctest] [--nm nm] \
#     --fake consensus=<so> --fake pki=<so> --fake runtime=<so> --fake transport=<so>
#
# SWARM_SEED=<n> replays the conformance cases with that seed (the suite prints its seed).
set -euo pipefail

build= source= example= conformance= kernel= check_exports= cmake=cmake ctest=ctest nm=nm
declare -A fakes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --source) source=$2; shift 2 ;;
    --example) example=$2; shift 2 ;;
    --conformance) conformance=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --check-exports) check_exports=$2; shift 2 ;;
    --cmake) cmake=$2; shift 2 ;;
    --ctest) ctest=$2; shift 2 ;;
    --nm) nm=$2; shift 2 ;;
    --fake) fakes[${2%%=*}]=${2#*=}; shift 2 ;;
    *) echo "run-example.sh: unknown argument '$1'; see the usage at the top of $0" >&2; exit 2 ;;
  esac
done
for v in build source example conformance kernel check_exports; do
  [ -n "${!v}" ] || { echo "run-example.sh: --${v//_/-} is required" >&2; exit 2; }
done
for kind in consensus pki runtime transport; do
  [ -f "${fakes[$kind]:-}" ] || { echo "run-example.sh: --fake $kind=<path> missing or not built" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/swarm-third-party.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
step() { echo; echo "== $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

# ---- 1. install into a staging dir --------------------------------------------------------------
# DESTDIR keeps even an absolute install destination inside $tmp; the SDK is then used from a
# place other than its configured prefix, which also proves the package is relocatable.
step "install the project (DESTDIR=$tmp/stage, prefix /opt/swarm-kernel)"
DESTDIR="$tmp/stage" "$cmake" --install "$build" --prefix /opt/swarm-kernel >"$tmp/install.log" ||
  { cat "$tmp/install.log" >&2; die "cmake --install failed"; }
outside=$(cd "$tmp/stage" && find . -mindepth 1 -maxdepth 1 ! -name opt)
[ -z "$outside" ] || die "install rules write outside the prefix: $outside"
prefix="$tmp/stage/opt/swarm-kernel"
for f in include/swarm/plugin.h include/swarm/sdk.h include/swarm/schema/scheduler.capnp.h \
         lib/cmake/SwarmKernelSDK/SwarmKernelSDKConfig.cmake lib/cmake/SwarmKernelSDK/SwarmPlugin.cmake \
         share/swarm-kernel/schema/scheduler.capnp; do
  [ -f "$prefix/$f" ] || die "the install lacks $f"
done
ls "$prefix"/lib*/libswarm-sdk.a >/dev/null 2>&1 || die "the install lacks libswarm-sdk.a"
echo "installed $(find "$prefix" -type f | wc -l) files"

# ---- 2. build the example against the install only ----------------------------------------------
# A copy outside the source tree, so nothing can reach the project's sources by a relative path.
step "configure and build example-scheduler against $prefix"
cp -r "$example" "$tmp/example-src"
rm -rf "$tmp/example-src/build"
"$cmake" -S "$tmp/example-src" -B "$tmp/example-build" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log" >&2; die "configuring the example against the install failed"; }
sdk_dir=$(sed -n 's/^SwarmKernelSDK_DIR:[A-Z]*=//p' "$tmp/example-build/CMakeCache.txt")
[ "$sdk_dir" = "$prefix/lib/cmake/SwarmKernelSDK" ] || [ "$sdk_dir" = "$prefix/lib64/cmake/SwarmKernelSDK" ] ||
  [[ "$sdk_dir" == "$prefix"/lib/*/cmake/SwarmKernelSDK ]] ||
  die "find_package(SwarmKernelSDK) found '$sdk_dir', not the install under $prefix"
"$cmake" --build "$tmp/example-build" -j "$(nproc)" >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; die "building the example against the install failed"; }
# The build must not have reached into the project's tree for headers or libraries.
for tree in "$source" "$build"; do
  if grep -rlF -- "$(realpath "$tree")" "$tmp/example-build" --include=compile_commands.json \
       --include='link.txt' --include='flags.make' --include='build.ninja' >/dev/null 2>&1; then
    die "the example's build refers to $tree; it must use only the install"
  fi
done
so="$tmp/example-build/example-scheduler.so"
[ -f "$so" ] || die "the example build produced no example-scheduler.so"
echo "built $so"

# ---- 3. the example's own tests (written against the SDK only) ---------------------------------
step "the example's own tests"
"$ctest" --test-dir "$tmp/example-build" --output-on-failure --no-tests=error ||
  die "example-scheduler's own tests failed"
"$tmp/example-build/example-scheduler-test" "$so" | sed 's/^/    /'

# ---- 3b. exports ----------------------------------------------------------------------------------
step "exports"
bash "$check_exports" --nm "$nm" "$so"

# ---- 4. conformance ------------------------------------------------------------------------------
seed_args=()
[ -z "${SWARM_SEED:-}" ] || seed_args=(--seed "$SWARM_SEED")
step "swarm-conformance --kind scheduler (in process)"
timeout 300 "$conformance" --kind scheduler --plugin "$so" "${seed_args[@]}" ||
  die "the scheduler conformance suite failed in process (rerun with SWARM_SEED=<seed printed above>)"
step "swarm-conformance --kind scheduler --out-of-process"
timeout 300 "$conformance" --kind scheduler --plugin "$so" --out-of-process "${seed_args[@]}" ||
  die "the scheduler conformance suite failed out of process (rerun with SWARM_SEED=<seed printed above>)"

# ---- 5. the kernel loads it next to the fakes ----------------------------------------------------
write_conf() {  # write_conf <file> <extra scheduler lines>
  {
    echo "# example-scheduler with the fakes (tests/fakes) for every other kind"
    for kind in consensus pki scheduler runtime transport; do
      echo "[$kind]"
      if [ "$kind" = scheduler ]; then
        echo "library = $so"
        [ -z "$2" ] || printf '%s\n' "$2"
      else
        echo "library = ${fakes[$kind]}"
      fi
    done
  } >"$1"
}
for isolation in in-process out-of-process; do
  step "swarm-kernel --check (scheduler $isolation)"
  write_conf "$tmp/plugins-$isolation.conf" "isolation = $isolation"
  timeout 120 "$kernel" --plugins "$tmp/plugins-$isolation.conf" --check ||
    die "swarm-kernel --check failed with example-scheduler $isolation (config: $(cat "$tmp/plugins-$isolation.conf"))"
done

# The kernel must refuse a setting the example does not take, naming it.
step "swarm-kernel --check refuses an unknown example-scheduler setting"
write_conf "$tmp/plugins-bad.conf" "setting.spread-by = zone"
rc=0
timeout 120 "$kernel" --plugins "$tmp/plugins-bad.conf" --check >"$tmp/bad.log" 2>&1 || rc=$?
cat "$tmp/bad.log"
[ "$rc" -ne 0 ] || die "swarm-kernel --check accepted an unknown setting for example-scheduler"
grep -q "spread-by" "$tmp/bad.log" || die "the refusal does not name the unknown setting 'spread-by'"

echo
echo "third-party example-scheduler: install, out-of-tree build, exports, conformance and kernel check passed"
