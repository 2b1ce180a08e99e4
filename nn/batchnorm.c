/* Batch normalisation in eval mode (running statistics), channels-last. */
#include <math.h>

#include "nn/nn.h"

void nn_batchnorm(const float *x, int64_t rows, int64_t C, const float *mean, const float *var,
                  const float *gamma, const float *beta, float eps, float *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++) {
            float v = (x[r * C + c] - mean[c]) / sqrtf(var[c] + eps);
            y[r * C + c] = v * (gamma ? gamma[c] : 1.f) + (beta ? beta[c] : 0.f);
        }
}

void nn_batchnorm_backward(const float *dy, int64_t rows, int64_t C, const float *var, const float *gamma,
                           float eps, float *dx)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++)
            dx[r * C + c] = dy[r * C + c] * (gamma ? gamma[c] : 1.f) / sqrtf(var[c] + eps);
}
