/* Unit tests for nn/nn.h: every op against a naive double-precision reference on awkward sizes, serial
 * against a 2-thread pool, and every *_backward against central finite differences of L = sum(y * r);
 * plus the tensor, arena, pool and fast-math helpers the ops stand on. */
#include "nn/fastmath.h"
#include "nn/nn.h"
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5f    /* float op vs double reference, relative to the output's scale */
#define POOL_TOL 1e-5f   /* serial vs 2 threads: only summation order may differ */
#define GRAD_TOL 1e-3f   /* analytic gradient vs finite differences, relative to the gradient's scale */
#define GRAD_FLOOR 1e-2f /* scale floor for gradients that vanish (softmax of one value): abs error 1e-5 */
#define FD_EPS 1e-3
#define FD_BUDGET 400 /* finite-difference probes per case (fewer on the large, slow cases) */

static nn_pool *g_pool2;
static nn_pool *pool_at(int i)
{
    return i ? g_pool2 : NULL;
}

/* ---- buffers and names ---- */

/* Outputs start as NaN so an op that leaves an element unwritten fails the comparison. */
static float *fnew(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "test_ops: out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static float *frand(int64_t n, float lo, float hi)
{
    float *p = fnew(n);
    tu_fill(p, n, lo, hi);
    return p;
}

static double *dnew(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    if (!p) {
        fprintf(stderr, "test_ops: out of memory\n");
        exit(2);
    }
    return p;
}

static double *to_double(const float *x, int64_t n)
{
    if (!x) return NULL;
    double *d = dnew(n);
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static float *fcopy(const float *x, int64_t n)
{
    float *p = fnew(n);
    memcpy(p, x, (size_t)n * sizeof *p);
    return p;
}

static const char *nm(const char *fmt, ...)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof buf[0], fmt, ap);
    va_end(ap);
    return b;
}

/* float result against a double reference, relative to max(max |want|, floor_scale) */
static int check_ref_floor(const char *name, const float *got, const double *want, int64_t n, float tol,
                           float floor_scale)
{
    float *w = fnew(n);
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)want[i];
    int ok = tu_close(name, got, w, n, tol, floor_scale);
    free(w);
    return ok;
}

static int check_ref(const char *name, const float *got, const double *want, int64_t n, float tol)
{
    return check_ref_floor(name, got, want, n, tol, 1e-6f);
}

static int check_same(const char *name, const float *threaded, const float *serial, int64_t n)
{
    return tu_close(name, threaded, serial, n, POOL_TOL, 1e-6f);
}

/* ---- finite differences ---- */

typedef void (*fwd_fn)(const void *ctx, const double *x, double *y);

/* Compares the analytic gradient dx (from an op's backward with dy = r) with central differences of
 * L(x) = sum(f(x) * r), computed in double through the naive forward, on about `probes` inputs spread
 * evenly (all of them when there are fewer). */
static void check_grad(const char *name, const float *dx, fwd_fn f, const void *ctx, const float *x,
                       int64_t nx, int64_t ny, const float *r, int64_t probes)
{
    int64_t step = (nx + probes - 1) / probes, m = 0;
    double *xd = to_double(x, nx), *rd = to_double(r, ny), *y = dnew(ny);
    float *got = fnew(nx / step + 1), *want = fnew(nx / step + 1);
    for (int64_t i = 0; i < nx; i += step) {
        double x0 = xd[i], lp = 0, lm = 0;
        xd[i] = x0 + FD_EPS;
        f(ctx, xd, y);
        for (int64_t j = 0; j < ny; j++)
            lp += y[j] * rd[j];
        xd[i] = x0 - FD_EPS;
        f(ctx, xd, y);
        for (int64_t j = 0; j < ny; j++)
            lm += y[j] * rd[j];
        xd[i] = x0;
        got[m] = dx[i];
        want[m++] = (float)((lp - lm) / (2 * FD_EPS));
    }
    tu_close(name, got, want, m, GRAD_TOL, GRAD_FLOOR);
    free(xd), free(rd), free(y), free(got), free(want);
}

/* ---- infrastructure: tensors, arena, pool ---- */

static void test_tensor(void)
{
    float d[30] = {0};
    nn_tensor t = nn_tensor_view(d, 3, (const int64_t[]){2, 3, 5});
    TU_CHECK(t.data == d && t.ndim == 3, "view");
    TU_CHECK(t.shape[0] == 2 && t.shape[1] == 3 && t.shape[2] == 5, "shape");
    TU_CHECK(t.stride[0] == 15 && t.stride[1] == 5 && t.stride[2] == 1, "strides %lld %lld %lld",
             (long long)t.stride[0], (long long)t.stride[1], (long long)t.stride[2]);
    TU_CHECK(nn_tensor_numel(&t) == 30, "numel %lld", (long long)nn_tensor_numel(&t));
    TU_CHECK(nn_tensor_is_contiguous(&t), "view is contiguous");
    t.stride[1] = 6;
    TU_CHECK(!nn_tensor_is_contiguous(&t), "stride 6 on dim 1 is not contiguous");

    const float a[7] = {1, -2, 3, -4.5f, 0, 2, 1}, b[7] = {1, -2, 3, 1, 0, 2, 1.25f};
    TU_CHECK(nn_max_abs_diff(a, b, 7) == 5.5f, "max_abs_diff %g", nn_max_abs_diff(a, b, 7));
    TU_CHECK(nn_max_abs(a, 7) == 4.5f, "max_abs %g", nn_max_abs(a, 7));
    TU_CHECK(nn_max_abs(a, 1) == 1.f, "max_abs n=1");
}

static void test_arena(void)
{
    const size_t req[4] = {1, 100, 64, 3};
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        TU_CHECK(nn_arena_cost(req[i]) >= req[i], "cost(%zu) = %zu", req[i], nn_arena_cost(req[i]));
        total += nn_arena_cost(req[i]);
    }
    nn_arena a;
    TU_CHECK(nn_arena_init(&a, total) == 0, "init %zu", total);
    char *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = nn_arena_alloc(&a, req[i]);
        TU_CHECK(p[i] != NULL, "alloc %zu in an arena sized by nn_arena_cost", req[i]);
        if (!p[i]) continue;
        TU_CHECK((uintptr_t)p[i] % 64 == 0, "alloc %d is 64-byte aligned", i);
        memset(p[i], 0xab, req[i]); /* ASan catches a block outside the arena */
        if (i) TU_CHECK(p[i] >= p[i - 1] + req[i - 1], "blocks %d and %d overlap", i - 1, i);
    }
    TU_CHECK(nn_arena_alloc(&a, 1) == NULL, "alloc in a full arena returns NULL");
    nn_arena_reset(&a);
    TU_CHECK(a.used == 0, "reset");
    float *f = nn_arena_floats(&a, 5);
    TU_CHECK(f == (float *)p[0], "reset arena reuses its memory");
    nn_arena_release(&a);
}

typedef struct {
    int64_t *count, *begin, *end;
    int *thread;
} run_log;

static void run_task(void *ctx, int64_t begin, int64_t end, int thread)
{
    run_log *l = ctx;
    for (int64_t i = begin; i < end; i++) {
        l->count[i]++;
        l->begin[i] = begin;
        l->end[i] = end;
        l->thread[i] = thread;
    }
}

static void test_pool(void)
{
    TU_CHECK(nn_pool_size(NULL) == 1, "size of NULL pool");
    TU_CHECK(nn_pool_size(g_pool2) == 2, "size of 2-thread pool %d", nn_pool_size(g_pool2));
    nn_pool_free(NULL);
    const int64_t ns[] = {0, 1, 2, 5, 7, 1000}, grains[] = {1, 3, 64, 400, 2000};
    for (int pi = 0; pi < 2; pi++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) {
                int64_t n = ns[a], grain = grains[g];
                run_log l = {calloc(n + 1, 8), calloc(n + 1, 8), calloc(n + 1, 8),
                             calloc(n + 1, sizeof(int))};
                nn_pool_run(pool_at(pi), n, grain, run_task, &l);
                int bad = 0;
                for (int64_t i = 0; i < n && !bad; i++) {
                    int64_t len = l.end[i] - l.begin[i];
                    bad = l.count[i] != 1 || l.begin[i] > i || l.end[i] <= i || l.end[i] > n ||
                          len < (grain < n ? grain : n) || l.thread[i] < 0 ||
                          l.thread[i] >= nn_pool_size(pool_at(pi));
                    TU_CHECK(
                        !bad,
                        "pool=%d n=%lld grain=%lld: index %lld ran %lld times in chunk [%lld,%lld) thread %d",
                        nn_pool_size(pool_at(pi)), (long long)n, (long long)grain, (long long)i,
                        (long long)l.count[i], (long long)l.begin[i], (long long)l.end[i], l.thread[i]);
                }
                free(l.count), free(l.begin), free(l.end), free(l.thread);
            }
}

/* The line users paste into bug reports must say that vidcap's threads, not OpenBLAS', own the cores. */
static void test_sysinfo(void)
{
    char buf[512], small[16];
    nn_sysinfo(buf, sizeof buf, 3);
    TU_CHECK(strstr(buf, "n_threads = 3") && strstr(buf, "BLAS = OpenBLAS") &&
                 strstr(buf, "BLAS threads = 1"),
             "sysinfo: %s", buf);
    memset(small, 'x', sizeof small);
    nn_sysinfo(small, sizeof small, 3);
    TU_CHECK(memchr(small, 0, sizeof small) != NULL, "sysinfo does not NUL-terminate a short buffer");
}

/* ---- fast exp / erf (nn/fastmath.h), which softmax, attention and GELU are built on ---- */

static void test_fastmath(void)
{
    double worst_exp = 0, worst_erf = 0, at_exp = 0, at_erf = 0;
    for (int64_t i = 0; i <= 2000000; i++) { /* documented range [-87, 88], every ~9e-5 */
        float x = (float)(-87.0 + 175.0 * (double)i / 2000000);
        double want = exp((double)x), rel = fabs(nn_fast_expf(x) - want) / want;
        if (!(rel <= worst_exp)) worst_exp = isnan(rel) ? INFINITY : rel, at_exp = x;
    }
    for (int64_t i = 0; i <= 1200000; i++) { /* [-6, 6]: past the clamp at +-4 too */
        float x = (float)(-6.0 + 12.0 * (double)i / 1200000);
        double err = fabs(nn_fast_erff(x) - erf((double)x));
        if (!(err <= worst_erf)) worst_erf = isnan(err) ? INFINITY : err, at_erf = x;
    }
    TU_CHECK(worst_exp < 3e-7, "nn_fast_expf: relative error %.3g at x = %.9g", worst_exp, at_exp);
    TU_CHECK(worst_erf < 1e-6, "nn_fast_erff: absolute error %.3g at x = %.9g", worst_erf, at_erf);
    TU_CHECK(nn_fast_expf(0) == 1.f, "nn_fast_expf(0) = %.9g", nn_fast_expf(0));
    TU_CHECK(nn_fast_expf(-INFINITY) >= 0 && nn_fast_expf(-INFINITY) < 1e-37f, "nn_fast_expf(-inf) = %g",
             nn_fast_expf(-INFINITY));
    TU_CHECK(nn_fast_erff(0) == 0.f && nn_fast_erff(INFINITY) == 1.f && nn_fast_erff(-INFINITY) == -1.f,
             "nn_fast_erff at 0, +-inf: %g %g %g", nn_fast_erff(0), nn_fast_erff(INFINITY),
             nn_fast_erff(-INFINITY));
    fprintf(stderr, "fastmath: expf max rel err %.3g at %.6g, erff max abs err %.3g at %.6g\n", worst_exp,
            at_exp, worst_erf, at_erf);
}

/* ---- linear ---- */

typedef struct {
    int64_t rows, in, out;
    const double *w, *b;
} linear_ctx;

static void ref_linear(const void *ctx, const double *x, double *y)
{
    const linear_ctx *c = ctx;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t o = 0; o < c->out; o++) {
            double acc = c->b ? c->b[o] : 0;
            for (int64_t i = 0; i < c->in; i++)
                acc += x[r * c->in + i] * c->w[o * c->in + i];
            y[r * c->out + o] = acc;
        }
}

static void test_linear_case(int64_t rows, int64_t in, int64_t out, int bias)
{
    float *x = frand(rows * in, -1, 1), *w = frand(out * in, -1, 1), *b = bias ? frand(out, -1, 1) : NULL;
    float *r = frand(rows * out, -1, 1), *y[2], *dx[2];
    double *xd = to_double(x, rows * in), *wd = to_double(w, out * in), *bd = to_double(b, out);
    double *yd = dnew(rows * out);
    linear_ctx c = {rows, in, out, wd, bd};
    ref_linear(&c, xd, yd);
    char id[192];
    snprintf(id, sizeof id, "rows=%lld in=%lld out=%lld bias=%d", (long long)rows, (long long)in,
             (long long)out, bias);
    for (int pi = 0; pi < 2; pi++) {
        y[pi] = fnew(rows * out);
        dx[pi] = fnew(rows * in);
        nn_linear(pool_at(pi), x, rows, in, w, b, out, y[pi]);
        nn_linear_backward(pool_at(pi), r, rows, out, w, in, dx[pi]);
        check_ref(nm("linear %s threads=%d", id, pi + 1), y[pi], yd, rows * out, FWD_TOL);
    }
    check_same(nm("linear %s 2 threads vs serial", id), y[1], y[0], rows * out);
    check_same(nm("linear_backward %s 2 threads vs serial", id), dx[1], dx[0], rows * in);
    double *dxd =
        dnew(rows * in); /* dx = r . w, exactly, for the sizes finite differences would be slow on */
    for (int64_t i = 0; i < rows * in; i++)
        for (int64_t o = 0; o < out; o++)
            dxd[i] += (double)r[i / in * out + o] * wd[o * in + i % in];
    check_ref(nm("linear_backward %s", id), dx[0], dxd, rows * in, FWD_TOL);
    if (rows * in * out < 100000)
        check_grad(nm("linear_backward %s vs finite differences", id), dx[0], ref_linear, &c, x, rows * in,
                   rows * out, r, FD_BUDGET);
    free(dxd);
    /* weight gradients of sum(y * r): dw = r^T x, db = column sums of r, accumulated onto what is there */
    float *dw = fnew(out * in), *db = fnew(out);
    double *dwd = dnew(out * in), *dbd = dnew(out);
    for (int64_t i = 0; i < out * in; i++)
        dw[i] = 0.5f, dwd[i] = 0.5;
    for (int64_t o = 0; o < out; o++)
        db[o] = -1.f, dbd[o] = -1.0;
    nn_linear_backward_weights(r, x, rows, in, out, dw, db);
    for (int64_t rr = 0; rr < rows; rr++)
        for (int64_t o = 0; o < out; o++) {
            dbd[o] += r[rr * out + o];
            for (int64_t i = 0; i < in; i++)
                dwd[o * in + i] += (double)r[rr * out + o] * x[rr * in + i];
        }
    check_ref(nm("linear_backward_weights dw %s", id), dw, dwd, out * in, FWD_TOL);
    check_ref(nm("linear_backward_weights db %s", id), db, dbd, out, FWD_TOL);
    free(dw), free(db), free(dwd), free(dbd);
    free(x), free(w), free(b), free(r), free(xd), free(wd), free(bd), free(yd);
    for (int pi = 0; pi < 2; pi++)
        free(y[pi]), free(dx[pi]);
}

static void test_linear(void)
{
    const int64_t rows[] = {1, 7, 13}, ins[] = {1, 5, 33}, outs[] = {1, 3, 17};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
                test_linear_case(rows[a], ins[b], outs[c], (a + b + c) % 2);
    test_linear_case(257, 67, 129, 1); /* large enough that a 2-thread pool really splits */
    test_linear_case(300, 96, 288, 0);
    test_linear_case(37, 40, 200, 1);  /* few rows, many outputs: split by output columns */
    test_linear_case(196, 33, 131, 0); /* uneven column chunks */
}

/* ---- layernorm ---- */

typedef struct {
    int64_t rows, C;
    const double *gamma, *beta;
    double eps;
} layernorm_ctx;

static void ref_layernorm(const void *ctx, const double *x, double *y)
{
    const layernorm_ctx *c = ctx;
    for (int64_t r = 0; r < c->rows; r++) {
        const double *xr = x + r * c->C;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < c->C; i++)
            mean += xr[i];
        mean /= c->C;
        for (int64_t i = 0; i < c->C; i++)
            var += (xr[i] - mean) * (xr[i] - mean);
        var /= c->C;
        for (int64_t i = 0; i < c->C; i++)
            y[r * c->C + i] = (xr[i] - mean) / sqrt(var + c->eps) * c->gamma[i] + c->beta[i];
    }
}

/* offset shifts every input, which a one-pass E[x^2] - E[x]^2 variance cannot survive in float */
static void test_layernorm_case(int64_t rows, int64_t C, float eps, float offset, float tol)
{
    int64_t n = rows * C;
    float *x = frand(n, offset - 2, offset + 2), *g = frand(C, 0.5f, 1.5f), *be = frand(C, -0.5f, 0.5f);
    float *r = frand(n, -1, 1), *y[2], *dx[2];
    double *xd = to_double(x, n), *gd = to_double(g, C), *bd = to_double(be, C), *yd = dnew(n);
    layernorm_ctx c = {rows, C, gd, bd, eps};
    ref_layernorm(&c, xd, yd);
    char id[192];
    snprintf(id, sizeof id, "rows=%lld C=%lld eps=%g offset=%g", (long long)rows, (long long)C, eps, offset);
    for (int pi = 0; pi < 2; pi++) {
        y[pi] = fnew(n);
        dx[pi] = fnew(n);
        nn_layernorm(pool_at(pi), x, rows, C, g, be, eps, y[pi]);
        nn_layernorm_backward(pool_at(pi), x, r, rows, C, g, eps, dx[pi]);
        check_ref(nm("layernorm %s threads=%d", id, pi + 1), y[pi], yd, n, tol);
    }
    check_same(nm("layernorm %s 2 threads vs serial", id), y[1], y[0], n);
    check_same(nm("layernorm_backward %s 2 threads vs serial", id), dx[1], dx[0], n);
    float *inplace = fcopy(x, n);
    nn_layernorm(g_pool2, inplace, rows, C, g, be, eps, inplace);
    check_same(nm("layernorm %s in place", id), inplace, y[0], n);
    if (offset == 0)
        check_grad(nm("layernorm_backward %s vs finite differences", id), dx[0], ref_layernorm, &c, x, n, n,
                   r, n > 10000 ? 100 : FD_BUDGET);
    free(x), free(g), free(be), free(r), free(xd), free(gd), free(bd), free(yd), free(inplace);
    for (int pi = 0; pi < 2; pi++)
        free(y[pi]), free(dx[pi]);
}

static void test_layernorm(void)
{
    const int64_t rows[] = {1, 7, 13}, Cs[] = {5, 33};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++) {
            test_layernorm_case(rows[a], Cs[b], 1e-6f, 0, FWD_TOL);
            test_layernorm_case(rows[a], Cs[b], 1e-5f, 0, FWD_TOL);
        }
    test_layernorm_case(7, 5, 0.5f, 0, FWD_TOL); /* eps comparable to the variance: its place matters */
    test_layernorm_case(1031, 65, 1e-6f, 0, FWD_TOL);
    test_layernorm_case(7, 33, 1e-6f, 20, 5e-5f);
    test_layernorm_case(300, 96, 1e-6f, 20, 5e-5f);
}

/* ---- layernorm with unbiased std, eps on the std (the Masked Transformer's) ---- */

static void ref_layernorm_std(const layernorm_ctx *c, const double *x, double *y)
{
    for (int64_t r = 0; r < c->rows; r++) {
        const double *xr = x + r * c->C;
        double mean = 0, ss = 0;
        for (int64_t i = 0; i < c->C; i++)
            mean += xr[i];
        mean /= c->C;
        for (int64_t i = 0; i < c->C; i++)
            ss += (xr[i] - mean) * (xr[i] - mean);
        double sd = sqrt(ss / (c->C - 1));
        for (int64_t i = 0; i < c->C; i++)
            y[r * c->C + i] =
                (xr[i] - mean) / (sd + c->eps) * (c->gamma ? c->gamma[i] : 1) + (c->beta ? c->beta[i] : 0);
    }
}

static void test_layernorm_std_case(int64_t rows, int64_t C, float eps, float offset, float spread, float tol)
{
    int64_t n = rows * C;
    float *x = frand(n, offset - spread, offset + spread), *g = frand(C, 0.5f, 1.5f),
          *be = frand(C, -0.5f, 0.5f);
    double *xd = to_double(x, n), *gd = to_double(g, C), *bd = to_double(be, C), *yd = dnew(n);
    layernorm_ctx c = {rows, C, gd, bd, eps};
    ref_layernorm_std(&c, xd, yd);
    char id[192];
    snprintf(id, sizeof id, "rows=%lld C=%lld eps=%g offset=%g spread=%g", (long long)rows, (long long)C, eps,
             offset, spread);
    float *y[2];
    for (int pi = 0; pi < 2; pi++) {
        y[pi] = fnew(n);
        nn_layernorm_std(pool_at(pi), x, rows, C, g, be, eps, y[pi]);
        check_ref(nm("layernorm_std %s threads=%d", id, pi + 1), y[pi], yd, n, tol);
    }
    check_same(nm("layernorm_std %s 2 threads vs serial", id), y[1], y[0], n);
    float *inplace = fcopy(x, n);
    nn_layernorm_std(g_pool2, inplace, rows, C, g, be, eps, inplace);
    check_same(nm("layernorm_std %s in place", id), inplace, y[0], n);
    /* without gamma/beta: the plain normalised values */
    layernorm_ctx c0 = {rows, C, NULL, NULL, eps};
    ref_layernorm_std(&c0, xd, yd);
    nn_layernorm_std(NULL, x, rows, C, NULL, NULL, eps, y[0]);
    check_ref(nm("layernorm_std %s no affine", id), y[0], yd, n, tol);
    free(x), free(g), free(be), free(xd), free(gd), free(bd), free(yd), free(inplace), free(y[0]), free(y[1]);
}

static void test_layernorm_std(void)
{
    const int64_t rows[] = {1, 7, 13}, Cs[] = {2, 5, 33};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            test_layernorm_std_case(rows[a], Cs[b], 1e-6f, 0, 2, FWD_TOL);
    /* a small spread makes eps-on-the-std differ visibly from eps-on-the-variance and from the biased std */
    test_layernorm_std_case(7, 5, 0.05f, 0, 0.1f, FWD_TOL);
    test_layernorm_std_case(300, 192, 1e-6f, 20, 2, 5e-5f);
    /* the std is unbiased: for C = 2 values {a, b}, (a - mean) / std = +-1/sqrt(2) */
    float two[2] = {3.f, 5.f}, out[2];
    nn_layernorm_std(NULL, two, 1, 2, NULL, NULL, 0.f, out);
    TU_CHECK(fabsf(out[0] + 0.70710678f) < 1e-6f && fabsf(out[1] - 0.70710678f) < 1e-6f,
             "layernorm_std C=2: got %g %g, want -+0.7071", out[0], out[1]);
}

/* ---- softmax ---- */

typedef struct {
    int64_t rows, n;
} softmax_ctx;

static void ref_softmax(const void *ctx, const double *x, double *y)
{
    const softmax_ctx *c = ctx;
    for (int64_t r = 0; r < c->rows; r++) {
        const double *xr = x + r * c->n;
        double m = xr[0], s = 0;
        for (int64_t i = 1; i < c->n; i++)
            m = xr[i] > m ? xr[i] : m;
        for (int64_t i = 0; i < c->n; i++)
            s += exp(xr[i] - m);
        for (int64_t i = 0; i < c->n; i++)
            y[r * c->n + i] = exp(xr[i] - m) / s;
    }
}

static void test_softmax_case(int64_t rows, int64_t n, float lo, float hi)
{
    int64_t N = rows * n;
    float *x = frand(N, lo, hi), *y = fcopy(x, N), *r = frand(N, -1, 1), *dx = fnew(N);
    double *xd = to_double(x, N), *yd = dnew(N);
    softmax_ctx c = {rows, n};
    ref_softmax(&c, xd, yd);
    char id[192];
    snprintf(id, sizeof id, "rows=%lld n=%lld range=[%g,%g]", (long long)rows, (long long)n, lo, hi);
    nn_softmax(y, rows, n);
    check_ref(nm("softmax %s", id), y, yd, N, FWD_TOL);
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < n; j++)
            s += y[i * n + j];
        TU_CHECK(fabs(s - 1) < 1e-5, "softmax %s: row %lld sums to %.9g", id, (long long)i, s);
    }
    nn_softmax_backward(y, r, rows, n, dx);
    float *alias = fcopy(r, N);
    nn_softmax_backward(y, alias, rows, n, alias);
    TU_CHECK(memcmp(alias, dx, (size_t)N * sizeof *dx) == 0, "softmax_backward %s: dx == dy differs", id);
    if (hi - lo < 50)
        check_grad(nm("softmax_backward %s vs finite differences", id), dx, ref_softmax, &c, x, N, N, r,
                   FD_BUDGET);
    free(x), free(y), free(r), free(dx), free(xd), free(yd), free(alias);
}

static void test_softmax(void)
{
    const int64_t rows[] = {1, 7, 13}, ns[] = {1, 5, 17, 33};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++)
            test_softmax_case(rows[a], ns[b], -4, 4);
    test_softmax_case(7, 33, 80, 120); /* exp overflows in float without the max subtraction */
    test_softmax_case(5, 17, -120, -80);
}

/* ---- gelu and add ---- */

static void ref_gelu(const void *ctx, const double *x, double *y)
{
    int64_t n = *(const int64_t *)ctx;
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)));
}

static void test_gelu_case(int64_t n)
{
    float *x = frand(n, -6, 6), *r = frand(n, -1, 1), *y[2], *dx = fnew(n);
    double *xd = to_double(x, n), *yd = dnew(n);
    ref_gelu(&n, xd, yd);
    for (int pi = 0; pi < 2; pi++) {
        y[pi] = fnew(n);
        nn_gelu(pool_at(pi), x, n, y[pi]);
        /* judged against the input's scale (x in [-6, 6)), not the output's: deep in the negative tail GELU
         * is a tiny difference of large terms, and with n = 1 the output scale can be 1e-3 */
        check_ref_floor(nm("gelu n=%lld threads=%d", (long long)n, pi + 1), y[pi], yd, n, FWD_TOL, 1.0);
    }
    check_same(nm("gelu n=%lld 2 threads vs serial", (long long)n), y[1], y[0], n);
    float *inplace = fcopy(x, n);
    nn_gelu(g_pool2, inplace, n, inplace);
    check_same(nm("gelu n=%lld in place", (long long)n), inplace, y[0], n);
    nn_gelu_backward(x, r, n, dx);
    /* elementwise, so each probe only needs the one element: run it per element to keep this O(n) */
    float *g = fnew(n);
    for (int64_t i = 0; i < n; i++) {
        double p = xd[i] + FD_EPS, m = xd[i] - FD_EPS, yp, ym;
        int64_t one = 1;
        ref_gelu(&one, &p, &yp);
        ref_gelu(&one, &m, &ym);
        g[i] = (float)((yp - ym) / (2 * FD_EPS) * r[i]);
    }
    tu_close(nm("gelu_backward n=%lld vs finite differences", (long long)n), dx, g, n, GRAD_TOL, GRAD_FLOOR);
    free(x), free(r), free(dx), free(xd), free(yd), free(inplace), free(g), free(y[0]), free(y[1]);
}

static void test_add(void)
{
    const int64_t ns[] = {1, 7, 13, 33};
    for (int k = 0; k < 4; k++) {
        int64_t n = ns[k];
        float *a = frand(n, -1, 1), *b = frand(n, -1, 1), *out = fnew(n), *want = fnew(n);
        for (int64_t i = 0; i < n; i++)
            want[i] = a[i] + b[i];
        nn_add(a, b, n, out);
        tu_close(nm("add n=%lld", (long long)n), out, want, n, 0, 1e-6f);
        float *a2 = fcopy(a, n), *b2 = fcopy(b, n);
        nn_add(a2, b, n, a2);
        nn_add(a, b2, n, b2);
        tu_close(nm("add n=%lld out == a", (long long)n), a2, want, n, 0, 1e-6f);
        tu_close(nm("add n=%lld out == b", (long long)n), b2, want, n, 0, 1e-6f);
        free(a), free(b), free(out), free(want), free(a2), free(b2);
    }
}

/* ---- attention ---- */

static void ref_attention_full(const nn_attention_shape *s, const double *qkv, double *probs, double *out)
{
    int64_t T = s->tokens, D = s->dim, H = s->heads, hd = D / H;
    double scale = 1 / sqrt((double)hd), *p = dnew(T);
    for (int64_t b = 0; b < s->blocks; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const double *q = qkv + (b * T + i) * 3 * D + h * hd;
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    const double *k = qkv + (b * T + j) * 3 * D + D + h * hd;
                    double acc = 0;
                    for (int64_t e = 0; e < hd; e++)
                        acc += q[e] * k[e];
                    p[j] = acc * scale;
                    m = p[j] > m ? p[j] : m;
                }
                for (int64_t j = 0; j < T; j++)
                    sum += (p[j] = exp(p[j] - m));
                for (int64_t j = 0; j < T; j++) {
                    p[j] /= sum;
                    if (probs) probs[((b * H + h) * T + i) * T + j] = p[j];
                }
                for (int64_t e = 0; e < hd; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < T; j++)
                        acc += p[j] * qkv[(b * T + j) * 3 * D + 2 * D + h * hd + e];
                    int64_t f = s->merge == NN_MERGE_HEAD_MAJOR ? h * hd + e : e * H + h;
                    out[(b * T + i) * D + f] = acc;
                }
            }
    free(p);
}

static void ref_attention(const void *ctx, const double *qkv, double *out)
{
    ref_attention_full(ctx, qkv, NULL, out);
}

static void test_attention_case(int64_t blocks, int64_t tokens, int64_t heads, int64_t head_dim)
{
    int64_t D = heads * head_dim, nq = blocks * tokens * 3 * D, no = blocks * tokens * D;
    int64_t np = blocks * heads * tokens * tokens;
    float *qkv = frand(nq, -2, 2), *r = frand(no, -1, 1), *outs[2][2] = {{0}};
    double *qd = to_double(qkv, nq), *od = dnew(no), *pd = dnew(np);
    for (int merge = 0; merge < 2; merge++) {
        nn_attention_shape s = {blocks, tokens, D, heads, (nn_head_merge)merge, NULL, NULL};
        char id[192];
        snprintf(id, sizeof id, "blocks=%lld tokens=%lld heads=%lld head_dim=%lld merge=%s",
                 (long long)blocks, (long long)tokens, (long long)heads, (long long)head_dim,
                 merge ? "dim_major" : "head_major");
        ref_attention_full(&s, qd, pd, od);
        float *probs[2], *dq[2];
        for (int pi = 0; pi < 2; pi++) {
            int nt = nn_pool_size(pool_at(pi));
            float *ws = fnew((int64_t)nn_attention_workspace(&s, nt));
            float *wsb = fnew((int64_t)nn_attention_backward_workspace(&s, nt));
            outs[merge][pi] = fnew(no);
            probs[pi] = fnew(np);
            dq[pi] = fnew(nq);
            nn_attention(pool_at(pi), &s, qkv, probs[pi], outs[merge][pi], ws);
            check_ref(nm("attention %s threads=%d", id, nt), outs[merge][pi], od, no, FWD_TOL);
            check_ref(nm("attention probs %s threads=%d", id, nt), probs[pi], pd, np, FWD_TOL);
            nn_attention_backward(pool_at(pi), &s, qkv, probs[pi], r, dq[pi], wsb);
            float *nop = fnew(no);
            nn_attention(pool_at(pi), &s, qkv, NULL, nop, ws);
            check_same(nm("attention %s threads=%d probs=NULL", id, nt), nop, outs[merge][pi], no);
            free(ws), free(wsb), free(nop);
        }
        for (int64_t row = 0; row < np / tokens; row++) {
            double sum = 0;
            for (int64_t j = 0; j < tokens; j++)
                sum += probs[0][row * tokens + j];
            TU_CHECK(fabs(sum - 1) < 1e-5, "attention %s: probs row %lld sums to %.9g", id, (long long)row,
                     sum);
        }
        check_same(nm("attention %s 2 threads vs serial", id), outs[merge][1], outs[merge][0], no);
        check_same(nm("attention probs %s 2 threads vs serial", id), probs[1], probs[0], np);
        check_same(nm("attention_backward %s 2 threads vs serial", id), dq[1], dq[0], nq);
        check_grad(nm("attention_backward %s vs finite differences", id), dq[0], ref_attention, &s, qkv, nq,
                   no, r, blocks * tokens > 100 ? 60 : FD_BUDGET);
        for (int pi = 0; pi < 2; pi++)
            free(probs[pi]), free(dq[pi]);
    }
    /* the two merge orders are the same values, permuted: out_dim[e*H+h] == out_head[h*hd+e] */
    int bad = 0;
    for (int64_t t = 0; t < blocks * tokens; t++)
        for (int64_t h = 0; h < heads; h++)
            for (int64_t e = 0; e < head_dim; e++)
                bad += outs[1][0][t * D + e * heads + h] != outs[0][0][t * D + h * head_dim + e];
    TU_CHECK(bad == 0,
             "attention blocks=%lld tokens=%lld heads=%lld: merge orders differ beyond the permutation",
             (long long)blocks, (long long)tokens, (long long)heads);
    free(qkv), free(r), free(qd), free(od), free(pd);
    for (int m = 0; m < 2; m++)
        free(outs[m][0]), free(outs[m][1]);
}

/* Ragged blocks (offsets): each block must equal a uniform one-block attention over its own rows. */
static void test_attention_ragged(void)
{
    const int64_t lens[] = {5, 0, 1, 9, 3}, nb = 5, heads = 3, D = 12, maxlen = 9;
    int64_t offsets[6] = {0};
    for (int b = 0; b < nb; b++)
        offsets[b + 1] = offsets[b] + lens[b];
    const int64_t rows = offsets[nb];
    for (int merge = 0; merge < 2; merge++) {
        float *qkv = frand(rows * 3 * D, -2, 2), *out = fnew(rows * D), *want = fnew(rows * D);
        nn_attention_shape s = {nb, maxlen, D, heads, (nn_head_merge)merge, offsets, NULL};
        float *ws = fnew((int64_t)nn_attention_workspace(&s, 2));
        nn_attention(g_pool2, &s, qkv, NULL, out, ws);
        for (int b = 0; b < nb; b++) {
            if (!lens[b]) continue;
            nn_attention_shape one = {1, lens[b], D, heads, (nn_head_merge)merge, NULL, NULL};
            nn_attention(NULL, &one, qkv + offsets[b] * 3 * D, NULL, want + offsets[b] * D, ws);
        }
        tu_close(nm("attention ragged merge=%d", merge), out, want, rows * D, 1e-6f, 1e-6f);
        free(qkv), free(out), free(want), free(ws);
    }
}

static void test_attention(void)
{
    test_attention_case(1, 1, 1, 5);
    test_attention_case(1, 17, 3, 5);
    test_attention_case(2, 17, 1, 8);
    test_attention_case(3, 7, 3, 8);
    test_attention_case(2, 13, 3, 5);
    test_attention_case(16, 17, 3, 8); /* many blocks so the pool splits them */
    test_attention_case(3, 50, 4, 16);
}

/* ---- attention with separate q, k, v (nn_mha) ---- */

/* naive double attention over the same strided layout as nn_mha */
static void ref_mha(const nn_mha_shape *s, const double *q, const double *k, const double *v, double *out)
{
    const int64_t H = s->heads, d = s->dim / H;
    double *p = dnew(s->nk);
    for (int64_t g = 0; g < s->groups; g++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < s->nq; i++) {
                const double *qi = q + g * s->q_group + i * s->q_ld + h * d;
                const int64_t visible = s->causal ? i + s->nk - s->nq + 1 : s->nk;
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < visible; j++) {
                    const double *kj = k + g * s->kv_group + j * s->kv_ld + h * d;
                    double acc = 0;
                    for (int64_t e = 0; e < d; e++)
                        acc += qi[e] * kj[e];
                    p[j] = acc * s->scale;
                    m = p[j] > m ? p[j] : m;
                }
                for (int64_t j = 0; j < visible; j++)
                    sum += (p[j] = exp(p[j] - m));
                for (int64_t e = 0; e < d; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < visible; j++)
                        acc += p[j] / sum * v[g * s->kv_group + j * s->kv_ld + h * d + e];
                    out[g * s->out_group + i * s->out_ld + h * d + e] = acc;
                }
            }
    free(p);
}

/* pad: extra floats per row (strided views); shared: every group reads one memory */
static void test_mha_case(int64_t groups, int64_t nq, int64_t nk, int64_t heads, int64_t head_dim, int causal,
                          int64_t pad, int shared)
{
    const int64_t D = heads * head_dim, ld = D + pad;
    nn_mha_shape s = {.groups = groups,
                      .nq = nq,
                      .nk = nk,
                      .dim = D,
                      .heads = heads,
                      .scale = 1.f / sqrtf((float)D),
                      .causal = causal,
                      .q_ld = ld,
                      .kv_ld = ld,
                      .out_ld = ld,
                      .q_group = nq * ld,
                      .kv_group = shared ? 0 : nk * ld,
                      .out_group = nq * ld};
    const int64_t nqf = groups * nq * ld, nkf = (shared ? 1 : groups) * nk * ld;
    float *q = frand(nqf, -2, 2), *k = frand(nkf, -2, 2), *v = frand(nkf, -2, 2);
    double *qd = to_double(q, nqf), *kd = to_double(k, nkf), *vd = to_double(v, nkf), *od = dnew(nqf);
    ref_mha(&s, qd, kd, vd, od);
    char id[192];
    snprintf(id, sizeof id,
             "groups=%lld nq=%lld nk=%lld heads=%lld head_dim=%lld causal=%d pad=%lld shared=%d",
             (long long)groups, (long long)nq, (long long)nk, (long long)heads, (long long)head_dim, causal,
             (long long)pad, shared);
    float *out[2];
    for (int pi = 0; pi < 2; pi++) {
        float *ws = fnew((int64_t)nn_mha_workspace(&s, nn_pool_size(pool_at(pi))));
        out[pi] = fnew(nqf);
        nn_mha(pool_at(pi), &s, q, k, v, out[pi], ws);
        /* the padding columns are not the op's to write: compare only the D real ones */
        float *got = fnew(groups * nq * D), *want = fnew(groups * nq * D);
        for (int64_t r = 0; r < groups * nq; r++)
            for (int64_t e = 0; e < D; e++) {
                got[r * D + e] = out[pi][r * ld + e];
                want[r * D + e] = (float)od[r * ld + e];
            }
        tu_close(nm("mha %s threads=%d", id, pi + 1), got, want, groups * nq * D, FWD_TOL, 1e-6f);
        for (int64_t r = 0; r < groups * nq && pad; r++)
            TU_CHECK(isnan(out[pi][r * ld + D]), "mha %s: wrote a padding column", id);
        free(ws), free(got), free(want);
    }
    free(q), free(k), free(v), free(qd), free(kd), free(vd), free(od), free(out[0]), free(out[1]);
}

static void test_mha(void)
{
    test_mha_case(1, 1, 1, 1, 5, 0, 0, 0);
    test_mha_case(3, 7, 11, 2, 4, 0, 0, 0);   /* cross-attention: nq != nk */
    test_mha_case(2, 9, 9, 3, 5, 1, 0, 0);    /* causal self-attention */
    test_mha_case(5, 1, 6, 4, 3, 1, 3, 0);    /* one new token over a cache: causal sees everything */
    test_mha_case(4, 3, 8, 2, 6, 1, 0, 0);    /* the last 3 queries of 8 */
    test_mha_case(6, 3, 20, 4, 8, 0, 5, 1);   /* beams of groups sharing one memory, strided rows */
    test_mha_case(16, 17, 17, 3, 8, 0, 0, 0); /* many pairs so the pool splits them */
    /* the causal mask is not a no-op: the first query of a causal pass sees only the first key */
    nn_mha_shape s = {.groups = 1,
                      .nq = 2,
                      .nk = 2,
                      .dim = 1,
                      .heads = 1,
                      .scale = 1,
                      .causal = 1,
                      .q_ld = 1,
                      .kv_ld = 1,
                      .out_ld = 1,
                      .q_group = 2,
                      .kv_group = 2,
                      .out_group = 2};
    float q[2] = {1, 1}, k[2] = {0, 9}, v[2] = {3, 7}, o[2], ws[4];
    nn_mha(NULL, &s, q, k, v, o, ws);
    TU_CHECK(o[0] == 3.f && o[1] > 6.99f, "mha causal 2x2: got %g %g, want 3 and ~7", o[0], o[1]);
}

/* ---- conv2d ---- */

static void ref_conv2d_b(const nn_conv2d_shape *s, const double *x, const double *w, const double *b,
                         double *y)
{
    int64_t oh = (s->in_h + 2 * s->pad - s->kernel) / s->stride + 1;
    int64_t ow = (s->in_w + 2 * s->pad - s->kernel) / s->stride + 1, k = s->kernel;
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++)
            for (int64_t o = 0; o < s->out_c; o++) {
                double acc = b ? b[o] : 0;
                for (int64_t c = 0; c < s->in_c; c++)
                    for (int64_t ky = 0; ky < k; ky++)
                        for (int64_t kx = 0; kx < k; kx++) {
                            int64_t iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                            if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue;
                            acc += w[((o * s->in_c + c) * k + ky) * k + kx] *
                                   x[(iy * s->in_w + ix) * s->in_c + c];
                        }
                y[(oy * ow + ox) * s->out_c + o] = acc;
            }
}

typedef struct {
    nn_conv2d_shape s;
    const double *w, *b;
} conv2d_ctx;

static void ref_conv2d(const void *ctx, const double *x, double *y)
{
    const conv2d_ctx *c = ctx;
    ref_conv2d_b(&c->s, x, c->w, c->b, y);
}

static void test_conv2d_case(nn_conv2d_shape s)
{
    int64_t oh = (s.in_h + 2 * s.pad - s.kernel) / s.stride + 1,
            ow = (s.in_w + 2 * s.pad - s.kernel) / s.stride + 1;
    int64_t nx = s.in_h * s.in_w * s.in_c, nw = s.out_c * s.in_c * s.kernel * s.kernel,
            ny = oh * ow * s.out_c;
    char id[192];
    snprintf(id, sizeof id, "in=%lldx%lldx%lld out_c=%lld k=%lld stride=%lld pad=%lld", (long long)s.in_h,
             (long long)s.in_w, (long long)s.in_c, (long long)s.out_c, (long long)s.kernel,
             (long long)s.stride, (long long)s.pad);
    TU_CHECK(nn_conv2d_out_h(&s) == oh && nn_conv2d_out_w(&s) == ow,
             "conv2d %s: out %lldx%lld, want %lldx%lld", id, (long long)nn_conv2d_out_h(&s),
             (long long)nn_conv2d_out_w(&s), (long long)oh, (long long)ow);
    float *x = frand(nx, -1, 1), *w = frand(nw, -0.5f, 0.5f), *b = frand(s.out_c, -0.5f, 0.5f);
    float *r = frand(ny, -1, 1), *y[2], *dx[2];
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *bd = to_double(b, s.out_c), *yd = dnew(ny);
    conv2d_ctx c = {s, wd, bd};
    ref_conv2d(&c, xd, yd);
    for (int pi = 0; pi < 2; pi++) {
        float *col = fnew((int64_t)nn_conv2d_col_size(&s));
        y[pi] = fnew(ny);
        dx[pi] = fnew(nx);
        nn_conv2d(pool_at(pi), &s, x, w, b, y[pi], col);
        check_ref(nm("conv2d %s threads=%d", id, pi + 1), y[pi], yd, ny, FWD_TOL);
        for (int64_t i = 0; i < (int64_t)nn_conv2d_col_size(&s); i++)
            col[i] = NAN; /* no stale state */
        nn_conv2d_backward(pool_at(pi), &s, r, w, dx[pi], col);
        free(col);
    }
    check_same(nm("conv2d %s 2 threads vs serial", id), y[1], y[0], ny);
    check_same(nm("conv2d_backward %s 2 threads vs serial", id), dx[1], dx[0], nx);
    check_grad(nm("conv2d_backward %s vs finite differences", id), dx[0], ref_conv2d, &c, x, nx, ny, r,
               nx > 2000 ? 60 : FD_BUDGET);
    free(x), free(w), free(b), free(r), free(xd), free(wd), free(bd), free(yd);
    for (int pi = 0; pi < 2; pi++)
        free(y[pi]), free(dx[pi]);
}

static void test_conv2d(void)
{
    const nn_conv2d_shape cases[] = {
        /* in_h in_w in_c out_c k stride pad */
        {5, 7, 3, 5, 1, 1, 0}, {1, 1, 5, 3, 1, 1, 0},   {9, 7, 3, 5, 3, 1, 1},    {3, 3, 2, 3, 3, 1, 1},
        {9, 8, 5, 3, 3, 2, 1}, {13, 9, 1, 1, 3, 2, 0},  {8, 8, 3, 7, 4, 4, 0},    {11, 6, 2, 33, 4, 2, 1},
        {4, 5, 3, 4, 4, 4, 1}, {7, 9, 5, 3, 1, 2, 0},   {10, 7, 3, 2, 3, 4, 1},   {6, 6, 4, 5, 4, 1, 0},
        {7, 5, 2, 3, 1, 4, 1}, {33, 31, 5, 7, 3, 1, 1}, {32, 32, 3, 17, 4, 4, 0}, /* large: pool splits */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        test_conv2d_case(cases[i]);
}

/* ---- max-pool ---- */

typedef struct {
    int64_t h, w, c;
    nn_pool_pad pad;
} maxpool_ctx;

static int64_t ref_pool_out(int64_t n, nn_pool_pad pad)
{
    return pad == NN_PAD_SYMMETRIC ? (n + 2 - 3) / 2 + 1 : (n + 1) / 2;
}

static int64_t ref_pool_before(int64_t n, nn_pool_pad pad)
{
    if (pad == NN_PAD_SYMMETRIC) return 1;
    int64_t total = (ref_pool_out(n, pad) - 1) * 2 + 3 - n;
    return (total > 0 ? total : 0) / 2;
}

static void ref_maxpool_arg(const maxpool_ctx *c, const double *x, double *y, int32_t *argmax)
{
    int64_t oh = ref_pool_out(c->h, c->pad), ow = ref_pool_out(c->w, c->pad);
    int64_t by = ref_pool_before(c->h, c->pad), bx = ref_pool_before(c->w, c->pad);
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++)
            for (int64_t ch = 0; ch < c->c; ch++) {
                double m = -INFINITY;
                int64_t arg = -1;
                for (int64_t ky = 0; ky < 3; ky++)
                    for (int64_t kx = 0; kx < 3; kx++) {
                        int64_t iy = oy * 2 - by + ky, ix = ox * 2 - bx + kx;
                        if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                        int64_t i = (iy * c->w + ix) * c->c + ch;
                        if (x[i] > m) m = x[i], arg = i;
                    }
                int64_t o = (oy * ow + ox) * c->c + ch;
                y[o] = m;
                if (argmax) argmax[o] = (int32_t)arg;
            }
}

static void ref_maxpool(const void *ctx, const double *x, double *y)
{
    ref_maxpool_arg(ctx, x, y, NULL);
}

enum { POOL_NEGATIVE, POOL_MIXED, POOL_TIES };

/* Distinct values 0.01 apart (a random permutation), so no window has a tie and a finite-difference
 * probe of 1e-3 never moves an argmax; all negative for POOL_NEGATIVE, which zero padding would not
 * survive. POOL_TIES: five negative levels, so most windows tie (flat image regions, letterbox bars). */
static float *pool_values(int64_t n, int mode)
{
    float *x = fnew(n);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)tu_uniform(0, (float)(i + 1));
        j = j > i ? i : j;
        float t = x[i];
        x[i] = x[j], x[j] = t;
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = mode == POOL_NEGATIVE ? -1 - 0.01f * x[i]
               : mode == POOL_MIXED  ? 0.01f * (x[i] - n / 2)
                                     : -1 - 0.25f * (float)((int64_t)x[i] % 5);
    return x;
}

static void test_maxpool_case(int64_t h, int64_t w, int64_t c, nn_pool_pad pad, int mode)
{
    maxpool_ctx ctx = {h, w, c, pad};
    int64_t oh = ref_pool_out(h, pad), ow = ref_pool_out(w, pad), nx = h * w * c, ny = oh * ow * c;
    char id[192];
    snprintf(id, sizeof id, "%lldx%lldx%lld %s %s", (long long)h, (long long)w, (long long)c,
             pad == NN_PAD_SAME ? "SAME" : "SYMMETRIC",
             mode == POOL_NEGATIVE ? "negative"
             : mode == POOL_MIXED  ? "mixed"
                                   : "ties");
    float *x = pool_values(nx, mode), *y = fnew(ny), *y2 = fnew(ny), *r = frand(ny, -1, 1);
    float *dx = fnew(nx), *dxw = fnew(nx);
    int32_t *arg = malloc((size_t)ny * sizeof *arg), *argw = malloc((size_t)ny * sizeof *argw);
    double *xd = to_double(x, nx), *yd = dnew(ny);
    ref_maxpool_arg(&ctx, xd, yd, argw);
    for (int64_t i = 0; i < ny; i++)
        arg[i] = -7;
    nn_maxpool3x3s2(x, h, w, c, pad, y, arg);
    check_ref(nm("maxpool %s", id), y, yd, ny, 0);
    int bad = 0;
    for (int64_t i = 0; i < ny; i++)
        bad += arg[i] != argw[i];
    /* on ties the first maximum in window order (row-major) wins, as in PyTorch's max_pool2d */
    TU_CHECK(bad == 0, "maxpool %s: %d argmax entries differ from the reference", id, bad);
    nn_maxpool3x3s2(x, h, w, c, pad, y2, NULL);
    check_same(nm("maxpool %s argmax=NULL", id), y2, y, ny);
    for (int64_t i = 0; i < nx; i++)
        dxw[i] = 0;
    for (int64_t i = 0; i < ny; i++)
        dxw[argw[i]] += r[i];
    for (int64_t i = 0; i < nx; i++)
        dx[i] = 12345; /* backward overwrites dx */
    nn_maxpool_backward(r, arg, ny, nx, dx);
    tu_close(nm("maxpool_backward %s vs scatter-add", id), dx, dxw, nx, 1e-6f, 1e-6f);
    if (mode != POOL_TIES) /* max is not differentiable at a tie */
        check_grad(nm("maxpool_backward %s vs finite differences", id), dx, ref_maxpool, &ctx, x, nx, ny, r,
                   FD_BUDGET);
    free(x), free(y), free(y2), free(r), free(dx), free(dxw), free(arg), free(argw), free(xd), free(yd);
}

static void test_maxpool(void)
{
    for (int64_t n = 1; n <= 20; n++) {
        int64_t half = (n + 1) / 2; /* both paddings give ceil(n/2) outputs */
        TU_CHECK(nn_maxpool3x3s2_out(n, NN_PAD_SYMMETRIC) == half, "maxpool out(%lld, SYMMETRIC) = %lld",
                 (long long)n, (long long)nn_maxpool3x3s2_out(n, NN_PAD_SYMMETRIC));
        TU_CHECK(nn_maxpool3x3s2_out(n, NN_PAD_SAME) == half, "maxpool out(%lld, SAME) = %lld", (long long)n,
                 (long long)nn_maxpool3x3s2_out(n, NN_PAD_SAME));
    }
    const int64_t sizes[] = {1, 2, 3, 4, 5, 8, 9};
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 7; b++)
            for (int pad = 0; pad < 2; pad++) {
                test_maxpool_case(sizes[a], sizes[b], 1, (nn_pool_pad)pad, POOL_NEGATIVE);
                test_maxpool_case(sizes[a], sizes[b], 5, (nn_pool_pad)pad,
                                  (a + b) % 2 ? POOL_MIXED : POOL_NEGATIVE);
                test_maxpool_case(sizes[a], sizes[b], 3, (nn_pool_pad)pad, POOL_TIES);
            }
    test_maxpool_case(14, 14, 3, NN_PAD_SAME, POOL_NEGATIVE);
    test_maxpool_case(14, 14, 3, NN_PAD_SYMMETRIC, POOL_NEGATIVE);
}

/* ---- mean-pool ---- */

typedef struct {
    int64_t rows, C;
} meanpool_ctx;

static void ref_meanpool(const void *ctx, const double *x, double *y)
{
    const meanpool_ctx *c = ctx;
    for (int64_t j = 0; j < c->C; j++) {
        double s = 0;
        for (int64_t r = 0; r < c->rows; r++)
            s += x[r * c->C + j];
        y[j] = s / c->rows;
    }
}

static void test_meanpool(void)
{
    const int64_t rows[] = {1, 7, 13, 196}, Cs[] = {1, 5, 33};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++) {
            meanpool_ctx c = {rows[a], Cs[b]};
            int64_t nx = c.rows * c.C;
            float *x = frand(nx, -1, 1), *y = fnew(c.C), *r = frand(c.C, -1, 1), *dx = fnew(nx),
                  *dxw = fnew(nx);
            double *xd = to_double(x, nx), *yd = dnew(c.C);
            char id[192];
            snprintf(id, sizeof id, "rows=%lld C=%lld", (long long)c.rows, (long long)c.C);
            ref_meanpool(&c, xd, yd);
            nn_meanpool(x, c.rows, c.C, y);
            check_ref(nm("meanpool %s", id), y, yd, c.C, FWD_TOL);
            nn_meanpool_backward(r, c.rows, c.C, dx);
            for (int64_t i = 0; i < nx; i++)
                dxw[i] = (float)((double)r[i % c.C] / c.rows);
            tu_close(nm("meanpool_backward %s", id), dx, dxw, nx, 1e-6f, 1e-6f);
            check_grad(nm("meanpool_backward %s vs finite differences", id), dx, ref_meanpool, &c, x, nx, c.C,
                       r, FD_BUDGET);
            free(x), free(y), free(r), free(dx), free(dxw), free(xd), free(yd);
        }
}

/* ---- depthwise conv1d ---- */

typedef struct {
    int64_t T, C, K, pad;
    const double *w, *b;
} conv1d_ctx;

static void ref_conv1d(const void *ctx, const double *x, double *y)
{
    const conv1d_ctx *c = ctx;
    int64_t To = c->T + 2 * c->pad - c->K + 1;
    for (int64_t t = 0; t < To; t++)
        for (int64_t ch = 0; ch < c->C; ch++) {
            double acc = c->b ? c->b[ch] : 0;
            for (int64_t k = 0; k < c->K; k++) {
                int64_t ti = t - c->pad + k;
                if (ti >= 0 && ti < c->T) acc += c->w[ch * c->K + k] * x[ti * c->C + ch];
            }
            y[t * c->C + ch] = acc;
        }
}

static void test_conv1d(void)
{
    const int64_t Ts[] = {1, 7, 17}, Cs[] = {1, 5, 33},
                  kp[][2] = {{1, 0}, {1, 1}, {3, 0}, {3, 1}, {3, 2}, {5, 0}, {5, 1}, {5, 2}, {4, 1}};
    int k = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (size_t p = 0; p < sizeof kp / sizeof *kp; p++, k++) {
                int64_t T = Ts[a], C = Cs[b], K = kp[p][0], pad = kp[p][1], To = T + 2 * pad - K + 1;
                if (To < 1) continue;
                int bias = k % 2;
                char id[192];
                snprintf(id, sizeof id, "T=%lld C=%lld K=%lld pad=%lld bias=%d", (long long)T, (long long)C,
                         (long long)K, (long long)pad, bias);
                TU_CHECK(nn_conv1d_depthwise_out(T, K, pad) == To, "conv1d %s: out %lld, want %lld", id,
                         (long long)nn_conv1d_depthwise_out(T, K, pad), (long long)To);
                float *x = frand(T * C, -1, 1), *w = frand(C * K, -1, 1), *bb = bias ? frand(C, -1, 1) : NULL;
                float *y = fnew(To * C), *r = frand(To * C, -1, 1), *dx = fnew(T * C);
                double *xd = to_double(x, T * C), *wd = to_double(w, C * K), *bd = to_double(bb, C);
                double *yd = dnew(To * C);
                conv1d_ctx c = {T, C, K, pad, wd, bd};
                ref_conv1d(&c, xd, yd);
                nn_conv1d_depthwise(x, T, C, w, bb, K, pad, y);
                check_ref(nm("conv1d_depthwise %s", id), y, yd, To * C, FWD_TOL);
                nn_conv1d_depthwise_backward(r, T, C, w, K, pad, dx);
                check_grad(nm("conv1d_depthwise_backward %s vs finite differences", id), dx, ref_conv1d, &c,
                           x, T * C, To * C, r, FD_BUDGET);
                free(x), free(w), free(bb), free(y), free(r), free(dx), free(xd), free(wd), free(bd),
                    free(yd);
            }
}

/* ---- strided depthwise conv1d (the anchor branches) ---- */

static void test_conv1d_strided(void)
{
    const int64_t cases[][4] = {/* T, C, K, stride */
                                {1, 3, 1, 1},     {7, 5, 3, 1},    {17, 33, 5, 2},
                                {17, 4, 4, 3},    {160, 8, 24, 1}, {480, 6, 251, 6},
                                {480, 3, 111, 3}, {9, 2, 9, 4},    {9, 2, 10, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int64_t T = cases[i][0], C = cases[i][1], K = cases[i][2], S = cases[i][3];
        const int64_t To = K > T ? 0 : (T - K) / S + 1;
        char id[128];
        snprintf(id, sizeof id, "T=%lld C=%lld K=%lld stride=%lld", (long long)T, (long long)C, (long long)K,
                 (long long)S);
        TU_CHECK(nn_conv1d_depthwise_strided_out(T, K, S) == To, "conv1d_strided %s: out %lld, want %lld", id,
                 (long long)nn_conv1d_depthwise_strided_out(T, K, S), (long long)To);
        if (To == 0) continue;
        float *x = frand(T * C, -1, 1), *w = frand(C * K, -1, 1), *b = i % 2 ? frand(C, -1, 1) : NULL;
        float *y = fnew(To * C);
        double *yd = dnew(To * C);
        for (int64_t t = 0; t < To; t++)
            for (int64_t c = 0; c < C; c++) {
                double acc = b ? b[c] : 0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)w[c * K + k] * x[(t * S + k) * C + c];
                yd[t * C + c] = acc;
            }
        nn_conv1d_depthwise_strided(x, T, C, w, b, K, S, y);
        check_ref(nm("conv1d_depthwise_strided %s", id), y, yd, To * C, FWD_TOL);
        if (S == 1) {
            /* stride 1 is the unpadded stride-1 op */
            float *y1 = fnew(To * C);
            nn_conv1d_depthwise(x, T, C, w, b, K, 0, y1);
            check_same(nm("conv1d_depthwise_strided %s vs conv1d_depthwise", id), y, y1, To * C);
            free(y1);
        }
        free(x), free(w), free(b), free(y), free(yd);
    }
}

/* ---- batchnorm ---- */

typedef struct {
    int64_t rows, C;
    const double *mean, *var, *gamma, *beta;
    double eps;
} batchnorm_ctx;

static void ref_batchnorm(const void *ctx, const double *x, double *y)
{
    const batchnorm_ctx *c = ctx;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = 0; j < c->C; j++)
            y[r * c->C + j] =
                (x[r * c->C + j] - c->mean[j]) / sqrt(c->var[j] + c->eps) * c->gamma[j] + c->beta[j];
}

static void test_batchnorm(void)
{
    const int64_t rows[] = {1, 7, 13}, Cs[] = {1, 5, 33};
    const float epss[] = {1e-5f, 1e-3f};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int e = 0; e < 2; e++) {
                int64_t R = rows[a], C = Cs[b], n = R * C;
                float *x = frand(n, -2, 2), *mean = frand(C, -1, 1), *var = frand(C, 0.01f, 2);
                float *g = frand(C, -1.5f, 1.5f), *be = frand(C, -0.5f, 0.5f), *y = fnew(n),
                      *r = frand(n, -1, 1);
                float *dx = fnew(n);
                double *xd = to_double(x, n), *md = to_double(mean, C), *vd = to_double(var, C);
                double *gd = to_double(g, C), *bd = to_double(be, C), *yd = dnew(n);
                batchnorm_ctx c = {R, C, md, vd, gd, bd, epss[e]};
                char id[192];
                snprintf(id, sizeof id, "rows=%lld C=%lld eps=%g", (long long)R, (long long)C, epss[e]);
                ref_batchnorm(&c, xd, yd);
                nn_batchnorm(x, R, C, mean, var, g, be, epss[e], y);
                check_ref(nm("batchnorm %s", id), y, yd, n, FWD_TOL);
                nn_batchnorm_backward(r, R, C, var, g, epss[e], dx);
                check_grad(nm("batchnorm_backward %s vs finite differences", id), dx, ref_batchnorm, &c, x, n,
                           n, r, FD_BUDGET);
                free(x), free(mean), free(var), free(g), free(be), free(y), free(r), free(dx);
                free(xd), free(md), free(vd), free(gd), free(bd), free(yd);
            }
}

int main(void)
{
    nn_blas_single_threaded();
    g_pool2 = nn_pool_create(2);
    if (!g_pool2) {
        fprintf(stderr, "test_ops: nn_pool_create(2) failed\n");
        return 1;
    }
    tu_seed(20240611);
    test_tensor();
    test_arena();
    test_pool();
    test_sysinfo();
    test_fastmath();
    test_linear();
    test_layernorm();
    test_layernorm_std();
    test_softmax();
    const int64_t gelu_n[] = {1, 7, 13, 1000, 100003};
    for (int i = 0; i < 5; i++)
        test_gelu_case(gelu_n[i]);
    test_add();
    test_attention();
    test_attention_ragged();
    test_mha();
    test_conv2d();
    test_maxpool();
    test_meanpool();
    test_conv1d();
    test_conv1d_strided();
    test_batchnorm();
    nn_pool_free(g_pool2);
    return tu_finish("test_ops");
}
