/* Multi-head self-attention over a batch of independent blocks (NesT's block-local attention), and
 * attention with separate query, key and value rows (the Masked Transformer's encoder, its cross-attention
 * and incremental decoding). Each (block, head) pair is two sgemm calls reading q, k, v in place (lda is
 * the row stride); pairs are spread over the compute threads. */
#include <math.h>

#include <cblas.h>

#include "nn/nn.h"

typedef struct {
    const nn_attention_shape *s;
    const float *qkv, *probs_in, *dout;
    float *probs, *out, *dqkv, *ws;
    size_t ws_per_thread;
} attn_job;

static size_t attn_ws_per_thread(const nn_attention_shape *s)
{
    int64_t d = s->dim / s->heads;
    return (size_t)(s->tokens * s->tokens + s->tokens * d);
}

size_t nn_attention_workspace(const nn_attention_shape *s, int n_threads)
{
    return attn_ws_per_thread(s) * (size_t)(n_threads < 1 ? 1 : n_threads);
}

size_t nn_attention_backward_workspace(const nn_attention_shape *s, int n_threads)
{
    return nn_attention_workspace(s, n_threads);
}

/* column of feature (h, e) in the merged output */
static inline int64_t merged_col(const nn_attention_shape *s, int64_t h, int64_t e, int64_t d)
{
    return s->merge == NN_MERGE_DIM_MAJOR ? e * s->heads + h : h * d + e;
}

static void attn_pairs(void *ctx, int64_t p0, int64_t p1, int thread)
{
    const attn_job *j = ctx;
    const nn_attention_shape *s = j->s;
    const int64_t Nmax = s->tokens, C = s->dim, H = s->heads, d = C / H, ld = 3 * C;
    const float scale = 1.f / sqrtf((float)d);
    float *ws = j->ws + (size_t)thread * j->ws_per_thread;
    for (int64_t pair = p0; pair < p1; pair++) {
        const int64_t t = pair / H, h = pair % H;
        const int64_t row0 = s->offsets ? s->offsets[t] : t * Nmax;
        const int64_t N = s->offsets ? s->offsets[t + 1] - row0 : Nmax;
        if (N == 0) continue;
        const float *q = j->qkv + row0 * ld + h * d, *k = q + C, *v = q + 2 * C;
        float *P = j->probs ? j->probs + pair * N * N : ws;
        float *O = ws + Nmax * Nmax;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)N, (int)d, scale, q, (int)ld, k,
                    (int)ld, 0.f, P, (int)N);
        const uint8_t *kk = s->key_keep ? s->key_keep + t * Nmax : NULL;
        int any = 0;
        for (int64_t jj = 0; kk && jj < N && !any; jj++)
            any = kk[jj] != 0;
        if (!any) kk = NULL;
        for (int64_t i = 0; kk && i < N; i++)
            for (int64_t jj = 0; jj < N; jj++)
                if (!kk[jj]) P[i * N + jj] = -INFINITY;
        nn_softmax(P, N, N);
        for (int64_t i = 0; kk && i < N; i++) /* exactly 0, not exp(-87) */
            for (int64_t jj = 0; jj < N; jj++)
                if (!kk[jj]) P[i * N + jj] = 0.f;
        float *out = j->out + row0 * C;
        if (s->merge == NN_MERGE_HEAD_MAJOR) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)N, 1.f, P, (int)N, v,
                        (int)ld, 0.f, out + h * d, (int)C);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)N, 1.f, P, (int)N, v,
                    (int)ld, 0.f, O, (int)d);
        for (int64_t n = 0; n < N; n++)
            for (int64_t e = 0; e < d; e++)
                out[n * C + e * H + h] = O[n * d + e];
    }
}

void nn_attention(nn_pool *p, const nn_attention_shape *s, const float *qkv, float *probs, float *out,
                  float *ws)
{
    attn_job j = {
        .s = s, .qkv = qkv, .probs = probs, .out = out, .ws = ws, .ws_per_thread = attn_ws_per_thread(s)};
    nn_pool_run(p, s->blocks * s->heads, 1, attn_pairs, &j);
}

/* Per (block, head), with S = scale q k^T, P = softmax(S), O = P v:
 * dv = P^T dO, dP = dO v^T, dS = softmax'(dP), dq = scale dS k, dk = scale dS^T q. */
static void attn_backward_pairs(void *ctx, int64_t p0, int64_t p1, int thread)
{
    const attn_job *j = ctx;
    const nn_attention_shape *s = j->s;
    const int64_t N = s->tokens, C = s->dim, H = s->heads, d = C / H, ld = 3 * C;
    const float scale = 1.f / sqrtf((float)d);
    float *dP = j->ws + (size_t)thread * j->ws_per_thread;
    float *dO = dP + N * N;
    for (int64_t pair = p0; pair < p1; pair++) {
        int64_t t = pair / H, h = pair % H;
        const float *q = j->qkv + t * N * ld + h * d, *k = q + C, *v = q + 2 * C;
        const float *P = j->probs_in + pair * N * N;
        const float *dout = j->dout + t * N * C;
        for (int64_t n = 0; n < N; n++)
            for (int64_t e = 0; e < d; e++)
                dO[n * d + e] = dout[n * C + merged_col(s, h, e, d)];
        float *dq = j->dqkv + t * N * ld + h * d, *dk = dq + C, *dv = dq + 2 * C;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)N, 1.f, P, (int)N, dO,
                    (int)d, 0.f, dv, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)N, (int)d, 1.f, dO, (int)d, v,
                    (int)ld, 0.f, dP, (int)N);
        nn_softmax_backward(P, dP, N, N, dP);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)N, scale, dP, (int)N, k,
                    (int)ld, 0.f, dq, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)N, scale, dP, (int)N, q,
                    (int)ld, 0.f, dk, (int)ld);
    }
}

void nn_attention_backward(nn_pool *p, const nn_attention_shape *s, const float *qkv, const float *probs,
                           const float *dout, float *dqkv, float *ws)
{
    attn_job j = {.s = s,
                  .qkv = qkv,
                  .probs_in = probs,
                  .dout = dout,
                  .dqkv = dqkv,
                  .ws = ws,
                  .ws_per_thread = attn_ws_per_thread(s)};
    nn_pool_run(p, s->blocks * s->heads, 1, attn_backward_pairs, &j);
}

/* ---- separate q, k, v ---- */

typedef struct {
    const nn_mha_shape *s;
    const float *q, *k, *v;
    float *out, *ws;
} mha_job;

size_t nn_mha_workspace(const nn_mha_shape *s, int n_threads)
{
    return (size_t)(s->nq * s->nk) * (size_t)(n_threads < 1 ? 1 : n_threads);
}

static void mha_pairs(void *ctx, int64_t p0, int64_t p1, int thread)
{
    const mha_job *j = ctx;
    const nn_mha_shape *s = j->s;
    const int64_t nq = s->nq, nk = s->nk, H = s->heads, d = s->dim / H;
    float *S = j->ws + (size_t)thread * (size_t)(nq * nk);
    for (int64_t pair = p0; pair < p1; pair++) {
        const int64_t g = pair / H, h = pair % H;
        const float *q = j->q + g * s->q_group + h * d;
        const float *k = j->k + g * s->kv_group + h * d, *v = j->v + g * s->kv_group + h * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)d, s->scale, q,
                    (int)s->q_ld, k, (int)s->kv_ld, 0.f, S, (int)nk);
        if (s->causal)
            for (int64_t i = 0; i < nq; i++)
                for (int64_t c = i + nk - nq + 1; c < nk; c++)
                    S[i * nk + c] = -INFINITY;
        nn_softmax(S, nq, nk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)d, (int)nk, 1.f, S, (int)nk, v,
                    (int)s->kv_ld, 0.f, j->out + g * s->out_group + h * d, (int)s->out_ld);
    }
}

void nn_mha(nn_pool *p, const nn_mha_shape *s, const float *q, const float *k, const float *v, float *out,
            float *ws)
{
    mha_job j = {.s = s, .q = q, .k = k, .v = v, .out = out, .ws = ws};
    nn_pool_run(p, s->groups * s->heads, 1, mha_pairs, &j);
}
