/* C API of libtagger: tags tokenized sentences with a frozen model folder (freeze.py output).
 *
 * Every function is safe to call from several threads on one Tagger. A call that fails
 * returns NULL (or -1) and leaves a message for tagger_last_error() in the calling thread.
 */
#ifndef NER_TAGGER_H_
#define NER_TAGGER_H_

#include <stddef.h>

/* libtagger exports only these functions (it is built with hidden visibility). */
#define TAGGER_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Tagger Tagger;
typedef struct TaggerResult TaggerResult;

/* Loads a frozen folder (freeze.py) or an export folder (export.py): serving.json and the
 * graph or SavedModel beside it. threads: TensorFlow intra- and inter-op threads; 0 lets
 * TensorFlow choose. */
TAGGER_API Tagger* tagger_open(const char* folder, int threads);

TAGGER_API void tagger_close(Tagger* tagger);

/* How many feature columns each token needs (0 for a model that reads words only), and the
 * CoNLL column (0 is the word) that feature `index` comes from; -1 if index is out of range. */
TAGGER_API int tagger_num_feature_columns(const Tagger* tagger);
TAGGER_API int tagger_feature_column(const Tagger* tagger, int index);

/* Tags num_sentences sentences in one batch. tokens holds the tokens of all sentences in
 * order (non-empty UTF-8, NUL-terminated); lengths[i] >= 1 is the token count of sentence i.
 * features is NULL for a model without feature columns, else per token its
 * tagger_num_feature_columns() values, token by token, in the order of tokens. */
TAGGER_API TaggerResult* tagger_tag(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
                         const char* const* features);

/* The result has one tag (IOB2) and one confidence per input token, in the order of tokens. */
TAGGER_API size_t tagger_result_size(const TaggerResult* result);
TAGGER_API const char* const* tagger_result_tags(const TaggerResult* result);
TAGGER_API const float* tagger_result_confidences(const TaggerResult* result);
TAGGER_API void tagger_result_free(TaggerResult* result);

/* Why the calling thread's last failed call failed ("" if none failed). */
TAGGER_API const char* tagger_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* NER_TAGGER_H_ */
