/* The one-shot token filter (Wang et al., arXiv 2305.14840) for NesT: a small MLP scores each top-level
 * token from the patch embeddings it covers (plus their position embeddings, and optionally the image's
 * mean as context), once, before any attention; the top-k by score are kept (nest_forward_filtered). */
#pragma once
#include <stdint.h>

#include "nn/safetensors.h"
#include "vision/nest.h"

typedef struct tf_filter {
    int in_dim, hidden, context;                /* in_dim = C_0, or 2 * C_0 with the image-mean context */
    float keep;                                 /* default keep ratio stored with the filter */
    const float *fc1_w, *fc1_b, *fc2_w, *fc2_b; /* [hidden, in_dim], [hidden], [1, hidden], [1] */
    float *owned;                               /* weights trained in memory (tf_fit), else NULL */
} tf_filter;

/* Binds prefix + "fc1.weight" ... and prefix + "vidcap.config" ({"hidden":H,"context":true,"keep":0.5})
 * from f; the filter must fit a backbone whose level-0 width is c0. */
int tf_filter_bind(tf_filter *t, const st_file *f, const char *prefix, int c0, char *err, size_t errlen);
void tf_filter_free(tf_filter *t);
/* Writes the filter as a standalone file (vidcap.arch = token_filter), atomically. */
int tf_filter_save(const tf_filter *t, const char *path, char *err, size_t errlen);

/* One feature row per top-level token from s->embed (after nest_embed): the mean over its group of
 * (patch embedding + level-0 position embedding), then, with context, the mean of all rows. feat holds
 * tf_groups() * in_dim floats. */
void tf_features(const nest_state *s, int context, float *feat);
/* scores[g] = fc2(gelu(fc1(feat[g]))); hidden: groups * t->hidden floats of scratch */
void tf_scores(const tf_filter *t, const float *feat, int groups, float *hidden, float *scores);
/* mask[g] = 1 for the max(1, round(keep * groups)) highest scores (ties to the lower index) */
void tf_keep_topk(const float *scores, int groups, float keep, uint8_t *mask);

/* Fitting: BCE on (feature row, label) pairs, Adam, minibatches of 256, a fixed seed. */
typedef struct tf_fit_params {
    int hidden, context, epochs;
    float lr, keep;
    uint64_t seed;
    void (*progress)(int epoch, int epochs, float loss, void *user_data);
    void *user_data;
} tf_fit_params;

int tf_fit(const float *feat, const float *labels, int64_t n, int in_dim, const tf_fit_params *p,
           tf_filter *out);
