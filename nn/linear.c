/* Linear layers (y = x W^T + b, PyTorch layout) as sgemm over row chunks, one chunk per compute thread. */
#include <string.h>

#include <cblas.h>

#include "nn/nn.h"

/* rows per chunk below which splitting a GEMM costs more than it saves */
#define NN_LINEAR_GRAIN 16

typedef struct {
    const float *x, *w, *b, *dy;
    int64_t in, out;
    float *y;
} linear_job;

static void linear_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    const linear_job *j = ctx;
    int64_t rows = r1 - r0;
    float *y = j->y + r0 * j->out;
    float beta = 0.f;
    if (j->b) {
        for (int64_t r = 0; r < rows; r++) memcpy(y + r * j->out, j->b, (size_t)j->out * sizeof(float));
        beta = 1.f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)j->out, (int)j->in, 1.f,
                j->x + r0 * j->in, (int)j->in, j->w, (int)j->in, beta, y, (int)j->out);
}

void nn_linear(nn_pool *p, const float *x, int64_t rows, int64_t in, const float *w, const float *b,
               int64_t out, float *y)
{
    linear_job j = {.x = x, .w = w, .b = b, .in = in, .out = out, .y = y};
    nn_pool_run(p, rows, NN_LINEAR_GRAIN, linear_rows, &j);
}

static void linear_backward_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    const linear_job *j = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)j->in, (int)j->out, 1.f,
                j->dy + r0 * j->out, (int)j->out, j->w, (int)j->in, 0.f, j->y + r0 * j->in, (int)j->in);
}

void nn_linear_backward(nn_pool *p, const float *dy, int64_t rows, int64_t out, const float *w, int64_t in,
                        float *dx)
{
    linear_job j = {.dy = dy, .w = w, .in = in, .out = out, .y = dx};
    nn_pool_run(p, rows, NN_LINEAR_GRAIN, linear_backward_rows, &j);
}

void nn_add(const float *a, const float *b, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
