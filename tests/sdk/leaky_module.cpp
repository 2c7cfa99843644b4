// Test fixture for check-exports.sh: a module built WITHOUT swarm_add_plugin, so it exports a
// second symbol. The checker must reject it (test sdk.exports-check-rejects-leaky).
#include <swarm/plugin.h>

extern "C" __attribute__((visibility("default"))) int leaked_helper(int x) { return x + 1; }

extern "C" const swarm_plugin_descriptor* swarm_plugin_entry(uint32_t) { return nullptr; }
