// libtagger: the C API of tagger.h on TensorFlow's C API (which links fast and has a stable
// ABI, unlike the C++ API). A frozen folder is imported once into a TF_Graph; each call feeds
// one padded batch to a session whose executor TensorFlow caches after the first call. When
// serving.json describes the head (freeze.py writes it), the session stops at the emission
// scores and the head runs natively (head.h); otherwise the graph's tags and confidences are read.
// Raw text is tokenized by the tokenizer graph that serving.json names under "tokenizer" (TF
// Text's RegexSplitWithOffsets, whose op library is loaded before the graph: LoadOpLibraries).
// A model that reads document context ("context_words") is fed each sentence's neighbouring words
// beside it: given by the caller, or taken from the other sentences of a document (DocumentContexts).
// serving.json is checked whole when a folder is opened, by the rules of ner/serving/loaders.py,
// so that both refuse the same manifests with the same messages (`<path>: expected ...`).
#include "tagger.h"

#include <tensorflow/c/c_api.h>
#include <tensorflow/c/tf_tstring.h>

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "head.h"
#include "sha256.h"
#include "utf8.h"

namespace {

// Bounds the memory of one call: a padded batch holds at most this many token slots.
constexpr int64_t kMaxBatchSlots = int64_t{1} << 24;
constexpr std::streamsize kMaxManifestBytes = 1 << 20;
constexpr int kMaxManifestDepth = 64;  // containers nested in one another; deeper is no manifest
constexpr size_t kMaxNumberChars = 100;  // manifest.py's MAX_NUMBER_CHARS: a double never needs more than 24
// Feature columns are ints in the C API, and the runner (main.cc) counts column + 1 fields.
constexpr int64_t kMaxFeatureColumn = std::numeric_limits<int>::max() - 1;
// serving.json's "context_words" (manifest.py's MAX_CONTEXT_WORDS): far beyond any BERT window.
constexpr int64_t kMaxContextWords = int64_t{1} << 20;
// A document is tagged in batches of at most this many sentences, each with its whole context.
constexpr int kDocumentBatch = 64;
// The tokenizer's outputs, as serving.json names them under "tokenizer" "outputs" (manifest.py's
// TOKENIZER_OUTPUTS, in its order).
constexpr const char* kTokenizerOutputs[] = {"tokens", "lengths", "starts", "ends"};
// Where the op libraries of "op_libraries" are looked for: this variable's folder when set, else
// the tensorflow-text package that CMake found (CMakeLists.txt defines NER_TF_OPS_DIR_DEFAULT).
constexpr const char* kOpsDirVariable = "NER_TF_OPS_DIR";
#ifndef NER_TF_OPS_DIR_DEFAULT
#define NER_TF_OPS_DIR_DEFAULT ""
#endif

// The dtype that tagging feeds or reads, and its name in messages (TensorFlow's).
struct TensorKind {
  TF_DataType dtype;
  const char* name;
};
constexpr TensorKind kStrings{TF_STRING, "string"}, kInt32s{TF_INT32, "int32"}, kFloats{TF_FLOAT, "float32"};

thread_local std::string last_error;

struct StatusDeleter {
  void operator()(TF_Status* status) const { TF_DeleteStatus(status); }
};
struct GraphDeleter {
  void operator()(TF_Graph* graph) const { TF_DeleteGraph(graph); }
};
struct SessionOptionsDeleter {
  void operator()(TF_SessionOptions* options) const { TF_DeleteSessionOptions(options); }
};
struct TensorDeleter {
  void operator()(TF_Tensor* tensor) const { TF_DeleteTensor(tensor); }
};
using Status = std::unique_ptr<TF_Status, StatusDeleter>;
using Graph = std::unique_ptr<TF_Graph, GraphDeleter>;
using Tensor = std::unique_ptr<TF_Tensor, TensorDeleter>;
using SessionOptions = std::unique_ptr<TF_SessionOptions, SessionOptionsDeleter>;

void Check(TF_Status* status, const std::string& doing) {
  if (TF_GetCode(status) != TF_OK) throw std::runtime_error(doing + ": " + TF_Message(status));
}

// folder/name as Python's os.path.join writes it, so that messages name files alike.
std::string Join(const std::string& folder, const std::string& name) {
  return folder.empty() || folder.back() == '/' ? folder + name : folder + "/" + name;
}

// A file's bytes; one longer than `limit` bytes (0: no limit) is refused without reading the rest.
std::string ReadFile(const std::string& path, std::streamsize limit) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error(path + ": cannot read (" + std::strerror(errno) + ")");
  std::string text;
  if (limit > 0) {
    text.resize(static_cast<size_t>(limit) + 1);
    file.read(text.data(), limit + 1);
    text.resize(static_cast<size_t>(file.gcount()));
    if (static_cast<std::streamsize>(text.size()) > limit) {
      throw std::runtime_error(path + ": expected at most " + std::to_string(limit) + " bytes");
    }
  } else {
    std::ostringstream content;
    content << file.rdbuf();
    text = content.str();
  }
  if (file.bad()) throw std::runtime_error(path + ": cannot read");
  return text;
}

// folder/name, checked to be a regular file whose real path lies inside the folder's, so that
// neither a name nor a link in a model folder leads out of it (loaders.py's _file_inside).
std::string FileInside(const std::string& folder, const std::string& name) {
  namespace fs = std::filesystem;
  std::string path = Join(folder, name);
  std::error_code error;
  fs::path real = fs::canonical(path, error);
  if (error) throw std::runtime_error(path + ": cannot read (" + error.message() + ")");
  fs::path real_folder = fs::canonical(folder, error);
  if (error) throw std::runtime_error(folder + ": cannot read (" + error.message() + ")");
  if (std::mismatch(real_folder.begin(), real_folder.end(), real.begin(), real.end()).first != real_folder.end()) {
    throw std::runtime_error(path + ": expected a file inside " + folder + ", found a link to " + real.string());
  }
  if (!fs::is_regular_file(real, error)) throw std::runtime_error(path + ": expected a regular file");
  return path;
}

// Whether `token` is a JSON number (RFC 8259's grammar), so that strtod reads all of it.
bool IsJsonNumber(std::string_view token) {
  size_t i = 0;
  auto digits = [&]() {
    size_t start = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
    return i - start;
  };
  if (i < token.size() && token[i] == '-') ++i;
  if (i < token.size() && token[i] == '0') {
    ++i;
  } else if (i >= token.size() || token[i] < '1' || token[i] > '9' || digits() == 0) {
    return false;
  }
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == token.size();
}

// The bounds of a JSON file that the loaders read, checked on its bytes before it is parsed, by
// the rule of manifest.py's check_json_text (the same tokens: a string is skipped to its closing
// quote or the end, a bracket counts, a number is a run of number characters that starts with a
// digit or a minus sign), so that both runtimes refuse with the same message where their parsers
// would differ: containers nested at most kMaxManifestDepth deep, numbers of at most
// kMaxNumberChars characters within a double's range. The first violation in the text is named.
void CheckJsonText(const std::string& text, const std::string& path) {
  int depth = 0;
  size_t i = 0;
  auto is_number_char = [](char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; };
  while (i < text.size()) {
    char c = text[i];
    if (c == '"') {
      ++i;
      while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;  // a backslash escapes the next byte
      ++i;  // past the closing quote
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxManifestDepth) {
        throw std::runtime_error(path + ": expected JSON nested at most " + std::to_string(kMaxManifestDepth) +
                                 " levels deep");
      }
      ++i;
    } else if (c == ']' || c == '}') {
      depth = std::max(depth - 1, 0);
      ++i;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      while (i < text.size() && is_number_char(text[i])) ++i;
      std::string token = text.substr(start, i - start);
      if (token.size() > kMaxNumberChars) {
        throw std::runtime_error(path + ": expected numbers of at most " + std::to_string(kMaxNumberChars) +
                                 " characters, found one of " + std::to_string(token.size()));
      }
      if (IsJsonNumber(token) && std::isinf(std::strtod(token.c_str(), nullptr))) {
        throw std::runtime_error(path + ": expected numbers within a double's range, found " + token);
      }
    } else {
      ++i;
    }
  }
}

// serving.json, parsed; every error names `path` (nlohmann's own messages name no file). Beyond
// JSON's rules it refuses what CheckJsonText bounds and NUL characters, which no C string can hold.
nlohmann::json ReadManifest(const std::string& path) {
  std::string text = ReadFile(path, kMaxManifestBytes);
  CheckJsonText(text, path);
  auto check = [&path](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if ((event == Event::key || event == Event::value) && parsed.is_string() &&
        parsed.get_ref<const std::string&>().find('\0') != std::string::npos) {
      throw std::runtime_error(path + ": expected text without NUL characters");
    }
    return true;
  };
  nlohmann::json manifest;
  try {
    manifest = nlohmann::json::parse(text, check);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                             utf8::EscapeInvalid(e.what()));
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    throw std::runtime_error(path + ": invalid JSON: " + utf8::EscapeInvalid(e.what()));
  }
  if (!manifest.is_object()) throw std::runtime_error(path + ": expected a JSON object");
  return manifest;
}

// A folder's integrity manifest (integrity.json, ner/integrity.py): the size and SHA-256 of every
// file the loaders read, checked before any of them is read, by integrity.py's rules and with its
// messages: the size of every listed file first (in name order), then every digest.
constexpr const char* kIntegrity = "integrity.json";
const char* const kWriters[] = {"train.py", "export.py", "freeze.py"};
// integrity.py's _FORMAT: every refusal of a manifest that is not what the writers write says this.
constexpr const char* kIntegrityFormat =
    "expected {\"written_by\": \"train.py\", \"export.py\" or \"freeze.py\", \"files\": {name: {\"size\": bytes, "
    "\"sha256\": 64 lowercase hex digits}}} with names relative to the folder; write the folder again";

struct IntegrityEntry {
  int64_t size;
  std::string sha256;
};

// What integrity.py's _well_formed accepts; the listed files in name order (std::map's byte order
// is Python's sorted() on the names, code point order).
bool ParseIntegrity(const nlohmann::json& json, std::string* writer, std::map<std::string, IntegrityEntry>* files) {
  if (!json.is_object()) return false;
  auto written_by = json.find("written_by");
  auto listed = json.find("files");
  if (written_by == json.end() || !written_by->is_string() || listed == json.end() || !listed->is_object()) return false;
  *writer = written_by->get<std::string>();
  if (std::find(std::begin(kWriters), std::end(kWriters), *writer) == std::end(kWriters)) return false;
  for (const auto& [name, entry] : listed->items()) {
    if (name.find('\0') != std::string::npos || name.empty() || name[0] == '/') return false;
    std::stringstream parts(name);
    for (std::string part; std::getline(parts, part, '/');) {
      if (part.empty() || part == "." || part == "..") return false;
    }
    if (name.back() == '/') return false;  // getline drops the empty last part
    if (!entry.is_object()) return false;
    auto size = entry.find("size");
    auto sha256 = entry.find("sha256");
    if (size == entry.end() || !size->is_number_integer()) return false;
    bool in_range = size->is_number_unsigned()
                        ? size->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                        : size->get<int64_t>() >= 0;
    if (!in_range || sha256 == entry.end() || !sha256->is_string()) return false;
    const std::string& digest = sha256->get_ref<const std::string&>();
    auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    if (digest.size() != 64 || !std::all_of(digest.begin(), digest.end(), is_hex)) return false;
    (*files)[name] = {size->is_number_unsigned() ? static_cast<int64_t>(size->get<uint64_t>()) : size->get<int64_t>(),
                      digest};
  }
  return true;
}

// The SHA-256 of a file's bytes, as hex.
std::string FileDigest(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (file == nullptr) throw std::runtime_error(path + ": cannot read (" + std::strerror(errno) + ")");
  sha256::Hasher hasher;
  std::vector<char> buffer(1 << 20);
  size_t read;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) hasher.Update(buffer.data(), read);
  if (std::ferror(file.get())) throw std::runtime_error(path + ": cannot read (" + std::strerror(errno) + ")");
  return hasher.HexDigest();
}

// Checks the files that folder's integrity manifest lists before anything of the folder is read,
// and names the first that changed. A folder without one (written before folders kept one) loads
// with integrity.py's one-line warning on stderr; writer: the command that writes such folders.
void VerifyIntegrity(const std::string& folder, const std::string& writer_of_kind) {
  std::string path = Join(folder, kIntegrity);
  struct stat status;
  if (stat(path.c_str(), &status) != 0 && errno == ENOENT) {
    std::string warning = folder + ": warning: no " + kIntegrity + ", so its files are not checked (written before " +
                          "folders kept one); write it again with " + writer_of_kind + " to add one\n";
    std::fputs(warning.c_str(), stderr);
    std::fflush(stderr);
    return;
  }
  std::string text = ReadFile(path, kMaxManifestBytes);
  CheckJsonText(text, path);
  std::string writer;
  std::map<std::string, IntegrityEntry> files;
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!ParseIntegrity(json, &writer, &files)) throw std::runtime_error(path + ": " + kIntegrityFormat);
  std::string fix = "restore it, or write the folder again with " + writer;
  std::string changed = "the file changed since " + writer + " wrote it; " + fix;
  for (const auto& [name, entry] : files) {
    std::string file_path = Join(folder, name);
    if (stat(file_path.c_str(), &status) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        throw std::runtime_error(file_path + ": missing, though " + path + " lists it; " + fix);
      }
      throw std::runtime_error(file_path + ": cannot read (" + std::strerror(errno) + ")");
    }
    if (!S_ISREG(status.st_mode)) {
      throw std::runtime_error(file_path + ": expected a regular file, as " + path + " lists it; " + fix);
    }
    if (static_cast<int64_t>(status.st_size) != entry.size) {
      throw std::runtime_error(file_path + ": " + std::to_string(status.st_size) + " bytes, but " + path + " says " +
                               std::to_string(entry.size) + ": " + changed);
    }
  }
  for (const auto& [name, entry] : files) {
    std::string file_path = Join(folder, name);
    if (FileDigest(file_path) != entry.sha256) {
      throw std::runtime_error(file_path + ": its SHA-256 is not the one " + path + " lists: " + changed);
    }
  }
}

// find() on a non-object is end(), so a member of something that is no object reads as missing.
// `parent` names the object that holds the member, when it is not the manifest itself.
const std::string& StringMember(const nlohmann::json& object, const char* key, const std::string& where,
                                const char* parent = nullptr) {
  auto value = object.find(key);
  if (value == object.end() || !value->is_string()) {
    throw std::runtime_error(where + ": expected a string \"" + key + "\"" +
                             (parent == nullptr ? "" : std::string(" in \"") + parent + "\""));
  }
  return value->get_ref<const std::string&>();
}

const nlohmann::json& ObjectMember(const nlohmann::json& object, const char* key, const std::string& where) {
  auto value = object.find(key);
  if (value == object.end() || !value->is_object()) {
    throw std::runtime_error(where + ": expected an object \"" + key + "\"");
  }
  return *value;
}

// What serving.json says, checked whole (loaders.py's _check_manifest, in the same order).
struct Manifest {
  std::string graph, init_op;                // frozen folders only
  std::string words, lengths, features;      // features only for a model that reads feature columns
  int context_words = 0;                     // > 0: the model reads its document's words around a sentence
  std::string left_context, right_context;   // only for a model that reads context
  std::string emissions, tags, confidence;   // emissions when the head runs natively, else tags and confidence
  std::vector<int> feature_columns;
  std::vector<std::string> op_libraries;     // file names, loaded before the graph
  bool has_tokenizer = false;                // folders written before raw text was tokenized in the graph have none
  std::string text;                          // the tokenizer's input
  std::vector<std::string> tokenizer_outputs;  // in the order of kTokenizerOutputs
  std::unique_ptr<Head> head;
};

Manifest ParseManifest(const nlohmann::json& json, const std::string& path, bool frozen) {
  Manifest manifest;
  if (frozen) {
    manifest.graph = StringMember(json, "graph", path);
    const std::string& graph = manifest.graph;
    if (graph.empty() || graph == "." || graph == ".." || graph.find('/') != std::string::npos) {
      throw std::runtime_error(path + ": expected \"graph\" to be a file name inside the folder, found \"" + graph +
                               "\"");
    }
    manifest.init_op = StringMember(json, "init_op", path);
  }
  const nlohmann::json& inputs = ObjectMember(json, "inputs", path);
  const nlohmann::json& outputs = ObjectMember(json, "outputs", path);
  // A non-negative integer parses as unsigned, so 2.0 and -1 are no column numbers.
  auto is_column = [](const nlohmann::json& column) {
    return column.is_number_unsigned() && column.get<uint64_t>() >= 1 &&
           column.get<uint64_t>() <= static_cast<uint64_t>(kMaxFeatureColumn);
  };
  auto columns = json.find("feature_columns");
  if (columns == json.end() || !columns->is_array() || !std::all_of(columns->begin(), columns->end(), is_column)) {
    throw std::runtime_error(path + ": expected \"feature_columns\" to be a list of column numbers from 1 to " +
                             std::to_string(kMaxFeatureColumn));
  }
  for (const nlohmann::json& column : *columns) manifest.feature_columns.push_back(column.get<int>());
  manifest.words = StringMember(inputs, "words", path, "inputs");
  manifest.lengths = StringMember(inputs, "lengths", path, "inputs");
  if (!manifest.feature_columns.empty()) {
    manifest.features = StringMember(inputs, "features", path, "inputs");
  } else if (inputs.contains("features")) {
    throw std::runtime_error(path + ": expected no \"features\" in \"inputs\", as \"feature_columns\" is empty");
  }
  // Absent in folders written before models read document context: 0.
  auto context_words = json.find("context_words");
  if (context_words != json.end()) {
    if (!context_words->is_number_unsigned() || context_words->get<uint64_t>() > static_cast<uint64_t>(kMaxContextWords)) {
      throw std::runtime_error(path + ": expected \"context_words\" to be a whole number from 0 to " +
                               std::to_string(kMaxContextWords));
    }
    manifest.context_words = context_words->get<int>();
  }
  if (manifest.context_words > 0) {
    manifest.left_context = StringMember(inputs, "left_context", path, "inputs");
    manifest.right_context = StringMember(inputs, "right_context", path, "inputs");
  } else {
    for (const char* key : {"left_context", "right_context"}) {
      if (inputs.contains(key)) {
        throw std::runtime_error(path + ": expected no \"" + key + "\" in \"inputs\", as \"context_words\" is 0");
      }
    }
  }
  auto is_file_name = [](const nlohmann::json& name) {
    if (!name.is_string()) return false;
    const std::string& text = name.get_ref<const std::string&>();
    return !text.empty() && text != "." && text != ".." && text.find('/') == std::string::npos;
  };
  auto libraries = json.find("op_libraries");
  if (libraries != json.end()) {
    if (!libraries->is_array() || !std::all_of(libraries->begin(), libraries->end(), is_file_name)) {
      throw std::runtime_error(path + ": expected \"op_libraries\" to be a list of file names");
    }
    for (const nlohmann::json& name : *libraries) manifest.op_libraries.push_back(name.get<std::string>());
  }
  if (json.contains("tokenizer")) {
    const nlohmann::json& tokenizer = ObjectMember(json, "tokenizer", path);
    manifest.has_tokenizer = true;
    manifest.text = StringMember(ObjectMember(tokenizer, "inputs", path), "text", path, "tokenizer inputs");
    for (const char* key : kTokenizerOutputs) {
      manifest.tokenizer_outputs.push_back(
          StringMember(ObjectMember(tokenizer, "outputs", path), key, path, "tokenizer outputs"));
    }
  }
  auto head = json.find("head");
  if (head != json.end()) {
    manifest.head = std::make_unique<Head>(*head, path);
    manifest.emissions = StringMember(outputs, "emissions", path, "outputs");
  } else {
    manifest.tags = StringMember(outputs, "tags", path, "outputs");
    manifest.confidence = StringMember(outputs, "confidence", path, "outputs");
  }
  return manifest;
}

// The message of emission scores that do not fit the head; dims: the shape, -1 where unknown.
std::string EmissionsMismatch(const std::string& path, const std::string& name, int num_tags,
                              const std::vector<int64_t>& dims) {
  std::string shape;
  for (int64_t dim : dims) shape += (shape.empty() ? "" : ", ") + (dim < 0 ? std::string("?") : std::to_string(dim));
  std::string n = std::to_string(num_tags);
  return path + ": expected the graph's emissions " + name + " to be scores [batch, time, " + n + "] for the head's " +
         n + " tags, found shape [" + shape + "]";
}

// ConfigProto bytes for the thread counts: a two-field protobuf, written by hand because the
// wheel's protobuf symbols are internal to TensorFlow. One thread means the caller's: a negative
// inter-op count runs every op in the calling thread, which saves a hand-off to a pool thread
// per op (about a third of a sentence's latency measured on a busy machine).
std::string ThreadConfig(int threads) {
  std::string proto;
  auto varint_field = [&proto](int field, int64_t signed_value) {
    auto value = static_cast<uint64_t>(signed_value);  // int32 fields: negatives take ten bytes
    proto += static_cast<char>(field << 3);  // wire type 0: varint
    do {
      proto += static_cast<char>((value & 0x7F) | (value > 0x7F ? 0x80 : 0));
      value >>= 7;
    } while (value != 0);
  };
  varint_field(2, threads);                       // intra_op_parallelism_threads
  varint_field(5, threads == 1 ? -1 : threads);   // inter_op_parallelism_threads
  return proto;
}

// An op library carries its own copies of inline code that TensorFlow's libraries also hold
// (protobuf's Map among them). Loaded while TensorFlow's libraries are in the local scope of
// whoever loaded libtagger (dlopen RTLD_LOCAL: the tagger command, Python's ctypes), it binds to
// its own copies, and a TF Text kernel then reads its node's attributes through a map hashed by
// the other copy: "key not found: get_offsets" in about half the runs. Promoting TensorFlow's
// libraries to the global scope (RTLD_NOLOAD: they are loaded already) makes the op libraries
// bind to TensorFlow's copies, as Python's TensorFlow does.
void ShareTensorFlowSymbols() {
  for (const char* name : {"libtensorflow_framework.so.2", "libtensorflow_cc.so.2"}) {
    dlopen(name, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
  }
}

// The op libraries of serving.json's "op_libraries", registered with TensorFlow before the graph
// that runs their ops is imported (a frozen graph) or loaded (a SavedModel). A library stays
// loaded for the life of the process, so each path is loaded once.
void LoadOpLibraries(const std::vector<std::string>& names) {
  if (names.empty()) return;
  ShareTensorFlowSymbols();
  const char* variable = std::getenv(kOpsDirVariable);
  bool from_variable = variable != nullptr && *variable != '\0';
  std::string folder = from_variable ? variable : NER_TF_OPS_DIR_DEFAULT;
  static std::mutex mutex;
  static std::map<std::string, TF_Library*> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  for (const std::string& name : names) {
    std::string path = Join(folder, name);
    if (!folder.empty() && loaded.count(path) > 0) continue;
    std::error_code error;
    if (folder.empty() || !std::filesystem::is_regular_file(path, error)) {
      std::string where = folder.empty() ? std::string(": ") + kOpsDirVariable +
                                               " is not set and no tensorflow-text was found when libtagger was built"
                                         : " in " + folder + (from_variable ? std::string(" (") + kOpsDirVariable + ")"
                                                                             : " (tensorflow-text's, when libtagger was built)");
      throw std::runtime_error("op library " + name + " (serving.json \"op_libraries\") not found" + where +
                               ": install tensorflow-text (pip install --no-deps -r requirements-no-deps.txt) or set " +
                               kOpsDirVariable + " to the folder that holds " + name + " (tensorflow_text/python/ops)");
    }
    Status status(TF_NewStatus());
    TF_Library* library = TF_LoadLibrary(path.c_str(), status.get());
    Check(status.get(), "loading op library " + path);
    loaded[path] = library;
  }
}

// Frees a string tensor that this library filled: its elements own heap memory when long.
void FreeStrings(void* data, size_t bytes, void*) {
  auto* strings = static_cast<TF_TString*>(data);
  for (size_t i = 0; i < bytes / sizeof(TF_TString); ++i) TF_TString_Dealloc(&strings[i]);
  std::free(data);
}

// A string tensor of `shape`, all "" (the graph's padding) until set.
Tensor StringTensor(const std::vector<int64_t>& shape) {
  size_t count = 1;
  for (int64_t dim : shape) count *= static_cast<size_t>(dim);
  size_t bytes = std::max<size_t>(count, 1) * sizeof(TF_TString);
  size_t alignment = TF_TensorDefaultAlignment();
  void* data = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
  if (data == nullptr) throw std::bad_alloc();
  auto* strings = static_cast<TF_TString*>(data);
  for (size_t i = 0; i < count; ++i) TF_TString_Init(&strings[i]);
  return Tensor(TF_NewTensor(TF_STRING, shape.data(), static_cast<int>(shape.size()), data,
                             count * sizeof(TF_TString), FreeStrings, nullptr));
}

// Throws unless `text` is non-NULL UTF-8; name() says what the text is, only for the message.
template <typename Name>
size_t CheckedSize(const char* text, Name name) {
  if (text == nullptr) throw std::invalid_argument(name() + " is NULL");
  std::string_view view(text);
  size_t bad = utf8::FindInvalid(view);
  if (bad != std::string_view::npos) {
    throw std::invalid_argument(name() + " is not UTF-8 (invalid byte at offset " + std::to_string(bad) + ")");
  }
  return view.size();
}

template <typename Result, typename Body>
Result Guarded(Result on_error, Body body) {
  try {
    last_error.clear();
    return body();
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown error";
  }
  return on_error;
}

}  // namespace

struct Tagger {
  Graph graph;
  TF_Session* session = nullptr;
  std::string folder;
  std::string manifest_path;  // named by every error about what serving.json says
  TF_Output words{}, lengths{}, features{}, tags{}, confidence{}, emissions{};
  int context_words = 0;                  // > 0: the graph reads the words around each sentence
  TF_Output left_context{}, right_context{};
  bool has_tokenizer = false;
  TF_Output text{};
  std::vector<TF_Output> tokenizer_outputs;  // in the order of kTokenizerOutputs
  std::string emissions_name;
  std::vector<int> feature_columns;
  std::unique_ptr<Head> head;  // set when the head runs natively on `emissions`

  ~Tagger() {
    if (session == nullptr) return;
    Status status(TF_NewStatus());
    TF_CloseSession(session, status.get());
    TF_DeleteSession(session, status.get());
  }

  // The tensor serving.json names "operation:index", checked to exist with the dtype that tagging
  // feeds or reads; `what` says where the manifest names it, e.g. "words" in "inputs".
  TF_Output Output(const std::string& name, TensorKind kind, const std::string& what) const {
    size_t colon = name.rfind(':');
    std::string index = colon == std::string::npos ? "" : name.substr(colon + 1);
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (index.empty() || index.size() > 9 || !std::all_of(index.begin(), index.end(), is_digit)) {
      throw std::runtime_error(manifest_path + ": expected " + what +
                               " to name a tensor as \"operation:index\", found \"" + name + "\"");
    }
    TF_Output output{TF_GraphOperationByName(graph.get(), name.substr(0, colon).c_str()), std::stoi(index)};
    if (output.oper == nullptr || output.index >= TF_OperationNumOutputs(output.oper)) {
      throw std::runtime_error(manifest_path + ": expected the graph to have a tensor " + name + " (" + what + ")");
    }
    if (TF_OperationOutputType(output) != kind.dtype) {
      throw std::runtime_error(manifest_path + ": expected " + name + " (" + what + ") to have dtype " + kind.name);
    }
    return output;
  }

  // The tensors that the manifest names, in the order of loaders.py's _check_graph. The emission
  // scores must be as wide as the head has tags wherever the graph's static shape says (tagging
  // checks the rest).
  void Bind(const Manifest& manifest) {
    has_tokenizer = manifest.has_tokenizer;
    if (has_tokenizer) {
      text = Output(manifest.text, kStrings, "\"text\" in \"tokenizer\" \"inputs\"");
      for (size_t i = 0; i < manifest.tokenizer_outputs.size(); ++i) {
        std::string key = kTokenizerOutputs[i];
        tokenizer_outputs.push_back(Output(manifest.tokenizer_outputs[i], key == "tokens" ? kStrings : kInt32s,
                                           "\"" + key + "\" in \"tokenizer\" \"outputs\""));
      }
    }
    words = Output(manifest.words, kStrings, "\"words\" in \"inputs\"");
    lengths = Output(manifest.lengths, kInt32s, "\"lengths\" in \"inputs\"");
    if (!manifest.feature_columns.empty()) features = Output(manifest.features, kStrings, "\"features\" in \"inputs\"");
    context_words = manifest.context_words;
    if (context_words > 0) {
      left_context = Output(manifest.left_context, kStrings, "\"left_context\" in \"inputs\"");
      right_context = Output(manifest.right_context, kStrings, "\"right_context\" in \"inputs\"");
    }
    if (manifest.head == nullptr) {
      tags = Output(manifest.tags, kStrings, "\"tags\" in \"outputs\"");
      confidence = Output(manifest.confidence, kFloats, "\"confidence\" in \"outputs\"");
      return;
    }
    emissions = Output(manifest.emissions, kFloats, "\"emissions\" in \"outputs\"");
    emissions_name = manifest.emissions;
    Status status(TF_NewStatus());
    int rank = TF_GraphGetTensorNumDims(graph.get(), emissions, status.get());  // -1: unknown
    std::vector<int64_t> dims(std::max(rank, 0));
    if (rank > 0) TF_GraphGetTensorShape(graph.get(), emissions, dims.data(), rank, status.get());
    Check(status.get(), manifest_path + ": reading the shape of " + emissions_name);
    if (rank < 0) return;
    int num_tags = manifest.head->num_tags();
    if (rank != 3 || (dims[2] >= 0 && dims[2] != num_tags)) {
      throw std::runtime_error(EmissionsMismatch(manifest_path, emissions_name, num_tags, dims));
    }
  }
};

// What a call returns. tagger_tag fills the tags; tagger_tokenize the tokens and offsets;
// tagger_tag_text both.
struct TaggerResult {
  bool has_tags = false, has_tokens = false;
  std::vector<int> sentence_lengths;
  std::vector<std::string> tags;
  std::vector<const char*> tag_pointers;
  std::vector<float> confidences;
  std::vector<std::string> tokens;
  std::vector<const char*> token_pointers;
  std::vector<int> starts, ends;

  // The C strings of tags and tokens, once they are all in place.
  void Finish() {
    for (const std::string& tag : tags) tag_pointers.push_back(tag.c_str());
    for (const std::string& token : tokens) token_pointers.push_back(token.c_str());
  }
};

namespace {

// A frozen folder: imports the graph, checks what the manifest names in it, starts a session and
// runs the op that fills the tables.
void LoadFrozen(const std::string& folder, const Manifest& manifest, const TF_SessionOptions* options, Tagger* tagger) {
  std::string graph_path = FileInside(folder, manifest.graph);
  LoadOpLibraries(manifest.op_libraries);
  std::string graph_bytes = ReadFile(graph_path, 0);
  Status status(TF_NewStatus());
  TF_Buffer* buffer = TF_NewBufferFromString(graph_bytes.data(), graph_bytes.size());
  TF_ImportGraphDefOptions* import_options = TF_NewImportGraphDefOptions();
  TF_GraphImportGraphDef(tagger->graph.get(), buffer, import_options, status.get());
  TF_DeleteImportGraphDefOptions(import_options);
  TF_DeleteBuffer(buffer);
  Check(status.get(), graph_path + ": cannot import the graph");
  TF_Operation* init = TF_GraphOperationByName(tagger->graph.get(), manifest.init_op.c_str());
  if (init == nullptr) {
    throw std::runtime_error(tagger->manifest_path + ": expected the graph to have an operation " + manifest.init_op +
                             " (\"init_op\")");
  }
  tagger->Bind(manifest);
  tagger->session = TF_NewSession(tagger->graph.get(), options, status.get());
  Check(status.get(), "starting a session for " + graph_path);
  TF_SessionRun(tagger->session, nullptr, nullptr, nullptr, 0, nullptr, nullptr, 0, &init, 1, nullptr, status.get());
  Check(status.get(), tagger->manifest_path + ": running \"init_op\" " + manifest.init_op);
}

// The words of a sentence's document on one side of it, `count` of them from `words` on.
struct Words {
  const char* const* words = nullptr;
  int count = 0;
};

// A sentence's document context: the words before it (nearest last) and after it (nearest first).
struct Context {
  Words left, right;
};

// The document context of each of num_sentences sentences that are one document, in order, whose
// tokens lie in order in `tokens` (lengths checked to be >= 0): up to `words` of the document's
// words before the sentence and after it, as ner/data/documents.py's document_contexts gives them.
// Each side is a slice of `tokens`. The one rule of libtagger and the runner.
std::vector<Context> DocumentContexts(const char* const* tokens, const int* lengths, int num_sentences, int words) {
  int64_t total = 0;
  for (int i = 0; i < num_sentences; ++i) total += lengths[i];
  std::vector<Context> contexts(num_sentences);
  int64_t start = 0;
  for (int i = 0; i < num_sentences; ++i) {
    int64_t end = start + lengths[i];
    int64_t before = std::min<int64_t>(words, start), after = std::min<int64_t>(words, total - end);
    contexts[i].left = {tokens + (start - before), static_cast<int>(before)};
    contexts[i].right = {tokens + end, static_cast<int>(after)};
    start = end;
  }
  return contexts;
}

// The contexts a caller gives (tagger_tag_context's arguments): per side, NULL lengths give no words.
std::vector<Context> GivenContexts(int num_sentences, const char* const* left_tokens, const int* left_lengths,
                                   const char* const* right_tokens, const int* right_lengths) {
  std::vector<Context> contexts(num_sentences);
  auto fill = [&](const char* const* tokens, const int* lengths, Words Context::*side, const char* name) {
    if (lengths == nullptr) return;
    int64_t start = 0;
    for (int i = 0; i < num_sentences; ++i) {
      if (lengths[i] < 0) {
        throw std::invalid_argument(std::string(name) + " context of sentence " + std::to_string(i) +
                                    " has a negative length");
      }
      if (lengths[i] > 0 && tokens == nullptr) throw std::invalid_argument("NULL argument");
      contexts[i].*side = {tokens == nullptr ? nullptr : tokens + start, lengths[i]};
      start += lengths[i];
    }
  };
  fill(left_tokens, left_lengths, &Context::left, "left");
  fill(right_tokens, right_lengths, &Context::right, "right");
  return contexts;
}

// How many tokens sentences of these lengths hold; every sentence must hold one. `first`: the
// index in the call of lengths[0], for messages.
int64_t CountTokens(const int* lengths, int num_sentences, int64_t first = 0) {
  int64_t num_tokens = 0;
  for (int i = 0; i < num_sentences; ++i) {
    if (lengths[i] < 1) throw std::invalid_argument("sentence " + std::to_string(first + i) + " is empty");
    num_tokens += lengths[i];
  }
  return num_tokens;
}

// A token's size, checked to be non-empty UTF-8 ("" is the graph's padding); `where` names it.
template <typename Name>
size_t CheckedWord(const char* word, Name where) {
  size_t size = CheckedSize(word, where);
  if (size == 0) throw std::invalid_argument(where() + " is empty");
  return size;
}

// One side of the contexts of `batch` sentences as the graph takes it: [batch, the most words],
// '' padding after each sentence's words; [batch, 0] without contexts.
Tensor ContextTensor(const Context* contexts, int64_t batch, Words Context::*side, const char* name, int64_t first) {
  int64_t widest = 0;
  for (int64_t b = 0; contexts != nullptr && b < batch; ++b) widest = std::max<int64_t>(widest, (contexts[b].*side).count);
  if (batch * widest > kMaxBatchSlots) {
    throw std::invalid_argument("batch too large: " + std::to_string(batch) + " sentences with up to " +
                                std::to_string(widest) + " words of " + name + " context");
  }
  Tensor values = StringTensor({batch, widest});
  auto* data = static_cast<TF_TString*>(TF_TensorData(values.get()));
  for (int64_t b = 0; contexts != nullptr && b < batch; ++b) {
    const Words& words = contexts[b].*side;
    for (int64_t w = 0; w < words.count; ++w) {
      size_t size = CheckedWord(words.words[w], [&] {
        return "word " + std::to_string(w) + " of the " + name + " context of sentence " + std::to_string(first + b);
      });
      TF_TString_Copy(&data[b * widest + w], words.words[w], size);
    }
  }
  return values;
}

// Tags num_sentences sentences (tagger_tag's arguments, checked here) in one batch and appends
// each token's tag and confidence to `result`. A model that reads document context gets
// contexts[i] beside sentence i (no words when contexts is NULL); others ignore contexts. `first`:
// the index in the call of the first sentence, for messages.
void TagInto(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
             const char* const* features, const Context* contexts, TaggerResult* result, int64_t first = 0) {
  int num_columns = static_cast<int>(tagger->feature_columns.size());
  if (num_columns > 0 && features == nullptr) {
    throw std::invalid_argument("the model reads " + std::to_string(num_columns) + " feature columns; features is NULL");
  }
  int64_t num_tokens = CountTokens(lengths, num_sentences, first), longest = 0;
  for (int i = 0; i < num_sentences; ++i) longest = std::max<int64_t>(longest, lengths[i]);
  int64_t batch = num_sentences;
  if (batch * longest * std::max(num_columns, 1) > kMaxBatchSlots) {
    throw std::invalid_argument("batch too large: " + std::to_string(batch) + " sentences of up to " +
                                std::to_string(longest) + " tokens");
  }

  Tensor words = StringTensor({batch, longest});
  Tensor feature_values = num_columns > 0 ? StringTensor({batch, longest, num_columns}) : nullptr;
  Tensor length_values(TF_AllocateTensor(TF_INT32, &batch, 1, batch * sizeof(int32_t)));
  auto* word_data = static_cast<TF_TString*>(TF_TensorData(words.get()));
  auto* feature_data = num_columns > 0 ? static_cast<TF_TString*>(TF_TensorData(feature_values.get())) : nullptr;
  auto* length_data = static_cast<int32_t*>(TF_TensorData(length_values.get()));
  int64_t token = 0;
  for (int64_t b = 0; b < batch; ++b) {
    length_data[b] = lengths[b];
    for (int64_t t = 0; t < lengths[b]; ++t, ++token) {
      auto where = [b, t, first] { return "token " + std::to_string(t) + " of sentence " + std::to_string(first + b); };
      size_t size = CheckedWord(tokens[token], where);
      TF_TString_Copy(&word_data[b * longest + t], tokens[token], size);
      for (int c = 0; c < num_columns; ++c) {
        const char* value = features[token * num_columns + c];
        size = CheckedSize(value, [&] { return "feature " + std::to_string(c) + " of " + where(); });
        TF_TString_Copy(&feature_data[(b * longest + t) * num_columns + c], value, size);
      }
    }
  }
  Tensor left_values, right_values;
  if (tagger->context_words > 0) {
    left_values = ContextTensor(contexts, batch, &Context::left, "left", first);
    right_values = ContextTensor(contexts, batch, &Context::right, "right", first);
  }

  std::vector<TF_Output> inputs = {tagger->words, tagger->lengths};
  std::vector<TF_Tensor*> input_values = {words.get(), length_values.get()};
  if (num_columns > 0) {
    inputs.push_back(tagger->features);
    input_values.push_back(feature_values.get());
  }
  if (tagger->context_words > 0) {
    inputs.insert(inputs.end(), {tagger->left_context, tagger->right_context});
    input_values.insert(input_values.end(), {left_values.get(), right_values.get()});
  }
  result->tags.reserve(result->tags.size() + num_tokens);
  result->confidences.reserve(result->confidences.size() + num_tokens);
  Status status(TF_NewStatus());
  if (tagger->head != nullptr) {
    TF_Tensor* emission_values = nullptr;
    TF_SessionRun(tagger->session, nullptr, inputs.data(), input_values.data(), static_cast<int>(inputs.size()),
                  &tagger->emissions, &emission_values, 1, nullptr, 0, nullptr, status.get());
    Tensor emissions(emission_values);
    Check(status.get(), "tagging");
    int num_tags = tagger->head->num_tags();
    std::vector<int64_t> dims(TF_NumDims(emissions.get()));
    for (size_t i = 0; i < dims.size(); ++i) dims[i] = TF_Dim(emissions.get(), static_cast<int>(i));
    if (TF_TensorType(emissions.get()) != TF_FLOAT || dims != std::vector<int64_t>{batch, longest, num_tags}) {
      throw std::runtime_error(EmissionsMismatch(tagger->manifest_path, tagger->emissions_name, num_tags, dims));
    }
    const auto* scores = static_cast<const float*>(TF_TensorData(emissions.get()));
    std::vector<int> ids(longest);
    std::vector<float> confidences(longest);
    for (int64_t b = 0; b < batch; ++b) {
      tagger->head->Decode(scores + b * longest * num_tags, lengths[b], ids.data(), confidences.data());
      for (int t = 0; t < lengths[b]; ++t) {
        result->tags.push_back(tagger->head->tag_name(ids[t]));
        result->confidences.push_back(confidences[t]);
      }
    }
  } else {
    TF_Output outputs[2] = {tagger->tags, tagger->confidence};
    TF_Tensor* output_values[2] = {nullptr, nullptr};
    TF_SessionRun(tagger->session, nullptr, inputs.data(), input_values.data(), static_cast<int>(inputs.size()),
                  outputs, output_values, 2, nullptr, 0, nullptr, status.get());
    Tensor tags(output_values[0]), confidence(output_values[1]);
    Check(status.get(), "tagging");
    if (TF_TensorType(tags.get()) != TF_STRING || TF_TensorType(confidence.get()) != TF_FLOAT ||
        TF_TensorElementCount(tags.get()) != batch * longest ||
        TF_TensorElementCount(confidence.get()) != batch * longest) {
      throw std::runtime_error("the graph's outputs are not tags and confidences [batch, time]");
    }
    const auto* tag_data = static_cast<const TF_TString*>(TF_TensorData(tags.get()));
    const auto* confidence_data = static_cast<const float*>(TF_TensorData(confidence.get()));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < lengths[b]; ++t) {
        const TF_TString* tag = &tag_data[b * longest + t];
        result->tags.emplace_back(TF_TString_GetDataPointer(tag), TF_TString_GetSize(tag));
        result->confidences.push_back(confidence_data[b * longest + t]);
      }
    }
  }
}

// The tokenizer's output for a batch of texts: per text its token count, and all tokens with
// their character offsets, text by text.
struct Tokenized {
  std::vector<int> lengths;
  std::vector<std::string> tokens;
  std::vector<int> starts, ends;
};

// Runs the tokenizer graph on num_texts raw texts (UTF-8, checked here). `first`: the index in the
// call of texts[0], for messages.
Tokenized Tokenize(Tagger* tagger, const char* const* texts, int num_texts, int64_t first = 0) {
  if (tagger == nullptr || (texts == nullptr && num_texts > 0)) throw std::invalid_argument("NULL argument");
  if (num_texts < 0) throw std::invalid_argument("num_texts must be >= 0");
  if (!tagger->has_tokenizer) {
    throw std::runtime_error(tagger->manifest_path +
                             ": has no \"tokenizer\": the folder was written before raw text was tokenized inside "
                             "the graph; write it again with export.py or freeze.py to tag raw text");
  }
  Tokenized tokenized;
  if (num_texts == 0) return tokenized;
  int64_t batch = num_texts;
  Tensor text_values = StringTensor({batch});
  auto* text_data = static_cast<TF_TString*>(TF_TensorData(text_values.get()));
  size_t longest = 0;
  for (int64_t i = 0; i < batch; ++i) {
    size_t size = CheckedSize(texts[i], [i, first] { return "text " + std::to_string(first + i); });
    longest = std::max(longest, size);
    TF_TString_Copy(&text_data[i], texts[i], size);
  }
  // A text has at most as many tokens as bytes: this bounds the padded outputs.
  if (batch * static_cast<int64_t>(longest) > kMaxBatchSlots) {
    throw std::invalid_argument("batch too large: " + std::to_string(batch) + " texts of up to " +
                                std::to_string(longest) + " bytes");
  }
  constexpr int kOutputs = sizeof(kTokenizerOutputs) / sizeof(kTokenizerOutputs[0]);
  TF_Tensor* values[kOutputs] = {};
  Status status(TF_NewStatus());
  TF_Tensor* input = text_values.get();
  TF_SessionRun(tagger->session, nullptr, &tagger->text, &input, 1, tagger->tokenizer_outputs.data(), values, kOutputs,
                nullptr, 0, nullptr, status.get());
  Tensor tokens(values[0]), lengths(values[1]), starts(values[2]), ends(values[3]);
  Check(status.get(), "tokenizing");
  int64_t width = TF_NumDims(tokens.get()) == 2 ? TF_Dim(tokens.get(), 1) : -1;
  auto is_matrix = [batch, width](const Tensor& tensor, TF_DataType dtype) {
    return TF_TensorType(tensor.get()) == dtype && TF_NumDims(tensor.get()) == 2 && TF_Dim(tensor.get(), 0) == batch &&
           TF_Dim(tensor.get(), 1) == width;
  };
  if (!is_matrix(tokens, TF_STRING) || !is_matrix(starts, TF_INT32) || !is_matrix(ends, TF_INT32) ||
      TF_TensorType(lengths.get()) != TF_INT32 || TF_NumDims(lengths.get()) != 1 || TF_Dim(lengths.get(), 0) != batch) {
    throw std::runtime_error("the tokenizer's outputs are not tokens, starts and ends [texts, tokens] and lengths [texts]");
  }
  const auto* token_data = static_cast<const TF_TString*>(TF_TensorData(tokens.get()));
  const auto* length_data = static_cast<const int32_t*>(TF_TensorData(lengths.get()));
  const auto* start_data = static_cast<const int32_t*>(TF_TensorData(starts.get()));
  const auto* end_data = static_cast<const int32_t*>(TF_TensorData(ends.get()));
  for (int64_t b = 0; b < batch; ++b) {
    if (length_data[b] < 0 || length_data[b] > width) {
      throw std::runtime_error("the tokenizer's lengths do not fit its tokens");
    }
    tokenized.lengths.push_back(length_data[b]);
    for (int64_t t = 0; t < length_data[b]; ++t) {
      const TF_TString* token = &token_data[b * width + t];
      tokenized.tokens.emplace_back(TF_TString_GetDataPointer(token), TF_TString_GetSize(token));
      tokenized.starts.push_back(start_data[b * width + t]);
      tokenized.ends.push_back(end_data[b * width + t]);
    }
  }
  return tokenized;
}

// Tokenize, kDocumentBatch texts at a time: for a document, which may be long.
Tokenized TokenizeInBatches(Tagger* tagger, const char* const* texts, int num_texts) {
  if (num_texts <= kDocumentBatch) return Tokenize(tagger, texts, num_texts);
  Tokenized all;
  for (int first = 0; first < num_texts; first += kDocumentBatch) {
    Tokenized some = Tokenize(tagger, texts + first, std::min(kDocumentBatch, num_texts - first), first);
    all.lengths.insert(all.lengths.end(), some.lengths.begin(), some.lengths.end());
    std::move(some.tokens.begin(), some.tokens.end(), std::back_inserter(all.tokens));
    all.starts.insert(all.starts.end(), some.starts.begin(), some.starts.end());
    all.ends.insert(all.ends.end(), some.ends.begin(), some.ends.end());
  }
  return all;
}

// Tags the sentences of one document (tagger_tag's arguments, checked here) and appends each
// token's tag and confidence to `result`: with their DocumentContexts, in batches of at most
// kDocumentBatch sentences, for a model that reads context; in one batch of sentences otherwise.
void TagDocument(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
                 const char* const* features, TaggerResult* result) {
  if (tagger->context_words == 0) return TagInto(tagger, tokens, lengths, num_sentences, features, nullptr, result);
  // Every token is checked before any is read as another sentence's context.
  int64_t num_tokens = CountTokens(lengths, num_sentences);
  for (int64_t i = 0, sentence = 0, t = 0; i < num_tokens; ++i, ++t) {
    while (t == lengths[sentence]) t = 0, ++sentence;
    CheckedWord(tokens[i], [&] { return "token " + std::to_string(t) + " of sentence " + std::to_string(sentence); });
  }
  std::vector<Context> contexts = DocumentContexts(tokens, lengths, num_sentences, tagger->context_words);
  int num_columns = static_cast<int>(tagger->feature_columns.size());
  int64_t token = 0;
  for (int first = 0; first < num_sentences; first += kDocumentBatch) {
    int count = std::min(kDocumentBatch, num_sentences - first);
    TagInto(tagger, tokens + token, lengths + first, count, features == nullptr ? nullptr : features + token * num_columns,
            contexts.data() + first, result, first);
    for (int i = first; i < first + count; ++i) token += lengths[i];
  }
}

// An array that a result holds is never NULL, even when empty: NULL means the result has no such array.
template <typename T>
const T* ArrayOf(bool present, const std::vector<T>& values) {
  static const T kEmpty{};
  if (!present) return nullptr;
  return values.empty() ? &kEmpty : values.data();
}

// A result of tokens and offsets, without tags yet.
std::unique_ptr<TaggerResult> TokenResult(Tokenized tokenized) {
  auto result = std::make_unique<TaggerResult>();
  result->has_tokens = true;
  result->sentence_lengths = std::move(tokenized.lengths);
  result->tokens = std::move(tokenized.tokens);
  result->starts = std::move(tokenized.starts);
  result->ends = std::move(tokenized.ends);
  return result;
}

// tagger_tag_text, and with `document` tagger_tag_text_document.
TaggerResult* TagTexts(Tagger* tagger, const char* const* texts, int num_texts, bool document) {
  if (tagger != nullptr && !tagger->feature_columns.empty()) {  // ner.data.conll.check_text_input's message
    std::string columns;
    for (int column : tagger->feature_columns) columns += (columns.empty() ? "" : ", ") + std::to_string(column);
    throw std::invalid_argument(tagger->folder + " was trained with CoNLL feature columns [" + columns +
                                "]; tag CoNLL input instead");
  }
  document = document && tagger != nullptr && tagger->context_words > 0;
  std::unique_ptr<TaggerResult> result =
      TokenResult(document ? TokenizeInBatches(tagger, texts, num_texts) : Tokenize(tagger, texts, num_texts));
  result->has_tags = true;
  // Texts without a token are left out of the batch: they add no token, so the tags of the
  // others, sentence by sentence, are in the order of the result's tokens.
  std::vector<int> lengths;
  for (int length : result->sentence_lengths) {
    if (length > 0) lengths.push_back(length);
  }
  if (!lengths.empty()) {
    std::vector<const char*> tokens;
    for (const std::string& token : result->tokens) tokens.push_back(token.c_str());
    int num_sentences = static_cast<int>(lengths.size());
    if (document) {
      TagDocument(tagger, tokens.data(), lengths.data(), num_sentences, nullptr, result.get());
    } else {
      TagInto(tagger, tokens.data(), lengths.data(), num_sentences, nullptr, nullptr, result.get());
    }
  }
  result->Finish();
  return result.release();
}

}  // namespace

extern "C" {

Tagger* tagger_open(const char* folder, int threads) {
  return Guarded<Tagger*>(nullptr, [&]() -> Tagger* {
    if (folder == nullptr) throw std::invalid_argument("model folder is NULL");
    if (threads < 0) throw std::invalid_argument("threads must be >= 0");
    bool frozen = !std::ifstream(Join(folder, "saved_model.pb"));  // else an export folder
    auto tagger = std::make_unique<Tagger>();
    tagger->folder = folder;
    VerifyIntegrity(folder, frozen ? "freeze.py" : "export.py");
    tagger->manifest_path = FileInside(folder, "serving.json");
    Manifest manifest = ParseManifest(ReadManifest(tagger->manifest_path), tagger->manifest_path, frozen);

    tagger->graph.reset(TF_NewGraph());
    Status status(TF_NewStatus());
    SessionOptions options(TF_NewSessionOptions());
    std::string config = ThreadConfig(threads);
    TF_SetConfig(options.get(), config.data(), config.size(), status.get());
    Check(status.get(), "setting the thread counts");
    if (frozen) {
      LoadFrozen(folder, manifest, options.get(), tagger.get());
    } else {
      // The SavedModel loader restores the variables and fills the tables.
      LoadOpLibraries(manifest.op_libraries);
      const char* tags[] = {"serve"};
      tagger->session = TF_LoadSessionFromSavedModel(options.get(), nullptr, folder, tags, 1, tagger->graph.get(),
                                                     nullptr, status.get());
      Check(status.get(), std::string("loading ") + folder);
      tagger->Bind(manifest);
    }
    tagger->feature_columns = std::move(manifest.feature_columns);
    tagger->head = std::move(manifest.head);
    return tagger.release();
  });
}

void tagger_close(Tagger* tagger) { delete tagger; }

int tagger_num_feature_columns(const Tagger* tagger) {
  return tagger == nullptr ? -1 : static_cast<int>(tagger->feature_columns.size());
}

int tagger_feature_column(const Tagger* tagger, int index) {
  if (tagger == nullptr || index < 0 || index >= static_cast<int>(tagger->feature_columns.size())) return -1;
  return tagger->feature_columns[index];
}

int tagger_context_words(const Tagger* tagger) { return tagger == nullptr ? -1 : tagger->context_words; }

TaggerResult* tagger_tag(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
                         const char* const* features) {
  return tagger_tag_context(tagger, tokens, lengths, num_sentences, features, nullptr, nullptr, nullptr, nullptr);
}

TaggerResult* tagger_tag_context(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
                                 const char* const* features, const char* const* left_tokens, const int* left_lengths,
                                 const char* const* right_tokens, const int* right_lengths) {
  return Guarded<TaggerResult*>(nullptr, [&]() -> TaggerResult* {
    if (tagger == nullptr || tokens == nullptr || lengths == nullptr) throw std::invalid_argument("NULL argument");
    if (num_sentences < 1) throw std::invalid_argument("no sentences to tag");
    std::vector<Context> contexts;
    if (left_lengths != nullptr || right_lengths != nullptr) {
      contexts = GivenContexts(num_sentences, left_tokens, left_lengths, right_tokens, right_lengths);
    }
    auto result = std::make_unique<TaggerResult>();
    result->has_tags = true;
    TagInto(tagger, tokens, lengths, num_sentences, features, contexts.empty() ? nullptr : contexts.data(),
            result.get());
    result->sentence_lengths.assign(lengths, lengths + num_sentences);
    result->Finish();
    return result.release();
  });
}

TaggerResult* tagger_tag_document(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
                                  const char* const* features) {
  return Guarded<TaggerResult*>(nullptr, [&]() -> TaggerResult* {
    if (tagger == nullptr || tokens == nullptr || lengths == nullptr) throw std::invalid_argument("NULL argument");
    if (num_sentences < 1) throw std::invalid_argument("no sentences to tag");
    auto result = std::make_unique<TaggerResult>();
    result->has_tags = true;
    TagDocument(tagger, tokens, lengths, num_sentences, features, result.get());
    result->sentence_lengths.assign(lengths, lengths + num_sentences);
    result->Finish();
    return result.release();
  });
}

TaggerResult* tagger_tokenize(Tagger* tagger, const char* const* texts, int num_texts) {
  return Guarded<TaggerResult*>(nullptr, [&]() -> TaggerResult* {
    std::unique_ptr<TaggerResult> result = TokenResult(Tokenize(tagger, texts, num_texts));
    result->Finish();
    return result.release();
  });
}

TaggerResult* tagger_tag_text(Tagger* tagger, const char* const* texts, int num_texts) {
  return Guarded<TaggerResult*>(nullptr, [&] { return TagTexts(tagger, texts, num_texts, false); });
}

TaggerResult* tagger_tag_text_document(Tagger* tagger, const char* const* texts, int num_texts) {
  return Guarded<TaggerResult*>(nullptr, [&] { return TagTexts(tagger, texts, num_texts, true); });
}

int tagger_has_tokenizer(const Tagger* tagger) { return tagger == nullptr ? -1 : tagger->has_tokenizer ? 1 : 0; }

size_t tagger_result_size(const TaggerResult* result) {
  if (result == nullptr) return 0;
  return result->has_tags ? result->tags.size() : result->tokens.size();
}

int tagger_result_num_sentences(const TaggerResult* result) {
  return result == nullptr ? 0 : static_cast<int>(result->sentence_lengths.size());
}

const int* tagger_result_sentence_lengths(const TaggerResult* result) {
  return result == nullptr ? nullptr : ArrayOf(true, result->sentence_lengths);
}

const char* const* tagger_result_tags(const TaggerResult* result) {
  return result == nullptr ? nullptr : ArrayOf(result->has_tags, result->tag_pointers);
}

const float* tagger_result_confidences(const TaggerResult* result) {
  return result == nullptr ? nullptr : ArrayOf(result->has_tags, result->confidences);
}

const char* const* tagger_result_tokens(const TaggerResult* result) {
  return result == nullptr ? nullptr : ArrayOf(result->has_tokens, result->token_pointers);
}

const int* tagger_result_starts(const TaggerResult* result) {
  return result == nullptr ? nullptr : ArrayOf(result->has_tokens, result->starts);
}

const int* tagger_result_ends(const TaggerResult* result) {
  return result == nullptr ? nullptr : ArrayOf(result->has_tokens, result->ends);
}

void tagger_result_free(TaggerResult* result) { delete result; }

const char* tagger_last_error(void) { return last_error.c_str(); }

}  // extern "C"
