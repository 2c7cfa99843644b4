#!/usr/bin/env bash
# Checks the plugin ABI and the schemas against the committed records in tests/abi/, or with
# --update regenerates them (docs/sdk.md, "ABI and schema rules").
#
#   check.sh --tool <swarm-abi-check> --capnp <capnp> --capnp-import <dir> \
#            --schema-dir <sdk/schema> --header <sdk/include/swarm/plugin.h> \
#            --records <tests/abi> [--update [--allow-breaking]] header|schemas|all
#
# header:  abi-record.txt holds "<abi version> <sha256 of plugin.h, comments stripped>" per ABI
#          version. plugin.h may only change together with a bump of SWARM_PLUGIN_ABI_VERSION.
# schemas: schema-record.txt pins every ID, ordinal, type and default of sdk/schema/*.capnp;
#          additions pass, anything else fails.
set -euo pipefail

tool= capnp= capnp_import= schema_dir= header= records= update=0 allow_breaking=0 what=
while [ $# -gt 0 ]; do
  case "$1" in
    --tool) tool=$2; shift 2 ;;
    --capnp) capnp=$2; shift 2 ;;
    --capnp-import) capnp_import=$2; shift 2 ;;
    --schema-dir) schema_dir=$2; shift 2 ;;
    --header) header=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --update) update=1; shift ;;
    --allow-breaking) allow_breaking=1; shift ;;
    header|schemas|all) what=$1; shift ;;
    *) echo "check.sh: unknown argument '$1'; see the usage at the top of $0" >&2; exit 2 ;;
  esac
done
[ -n "$tool" ] && [ -n "$records" ] ||
  { echo "check.sh: --tool and --records are required; see the usage at the top of $0" >&2; exit 2; }
[ -n "$what" ] || { echo "check.sh: say what to check: header, schemas or all" >&2; exit 2; }

check_header() {
  local record="$records/abi-record.txt" version digest recorded max touch_record
  read -r version digest < <("$tool" header "$header")
  [ -n "$digest" ] || { echo "check.sh: could not digest $header" >&2; return 2; }
  touch_record=0
  [ -f "$record" ] || touch_record=1
  recorded=$( [ -f "$record" ] && awk -v v="$version" '!/^#/ && $1 == v { print $2 }' "$record" || true)
  max=$( [ -f "$record" ] && awk '!/^#/ && NF == 2 && $1 + 0 > m { m = $1 + 0 } END { print m + 0 }' "$record" || echo 0)

  if [ "$recorded" = "$digest" ]; then
    echo "plugin ABI: plugin.h matches the record for SWARM_PLUGIN_ABI_VERSION $version"
    return 0
  fi
  if [ -n "$recorded" ]; then
    echo "FAIL: sdk/include/swarm/plugin.h changed but SWARM_PLUGIN_ABI_VERSION is still $version" >&2
    echo "      (recorded $recorded, now $digest). Revert the change, or bump" >&2
    echo "      SWARM_PLUGIN_ABI_VERSION and run the update-abi-records target (docs/sdk.md)." >&2
    return 1
  fi
  if [ "$update" -eq 0 ]; then
    echo "FAIL: SWARM_PLUGIN_ABI_VERSION $version has no line in $record." >&2
    echo "      After a deliberate ABI bump, run the update-abi-records target (docs/sdk.md)." >&2
    return 1
  fi
  if [ "$version" -le "$max" ]; then
    echo "FAIL: SWARM_PLUGIN_ABI_VERSION $version is not above the highest recorded version $max;" >&2
    echo "      ABI versions only go up." >&2
    return 1
  fi
  if [ "$touch_record" -eq 1 ]; then
    printf '%s\n' "# swarm-kernel plugin ABI record: <SWARM_PLUGIN_ABI_VERSION> <sha256 of plugin.h>" \
      "# The digest covers plugin.h with comments removed and blanks collapsed" \
      "# (swarm-abi-check header). Append-only: regenerate with the update-abi-records target." >"$record"
  fi
  echo "$version $digest" >>"$record"
  echo "plugin ABI: recorded SWARM_PLUGIN_ABI_VERSION $version in $record"
}

check_schemas() {
  local record="$records/schema-record.txt" current rc=0
  current="$scratch/current-schema-record.txt"
  if ! (
    cd "$schema_dir" || exit 2
    shopt -s nullglob
    files=(*.capnp)
    [ ${#files[@]} -gt 0 ] || { echo "check.sh: no .capnp files in $schema_dir" >&2; exit 2; }
    "$capnp" compile ${capnp_import:+-I"$capnp_import"} -o- "${files[@]}"
  ) | "$tool" record >"$current"; then
    echo "FAIL: could not compile and record the schemas in $schema_dir (see above)" >&2
    return 2
  fi

  if [ ! -f "$record" ]; then
    if [ "$update" -eq 1 ]; then
      cp "$current" "$record"
      echo "schemas: wrote $record ($(grep -vc '^#' "$record") items)"
      return 0
    fi
    echo "FAIL: $record is missing; create it with the update-abi-records target (docs/sdk.md)" >&2
    return 1
  fi
  "$tool" compare "$record" "$current" || rc=$?
  [ "$update" -eq 1 ] || return "$rc"
  if [ "$rc" -eq 1 ] && [ "$allow_breaking" -eq 0 ]; then
    echo "FAIL: refusing to record breaking schema changes; fix the schema, or (only for a" >&2
    echo "      deliberate break that every plugin will be rebuilt for) pass --allow-breaking." >&2
    return 1
  fi
  [ "$rc" -le 1 ] || return "$rc"
  cp "$current" "$record"
  echo "schemas: wrote $record ($(grep -vc '^#' "$record") items)"
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

status=0
if [ "$what" = header ] || [ "$what" = all ]; then check_header || status=1; fi
if [ "$what" = schemas ] || [ "$what" = all ]; then check_schemas || status=1; fi
exit "$status"
