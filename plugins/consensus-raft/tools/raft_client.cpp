#include "raft_client.h"

#include <kj/debug.h>

namespace swarm::raft::tools {

uint64_t Reply::u64At(size_t offset) const {
  if (payload.size() < offset + 8) return 0;
  ByteReader r(std::string_view(payload).substr(offset));
  return r.u64();
}

std::string Reply::text() const {
  ByteReader r(payload);
  std::string s = r.str();
  return r.ok() ? s : std::string();
}

std::string Reply::describe() const {
  std::string out = codeName(code);
  switch (code) {
    case Code::notLeader: out += " (leader hint " + std::to_string(u64At(0)) + ")"; break;
    case Code::tooLarge: out += " (limit " + std::to_string(u64At(0)) + " bytes)"; break;
    case Code::error:
    case Code::quorumAtRisk:
    case Code::invalid: out += ": " + text(); break;
    default: break;
  }
  return out;
}

kj::Promise<kj::Own<RaftClient>> RaftClient::connect(kj::AsyncIoContext& io,
                                                     const std::string& socketPath) {
  return io.provider->getNetwork()
      .parseAddress(kj::str("unix:", socketPath.c_str()))
      .then([](kj::Own<kj::NetworkAddress> addr) { return addr->connect().attach(kj::mv(addr)); })
      .then([](kj::Own<kj::AsyncIoStream> stream) { return kj::heap<RaftClient>(kj::mv(stream)); });
}

RaftClient::RaftClient(kj::Own<kj::AsyncIoStream> s)
    : stream(kj::mv(s)), readBuffer(kj::heapArray<kj::byte>(256 * 1024)) {
  tasks.add(readLoop());
}

RaftClient::~RaftClient() noexcept(false) {
  for (auto& [id, f] : calls) {
    f->reject(KJ_EXCEPTION(DISCONNECTED, "raft-node client closed"));
  }
}

kj::Promise<Reply> RaftClient::call(Op op, std::string_view payload) {
  KJ_IF_MAYBE (e, failure) {
    return kj::cp(*e);
  }
  uint64_t id = nextId++;
  std::string body;
  ByteWriter w(body);
  w.u8(static_cast<uint8_t>(op));
  w.u64(id);
  body.append(payload);
  appendFrame(pending, body);
  auto paf = kj::newPromiseAndFulfiller<Reply>();
  calls.emplace(id, kj::mv(paf.fulfiller));
  flush();
  return kj::mv(paf.promise);
}

void RaftClient::flush() {
  if (writing || pending.empty() || failure != nullptr) return;
  writing = true;
  inFlight.swap(pending);
  pending.clear();
  tasks.add(stream->write(inFlight.data(), inFlight.size()).then([this]() {
    writing = false;
    inFlight.clear();
    flush();
  }));
}

kj::Promise<void> RaftClient::readLoop() {
  return stream->tryRead(readBuffer.begin(), 1, readBuffer.size())
      .then([this](size_t n) -> kj::Promise<void> {
        if (n == 0) {
          fail(KJ_EXCEPTION(DISCONNECTED, "raft-node closed the connection"));
          return kj::READY_NOW;
        }
        buffer.append(reinterpret_cast<const char*>(readBuffer.begin()), n);
        bool ok = takeFrames(buffer, [this](std::string_view body) {
          ByteReader r(body);
          uint64_t id = r.u64();
          Reply reply;
          reply.code = static_cast<Code>(r.u8());
          reply.payload = std::string(r.rest());
          auto it = calls.find(id);
          if (it == calls.end()) return;
          auto f = kj::mv(it->second);
          calls.erase(it);
          f->fulfill(kj::mv(reply));
        });
        if (!ok) {
          fail(KJ_EXCEPTION(FAILED, "raft-node sent an oversized frame"));
          return kj::READY_NOW;
        }
        return readLoop();
      });
}

void RaftClient::fail(kj::Exception&& e) {
  if (failure == nullptr) failure = kj::cp(e);
  auto waiting = kj::mv(calls);
  calls.clear();
  for (auto& [id, f] : waiting) f->reject(kj::cp(e));
}

}  // namespace swarm::raft::tools
