/* swarm-kernel plugin ABI: the only C symbol a plugin exports.
 *
 * A plugin is a shared library exporting exactly one function, `swarm_plugin_entry`, which returns
 * a static descriptor. Everything else happens over Cap'n Proto two-party RPC on a file descriptor
 * the host hands to `serve`: the plugin serves its kind's bootstrap interface
 * (sdk/schema/<kind>.capnp) on it. The same library runs in-process (on a host thread, over a
 * socketpair) or out of process (a child process, over a Unix socket) with no change.
 *
 * Rules that keep this boundary stable:
 *  - Pure C: no C++ type, exception or allocation crosses it. Memory is freed by whoever
 *    allocated it; names say the owner (`_plugin_static`: lives as long as the library is loaded;
 *    `_host_buf`: host-owned buffer the plugin writes into).
 *  - The descriptor starts with its own size and ABI version, so a host can refuse a plugin built
 *    against another ABI before touching any other field.
 *  - SWARM_PLUGIN_ABI_VERSION changes whenever this header changes incompatibly; a test pins the
 *    header's hash to the version (tests/abi/).
 */
#ifndef SWARM_PLUGIN_H
#define SWARM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SWARM_PLUGIN_ABI_VERSION 1u
#define SWARM_PLUGIN_ENTRY_SYMBOL "swarm_plugin_entry"

#if defined(__GNUC__)
#define SWARM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SWARM_PLUGIN_EXPORT
#endif

/* What a plugin implements: selects the bootstrap interface served on the descriptor's fd. */
typedef enum swarm_plugin_kind {
  SWARM_PLUGIN_KIND_CONSENSUS = 1, /* schema/consensus.capnp  Consensus */
  SWARM_PLUGIN_KIND_PKI = 2,       /* schema/pki.capnp        Pki */
  SWARM_PLUGIN_KIND_SCHEDULER = 3, /* schema/scheduler.capnp  Scheduler */
  SWARM_PLUGIN_KIND_RUNTIME = 4,   /* schema/runtime.capnp    Runtime */
  SWARM_PLUGIN_KIND_TRANSPORT = 5  /* schema/transport.capnp  Transport */
} swarm_plugin_kind;

/* Result of serve(). */
typedef enum swarm_serve_status {
  SWARM_SERVE_OK = 0,          /* the host disconnected; orderly end */
  SWARM_SERVE_BAD_FD = 1,      /* fd was not a usable stream socket */
  SWARM_SERVE_FAILED = 2       /* the plugin failed; error_host_buf says why */
} swarm_serve_status;

typedef struct swarm_plugin_descriptor {
  uint32_t struct_size;        /* sizeof(swarm_plugin_descriptor) as the plugin was built */
  uint32_t abi_version;        /* SWARM_PLUGIN_ABI_VERSION the plugin was built against */
  uint32_t kind;               /* a swarm_plugin_kind */
  uint32_t reserved;           /* zero */
  const char* name_plugin_static;    /* NUL-terminated, e.g. "scheduler-spread" */
  const char* version_plugin_static; /* NUL-terminated plugin version, e.g. "0.1.0" */
  /* Serves the kind's bootstrap interface over Cap'n Proto two-party RPC on `fd` until the host
   * disconnects, then returns. Blocks: the host calls it on a thread of its own (or in a child
   * process). Takes ownership of `fd` and closes it. Must not throw. On failure writes a
   * NUL-terminated reason of at most `error_buf_size` bytes into `error_host_buf`. */
  int32_t (*serve)(int fd, char* error_host_buf, size_t error_buf_size);
} swarm_plugin_descriptor;

/* The exported entry. `host_abi_version` is the host's SWARM_PLUGIN_ABI_VERSION; a plugin that
 * cannot serve that host returns NULL. The result is static and valid while the library is
 * loaded. */
typedef const swarm_plugin_descriptor* (*swarm_plugin_entry_fn)(uint32_t host_abi_version);

SWARM_PLUGIN_EXPORT const swarm_plugin_descriptor* swarm_plugin_entry(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* SWARM_PLUGIN_H */
