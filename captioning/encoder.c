/* The video encoder: input embedding with eval-mode time dropout, sinusoidal PE, and the post-LN
 * transformer layers (unbiased-std LayerNorm, attention scaled by 1/sqrt(d_model)), run once unmasked for
 * the proposals and once more per proposal under its mask, the proposals of a chunk batched as one GEMM. */
#include <math.h>
#include <string.h>

#include "captioning/internal.h"

void cap_pe_inv_freq(int D, double *inv)
{
    for (int c = 0; c < D; c++)
        inv[c] = pow(10000.0, -(double)(c - c % 2) / D);
}

void cap_pe(double x, const double *inv, int D, float *pe)
{
    for (int c = 0; c < D; c++)
        pe[c] = (float)(c % 2 ? cos(x * inv[c]) : sin(x * inv[c]));
}

void cap_embed(cap_state *s, nn_pool *pool, const float *features, int L)
{
    const cap_model *m = s->m;
    const int64_t T = m->cfg.window, d = m->cfg.d_model;
    nn_linear(pool, features, L, m->cfg.d_in, m->emb_w, m->emb_b, d, s->embed);
    /* a zero-padded row projects to the bias exactly */
    for (int64_t t = L; t < T; t++)
        memcpy(s->embed + t * d, m->emb_b, (size_t)d * sizeof(float));
    for (int64_t i = 0; i < T * d; i++) {
        float e = s->embed[i] * m->embed_scale;
        s->embed[i] = e > 0.f ? e : 0.f;
        s->base[i] = s->embed[i] + m->pos[i];
    }
    cap_trace_emit(s, s->embed, 2, T, d, "embedding");
    cap_trace_emit(s, s->base, 2, T, d, "encoder.input");
}

/* x = LN(x + F(x)) */
static void add_norm(nn_pool *pool, float *x, const float *fx, int64_t rows, int64_t d, const float *gamma,
                     const float *beta)
{
    nn_add(x, fx, rows * d, x);
    nn_layernorm_std(pool, x, rows, d, gamma, beta, CAP_LN_EPS, x);
}

/* One post-LN layer on x[groups x T, d] in place: self-attention within each group of T rows, then FFN. */
static void encoder_layer(cap_state *s, nn_pool *pool, const cap_enc_layer *ly, float *x, int groups)
{
    const cap_config *c = &s->m->cfg;
    const int64_t T = c->window, d = c->d_model, ff = c->d_ff, rows = groups * T;
    nn_linear(pool, x, rows, d, ly->self.wq, NULL, d, s->q);
    nn_linear(pool, x, rows, d, ly->self.wk, NULL, d, s->k);
    nn_linear(pool, x, rows, d, ly->self.wv, NULL, d, s->v);
    const nn_mha_shape sh = {.groups = groups,
                             .nq = T,
                             .nk = T,
                             .dim = d,
                             .heads = c->n_heads,
                             .scale = (float)(1.0 / sqrt((double)d)),
                             .q_ld = d,
                             .kv_ld = d,
                             .out_ld = d,
                             .q_group = T * d,
                             .kv_group = T * d,
                             .out_group = T * d};
    nn_mha(pool, &sh, s->q, s->k, s->v, s->att, s->attn_ws);
    nn_linear(pool, s->att, rows, d, ly->self.wo, NULL, d, s->tmp);
    add_norm(pool, x, s->tmp, rows, d, ly->self.ln_gamma, ly->self.ln_beta);
    nn_linear(pool, x, rows, d, ly->ffn.w1, ly->ffn.b1, ff, s->hidden);
    for (int64_t i = 0; i < rows * ff; i++)
        s->hidden[i] = s->hidden[i] > 0.f ? s->hidden[i] : 0.f;
    nn_linear(pool, s->hidden, rows, ff, ly->ffn.w2, ly->ffn.b2, d, s->tmp);
    add_norm(pool, x, s->tmp, rows, d, ly->ffn.ln_gamma, ly->ffn.ln_beta);
}

void cap_encode(cap_state *s, nn_pool *pool)
{
    const cap_config *c = &s->m->cfg;
    const int64_t T = c->window, d = c->d_model;
    memcpy(s->x, s->base, (size_t)(T * d) * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        encoder_layer(s, pool, &s->m->enc[l], s->x, 1);
        memcpy(s->enc_out + l * T * d, s->x, (size_t)(T * d) * sizeof(float));
        cap_trace_emit(s, s->x, 2, T, d, "encoder.layers.%d", l);
    }
}

/* x[p, t, :] *= mask[p, t] */
static void apply_mask(float *x, const float *mask, int64_t rows, int64_t d)
{
    for (int64_t r = 0; r < rows; r++) {
        const float w = mask[r];
        float *xr = x + r * d;
        for (int64_t i = 0; i < d; i++)
            xr[i] *= w;
    }
}

void cap_encode_masked(cap_state *s, nn_pool *pool, int n, int first)
{
    const cap_model *m = s->m;
    const cap_config *c = &m->cfg;
    const int64_t T = c->window, d = c->d_model, rows = (int64_t)n * T;
    for (int p = 0; p < n; p++)
        memcpy(s->x + p * T * d, s->base, (size_t)(T * d) * sizeof(float));
    apply_mask(s->x, s->mask, rows, d);
    for (int p = 0; p < n; p++)
        cap_trace_emit(s, s->x + p * T * d, 2, T, d, "masked.input.%d", first + p);
    for (int l = 0; l < c->n_layers; l++) {
        encoder_layer(s, pool, &m->enc[l], s->x, n);
        apply_mask(s->x, s->mask, rows, d);
        for (int p = 0; p < n; p++)
            cap_trace_emit(s, s->x + p * T * d, 2, T, d, "masked.layers.%d.%d", l, first + p);
        /* decoder layer l reads G_{l+1} only through its cross-attention keys and values: project them once
         * here instead of at every decoding step */
        const int64_t off = (int64_t)l * s->chunk * T * d;
        nn_linear(pool, s->x, rows, d, m->dec[l].cross.wk, NULL, d, s->mem_k + off);
        nn_linear(pool, s->x, rows, d, m->dec[l].cross.wv, NULL, d, s->mem_v + off);
    }
}
