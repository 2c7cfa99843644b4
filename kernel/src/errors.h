// The kernel's one error type for the operator: a complete, single-line message that says what is
// wrong (file, line, plugin) and what to do. main() prints it and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace swarm::kernel {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace swarm::kernel
