// The store's one way to refuse bad input by exception (internal): a kj::Exception whose
// description is the complete message. kj::throwFatalException throws a subclass that is also a
// std::exception, so callers may catch either.
#pragma once

#include <kj/exception.h>
#include <kj/string.h>

#include <string_view>

namespace swarm::store::detail {

[[noreturn]] inline void fail(std::string_view message, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, file, line,
                                        kj::heapString(message.data(), message.size())));
}

}  // namespace swarm::store::detail
