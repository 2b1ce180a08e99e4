/* GradCAT (Zhang et al., AAAI 2022): gradient-based class-aware traversal of NesT's block tree. */
#pragma once
#include "vision/nest.h"

typedef struct gradcat_node {
    int level, block;   /* block index at that level (row-major over the level's block grid) */
    int x0, y0, x1, y1; /* the block's box in model-input pixels, [x0, x1) x [y0, y1) */
    float score;        /* mean of the level's score map over the block */
} gradcat_node;

typedef struct gradcat_result {
    int target; /* the class explained */
    int n_path; /* num_levels: root first, leaf last */
    gradcat_node path[NEST_MAX_LEVELS];
    float *score_maps[NEST_MAX_LEVELS]; /* [grid_i * grid_i] per level, owned by the state's tape arena */
} gradcat_result;

/* Runs a recorded forward on input (filtered by the token filter's keep mask over the top-level tokens,
 * or NULL for all), one backward from log p_target (target < 0: the predicted class), and walks the tree.
 * sign = +1 scores s = A * d log p / dA; -1 flips it (the spec's open sign choice). score_maps must point
 * at caller buffers of grid_i^2 floats each. */
void gradcat_run(nest_state *s, const float *input, const uint8_t *keep, int target, int sign,
                 gradcat_result *r);
