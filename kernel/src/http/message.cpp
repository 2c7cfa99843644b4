#include "http/message.h"

#include "errors.h"

#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace swarm::http {

namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<unsigned> parseSmallNumber(std::string_view digits) {
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

std::string quoted(std::string_view text) {
  return boost::json::serialize(boost::json::value(boost::json::string_view(text.data(), text.size())));
}

const char* kindOf(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "a string";
    case boost::json::kind::array: return "a list";
    case boost::json::kind::object: return "an object";
  }
  return "a value";
}

// "malformed JSON in request body: <reason>" style failures name what was being read.
boost::json::value parseJson(std::string_view text, std::string_view what) {
  boost::json::stream_parser parser;
  boost::system::error_code ec;
  std::size_t used = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    throw Error(400, "malformed JSON in " + std::string(what) + ": " + ec.message() +
                         " at offset " + std::to_string(used));
  }
  return parser.release();
}

}  // namespace

// ---- ApiVersion

std::optional<ApiVersion> ApiVersion::parse(std::string_view text) {
  auto dot = text.find('.');
  auto major = parseSmallNumber(text.substr(0, dot));
  if (!major) return std::nullopt;
  if (dot == std::string_view::npos) return ApiVersion{*major, 0};
  auto minor = parseSmallNumber(text.substr(dot + 1));
  if (!minor) return std::nullopt;
  return ApiVersion{*major, *minor};
}

std::string ApiVersion::toString() const {
  return std::to_string(major) + "." + std::to_string(minor);
}

// ---- errors

Error::Error(unsigned status, std::string message)
    : std::runtime_error("HTTP " + std::to_string(status) + ": " + message),
      code(status),
      text(std::move(message)) {}

Failure failureOf(const kj::Exception& exception) {
  std::string description = kernel::describe(exception);
  // KJ turns a std::exception thrown inside a continuation into this description.
  constexpr std::string_view kStd = "std::exception: ";
  if (description.starts_with(kStd)) description.erase(0, kStd.size());
  // An Error that went through KJ: "HTTP 404: message".
  if (description.size() >= 10 && description.starts_with("HTTP ") &&
      description.compare(8, 2, ": ") == 0) {
    if (auto status = parseSmallNumber(std::string_view(description).substr(5, 3));
        status && *status >= 100 && *status <= 599) {
      return {*status, description.substr(10)};
    }
  }
  switch (exception.getType()) {
    case kj::Exception::Type::OVERLOADED:
    case kj::Exception::Type::DISCONNECTED: return {503, description};
    case kj::Exception::Type::UNIMPLEMENTED: return {501, description};
    case kj::Exception::Type::FAILED: break;
  }
  return {500, description};
}

Failure failureOf(std::exception_ptr exception) {
  try {
    std::rethrow_exception(exception);
  } catch (const Error& e) {
    return {e.status(), e.message()};
  } catch (const kj::Exception& e) {
    return failureOf(e);
  } catch (const std::exception& e) {
    return {500, e.what()};
  } catch (...) {
    return {500, "unknown error"};
  }
}

// ---- percent-decoding

std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = hex(text[i + 1]);
      int low = hex(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ---- Filters

Filters Filters::parse(std::string_view json, std::string_view parameter) {
  Filters filters;
  if (json.empty()) return filters;
  const std::string name(parameter);
  const std::string example = " like {\"name\":{\"web\":true}}";
  boost::json::value root;
  try {
    root = parseJson(json, name + " parameter");
  } catch (const Error& e) {
    throw Error(400, e.message() + " (expected a JSON object" + example + ")");
  }
  if (!root.is_object()) {
    throw Error(400, name + " parameter must be a JSON object" + example + ", not " +
                         kindOf(root));
  }
  for (const auto& [key, value] : root.as_object()) {
    std::string field(key);
    auto& values = filters.terms[field];
    if (value.is_object()) {
      // Docker's map[string]map[string]bool; like Docker, a term counts whatever its flag.
      for (const auto& [term, flag] : value.as_object()) {
        if (!flag.is_bool()) {
          throw Error(400, name + " parameter: " + quoted(field) + "." + quoted(term) +
                               " must be true or false, not " + kindOf(flag));
        }
        values.emplace(term);
      }
    } else if (value.is_array()) {
      // The legacy map[string][]string form.
      std::size_t index = 0;
      for (const auto& term : value.as_array()) {
        if (!term.is_string()) {
          throw Error(400, name + " parameter: " + quoted(field) + "[" + std::to_string(index) +
                               "] must be a string, not " + kindOf(term));
        }
        values.emplace(term.as_string());
        ++index;
      }
    } else {
      throw Error(400, name + " parameter: " + quoted(field) +
                           " must map to an object like {\"web\":true} (or a list of strings), "
                           "not " + kindOf(value));
    }
  }
  return filters;
}

bool Filters::has(std::string_view key) const { return terms.find(key) != terms.end(); }

std::vector<std::string> Filters::values(std::string_view key) const {
  auto it = terms.find(key);
  if (it == terms.end()) return {};
  return {it->second.begin(), it->second.end()};
}

void Filters::requireKnown(std::initializer_list<std::string_view> accepted) const {
  for (const auto& [key, values] : terms) {
    if (std::find(accepted.begin(), accepted.end(), std::string_view(key)) == accepted.end()) {
      throw Error(400, "invalid filter '" + key + "'");
    }
  }
}

// ---- Query

Query Query::parse(std::string_view raw) {
  Query query;
  while (!raw.empty()) {
    auto amp = raw.find('&');
    std::string_view piece = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (piece.empty()) continue;
    auto eq = piece.find('=');
    auto key = percentDecode(piece.substr(0, eq), true);
    auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                              : percentDecode(piece.substr(eq + 1), true);
    if (!key || !value) {
      throw Error(400, "malformed query string: invalid percent-escape in \"" +
                           std::string(piece) + "\"");
    }
    query.entries.emplace_back(std::move(*key), std::move(*value));
  }
  return query;
}

bool Query::has(std::string_view key) const {
  return std::any_of(entries.begin(), entries.end(),
                     [key](const auto& entry) { return entry.first == key; });
}

std::optional<std::string> Query::get(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<std::string> Query::all(std::string_view key) const {
  std::vector<std::string> values;
  for (const auto& [k, v] : entries) {
    if (k == key) values.push_back(v);
  }
  return values;
}

bool Query::flag(std::string_view key, bool fallback) const {
  auto value = get(key);
  if (!value || value->empty()) return fallback;
  if (*value == "1" || equalsIgnoreCase(*value, "true")) return true;
  if (*value == "0" || equalsIgnoreCase(*value, "false")) return false;
  throw Error(400, "invalid value " + quoted(*value) + " for query parameter \"" +
                       std::string(key) + "\": use 1, true, 0 or false");
}

std::optional<std::uint64_t> Query::unsignedInteger(std::string_view key) const {
  auto value = get(key);
  if (!value || value->empty()) return std::nullopt;
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), number);
  if (ec != std::errc() || end != value->data() + value->size()) {
    throw Error(400, "invalid value " + quoted(*value) + " for query parameter \"" +
                         std::string(key) + "\": expected a non-negative integer");
  }
  return number;
}

Filters Query::filters(std::string_view key) const {
  auto value = get(key);
  if (!value) return {};
  return Filters::parse(*value, key);
}

// ---- Request

const std::string& Request::param(std::string_view name) const {
  auto it = params.find(name);
  if (it == params.end()) {
    throw std::out_of_range("the route has no path parameter {" + std::string(name) + "}");
  }
  return it->second;
}

std::optional<std::string> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (equalsIgnoreCase(k, name)) return v;
  }
  return std::nullopt;
}

std::optional<boost::json::value> Request::jsonIfAny() const {
  if (std::all_of(body.begin(), body.end(),
                  [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; })) {
    return std::nullopt;
  }
  // Docker's CheckForJSON: no Content-Type, or application/json with any parameters.
  if (auto type = header("Content-Type"); type && !type->empty()) {
    std::string_view mime(*type);
    mime = mime.substr(0, mime.find(';'));
    while (!mime.empty() && mime.back() == ' ') mime.remove_suffix(1);
    if (!equalsIgnoreCase(mime, "application/json")) {
      throw Error(400, "unsupported Content-Type header (" + *type +
                           "): must be 'application/json'");
    }
  }
  return parseJson(body, "request body");
}

boost::json::value Request::json() const {
  auto value = jsonIfAny();
  if (!value) throw Error(400, "missing request body: this endpoint expects a JSON body");
  return std::move(*value);
}

// ---- Response

Response Response::json(unsigned status, const boost::json::value& value) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json");
  response.body = boost::json::serialize(value);
  response.body.push_back('\n');  // as Go's json.Encoder, which Docker uses
  return response;
}

Response Response::error(unsigned status, std::string_view message) {
  boost::json::object object;
  object["message"] = boost::json::string_view(message.data(), message.size());
  return json(status, object);
}

Response Response::empty(unsigned status) {
  Response response;
  response.status = status;
  return response;
}

Response Response::text(unsigned status, std::string body, std::string contentType) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::move(contentType));
  response.body = std::move(body);
  return response;
}

Response Response::stream(unsigned status, std::string contentType, StreamProducer producer,
                          StreamFraming framing) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::move(contentType));
  response.producer = kj::mv(producer);
  response.framing = framing;
  return response;
}

Response& Response::withHeader(std::string name, std::string value) & {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

Response&& Response::withHeader(std::string name, std::string value) && {
  headers.emplace_back(std::move(name), std::move(value));
  return std::move(*this);
}

}  // namespace swarm::http
