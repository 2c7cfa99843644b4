#!/usr/bin/env bash
# Self-test of the ABI checks: feeds check.sh and swarm-abi-check deliberately edited copies of the
# schemas and of plugin.h (in a temp dir) and asserts that every breaking edit fails with the item
# named, and that additive edits and comment-only edits pass. Guards against a checker that
# passes everything.
#
#   self-test.sh --tool <swarm-abi-check> --capnp <capnp> --capnp-import <dir> \
#                --schema-dir <sdk/schema> --header <sdk/include/swarm/plugin.h> --check <check.sh>
set -uo pipefail

tool= capnp= capnp_import= schema_dir= header= check=
while [ $# -gt 0 ]; do
  case "$1" in
    --tool) tool=$2; shift 2 ;;
    --capnp) capnp=$2; shift 2 ;;
    --capnp-import) capnp_import=$2; shift 2 ;;
    --schema-dir) schema_dir=$2; shift 2 ;;
    --header) header=$2; shift 2 ;;
    --check) check=$2; shift 2 ;;
    *) echo "self-test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "SELF-TEST FAIL: $*" >&2; failures=$((failures + 1)); }

record_of() {  # record_of <schema dir> <out>
  (cd "$1" && "$capnp" compile -I"$capnp_import" -o- ./*.capnp) | "$tool" record >"$2"
}

# A fresh copy of the schemas with one perl substitution applied to one file; the edit must
# actually change the file, or the case would silently test nothing.
edited_copy() {  # edited_copy <name> <file> <perl -0 expression>...
  local dir="$tmp/$1" file=$2
  shift 2
  rm -rf "$dir"
  cp -r "$schema_dir" "$dir"
  cp "$dir/$file" "$dir/$file.orig"
  for expr in "$@"; do perl -0pi -e "$expr" "$dir/$file"; done
  if cmp -s "$dir/$file" "$dir/$file.orig"; then
    fail "$file: edit for case '$(basename "$dir")' matched nothing; update self-test.sh to the schema"
    return 1
  fi
  rm "$dir/$file.orig"
}

record_of "$schema_dir" "$tmp/base.txt" || { echo "self-test.sh: cannot record the pristine schemas" >&2; exit 2; }
[ "$(grep -vc '^#' "$tmp/base.txt")" -gt 100 ] || fail "pristine record has suspiciously few items"

# ---- breaking edits: each must compile, and compare must exit 1 naming the item ----------------
expect_break() {  # expect_break <case> <expected output regex> <file> <perl expr>...
  local name=$1 expected=$2
  shift 2
  edited_copy "$name" "$@" || return
  if ! record_of "$tmp/$name" "$tmp/$name.txt" 2>"$tmp/$name.err"; then
    fail "$name: the edited schema does not compile: $(head -3 "$tmp/$name.err")"
    return
  fi
  local out rc=0
  out=$("$tool" compare "$tmp/base.txt" "$tmp/$name.txt") || rc=$?
  if [ "$rc" -ne 1 ]; then
    fail "$name: breaking edit was accepted (exit $rc): $out"
  elif ! grep -Eq "$expected" <<<"$out"; then
    fail "$name: output does not match /$expected/: $out"
  else
    echo "ok   breaking edit rejected: $name"
  fi
}

expect_break renumber-fields 'field scheduler\.capnp:Assignment\.taskId changed' scheduler.capnp \
  's/taskId \@0 :Text;\n  nodeId \@1 :Text;/taskId \@1 :Text;\n  nodeId \@0 :Text;/'
expect_break remove-field 'field plugin\.capnp:PluginInfo\.abiVersion .*removed' plugin.capnp \
  's/\n  abiVersion \@3 :UInt32;//'
expect_break rename-field 'field common\.capnp:NodeDescription\.hostname .*removed' common.capnp \
  's/hostname \@0 :Text;/hostName \@0 :Text;/'
expect_break retype-field 'field scheduler\.capnp:NodeInfo\.totalTasks changed' scheduler.capnp \
  's/totalTasks \@3 :UInt32;/totalTasks \@3 :UInt64;/'
expect_break change-default 'field common\.capnp:FileTarget\.mode changed' common.capnp \
  's/mode \@3 :UInt32 = 292;/mode \@3 :UInt32 = 420;/'
expect_break renumber-enumerants 'enumerant plugin\.capnp:LogLevel\.trace changed' plugin.capnp \
  's/trace \@0;\n  debug \@1;/debug \@0;\n  trace \@1;/'
expect_break remove-enumerant 'enumerant plugin\.capnp:LogLevel\.critical .*removed' plugin.capnp \
  's/\n  critical \@5;//'
expect_break remove-method 'method plugin\.capnp:Plugin\.shutdown .*removed' plugin.capnp \
  's/\n  shutdown \@3 \(\);//'
expect_break retype-method-result 'field scheduler\.capnp:Scheduler\.schedule\$Results\.plan changed' \
  scheduler.capnp 's/-> \(plan :Plan\);/-> (plan :Assignment);/'
expect_break change-const 'const common\.capnp:taskStateRunning changed' common.capnp \
  's/taskStateRunning :UInt16 = 512;/taskStateRunning :UInt16 = 500;/'
expect_break move-into-union 'field common\.capnp:Node\.role .*removed' common.capnp \
  's/  \}\n  role \@7 :NodeRole;/    role \@7 :NodeRole;\n  }/'
expect_break change-file-id 'file pki\.capnp changed' pki.capnp \
  's/\A\@0x[0-9a-f]+;/\@0xf00dfeedfacecafe;/'

# ---- additive edits: must pass and be reported as additions -------------------------------------
name=additive
if edited_copy $name scheduler.capnp \
    's/(unplaced \@1 :List\(Unplaced\);)/$1\n  note \@2 :Text;/' \
    's/(schedule \@0 \(nodes :List\(NodeInfo\), tasks :List\(Common.Task\)\) -> \(plan :Plan\);)/$1\n  explain \@1 (task :Common.Task) -> (reason :Text);/' \
    's/\z/\nstruct SchedulerHint {\n  nodeId \@0 :Text;\n}\nconst hintLimit :UInt32 = 8;\n/'; then
  perl -0pi -e 's/(critical \@5;)/$1\n  fatal \@6;/' "$tmp/$name/plugin.capnp"
  perl -0pi -e 's/(manager \@6 :ManagerStatus;)/$1\n    draining \@9 :Text;/' "$tmp/$name/common.capnp"
  if ! record_of "$tmp/$name" "$tmp/$name.txt" 2>"$tmp/$name.err"; then
    fail "additive: the edited schema does not compile: $(head -3 "$tmp/$name.err")"
  else
    rc=0
    out=$("$tool" compare "$tmp/base.txt" "$tmp/$name.txt") || rc=$?
    added=$(( $(grep -vc '^#' "$tmp/$name.txt") - $(grep -vc '^#' "$tmp/base.txt") ))
    if [ "$rc" -ne 0 ]; then
      fail "additive edits were rejected (exit $rc): $out"
    elif ! grep -q "additions not yet pinned" <<<"$out" || [ "$added" -lt 8 ]; then
      fail "additive edits not reported as additions ($added new items): $out"
    else
      echo "ok   additive edits accepted ($added new items)"
    fi
    # The other way round the additions are removals: compare is not symmetric by accident.
    rc=0
    "$tool" compare "$tmp/$name.txt" "$tmp/base.txt" >/dev/null || rc=$?
    [ "$rc" -eq 1 ] && echo "ok   removing the additions again is rejected" ||
      fail "dropping the additive items was accepted (exit $rc)"
  fi
fi

# ---- update refuses to record a breaking change --------------------------------------------------
mkdir -p "$tmp/records"
cp "$tmp/base.txt" "$tmp/records/schema-record.txt"
rc=0
"$check" --tool "$tool" --capnp "$capnp" --capnp-import "$capnp_import" --schema-dir "$tmp/remove-field" \
  --records "$tmp/records" --update schemas >"$tmp/update.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] || ! cmp -s "$tmp/base.txt" "$tmp/records/schema-record.txt"; then
  fail "--update recorded a breaking change (exit $rc): $(cat "$tmp/update.out")"
else
  echo "ok   --update refuses a breaking change"
fi
rc=0
"$check" --tool "$tool" --capnp "$capnp" --capnp-import "$capnp_import" --schema-dir "$tmp/additive" \
  --records "$tmp/records" --update schemas >"$tmp/update.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || ! cmp -s "$tmp/additive.txt" "$tmp/records/schema-record.txt"; then
  fail "--update did not pin additive changes (exit $rc): $(cat "$tmp/update.out")"
else
  echo "ok   --update pins additive changes"
fi

# ---- plugin.h: comments are free, declarations need a bump ---------------------------------------
read -r version digest < <("$tool" header "$header")
[ -n "${digest:-}" ] || { echo "self-test.sh: cannot digest $header" >&2; exit 2; }
printf '%s %s\n' "$version" "$digest" >"$tmp/records/abi-record.txt"

header_case() {  # header_case <name> <expect: pass|fail> <expected output regex> <perl expr>
  local name=$1 expect=$2 expected=$3 expr=$4 copy="$tmp/$1.h" rc=0 out
  perl -0pe "$expr" "$header" >"$copy"
  if cmp -s "$copy" "$header"; then fail "header $name: edit matched nothing; update self-test.sh"; return; fi
  out=$("$check" --tool "$tool" --header "$copy" --records "$tmp/records" header 2>&1) || rc=$?
  if { [ "$expect" = pass ] && [ "$rc" -ne 0 ]; } || { [ "$expect" = fail ] && [ "$rc" -ne 1 ]; }; then
    fail "header $name: expected $expect, got exit $rc: $out"
  elif ! grep -Eq "$expected" <<<"$out"; then
    fail "header $name: output does not match /$expected/: $out"
  else
    echo "ok   plugin.h $name: $expect"
  fi
}
header_case edit-comment pass 'matches the record' 's/the only C symbol a plugin exports/the one C symbol plugins export/'
header_case reindent pass 'matches the record' 's/\n  uint32_t reserved;/\n      uint32_t    reserved;/'
header_case add-field fail 'changed but SWARM_PLUGIN_ABI_VERSION is still' \
  's/(\n  uint32_t reserved;[^\n]*)/$1\n  uint32_t flags;/'
header_case change-enum fail 'changed but SWARM_PLUGIN_ABI_VERSION is still' 's/SWARM_SERVE_FAILED = 2/SWARM_SERVE_FAILED = 3/'
header_case comment-marker-in-string fail 'changed but SWARM_PLUGIN_ABI_VERSION is still' \
  's/"swarm_plugin_entry"/"swarm_plugin_entry\/\*x\*\/"/'
next=$((version + 1))
header_case bump-unrecorded fail "VERSION $next has no line" \
  "s/SWARM_PLUGIN_ABI_VERSION ${version}u/SWARM_PLUGIN_ABI_VERSION ${next}u/"
# A bump plus --update appends a line, after which the bumped header passes.
perl -0pe "s/SWARM_PLUGIN_ABI_VERSION ${version}u/SWARM_PLUGIN_ABI_VERSION ${next}u/" "$header" >"$tmp/bumped.h"
if "$check" --tool "$tool" --header "$tmp/bumped.h" --records "$tmp/records" --update header >/dev/null &&
   [ "$(grep -c "^$next " "$tmp/records/abi-record.txt")" -eq 1 ] &&
   "$check" --tool "$tool" --header "$tmp/bumped.h" --records "$tmp/records" header >/dev/null; then
  echo "ok   bump + --update records version $next"
else
  fail "bump + --update did not record version $next: $(cat "$tmp/records/abi-record.txt")"
fi
# --update never rewrites the digest of a version already recorded.
perl -0pe 's/SWARM_SERVE_FAILED = 2/SWARM_SERVE_FAILED = 3/' "$header" >"$tmp/changed.h"
if "$check" --tool "$tool" --header "$tmp/changed.h" --records "$tmp/records" --update header >/dev/null 2>&1; then
  fail "--update accepted a changed plugin.h without a version bump"
else
  echo "ok   --update refuses a changed plugin.h without a bump"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures self-test case(s) failed" >&2
  exit 1
fi
echo "ABI checker self-test passed"
