#include "record.h"

#include "crc32c.h"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace swarm::raft::storage {

namespace {

constexpr size_t kAdBytes = 19;

std::array<unsigned char, kAdBytes> associatedData(const RecordPlace& place, RecordType type) {
  std::array<unsigned char, kAdBytes> ad{};
  ad[0] = static_cast<unsigned char>(place.kind);
  ad[1] = kFormatVersion;
  ad[2] = static_cast<unsigned char>(type);
  std::memcpy(&ad[3], &place.fileNumber, 8);
  std::memcpy(&ad[11], &place.ordinal, 8);
  return ad;
}

uint32_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

bool knownRecordType(uint8_t type) {
  switch (static_cast<RecordType>(type)) {
    case RecordType::segmentHeader:
    case RecordType::state:
    case RecordType::snapshotMarker:
    case RecordType::removed:
    case RecordType::snapshotMeta:
    case RecordType::snapshotChunk:
    case RecordType::snapshotEnd:
      return true;
  }
  return false;
}

void appendRecord(std::string& out, const DataKey& key, const RecordPlace& place, RecordType type,
                  std::string_view payload) {
  if (payload.size() > kMaxBodyBytes - kSealOverhead) {
    throw std::length_error("record of " + std::to_string(payload.size()) +
                            " bytes exceeds the limit of " +
                            std::to_string(kMaxBodyBytes - kSealOverhead));
  }
  auto bodyLen = static_cast<uint32_t>(payload.size() + kSealOverhead);
  size_t start = out.size();
  out.resize(start + kFrameHeaderBytes + bodyLen);
  char* header = out.data() + start;
  auto* body = reinterpret_cast<unsigned char*>(header + kFrameHeaderBytes);

  randombytes_buf(body, kNonceBytes);
  auto ad = associatedData(place, type);
  unsigned long long cipherLen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      body + kNonceBytes, &cipherLen, reinterpret_cast<const unsigned char*>(payload.data()),
      payload.size(), ad.data(), ad.size(), nullptr, body, key.data());

  std::memcpy(header, &bodyLen, 4);
  header[4] = static_cast<char>(type);
  header[5] = header[6] = header[7] = 0;
  uint32_t bodyCrc = crc32c(body, bodyLen);
  std::memcpy(header + 8, &bodyCrc, 4);
  uint32_t headerCrc = crc32c(header, 12);
  std::memcpy(header + 12, &headerCrc, 4);
}

Frame parseFrameHeader(std::string_view header) {
  Frame f;
  f.status = FrameStatus::badHeader;
  if (crc32c(header.data(), 12) != load32(header.data() + 12)) return f;
  if (header[5] != 0 || header[6] != 0 || header[7] != 0) return f;
  uint32_t bodyLen = load32(header.data());
  auto type = static_cast<uint8_t>(header[4]);
  if (bodyLen < kSealOverhead || bodyLen > kMaxBodyBytes || !knownRecordType(type)) return f;
  f.status = FrameStatus::ok;
  f.type = static_cast<RecordType>(type);
  f.bodyLen = bodyLen;
  return f;
}

Frame parseFrame(std::string_view bytes) {
  if (bytes.size() < kFrameHeaderBytes) return Frame{};
  Frame f = parseFrameHeader(bytes);
  if (f.status != FrameStatus::ok) return f;
  if (bytes.size() - kFrameHeaderBytes < f.bodyLen) {
    f.status = FrameStatus::incomplete;
    return f;
  }
  f.body = bytes.substr(kFrameHeaderBytes, f.bodyLen);
  if (crc32c(f.body) != load32(bytes.data() + 8)) {
    f.status = FrameStatus::badBody;
    f.body = {};
  }
  return f;
}

bool validFrameFrom(std::string_view bytes, size_t from) {
  for (size_t q = from; q + kFrameHeaderBytes <= bytes.size(); ++q) {
    if (parseFrame(bytes.substr(q)).status == FrameStatus::ok) return true;
  }
  return false;
}

bool openRecord(const DataKey& key, const RecordPlace& place, RecordType type,
                std::string_view body, std::string& payload) {
  if (body.size() < kSealOverhead) return false;
  auto ad = associatedData(place, type);
  auto* nonce = reinterpret_cast<const unsigned char*>(body.data());
  payload.resize(body.size() - kSealOverhead);
  unsigned long long plainLen = 0;
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<unsigned char*>(payload.data()), &plainLen, nullptr, nonce + kNonceBytes,
      body.size() - kNonceBytes, ad.data(), ad.size(), nonce, key.data());
  if (rc != 0) {
    payload.clear();
    return false;
  }
  payload.resize(plainLen);
  return true;
}

}  // namespace swarm::raft::storage
