// The baseline for plugin_call_bench: the same echo as bench-echo's Runtime.inspect(), as a plain
// C++ virtual call. The implementation lives in its own translation unit (and is chosen at run
// time) so the compiler cannot inline or devirtualize it away.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace swarm::bench {

// What inspect() answers, cut down to the field the echo uses.
struct EchoInfo {
  std::string error;
  int state = 0;
};

class DirectEcho {
 public:
  virtual ~DirectEcho() = default;
  virtual EchoInfo inspect(std::string_view taskId) = 0;
  // Copies taskId into a fresh EchoInfo, as the plugin copies it into a fresh message.
};

std::unique_ptr<DirectEcho> newDirectEcho();

}  // namespace swarm::bench
