/* Batch normalisation in eval mode (running statistics), channels-last. */
#include <math.h>

#include "nn/nn.h"

/* channels in blocks whose 1/sqrt(var + eps) is computed once, not once per row */
#define NN_BN_BLOCK 256

void nn_batchnorm(const float *x, int64_t rows, int64_t C, const float *mean, const float *var,
                  const float *gamma, const float *beta, float eps, float *y)
{
    float inv[NN_BN_BLOCK];
    for (int64_t c0 = 0; c0 < C; c0 += NN_BN_BLOCK) {
        const int64_t n = C - c0 < NN_BN_BLOCK ? C - c0 : NN_BN_BLOCK;
        for (int64_t c = 0; c < n; c++)
            inv[c] = 1.f / sqrtf(var[c0 + c] + eps);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < n; c++) {
                const int64_t i = r * C + c0 + c;
                float v = (x[i] - mean[c0 + c]) * inv[c];
                y[i] = v * (gamma ? gamma[c0 + c] : 1.f) + (beta ? beta[c0 + c] : 0.f);
            }
    }
}

void nn_batchnorm_backward(const float *dy, int64_t rows, int64_t C, const float *var, const float *gamma,
                           float eps, float *dx)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++)
            dx[r * C + c] = dy[r * C + c] * (gamma ? gamma[c] : 1.f) / sqrtf(var[c] + eps);
}
