#include "head.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace {

std::vector<float> Numbers(const nlohmann::json& object, const char* key, size_t count, const std::string& where) {
  auto value = object.find(key);
  std::vector<const nlohmann::json*> items;
  if (value != object.end() && value->is_array()) {
    for (const nlohmann::json& item : *value) {
      if (item.is_array()) {
        for (const nlohmann::json& inner : item) items.push_back(&inner);
      } else {
        items.push_back(&item);
      }
    }
  }
  if (items.size() != count) {
    throw std::runtime_error(where + ": expected " + std::to_string(count) + " numbers in head \"" + key + "\"");
  }
  std::vector<float> numbers;
  for (const nlohmann::json* item : items) {
    if (!item->is_number()) throw std::runtime_error(where + ": head \"" + key + "\" holds a non-number");
    numbers.push_back(static_cast<float>(item->get<double>()));  // written from float32 values: exact
  }
  return numbers;
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
  // find() is end() on a non-object too, so a "head" that is no object reads as one without members.
  auto type = description.find("type");
  auto tags = description.find("tags");
  if (type == description.end() || !type->is_string() || tags == description.end() || !tags->is_array() ||
      tags->empty()) {
    throw std::runtime_error(where + ": head needs a \"type\" and a non-empty \"tags\" list");
  }
  for (const nlohmann::json& tag : *tags) {
    if (!tag.is_string()) throw std::runtime_error(where + ": head \"tags\" holds a non-string");
    tag_names_.push_back(tag.get<std::string>());
  }
  const auto& type_name = type->get_ref<const std::string&>();
  size_t n = tag_names_.size();
  if (type_name == "crf") {
    crf_ = true;
    transitions_ = Numbers(description, "transitions", n * n, where);
    start_ = Numbers(description, "start", n, where);
    end_ = Numbers(description, "end", n, where);
  } else if (type_name != "softmax") {
    throw std::runtime_error(where + ": unknown head type \"" + type_name + "\"");
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
