/* Depthwise 1-D convolution over time on channels-last sequences (each channel its own K-tap filter):
 * stride 1 with zero padding, and the strided unpadded form of the Masked Transformer's anchor branches. */
#include <string.h>

#include "nn/nn.h"

int64_t nn_conv1d_depthwise_out(int64_t T, int64_t K, int64_t pad)
{
    return T + 2 * pad - K + 1;
}

void nn_conv1d_depthwise(const float *x, int64_t T, int64_t C, const float *w, const float *b, int64_t K,
                         int64_t pad, float *y)
{
    const int64_t To = nn_conv1d_depthwise_out(T, K, pad);
    for (int64_t t = 0; t < To; t++) {
        float *out = y + t * C;
        for (int64_t c = 0; c < C; c++)
            out[c] = b ? b[c] : 0.f;
        for (int64_t k = 0; k < K; k++) {
            int64_t ti = t - pad + k;
            if (ti < 0 || ti >= T) continue;
            const float *in = x + ti * C;
            for (int64_t c = 0; c < C; c++)
                out[c] += w[c * K + k] * in[c];
        }
    }
}

void nn_conv1d_depthwise_backward(const float *dy, int64_t T, int64_t C, const float *w, int64_t K,
                                  int64_t pad, float *dx)
{
    const int64_t To = nn_conv1d_depthwise_out(T, K, pad);
    memset(dx, 0, (size_t)(T * C) * sizeof(float));
    for (int64_t t = 0; t < To; t++)
        for (int64_t k = 0; k < K; k++) {
            int64_t ti = t - pad + k;
            if (ti < 0 || ti >= T) continue;
            for (int64_t c = 0; c < C; c++)
                dx[ti * C + c] += w[c * K + k] * dy[t * C + c];
        }
}

int64_t nn_conv1d_depthwise_strided_out(int64_t T, int64_t K, int64_t stride)
{
    if (K < 1 || stride < 1 || K > T) return 0;
    return (T - K) / stride + 1;
}

void nn_conv1d_depthwise_strided(const float *x, int64_t T, int64_t C, const float *w, const float *b,
                                 int64_t K, int64_t stride, float *y)
{
    const int64_t To = nn_conv1d_depthwise_strided_out(T, K, stride);
    for (int64_t t = 0; t < To; t++) {
        float *out = y + t * C;
        for (int64_t c = 0; c < C; c++)
            out[c] = b ? b[c] : 0.f;
        /* output t covers inputs [t*stride, t*stride + K): every tap is inside the sequence */
        for (int64_t k = 0; k < K; k++) {
            const float *in = x + (t * stride + k) * C;
            for (int64_t c = 0; c < C; c++)
                out[c] += w[c * K + k] * in[c];
        }
    }
}
