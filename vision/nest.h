/* NesT (Zhang et al., AAAI 2022): nested hierarchical transformer, numerically the same as timm's `Nest`.
 * Weights are used in place from a safetensors mapping; activations live in one arena per nest_state. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"
#include "nn/safetensors.h"

#define NEST_MAX_LEVELS 6
#define NEST_LN_EPS 1e-6f /* timm LayerNorm default, everywhere in NesT */

typedef struct nest_config {
    int img_size, in_chans, patch_size, num_levels, num_classes;
    int embed_dims[NEST_MAX_LEVELS], num_heads[NEST_MAX_LEVELS], depths[NEST_MAX_LEVELS];
    float mlp_ratio;
    nn_pool_pad pad; /* SAME for timm's _jx variants and vidcap's models, SYMMETRIC for timm's non-jx */
    /* derived by nest_config_finish */
    int block_size, seq_length;                             /* S and N = S*S, equal at every level */
    int num_blocks[NEST_MAX_LEVELS], grid[NEST_MAX_LEVELS]; /* T_i and the map side H_i = W_i */
    int hidden[NEST_MAX_LEVELS];                            /* MLP width */
} nest_config;

/* Parses vidcap.config JSON (keys as in tools/nest_ref.py) and checks it describes a valid NesT. */
int nest_config_parse(const char *json, nest_config *cfg, char *err, size_t errlen);
/* Recognises a timm NesT state_dict (no metadata) from its key names and shapes: levels, dims, depths,
 * block size, classes; heads from timm's head_dim 32; SAME pooling (the released weights are _jx). */
int nest_config_from_timm(const st_file *f, nest_config *cfg, char *err, size_t errlen);
/* Validates the fields and fills the derived ones. */
int nest_config_finish(nest_config *cfg, char *err, size_t errlen);

typedef struct nest_layer {
    const float *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    const float *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} nest_layer;

typedef struct nest_level {
    const float *pos_embed;                         /* [T, N, C] */
    const float *conv_w, *conv_b, *norm_w, *norm_b; /* ConvPool, levels >= 1 */
    nest_layer *layers;
} nest_level;

typedef struct nest_model {
    nest_config cfg;
    const float *patch_w, *patch_b;
    nest_level levels[NEST_MAX_LEVELS];
    const float *norm_w, *norm_b, *head_w, *head_b;
} nest_model;

/* Binds every tensor under `prefix` (e.g. "" or "encoder.") with shape checks against cfg; a missing,
 * misshapen or unexpected tensor, or a non-finite weight, is an error naming it. */
int nest_bind(nest_model *m, const st_file *f, const char *prefix, const nest_config *cfg, char *err,
              size_t errlen);
void nest_unbind(nest_model *m);

/* What the forward keeps for a backward pass, per transformer layer: its input x0, the residual stream
 * after attention x1, the fused qkv, the attention weights and the MLP pre-activation h. */
typedef struct nest_tape_layer {
    float *x0, *x1, *qkv, *probs, *h;
} nest_tape_layer;

typedef struct nest_tape {
    nest_tape_layer *layers[NEST_MAX_LEVELS];
    float *conv_out[NEST_MAX_LEVELS];  /* ConvPool conv output before its LayerNorm, levels >= 1 */
    int32_t *argmax[NEST_MAX_LEVELS];  /* ConvPool max-pool routing, levels >= 1 */
    float *grads[NEST_MAX_LEVELS];     /* d objective / d maps[i], filled by nest_backward */
    int to_embed;                      /* also walk level 0 back to the patch embedding */
    int filtered;                      /* the recorded forward ran with a keep mask (dense, masked form) */
    uint8_t *rowkeep[NEST_MAX_LEVELS]; /* per level, blocked row order: token kept (when filtered) */
    float *dmasked;                    /* scratch: d/d(branch output), dropped rows zeroed */
    float *dembed;                     /* d objective / d embed (when to_embed) */
    float *dx, *dy, *dqkv, *dhidden, *dcol, *dlogits, *dpooled, *ws;
} nest_tape;

/* Per-run buffers. */
typedef struct nest_state {
    const nest_model *m;
    nn_pool *pool;
    nn_arena arena;
    float *maps[NEST_MAX_LEVELS]; /* each level's output map, channels-last [grid_i, grid_i, C_i] */
    float *pooled, *logits;       /* [C_last], [num_classes] */
    /* scratch */
    float *x, *y, *qkv, *hidden, *attn_ws, *col, *embed;
    float *xk;                 /* the tokens the filter kept, gathered */
    int64_t *gather, *offsets; /* their rows in the blocked tensor; per-block runs */
    nn_arena tape_arena;
    nest_tape *tape; /* NULL unless nest_state_enable_backward was called */
} nest_state;

int nest_state_init(nest_state *s, const nest_model *m, nn_pool *pool);
void nest_state_release(nest_state *s);
/* Makes every later forward record what nest_backward needs (one extra arena, sized once). With to_embed,
 * level 0 is recorded too and the backward continues to the patch embedding (tape->dembed). */
int nest_state_enable_backward(nest_state *s, int to_embed);

/* input: channels-last [img_size, img_size, in_chans], preprocessed. Fills maps, pooled, logits. */
void nest_forward(nest_state *s, const float *input);
/* The token filter's forward (specs/token_filter.md §4.2, option D): keep[grid_top * grid_top] says which
 * top-level tokens stay (NULL keeps all). A lower-level token is kept when the top-level token above it is;
 * dropped tokens skip attention and MLP and pass through unchanged, ConvPool runs on the full grid; at
 * the top level dropped tokens are removed and the head averages the kept ones. At least one must be kept.
 * maps[] then hold the pass-through values at dropped positions. No backward through it. */
void nest_forward_filtered(nest_state *s, const float *input, const uint8_t *keep);
/* With a tape (nest_state_enable_backward), a filtered forward runs in its dense, masked form instead:
 * every token is computed, attention of kept tokens sees kept keys only, dropped tokens' branch outputs
 * are zeroed (so they pass through) and the head averages the kept top-level tokens. The numbers are the
 * gathered forward's; it costs what an unfiltered forward does, and nest_backward can walk it back. */

/* The two halves of a forward: the patch embedding into s->embed ([grid_0, grid_0, C_0], channels-last,
 * before position embeddings), then everything after it. Callers may edit s->embed in between (token
 * impact: a token's content zeroed, its position embedding kept). */
void nest_embed(nest_state *s, const float *input);
void nest_forward_levels(nest_state *s, const uint8_t *keep);

/* map [G*S, G*S, C] <-> tokens [G*G, S*S, C] (inverse = 1 goes back): block t = (y/S)*G + x/S,
 * token n = (y%S)*S + x%S, as timm's blockify/deblockify. */
void nest_blockify(const float *map, int G, int S, int C, float *tok, int inverse);

/* Backward from d objective / d logits (dlogits[num_classes]) to every level's output map:
 * fills s->tape->grads[i] (same layout as maps[i]), and tape->dembed when enabled. Needs a recorded
 * forward (filtered or not). Activations only. */
void nest_backward(nest_state *s, const float *dlogits);
/* nest_backward from scale * log softmax(logits)[target] of the last recorded forward: scale 1 is
 * GradCAT's log p_c, scale -1 the cross-entropy loss of class `target`. */
void nest_backward_log_prob(nest_state *s, int target, float scale);
