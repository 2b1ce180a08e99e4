/* Token-impact labels for the token filter: exact leave-one-out loss changes and the gradient x input
 * estimate, both at the granularity of NesT's top-level tokens (see token_impact.h). */
#include "vision/token_impact.h"

#include <math.h>
#include <string.h>

int tf_groups(const nest_config *c)
{
    const int top = c->grid[c->num_levels - 1];
    return top * top;
}

static float cross_entropy(const float *logits, int n, int label)
{
    float m = logits[0];
    for (int k = 1; k < n; k++)
        m = logits[k] > m ? logits[k] : m;
    double sum = 0;
    for (int k = 0; k < n; k++)
        sum += exp((double)logits[k] - m);
    return (float)(log(sum) + m - logits[label]);
}

/* the level-0 positions of group g: a square of side 2^(L-1) */
static void group_box(const nest_config *c, int g, int *y0, int *x0, int *side)
{
    const int top = c->grid[c->num_levels - 1];
    *side = c->grid[0] / top;
    *y0 = (g / top) * *side;
    *x0 = (g % top) * *side;
}

void tf_impact_loo(nest_state *s, const float *input, int label, float *delta, float *scratch)
{
    const nest_config *c = &s->m->cfg;
    const int G0 = c->grid[0], C = c->embed_dims[0];
    nest_embed(s, input);
    memcpy(scratch, s->embed, (size_t)G0 * G0 * C * sizeof(float));
    nest_forward_levels(s, NULL);
    const float base = cross_entropy(s->logits, c->num_classes, label);
    for (int g = 0; g < tf_groups(c); g++) {
        int y0, x0, side;
        group_box(c, g, &y0, &x0, &side);
        for (int y = y0; y < y0 + side; y++)
            memset(s->embed + ((size_t)y * G0 + x0) * C, 0, (size_t)side * C * sizeof(float));
        nest_forward_levels(s, NULL);
        delta[g] = cross_entropy(s->logits, c->num_classes, label) - base;
        for (int y = y0; y < y0 + side; y++)
            memcpy(s->embed + ((size_t)y * G0 + x0) * C, scratch + ((size_t)y * G0 + x0) * C,
                   (size_t)side * C * sizeof(float));
    }
}

void tf_impact_grad(nest_state *s, const float *input, int label, float *delta)
{
    const nest_config *c = &s->m->cfg;
    const int G0 = c->grid[0], C = c->embed_dims[0];
    nest_forward(s, input);
    nest_backward_log_prob(s, label, -1.f); /* the cross-entropy loss */
    for (int g = 0; g < tf_groups(c); g++) {
        int y0, x0, side;
        group_box(c, g, &y0, &x0, &side);
        double acc = 0;
        for (int y = y0; y < y0 + side; y++)
            for (int x = x0; x < x0 + side; x++) {
                const float *e = s->embed + ((size_t)y * G0 + x) * C,
                            *ge = s->tape->dembed + ((size_t)y * G0 + x) * C;
                for (int k = 0; k < C; k++)
                    acc += (double)e[k] * ge[k];
            }
        delta[g] = (float)-acc;
    }
}
