/* Pooling: NesT's 3x3 stride-2 max-pool (-inf padding, symmetric or TF-SAME) and mean pooling. */
#include <string.h>

#include "nn/nn.h"

int64_t nn_maxpool3x3s2_out(int64_t n, nn_pool_pad pad)
{
    (void)pad; /* both paddings give ceil(n / 2) outputs; they differ only in window alignment */
    return (n + 1) / 2;
}

/* padding before the first input row/column */
static int64_t pad_before(int64_t n, nn_pool_pad pad)
{
    if (pad == NN_PAD_SYMMETRIC) return 1;
    int64_t total = (nn_maxpool3x3s2_out(n, pad) - 1) * 2 + 3 - n;
    return total > 0 ? total / 2 : 0;
}

void nn_maxpool3x3s2(const float *x, int64_t h, int64_t w, int64_t c, nn_pool_pad pad, float *y,
                     int32_t *argmax)
{
    const int64_t oh = nn_maxpool3x3s2_out(h, pad), ow = nn_maxpool3x3s2_out(w, pad);
    const int64_t py = pad_before(h, pad), px = pad_before(w, pad);
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            float *out = y + (oy * ow + ox) * c;
            int32_t *am = argmax ? argmax + (oy * ow + ox) * c : NULL;
            /* window scanned row-major; the first in-range value seeds the max and later ones replace it
             * only when strictly greater, so ties go to the first, as PyTorch does */
            int first = 1;
            for (int64_t ky = 0; ky < 3; ky++) {
                int64_t iy = oy * 2 - py + ky;
                if (iy < 0 || iy >= h) continue;
                for (int64_t kx = 0; kx < 3; kx++) {
                    int64_t ix = ox * 2 - px + kx;
                    if (ix < 0 || ix >= w) continue;
                    const float *in = x + (iy * w + ix) * c;
                    if (first) memcpy(out, in, (size_t)c * sizeof(float));
                    if (am) {
                        for (int64_t ch = 0; ch < c; ch++)
                            if (first || in[ch] > out[ch]) {
                                out[ch] = in[ch];
                                am[ch] = (int32_t)((iy * w + ix) * c + ch);
                            }
                    } else if (!first) {
                        for (int64_t ch = 0; ch < c; ch++)
                            out[ch] = in[ch] > out[ch] ? in[ch] : out[ch];
                    }
                    first = 0;
                }
            }
        }
}

void nn_maxpool_backward(const float *dy, const int32_t *argmax, int64_t out_n, int64_t in_n, float *dx)
{
    memset(dx, 0, (size_t)in_n * sizeof(float));
    for (int64_t i = 0; i < out_n; i++)
        dx[argmax[i]] += dy[i];
}

void nn_meanpool(const float *x, int64_t rows, int64_t C, float *y)
{
    memset(y, 0, (size_t)C * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++)
            y[c] += x[r * C + c];
    for (int64_t c = 0; c < C; c++)
        y[c] /= (float)rows;
}

void nn_meanpool_backward(const float *dy, int64_t rows, int64_t C, float *dx)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++)
            dx[r * C + c] = dy[c] / (float)rows;
}
