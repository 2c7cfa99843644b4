#include "text.h"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

namespace swarm::ctl {

namespace json = boost::json;

std::optional<std::int64_t> parseDuration(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return 0;
  if (text.empty()) return std::nullopt;
  long double total = 0;
  while (!text.empty()) {
    std::size_t digits = 0;
    while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) ||
                                    text[digits] == '.')) {
      ++digits;
    }
    std::string number(text.substr(0, digits));
    if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1) {
      return std::nullopt;
    }
    text.remove_prefix(digits);
    std::size_t unitLength = 0;
    while (unitLength < text.size() && !std::isdigit(static_cast<unsigned char>(text[unitLength])) &&
           text[unitLength] != '.') {
      ++unitLength;
    }
    std::string_view unit = text.substr(0, unitLength);
    text.remove_prefix(unitLength);
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return std::nullopt;
    total += std::stold(number) * scale;
  }
  if (total > 9.2e18L) return std::nullopt;
  auto nanoseconds = static_cast<std::int64_t>(std::llround(total));
  return negative ? -nanoseconds : nanoseconds;
}

namespace {

// Go's fmtFrac/fmtInt: the value with `precision` decimals, trailing zeros removed.
std::string withFraction(std::uint64_t value, int precision) {
  std::uint64_t scale = 1;
  for (int i = 0; i < precision; ++i) scale *= 10;
  std::string text = std::to_string(value / scale);
  std::uint64_t fraction = value % scale;
  if (fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, static_cast<std::size_t>(precision) - digits.size(), '0');
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    text += "." + digits;
  }
  return text;
}

}  // namespace

std::string formatDuration(std::int64_t nanoseconds) {
  if (nanoseconds == 0) return "0s";
  std::string sign = nanoseconds < 0 ? "-" : "";
  std::uint64_t value = nanoseconds < 0 ? static_cast<std::uint64_t>(-(nanoseconds + 1)) + 1
                                        : static_cast<std::uint64_t>(nanoseconds);
  if (value < 1000) return sign + std::to_string(value) + "ns";
  if (value < 1000000) return sign + withFraction(value, 3) + "\xC2\xB5s";
  if (value < 1000000000) return sign + withFraction(value, 6) + "ms";
  std::uint64_t hours = value / 3600000000000ULL;
  value %= 3600000000000ULL;
  std::uint64_t minutes = value / 60000000000ULL;
  value %= 60000000000ULL;
  std::string text = sign;
  if (hours > 0) text += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0) text += std::to_string(minutes) + "m";
  return text + withFraction(value, 9) + "s";
}

std::string humanDuration(std::chrono::nanoseconds elapsed) {
  using namespace std::chrono;
  auto seconds = duration_cast<std::chrono::seconds>(elapsed).count();
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return std::to_string(seconds) + " seconds";
  auto minutes = duration_cast<std::chrono::minutes>(elapsed).count();
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return std::to_string(minutes) + " minutes";
  // Go rounds to the nearest hour here (d.Round(time.Hour)).
  auto hours = (elapsed.count() + 1800000000000LL) / 3600000000000LL;
  if (hours == 1) return "About an hour";
  if (hours < 48) return std::to_string(hours) + " hours";
  if (hours < 24 * 7 * 2) return std::to_string(hours / 24) + " days";
  if (hours < 24 * 30 * 2) return std::to_string(hours / 24 / 7) + " weeks";
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24 / 30) + " months";
  return std::to_string(duration_cast<std::chrono::hours>(elapsed).count() / 24 / 365) + " years";
}

std::optional<std::chrono::system_clock::time_point> parseTimestamp(std::string_view text) {
  std::tm parts{};
  int consumed = 0;
  std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &parts.tm_year, &parts.tm_mon,
                  &parts.tm_mday, &parts.tm_hour, &parts.tm_min, &parts.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  if (parts.tm_year <= 1) return std::nullopt;  // Go's zero time, 0001-01-01
  parts.tm_year -= 1900;
  parts.tm_mon -= 1;
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  std::int64_t nanos = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
      if (digits < 9) nanos = nanos * 10 + (rest.front() - '0');
      ++digits;
      rest.remove_prefix(1);
    }
    for (; digits < 9; ++digits) nanos *= 10;
  }
  std::int64_t offsetSeconds = 0;
  if (!rest.empty() && (rest.front() == '+' || rest.front() == '-')) {
    int hours = 0, minutes = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &hours, &minutes) != 2) {
      return std::nullopt;
    }
    offsetSeconds = (hours * 3600 + minutes * 60) * (rest.front() == '-' ? -1 : 1);
  } else if (rest != "Z") {
    return std::nullopt;
  }
  std::time_t seconds = ::timegm(&parts) - offsetSeconds;
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos)));
}

std::string timeAgo(std::string_view timestamp, std::chrono::system_clock::time_point now) {
  auto when = parseTimestamp(timestamp);
  if (!when) return "";
  auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - *when);
  if (elapsed.count() < 0) elapsed = std::chrono::nanoseconds(0);
  return humanDuration(elapsed) + " ago";
}

std::optional<std::int64_t> parseNanoCpus(std::string_view text) {
  std::string copy(text);
  char* end = nullptr;
  double cpus = std::strtod(copy.c_str(), &end);
  if (copy.empty() || *end != '\0' || !(cpus >= 0) || cpus > 1e6) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(cpus * 1e9));
}

std::optional<std::int64_t> parseBytes(std::string_view text) {
  std::string copy(text);
  char* end = nullptr;
  double number = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end == copy.c_str() || !(number >= 0)) return std::nullopt;
  std::string unit(end);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (unit.size() > 1 && unit.back() == 'b') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'i') unit.pop_back();
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "k") scale = 1024.0;
  else if (unit == "m") scale = 1024.0 * 1024;
  else if (unit == "g") scale = 1024.0 * 1024 * 1024;
  else if (unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  else return std::nullopt;
  double bytes = number * scale;
  if (bytes > 9e18) return std::nullopt;
  return static_cast<std::int64_t>(bytes);
}

std::string shortId(std::string_view id) { return std::string(id.substr(0, 12)); }

std::string capitalize(std::string_view word) {
  std::string text(word);
  if (!text.empty()) text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  return text;
}

std::string base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    auto chunk = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                 (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) | std::uint8_t(bytes[i + 2]);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += kAlphabet[(chunk >> 6) & 63];
    out += kAlphabet[chunk & 63];
  }
  if (std::size_t left = bytes.size() - i; left > 0) {
    std::uint32_t chunk = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (left == 2) chunk |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += left == 2 ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

void writeJson(std::ostream& out, const json::value& value, int depth) {
  std::string indent(static_cast<std::size_t>(depth + 1) * 4, ' ');
  std::string closing(static_cast<std::size_t>(depth) * 4, ' ');
  if (value.is_object() && !value.get_object().empty()) {
    out << "{\n";
    bool first = true;
    for (const auto& [key, member] : value.get_object()) {
      if (!first) out << ",\n";
      first = false;
      out << indent << json::serialize(json::string(key)) << ": ";
      writeJson(out, member, depth + 1);
    }
    out << "\n" << closing << "}";
  } else if (value.is_array() && !value.get_array().empty()) {
    out << "[\n";
    bool first = true;
    for (const auto& element : value.get_array()) {
      if (!first) out << ",\n";
      first = false;
      out << indent;
      writeJson(out, element, depth + 1);
    }
    out << "\n" << closing << "]";
  } else {
    out << json::serialize(value);
  }
}

}  // namespace

void printJson(std::ostream& out, const json::value& value) {
  writeJson(out, value, 0);
  out << "\n";
}

Table::Table(std::vector<std::string> headers) { rows.push_back(std::move(headers)); }

void Table::add(std::vector<std::string> row) { rows.push_back(std::move(row)); }

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> widths;
  // Width in characters, not bytes, so "µs" or non-ASCII hostnames stay aligned.
  auto width = [](const std::string& cell) {
    return static_cast<std::size_t>(std::count_if(
        cell.begin(), cell.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  };
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - width(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

}  // namespace swarm::ctl
