#include "config.h"
#include "errors.h"
#include "logging.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace swarm::kernel;

namespace {

const std::string kAllKinds =
    "[consensus]\nlibrary = c.so\n"
    "[pki]\nlibrary = p.so\n"
    "[scheduler]\nlibrary = s.so\n"
    "[runtime]\nlibrary = r.so\n"
    "[transport]\nlibrary = t.so\n";

std::string errorOf(const std::string& text) {
  try {
    parseConfig(text, "/etc/swarm/plugins.conf");
  } catch (const UserError& e) {
    return e.what();
  }
  FAIL("expected a UserError for:\n" << text);
  return "";
}

}  // namespace

TEST_CASE("a complete config parses with defaults, settings and resolved paths") {
  auto config = parseConfig(
      "# plugins\n"
      "[consensus]\n"
      "library = /opt/raft.so\n"
      "isolation = out-of-process\n"
      "on-crash = stop\n"
      "restart-backoff-ms = 50\n"
      "max-restarts = 3\n"
      "setting.snapshot-interval = 500\n"
      "setting.note = a = b\n"
      "\n"
      "[pki]\nlibrary = pki.so\n"
      "[scheduler]\nlibrary = ../lib/s.so\n"
      "[runtime]\nlibrary = r.so\n"
      "; also a comment\n"
      "[transport]\nlibrary = t.so\n",
      "/etc/swarm/plugins.conf");
  REQUIRE(config.plugins.size() == 5);
  auto& consensus = config.plugins[0];
  CHECK(consensus.kind == swarm::schema::Kind::CONSENSUS);
  CHECK(consensus.library == "/opt/raft.so");
  CHECK(consensus.isolation == Isolation::outOfProcess);
  CHECK(consensus.onCrash == CrashPolicy::stop);
  CHECK(consensus.restartBackoff == std::chrono::milliseconds(50));
  CHECK(consensus.maxRestarts == 3);
  REQUIRE(consensus.settings.size() == 2);
  CHECK(consensus.settings[0] == std::make_pair(std::string("snapshot-interval"), std::string("500")));
  CHECK(consensus.settings[1] == std::make_pair(std::string("note"), std::string("a = b")));
  CHECK(consensus.sourceLine == 2);
  CHECK(config.plugins[1].library == "/etc/swarm/pki.so");
  CHECK(config.plugins[1].isolation == Isolation::inProcess);
  CHECK(config.plugins[1].onCrash == CrashPolicy::restart);
  CHECK(config.plugins[2].library == "/etc/lib/s.so");
}

TEST_CASE("syntax errors name the file and line") {
  CHECK(errorOf("[consensus]\nlibrary = c.so\nthis line has no equals sign\n") ==
        "/etc/swarm/plugins.conf:3: expected 'key = value' or '[kind]', got 'this line has no "
        "equals sign'");
  CHECK(errorOf("[consensus\n") ==
        "/etc/swarm/plugins.conf:1: section header '[consensus' is missing its ']'");
  CHECK(errorOf("library = x.so\n") ==
        "/etc/swarm/plugins.conf:1: 'library' is outside any section; start with a [kind] line, "
        "one of: consensus, pki, scheduler, runtime, transport");
  CHECK(errorOf("[pki]\n = x\n") == "/etc/swarm/plugins.conf:2: missing key before '='");
}

TEST_CASE("an unknown kind is refused with the known ones") {
  CHECK(errorOf(kAllKinds + "[network]\nlibrary = n.so\n") ==
        "/etc/swarm/plugins.conf:11: unknown plugin kind 'network'; use one of: consensus, pki, "
        "scheduler, runtime, transport");
}

TEST_CASE("a duplicate kind is refused, pointing at the first") {
  CHECK(errorOf(kAllKinds + "\n[scheduler]\nlibrary = other.so\n") ==
        "/etc/swarm/plugins.conf:12: duplicate kind [scheduler] (first at line 5); each kind is "
        "served by one plugin");
}

TEST_CASE("a missing required kind is refused") {
  CHECK(errorOf("[consensus]\nlibrary = c.so\n[pki]\nlibrary = p.so\n[scheduler]\nlibrary = "
                "s.so\n[runtime]\nlibrary = r.so\n") ==
        "/etc/swarm/plugins.conf: missing required kind [transport]; add a section naming the "
        "plugin library that serves it");
}

TEST_CASE("a section without a library is refused") {
  CHECK(errorOf("[consensus]\nisolation = in-process\n") ==
        "/etc/swarm/plugins.conf:1: [consensus] has no 'library = <path to .so>' line");
  CHECK(errorOf("[consensus]\nlibrary =\n") ==
        "/etc/swarm/plugins.conf:2: 'library' is empty; give the path of the plugin's .so");
}

TEST_CASE("bad keys and values are refused with what to write instead") {
  CHECK(errorOf("[pki]\nlibary = p.so\n") ==
        "/etc/swarm/plugins.conf:2: unknown key 'libary'; known keys: library, isolation, "
        "on-crash, restart-backoff-ms, max-restarts, setting.<name>");
  CHECK(errorOf("[pki]\nisolation = sandboxed\n") ==
        "/etc/swarm/plugins.conf:2: isolation 'sandboxed' is not known; use in-process or "
        "out-of-process");
  CHECK(errorOf("[pki]\non-crash = ignore\n") ==
        "/etc/swarm/plugins.conf:2: on-crash 'ignore' is not known; use restart or stop");
  CHECK(errorOf("[pki]\nmax-restarts = -1\n") ==
        "/etc/swarm/plugins.conf:2: 'max-restarts = -1': expected a whole number from 0 to 1000");
  CHECK(errorOf("[pki]\nrestart-backoff-ms = 10s\n") ==
        "/etc/swarm/plugins.conf:2: 'restart-backoff-ms = 10s': expected a whole number from 0 "
        "to 600000");
  CHECK(errorOf("[pki]\nlibrary = a.so\nlibrary = b.so\n") ==
        "/etc/swarm/plugins.conf:3: 'library' is given twice in [pki]; keep one");
  CHECK(errorOf("[pki]\nsetting.x = 1\nsetting.x = 2\n") ==
        "/etc/swarm/plugins.conf:3: setting 'x' is given twice; keep one");
  CHECK(errorOf("[pki]\nsetting. = 1\n") ==
        "/etc/swarm/plugins.conf:2: 'setting.' needs a name, e.g. 'setting.image = busybox'");
}

TEST_CASE("a missing, directory or unreadable config file is refused") {
  auto dir = std::filesystem::temp_directory_path() / ("swarm-config-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto missing = (dir / "absent.conf").string();
  try {
    loadConfig(missing);
    FAIL("expected an error");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()) == missing + ": config file not found; pass an existing file to --plugins");
  }
  try {
    loadConfig(dir.string());
    FAIL("expected an error");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()) == dir.string() + ": is a directory; pass the plugins.conf file to --plugins");
  }
  if (geteuid() != 0) {  // root reads any file whatever its mode
    auto locked = dir / "locked.conf";
    std::ofstream(locked) << kAllKinds;
    std::filesystem::permissions(locked, std::filesystem::perms::none);
    try {
      loadConfig(locked.string());
      FAIL("expected an error");
    } catch (const UserError& e) {
      CHECK(std::string(e.what()).find("cannot read the config file") != std::string::npos);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("log levels parse as operators type them") {
  CHECK(parseLogLevel("trace") == spdlog::level::trace);
  CHECK(parseLogLevel("debug") == spdlog::level::debug);
  CHECK(parseLogLevel("info") == spdlog::level::info);
  CHECK(parseLogLevel("warn") == spdlog::level::warn);
  CHECK(parseLogLevel("warning") == spdlog::level::warn);
  CHECK(parseLogLevel("error") == spdlog::level::err);
  CHECK(parseLogLevel("critical") == spdlog::level::critical);
  CHECK(parseLogLevel("off") == spdlog::level::off);
  CHECK_FALSE(parseLogLevel("loud").has_value());
}
