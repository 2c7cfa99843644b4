#include "keys.h"

#include "errors.h"

#include <sodium.h>

#include <stdexcept>

namespace swarm::kernel {
namespace {

constexpr std::string_view kUnlockKeyPrefix = "SWMKEY-1-";

void initSodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
}

}  // namespace

SecretKey randomKey() {
  initSodium();
  SecretKey key;
  randombytes_buf(key.data(), key.size());
  return key;
}

std::string formatUnlockKey(const SecretKey& key) {
  initSodium();
  constexpr int kVariant = sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  std::string text(sodium_base64_ENCODED_LEN(key.size(), kVariant), '\0');
  sodium_bin2base64(text.data(), text.size(), key.data(), key.size(), kVariant);
  text.resize(text.find('\0'));
  return std::string(kUnlockKeyPrefix) + text;
}

SecretKey parseUnlockKey(std::string_view text) {
  initSodium();
  const std::string expected =
      "an unlock key looks like SWMKEY-1- followed by 43 base64 characters, as printed by "
      "'swarm init --autolock' or 'swarm unlock-key'";
  if (text.substr(0, kUnlockKeyPrefix.size()) != kUnlockKeyPrefix) {
    throw UserError("invalid unlock key: it does not start with SWMKEY-1-; " + expected);
  }
  std::string_view body = text.substr(kUnlockKeyPrefix.size());
  SecretKey key;
  size_t length = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(key.data(), key.size(), body.data(), body.size(), nullptr, &length,
                             &end, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  if (rc != 0 || length != key.size() || end != body.data() + body.size()) {
    throw UserError("invalid unlock key: the part after SWMKEY-1- is not 32 bytes of base64; " +
                    expected);
  }
  return key;
}

std::string seal(const SecretKey& key, std::string_view plaintext, std::string_view purpose) {
  initSodium();
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  std::string out(kNonce + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(bytes, kNonce);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      bytes + kNonce, &written, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(purpose.data()), purpose.size(),
      nullptr, bytes, key.data());
  out.resize(kNonce + written);
  return out;
}

std::string unseal(const SecretKey& key, std::string_view sealed, std::string_view purpose) {
  initSodium();
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (sealed.size() < kNonce + kTag) {
    throw UserError("the sealed " + std::string(purpose) + " is truncated (" +
                    std::to_string(sealed.size()) + " bytes); the node's state is damaged");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(sealed.data());
  std::string out(sealed.size() - kNonce - kTag, '\0');
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &written, nullptr, bytes + kNonce,
          sealed.size() - kNonce, reinterpret_cast<const unsigned char*>(purpose.data()),
          purpose.size(), bytes, key.data()) != 0) {
    throw UserError("the unlock key does not open this node's sealed " + std::string(purpose) +
                    ": give the cluster's current unlock key (swarm unlock-key on another manager "
                    "shows it)");
  }
  out.resize(written);
  return out;
}

}  // namespace swarm::kernel
