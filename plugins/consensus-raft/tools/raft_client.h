// A client of a raft-node's Unix socket (wire.h: the client protocol), on the caller's KJ event
// loop. Requests are pipelined on one connection; each call resolves with its own reply. When the
// node goes away every waiting call fails with a DISCONNECTED exception, and so does every later
// one.
#pragma once

#include "wire.h"

#include <kj/async-io.h>

#include <cstdint>
#include <map>
#include <string>

namespace swarm::raft::tools {

struct Reply {
  Code code = Code::error;
  std::string payload;

  uint64_t u64At(size_t offset) const;  // the little-endian u64 at `offset`, 0 if short
  std::string text() const;             // error / quorumAtRisk: the message
  std::string describe() const;         // "<code>[: hint or message]" for failure messages
};

class RaftClient {
 public:
  static kj::Promise<kj::Own<RaftClient>> connect(kj::AsyncIoContext& io,
                                                  const std::string& socketPath);
  explicit RaftClient(kj::Own<kj::AsyncIoStream> stream);
  ~RaftClient() noexcept(false);
  KJ_DISALLOW_COPY(RaftClient);

  kj::Promise<Reply> call(Op op, std::string_view payload = {});
  bool broken() const { return failure != nullptr; }
  size_t waiting() const { return calls.size(); }

 private:
  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    explicit Errors(RaftClient& client) : client(client) {}
    void taskFailed(kj::Exception&& e) override { client.fail(kj::mv(e)); }

   private:
    RaftClient& client;
  };

  kj::Own<kj::AsyncIoStream> stream;
  std::map<uint64_t, kj::Own<kj::PromiseFulfiller<Reply>>> calls;
  uint64_t nextId = 1;
  std::string pending;
  std::string inFlight;
  bool writing = false;
  std::string buffer;
  kj::Array<kj::byte> readBuffer;
  kj::Maybe<kj::Exception> failure;
  Errors errors{*this};
  kj::TaskSet tasks{errors};

  void flush();
  kj::Promise<void> readLoop();
  void fail(kj::Exception&& e);
};

}  // namespace swarm::raft::tools
