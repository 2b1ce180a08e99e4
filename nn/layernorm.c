/* Layer normalisation over the last dim (biased variance, eps a parameter: NesT uses 1e-6, torch 1e-5), and
 * the Masked Transformer's variant (unbiased std, eps added to the std). */
#include <math.h>

#include "nn/fastmath.h"
#include "nn/nn.h"

typedef struct {
    const float *x, *dy, *gamma, *beta;
    int64_t C;
    float eps;
    float *y;
} ln_job;

/* two-pass mean and 1/sqrt(biased variance + eps) of one row */
static void row_stats(const float *x, int64_t C, float eps, float *mean_out, float *rstd_out)
{
    float mean = 0.f;
    for (int64_t c = 0; c < C; c++)
        mean += x[c];
    mean /= (float)C;
    float var = 0.f;
    for (int64_t c = 0; c < C; c++)
        var += (x[c] - mean) * (x[c] - mean);
    var /= (float)C;
    *mean_out = mean;
    *rstd_out = 1.f / sqrtf(var + eps);
}

NN_VECTOR_CLONES static void ln_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    const ln_job *j = ctx;
    const int64_t C = j->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * C;
        float *y = j->y + r * C;
        float mean, rstd;
        row_stats(x, C, j->eps, &mean, &rstd);
        for (int64_t c = 0; c < C; c++) {
            float v = (x[c] - mean) * rstd;
            y[c] = j->gamma ? v * j->gamma[c] + (j->beta ? j->beta[c] : 0.f) : v;
        }
    }
}

void nn_layernorm(nn_pool *p, const float *x, int64_t rows, int64_t C, const float *gamma, const float *beta,
                  float eps, float *y)
{
    ln_job j = {.x = x, .gamma = gamma, .beta = beta, .C = C, .eps = eps, .y = y};
    nn_pool_run(p, rows, 64, ln_rows, &j);
}

/* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * gamma */
NN_VECTOR_CLONES static void ln_backward_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    const ln_job *j = ctx;
    const int64_t C = j->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * C, *dy = j->dy + r * C;
        float *dx = j->y + r * C;
        float mean, rstd;
        row_stats(x, C, j->eps, &mean, &rstd);
        float sg = 0.f, sgx = 0.f;
        for (int64_t c = 0; c < C; c++) {
            float g = dy[c] * (j->gamma ? j->gamma[c] : 1.f);
            sg += g;
            sgx += g * (x[c] - mean) * rstd;
        }
        sg /= (float)C;
        sgx /= (float)C;
        for (int64_t c = 0; c < C; c++) {
            float g = dy[c] * (j->gamma ? j->gamma[c] : 1.f);
            dx[c] = rstd * (g - sg - (x[c] - mean) * rstd * sgx);
        }
    }
}

/* gamma (x - mean) / (unbiased std + eps) + beta: densecap's LayerNorm, which the released checkpoints
 * were trained with (specs/masked_transformer.md 1.3); with C = 1 the std is 0/0, as in torch */
NN_VECTOR_CLONES static void ln_std_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    const ln_job *j = ctx;
    const int64_t C = j->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * C;
        float *y = j->y + r * C;
        float mean = 0.f;
        for (int64_t c = 0; c < C; c++)
            mean += x[c];
        mean /= (float)C;
        float ss = 0.f;
        for (int64_t c = 0; c < C; c++)
            ss += (x[c] - mean) * (x[c] - mean);
        const float inv = 1.f / (sqrtf(ss / (float)(C - 1)) + j->eps);
        for (int64_t c = 0; c < C; c++) {
            float v = (x[c] - mean) * inv;
            y[c] = j->gamma ? v * j->gamma[c] + (j->beta ? j->beta[c] : 0.f) : v;
        }
    }
}

void nn_layernorm_std(nn_pool *p, const float *x, int64_t rows, int64_t C, const float *gamma,
                      const float *beta, float eps, float *y)
{
    ln_job j = {.x = x, .gamma = gamma, .beta = beta, .C = C, .eps = eps, .y = y};
    nn_pool_run(p, rows, 64, ln_std_rows, &j);
}

void nn_layernorm_backward(nn_pool *p, const float *x, const float *dy, int64_t rows, int64_t C,
                           const float *gamma, float eps, float *dx)
{
    ln_job j = {.x = x, .dy = dy, .gamma = gamma, .C = C, .eps = eps, .y = dx};
    nn_pool_run(p, rows, 64, ln_backward_rows, &j);
}
