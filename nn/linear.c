/* Linear layers (y = x W^T + b, PyTorch layout) as sgemm over row chunks, one chunk per compute thread. */
#include <string.h>

#include <cblas.h>

#include "nn/nn.h"

/* rows per chunk below which splitting a GEMM costs more than it saves */
#define NN_LINEAR_GRAIN 16
/* below this many rows per thread, split the output columns instead (in chunks of at least COL_GRAIN) */
#define NN_LINEAR_SPLIT_COLS 256
#define NN_LINEAR_COL_GRAIN 64

typedef struct {
    const float *x, *w, *b, *dy;
    int64_t in, out, rows;
    float *y;
} linear_job;

static void linear_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    const linear_job *j = ctx;
    int64_t rows = r1 - r0;
    float *y = j->y + r0 * j->out;
    float beta = 0.f;
    if (j->b) {
        for (int64_t r = 0; r < rows; r++)
            memcpy(y + r * j->out, j->b, (size_t)j->out * sizeof(float));
        beta = 1.f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)j->out, (int)j->in, 1.f,
                j->x + r0 * j->in, (int)j->in, j->w, (int)j->in, beta, y, (int)j->out);
}

/* the output columns [o0, o1) for all rows: the split for short, wide products, where row chunks would
 * each re-pack the whole weight matrix */
static void linear_cols(void *ctx, int64_t o0, int64_t o1, int thread)
{
    const linear_job *j = ctx;
    const int64_t rows = j->rows, cols = o1 - o0;
    float beta = 0.f;
    if (j->b) {
        for (int64_t r = 0; r < rows; r++)
            memcpy(j->y + r * j->out + o0, j->b + o0, (size_t)cols * sizeof(float));
        beta = 1.f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)j->in, 1.f, j->x,
                (int)j->in, j->w + o0 * j->in, (int)j->in, beta, j->y + o0, (int)j->out);
}

void nn_linear(nn_pool *p, const float *x, int64_t rows, int64_t in, const float *w, const float *b,
               int64_t out, float *y)
{
    linear_job j = {.x = x, .w = w, .b = b, .in = in, .out = out, .y = y, .rows = rows};
    if (rows < NN_LINEAR_SPLIT_COLS * nn_pool_size(p) && out >= 2 * NN_LINEAR_COL_GRAIN)
        nn_pool_run(p, out, NN_LINEAR_COL_GRAIN, linear_cols, &j);
    else
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

void nn_linear_backward_weights(const float *dy, const float *x, int64_t rows, int64_t in, int64_t out,
                                float *dw, float *db)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)rows, 1.f, dy, (int)out, x,
                (int)in, 1.f, dw, (int)in);
    if (db)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < out; o++)
                db[o] += dy[r * out + o];
}

void nn_add(const float *a, const float *b, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}
