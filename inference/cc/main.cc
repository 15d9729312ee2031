// tagger: tags stdin with a frozen (or export) model folder through libtagger, one sentence at a
// time, or one document at a time for a model that reads the words around a sentence
// (bert_context=document: tagger_context_words() > 0).
//
//   tagger FOLDER [--threads N] [--format conll|text] [--json] [--max_line_bytes N] [--max_sentence_tokens N]
//          [--verbose] < input > output
//
// conll: the input lines with the predicted IOB2 tag appended as a last column, sentences
//   separated by one blank line, -DOCSTART- lines tagged O (inference.py's pred.txt). A document
//   runs from one -DOCSTART- line to the next (or the end of the input).
// text:  one raw text (a sentence) per line, tokenized by the folder's tokenizer graph; writes
//   `token tag` lines and a blank line after each text, or with --json one JSON object per text
//   (text, tokens, tags, confidences, entities with character offsets); lines without a token are
//   skipped. Both are byte for byte what `inference.py --format text [--json]` writes. A blank
//   line (only whitespace, as Python's str.strip() sees it) ends a document, and so does the end.
// A model that reads document context reads a whole document before it tags and writes it.
// stderr gets the load time and the mean and median tagging time per sentence (per document for
// a model that reads context), excluding the first (which pays for TensorFlow's one-time graph
// optimisation). TensorFlow's own log lines stay off unless --verbose (or NER_VERBOSE=1) or the
// caller's TF_CPP_MIN_LOG_LEVEL asks for them.
// Input is bounded as inference.py bounds it (ner/data/limits.py): lines of at most
// --max_line_bytes (65536) bytes, sentences of at most --max_sentence_tokens (10000) tokens. Input
// in another format is refused with inference.py's words: a CoNLL column after those the model
// reads that holds no tag, CoNLL given as text, --json without --format text. A NUL in raw text
// separates tokens as in every runtime (ForCApi).
// Bad input stops with `<stdin>:LINE: what was expected` and exit status 1; output is flushed
// after every sentence (document), so the lines before the bad one have been written: those of
// its document tagged with the part of the document read before it.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tagger.h"
#include "utf8.h"

namespace {

// The input limits of ner/data/limits.py, with the same defaults, flags and messages: far beyond any
// real token line or sentence, they bound what one line or one sentence costs.
size_t max_line_bytes = 1 << 16;      // --max_line_bytes
size_t max_sentence_tokens = 10000;   // --max_sentence_tokens
constexpr std::string_view kWhitespace = " \t\n\r\v\f";  // Python's string.whitespace, as input.py splits
constexpr std::string_view kDocstart = "-DOCSTART-";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// libtagger's functions, loaded at run time (LoadLibtagger) rather than linked: TensorFlow reads
// TF_ENABLE_ONEDNN_OPTS once, when its library loads, and a linked library loads before main.
namespace api {
decltype(&::tagger_open) open;
decltype(&::tagger_close) close;
decltype(&::tagger_num_feature_columns) num_feature_columns;
decltype(&::tagger_feature_column) feature_column;
decltype(&::tagger_context_words) context_words;
decltype(&::tagger_tag) tag;
decltype(&::tagger_tag_document) tag_document;
decltype(&::tagger_tag_text) tag_text;
decltype(&::tagger_tag_text_document) tag_text_document;
decltype(&::tagger_result_sentence_lengths) result_sentence_lengths;
decltype(&::tagger_result_size) result_size;
decltype(&::tagger_result_tags) result_tags;
decltype(&::tagger_result_confidences) result_confidences;
decltype(&::tagger_result_tokens) result_tokens;
decltype(&::tagger_result_starts) result_starts;
decltype(&::tagger_result_ends) result_ends;
decltype(&::tagger_result_free) result_free;
decltype(&::tagger_last_error) last_error;
}  // namespace api

// Turns oneDNN off unless the caller chose (its kernels pay a set-up cost per call that one
// sentence never earns back: the median CoNLL-2003 test sentence took 15% longer with them),
// and, unless `verbose`, TensorFlow's log lines (as it loads: CPU features, an MLIR pass)
// unless the caller chose a level; then loads libtagger.so from beside this program (the build
// folder) or ../lib (installed). Returns an error message, or "" on success.
std::string LoadLibtagger(bool verbose) {
  setenv("TF_ENABLE_ONEDNN_OPTS", "0", /*overwrite=*/0);
  if (!verbose) setenv("TF_CPP_MIN_LOG_LEVEL", "3", /*overwrite=*/0);
  char self[4096];
  ssize_t size = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (size <= 0) return "cannot find this program's folder";
  std::string folder(self, static_cast<size_t>(size));
  folder.resize(folder.rfind('/') + 1);
  void* library = nullptr;
  std::string errors;
  for (const std::string& path : {folder + "libtagger.so", folder + "../lib/libtagger.so"}) {
    if ((library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    errors += std::string(dlerror()) + "; ";
  }
  if (library == nullptr) return "cannot load libtagger.so: " + errors;
  auto bind = [library](auto& function, const char* name) {
    function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(dlsym(library, name));
    return function != nullptr;
  };
  if (!(bind(api::open, "tagger_open") && bind(api::close, "tagger_close") &&
        bind(api::num_feature_columns, "tagger_num_feature_columns") &&
        bind(api::feature_column, "tagger_feature_column") && bind(api::context_words, "tagger_context_words") &&
        bind(api::tag, "tagger_tag") && bind(api::tag_document, "tagger_tag_document") &&
        bind(api::tag_text, "tagger_tag_text") && bind(api::tag_text_document, "tagger_tag_text_document") &&
        bind(api::result_sentence_lengths, "tagger_result_sentence_lengths") &&
        bind(api::result_size, "tagger_result_size") &&
        bind(api::result_tags, "tagger_result_tags") && bind(api::result_confidences, "tagger_result_confidences") &&
        bind(api::result_tokens, "tagger_result_tokens") && bind(api::result_starts, "tagger_result_starts") &&
        bind(api::result_ends, "tagger_result_ends") && bind(api::result_free, "tagger_result_free") &&
        bind(api::last_error, "tagger_last_error"))) {
    return "libtagger.so lacks a function of tagger.h";
  }
  return "";
}

using Clock = std::chrono::steady_clock;

double Milliseconds(Clock::duration duration) { return std::chrono::duration<double, std::milli>(duration).count(); }

struct InputError : std::runtime_error {
  InputError(size_t line, const std::string& what) : std::runtime_error("<stdin>:" + std::to_string(line) + ": " + what) {}
};

constexpr std::string_view kJsonNeedsText = "--json writes tagged raw text: use it with --format text";

// Lines of a stream without their "\n" and a trailing "\r", checked for length and UTF-8. A UTF-8
// BOM that starts the first line is dropped from CoNLL (as input.py drops it) and kept in raw
// text, where the tokenizer reads it as an invisible character, as inference.py does. CoNLL
// lines holding a NUL are refused (a token would end there); raw text may hold one (ForCApi).
class LineReader {
 public:
  explicit LineReader(std::FILE* in, bool text = false) : in_(in), drop_bom_(!text), allow_nul_(text) {}

  bool Next(std::string* line) {
    line->clear();
    int c;
    while ((c = getc_unlocked(in_)) != EOF && c != '\n') {
      if (line->size() == max_line_bytes) {
        throw InputError(number_ + 1, "expected a line of at most " + std::to_string(max_line_bytes) +
                                          " bytes (--max_line_bytes raises it)");
      }
      line->push_back(static_cast<char>(c));
    }
    if (std::ferror(in_)) throw std::runtime_error("cannot read stdin");
    if (c == EOF && line->empty()) return false;
    ++number_;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    if (drop_bom_ && number_ == 1 && std::string_view(*line).substr(0, kUtf8Bom.size()) == kUtf8Bom) {
      line->erase(0, kUtf8Bom.size());
    }
    size_t nul = allow_nul_ ? std::string::npos : line->find('\0');
    if (nul != std::string::npos) {  // the C API takes NUL-terminated tokens
      throw InputError(number_, "expected text, found a NUL byte at byte offset " + std::to_string(nul) + " of the line");
    }
    size_t bad = utf8::FindInvalid(*line);
    if (bad != std::string_view::npos) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>((*line)[bad]));
      throw InputError(number_, std::string("expected UTF-8 text, found invalid byte ") + byte + " at byte offset " +
                                    std::to_string(bad) + " of the line");
    }
    return true;
  }

  size_t number() const { return number_; }

 private:
  std::FILE* in_;
  bool drop_bom_;
  bool allow_nul_;
  size_t number_ = 0;
};

std::vector<std::string> SplitWhitespace(std::string_view text) {
  std::vector<std::string> fields;
  size_t start = text.find_first_not_of(kWhitespace);
  while (start != std::string_view::npos) {
    size_t end = std::min(text.find_first_of(kWhitespace, start), text.size());
    fields.emplace_back(text.substr(start, end - start));
    start = text.find_first_not_of(kWhitespace, end);
  }
  return fields;
}

// Whether a line of raw text (UTF-8, checked) is blank as Python's str.strip() sees it: only
// characters of str.isspace(). Such a line ends a document.
bool IsBlank(std::string_view line) {
  for (size_t i = 0; i < line.size();) {
    auto lead = static_cast<unsigned char>(line[i]);
    size_t size = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    char32_t c = size == 1 ? lead : lead & (0x7F >> size);
    for (size_t k = 1; k < size && i + k < line.size(); ++k) c = (c << 6) | (static_cast<unsigned char>(line[i + k]) & 0x3F);
    i += size;
    bool space = (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
                 (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
                 c == 0x3000;
    if (!space) return false;
  }
  return true;
}

// A CoNLL line's fields as input.py splits them: at every tab if the line has one, else at
// whitespace runs; none for a blank line.
std::vector<std::string> ConllFields(std::string_view line) {
  if (line.find_first_not_of(kWhitespace) == std::string_view::npos) return {};
  if (line.find('\t') == std::string_view::npos) return SplitWhitespace(line);
  std::vector<std::string> fields;
  size_t start = 0, tab;
  while ((tab = line.find('\t', start)) != std::string_view::npos) {
    fields.emplace_back(line.substr(start, tab - start));
    start = tab + 1;
  }
  fields.emplace_back(line.substr(start));
  return fields;
}

// Whether a field is a tag of some scheme: O, or B-/I-/E-/S- and a type (ner/data/schemes.py's is_valid_tag).
bool IsTag(std::string_view field) {
  return field == "O" || (field.size() > 2 && std::string_view("BIES").find(field[0]) != std::string_view::npos &&
                          field[1] == '-');
}

// Python's repr() of a field, as ner/data/conll.py's messages quote one: in single quotes (double
// when it holds a single and no double quote), with backslash escapes for \\, the quote, \t \n \r,
// other C0 and C1 controls, DEL, U+00A0 and U+00AD (the characters of a token line that Python does
// not print; other non-printable code points are rarer still and are written as they are).
std::string PythonRepr(std::string_view field) {
  char quote = field.find('\'') != std::string_view::npos && field.find('"') == std::string_view::npos ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < field.size(); ++i) {
    auto c = static_cast<unsigned char>(field[i]);
    char escaped[8];
    if (c == '\\' || c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t' || c == '\n' || c == '\r') {
      out += c == '\t' ? "\\t" : c == '\n' ? "\\n" : "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    } else if (c == 0xC2 && i + 1 < field.size() &&
               (static_cast<unsigned char>(field[i + 1]) <= 0xA0 || static_cast<unsigned char>(field[i + 1]) == 0xAD)) {
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(field[++i]));
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + quote;
}

std::string TooManyTokens() {
  return "expected a sentence of at most " + std::to_string(max_sentence_tokens) +
         " tokens (--max_sentence_tokens raises it)";
}

// A line of raw text and its number.
struct TextLine {
  std::string text;
  size_t number;
};

// Refuses CoNLL read as raw text, as ner/data/text.py's _ConllLines does: a -DOCSTART- line, or a
// block (lines between blank lines) whose first two lines have the same number of columns (two or
// more) and end in a tag. Holds a block's first line while it may be CoNLL.
class ConllInText {
 public:
  // The lines to tag now, given the next line that holds text (the held one first; none while
  // `line` may start a CoNLL block).
  std::vector<TextLine> Check(TextLine line) {
    std::vector<TextLine> ready;
    bool block_start = block_start_;
    block_start_ = false;
    std::vector<std::string> fields = ConllFields(line.text);
    if (!fields.empty() && fields[0] == kDocstart) {
      throw InputError(line.number, "found a CoNLL -DOCSTART- line in raw text; tag CoNLL with --format conll");
    }
    bool conll_like = fields.size() >= 2 && IsTag(fields.back());
    if (held_ && conll_like && fields.size() == ConllFields(held_->text).size()) {
      throw InputError(held_->number,
                       "found CoNLL token lines (columns ending in a tag) in raw text; tag CoNLL with --format conll");
    }
    if (held_) {
      ready.push_back(std::move(*held_));
      held_.reset();
    } else if (block_start && conll_like) {
      held_ = std::move(line);
      return ready;
    }
    ready.push_back(std::move(line));
    return ready;
  }

  // At a blank line or the end of the input: the held line, if any.
  std::vector<TextLine> Blank() {
    block_start_ = true;
    std::vector<TextLine> ready;
    if (held_) ready.push_back(std::move(*held_));
    held_.reset();
    return ready;
  }

 private:
  std::optional<TextLine> held_;
  bool block_start_ = true;
};

// Raw text as the C API takes it: a NUL would end the C string, so it becomes U+0001, another C0
// control character (Unicode category Cc, grapheme break Control: the tokenizer reads both alike,
// a space would join a following combining mark), which keeps every code point offset.
std::string ForCApi(std::string text) {
  std::replace(text.begin(), text.end(), '\0', '\x01');
  return text;
}

// A chunk of tags: its type and tokens [start, end).
struct Span {
  std::string type;
  size_t start, end;
};

// The chunks of tags as ner/data/schemes.py's chunk_spans decodes them (as conlleval does): B-X and
// S-X open a chunk, I-X and E-X continue an open chunk of type X and otherwise open one, E-X and
// S-X close theirs, and O or any other name closes any.
std::vector<Span> ChunkSpans(const std::vector<std::string>& tags) {
  std::vector<Span> spans;
  bool open = false;
  Span chunk;
  for (size_t position = 0; position < tags.size(); ++position) {
    const std::string& tag = tags[position];
    bool is_chunk = tag.size() > 2 && std::string_view("BIES").find(tag[0]) != std::string_view::npos && tag[1] == '-';
    char prefix = is_chunk ? tag[0] : 'O';
    std::string type = is_chunk ? tag.substr(2) : "";
    bool continues = open && (prefix == 'I' || prefix == 'E') && type == chunk.type;
    if (open && !continues) {
      spans.push_back({chunk.type, chunk.start, position});
      open = false;
    }
    if (is_chunk && !open) {
      chunk = {type, position, 0};
      open = true;
    }
    if (prefix == 'E' || prefix == 'S') {
      spans.push_back({type, chunk.start, position + 1});
      open = false;
    }
  }
  if (open) spans.push_back({chunk.type, chunk.start, tags.size()});
  return spans;
}

// The tags as inference.py writes the model's IOB2 tags (schemes.convert_tags from IOB2 to IOB2):
// chunk by chunk, so that a chunk the model starts with I- is written with B-.
std::vector<std::string> WellFormedIob2(const char* const* tags, size_t count) {
  std::vector<std::string> given(tags, tags + count), written(count, "O");
  for (const Span& span : ChunkSpans(given)) {
    for (size_t i = span.start; i < span.end; ++i) written[i] = (i == span.start ? "B-" : "I-") + span.type;
  }
  return written;
}

// Python's round(x, 4): the decimal correctly rounded (ties to even, as glibc's printf rounds), read back.
double Round4(double x) {
  char text[64];
  std::snprintf(text, sizeof text, "%.4f", x);
  return std::strtod(text, nullptr);
}

// Python's repr of a float: the shortest digits that read back as x, written in positional
// notation when the decimal point falls within 16 digits and with an exponent otherwise.
std::string PythonFloat(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  char text[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*e", precision - 1, x);
    if (std::strtod(text, nullptr) == x) break;
  }
  std::string_view written(text);
  std::string sign = written[0] == '-' ? "-" : "";
  if (!sign.empty()) written.remove_prefix(1);
  size_t e = written.find('e');
  int exponent = std::atoi(std::string(written.substr(e + 1)).c_str());
  std::string digits;
  for (char c : written.substr(0, e)) {
    if (c != '.') digits += c;
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int point = x == 0 ? 1 : exponent + 1;  // digits before the decimal point
  if (x == 0) digits = "0";
  if (point > -4 && point <= 16) {
    if (point <= 0) return sign + "0." + std::string(-point, '0') + digits;
    if (point >= static_cast<int>(digits.size())) return sign + digits + std::string(point - digits.size(), '0') + ".0";
    return sign + digits.substr(0, point) + "." + digits.substr(point);
  }
  char power[16];
  std::snprintf(power, sizeof power, "e%c%02d", point - 1 < 0 ? '-' : '+', std::abs(point - 1));
  return sign + digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + power;
}

// `value` as Python's json.dumps(value, ensure_ascii=False) writes it: ", " and ": " between
// items, floats as Python's repr; strings are escaped by nlohmann/json, as Python escapes them.
void DumpLikePython(const nlohmann::ordered_json& value, std::string* out) {
  if (value.is_object()) {
    *out += '{';
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      *out += first ? "" : ", ";
      *out += nlohmann::ordered_json(key).dump() + ": ";
      DumpLikePython(item, out);
      first = false;
    }
    *out += '}';
  } else if (value.is_array()) {
    *out += '[';
    for (size_t i = 0; i < value.size(); ++i) {
      *out += i == 0 ? "" : ", ";
      DumpLikePython(value[i], out);
    }
    *out += ']';
  } else if (value.is_number_float()) {
    *out += PythonFloat(value.get<double>());
  } else {
    *out += value.dump();
  }
}

// Byte offsets of each code point of a UTF-8 text, and of its end.
std::vector<size_t> CodePointOffsets(std::string_view text) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(text.size());
  return offsets;
}

// One tagged text as ner.data.render.describe writes it with the text and the token offsets.
std::string DescribeJson(const std::string& text, const std::vector<std::string>& tokens,
                         const std::vector<std::string>& tags, const float* confidences, const int* starts,
                         const int* ends) {
  std::vector<size_t> byte_of = CodePointOffsets(text);
  int num_chars = static_cast<int>(byte_of.size()) - 1;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (starts[i] < 0 || starts[i] > ends[i] || ends[i] > num_chars) {
      throw std::runtime_error("the tokenizer's offsets of token " + std::to_string(i) + " lie outside the text");
    }
  }
  auto slice = [&](int start, int end) {  // Python's text[start:end]
    return start >= end ? std::string() : text.substr(byte_of[start], byte_of[end] - byte_of[start]);
  };
  nlohmann::ordered_json object;
  object["text"] = text;
  object["tokens"] = tokens;
  object["tags"] = tags;
  object["confidences"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < tokens.size(); ++i) object["confidences"].push_back(Round4(confidences[i]));
  object["entities"] = nlohmann::ordered_json::array();
  for (const Span& span : ChunkSpans(tags)) {
    float least = *std::min_element(confidences + span.start, confidences + span.end);
    nlohmann::ordered_json entity;
    entity["type"] = span.type;
    entity["text"] = slice(starts[span.start], ends[span.end - 1]);
    entity["token_start"] = span.start;
    entity["token_end"] = span.end;
    entity["confidence"] = Round4(least);
    entity["start"] = starts[span.start];
    entity["end"] = ends[span.end - 1];
    object["entities"].push_back(std::move(entity));
  }
  std::string out;
  DumpLikePython(object, &out);
  return out;
}

struct Sentence {
  std::vector<std::string> lines;     // as read, written back with the tag appended
  std::vector<std::string> tokens;
  std::vector<std::string> features;  // per token, the model's feature columns
  size_t first_line = 0;

  void Clear() {
    lines.clear();
    tokens.clear();
    features.clear();
  }
};

using Result = std::unique_ptr<TaggerResult, decltype(api::result_free)>;

class Runner {
 public:
  Runner(Tagger* tagger, std::FILE* out) : tagger_(tagger), out_(out) {}

  // Tags one sentence and writes `prefix[i] + separator + tag` per token, then a blank line.
  void Tag(const Sentence& sentence, const std::vector<std::string>& prefixes, bool conll) {
    std::vector<const char*> tokens, features;
    for (const std::string& token : sentence.tokens) tokens.push_back(token.c_str());
    for (const std::string& value : sentence.features) features.push_back(value.c_str());
    int length = static_cast<int>(tokens.size());
    Clock::time_point start = Clock::now();
    Result result(api::tag(tagger_, tokens.data(), &length, 1, features.empty() ? nullptr : features.data()),
                  api::result_free);
    Timed(start, 1);
    if (result == nullptr) throw InputError(sentence.first_line, api::last_error());
    Write(prefixes, api::result_tags(result.get()), conll);
    Flush();
  }

  // Tags the sentences of one document in one call (tagger_tag_document) and writes each as Tag does.
  void TagDocument(const std::vector<Sentence>& sentences) {
    if (sentences.empty()) return;
    std::vector<const char*> tokens, features;
    std::vector<int> lengths;
    for (const Sentence& sentence : sentences) {
      for (const std::string& token : sentence.tokens) tokens.push_back(token.c_str());
      for (const std::string& value : sentence.features) features.push_back(value.c_str());
      lengths.push_back(static_cast<int>(sentence.tokens.size()));
    }
    Clock::time_point start = Clock::now();
    Result result(api::tag_document(tagger_, tokens.data(), lengths.data(), static_cast<int>(lengths.size()),
                                    features.empty() ? nullptr : features.data()),
                  api::result_free);
    Timed(start, sentences.size());
    if (result == nullptr) throw InputError(sentences.front().first_line, api::last_error());
    const char* const* tags = api::result_tags(result.get());
    for (const Sentence& sentence : sentences) {
      Write(sentence.lines, tags, true);
      tags += sentence.lines.size();
    }
    Flush();
  }

  // Tokenizes and tags one raw text (line `number`) and writes `token tag` lines and a blank line,
  // or with `json` one JSON object; a text without a token writes nothing.
  void TagText(const std::string& text, size_t number, bool json) {
    std::string c_text = ForCApi(text);
    const char* texts[] = {c_text.c_str()};
    Clock::time_point start = Clock::now();
    Result result(api::tag_text(tagger_, texts, 1), api::result_free);
    if (result == nullptr) throw InputError(number, api::last_error());
    size_t count = api::result_size(result.get());
    if (count == 0) return;
    if (count > max_sentence_tokens) throw InputError(number, TooManyTokens());
    Timed(start, 1);
    WriteText(text, number, result.get(), 0, count, json);
    Flush();
  }

  // Tokenizes and tags the lines of one document of raw text in one call (tagger_tag_text_document)
  // and writes each as TagText does.
  void TagTextDocument(const std::vector<TextLine>& lines, bool json) {
    if (lines.empty()) return;
    std::vector<std::string> c_texts;
    for (const TextLine& line : lines) c_texts.push_back(ForCApi(line.text));
    std::vector<const char*> texts;
    for (const std::string& text : c_texts) texts.push_back(text.c_str());
    Clock::time_point start = Clock::now();
    Result result(api::tag_text_document(tagger_, texts.data(), static_cast<int>(texts.size())), api::result_free);
    if (result == nullptr) throw InputError(lines.front().number, api::last_error());
    const int* lengths = api::result_sentence_lengths(result.get());
    size_t sentences = 0, first = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (static_cast<size_t>(lengths[i]) > max_sentence_tokens) throw InputError(lines[i].number, TooManyTokens());
      sentences += lengths[i] > 0;
    }
    if (sentences == 0) return;
    Timed(start, sentences);
    for (size_t i = 0; i < lines.size(); first += lengths[i], ++i) {
      if (lengths[i] > 0) WriteText(lines[i].text, lines[i].number, result.get(), first, lengths[i], json);
    }
    Flush();
  }

  void Docstart(const std::string& line) {
    std::fprintf(out_, "%s%c%s\n\n", line.c_str(), line.find('\t') != std::string::npos ? '\t' : ' ', "O");
    Flush();
  }

  void Flush() {
    if (std::fflush(out_) != 0) throw std::runtime_error(std::string("cannot write stdout: ") + std::strerror(errno));
  }

  // The time of each call after the first, and how many sentences all calls tagged.
  const std::vector<double>& timings() const { return timings_; }
  size_t sentences() const { return sentences_; }

 private:
  void Timed(Clock::time_point start, size_t sentences) {
    timings_.push_back(Milliseconds(Clock::now() - start));
    sentences_ += sentences;
  }

  // `prefix[i] + separator + tag` per token, the tags as inference.py writes them, then a blank line.
  void Write(const std::vector<std::string>& prefixes, const char* const* model_tags, bool conll) {
    std::vector<std::string> tags = WellFormedIob2(model_tags, prefixes.size());
    for (size_t i = 0; i < prefixes.size(); ++i) {
      const std::string& prefix = prefixes[i];
      char separator = conll && prefix.find('\t') != std::string::npos ? '\t' : ' ';
      std::fprintf(out_, "%s%c%s\n", prefix.c_str(), separator, tags[i].c_str());
    }
    std::fputc('\n', out_);
  }

  // The `count` tokens of `text` (line `number`) from the result's token `first` on, tagged, as
  // `token tag` lines and a blank line or one JSON object.
  void WriteText(const std::string& text, size_t number, const TaggerResult* result, size_t first, size_t count,
                 bool json) {
    const char* const* token_pointers = api::result_tokens(result) + first;
    std::vector<std::string> tokens(token_pointers, token_pointers + count);
    std::vector<std::string> tags = WellFormedIob2(api::result_tags(result) + first, count);
    if (json) {
      std::string line = DescribeJson(text, tokens, tags, api::result_confidences(result) + first,
                                      api::result_starts(result) + first, api::result_ends(result) + first);
      std::fprintf(out_, "%s\n", line.c_str());
    } else {
      for (size_t i = 0; i < count; ++i) std::fprintf(out_, "%s %s\n", tokens[i].c_str(), tags[i].c_str());
      std::fputc('\n', out_);
    }
  }

  Tagger* tagger_;
  std::FILE* out_;
  std::vector<double> timings_;
  size_t sentences_ = 0;
};

void CheckLength(const Sentence& sentence, size_t line) {
  if (sentence.tokens.size() > max_sentence_tokens) throw InputError(line, TooManyTokens());
}

void TagConll(Tagger* tagger, Runner* runner) {
  std::vector<int> feature_columns;
  for (int i = 0; i < api::num_feature_columns(tagger); ++i) feature_columns.push_back(api::feature_column(tagger, i));
  int needed_columns = feature_columns.empty() ? 1 : *std::max_element(feature_columns.begin(), feature_columns.end()) + 1;
  bool documents = api::context_words(tagger) > 0;
  LineReader reader(stdin);
  Sentence sentence;
  std::vector<Sentence> document;  // a model that reads context: the sentences of the document so far
  size_t columns = 0, columns_line = 0;  // every token line has the first one's column count
  auto flush = [&] {
    if (sentence.tokens.empty()) return;
    if (documents) {
      document.push_back(std::move(sentence));
      sentence = Sentence();
    } else {
      runner->Tag(sentence, sentence.lines, true);
    }
    sentence.Clear();
  };
  auto end_document = [&] {
    std::vector<Sentence> sentences;
    sentences.swap(document);  // so that a failure to tag them leaves none to tag again
    runner->TagDocument(sentences);
  };
  std::string line;
  try {
    while (reader.Next(&line)) {
      std::vector<std::string> fields = ConllFields(line);
      if (fields.empty()) {
        flush();
        continue;
      }
      if (fields[0] == kDocstart) {
        flush();
        end_document();
        runner->Docstart(line);
        continue;
      }
      for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].empty()) {
          throw InputError(reader.number(), "expected non-empty columns, found column " + std::to_string(i + 1) +
                                                " of " + std::to_string(fields.size()) +
                                                " empty (two tabs in a row, or a trailing tab?)");
        }
      }
      if (columns == 0) {
        columns = fields.size();
        columns_line = reader.number();
        if (static_cast<int>(columns) < needed_columns) {
          throw InputError(reader.number(), "the model reads column " + std::to_string(needed_columns) + "; found " +
                                                std::to_string(columns) + " columns");
        }
      } else if (fields.size() != columns) {
        throw InputError(reader.number(), "expected " + std::to_string(columns) + " columns like line " +
                                              std::to_string(columns_line) + ", found " + std::to_string(fields.size()));
      }
      if (static_cast<int>(fields.size()) > needed_columns && !IsTag(fields.back())) {
        // A column after those the model reads is the gold column (ner/data/conll.py's gold_column_problem).
        throw InputError(reader.number(), "expected a tag ('O' or B-/I-/E-/S- and a type) in the last of " +
                                              std::to_string(fields.size()) + " columns, the gold column after the " +
                                              std::to_string(needed_columns) + " the model reads, found " +
                                              PythonRepr(fields.back()) + "; raw text? use --format text");
      }
      if (sentence.tokens.empty()) sentence.first_line = reader.number();
      sentence.lines.push_back(line);
      sentence.tokens.push_back(fields[0]);
      for (int column : feature_columns) sentence.features.push_back(fields[column]);
      CheckLength(sentence, reader.number());
    }
  } catch (const InputError&) {
    end_document();  // the sentences before the bad line, as without context
    throw;
  }
  flush();
  end_document();
}

void TagText(Tagger* tagger, Runner* runner, bool json) {
  if (api::num_feature_columns(tagger) > 0) {
    throw std::runtime_error("the model reads CoNLL feature columns; tag CoNLL input (--format conll) instead");
  }
  LineReader reader(stdin, /*text=*/true);
  ConllInText conll;
  bool documents = api::context_words(tagger) > 0;
  std::vector<TextLine> document;  // a model that reads context: the lines of the document so far
  auto tag = [&](std::vector<TextLine> lines) {
    for (TextLine& line : lines) {
      if (documents) {
        document.push_back(std::move(line));
      } else {
        runner->TagText(line.text, line.number, json);
      }
    }
  };
  auto end_document = [&] {
    std::vector<TextLine> lines;
    lines.swap(document);  // so that a failure to tag them leaves none to tag again
    runner->TagTextDocument(lines, json);
  };
  std::string line;
  try {
    while (reader.Next(&line)) {
      if (IsBlank(line)) {
        tag(conll.Blank());
        end_document();
      } else {
        tag(conll.Check({line, reader.number()}));
      }
    }
  } catch (const InputError&) {
    end_document();
    throw;
  }
  tag(conll.Blank());
  end_document();
}

// "1 sentence", "2 sentences".
std::string Count(size_t count, const char* noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

void ReportTimings(double load_ms, const Runner& runner, bool documents) {
  const std::vector<double>& timings = runner.timings();
  if (documents) {
    std::fprintf(stderr, "tagger: loaded in %.1f ms; %s in %s\n", load_ms, Count(runner.sentences(), "sentence").c_str(),
                 Count(timings.size(), "document").c_str());
  } else {
    std::fprintf(stderr, "tagger: loaded in %.1f ms; %s\n", load_ms, Count(timings.size(), "sentence").c_str());
  }
  if (timings.size() < 2) return;
  std::vector<double> rest(timings.begin() + 1, timings.end());
  double mean = 0;
  for (double t : rest) mean += t / rest.size();
  std::nth_element(rest.begin(), rest.begin() + rest.size() / 2, rest.end());
  std::fprintf(stderr, "tagger: per %s after the first: mean %.3f ms, median %.3f ms\n",
               documents ? "document" : "sentence", mean, rest[rest.size() / 2]);
}

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: tagger FOLDER [--threads N] [--format conll|text] [--json] [--max_line_bytes N]\n"
               "              [--max_sentence_tokens N] [--verbose] < input > output\n"
               "Tags stdin with a frozen or export model folder.\n"
               "  FOLDER         a frozen (freeze.py) or export (export.py) folder\n"
               "  --threads N    TensorFlow threads (default 1; 0: TensorFlow chooses)\n"
               "  --format conll CoNLL lines, written back with the predicted IOB2 tag appended (the default)\n"
               "  --format text  one raw text per line, tokenized by the folder's graph; writes `token tag` lines\n"
               "                 and a blank line per text\n"
               "  --json         (with --format text) one JSON object per text: text, tokens, tags, confidences,\n"
               "                 entities\n"
               "  --max_line_bytes N       longest input line in bytes (default 65536)\n"
               "  --max_sentence_tokens N  most tokens in one sentence (default 10000)\n"
               "  --verbose      TensorFlow's own log lines too (also NER_VERBOSE=1)\n"
               "A model trained with bert_context=document reads the words around each sentence in its\n"
               "document: a CoNLL document runs from one -DOCSTART- line to the next, a raw-text one until\n"
               "a blank line (or the end of the input); each is read whole, then tagged and written.\n");
}

[[noreturn]] void Usage(const char* problem) {
  std::fprintf(stderr, "tagger: %s\n", problem);
  PrintUsage(stderr);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const char* folder = nullptr;
  int threads = 1;  // one sentence at a time gains little from more threads
  std::string format;
  bool json = false;
  const char* verbose_variable = std::getenv("NER_VERBOSE");
  bool verbose = verbose_variable != nullptr && *verbose_variable != '\0' && std::string_view(verbose_variable) != "0";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      char* end = nullptr;
      long value = std::strtol(argv[++i], &end, 10);
      if (*argv[i] == '\0' || *end != '\0' || value < 0 || value > 1024) Usage("--threads expects a number 0..1024");
      threads = static_cast<int>(value);
    } else if (arg == "--format" && i + 1 < argc) {
      format = argv[++i];
      if (format != "conll" && format != "text") Usage("--format expects conll or text");
    } else if (arg == "--json") {
      json = true;
    } else if ((arg == "--max_line_bytes" || arg == "--max_sentence_tokens") && i + 1 < argc) {
      char* end = nullptr;
      errno = 0;
      unsigned long long value = std::strtoull(argv[++i], &end, 10);
      if (*argv[i] < '1' || *argv[i] > '9' || *end != '\0' || errno != 0 || value > (1ULL << 40)) {
        Usage((std::string(arg) + " expects a positive number").c_str());
      }
      (arg == "--max_line_bytes" ? max_line_bytes : max_sentence_tokens) = static_cast<size_t>(value);
    } else if (arg == "--verbose") {
      verbose = true;
    } else if (arg == "-h" || arg == "--help") {
      PrintUsage(stdout);
      return 0;
    } else if (arg.substr(0, 1) != "-" && folder == nullptr) {
      folder = argv[i];
    } else {
      Usage(("unexpected argument " + std::string(arg)).c_str());
    }
  }
  if (folder == nullptr) Usage("expected a frozen model folder");
  if (format.empty()) format = "conll";
  if (json && format != "text") {  // one line and status 1, as inference.py refuses it
    std::fprintf(stderr, "tagger: %s\n", std::string(kJsonNeedsText).c_str());
    return 1;
  }

  std::string load_error = LoadLibtagger(verbose);
  if (!load_error.empty()) {
    std::fprintf(stderr, "tagger: %s\n", load_error.c_str());
    return 1;
  }
  Clock::time_point start = Clock::now();
  Tagger* tagger = api::open(folder, threads);
  if (tagger == nullptr) {
    std::fprintf(stderr, "tagger: %s\n", api::last_error());
    return 1;
  }
  double load_ms = Milliseconds(Clock::now() - start);
  Runner runner(tagger, stdout);
  int status = 0;
  try {
    if (format == "conll") {
      TagConll(tagger, &runner);
    } else {
      TagText(tagger, &runner, json);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tagger: %s\n", e.what());
    status = 1;
  }
  ReportTimings(load_ms, runner, api::context_words(tagger) > 0);
  api::close(tagger);
  return status;
}
