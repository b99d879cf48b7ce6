// Derived seeds: every random stream (tile noise, training crops and noise) is a pure function
// of (seed, indices), so results do not depend on batching, order, device or resumption.
#pragma once

#include <cstdint>

namespace sinsr {

// splitmix64 of (a, b).
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace sinsr
