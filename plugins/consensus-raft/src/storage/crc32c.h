// CRC32C (Castagnoli), the checksum on every stored record. It catches torn writes and media
// errors before decryption is attempted, which is what lets recovery tell a damaged file from a
// wrong data key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace swarm::raft::storage {

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
// `crc` continues a previous call: crc32c(b, n, crc32c(a, m)) == crc32c(a ++ b).

inline uint32_t crc32c(std::string_view bytes, uint32_t crc = 0) {
  return crc32c(bytes.data(), bytes.size(), crc);
}

}  // namespace swarm::raft::storage
