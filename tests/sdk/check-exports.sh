#!/usr/bin/env bash
# Fails unless every given plugin library defines exactly one dynamic symbol, swarm_plugin_entry
# (the stable C ABI; DESIGN.md "The plugin contract"). A leaked C++ symbol would let a plugin and
# the kernel (or two plugins) bind to each other's copies of std:: or kj:: code.
#
#   check-exports.sh [--nm <nm>] <plugin.so>...
set -uo pipefail

nm=nm
if [ "${1:-}" = --nm ]; then nm=$2; shift 2; fi
if [ $# -eq 0 ]; then
  echo "check-exports.sh: no plugin libraries given; the build defines none (expected the fakes)" >&2
  exit 2
fi

bad=0
for so in "$@"; do
  if [ ! -f "$so" ]; then
    echo "FAIL: $so does not exist; build it first" >&2
    bad=1
    continue
  fi
  if ! symbols=$("$nm" -D --defined-only "$so" 2>&1); then
    echo "FAIL: $nm -D could not read $so: $symbols" >&2
    bad=1
    continue
  fi
  entry=$(awk '$NF == "swarm_plugin_entry" && $(NF-1) == "T"' <<<"$symbols")
  others=$(awk 'NF >= 2 && $NF != "swarm_plugin_entry" { print $NF }' <<<"$symbols")
  if [ -z "$entry" ]; then
    echo "FAIL: $so does not export swarm_plugin_entry as a function (T); use SWARM_PLUGIN(...)" >&2
    bad=1
  fi
  if [ -n "$others" ]; then
    echo "FAIL: $so exports $(wc -l <<<"$others") symbol(s) besides swarm_plugin_entry:" \
      "$(head -5 <<<"$others" | tr '\n' ' ')- build it with swarm_add_plugin() (hidden" \
      "visibility plus the plugin.map version script)" >&2
    bad=1
  fi
  if [ -n "$entry" ] && [ -z "$others" ]; then
    echo "ok   $(basename "$so"): only swarm_plugin_entry"
  fi
done
exit "$bad"
