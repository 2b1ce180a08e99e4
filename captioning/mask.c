/* The differentiable proposal mask (spec §3, contract): the MLP g over [rho(S_p) | rho(E_p) | rho(S_a) |
 * rho(E_a) | B_a], gated by the proposal score P into M = P B_p + (1 - P) sigmoid(g), one row of T per
 * kept proposal; the proposals of a chunk go through the MLP as one batch. */
#include <math.h>
#include <string.h>

#include "captioning/internal.h"

void cap_masks(cap_state *s, nn_pool *pool, int first, int n)
{
    const cap_model *m = s->m;
    const cap_config *c = &m->cfg;
    const int64_t T = c->window, d = c->d_model, D = c->pe_mask_dim, in = 4 * D + T;
    for (int p = 0; p < n; p++) {
        const cap_kept *k = &s->kept[first + p];
        float *row = s->mask_in + p * in;
        /* the anchor's own window, from its centre and length (integers for these anchors) */
        const double centre = s->a_centre[k->anchor], len = s->a_length[k->anchor];
        const double sa = fmax(0.0, floor(centre - len / 2)), ea = fmin((double)T, ceil(centre + len / 2));
        cap_pe(k->start, m->mask_inv_freq, (int)D, row);
        cap_pe(k->end, m->mask_inv_freq, (int)D, row + D);
        cap_pe(sa, m->mask_inv_freq, (int)D, row + 2 * D);
        cap_pe(ea, m->mask_inv_freq, (int)D, row + 3 * D);
        for (int64_t t = 0; t < T; t++)
            row[4 * D + t] = t >= sa && t < ea ? 1.f : 0.f;
    }
    nn_linear(pool, s->mask_in, n, in, m->mask_w0, NULL, d, s->mask_hidden);
    nn_batchnorm(s->mask_hidden, n, d, m->mask_bn.mean, m->mask_bn.var, m->mask_bn.gamma, m->mask_bn.beta,
                 CAP_BN_EPS, s->mask_hidden);
    for (int64_t i = 0; i < n * d; i++)
        s->mask_hidden[i] = s->mask_hidden[i] > 0.f ? s->mask_hidden[i] : 0.f;
    nn_linear(pool, s->mask_hidden, n, d, m->mask_w3, m->mask_b3, T, s->mask_logits);
    for (int p = 0; p < n; p++) {
        const cap_kept *k = &s->kept[first + p];
        const float P = k->score;
        const float *g = s->mask_logits + p * T;
        float *M = s->mask + p * T;
        for (int64_t t = 0; t < T; t++) {
            const float bp = t >= k->w_start && t < k->w_end ? 1.f : 0.f;
            M[t] = P * bp + (1.f - P) * (1.f / (1.f + expf(-g[t])));
        }
        cap_trace_emit(s, s->mask_in + p * in, 1, in, 0, "mask.input.%d", first + p);
        cap_trace_emit(s, g, 1, T, 0, "mask.logits.%d", first + p);
        cap_trace_emit(s, M, 1, T, 0, "mask.%d", first + p);
    }
}
