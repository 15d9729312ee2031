// A small JSON reader for serving.json: the runner needs a few names and numbers from it, and
// the TensorFlow wheel ships no JSON library that links without its internal symbols.
#ifndef NER_JSON_H_
#define NER_JSON_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace json {

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in file order

  // The member `key` of an object; nullptr if this is not an object or has no such member.
  const Value* Find(std::string_view key) const;
};

// Parses one JSON text; throws std::runtime_error naming the byte offset of the first error.
Value Parse(std::string_view text);

}  // namespace json

#endif  // NER_JSON_H_
