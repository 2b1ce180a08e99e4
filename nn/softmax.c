/* Row softmax (max-subtracted) and its backward. */
#include <math.h>

#include "nn/fastmath.h"
#include "nn/nn.h"

NN_VECTOR_CLONES void nn_softmax(float *x, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++) {
        float *v = x + r * n;
        float m = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            if (v[i] > m) m = v[i];
        float s = 0.f;
        for (int64_t i = 0; i < n; i++)
            v[i] = nn_fast_expf(v[i] - m);
        for (int64_t i = 0; i < n; i++)
            s += v[i];
        float inv = 1.f / s;
        for (int64_t i = 0; i < n; i++)
            v[i] *= inv;
    }
}

NN_VECTOR_CLONES void nn_softmax_backward(const float *y, const float *dy, int64_t rows, int64_t n, float *dx)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * n, *dyr = dy + r * n;
        float *dxr = dx + r * n;
        float dot = 0.f;
        for (int64_t i = 0; i < n; i++)
            dot += yr[i] * dyr[i];
        for (int64_t i = 0; i < n; i++)
            dxr[i] = yr[i] * (dyr[i] - dot);
    }
}
