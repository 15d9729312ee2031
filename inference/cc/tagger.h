/* C API of libtagger: tokenizes raw text and tags it with a frozen or export model folder
 * (freeze.py or export.py output), sentence by sentence or, for models that read the words
 * around a sentence (bert_context=document), document by document.
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
 * TensorFlow choose.
 *
 * The op libraries that serving.json lists under "op_libraries" (TF Text's
 * _regex_split_ops.so, which the tokenizer runs on) are loaded first, once per process, from
 * the folder that the environment variable NER_TF_OPS_DIR names, else from the tensorflow-text
 * package that the build found (tensorflow_text/python/ops of the Python interpreter it used). */
TAGGER_API Tagger* tagger_open(const char* folder, int threads);

TAGGER_API void tagger_close(Tagger* tagger);

/* How many feature columns each token needs (0 for a model that reads words only), and the
 * CoNLL column (0 is the word) that feature `index` comes from; -1 if index is out of range. */
TAGGER_API int tagger_num_feature_columns(const Tagger* tagger);
TAGGER_API int tagger_feature_column(const Tagger* tagger, int index);

/* 1 if the folder holds the raw-text tokenizer (serving.json "tokenizer"), 0 if it was written
 * before raw text was tokenized inside the graph, -1 for NULL. */
TAGGER_API int tagger_has_tokenizer(const Tagger* tagger);

/* Tags num_sentences sentences in one batch. tokens holds the tokens of all sentences in
 * order (non-empty UTF-8, NUL-terminated); lengths[i] >= 1 is the token count of sentence i.
 * features is NULL for a model without feature columns, else per token its
 * tagger_num_feature_columns() values, token by token, in the order of tokens. A model that reads
 * document context (tagger_context_words() > 0) tags each sentence alone, as its own document;
 * tagger_tag_context and tagger_tag_document give it the words around the sentences. */
TAGGER_API TaggerResult* tagger_tag(Tagger* tagger, const char* const* tokens, const int* lengths, int num_sentences,
                                    const char* const* features);

/* How many words of its document a model reads on each side of a sentence (serving.json
 * "context_words"; models trained with bert_context=document), 0 for a model that reads each
 * sentence alone, -1 for NULL. */
TAGGER_API int tagger_context_words(const Tagger* tagger);

/* tagger_tag with each sentence's document context given. left_tokens holds, sentence by sentence,
 * the words of its document before it, nearest last: left_lengths[i] >= 0 of them for sentence i;
 * right_tokens and right_lengths likewise the words after it, nearest first. Words are non-empty
 * UTF-8, NUL-terminated; a side whose lengths are NULL holds no words (its tokens are not read).
 * The graph keeps the words nearest the sentence that fit in its BERT window, so more than
 * tagger_context_words() on a side are never read. A model that reads no context ignores them:
 * this is then tagger_tag. */
TAGGER_API TaggerResult* tagger_tag_context(Tagger* tagger, const char* const* tokens, const int* lengths,
                                            int num_sentences, const char* const* features,
                                            const char* const* left_tokens, const int* left_lengths,
                                            const char* const* right_tokens, const int* right_lengths);

/* tagger_tag of num_sentences sentences that are one document, in order: each is tagged with up to
 * tagger_context_words() words of the others on each side, the words of the sentences before it
 * and after it (ner/data/documents.py's rule; a CoNLL document runs from one -DOCSTART- line to
 * the next). A long document is tagged in several batches. For a model that reads no context this
 * is tagger_tag. */
TAGGER_API TaggerResult* tagger_tag_document(Tagger* tagger, const char* const* tokens, const int* lengths,
                                             int num_sentences, const char* const* features);

/* Tokenizes num_texts raw texts (UTF-8, NUL-terminated; one text is one sentence) with the
 * folder's tokenizer graph, as every other loader of the folder does. The result holds the
 * tokens and their offsets, no tags. Fails for a folder without a tokenizer. */
TAGGER_API TaggerResult* tagger_tokenize(Tagger* tagger, const char* const* texts, int num_texts);

/* Tokenizes num_texts raw texts as tagger_tokenize does, then tags them in one batch: the result
 * holds the tokens, their offsets, tags and confidences. A text without a token (empty, blank,
 * only invisible characters) gets 0 tokens. Fails for a model that reads feature columns. A model
 * that reads document context tags each text alone (tagger_tag_text_document reads documents). */
TAGGER_API TaggerResult* tagger_tag_text(Tagger* tagger, const char* const* texts, int num_texts);

/* tagger_tag_text of num_texts texts (lines) that are the sentences of one document, in order:
 * their tokens are tagged as tagger_tag_document tags sentences. A text without a token gets 0
 * tokens and gives its neighbours no words. A long document is tokenized and tagged in several
 * batches. For a model that reads no context this is tagger_tag_text. */
TAGGER_API TaggerResult* tagger_tag_text_document(Tagger* tagger, const char* const* texts, int num_texts);

/* A result's tokens, all sentences (texts) in order: tagger_result_size() of them.
 *   tagger_result_num_sentences / _sentence_lengths: the sentences (texts) and how many tokens
 *     each has (0 for a text without a token);
 *   tagger_result_tags / _confidences: each token's IOB2 tag and its confidence (the tag's
 *     marginal probability); NULL for a tagger_tokenize result;
 *   tagger_result_tokens / _starts / _ends: each token (UTF-8, NUL-terminated) and its character
 *     (code point) offsets in its text, end exclusive; NULL for a tagger_tag, _tag_context or
 *     _tag_document result.
 * Arrays are owned by the result and live until tagger_result_free(). */
TAGGER_API size_t tagger_result_size(const TaggerResult* result);
TAGGER_API int tagger_result_num_sentences(const TaggerResult* result);
TAGGER_API const int* tagger_result_sentence_lengths(const TaggerResult* result);
TAGGER_API const char* const* tagger_result_tags(const TaggerResult* result);
TAGGER_API const float* tagger_result_confidences(const TaggerResult* result);
TAGGER_API const char* const* tagger_result_tokens(const TaggerResult* result);
TAGGER_API const int* tagger_result_starts(const TaggerResult* result);
TAGGER_API const int* tagger_result_ends(const TaggerResult* result);
TAGGER_API void tagger_result_free(TaggerResult* result);

/* Why the calling thread's last failed call failed ("" if none failed). */
TAGGER_API const char* tagger_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* NER_TAGGER_H_ */
