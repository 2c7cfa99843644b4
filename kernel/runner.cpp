// swarm-plugin-runner <library.so> <fd>: serves one plugin out of process. The kernel starts it
// with one end of a socketpair as <fd>; it loads the library, checks it like the kernel does, and
// serves the plugin on <fd> until the kernel disconnects.
#include "errors.h"
#include "plugin_library.h"

#include <charconv>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr,
                 "usage: swarm-plugin-runner <library.so> <fd>\n"
                 "Started by swarm-kernel for plugins with isolation = out-of-process; not meant "
                 "to be run by hand.\n");
    return 2;
  }
  int fd = -1;
  auto [end, ec] = std::from_chars(argv[2], argv[2] + std::strlen(argv[2]), fd);
  if (ec != std::errc() || *end != '\0' || fd < 0) {
    std::fprintf(stderr, "swarm-plugin-runner: '%s' is not a file descriptor number\n", argv[2]);
    return 2;
  }
  try {
    auto library = swarm::kernel::PluginLibrary::load(argv[1], swarm::schema::Kind::UNSPECIFIED);
    char error[1024] = {0};
    int32_t status = library.descriptor().serve(fd, error, sizeof(error));
    if (status != SWARM_SERVE_OK) {
      std::fprintf(stderr, "swarm-plugin-runner: %s: serve() returned %d: %s\n",
                   library.name().c_str(), status, error);
      return 1;
    }
    return 0;
  } catch (const swarm::kernel::UserError& e) {
    std::fprintf(stderr, "swarm-plugin-runner: %s\n", e.what());
    return 1;
  }
}
