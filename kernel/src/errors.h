// The kernel's one error type for the operator: a complete, single-line message that says what is
// wrong (file, line, plugin) and what to do. main() prints it and exits non-zero.
#pragma once

#include <kj/exception.h>

#include <stdexcept>
#include <string>

namespace swarm::kernel {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

// A failure's description in the words of whoever raised it: capnp prefixes errors that crossed a
// connection with "remote exception: ", which tells the operator nothing.
inline std::string describe(const kj::Exception& e) {
  kj::StringPtr text = e.getDescription();
  constexpr kj::StringPtr kRemote = "remote exception: "_kj;
  while (text.startsWith(kRemote)) text = text.slice(kRemote.size());
  return std::string(text.cStr());
}

}  // namespace swarm::kernel
