#include "text.h"

#include <array>
#include <chrono>
#include <cstdio>

namespace swarm::api {

std::string formatTime(int64_t unixNanos) {
  if (unixNanos == 0) return "0001-01-01T00:00:00Z";
  using namespace std::chrono;
  constexpr int64_t kNanosPerSecond = 1'000'000'000;
  int64_t seconds = unixNanos / kNanosPerSecond;
  int64_t nanos = unixNanos % kNanosPerSecond;
  if (nanos < 0) {  // floor, so instants before 1970 still get a non-negative fraction
    nanos += kNanosPerSecond;
    --seconds;
  }
  sys_seconds instant{std::chrono::seconds(seconds)};
  sys_days day = floor<days>(instant);
  year_month_day date{day};
  hh_mm_ss<std::chrono::seconds> clock{instant - day};

  char buffer[64];
  int length = std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d",
                             static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                             static_cast<unsigned>(date.day()),
                             static_cast<int>(clock.hours().count()),
                             static_cast<int>(clock.minutes().count()),
                             static_cast<int>(clock.seconds().count()));
  std::string text(buffer, static_cast<size_t>(length));
  if (nanos != 0) {
    char fraction[16];
    std::snprintf(fraction, sizeof fraction, ".%09lld", static_cast<long long>(nanos));
    std::string digits = fraction;
    while (digits.back() == '0') digits.pop_back();
    text += digits;
  }
  return text + "Z";
}

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t group = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                     uint8_t(bytes[i + 2]);
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += kAlphabet[(group >> 6) & 63];
    out += kAlphabet[group & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t group = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) group |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += rest == 2 ? kAlphabet[(group >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text)
    if (c != '\r' && c != '\n') clean += c;
  if (clean.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(clean.size() / 4 * 3);
  for (size_t i = 0; i < clean.size(); i += 4) {
    bool last = i + 4 == clean.size();
    int padding = 0;
    std::array<int, 4> values{};
    for (size_t j = 0; j < 4; ++j) {
      char c = clean[i + j];
      if (c == '=') {
        // Padding only at the very end, and only in the last two positions.
        if (!last || j < 2) return std::nullopt;
        ++padding;
        values[j] = 0;
        continue;
      }
      if (padding > 0) return std::nullopt;  // data after '='
      values[j] = sextet(c);
      if (values[j] < 0) return std::nullopt;
    }
    uint32_t group = (uint32_t(values[0]) << 18) | (uint32_t(values[1]) << 12) |
                     (uint32_t(values[2]) << 6) | uint32_t(values[3]);
    out += char((group >> 16) & 0xff);
    if (padding < 2) out += char((group >> 8) & 0xff);
    if (padding < 1) out += char(group & 0xff);
  }
  return out;
}

bool matchesLabelFilter(capnp::List<schema::KeyValue>::Reader labels, std::string_view filter) {
  size_t equals = filter.find('=');
  std::string_view key = filter.substr(0, equals);
  for (auto label : labels) {
    if (std::string_view(label.getKey().cStr()) != key) continue;
    if (equals == std::string_view::npos) return true;
    if (std::string_view(label.getValue().cStr()) == filter.substr(equals + 1)) return true;
  }
  return false;
}

}  // namespace swarm::api
