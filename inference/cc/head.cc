#include "head.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace {

// Whether `values` is a list of `count` numbers that fit a float32 (loaders.py's _floats).
bool IsFloats(const nlohmann::json& values, size_t count) {
  return values.is_array() && values.size() == count &&
         std::all_of(values.begin(), values.end(), [](const nlohmann::json& value) {
           return value.is_number() && std::abs(value.get<double>()) <= std::numeric_limits<float>::max();
         });
}

// Exact: the values were written from float32s.
void AppendFloats(const nlohmann::json& values, std::vector<float>* floats) {
  for (const nlohmann::json& value : values) floats->push_back(static_cast<float>(value.get<double>()));
}

// log(sum(exp(values))) of `count` values.
double LogSumExp(const double* values, int count) {
  double peak = *std::max_element(values, values + count);
  double sum = 0;
  for (int i = 0; i < count; ++i) sum += std::exp(values[i] - peak);
  return peak + std::log(sum);
}

}  // namespace

Head::Head(const nlohmann::json& description, const std::string& where) {
  // The checks and messages of loaders.py's _check_head, which refuses the same heads.
  if (!description.is_object()) throw std::runtime_error(where + ": expected an object \"head\"");
  auto type = description.find("type");
  if (type == description.end() || (*type != "crf" && *type != "softmax")) {
    throw std::runtime_error(where + ": expected head \"type\" to be \"crf\" or \"softmax\"");
  }
  auto tags = description.find("tags");
  if (tags == description.end() || !tags->is_array() || tags->empty() ||
      !std::all_of(tags->begin(), tags->end(), [](const nlohmann::json& tag) { return tag.is_string(); })) {
    throw std::runtime_error(where + ": expected head \"tags\" to be a non-empty list of strings");
  }
  for (const nlohmann::json& tag : *tags) tag_names_.push_back(tag.get<std::string>());
  crf_ = *type == "crf";
  if (!crf_) return;
  size_t n = tag_names_.size();
  std::string tag_count = std::to_string(n);
  auto transitions = description.find("transitions");
  auto is_row = [n](const nlohmann::json& row) { return IsFloats(row, n); };
  if (transitions == description.end() || !transitions->is_array() || transitions->size() != n ||
      !std::all_of(transitions->begin(), transitions->end(), is_row)) {
    throw std::runtime_error(where + ": expected head \"transitions\" to be " + tag_count + " lists of " + tag_count +
                             " float32 numbers (the head has " + tag_count + " tags)");
  }
  for (const nlohmann::json& row : *transitions) AppendFloats(row, &transitions_);
  for (auto [key, scores] : {std::pair{"start", &start_}, std::pair{"end", &end_}}) {
    auto values = description.find(key);
    if (values == description.end() || !IsFloats(*values, n)) {
      throw std::runtime_error(where + ": expected head \"" + key + "\" to be a list of " + tag_count +
                               " float32 numbers (the head has " + tag_count + " tags)");
    }
    AppendFloats(*values, scores);
  }
}

void Head::Decode(const float* emissions, int length, int* tags, float* confidences) const {
  if (crf_) {
    DecodeCrf(emissions, length, tags, confidences);
  } else {
    DecodeSoftmax(emissions, length, tags, confidences);
  }
}

void Head::DecodeSoftmax(const float* emissions, int length, int* tags, float* confidences) const {
  int n = num_tags();
  for (int t = 0; t < length; ++t) {
    const float* row = emissions + t * n;
    int best = static_cast<int>(std::max_element(row, row + n) - row);  // the first of equal maxima, as tf.argmax
    double sum = 0;
    for (int j = 0; j < n; ++j) sum += std::exp(static_cast<double>(row[j]) - row[best]);
    tags[t] = best;
    confidences[t] = static_cast<float>(1.0 / sum);
  }
}

void Head::DecodeCrf(const float* emissions, int length, int* tags, float* confidences) const {
  int n = num_tags();
  // Viterbi in float32 with the graph's order of additions, so the same path wins.
  std::vector<float> score(start_), next(n);
  std::vector<int> backpointers(static_cast<size_t>(length) * n);
  for (int j = 0; j < n; ++j) score[j] += emissions[j];
  for (int t = 1; t < length; ++t) {
    for (int j = 0; j < n; ++j) {
      int best = 0;
      float best_score = score[0] + transitions_[j];
      for (int i = 1; i < n; ++i) {
        float candidate = score[i] + transitions_[i * n + j];
        if (candidate > best_score) best_score = candidate, best = i;
      }
      backpointers[static_cast<size_t>(t) * n + j] = best;
      next[j] = best_score + emissions[t * n + j];
    }
    score.swap(next);
  }
  int last = 0;
  for (int j = 1; j < n; ++j) {
    if (score[j] + end_[j] > score[last] + end_[last]) last = j;
  }
  tags[length - 1] = last;
  for (int t = length - 1; t > 0; --t) tags[t - 1] = backpointers[static_cast<size_t>(t) * n + tags[t]];

  // Forward-backward in log space (double): p(tag_t = tags[t] | sentence).
  std::vector<double> alpha(static_cast<size_t>(length) * n), beta(static_cast<size_t>(length) * n), terms(n);
  for (int j = 0; j < n; ++j) alpha[j] = static_cast<double>(start_[j]) + emissions[j];
  for (int t = 1; t < length; ++t) {
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < n; ++i) terms[i] = alpha[(t - 1) * n + i] + transitions_[i * n + j];
      alpha[t * n + j] = LogSumExp(terms.data(), n) + emissions[t * n + j];
    }
  }
  for (int j = 0; j < n; ++j) beta[(length - 1) * n + j] = end_[j];
  for (int t = length - 2; t >= 0; --t) {
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        terms[j] = static_cast<double>(transitions_[i * n + j]) + emissions[(t + 1) * n + j] + beta[(t + 1) * n + j];
      }
      beta[t * n + i] = LogSumExp(terms.data(), n);
    }
  }
  for (int j = 0; j < n; ++j) terms[j] = alpha[(length - 1) * n + j] + end_[j];
  double log_partition = LogSumExp(terms.data(), n);
  for (int t = 0; t < length; ++t) {
    confidences[t] = static_cast<float>(std::exp(alpha[t * n + tags[t]] + beta[t * n + tags[t]] - log_partition));
  }
}
