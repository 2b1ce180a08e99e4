/* Captioner internals shared by its files: the bound model, the run state and its arena, and the
 * per-stage functions (encoder.c, proposals.c, mask.c, decoder.c, vocab.c) that captioner.c strings
 * together. Not part of the module API (captioning/captioner.h). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "captioning/captioner.h"
#include "nn/nn.h"
#include "nn/safetensors.h"

#define CAP_LN_EPS 1e-6f /* added to the unbiased std (densecap's LayerNorm) */
#define CAP_BN_EPS 1e-5f /* PyTorch BatchNorm1d default */
/* proposals per batch are bounded so that chunk x window x d_model stays near this many floats */
#define CAP_CHUNK_FLOATS (1 << 22)
#define CAP_MAX_CHUNK 16
/* the first four words of every vocabulary (tools/masked_transformer.py SPECIALS) */
enum { CAP_TOK_UNK = 0, CAP_TOK_PAD = 1, CAP_TOK_INIT = 2, CAP_TOK_EOS = 3 };

/* ---- weights (pointers into the mapping) ---- */

typedef struct cap_attn_w {
    const float *wq, *wk, *wv, *wo; /* [d, d], no bias */
    const float *ln_gamma, *ln_beta;
} cap_attn_w;

typedef struct cap_ffn_w {
    const float *w1, *b1; /* [ff, d], [ff] */
    const float *w2, *b2; /* [d, ff], [d] */
    const float *ln_gamma, *ln_beta;
} cap_ffn_w;

typedef struct cap_enc_layer {
    cap_attn_w self;
    cap_ffn_w ffn;
} cap_enc_layer;

typedef struct cap_dec_layer {
    cap_attn_w self, cross;
    cap_ffn_w ffn;
} cap_dec_layer;

typedef struct cap_bn {
    const float *gamma, *beta, *mean, *var;
} cap_bn;

/* one anchor branch (prop_out.<i>): BN, depthwise conv, BN, pointwise conv, BN, ReLU, BN, conv d -> 4 */
typedef struct cap_branch {
    int kernel, stride;
    int n_anchors; /* over a full window: (T - k) / stride + 1 */
    cap_bn bn0, bn2, bn4, bn6;
    const float *depthwise;     /* [d, 1, k] */
    const float *pointwise;     /* [d, d, 1] */
    const float *out_w, *out_b; /* [4, d, 1], [4] */
} cap_branch;

struct cap_model {
    cap_config cfg;
    const float *emb_w, *emb_b;     /* [d, d_in], [d] */
    cap_enc_layer *enc;             /* [n_layers] */
    cap_dec_layer *dec;             /* [n_layers] */
    cap_branch *branches;           /* [n_kernels] */
    int max_anchors;                /* every branch that fits in a window */
    const float *mask_w0;           /* [d, 4 pe_mask_dim + T], no bias */
    cap_bn mask_bn;                 /* [d] */
    const float *mask_w3, *mask_b3; /* [T, d], [T] */
    const float *out_w, *out_b;     /* [V, d], [V]: tied with the word embedding */
    float *pos;                     /* [max(T, max_tokens), d] sinusoidal PE of the integer positions */
    double *mask_inv_freq;          /* [pe_mask_dim] inverse frequencies of rho */
    float embed_scale;              /* 1 - time_dropout, the eval form of non-inverted time dropout */
    /* vocabulary */
    int n_vocab; /* words[0..3] are <unk> <pad> <init> <eos> */
    char **words;
    char *word_blob;
    cap_params defaults;
};

/* ---- config.c ---- */
int cap_config_parse(const char *json, cap_config *c, char *err, size_t errlen);
int cap_inference_parse(const char *json, cap_params *p, char *err, size_t errlen);
int cap_params_check(const cap_params *p, char *err, size_t errlen);

/* ---- vocab.c ---- */
int cap_vocab_parse(cap_model *m, const char *json, char *err, size_t errlen);
void cap_vocab_free(cap_model *m);
/* words of tokens[0..n) joined by spaces into out (cut at a word boundary when it does not fit) */
void cap_vocab_join(const cap_model *m, const int *tokens, int n, char *out, size_t outlen);

/* ---- positional encodings (encoder.c) ---- */
/* pe[c] for position x: sin(x / 10000^(c/D)) for even c, cos(x / 10000^((c-1)/D)) for odd c, evaluated in
 * double and rounded once (as the reference does), with inv[c] = 10000^(-(c - c mod 2)/D) from
 * cap_pe_inv_freq. */
void cap_pe_inv_freq(int D, double *inv);
void cap_pe(double x, const double *inv, int D, float *pe);

/* ---- the run state ---- */

typedef struct cap_cand {
    float score;
    int anchor;
} cap_cand;

/* a kept proposal, in score order */
typedef struct cap_kept {
    float start, end, score; /* decoded proposal (steps) and sigmoid(logit) */
    int w_start, w_end;      /* quantised window [w_start, w_end) */
    int anchor;
} cap_kept;

struct cap_state {
    const cap_model *m;
    cap_trace_fn trace;
    void *trace_user;
    nn_arena arena;
    int chunk;           /* proposals per batch */
    int beam, n_threads; /* what the arena was sized for */
    /* unmasked pass */
    float *embed;   /* [T, d] E */
    float *base;    /* [T, d] E + PE */
    float *enc_out; /* [n_layers, T, d] */
    /* encoder scratch, rows up to chunk x T */
    float *x, *q, *k, *v, *att, *tmp, *hidden; /* [rows, d] except hidden [rows, ff] */
    float *attn_ws;                            /* nn_mha workspace for n_threads */
    size_t ws_per_thread;                      /* floats of attn_ws per thread */
    /* anchors, over every branch that fits in a window */
    float *br_a, *br_b;                                     /* [T, d] branch activations */
    float *anchors;                                         /* [max_anchors, 4] branch outputs */
    float *a_centre, *a_length, *a_score, *a_start, *a_end; /* [max_anchors] */
    cap_cand *cand;                                         /* [max_anchors] candidates, best first */
    cap_kept *kept;                                         /* [max_anchors] */
    /* masks of a chunk */
    float *mask_in;     /* [chunk, 4 pe_mask_dim + T] */
    float *mask_hidden; /* [chunk, d] */
    float *mask_logits; /* [chunk, T] g */
    float *mask;        /* [chunk, T] M */
    /* cross-attention keys and values of the masked memories: [n_layers, chunk, T, d] */
    float *mem_k, *mem_v;
    /* decoder, R = chunk x beam rows */
    float *dx, *dq, *dk, *dv, *datt, *dtmp; /* [R, d] */
    float *dhidden;                         /* [R, ff] */
    float *logits;                          /* [R, V] */
    float *cache_k[2], *cache_v[2];         /* [n_layers, R, max_tokens, d], double-buffered for beams */
    int *tok[2];                            /* [R, max_tokens] hypotheses' tokens, <init> first */
    int *len[2];                            /* [R] tokens in each hypothesis */
    int *in_tok;                            /* [R] the tokens a step reads */
    float *score[2];                        /* [R] summed log-probs */
    unsigned char *ended[2];                /* [R] */
    int *n_hyps;                            /* [chunk] */
    int *n_steps;                           /* [chunk] decoding steps taken, the <eos> step included */
    float *sel_score;                       /* [beam] the best candidates of one step of one proposal */
    int *sel_src, *sel_word;                /* [beam] source hypothesis, word (-1: carried as ended) */
};

/* emits a trace tensor (name printf-style) when tracing is on */
void cap_trace_emit(const cap_state *s, const float *data, int ndim, int64_t d0, int64_t d1, const char *fmt,
                    ...) __attribute__((format(printf, 6, 7)));

/* ---- encoder.c ---- */
/* E = ReLU((1 - p)(x W^T + b)) for the L real rows, the bias-only row for the padding; base = E + PE */
void cap_embed(cap_state *s, nn_pool *pool, const float *features, int L);
/* the unmasked pass: enc_out[l] for every layer */
void cap_encode(cap_state *s, nn_pool *pool);
/* the masked passes of n proposals (masks in s->mask; first: global index of the first, for the trace):
 * fills mem_k / mem_v with every decoder layer's cross-attention keys and values */
void cap_encode_masked(cap_state *s, nn_pool *pool, int n, int first);

/* ---- proposals.c ---- */
/* runs the branches with kernel <= L on the last encoder layer and decodes every anchor; returns how many */
int cap_anchors(cap_state *s, nn_pool *pool, int L);
/* candidates, filtering, NMS and quantisation into s->kept; returns how many were kept */
int cap_select(cap_state *s, int n_anchors, int L, const cap_params *p);

/* ---- mask.c ---- */
/* gated masks of s->kept[first .. first + n) into s->mask */
void cap_masks(cap_state *s, nn_pool *pool, int first, int n);

/* ---- decoder.c ---- */
/* captions of the n proposals whose memories cap_encode_masked filled, into out[0..n) (tokens, sentence) */
void cap_decode(cap_state *s, nn_pool *pool, int n, int beam, int first, cap_proposal *out);
