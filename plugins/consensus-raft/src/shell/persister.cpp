#include "persister.h"

#include <kj/debug.h>

namespace swarm::raft::shell {

Persister::Persister() {
  thread = kj::heap<kj::Thread>([this]() {
    kj::EventLoop loop;
    kj::WaitScope waitScope(loop);
    auto paf = kj::newPromiseAndFulfiller<void>();
    quit = kj::mv(paf.fulfiller);
    *published.lockExclusive() = kj::getCurrentThreadExecutor().addRef();
    paf.promise.wait(waitScope);
    quit = nullptr;
  });
  // The thread publishes its executor at once; waiting for it here takes microseconds.
  executor = published.when(
      [](const kj::Maybe<kj::Own<const kj::Executor>>& e) { return e != nullptr; },
      [](kj::Maybe<kj::Own<const kj::Executor>>& e) { return KJ_ASSERT_NONNULL(e)->addRef(); });
}

Persister::~Persister() noexcept(false) {
  stop();
}

void Persister::stop() {
  KJ_IF_MAYBE (t, thread) {
    executor->executeSync([this]() { quit->fulfill(); });
    auto joined = kj::mv(*t);
    thread = nullptr;
  }
}

}  // namespace swarm::raft::shell
