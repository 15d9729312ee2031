// tagger: tags stdin with a frozen (or export) model folder, one sentence at a time, through libtagger.
//
//   tagger FROZEN_DIR [--threads N] [--format conll|text] < input > output
//
// conll: the input lines with the predicted IOB2 tag appended as a last column, sentences
//   separated by one blank line, -DOCSTART- lines tagged O (inference.py's pred.txt).
// text:  one sentence per line, tokens separated by whitespace; writes `token tag` lines and a
//   blank line after each sentence; lines without tokens are skipped.
// stderr gets the load time and the mean and median tagging time per sentence, excluding the
// first sentence (which pays for TensorFlow's one-time graph optimisation).
// Bad input stops with `<stdin>:LINE: what was expected` and exit status 1; output is flushed
// after every sentence, so the lines before the bad one have been written.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

#include "tagger.h"
#include "utf8.h"

namespace {

constexpr size_t kMaxLineBytes = 1 << 16;       // far beyond any token line or sentence; bounds memory
constexpr size_t kMaxSentenceTokens = 10000;    // likewise, for one sentence's batch
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
decltype(&::tagger_tag) tag;
decltype(&::tagger_result_tags) result_tags;
decltype(&::tagger_result_free) result_free;
decltype(&::tagger_last_error) last_error;
}  // namespace api

// Turns oneDNN off unless the caller chose (its kernels pay a set-up cost per call that one
// sentence never earns back: the median CoNLL-2003 test sentence took 15% longer with them),
// then loads libtagger.so from beside this program (the build folder) or ../lib (installed).
// Returns an error message, or "" on success.
std::string LoadLibtagger() {
  setenv("TF_ENABLE_ONEDNN_OPTS", "0", /*overwrite=*/0);
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
        bind(api::feature_column, "tagger_feature_column") && bind(api::tag, "tagger_tag") &&
        bind(api::result_tags, "tagger_result_tags") && bind(api::result_free, "tagger_result_free") &&
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

// Lines of a stream without their "\n" and a trailing "\r", checked for length and UTF-8.
class LineReader {
 public:
  explicit LineReader(std::FILE* in) : in_(in) {}

  bool Next(std::string* line) {
    line->clear();
    int c;
    while ((c = getc_unlocked(in_)) != EOF && c != '\n') {
      if (line->size() == kMaxLineBytes) {
        throw InputError(number_ + 1, "expected a line of at most " + std::to_string(kMaxLineBytes) + " bytes");
      }
      line->push_back(static_cast<char>(c));
    }
    if (std::ferror(in_)) throw std::runtime_error("cannot read stdin");
    if (c == EOF && line->empty()) return false;
    ++number_;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    if (number_ == 1 && std::string_view(*line).substr(0, kUtf8Bom.size()) == kUtf8Bom) line->erase(0, kUtf8Bom.size());
    size_t nul = line->find('\0');
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
    TaggerResult* result = api::tag(tagger_, tokens.data(), &length, 1, features.empty() ? nullptr : features.data());
    timings_.push_back(Milliseconds(Clock::now() - start));
    if (result == nullptr) throw InputError(sentence.first_line, api::last_error());
    const char* const* tags = api::result_tags(result);
    for (size_t i = 0; i < prefixes.size(); ++i) {
      const std::string& prefix = prefixes[i];
      char separator = conll && prefix.find('\t') != std::string::npos ? '\t' : ' ';
      std::fprintf(out_, "%s%c%s\n", prefix.c_str(), separator, tags[i]);
    }
    api::result_free(result);
    std::fputc('\n', out_);
    Flush();
  }

  void Docstart(const std::string& line) {
    std::fprintf(out_, "%s%c%s\n\n", line.c_str(), line.find('\t') != std::string::npos ? '\t' : ' ', "O");
    Flush();
  }

  void Flush() {
    if (std::fflush(out_) != 0) throw std::runtime_error(std::string("cannot write stdout: ") + std::strerror(errno));
  }

  const std::vector<double>& timings() const { return timings_; }

 private:
  Tagger* tagger_;
  std::FILE* out_;
  std::vector<double> timings_;
};

void CheckLength(const Sentence& sentence, size_t line) {
  if (sentence.tokens.size() > kMaxSentenceTokens) {
    throw InputError(line, "expected a sentence of at most " + std::to_string(kMaxSentenceTokens) + " tokens");
  }
}

void TagConll(Tagger* tagger, Runner* runner) {
  std::vector<int> feature_columns;
  for (int i = 0; i < api::num_feature_columns(tagger); ++i) feature_columns.push_back(api::feature_column(tagger, i));
  int needed_columns = feature_columns.empty() ? 1 : *std::max_element(feature_columns.begin(), feature_columns.end()) + 1;
  LineReader reader(stdin);
  Sentence sentence;
  size_t columns = 0, columns_line = 0;  // every token line has the first one's column count
  auto flush = [&] {
    if (sentence.tokens.empty()) return;
    runner->Tag(sentence, sentence.lines, true);
    sentence.Clear();
  };
  std::string line;
  while (reader.Next(&line)) {
    std::vector<std::string> fields = ConllFields(line);
    if (fields.empty()) {
      flush();
      continue;
    }
    if (fields[0] == kDocstart) {
      flush();
      runner->Docstart(line);
      continue;
    }
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].empty()) {
        throw InputError(reader.number(), "expected non-empty columns, found column " + std::to_string(i + 1) + " of " +
                                              std::to_string(fields.size()) + " empty (two tabs in a row, or a trailing tab?)");
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
    if (sentence.tokens.empty()) sentence.first_line = reader.number();
    sentence.lines.push_back(line);
    sentence.tokens.push_back(fields[0]);
    for (int column : feature_columns) sentence.features.push_back(fields[column]);
    CheckLength(sentence, reader.number());
  }
  flush();
}

void TagText(Tagger* tagger, Runner* runner) {
  if (api::num_feature_columns(tagger) > 0) {
    throw std::runtime_error("the model reads CoNLL feature columns; tag CoNLL input (--format conll) instead");
  }
  LineReader reader(stdin);
  Sentence sentence;
  std::string line;
  while (reader.Next(&line)) {
    sentence.tokens = SplitWhitespace(line);
    if (sentence.tokens.empty()) continue;
    sentence.first_line = reader.number();
    CheckLength(sentence, reader.number());
    runner->Tag(sentence, sentence.tokens, false);
  }
}

void ReportTimings(double load_ms, const std::vector<double>& timings) {
  std::fprintf(stderr, "tagger: loaded in %.1f ms; %zu sentences\n", load_ms, timings.size());
  if (timings.size() < 2) return;
  std::vector<double> rest(timings.begin() + 1, timings.end());
  double mean = 0;
  for (double t : rest) mean += t / rest.size();
  std::nth_element(rest.begin(), rest.begin() + rest.size() / 2, rest.end());
  std::fprintf(stderr, "tagger: per sentence after the first: mean %.3f ms, median %.3f ms\n", mean,
               rest[rest.size() / 2]);
}

[[noreturn]] void Usage(const char* problem) {
  std::fprintf(stderr, "tagger: %s\nusage: tagger FROZEN_DIR [--threads N] [--format conll|text] < input > output\n",
               problem);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const char* folder = nullptr;
  int threads = 1;  // one sentence at a time gains little from more threads
  std::string format = "conll";
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
    } else if (arg == "-h" || arg == "--help") {
      Usage("tags stdin with a frozen model folder (freeze.py)");
    } else if (arg.substr(0, 1) != "-" && folder == nullptr) {
      folder = argv[i];
    } else {
      Usage(("unexpected argument " + std::string(arg)).c_str());
    }
  }
  if (folder == nullptr) Usage("expected a frozen model folder");

  std::string load_error = LoadLibtagger();
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
      TagText(tagger, &runner);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tagger: %s\n", e.what());
    status = 1;
  }
  ReportTimings(load_ms, runner.timings());
  api::close(tagger);
  return status;
}
