#include "json.h"

#include <cstdlib>
#include <stdexcept>

namespace json {
namespace {

constexpr int kMaxDepth = 64;  // deeper nesting is no manifest; bounds the recursion

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Value ParseDocument() {
    Value value = ParseValue(0);
    SkipSpace();
    if (pos_ != text_.size()) Fail("expected the end of the text");
    return value;
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    throw std::runtime_error("JSON byte " + std::to_string(pos_) + ": " + what);
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view token) {
    if (text_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }

  void Expect(char c) {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != c) Fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  Value ParseValue(int depth) {
    if (depth > kMaxDepth) Fail("nested too deeply");
    SkipSpace();
    if (pos_ >= text_.size()) Fail("expected a value");
    Value value;
    char c = text_[pos_];
    if (c == '{') {
      value.kind = Value::Kind::kObject;
      ++pos_;
      SkipSpace();
      if (Consume("}")) return value;
      do {
        SkipSpace();
        std::string key = ParseString();
        Expect(':');
        value.object.emplace_back(std::move(key), ParseValue(depth + 1));
        SkipSpace();
      } while (Consume(","));
      Expect('}');
    } else if (c == '[') {
      value.kind = Value::Kind::kArray;
      ++pos_;
      SkipSpace();
      if (Consume("]")) return value;
      do {
        value.array.push_back(ParseValue(depth + 1));
        SkipSpace();
      } while (Consume(","));
      Expect(']');
    } else if (c == '"') {
      value.kind = Value::Kind::kString;
      value.string = ParseString();
    } else if (Consume("true") || Consume("false")) {
      value.kind = Value::Kind::kBool;
      value.boolean = c == 't';
    } else if (Consume("null")) {
      value.kind = Value::Kind::kNull;
    } else {
      value.kind = Value::Kind::kNumber;
      value.number = ParseNumber();
    }
    return value;
  }

  double ParseNumber() {
    size_t start = pos_;
    while (pos_ < text_.size() && std::string_view("+-0123456789.eE").find(text_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
    std::string digits(text_.substr(start, pos_ - start));
    char* end = nullptr;
    double number = std::strtod(digits.c_str(), &end);
    if (digits.empty() || end != digits.c_str() + digits.size()) {
      pos_ = start;
      Fail("expected a value");
    }
    return number;
  }

  unsigned ParseHex4() {
    if (pos_ + 4 > text_.size()) Fail("expected 4 hex digits");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      code <<= 4;
      if (c >= '0' && c <= '9') code |= c - '0';
      else if (c >= 'a' && c <= 'f') code |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') code |= c - 'A' + 10;
      else Fail("expected 4 hex digits");
    }
    return code;
  }

  static void AppendUtf8(unsigned code, std::string* out) {
    if (code < 0x80) {
      *out += static_cast<char>(code);
    } else if (code < 0x800) {
      *out += static_cast<char>(0xC0 | (code >> 6));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      *out += static_cast<char>(0xE0 | (code >> 12));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (code >> 18));
      *out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::string ParseString() {
    if (pos_ >= text_.size() || text_[pos_] != '"') Fail("expected a string");
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) Fail("unterminated string");
      char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) Fail("unterminated string");
      char escape = text_[pos_++];
      switch (escape) {
        case '"': case '\\': case '/': out += escape; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = ParseHex4();
          if (code >= 0xD800 && code < 0xDC00 && Consume("\\u")) {  // a UTF-16 surrogate pair
            unsigned low = ParseHex4();
            if (low < 0xDC00 || low >= 0xE000) Fail("expected a low surrogate");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(code, &out);
          break;
        }
        default: Fail("bad escape");
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

const Value* Value::Find(std::string_view key) const {
  for (const auto& [name, value] : object) {
    if (name == key) return &value;
  }
  return nullptr;
}

Value Parse(std::string_view text) { return Parser(text).ParseDocument(); }

}  // namespace json
