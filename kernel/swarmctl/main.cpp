// swarmctl: swarm-kernel's own CLI. Everything lives in cli.cpp; this only binds the process's
// streams and terminal state.
#include "cli.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
  swarm::ctl::Context context(std::cout, std::cerr, std::cin);
  if (const char* host = std::getenv("SWARMCTL_HOST"); host && *host) context.host = host;
  context.terminal = ::isatty(STDOUT_FILENO) == 1;
  context.stdinTerminal = ::isatty(STDIN_FILENO) == 1;
  int status = swarm::ctl::run(context, std::vector<std::string>(argv + 1, argv + argc));
  std::cout.flush();
  return status;
}
