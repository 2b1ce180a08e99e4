/* GradCAT: one recorded forward, one backward from log p_c, then a root-to-leaf walk of NesT's block tree.
 *
 * Decisions on the points the paper leaves open (specs/nest_gradcat.md §4.2), each tested:
 * - Objective: log p_c (log-softmax of the target), so s = A * d log p_c / dA is positive where removing
 *   the features would lower the class's probability (first-order Taylor). This equals A * (-dCE/dA), the
 *   paper's h = A * (-G) with G the gradient of the loss. `sign = -1` flips it.
 * - Channel reduction: sum over channels at every spatial position (the mean has the same argmax).
 * - Node score: the mean of the child's own level map over the child's S x S block (reading (a) of the
 *   spec), no ReLU.
 * - The top level's own map is ~0 up to rounding: the final LayerNorm is invariant to scaling its input, so
 *   sum_c A * dA vanishes there (Euler). It is reported but never decides anything: the root is unique.
 * - Walk: the single top-level block is the root; at each level below, the best of the 2x2 children of
 *   the current node; ties go to the first child in row-major order. */
#include "vision/gradcat.h"

#include <string.h>

static float block_mean(const float *map, int grid, int S, int by, int bx)
{
    double sum = 0;
    for (int y = by * S; y < (by + 1) * S; y++)
        for (int x = bx * S; x < (bx + 1) * S; x++)
            sum += map[y * grid + x];
    return (float)(sum / ((double)S * S));
}

static void set_node(const nest_config *c, gradcat_node *n, int level, int by, int bx, float score)
{
    const int G = c->grid[level] / c->block_size;          /* blocks per side at this level */
    const int px = c->block_size * c->patch_size << level; /* block side in input pixels */
    n->level = level;
    n->block = by * G + bx;
    n->x0 = bx * px;
    n->y0 = by * px;
    n->x1 = n->x0 + px;
    n->y1 = n->y0 + px;
    n->score = score;
}

void gradcat_run(nest_state *s, const float *input, const uint8_t *keep, int target, int sign,
                 gradcat_result *r)
{
    const nest_config *c = &s->m->cfg;
    const int n = c->num_classes, L = c->num_levels;
    nest_forward_filtered(s, input, keep);
    if (target < 0 || target >= n) {
        target = 0;
        for (int k = 1; k < n; k++)
            if (s->logits[k] > s->logits[target]) target = k;
    }
    nest_backward_log_prob(s, target, 1.f);
    r->target = target;
    for (int l = 0; l < L; l++) {
        const int64_t P = (int64_t)c->grid[l] * c->grid[l], C = c->embed_dims[l];
        const float *A = s->maps[l], *G = s->tape->grads[l];
        for (int64_t p = 0; p < P; p++) {
            float acc = 0.f;
            for (int64_t ch = 0; ch < C; ch++)
                acc += A[p * C + ch] * G[p * C + ch];
            r->score_maps[l][p] = (float)sign * acc;
        }
    }
    const int S = c->block_size;
    int by = 0, bx = 0;
    r->n_path = L;
    set_node(c, &r->path[0], L - 1, 0, 0, block_mean(r->score_maps[L - 1], c->grid[L - 1], S, 0, 0));
    for (int l = L - 2, k = 1; l >= 0; l--, k++) {
        int best_y = 2 * by, best_x = 2 * bx;
        float best = block_mean(r->score_maps[l], c->grid[l], S, best_y, best_x);
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
                float v = block_mean(r->score_maps[l], c->grid[l], S, 2 * by + dy, 2 * bx + dx);
                if (v > best) {
                    best = v;
                    best_y = 2 * by + dy;
                    best_x = 2 * bx + dx;
                }
            }
        by = best_y;
        bx = best_x;
        set_node(c, &r->path[k], l, by, bx, best);
    }
}
