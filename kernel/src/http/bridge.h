// The one crossing between the asio thread (HTTP) and the kernel's KJ event-loop thread.
//
// - asio -> KJ: Mailbox::post() queues a job and rings a doorbell (a cross-thread fulfiller the KJ
//   side re-arms each time it drains the queue); it never blocks the caller (stack.md §7).
// - KJ -> asio: AsioInbox::post() hands a function to the io_context, or drops it once the asio
//   side has closed the inbox (its io_context is about to go).
// - Mailbox::call() combines both: work on the KJ thread, its outcome delivered on the asio thread,
//   exactly once: a value, the failure's description, or "shutting down" when the KJ side went
//   away first (the Bridge was destroyed, or the loop exited, before the work finished).
//
// Invariants: a Bridge is created and destroyed on its KJ thread, and destroyed before anything
// its jobs use (then no job runs afterwards). Only Mailbox and AsioInbox cross threads; they are
// shared (std::shared_ptr) because the two threads end in no fixed order.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <kj/async.h>
#include <kj/function.h>
#include <kj/mutex.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace swarm::http {

// Where KJ-side code sends completions for the asio thread.
class AsioInbox {
 public:
  explicit AsioInbox(boost::asio::io_context& context) : context(context) {}

  // From any thread: runs `fn` on the io_context's thread. False when closed; `fn` is then
  // destroyed on the calling thread without running.
  template <typename Fn>
  bool post(Fn&& fn) const {
    std::lock_guard lock(mutex);
    if (!open) return false;
    // Posting under the lock: close() waits for it, so the io_context is alive here.
    boost::asio::post(context, std::forward<Fn>(fn));
    return true;
  }

  // Called by the io_context's owner before destroying it. Idempotent.
  void close() const {
    std::lock_guard lock(mutex);
    open = false;
  }

 private:
  boost::asio::io_context& context;
  mutable std::mutex mutex;
  mutable bool open = true;
};

// What Mailbox::call() delivers.
template <typename T>
struct Outcome {
  std::optional<T> value;  // set on success
  std::string error;       // the failure's description, when the work failed
  bool shuttingDown = false;  // the KJ side went away before the work finished

  bool ok() const { return value.has_value(); }
};

inline constexpr const char* kShuttingDownMessage = "the manager is shutting down";

// The thread-safe side of a Bridge; outlives it.
class Mailbox {
 public:
  // A job runs once on the KJ thread; its promise is owned by the Bridge until done. A job that
  // never runs (the KJ side is gone) is destroyed instead, so put "tell the caller" in the
  // destructor of something it captures (see Mailbox::call).
  using Job = kj::Function<kj::Promise<void>()>;

  explicit Mailbox(kj::Own<const kj::Executor> executor);

  // From any thread, never blocks. False when the KJ side is gone: `job` is then destroyed here.
  bool post(Job job) const;

  // False once the Bridge is destroyed or its loop has exited.
  bool isOpen() const;

  // Runs `work` on the KJ thread; `done(Outcome<T>)` runs on `inbox`'s thread exactly once unless
  // the inbox is closed first. `done` may be destroyed on the KJ thread without running: let it
  // capture nothing whose destructor must run on the asio thread (use std::weak_ptr).
  template <typename T, typename Done>
  void call(std::shared_ptr<const AsioInbox> inbox, kj::Function<kj::Promise<T>()> work,
            Done done) const;

 private:
  friend class Bridge;

  struct State {
    bool open = true;
    std::deque<Job> jobs;
    kj::Own<kj::CrossThreadPromiseFulfiller<void>> doorbell;  // null while the KJ side is busy
  };

  kj::Own<const kj::Executor> executor;
  kj::MutexGuarded<State> state;
};

// Lives on the KJ thread: drains the mailbox, runs the jobs, owns their promises.
class Bridge final : private kj::TaskSet::ErrorHandler {
 public:
  // On a thread running a KJ event loop.
  Bridge();
  // On the same thread. Jobs still queued or running are dropped (their callers hear
  // "shutting down"); later posts are refused.
  ~Bridge() noexcept(false);
  KJ_DISALLOW_COPY(Bridge);

  // Hand this to other threads.
  std::shared_ptr<const Mailbox> mailbox() const { return box; }

 private:
  kj::Promise<void> drain();
  void taskFailed(kj::Exception&& exception) override;

  std::shared_ptr<Mailbox> box;
  kj::Own<kj::TaskSet> tasks;
  kj::Promise<void> drainLoop = nullptr;
};

namespace detail {

// Delivers one Outcome to the asio thread; if destroyed undelivered, delivers "shutting down".
template <typename T, typename Done>
class DeliverOnce {
 public:
  DeliverOnce(std::shared_ptr<const AsioInbox> inbox, Done done)
      : inbox(std::move(inbox)), done(std::move(done)) {}
  ~DeliverOnce() {
    if (done) {
      Outcome<T> outcome;
      outcome.shuttingDown = true;
      outcome.error = kShuttingDownMessage;
      deliver(std::move(outcome));
    }
  }
  DeliverOnce(const DeliverOnce&) = delete;
  DeliverOnce& operator=(const DeliverOnce&) = delete;

  void deliver(Outcome<T> outcome) {
    if (!done) return;
    inbox->post([done = std::move(*done), outcome = std::move(outcome)]() mutable {
      done(std::move(outcome));
    });
    done.reset();
  }

 private:
  std::shared_ptr<const AsioInbox> inbox;
  std::optional<Done> done;
};

std::string describeFailure(const kj::Exception& exception);

}  // namespace detail

template <typename T, typename Done>
void Mailbox::call(std::shared_ptr<const AsioInbox> inbox, kj::Function<kj::Promise<T>()> work,
                   Done done) const {
  auto once = kj::heap<detail::DeliverOnce<T, Done>>(std::move(inbox), std::move(done));
  post([once = kj::mv(once), work = kj::mv(work)]() mutable -> kj::Promise<void> {
    auto* target = once.get();
    return kj::evalNow([&work]() { return work(); })
        .then(
            [target](T value) {
              Outcome<T> outcome;
              outcome.value = std::move(value);
              target->deliver(std::move(outcome));
            },
            [target](kj::Exception&& e) {
              Outcome<T> outcome;
              outcome.error = detail::describeFailure(e);
              target->deliver(std::move(outcome));
            })
        .attach(kj::mv(once));
  });
}

}  // namespace swarm::http
