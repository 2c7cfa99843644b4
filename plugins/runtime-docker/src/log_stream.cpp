#include "log_stream.h"

#include "container_config.h"

namespace swarm::docker {

std::vector<LogEntry> LogDemuxer::feed(std::string_view bytes) {
  std::vector<LogEntry> out;
  if (tty) {
    takeText(false, bytes, out);
    return out;
  }
  frames.append(bytes.data(), bytes.size());
  size_t at = 0;
  while (frames.size() - at >= 8) {
    auto* h = reinterpret_cast<const unsigned char*>(frames.data() + at);
    size_t length = (size_t(h[4]) << 24) | (size_t(h[5]) << 16) | (size_t(h[6]) << 8) | size_t(h[7]);
    if (frames.size() - at - 8 < length) break;
    // 0 is stdin (never sent for logs), 1 stdout, 2 stderr.
    takeText(h[0] == 2, std::string_view(frames.data() + at + 8, length), out);
    at += 8 + length;
  }
  frames.erase(0, at);
  return out;
}

std::vector<LogEntry> LogDemuxer::finish() {
  std::vector<LogEntry> out;
  for (int s = 0; s < 2; ++s) {
    if (!partial[s].empty()) emit(s == 1, std::move(partial[s]), out);
    partial[s].clear();
  }
  return out;
}

void LogDemuxer::takeText(bool toStderr, std::string_view text, std::vector<LogEntry>& out) {
  std::string& line = partial[toStderr ? 1 : 0];
  for (char c : text) {
    if (c == '\n') {
      emit(toStderr, std::move(line), out);
      line.clear();
    } else {
      line += c;
    }
  }
}

void LogDemuxer::emit(bool toStderr, std::string line, std::vector<LogEntry>& out) {
  LogEntry e;
  e.fromStderr = toStderr;
  if (!line.empty() && line.back() == '\r') line.pop_back();  // a TTY ends lines with \r\n
  size_t space = line.find(' ');
  int64_t t = space == std::string::npos ? 0 : parseTime(std::string_view(line).substr(0, space));
  if (t != 0) {
    e.timestampNanos = t;
    e.data = line.substr(space + 1);
  } else {
    e.data = std::move(line);
  }
  out.push_back(std::move(e));
}

}  // namespace swarm::docker
