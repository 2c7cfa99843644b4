#!/usr/bin/env bash
# Builds the benchmarks in Release and runs every one of them, printing their tables.
#
#   scripts/bench.sh [--quick] [--only NAME] [-- <extra arguments for the benchmarks run>]
#
# BUILD_DIR (default ./build-bench) is where it configures and builds. Each benchmark's output is
# also saved to $BUILD_DIR/bench-results/<name>.txt, and its JSON lines to <name>.jsonl.
# Benchmarks only use loopback and Unix sockets. Timing is noisy on a shared machine: run twice.
set -euo pipefail

usage() {
  echo "usage: scripts/bench.sh [--quick] [--only NAME] [-- <arguments for the benchmarks run>]"
  echo "  --quick      a short run (about a tenth of the calls)"
  echo "  --only NAME  run just that benchmark (e.g. plugin-call-bench)"
  echo "  BUILD_DIR=<dir>  build directory (default ./build-bench)"
}

quick=()
only=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --only)
      [ $# -ge 2 ] || { echo "bench.sh: --only needs a benchmark name; see --help" >&2; exit 2; }
      only="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
  esac
  shift
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-./build-bench}"
jobs="${JOBS:-$(nproc)}"

# Build output goes to a log, shown only when a step fails.
mkdir -p "$build"
log="$build/bench-build.log"
step() {
  if ! "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "bench.sh: '$*' failed; the full log is $log" >&2
    exit 1
  fi
}
: >"$log"
echo "bench.sh: configuring ${build} (Release)"
step cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
echo "bench.sh: building the benchmarks"
step cmake --build "$build" -j"$jobs" --target benchmarks

list="$build/bench/benchmarks.txt"
if [ ! -s "$list" ]; then
  echo "bench.sh: no benchmarks listed in $list; add them with swarm_add_benchmark" >&2
  exit 1
fi

results="$build/bench-results"
mkdir -p "$results"
status=0
ran=0
while IFS= read -r bench; do
  [ -n "$bench" ] || continue
  name="$(basename "$bench")"
  [ -z "$only" ] || [ "$name" = "$only" ] || continue
  ran=1
  echo
  echo "==== $name ${quick[*]} ${extra[*]}"
  # </dev/null: the benchmark must not eat the rest of the list from stdin.
  if "$bench" "${quick[@]}" "${extra[@]}" </dev/null | tee "$results/$name.txt"; then
    grep '^{' "$results/$name.txt" >"$results/$name.jsonl" || true
  else
    echo "bench.sh: $name failed" >&2
    status=1
  fi
done <"$list"

if [ "$ran" -eq 0 ]; then
  names="$(xargs -n1 basename <"$list" | tr '\n' ' ')"
  echo "bench.sh: no benchmark named '$only'; these exist: $names" >&2
  exit 2
fi
echo
echo "bench.sh: results saved in $results"
exit "$status"
