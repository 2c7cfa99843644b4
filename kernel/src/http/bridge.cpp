#include "http/bridge.h"

#include "errors.h"
#include "logging.h"

namespace swarm::http {

namespace detail {

std::string describeFailure(const kj::Exception& exception) {
  return kernel::describe(exception);
}

}  // namespace detail

Mailbox::Mailbox(kj::Own<const kj::Executor> executor) : executor(kj::mv(executor)) {}

bool Mailbox::post(Job job) const {
  {
    auto locked = state.lockExclusive();
    if (locked->open && executor->isLive()) {
      locked->jobs.push_back(kj::mv(job));
      // Ringing under the lock keeps the Bridge's destructor (which takes the lock) from racing
      // with it; a fulfiller never blocks.
      if (locked->doorbell.get() != nullptr) {
        auto bell = kj::mv(locked->doorbell);
        bell->fulfill();
      }
      return true;
    }
  }
  // Refused: `job` is destroyed here, outside the lock, so what it captures can tell its caller.
  return false;
}

bool Mailbox::isOpen() const {
  auto locked = state.lockShared();
  return locked->open && executor->isLive();
}

Bridge::Bridge()
    : box(std::make_shared<Mailbox>(kj::getCurrentThreadExecutor().addRef())),
      tasks(kj::heap<kj::TaskSet>(static_cast<kj::TaskSet::ErrorHandler&>(*this))) {
  drainLoop = drain().eagerlyEvaluate([](kj::Exception&& e) {
    kernel::logger("http")->error("the HTTP bridge stopped taking requests: {}",
                                  kernel::describe(e));
  });
}

Bridge::~Bridge() noexcept(false) {
  std::deque<Mailbox::Job> unrun;
  {
    auto locked = box->state.lockExclusive();
    locked->open = false;
    unrun = kj::mv(locked->jobs);
    locked->doorbell = nullptr;
  }
  // Destroyed here, on the KJ thread, outside the lock: each tells its caller "shutting down".
  unrun.clear();
  drainLoop = nullptr;
  // Cancels the running jobs; their guards report "shutting down" the same way.
  tasks = nullptr;
}

kj::Promise<void> Bridge::drain() {
  std::deque<Mailbox::Job> batch;
  kj::Promise<void> bell = nullptr;
  {
    auto locked = box->state.lockExclusive();
    if (locked->jobs.empty()) {
      auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
      locked->doorbell = kj::mv(paf.fulfiller);
      bell = kj::mv(paf.promise);
    } else {
      batch = kj::mv(locked->jobs);
      locked->jobs.clear();
    }
  }
  if (batch.empty()) return bell.then([this]() { return drain(); });
  for (auto& job : batch) {
    tasks->add(kj::evalNow([&job]() { return job(); }).attach(kj::mv(job)));
  }
  // Yield between batches so jobs started here get to run before the next drain.
  return kj::evalLater([this]() { return drain(); });
}

void Bridge::taskFailed(kj::Exception&& exception) {
  // Jobs report their own failures to their callers; this is a bug in a job.
  kernel::logger("http")->error("an HTTP bridge job failed: {}", kernel::describe(exception));
}

}  // namespace swarm::http
