/* Pins the in-memory layout of the C ABI on LP64 Linux as compiled by this build's C compiler, in
 * C99 with pedantic warnings. The header digest (abi-record.txt) catches source changes; this
 * catches flags or compilers that would lay the descriptor out differently from what hosts and
 * plugins already built expect. */
#include <swarm/plugin.h>

#include <stddef.h>

#if defined(__LP64__)
_Static_assert(sizeof(swarm_plugin_descriptor) == 40, "descriptor size changed");
_Static_assert(offsetof(swarm_plugin_descriptor, struct_size) == 0, "struct_size must come first");
_Static_assert(offsetof(swarm_plugin_descriptor, abi_version) == 4, "abi_version moved");
_Static_assert(offsetof(swarm_plugin_descriptor, kind) == 8, "kind moved");
_Static_assert(offsetof(swarm_plugin_descriptor, reserved) == 12, "reserved moved");
_Static_assert(offsetof(swarm_plugin_descriptor, name_plugin_static) == 16, "name moved");
_Static_assert(offsetof(swarm_plugin_descriptor, version_plugin_static) == 24, "version moved");
_Static_assert(offsetof(swarm_plugin_descriptor, serve) == 32, "serve moved");
#endif

_Static_assert(SWARM_PLUGIN_KIND_CONSENSUS == 1 && SWARM_PLUGIN_KIND_PKI == 2 &&
                   SWARM_PLUGIN_KIND_SCHEDULER == 3 && SWARM_PLUGIN_KIND_RUNTIME == 4 &&
                   SWARM_PLUGIN_KIND_TRANSPORT == 5,
               "plugin kinds are wire values (schema::Kind); never renumber them");
_Static_assert(SWARM_SERVE_OK == 0 && SWARM_SERVE_BAD_FD == 1 && SWARM_SERVE_FAILED == 2,
               "serve status codes changed");

/* The entry's type must stay what hosts call through. */
static swarm_plugin_entry_fn const entryType = &swarm_plugin_entry;
const void* swarm_abi_layout_anchor(void) { return (const void*)&entryType; }
