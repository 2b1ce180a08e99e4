/* The Masked Transformer dense-video captioner (Zhou et al., CVPR 2018) on one window of frame features:
 * video encoder -> anchor branches, NMS -> one gated mask per proposal -> masked encoder pass -> caption
 * decoder. Semantics: specs/masked_transformer.md §1-4 and appendix A, as amended by
 * notes/captioner_contract.md (sigmoid continuous mask, zero events when nothing passes, beam search).
 *
 * Decisions where the spec left room:
 * - A run needs a cap_state (the arena, sized from the config, the chunk of proposals that run together
 *   and the beam width; it grows once when a later run asks for a wider beam or more threads, never inside
 *   the decoding loop). One model may serve several states on several threads.
 * - Kept proposals are processed in chunks of at most cap_state_chunk() proposals: the masked encoder
 *   passes of a chunk run as one batch (rows = chunk x window), and so do its decoders (rows = chunk x
 *   beam), which bounds memory however large max_events is.
 * - Event times are the quantised window [w_s, w_e] mapped as times[0] + step / fps and clipped to the
 *   duration the caller gives (a window does not know where the video ends).
 * - The sentence is the words before the first <eos> without <pad> and <init>, joined by single spaces, as
 *   the reference's words_of; a caption longer than the sentence buffer is cut at a word boundary
 *   (tokens[] keeps every token before <eos>).
 * - Decoding follows tools/masked_transformer.py: at most max_tokens - 1 steps; greedy takes the first
 *   maximal logit; beam search keeps, per step, the best `beam` of (each finished hypothesis itself, each
 *   live one's V extensions) in that order under a stable sort by the float32 sum of log-probs, and answers
 *   the first hypothesis. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"
#include "nn/safetensors.h"

#define CAP_MAX_KERNELS 64
#define CAP_MAX_TOKENS 128 /* upper bound on the config's max_tokens */
#define CAP_SENTENCE_LEN 512
#define CAP_MAX_CHUNK_SET 256 /* the largest chunk cap_state_set_chunk accepts */

/* vidcap.config of a captioner: every number the C side uses comes from here. */
typedef struct cap_config {
    int d_in, d_model, n_heads, d_ff, n_layers;
    int window; /* T: steps per window, the mask network's width */
    double fps; /* feature steps per second */
    int n_kernels;
    int kernels[CAP_MAX_KERNELS]; /* anchor lengths in steps, in branch order */
    int stride_factor;            /* branch k has stride ceil(k / stride_factor) */
    int pe_mask_dim;              /* dimension of the scalar positional encoding rho */
    int max_tokens;               /* caption length bound with <init>: max_tokens - 1 decoding steps */
    double time_dropout;          /* eval scale of the embedding: 1 - time_dropout */
} cap_config;

typedef struct cap_model cap_model;

/* Binds the tensors under `prefix` ("" for a standalone file, "captioner." inside a bundle; the metadata
 * keys carry the same prefix) in place from the mapping, which must outlive the model. Validates the
 * metadata (vidcap.arch, vidcap.format, vidcap.config, vidcap.vocab, vidcap.inference), every tensor's
 * shape against the config, that no tensor is missing or extra, the vocabulary size against the output
 * layer, and that every weight is finite. Returns 0 or VC_ERR_MODEL / VC_ERR_NOMEM with one line in err. */
int cap_model_bind(const st_file *f, const char *prefix, cap_model **out, char *err, size_t errlen);
void cap_model_free(cap_model *m); /* NULL is a no-op */

const cap_config *cap_model_config(const cap_model *m);
int cap_model_window(const cap_model *m);
double cap_model_fps(const cap_model *m);
int cap_model_d_in(const cap_model *m);
int cap_model_n_vocab(const cap_model *m);
const char *cap_model_word(const cap_model *m, int token); /* NULL outside [0, n_vocab) */

/* min_score is compared in float32 with the float32 scores, nms_tiou in double with the double tIoU, as
 * the reference does; both are doubles here so that 0.7 means the same number on both sides. */
typedef struct cap_params {
    double min_score; /* candidates need sigmoid(event logit) >= min_score */
    double nms_tiou;  /* a candidate overlapping a kept window by more than this is dropped */
    int max_events;   /* at most this many proposals per window (>= 0) */
    int beam;         /* 1: greedy decoding; > 1: beam search of that width */
} cap_params;

/* From the model's vidcap.inference metadata (beam 1 unless it says otherwise). */
cap_params cap_model_default_params(const cap_model *m);

/* One kept proposal and its caption. */
typedef struct cap_proposal {
    double t0, t1;      /* seconds: times[0] + w_start / fps, times[0] + w_end / fps, clipped to duration */
    int w_start, w_end; /* the quantised window in steps, [w_start, w_end) */
    float start, end;   /* the decoded proposal in steps (floats, before quantisation) */
    float score;        /* sigmoid of the anchor's event logit */
    int anchor;         /* index into the concatenated anchors (branch by branch, then position) */
    int n_tokens;       /* decoded tokens before the first <eos> */
    int tokens[CAP_MAX_TOKENS];
    char sentence[CAP_SENTENCE_LEN];
} cap_proposal;

/* Intermediate tensors for parity tests and debugging, named as tools/masked_transformer.py's trace (a
 * trailing .<p> is the kept proposal's index in score order, .<t> the decoding step). When set, a run calls
 * fn with each, in order:
 *   embedding [T, d], encoder.input [T, d]         E = ReLU((1 - time_dropout)(x W^T + b)), E + PE
 *   encoder.layers.<l> [T, d]                      encoder layer l, unmasked pass
 *   anchors.output [N, 4]                          branch outputs (logit, overlap, theta_l, theta_c)
 *   anchors.{centre,length,score,start,end} [N]    decoded anchors
 *   mask.input.<p> [4 D + T], mask.logits.<p> [T], mask.<p> [T]   MLP input, g, gated mask M
 *   masked.input.<p> [T, d], masked.layers.<l>.<p> [T, d]         G_0 and G_{l+1} of the masked pass
 *   decoder.logits.<p>.<t> [V]                     logits of step t of the caption (beam search: of the
 *                                                  chosen hypothesis, replayed after the search)
 * The data is only valid during the call. */
typedef void (*cap_trace_fn)(void *user, const char *name, const float *data, int ndim, const int64_t *shape);

typedef struct cap_state cap_state;

cap_state *cap_state_create(const cap_model *m); /* NULL when out of memory */
void cap_state_free(cap_state *s);               /* NULL is a no-op */
void cap_state_set_trace(cap_state *s, cap_trace_fn fn, void *user);
int cap_state_chunk(const cap_state *s); /* proposals per masked-encoder / decoder batch */
/* Sets the chunk (1..CAP_MAX_CHUNK_SET) and re-sizes the arena: larger chunks make larger GEMMs and use
 * more memory. Returns 0, VC_ERR_ARG or VC_ERR_NOMEM (the state is then unusable until a call succeeds). */
int cap_state_set_chunk(cap_state *s, int chunk);

/* Runs one window: features [L, d_in] (row k is step k), times [L] (the steps' times in seconds), with
 * 0 <= L <= window (shorter windows are zero-padded to the window, as in training; L = 0 gives no events).
 * Event times are min(times[0] + w / fps, duration); duration <= 0 (or not finite) means times[L-1] + 1 /
 * fps, the end of the window (tools/masked_transformer.py's default). Writes up to p->max_events proposals
 * into out[] in descending score order and their count into *n_out. Returns 0, or VC_ERR_ARG for bad
 * arguments (non-finite features or times, L out of range, bad params) and VC_ERR_NOMEM, with one line in
 * err. pool may be NULL (serial). */
int cap_run_window(cap_state *s, nn_pool *pool, const float *features, const float *times, int L,
                   double duration, const cap_params *p, cap_proposal *out, int *n_out, char *err,
                   size_t errlen);
