#include "object_id.h"

#include <sodium.h>

#include <array>
#include <memory>
#include <random>
#include <stdexcept>

namespace swarm::store {
namespace {

constexpr size_t kEntropyBytes = 17;
constexpr size_t kIdLength = 25;

}  // namespace

std::string newObjectId(const RandomSource& random) {
  std::array<kj::byte, kEntropyBytes> number{};
  random(kj::arrayPtr(number.data(), number.size()));
  number[0] |= 0x80;  // 2^135 <= number < 2^136: always 27 digits, so no padding is needed

  // Long division by 36, least significant digit first.
  std::string digits;
  bool nonZero = true;
  while (nonZero) {
    unsigned remainder = 0;
    nonZero = false;
    for (kj::byte& b : number) {
      unsigned value = remainder * 256 + b;
      b = static_cast<kj::byte>(value / 36);
      remainder = value % 36;
      nonZero = nonZero || b != 0;
    }
    digits += "0123456789abcdefghijklmnopqrstuvwxyz"[remainder];
  }
  std::string id(digits.rbegin(), digits.rend());
  // The first digit is skewed by the forced top bit; the next 25 are uniform.
  return id.substr(1, kIdLength);
}

RandomSource systemRandom() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  return [](kj::ArrayPtr<kj::byte> buffer) { randombytes_buf(buffer.begin(), buffer.size()); };
}

RandomSource seededRandom(uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  return [engine](kj::ArrayPtr<kj::byte> buffer) {
    for (kj::byte& b : buffer) b = static_cast<kj::byte>((*engine)() & 0xff);
  };
}

}  // namespace swarm::store
