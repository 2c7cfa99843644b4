// swarm-abi-check: pins the plugin ABI (the C header) and the schemas (the Cap'n Proto API).
//
//   swarm-abi-check header <plugin.h>
//       Prints "<SWARM_PLUGIN_ABI_VERSION> <sha256>" where the digest covers the header with
//       comments removed and whitespace normalized, so editing a comment needs no ABI bump but
//       changing any declaration does.
//   swarm-abi-check record < request.bin
//       Reads a CodeGeneratorRequest (`capnp compile -o- <files>`) on stdin and prints one line per
//       file, node, field, enumerant, method, superclass and constant of the requested files.
//   swarm-abi-check compare <committed-record> <current-record>
//       Every line of the committed record must appear unchanged in the current one. Lines only
//       in the current record are additions (new ordinals) and pass. Exit 1 listing every breaking
//       change otherwise.
//
// A record line is "<what> <name> <signature>": the first two words identify an item, the rest is
// what must never change about it. Items are keyed by name, so a removal, a rename, a renumbering
// or a type change all show up as a committed line that is missing or different.
#include <capnp/schema.capnp.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unistd.h>
#include <vector>

namespace {

using capnp::schema::Node;
using capnp::schema::Type;
using capnp::schema::Value;

std::string hexId(uint64_t id) {
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%016" PRIx64, id);
  return buf;
}

// ---- header digest -----------------------------------------------------------------------------

// The header without comments, one logical line per non-empty line, runs of blanks collapsed.
// String and character literals are copied untouched (a "/*" inside them is not a comment).
std::string normalizeHeader(const std::string& in) {
  std::string out;
  size_t i = 0;
  auto copyLiteral = [&](char quote) {
    out += in[i++];
    while (i < in.size() && in[i] != quote && in[i] != '\n') {
      if (in[i] == '\\' && i + 1 < in.size()) out += in[i++];
      out += in[i++];
    }
    if (i < in.size() && in[i] == quote) out += in[i++];
  };
  while (i < in.size()) {
    if (in.compare(i, 2, "/*") == 0) {
      size_t end = in.find("*/", i + 2);
      i = end == std::string::npos ? in.size() : end + 2;
      out += ' ';  // a comment separates tokens, as in C
    } else if (in.compare(i, 2, "//") == 0) {
      while (i < in.size() && in[i] != '\n') ++i;
    } else if (in[i] == '"' || in[i] == '\'') {
      copyLiteral(in[i]);
    } else {
      out += in[i++];
    }
  }
  std::istringstream lines(out);
  std::string line, result;
  while (std::getline(lines, line)) {
    std::string collapsed;
    bool blank = false;
    for (char c : line) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        blank = true;
      } else {
        if (blank && !collapsed.empty()) collapsed += ' ';
        blank = false;
        collapsed += c;
      }
    }
    if (!collapsed.empty()) result += collapsed + '\n';
  }
  return result;
}

std::string sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  KJ_ASSERT(EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) == 1);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < size; ++i) {
    snprintf(buf, sizeof(buf), "%02x", digest[i]);
    hex += buf;
  }
  return hex;
}

int headerCommand(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    std::cerr << "swarm-abi-check: cannot read " << path << "; pass the path of swarm/plugin.h\n";
    return 2;
  }
  std::stringstream text;
  text << file.rdbuf();
  std::string normalized = normalizeHeader(text.str());
  std::smatch m;
  static const std::regex versionRe(R"(#\s*define\s+SWARM_PLUGIN_ABI_VERSION\s+(\d+)[uU]?\s*\n)");
  if (!std::regex_search(normalized, m, versionRe)) {
    std::cerr << "swarm-abi-check: " << path
              << " has no '#define SWARM_PLUGIN_ABI_VERSION <number>' line; restore it\n";
    return 2;
  }
  std::cout << m[1] << ' ' << sha256Hex(normalized) << '\n';
  return 0;
}

// ---- schema record -----------------------------------------------------------------------------

class Recorder {
 public:
  explicit Recorder(capnp::schema::CodeGeneratorRequest::Reader request) {
    for (auto node : request.getNodes()) nodes.emplace(node.getId(), node);
    for (auto file : request.getRequestedFiles()) requestedIds.push_back(file.getId());
  }

  // Lines sorted by name, then by what, so related items sit together and diffs stay small.
  std::vector<std::string> record() {
    for (auto& [id, node] : nodes) {
      if (!isRequested(node)) continue;
      recordNode(node);
    }
    std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
      return std::tie(a.name, a.what) < std::tie(b.name, b.what);
    });
    std::vector<std::string> out;
    for (auto& l : lines) out.push_back(l.what + ' ' + l.name + ' ' + l.signature);
    return out;
  }

 private:
  struct Line {
    std::string what, name, signature;
  };

  std::unordered_map<uint64_t, Node::Reader> nodes;
  std::vector<uint64_t> requestedIds;
  std::vector<Line> lines;

  void add(std::string what, std::string name, std::string signature) {
    lines.push_back({kj::mv(what), kj::mv(name), kj::mv(signature)});
  }

  // "dir/common.capnp:Node.spec" -> "common.capnp:Node.spec": the record must not depend on
  // where the schemas were compiled from.
  static std::string displayName(Node::Reader node) {
    std::string name = node.getDisplayName();
    size_t colon = name.find(':');
    size_t slash = name.rfind('/', colon);
    return slash == std::string::npos ? name : name.substr(slash + 1);
  }

  std::string nameOf(uint64_t id) const {
    auto it = nodes.find(id);
    return it == nodes.end() ? hexId(id) : displayName(it->second);
  }

  // A node belongs to a requested file if its display name starts with that file's name. Implicit
  // method parameter structs have scopeId 0, so the scope chain cannot be used.
  bool isRequested(Node::Reader node) const {
    std::string name = node.getDisplayName();
    std::string file = name.substr(0, name.find(':'));
    for (uint64_t id : requestedIds) {
      auto it = nodes.find(id);
      if (it != nodes.end() && std::string(it->second.getDisplayName()) == file) return true;
    }
    return false;
  }

  std::string typeName(Type::Reader type) const {
    switch (type.which()) {
      case Type::VOID: return "Void";
      case Type::BOOL: return "Bool";
      case Type::INT8: return "Int8";
      case Type::INT16: return "Int16";
      case Type::INT32: return "Int32";
      case Type::INT64: return "Int64";
      case Type::UINT8: return "UInt8";
      case Type::UINT16: return "UInt16";
      case Type::UINT32: return "UInt32";
      case Type::UINT64: return "UInt64";
      case Type::FLOAT32: return "Float32";
      case Type::FLOAT64: return "Float64";
      case Type::TEXT: return "Text";
      case Type::DATA: return "Data";
      case Type::LIST: return "List(" + typeName(type.getList().getElementType()) + ")";
      case Type::ENUM: return "enum:" + hexId(type.getEnum().getTypeId()) + branded(type.getEnum().getBrand());
      case Type::STRUCT:
        return "struct:" + hexId(type.getStruct().getTypeId()) + branded(type.getStruct().getBrand());
      case Type::INTERFACE:
        return "interface:" + hexId(type.getInterface().getTypeId()) +
               branded(type.getInterface().getBrand());
      case Type::ANY_POINTER: return "AnyPointer";
    }
    return "unknown-type";
  }

  static bool isPointer(Type::Reader type) {
    switch (type.which()) {
      case Type::TEXT:
      case Type::DATA:
      case Type::LIST:
      case Type::STRUCT:
      case Type::INTERFACE:
      case Type::ANY_POINTER:
        return true;
      default:
        return false;
    }
  }

  static std::string branded(capnp::schema::Brand::Reader brand) {
    return brand.getScopes().size() == 0 ? "" : "(generic)";
  }

  // Defaults are part of the wire contract: a reader fills an absent field with its default.
  static std::string defaultValue(Value::Reader value) {
    switch (value.which()) {
      case Value::BOOL: return value.getBool() ? "true" : "false";
      case Value::INT8: return std::to_string(value.getInt8());
      case Value::INT16: return std::to_string(value.getInt16());
      case Value::INT32: return std::to_string(value.getInt32());
      case Value::INT64: return std::to_string(value.getInt64());
      case Value::UINT8: return std::to_string(value.getUint8());
      case Value::UINT16: return std::to_string(value.getUint16());
      case Value::UINT32: return std::to_string(value.getUint32());
      case Value::UINT64: return std::to_string(value.getUint64());
      case Value::FLOAT32: {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.9g", value.getFloat32());
        return buf;
      }
      case Value::FLOAT64: {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.17g", value.getFloat64());
        return buf;
      }
      case Value::ENUM: return std::to_string(value.getEnum());
      case Value::TEXT: return "\"" + std::string(value.getText()) + "\"";
      case Value::DATA: return "data:" + sha256Hex(asString(value.getData()));
      case Value::VOID: return "void";
      case Value::LIST: return "list:" + pointerDigest(value.getList());
      case Value::STRUCT: return "struct:" + pointerDigest(value.getStruct());
      case Value::ANY_POINTER: return "pointer:" + pointerDigest(value.getAnyPointer());
      case Value::INTERFACE: return "null";
    }
    return "unknown-value";
  }

  static std::string asString(capnp::Data::Reader data) {
    return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
  }

  // A list or struct default, copied into a message of its own and digested: the copy is laid out
  // deterministically, so equal defaults give equal digests.
  static std::string pointerDigest(capnp::AnyPointer::Reader pointer) {
    capnp::MallocMessageBuilder message;
    message.getRoot<capnp::AnyPointer>().set(pointer);
    auto words = capnp::messageToFlatArray(message);
    auto bytes = words.asBytes();
    return sha256Hex(std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size())).substr(0, 16);
  }

  void recordNode(Node::Reader node) {
    std::string name = displayName(node);
    switch (node.which()) {
      case Node::FILE:
        add("file", name, hexId(node.getId()));
        break;
      case Node::STRUCT: {
        auto s = node.getStruct();
        add("node", name, std::string(s.getIsGroup() ? "group " : "struct ") + hexId(node.getId()));
        if (s.getDiscriminantCount() > 0) {
          add("union", name, "discriminantOffset=" + std::to_string(s.getDiscriminantOffset()));
        }
        for (auto field : s.getFields()) recordField(name, field);
        break;
      }
      case Node::ENUM:
        add("node", name, "enum " + hexId(node.getId()));
        {
          auto enumerants = node.getEnum().getEnumerants();
          for (unsigned i = 0; i < enumerants.size(); ++i) {
            add("enumerant", name + "." + std::string(enumerants[i].getName()), "@" + std::to_string(i));
          }
        }
        break;
      case Node::INTERFACE: {
        auto iface = node.getInterface();
        add("node", name, "interface " + hexId(node.getId()));
        auto methods = iface.getMethods();
        for (unsigned i = 0; i < methods.size(); ++i) {
          auto m = methods[i];
          add("method", name + "." + std::string(m.getName()),
              "@" + std::to_string(i) + " (" + hexId(m.getParamStructType()) + ") -> (" +
                  hexId(m.getResultStructType()) + ")");
        }
        for (auto super : iface.getSuperclasses()) {
          add("extends", name + ">" + nameOf(super.getId()), hexId(super.getId()));
        }
        break;
      }
      case Node::CONST: {
        auto c = node.getConst();
        add("const", name, ":" + typeName(c.getType()) + " = " + defaultValue(c.getValue()));
        break;
      }
      case Node::ANNOTATION:
        add("node", name, "annotation " + hexId(node.getId()) + " :" + typeName(node.getAnnotation().getType()));
        break;
    }
  }

  void recordField(const std::string& scope, capnp::schema::Field::Reader field) {
    std::string sig;
    if (field.getOrdinal().isExplicit()) sig += "@" + std::to_string(field.getOrdinal().getExplicit()) + " ";
    switch (field.which()) {
      case capnp::schema::Field::SLOT: {
        auto slot = field.getSlot();
        sig += ":" + typeName(slot.getType()) + " offset=" + std::to_string(slot.getOffset());
        // A primitive's default is always in force (0 when unwritten); a pointer field's only when
        // the schema gives one.
        if (isPointer(slot.getType()) ? slot.getHadExplicitDefault() : true) {
          sig += " default=" + defaultValue(slot.getDefaultValue());
        }
        break;
      }
      case capnp::schema::Field::GROUP:
        sig += "group " + hexId(field.getGroup().getTypeId());
        break;
    }
    if (field.getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT) {
      sig += " union=" + std::to_string(field.getDiscriminantValue());
    }
    add("field", scope + "." + std::string(field.getName()), sig);
  }
};

int recordCommand() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1ull << 30;
  options.nestingLimit = 256;
  capnp::StreamFdMessageReader reader(STDIN_FILENO, options);
  auto request = reader.getRoot<capnp::schema::CodeGeneratorRequest>();
  if (request.getRequestedFiles().size() == 0) {
    std::cerr << "swarm-abi-check: the request on stdin names no files; pipe in "
                 "`capnp compile -o- <schema files>`\n";
    return 2;
  }
  std::cout << "# swarm-kernel schema record (format 1). Generated; do not edit by hand.\n"
               "# Regenerate after adding to a schema: cmake --build <build> --target update-abi-records\n"
               "# (see docs/sdk.md, \"ABI and schema rules\"). One line per item: <what> <name> <signature>.\n";
  for (auto& line : Recorder(request).record()) std::cout << line << '\n';
  return 0;
}

// ---- compare -----------------------------------------------------------------------------------

bool readRecord(const std::string& path, std::map<std::string, std::string>& out) {
  std::ifstream file(path);
  if (!file) {
    std::cerr << "swarm-abi-check: cannot read record " << path << "\n";
    return false;
  }
  std::string line;
  unsigned number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    size_t first = line.find(' ');
    size_t second = first == std::string::npos ? first : line.find(' ', first + 1);
    if (second == std::string::npos) {
      std::cerr << "swarm-abi-check: " << path << ":" << number
                << ": not '<what> <name> <signature>'; regenerate the record\n";
      return false;
    }
    out[line.substr(0, second)] = line.substr(second + 1);
  }
  return true;
}

int compareCommand(const std::string& committedPath, const std::string& currentPath) {
  std::map<std::string, std::string> committed, current;
  if (!readRecord(committedPath, committed) || !readRecord(currentPath, current)) return 2;
  if (committed.empty()) {
    std::cerr << "swarm-abi-check: " << committedPath << " is empty; regenerate it\n";
    return 2;
  }
  unsigned breaks = 0;
  for (auto& [key, signature] : committed) {
    auto it = current.find(key);
    if (it == current.end()) {
      std::cout << "BREAKING: " << key << " (" << signature << ") was removed or renamed\n";
      ++breaks;
    } else if (it->second != signature) {
      std::cout << "BREAKING: " << key << " changed from '" << signature << "' to '" << it->second << "'\n";
      ++breaks;
    }
  }
  size_t additions = 0;
  for (auto& [key, signature] : current) additions += committed.count(key) == 0;
  if (breaks > 0) {
    std::cout << breaks << " breaking schema change(s). Schemas evolve by Cap'n Proto's rules only: "
                 "add fields, enumerants and methods at new ordinals; never remove, rename, renumber "
                 "or retype (docs/sdk.md).\n";
    return 1;
  }
  std::cout << "schemas compatible with " << committedPath << " (" << committed.size() << " items";
  if (additions > 0) {
    std::cout << "; " << additions
              << " additions not yet pinned: run `cmake --build <build> --target update-abi-records`";
  }
  std::cout << ")\n";
  return 0;
}

int usage() {
  std::cerr << "usage: swarm-abi-check header <plugin.h>\n"
               "       swarm-abi-check record < <capnp compile -o- output>\n"
               "       swarm-abi-check compare <committed-record> <current-record>\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 2 && args[0] == "header") return headerCommand(args[1]);
    if (args.size() == 1 && args[0] == "record") return recordCommand();
    if (args.size() == 3 && args[0] == "compare") return compareCommand(args[1], args[2]);
  } catch (const kj::Exception& e) {
    std::cerr << "swarm-abi-check: " << e.getDescription().cStr()
              << " (is stdin the output of `capnp compile -o-`?)\n";
    return 2;
  }
  return usage();
}
