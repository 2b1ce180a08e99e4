/* Exact (erf) GELU, as torch.nn.GELU() and timm use; the tanh approximation differs by ~1e-3. */
#include "nn/fastmath.h"
#include "nn/nn.h"

typedef struct {
    const float *x;
    float *y;
} gelu_job;

NN_VECTOR_CLONES static void gelu_range(void *ctx, int64_t b, int64_t e, int thread)
{
    const gelu_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        float v = j->x[i];
        j->y[i] = 0.5f * v * (1.f + nn_fast_erff(v * 0.70710678118654752f));
    }
}

void nn_gelu(nn_pool *p, const float *x, int64_t n, float *y)
{
    gelu_job j = {x, y};
    nn_pool_run(p, n, 4096, gelu_range, &j);
}

/* d/dx gelu = Phi(x) + x phi(x) */
NN_VECTOR_CLONES void nn_gelu_backward(const float *x, const float *dy, int64_t n, float *dx)
{
    const float inv_sqrt_2pi = 0.3989422804014327f;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.f + nn_fast_erff(v * 0.70710678118654752f));
        float pdf = inv_sqrt_2pi * nn_fast_expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}
