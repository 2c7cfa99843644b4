// Docker's log stream, turned into lines. Without a TTY the engine multiplexes stdout and stderr
// into frames: 1 byte stream (1 stdout, 2 stderr), 3 zero bytes, a 4-byte big-endian length, then
// the payload. With a TTY the stream is raw stdout. The runtime always asks for timestamps, so each
// line starts with an RFC 3339 time and a space, which goes into LogLine.timestamp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::docker {

struct LogEntry {
  bool fromStderr = false;
  int64_t timestampNanos = 0;
  std::string data;  // the line without its timestamp and without the trailing newline
};

class LogDemuxer {
 public:
  explicit LogDemuxer(bool tty) : tty(tty) {}

  // Takes the next bytes of the stream (any split); returns the lines they complete.
  std::vector<LogEntry> feed(std::string_view bytes);
  // The end of the stream: a last line without a newline, if any.
  std::vector<LogEntry> finish();

 private:
  void takeText(bool toStderr, std::string_view text, std::vector<LogEntry>& out);
  void emit(bool toStderr, std::string line, std::vector<LogEntry>& out);

  bool tty;
  std::string frames;        // undecoded multiplexed bytes
  std::string partial[2];    // text of an unfinished line, per stream
};

}  // namespace swarm::docker
