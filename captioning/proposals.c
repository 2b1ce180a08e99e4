/* The proposal decoder: one anchor branch per kernel length on the last encoder layer (BN, strided
 * depthwise conv, BN, pointwise conv, BN, ReLU, BN, conv to 4 channels), anchor decoding, then candidate
 * selection, greedy NMS against the kept quantised windows, and quantisation (contract, "Inference on one
 * window"). Decoding and its comparisons run in float32 as the reference's tensors do; tIoU in double. */
#include <math.h>
#include <stdlib.h>

#include "captioning/internal.h"

static void batchnorm(const cap_bn *bn, const float *x, int64_t rows, int64_t d, float *y)
{
    nn_batchnorm(x, rows, d, bn->mean, bn->var, bn->gamma, bn->beta, CAP_BN_EPS, y);
}

int cap_anchors(cap_state *s, nn_pool *pool, int L)
{
    const cap_model *m = s->m;
    const cap_config *c = &m->cfg;
    const int64_t T = c->window, d = c->d_model;
    const float *top = s->enc_out + (int64_t)(c->n_layers - 1) * T * d;
    int n = 0;
    /* branches run while their kernel fits in the real length: the list is cut at the first that does not */
    for (int i = 0; i < c->n_kernels && c->kernels[i] <= L; i++) {
        const cap_branch *br = &m->branches[i];
        const int64_t na = br->n_anchors;
        float *out = s->anchors + (int64_t)n * 4;
        batchnorm(&br->bn0, top, T, d, s->br_a);
        nn_conv1d_depthwise_strided(s->br_a, T, d, br->depthwise, NULL, br->kernel, br->stride, s->br_b);
        batchnorm(&br->bn2, s->br_b, na, d, s->br_a);
        nn_linear(pool, s->br_a, na, d, br->pointwise, NULL, d, s->br_b);
        batchnorm(&br->bn4, s->br_b, na, d, s->br_a);
        for (int64_t j = 0; j < na * d; j++)
            s->br_a[j] = s->br_a[j] > 0.f ? s->br_a[j] : 0.f;
        batchnorm(&br->bn6, s->br_a, na, d, s->br_b);
        nn_linear(pool, s->br_b, na, d, br->out_w, br->out_b, 4, out);
        for (int64_t j = 0; j < na; j++) {
            /* anchor j covers [j s, j s + k): centre k/2 + j s, length k; l_p = l exp(theta_l),
             * c_p = c + l theta_c */
            const float centre = (float)(br->kernel / 2.0 + (double)(j * br->stride)),
                        len = (float)br->kernel;
            const float *o = out + j * 4;
            const float lp = len * expf(o[2]), cp = centre + len * o[3];
            const int64_t a = n + j;
            s->a_centre[a] = centre;
            s->a_length[a] = len;
            s->a_score[a] = 1.f / (1.f + expf(-o[0]));
            s->a_start[a] = cp - lp / 2.f;
            s->a_end[a] = cp + lp / 2.f;
        }
        n += (int)na;
    }
    cap_trace_emit(s, s->anchors, 2, n, 4, "anchors.output");
    cap_trace_emit(s, s->a_centre, 1, n, 0, "anchors.centre");
    cap_trace_emit(s, s->a_length, 1, n, 0, "anchors.length");
    cap_trace_emit(s, s->a_score, 1, n, 0, "anchors.score");
    cap_trace_emit(s, s->a_start, 1, n, 0, "anchors.start");
    cap_trace_emit(s, s->a_end, 1, n, 0, "anchors.end");
    return n;
}

/* densecap's segment_iou: intersection clipped at 0 over len_a + len_b - intersection */
static double tiou(double a0, double a1, double b0, double b1)
{
    double inter = fmin(a1, b1) - fmax(a0, b0);
    inter = inter > 0 ? inter : 0;
    double uni = (a1 - a0) + (b1 - b0) - inter;
    return uni > 0 ? inter / uni : 0;
}

/* descending score, ties in anchor order: the stable sort of the reference */
static int by_score(const void *pa, const void *pb)
{
    const cap_cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->anchor > b->anchor) - (a->anchor < b->anchor);
}

int cap_select(cap_state *s, int n_anchors, int L, const cap_params *p)
{
    const int T = s->m->cfg.window;
    const float min_score = (float)p->min_score, bound = (float)(L + 1);
    const int limit = L + 1 < T ? L + 1 : T;
    int n = 0, kept = 0;
    /* candidates: a positive-length window inside [0, L + 1] whose score passes */
    for (int a = 0; a < n_anchors; a++) {
        const float st = s->a_start[a], en = s->a_end[a];
        if (st < en && st >= 0.f && en <= bound && s->a_score[a] >= min_score)
            s->cand[n++] = (cap_cand){s->a_score[a], a};
    }
    qsort(s->cand, (size_t)n, sizeof(*s->cand), by_score);
    for (int i = 0; i < n && kept < p->max_events; i++) {
        const int a = s->cand[i].anchor;
        const double st = s->a_start[a], en = s->a_end[a];
        int overlap = 0;
        for (int k = 0; k < kept && !overlap; k++)
            overlap = tiou(st, en, s->kept[k].w_start, s->kept[k].w_end) > p->nms_tiou;
        if (overlap) continue;
        s->kept[kept++] = (cap_kept){.start = s->a_start[a],
                                     .end = s->a_end[a],
                                     .score = s->a_score[a],
                                     .w_start = (int)floor(fmin(fmax(st, 0.0), limit - 1)),
                                     .w_end = (int)ceil(fmin(fmax(en, 1.0), limit)),
                                     .anchor = a};
    }
    return kept;
}
