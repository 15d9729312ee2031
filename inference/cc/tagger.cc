// libtagger: the C API of tagger.h on TensorFlow's C API (which links fast and has a stable
// ABI, unlike the C++ API). A frozen folder is imported once into a TF_Graph; each call feeds
// one padded batch to a session whose executor TensorFlow caches after the first call. When
// serving.json describes the head (freeze.py writes it), the session stops at the emission
// scores and the head runs natively (head.h); otherwise the graph's tags and confidences are read.
#include "tagger.h"

#include <tensorflow/c/c_api.h>
#include <tensorflow/c/tf_tstring.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "head.h"
#include "utf8.h"

namespace {

// Bounds the memory of one call: a padded batch holds at most this many token slots.
constexpr int64_t kMaxBatchSlots = int64_t{1} << 24;
constexpr std::streamsize kMaxManifestBytes = 1 << 20;
constexpr int kMaxManifestDepth = 64;  // deeper nesting is no manifest: refused as malformed

thread_local std::string last_error;

struct StatusDeleter {
  void operator()(TF_Status* status) const { TF_DeleteStatus(status); }
};
struct GraphDeleter {
  void operator()(TF_Graph* graph) const { TF_DeleteGraph(graph); }
};
struct TensorDeleter {
  void operator()(TF_Tensor* tensor) const { TF_DeleteTensor(tensor); }
};
using Status = std::unique_ptr<TF_Status, StatusDeleter>;
using Graph = std::unique_ptr<TF_Graph, GraphDeleter>;
using Tensor = std::unique_ptr<TF_Tensor, TensorDeleter>;

void Check(TF_Status* status, const std::string& doing) {
  if (TF_GetCode(status) != TF_OK) throw std::runtime_error(doing + ": " + TF_Message(status));
}

std::string ReadFile(const std::string& path, std::streamsize limit) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream content;
  content << file.rdbuf();
  if (file.bad()) throw std::runtime_error("cannot read " + path);
  std::string text = content.str();
  if (limit > 0 && static_cast<std::streamsize>(text.size()) > limit) throw std::runtime_error(path + " is too large");
  return text;
}

// serving.json, parsed; every error names `path` (nlohmann's own messages name no file).
nlohmann::json ReadManifest(const std::string& path) {
  std::string text = ReadFile(path, kMaxManifestBytes);
  auto bound_depth = [&path](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxManifestDepth) {
      throw std::runtime_error(path + ": JSON nested more than " + std::to_string(kMaxManifestDepth) + " levels deep");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text, bound_depth);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                             utf8::EscapeInvalid(e.what()));
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    throw std::runtime_error(path + ": invalid JSON: " + utf8::EscapeInvalid(e.what()));
  }
}

// find() on a non-object is end(), so a member of something that is no object reads as missing.
const std::string& StringMember(const nlohmann::json& object, const char* key, const std::string& where) {
  auto value = object.find(key);
  if (value == object.end() || !value->is_string()) {
    throw std::runtime_error(where + ": expected a string \"" + key + "\"");
  }
  return value->get_ref<const std::string&>();
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
  TF_Output words{}, lengths{}, features{}, tags{}, confidence{}, emissions{};
  std::vector<int> feature_columns;
  std::unique_ptr<Head> head;  // set when the head runs natively on `emissions`

  ~Tagger() {
    if (session == nullptr) return;
    Status status(TF_NewStatus());
    TF_CloseSession(session, status.get());
    TF_DeleteSession(session, status.get());
  }

  TF_Output Output(const std::string& name) const {
    size_t colon = name.rfind(':');
    std::string op = name.substr(0, colon);
    int index = colon == std::string::npos ? 0 : std::atoi(name.c_str() + colon + 1);
    TF_Operation* operation = TF_GraphOperationByName(graph.get(), op.c_str());
    if (operation == nullptr) throw std::runtime_error("the graph has no tensor " + name);
    return {operation, index};
  }
};

struct TaggerResult {
  std::vector<std::string> tags;
  std::vector<const char*> tag_pointers;
  std::vector<float> confidences;
};

namespace {

// A frozen folder: imports the graph, starts a session and runs the op that fills the tables.
void LoadFrozen(const char* folder, const nlohmann::json& manifest, const std::string& manifest_path,
                const TF_SessionOptions* options, Tagger* tagger, TF_Status* status) {
  std::string graph_bytes = ReadFile(std::string(folder) + "/" + StringMember(manifest, "graph", manifest_path), 0);
  TF_Buffer* buffer = TF_NewBufferFromString(graph_bytes.data(), graph_bytes.size());
  TF_ImportGraphDefOptions* import_options = TF_NewImportGraphDefOptions();
  TF_GraphImportGraphDef(tagger->graph.get(), buffer, import_options, status);
  TF_DeleteImportGraphDefOptions(import_options);
  TF_DeleteBuffer(buffer);
  if (TF_GetCode(status) != TF_OK) return;
  const std::string& init_name = StringMember(manifest, "init_op", manifest_path);
  TF_Operation* init = TF_GraphOperationByName(tagger->graph.get(), init_name.c_str());
  if (init == nullptr) throw std::runtime_error("the graph has no op " + init_name);
  tagger->session = TF_NewSession(tagger->graph.get(), options, status);
  if (TF_GetCode(status) != TF_OK) return;
  TF_SessionRun(tagger->session, nullptr, nullptr, nullptr, 0, nullptr, nullptr, 0, &init, 1, nullptr, status);
}

}  // namespace

extern "C" {

Tagger* tagger_open(const char* folder, int threads) {
  return Guarded<Tagger*>(nullptr, [&]() -> Tagger* {
    if (folder == nullptr) throw std::invalid_argument("model folder is NULL");
    if (threads < 0) throw std::invalid_argument("threads must be >= 0");
    std::string manifest_path = std::string(folder) + "/serving.json";
    nlohmann::json manifest = ReadManifest(manifest_path);
    auto inputs = manifest.find("inputs");
    auto outputs = manifest.find("outputs");
    auto columns = manifest.find("feature_columns");
    if (inputs == manifest.end() || outputs == manifest.end() || columns == manifest.end() || !columns->is_array()) {
      throw std::runtime_error(manifest_path + ": expected \"inputs\", \"outputs\" and \"feature_columns\"");
    }
    auto tagger = std::make_unique<Tagger>();
    for (const nlohmann::json& column : *columns) {
      if (!column.is_number()) throw std::runtime_error(manifest_path + ": bad feature_columns");
      tagger->feature_columns.push_back(static_cast<int>(column.get<double>()));  // 2 and 2.0 alike, as before
    }

    tagger->graph.reset(TF_NewGraph());
    Status status(TF_NewStatus());
    TF_SessionOptions* options = TF_NewSessionOptions();
    std::string config = ThreadConfig(threads);
    TF_SetConfig(options, config.data(), config.size(), status.get());
    if (TF_GetCode(status.get()) == TF_OK) {
      if (std::ifstream(std::string(folder) + "/saved_model.pb")) {
        // An export folder: the SavedModel loader restores the variables and fills the tables.
        const char* tags[] = {"serve"};
        tagger->session = TF_LoadSessionFromSavedModel(options, nullptr, folder, tags, 1, tagger->graph.get(),
                                                       nullptr, status.get());
      } else {
        LoadFrozen(folder, manifest, manifest_path, options, tagger.get(), status.get());
      }
    }
    TF_DeleteSessionOptions(options);
    Check(status.get(), std::string("loading ") + folder);

    tagger->words = tagger->Output(StringMember(*inputs, "words", manifest_path));
    tagger->lengths = tagger->Output(StringMember(*inputs, "lengths", manifest_path));
    if (!tagger->feature_columns.empty()) tagger->features = tagger->Output(StringMember(*inputs, "features", manifest_path));
    auto head = manifest.find("head");
    if (head != manifest.end() && outputs->contains("emissions")) {
      tagger->head = std::make_unique<Head>(*head, manifest_path);
      tagger->emissions = tagger->Output(StringMember(*outputs, "emissions", manifest_path));
    } else {
      tagger->tags = tagger->Output(StringMember(*outputs, "tags", manifest_path));
      tagger->confidence = tagger->Output(StringMember(*outputs, "confidence", manifest_path));
    }
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

TaggerResult* tagger_tag(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
                         const char* const* features) {
  return Guarded<TaggerResult*>(nullptr, [&]() -> TaggerResult* {
    if (tagger == nullptr || tokens == nullptr || lengths == nullptr) throw std::invalid_argument("NULL argument");
    if (num_sentences < 1) throw std::invalid_argument("no sentences to tag");
    int num_columns = static_cast<int>(tagger->feature_columns.size());
    if (num_columns > 0 && features == nullptr) {
      throw std::invalid_argument("the model reads " + std::to_string(num_columns) + " feature columns; features is NULL");
    }
    int64_t num_tokens = 0, longest = 0;
    for (int i = 0; i < num_sentences; ++i) {
      if (lengths[i] < 1) throw std::invalid_argument("sentence " + std::to_string(i) + " is empty");
      num_tokens += lengths[i];
      longest = std::max<int64_t>(longest, lengths[i]);
    }
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
        auto where = [b, t] { return "token " + std::to_string(t) + " of sentence " + std::to_string(b); };
        size_t size = CheckedSize(tokens[token], where);
        if (size == 0) throw std::invalid_argument(where() + " is empty");  // "" is the graph's padding
        TF_TString_Copy(&word_data[b * longest + t], tokens[token], size);
        for (int c = 0; c < num_columns; ++c) {
          const char* value = features[token * num_columns + c];
          size = CheckedSize(value, [&] { return "feature " + std::to_string(c) + " of " + where(); });
          TF_TString_Copy(&feature_data[(b * longest + t) * num_columns + c], value, size);
        }
      }
    }

    std::vector<TF_Output> inputs = {tagger->words, tagger->lengths};
    std::vector<TF_Tensor*> input_values = {words.get(), length_values.get()};
    if (num_columns > 0) {
      inputs.push_back(tagger->features);
      input_values.push_back(feature_values.get());
    }
    auto result = std::make_unique<TaggerResult>();
    result->tags.reserve(num_tokens);
    result->confidences.reserve(num_tokens);
    Status status(TF_NewStatus());
    if (tagger->head != nullptr) {
      TF_Tensor* emission_values = nullptr;
      TF_SessionRun(tagger->session, nullptr, inputs.data(), input_values.data(), static_cast<int>(inputs.size()),
                    &tagger->emissions, &emission_values, 1, nullptr, 0, nullptr, status.get());
      Tensor emissions(emission_values);
      Check(status.get(), "tagging");
      int num_tags = tagger->head->num_tags();
      if (TF_TensorType(emissions.get()) != TF_FLOAT || TF_TensorElementCount(emissions.get()) != batch * longest * num_tags) {
        throw std::runtime_error("the graph's emissions are not scores [batch, time, " + std::to_string(num_tags) + "]");
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
    for (const std::string& tag : result->tags) result->tag_pointers.push_back(tag.c_str());
    return result.release();
  });
}

size_t tagger_result_size(const TaggerResult* result) { return result == nullptr ? 0 : result->tags.size(); }

const char* const* tagger_result_tags(const TaggerResult* result) {
  return result == nullptr ? nullptr : result->tag_pointers.data();
}

const float* tagger_result_confidences(const TaggerResult* result) {
  return result == nullptr ? nullptr : result->confidences.data();
}

void tagger_result_free(TaggerResult* result) { delete result; }

const char* tagger_last_error(void) { return last_error.c_str(); }

}  // extern "C"
