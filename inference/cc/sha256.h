// SHA-256 (FIPS 180-4), for checking a folder's files against its integrity manifest
// (integrity.json, ner/integrity.py) without a crypto library.
#ifndef NER_SHA256_H_
#define NER_SHA256_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace sha256 {

class Hasher {
 public:
  Hasher();
  void Update(const void* data, size_t size);
  // The digest as 64 lowercase hex digits (as Python's hexdigest()); the hasher is spent after.
  std::string HexDigest();

 private:
  void Compress(const uint8_t* block);
  uint32_t state_[8];
  uint8_t block_[64];
  size_t block_size_ = 0;   // bytes waiting in block_
  uint64_t total_bytes_ = 0;
};

}  // namespace sha256

#endif  // NER_SHA256_H_
