// The asio<->KJ bridge with a real KJ loop thread and a real asio thread: results come back on the
// asio thread; failures and a KJ side that goes away are reported, never hung on.
#include "harness.h"

#include <boost/asio/executor_work_guard.hpp>

#include <future>

using namespace swarm::http;
using namespace swarm::http::testing;

namespace {

// An io_context on its own thread, with an inbox for the KJ side.
struct AsioThread {
  AsioThread() : work(asio::make_work_guard(context)), inbox(std::make_shared<AsioInbox>(context)) {
    thread = std::thread([this]() { context.run(); });
  }
  ~AsioThread() {
    inbox->close();
    work.reset();
    context.stop();
    thread.join();
  }
  asio::io_context context;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::shared_ptr<AsioInbox> inbox;
  std::thread thread;
};

template <typename T>
struct Received {
  std::promise<std::pair<Outcome<T>, std::thread::id>> promise;
  auto callback() {
    return [this](Outcome<T> outcome) {
      promise.set_value({std::move(outcome), std::this_thread::get_id()});
    };
  }
  std::pair<Outcome<T>, std::thread::id> get() {
    auto future = promise.get_future();
    REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    return future.get();
  }
};

}  // namespace

TEST_CASE("bridge: work runs on the KJ thread and its value comes back on the asio thread") {
  KjThread kj;
  AsioThread asioSide;
  Received<std::string> received;
  std::thread::id ranOn;
  kj.mailbox()->call<std::string>(
      asioSide.inbox,
      [&ranOn]() -> kj::Promise<std::string> {
        ranOn = std::this_thread::get_id();
        return kj::evalLater([]() { return std::string("from kj"); });
      },
      received.callback());
  auto [outcome, deliveredOn] = received.get();
  REQUIRE(outcome.ok());
  CHECK(*outcome.value == "from kj");
  CHECK(ranOn == kj.threadId());
  CHECK(deliveredOn == asioSide.thread.get_id());
}

TEST_CASE("bridge: a failing job delivers its description") {
  KjThread kj;
  AsioThread asioSide;
  Received<int> received;
  kj.mailbox()->call<int>(
      asioSide.inbox,
      []() -> kj::Promise<int> { return KJ_EXCEPTION(FAILED, "the store said no"); },
      received.callback());
  auto [outcome, deliveredOn] = received.get();
  CHECK_FALSE(outcome.ok());
  CHECK_FALSE(outcome.shuttingDown);
  CHECK(outcome.error.find("the store said no") != std::string::npos);
}

TEST_CASE("bridge: work still pending when the Bridge goes is reported as shutting down") {
  KjThread kj;
  AsioThread asioSide;
  Received<int> received;
  std::promise<void> started;
  kj.mailbox()->call<int>(
      asioSide.inbox,
      [&started]() -> kj::Promise<int> {
        started.set_value();
        return kj::NEVER_DONE;
      },
      received.callback());
  REQUIRE(started.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  kj.dropBridge();
  auto [outcome, deliveredOn] = received.get();
  CHECK(outcome.shuttingDown);
  CHECK(outcome.error == "the manager is shutting down");
  CHECK(deliveredOn == asioSide.thread.get_id());
  CHECK_FALSE(kj.mailbox()->isOpen());
}

TEST_CASE("bridge: a job posted after the KJ loop ended is refused at once") {
  auto kj = std::make_unique<KjThread>();
  auto mailbox = kj->mailbox();
  kj.reset();  // the loop exits, the Bridge with it
  AsioThread asioSide;
  CHECK_FALSE(mailbox->isOpen());
  bool ran = false;
  CHECK_FALSE(mailbox->post([&ran]() -> kj::Promise<void> {
    ran = true;
    return kj::READY_NOW;
  }));
  Received<int> received;
  mailbox->call<int>(asioSide.inbox, []() -> kj::Promise<int> { return 1; }, received.callback());
  auto [outcome, deliveredOn] = received.get();
  CHECK(outcome.shuttingDown);
  CHECK_FALSE(ran);
}

TEST_CASE("bridge: many jobs from several threads all run, in order per thread") {
  KjThread kj;
  AsioThread asioSide;
  constexpr int kThreads = 4;
  constexpr int kJobs = 500;
  std::vector<std::vector<int>> seen(kThreads);  // touched only on the KJ thread
  std::atomic<int> delivered{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t]() {
      for (int i = 0; i < kJobs; ++i) {
        kj.mailbox()->call<int>(
            asioSide.inbox,
            [&seen, t, i]() -> kj::Promise<int> {
              seen[t].push_back(i);
              return i;
            },
            [&delivered](Outcome<int> outcome) {
              if (outcome.ok()) ++delivered;
            });
      }
    });
  }
  for (auto& poster : posters) poster.join();
  REQUIRE(eventually([&]() { return delivered.load() == kThreads * kJobs; }));
  kj.sync([&]() {
    for (const auto& jobs : seen) {
      REQUIRE(jobs.size() == kJobs);
      for (int i = 0; i < kJobs; ++i) REQUIRE(jobs[i] == i);
    }
  });
}

TEST_CASE("bridge: a closed inbox drops completions instead of posting to a dead io_context") {
  KjThread kj;
  asio::io_context context;
  auto inbox = std::make_shared<AsioInbox>(context);
  inbox->close();
  std::promise<void> ran;
  kj.mailbox()->call<int>(
      inbox,
      [&ran]() -> kj::Promise<int> {
        ran.set_value();
        return 7;
      },
      [](Outcome<int>) { FAIL("delivered through a closed inbox"); });
  REQUIRE(ran.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  kj.sync([]() {});  // the job has finished on the KJ thread
  CHECK(context.poll() == 0);
}
