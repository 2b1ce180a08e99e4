/* The model object behind vidcap.h: a validated safetensors file, the network bound to it, its labels
 * and its preprocessing. */
#pragma once
#include "captioning/captioner.h"
#include "nn/safetensors.h"
#include "vision/gradcat.h"
#include "vision/nest.h"
#include "vision/token_filter.h"
#include "vision/preprocess.h"
#include "vidcap.h"

/* requested > 0, or min(4, online cores) */
int vc_default_threads(int requested);
struct vc_state *vc_state_create_threads(const struct vc_model *m, int n_threads); /* 1: serial, no pool */
/* The token filter's keep mask for a preprocessed input (NULL when the state's keep ratio is 1). */
const uint8_t *vc_state_keep_mask(struct vc_state *s, const float *input);

struct vc_model {
    st_file *file;
    char arch[32];
    char description[512];
    vc_model_params params;
    nest_model nest;
    img_preprocess pre;
    int n_labels;
    char **labels;
    tf_filter filter; /* valid when has_filter */
    int has_filter;
    int random_filter;    /* the random-keep baseline: scores drawn at random */
    st_file *filter_file; /* a separately loaded filter's file (NULL when it came with the model) */
    int bundle;           /* vidcap.arch = bundle: the NesT is the frame encoder under "encoder." */
    cap_model *captioner; /* the bundle's "captioner.", else NULL */
    double video_fps;     /* frames per second to sample a video at (vidcap.video {"fps": F}), 0 = unset */
};

/* Per-run buffers: one per thread that runs the model. */
struct vc_state {
    const vc_model *model;
    nn_pool *pool;
    nest_state nest;
    float *input; /* preprocessed image, channels-last */
    float *probs;
    gradcat_result explain; /* the last vc_explain_file */
    float keep;             /* token filter keep ratio, 1 = off */
    float *tf_feat, *tf_hidden, *tf_scores;
    uint8_t *tf_mask;
    uint64_t rng;                          /* the random-keep baseline's scores */
    int explain_boxes[NEST_MAX_LEVELS][4]; /* its path in original-image pixels */
};
