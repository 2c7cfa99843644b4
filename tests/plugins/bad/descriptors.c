/* Plugins whose descriptor is wrong in one way, chosen by a compile definition. None of them is
 * ever served: the loader must refuse each before calling serve(). */
#include <swarm/plugin.h>

static int32_t serveNever(int fd, char* error, size_t size) {
  (void)fd;
  (void)error;
  (void)size;
  return SWARM_SERVE_FAILED;
}

static const swarm_plugin_descriptor descriptor = {
#if defined(BAD_TRUNCATED)
    8,
#else
    sizeof(swarm_plugin_descriptor),
#endif
#if defined(BAD_ABI_MISMATCH)
    SWARM_PLUGIN_ABI_VERSION + 41,
#else
    SWARM_PLUGIN_ABI_VERSION,
#endif
#if defined(BAD_UNKNOWN_KIND)
    42,
#else
    SWARM_PLUGIN_KIND_SCHEDULER,
#endif
    0, "bad-descriptor", "0.0.1", serveNever};

SWARM_PLUGIN_EXPORT const swarm_plugin_descriptor* swarm_plugin_entry(uint32_t host_abi_version) {
#if defined(BAD_REFUSES_HOST)
  (void)host_abi_version;
  return 0;
#else
  (void)host_abi_version;
  return &descriptor;
#endif
}
