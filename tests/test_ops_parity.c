/* Parity of the nn ops with PyTorch: runs each op (on a 2-thread pool) on the inputs stored by
 * tests/parity/gen_ops.py and compares outputs and input gradients with PyTorch's, relative to scale.
 * Usage: test_ops_parity ops_parity.safetensors */
#include "nn/nn.h"
#include "parity/harness.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The oracle runs in float64, so this bounds the C ops' own float32 error: dot products of at most a few
 * hundred terms, well inside 1e-5 of the output's scale. */
#define TOL 1e-5

static parity_file *pf;
static nn_pool *pool;

static const char *K(const char *c, const char *t)
{
    static char buf[8][128];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, sizeof buf[0], "%s.%s", c, t);
    return b;
}

static float *out_buf(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "test_ops_parity: out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = NAN; /* unwritten elements fail the comparison */
    return p;
}

/* optional input (bias): NULL when absent, shape-checked when present */
static const float *optional(const char *name, int64_t n)
{
    return parity_find(pf, name) ? parity_get(pf, name, 1, (int64_t[]){n}) : NULL;
}

static void linear(const char *c)
{
    int64_t xs[2] = {-1, -1}, ws[2] = {-1, -1};
    const float *x = parity_get(pf, K(c, "x"), 2, xs);
    const float *w = x ? parity_get(pf, K(c, "w"), 2, (ws[1] = xs[1], ws)) : NULL;
    if (!w) return;
    int64_t rows = xs[0], in = xs[1], out = ws[0];
    const float *b = optional(K(c, "b"), out), *dy = parity_get(pf, K(c, "dy"), 2, (int64_t[]){rows, out});
    if (!dy) return;
    float *y = out_buf(rows * out), *dx = out_buf(rows * in);
    nn_linear(pool, x, rows, in, w, b, out, y);
    nn_linear_backward(pool, dy, rows, out, w, in, dx);
    parity_compare(pf, K(c, "y"), y, rows * out, TOL);
    parity_compare(pf, K(c, "dx"), dx, rows * in, TOL);
    free(y), free(dx);
}

static void layernorm(const char *c)
{
    int64_t xs[2] = {-1, -1};
    double eps;
    const float *x = parity_get(pf, K(c, "x"), 2, xs);
    if (!x || !parity_meta_double(pf, K(c, "eps"), &eps)) return;
    int64_t rows = xs[0], C = xs[1], n = rows * C;
    const float *g = parity_get(pf, K(c, "gamma"), 1, (int64_t[]){C});
    const float *be = parity_get(pf, K(c, "beta"), 1, (int64_t[]){C});
    const float *dy = parity_get(pf, K(c, "dy"), 2, (int64_t[]){rows, C});
    if (!g || !be || !dy) return;
    float *y = out_buf(n), *dx = out_buf(n);
    nn_layernorm(pool, x, rows, C, g, be, (float)eps, y);
    nn_layernorm_backward(pool, x, dy, rows, C, g, (float)eps, dx);
    parity_compare(pf, K(c, "y"), y, n, TOL);
    parity_compare(pf, K(c, "dx"), dx, n, TOL);
    free(y), free(dx);
}

static void softmax(const char *c)
{
    int64_t xs[2] = {-1, -1};
    const float *x = parity_get(pf, K(c, "x"), 2, xs), *dy = x ? parity_get(pf, K(c, "dy"), 2, xs) : NULL;
    if (!dy) return;
    int64_t n = xs[0] * xs[1];
    float *y = out_buf(n), *dx = out_buf(n);
    memcpy(y, x, (size_t)n * sizeof *y);
    nn_softmax(y, xs[0], xs[1]);
    nn_softmax_backward(y, dy, xs[0], xs[1], dx);
    parity_compare(pf, K(c, "y"), y, n, TOL);
    parity_compare(pf, K(c, "dx"), dx, n, TOL);
    free(y), free(dx);
}

static void gelu(const char *c)
{
    int64_t xs[1] = {-1};
    const float *x = parity_get(pf, K(c, "x"), 1, xs), *dy = x ? parity_get(pf, K(c, "dy"), 1, xs) : NULL;
    if (!dy) return;
    float *y = out_buf(xs[0]), *dx = out_buf(xs[0]);
    nn_gelu(pool, x, xs[0], y);
    nn_gelu_backward(x, dy, xs[0], dx);
    parity_compare(pf, K(c, "y"), y, xs[0], TOL);
    parity_compare(pf, K(c, "dx"), dx, xs[0], TOL);
    free(y), free(dx);
}

static void attention(const char *c)
{
    int64_t qs[3] = {-1, -1, -1}, heads;
    const float *qkv = parity_get(pf, K(c, "qkv"), 3, qs);
    const char *merge = parity_meta_str(pf, K(c, "merge"));
    if (!qkv || !merge || !parity_meta_int(pf, K(c, "heads"), &heads)) return;
    nn_attention_shape s = {qs[0],
                            qs[1],
                            qs[2] / 3,
                            heads,
                            strcmp(merge, "dim_major") == 0 ? NN_MERGE_DIM_MAJOR : NN_MERGE_HEAD_MAJOR,
                            NULL,
                            NULL};
    TU_CHECK(strcmp(merge, "dim_major") == 0 || strcmp(merge, "head_major") == 0, "%s: merge %s", c, merge);
    int64_t no = s.blocks * s.tokens * s.dim, np = s.blocks * heads * s.tokens * s.tokens;
    const float *dy = parity_get(pf, K(c, "dy"), 3, (int64_t[]){s.blocks, s.tokens, s.dim});
    if (!dy) return;
    float *y = out_buf(no), *probs = out_buf(np), *dqkv = out_buf(no * 3);
    float *ws = out_buf((int64_t)nn_attention_workspace(&s, nn_pool_size(pool)));
    float *wsb = out_buf((int64_t)nn_attention_backward_workspace(&s, nn_pool_size(pool)));
    nn_attention(pool, &s, qkv, probs, y, ws);
    nn_attention_backward(pool, &s, qkv, probs, dy, dqkv, wsb);
    parity_compare(pf, K(c, "y"), y, no, TOL);
    parity_compare(pf, K(c, "probs"), probs, np, TOL);
    parity_compare(pf, K(c, "dqkv"), dqkv, no * 3, TOL);
    free(y), free(probs), free(dqkv), free(ws), free(wsb);
}

static void conv2d(const char *c)
{
    int64_t xs[3] = {-1, -1, -1}, ws[4] = {-1, -1, -1, -1}, stride, pad;
    const float *x = parity_get(pf, K(c, "x"), 3, xs);
    const float *w = x ? parity_get(pf, K(c, "w"), 4, (ws[1] = xs[2], ws)) : NULL;
    if (!w || !parity_meta_int(pf, K(c, "stride"), &stride) || !parity_meta_int(pf, K(c, "pad"), &pad))
        return;
    TU_CHECK(ws[2] == ws[3], "%s: kernel %lldx%lld is not square", c, (long long)ws[2], (long long)ws[3]);
    nn_conv2d_shape s = {xs[0], xs[1], xs[2], ws[0], ws[2], stride, pad};
    int64_t oh = nn_conv2d_out_h(&s), ow = nn_conv2d_out_w(&s), nx = xs[0] * xs[1] * xs[2];
    const float *b = parity_get(pf, K(c, "b"), 1, (int64_t[]){s.out_c});
    const float *dy = parity_get(pf, K(c, "dy"), 3, (int64_t[]){oh, ow, s.out_c});
    if (!b || !dy) return;
    float *y = out_buf(oh * ow * s.out_c), *dx = out_buf(nx), *col = out_buf((int64_t)nn_conv2d_col_size(&s));
    nn_conv2d(pool, &s, x, w, b, y, col);
    nn_conv2d_backward(pool, &s, dy, w, dx, col);
    parity_compare(pf, K(c, "y"), y, oh * ow * s.out_c, TOL);
    parity_compare(pf, K(c, "dx"), dx, nx, TOL);
    free(y), free(dx), free(col);
}

static void maxpool(const char *c)
{
    int64_t xs[3] = {-1, -1, -1};
    const float *x = parity_get(pf, K(c, "x"), 3, xs);
    const char *mode = parity_meta_str(pf, K(c, "pad"));
    if (!x || !mode) return;
    TU_CHECK(strcmp(mode, "same") == 0 || strcmp(mode, "symmetric") == 0, "%s: pad %s", c, mode);
    nn_pool_pad pad = strcmp(mode, "same") == 0 ? NN_PAD_SAME : NN_PAD_SYMMETRIC;
    int64_t oh = nn_maxpool3x3s2_out(xs[0], pad), ow = nn_maxpool3x3s2_out(xs[1], pad);
    int64_t ny = oh * ow * xs[2], nx = xs[0] * xs[1] * xs[2];
    const float *dy = parity_get(pf, K(c, "dy"), 3, (int64_t[]){oh, ow, xs[2]});
    if (!dy) return;
    float *y = out_buf(ny), *dx = out_buf(nx);
    int32_t *arg = malloc((size_t)ny * sizeof *arg);
    nn_maxpool3x3s2(x, xs[0], xs[1], xs[2], pad, y, arg);
    nn_maxpool_backward(dy, arg, ny, nx, dx);
    parity_compare(pf, K(c, "y"), y, ny, TOL);
    parity_compare(pf, K(c, "dx"), dx, nx, TOL);
    free(y), free(dx), free(arg);
}

static void meanpool(const char *c)
{
    int64_t xs[2] = {-1, -1};
    const float *x = parity_get(pf, K(c, "x"), 2, xs);
    const float *dy = x ? parity_get(pf, K(c, "dy"), 1, (int64_t[]){xs[1]}) : NULL;
    if (!dy) return;
    float *y = out_buf(xs[1]), *dx = out_buf(xs[0] * xs[1]);
    nn_meanpool(x, xs[0], xs[1], y);
    nn_meanpool_backward(dy, xs[0], xs[1], dx);
    parity_compare(pf, K(c, "y"), y, xs[1], TOL);
    parity_compare(pf, K(c, "dx"), dx, xs[0] * xs[1], TOL);
    free(y), free(dx);
}

static void conv1d_depthwise(const char *c)
{
    int64_t xs[2] = {-1, -1}, ws[3] = {-1, 1, -1}, pad;
    const float *x = parity_get(pf, K(c, "x"), 2, xs);
    const float *w = x ? parity_get(pf, K(c, "w"), 3, (ws[0] = xs[1], ws)) : NULL;
    if (!w || !parity_meta_int(pf, K(c, "pad"), &pad)) return;
    int64_t T = xs[0], C = xs[1], Kk = ws[2], To = nn_conv1d_depthwise_out(T, Kk, pad);
    const float *b = optional(K(c, "b"), C), *dy = parity_get(pf, K(c, "dy"), 2, (int64_t[]){To, C});
    if (!dy) return;
    float *y = out_buf(To * C), *dx = out_buf(T * C);
    nn_conv1d_depthwise(x, T, C, w, b, Kk, pad, y);
    nn_conv1d_depthwise_backward(dy, T, C, w, Kk, pad, dx);
    parity_compare(pf, K(c, "y"), y, To * C, TOL);
    parity_compare(pf, K(c, "dx"), dx, T * C, TOL);
    free(y), free(dx);
}

static void batchnorm(const char *c)
{
    int64_t xs[2] = {-1, -1};
    double eps;
    const float *x = parity_get(pf, K(c, "x"), 2, xs);
    if (!x || !parity_meta_double(pf, K(c, "eps"), &eps)) return;
    int64_t R = xs[0], C = xs[1];
    const float *p[4];
    const char *names[4] = {"mean", "var", "gamma", "beta"};
    for (int i = 0; i < 4; i++)
        if (!(p[i] = parity_get(pf, K(c, names[i]), 1, (int64_t[]){C}))) return;
    const float *dy = parity_get(pf, K(c, "dy"), 2, xs);
    if (!dy) return;
    float *y = out_buf(R * C), *dx = out_buf(R * C);
    nn_batchnorm(x, R, C, p[0], p[1], p[2], p[3], (float)eps, y);
    nn_batchnorm_backward(dy, R, C, p[1], p[2], (float)eps, dx);
    parity_compare(pf, K(c, "y"), y, R * C, TOL);
    parity_compare(pf, K(c, "dx"), dx, R * C, TOL);
    free(y), free(dx);
}

static const struct {
    const char *name;
    void (*run)(const char *c);
} cases[] = {
    {"linear_a", linear},
    {"linear_nobias", linear},
    {"layernorm_eps1e-6", layernorm},
    {"layernorm_eps1e-5", layernorm},
    {"softmax_a", softmax},
    {"gelu_a", gelu},
    {"attn_dim_major", attention},
    {"attn_head_major", attention},
    {"conv2d_k3s1p1", conv2d},
    {"conv2d_k4s4p0", conv2d},
    {"conv2d_k3s2p1", conv2d},
    {"conv2d_k1s1p0", conv2d},
    {"maxpool_symmetric", maxpool},
    {"maxpool_same", maxpool},
    {"maxpool_same_even", maxpool},
    {"maxpool_symmetric_ties", maxpool},
    {"maxpool_same_ties", maxpool},
    {"meanpool_a", meanpool},
    {"conv1d_k3p1", conv1d_depthwise},
    {"conv1d_k5p2_nobias", conv1d_depthwise},
    {"conv1d_k5p0", conv1d_depthwise},
    {"batchnorm_a", batchnorm},
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ops_parity.safetensors\n", argv[0]);
        return 2;
    }
    nn_blas_single_threaded();
    pool = nn_pool_create(2);
    pf = parity_open(argv[1]);
    TU_CHECK(pool != NULL, "nn_pool_create(2)");
    if (pf && pool) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            cases[i].run(cases[i].name);
        parity_check_all_used(pf);
    }
    parity_close(pf);
    nn_pool_free(pool);
    return tu_finish("test_ops_parity");
}
