/* 2-D convolution on channels-last maps via im2col + sgemm: the patch matrix has one row per output
 * pixel and columns ordered (c, ky, kx), which is PyTorch's weight layout, so W is used as stored. */
#include <string.h>

#include "nn/nn.h"

int64_t nn_conv2d_out_h(const nn_conv2d_shape *s)
{
    return (s->in_h + 2 * s->pad - s->kernel) / s->stride + 1;
}

int64_t nn_conv2d_out_w(const nn_conv2d_shape *s)
{
    return (s->in_w + 2 * s->pad - s->kernel) / s->stride + 1;
}

size_t nn_conv2d_col_size(const nn_conv2d_shape *s)
{
    return (size_t)(nn_conv2d_out_h(s) * nn_conv2d_out_w(s) * s->in_c * s->kernel * s->kernel);
}

/* 1x1, stride 1, no padding: the input already is the patch matrix */
static int is_pointwise(const nn_conv2d_shape *s)
{
    return s->kernel == 1 && s->stride == 1 && s->pad == 0;
}

typedef struct {
    const nn_conv2d_shape *s;
    const float *x;
    float *col;
} im2col_job;

static void im2col_rows(void *ctx, int64_t oy0, int64_t oy1, int thread)
{
    const im2col_job *j = ctx;
    const nn_conv2d_shape *s = j->s;
    const int64_t K = s->kernel, C = s->in_c, ow = nn_conv2d_out_w(s), cols = C * K * K;
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            float *row = j->col + (oy * ow + ox) * cols;
            for (int64_t ky = 0; ky < K; ky++) {
                int64_t iy = oy * s->stride - s->pad + ky;
                for (int64_t kx = 0; kx < K; kx++) {
                    int64_t ix = ox * s->stride - s->pad + kx;
                    int inside = iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w;
                    const float *px = j->x + (iy * s->in_w + ix) * C;
                    for (int64_t c = 0; c < C; c++)
                        row[(c * K + ky) * K + kx] = inside ? px[c] : 0.f;
                }
            }
        }
}

void nn_conv2d(nn_pool *p, const nn_conv2d_shape *s, const float *x, const float *w, const float *b, float *y,
               float *col)
{
    const int64_t rows = nn_conv2d_out_h(s) * nn_conv2d_out_w(s), cols = s->in_c * s->kernel * s->kernel;
    if (is_pointwise(s)) {
        nn_linear(p, x, rows, cols, w, b, s->out_c, y);
        return;
    }
    im2col_job j = {s, x, col};
    nn_pool_run(p, nn_conv2d_out_h(s), 4, im2col_rows, &j);
    nn_linear(p, col, rows, cols, w, b, s->out_c, y);
}

void nn_conv2d_backward(nn_pool *p, const nn_conv2d_shape *s, const float *dy, const float *w, float *dx,
                        float *col)
{
    const int64_t oh = nn_conv2d_out_h(s), ow = nn_conv2d_out_w(s), K = s->kernel, C = s->in_c;
    const int64_t cols = C * K * K;
    if (is_pointwise(s)) {
        nn_linear_backward(p, dy, oh * ow, s->out_c, w, cols, dx);
        return;
    }
    nn_linear_backward(p, dy, oh * ow, s->out_c, w, cols, col);
    /* col2im: overlapping windows accumulate, so this scatter stays serial */
    memset(dx, 0, (size_t)(s->in_h * s->in_w * C) * sizeof(float));
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            const float *row = col + (oy * ow + ox) * cols;
            for (int64_t ky = 0; ky < K; ky++) {
                int64_t iy = oy * s->stride - s->pad + ky;
                if (iy < 0 || iy >= s->in_h) continue;
                for (int64_t kx = 0; kx < K; kx++) {
                    int64_t ix = ox * s->stride - s->pad + kx;
                    if (ix < 0 || ix >= s->in_w) continue;
                    float *px = dx + (iy * s->in_w + ix) * C;
                    for (int64_t c = 0; c < C; c++)
                        px[c] += row[(c * K + ky) * K + kx];
                }
            }
        }
}
