// Key material a manager keeps at rest: the unlock key (autolock) and what it seals.
//
// With autolock, the cluster's unlock key (`SWMKEY-1-<base64 of 32 random bytes>`, as Docker
// Swarm prints it) seals each manager's Raft data key and TLS private key on disk, so a restarted
// manager can do nothing until an operator unlocks it. The unlock key is high-entropy, so it is
// the sealing key itself (no password hashing). Sealing is XChaCha20-Poly1305 with a random
// nonce and a purpose string as associated data, so a sealed data key cannot pass for a sealed
// TLS key.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace swarm::kernel {

using SecretKey = std::array<uint8_t, 32>;

// 32 random bytes from libsodium.
SecretKey randomKey();

// "SWMKEY-1-" + base64 (standard alphabet, no padding) of the key.
std::string formatUnlockKey(const SecretKey& key);

// The inverse; throws UserError saying what a valid key looks like.
SecretKey parseUnlockKey(std::string_view text);

// nonce || ciphertext+tag. `purpose` is bound as associated data.
std::string seal(const SecretKey& key, std::string_view plaintext, std::string_view purpose);

// Throws UserError("... the unlock key does not open ...") when the key or purpose is wrong or
// the bytes were changed; never returns garbage.
std::string unseal(const SecretKey& key, std::string_view sealed, std::string_view purpose);

}  // namespace swarm::kernel
