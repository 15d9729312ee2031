// The tagging head run natively on the graph's emission scores: CRF Viterbi decoding with the
// posterior probability of each chosen tag, or a per-token softmax. Inside the graph these are
// loops of small ops whose overhead is most of a sentence's latency; here they cost microseconds.
// The arithmetic follows layers/crf.py and layers/softmax.py, so tags equal the graph's.
#ifndef NER_HEAD_H_
#define NER_HEAD_H_

#include <string>
#include <vector>

// The declarations only: head.cc and tagger.cc include the whole library.
#include <nlohmann/json_fwd.hpp>

class Head {
 public:
  // From serving.json's "head": {"type": "crf"|"softmax", "tags": [...], and for a CRF
  // "transitions" [N][N] (indexed [previous][next]), "start" [N], "end" [N]}. Throws
  // std::runtime_error naming `where` when the description is malformed (the checks and
  // messages of ner/serving/loaders.py's _check_head).
  Head(const nlohmann::json& description, const std::string& where);

  int num_tags() const { return static_cast<int>(tag_names_.size()); }
  const std::string& tag_name(int id) const { return tag_names_[id]; }

  // emissions: [length][num_tags] row-major scores of one sentence (length >= 1). Writes the
  // best tag ids and each one's posterior probability (length values each).
  void Decode(const float* emissions, int length, int* tags, float* confidences) const;

 private:
  void DecodeCrf(const float* emissions, int length, int* tags, float* confidences) const;
  void DecodeSoftmax(const float* emissions, int length, int* tags, float* confidences) const;

  bool crf_ = false;
  std::vector<std::string> tag_names_;
  std::vector<float> transitions_, start_, end_;
};

#endif  // NER_HEAD_H_
