// Text helpers for swarmctl's output and input: Go-style durations, Docker's relative times,
// aligned tables, indented JSON, base64, and Docker's ID truncation.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::ctl {

// Parses a Go duration ("90s", "1h30m", "1.5s", "300ms", "0") into nanoseconds, as Go's
// time.ParseDuration does. nullopt when malformed (the caller names the flag in its error).
std::optional<std::int64_t> parseDuration(std::string_view text);

// Formats nanoseconds as Go's Duration.String(): "1h30m0s", "5s", "300ms", "0s".
std::string formatDuration(std::int64_t nanoseconds);

// Docker's units.HumanDuration: "Less than a second", "2 minutes", "About an hour", "3 days".
std::string humanDuration(std::chrono::nanoseconds elapsed);

// Parses an RFC 3339 timestamp as the Engine API writes it ("2024-01-02T03:04:05.123456789Z",
// optional offset). nullopt for the zero time or anything unparseable.
std::optional<std::chrono::system_clock::time_point> parseTimestamp(std::string_view text);

// "2 minutes ago" relative to `now`, as docker prints CREATED columns; "" for a missing time.
std::string timeAgo(std::string_view timestamp, std::chrono::system_clock::time_point now);

// Parses "1.5", "0.25" CPUs into NanoCPUs; nullopt when malformed or negative.
std::optional<std::int64_t> parseNanoCpus(std::string_view text);

// Parses Docker's RAMInBytes sizes ("512m", "1g", "1024", "1.5GiB", "4MB": binary units).
std::optional<std::int64_t> parseBytes(std::string_view text);

// Docker's 12-character short IDs.
std::string shortId(std::string_view id);

// "running" -> "Running" (docker's PrettyPrint for states).
std::string capitalize(std::string_view word);

std::string base64Encode(std::string_view bytes);

// JSON indented by 4 spaces like `docker inspect`, with a trailing newline.
void printJson(std::ostream& out, const boost::json::value& value);

// A table whose columns are as wide as their widest cell, separated by two spaces. Trailing
// spaces are not printed.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void add(std::vector<std::string> row);
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows;
};

}  // namespace swarm::ctl
