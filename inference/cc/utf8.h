// UTF-8 validation shared by the C API (tokens) and the command line (input lines).
#ifndef NER_UTF8_H_
#define NER_UTF8_H_

#include <string>
#include <string_view>

namespace utf8 {

// Offset of the first byte sequence that is not UTF-8 as Python's strict decoder judges it
// (no overlong forms, no surrogates, nothing above U+10FFFF), or npos if all of `text` is.
inline size_t FindInvalid(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    unsigned char lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t continuation;
    // The first continuation byte's range excludes overlong forms, surrogates and > U+10FFFF.
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      continuation = 2;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation = 3;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return i;
    }
    if (text.size() - i <= continuation) return i;
    for (size_t k = 1; k <= continuation; ++k) {
      unsigned char byte = static_cast<unsigned char>(text[i + k]);
      if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xBF)) return i;
    }
    i += continuation + 1;
  }
  return std::string_view::npos;
}

// `text` with each byte that FindInvalid refuses written as \xNN: a message that quotes input
// (nlohmann/json's do) stays UTF-8 for callers that decode it strictly.
inline std::string EscapeInvalid(std::string_view text) {
  constexpr char kHex[] = "0123456789abcdef";
  std::string escaped;
  for (size_t bad = FindInvalid(text); bad != std::string_view::npos; bad = FindInvalid(text)) {
    auto byte = static_cast<unsigned char>(text[bad]);
    escaped.append(text.substr(0, bad)).append("\\x").append(1, kHex[byte >> 4]).append(1, kHex[byte & 0xF]);
    text.remove_prefix(bad + 1);
  }
  return escaped.append(text);
}

}  // namespace utf8

#endif  // NER_UTF8_H_
