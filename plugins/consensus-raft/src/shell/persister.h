// A thread of its own for the storage's blocking calls (write + fdatasync), so the plugin's event
// loop keeps stepping peer messages, taking proposals and answering applies while the disk works.
// Jobs run one at a time, in the order given; each result comes back as a promise on the calling
// thread's event loop (kj::Executor::executeAsync). Only jobs touch the Storage once the loop
// has handed it over, so it is still driven by one thread at a time (storage.h).
#pragma once

#include <kj/async.h>
#include <kj/mutex.h>
#include <kj/thread.h>

namespace swarm::raft::shell {

class Persister {
 public:
  Persister();
  ~Persister() noexcept(false);
  KJ_DISALLOW_COPY(Persister);

  template <typename Func>
  auto run(Func&& job) {
    return executor->executeAsync(kj::fwd<Func>(job));
  }

  void stop();
  // Lets the job in progress finish, drops the queued ones (their promises reject as
  // DISCONNECTED) and joins the thread. Idempotent.

 private:
  kj::MutexGuarded<kj::Maybe<kj::Own<const kj::Executor>>> published;
  kj::Own<const kj::Executor> executor;
  kj::Own<kj::PromiseFulfiller<void>> quit;  // created and fulfilled on the worker thread only
  kj::Maybe<kj::Own<kj::Thread>> thread;
};

}  // namespace swarm::raft::shell
