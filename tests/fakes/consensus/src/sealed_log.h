// The fake's storage: an append-only log file and an optional snapshot file under storageDir,
// every record sealed with the data key (libsodium secretbox, random nonce per record).
//
//   fake-consensus.log    records: [u32 sealed size][24-byte nonce][sealed body]
//                         the first record is the header (member), then one record per entry
//   fake-consensus.snap   one record: snapshot index, term and the state machine's bytes
//
// append() returns only after fdatasync, so an acknowledged entry survives kill -9. A torn last
// record (the write a crash interrupted, never acknowledged) is dropped on replay; anything else
// that does not open with the key is an error, never garbage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace swarm::fakes {

struct LogEntry {
  uint64_t index = 0;
  uint64_t term = 0;
  uint8_t type = 0;  // schema::Entry::Type
  std::string data;
};

struct LogMember {
  uint64_t id = 0;
  std::string nodeId;
  std::string address;
};

struct Snapshot {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string data;
};

class SealedLog {
 public:
  // `key` must be 32 bytes (checked by the caller).
  SealedLog(std::string dir, std::string key);
  ~SealedLog();
  SealedLog(const SealedLog&) = delete;
  SealedLog& operator=(const SealedLog&) = delete;

  bool exists() const;
  const std::string& logPath() const { return path; }

  // A fresh log holding only the header. Refuses to overwrite an existing log.
  void create(const LogMember& self);

  // Opens the existing log (and snapshot), checks the key, drops a torn tail. Entries at or below
  // the snapshot's index are left out.
  struct Replay {
    LogMember self;
    bool hasSnapshot = false;
    Snapshot snapshot;
    std::vector<LogEntry> entries;
  };
  Replay open();

  void append(const LogEntry& entry);

  // Stores `snapshot` durably, then rewrites the log with only the entries after it.
  void saveSnapshot(const Snapshot& snapshot, const LogMember& self,
                    const std::vector<LogEntry>& later);

 private:
  std::string seal(const std::string& plain) const;
  void writeDurably(const std::string& file, const std::string& content) const;

  std::string dir, path, snapPath;
  std::string key;
  int fd = -1;  // the log, open for appending
};

}  // namespace swarm::fakes
