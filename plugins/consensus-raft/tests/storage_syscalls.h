// Test-only interposition of the system calls the storage makes to change files (pwrite,
// fdatasync, fsync, rename, unlink, ftruncate). The test binary defines these functions itself;
// the storage library is linked statically into it, so its calls land here first. Used to
// observe the durability contract and to simulate a crash at an exact point: the chosen call
// does not happen (or, for a write, only its first half does) and every later call fails with
// EIO, like a process that died there (its page cache writes survive, nothing after does).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace swarm::raft::testing::syscalls {

enum class Op { pwrite, fdatasync, fsync, rename, unlink, ftruncate };

struct Call {
  Op op;
  std::string path;   // the descriptor's file, or the (first) path argument
  uint64_t size = 0;  // pwrite: bytes; syncs: the file's size when synced
};

void record(std::vector<Call>* calls);  // nullptr stops recording

void armCrash(uint64_t callNumber, bool halfWrite);
// Counting intercepted calls from 0 as of now, call `callNumber` is the crash point.
void disarm();
uint64_t callsSinceArm();
bool crashed();

void skipRealSyncs(bool skip);
// While set, fdatasync and fsync succeed without reaching the disk. Only for simulated process
// crashes, where the page cache survives anyway: it keeps those tests fast.

}  // namespace swarm::raft::testing::syscalls
