/* vidcap-bench: the C side of tools/bench/bench_nest.py. Times vidcap's NesT forward on one preprocessed
 * input, and OpenBLAS sgemm on the same machine, printing one JSON line each so the script can put
 * vidcap, PyTorch and ONNX Runtime side by side. A benchmark, never a test: it reports, it does not judge. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "vidcap.h"

static const char *usage =
    "usage: vidcap-bench nest MODEL.safetensors INPUT.f32 THREADS ITERS OUT_LOGITS.f32 [KEEP "
    "[FILTER|random]]\n"
    "       vidcap-bench sgemm N THREADS ITERS\n"
    "       vidcap-bench explain MODEL.safetensors IMAGE THREADS ITERS\n"
    "       vidcap-bench impact MODEL.safetensors IMAGES.idx LABELS.idx N\n"
    "  nest   loads MODEL with THREADS compute threads, reads INPUT.f32 (raw little-endian floats,\n"
    "         channels-last [size, size, channels] as the model takes them), runs one warm-up forward,\n"
    "         times ITERS forwards and prints {\"ms_per_image\": median, ...}; writes the logits raw.\n"
    "  sgemm  times OpenBLAS cblas_sgemm on N x N matrices with THREADS BLAS threads and prints\n"
    "         {\"gflops\": rate of the median call, ...}.\n"
    "  explain  times classify and explain (GradCAT, no PNG) on IMAGE, alternating, and prints the\n"
    "         median of each and their ratio {\"classify_ms\", \"explain_ms\", \"ratio\"}.\n";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* a positive int from argv, or -1 */
static int parse_count(const char *s, int max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max) return -1;
    return (int)v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median in place (sorts t); n >= 1 */
static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Reads exactly n floats; an input of any other size is an error, not a silent truncation. */
static int read_floats(const char *path, float *dst, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "vidcap-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t got = fread(dst, sizeof(float), n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        fprintf(stderr, "vidcap-bench: %s: %s than the model's input of %zu floats (%zu bytes)\n", path,
                got != n ? "shorter" : "longer", n, n * sizeof(float));
        return -1;
    }
    return 0;
}

static int write_floats(const char *path, const float *src, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "vidcap-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(src, sizeof(float), n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok) {
        fprintf(stderr, "vidcap-bench: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

static int bench_nest(int argc, char **argv)
{
    if (argc < 7 || argc > 9) {
        fputs(usage, stderr);
        return 2;
    }
    const char *model_path = argv[2], *input_path = argv[3], *out_path = argv[6];
    int threads = parse_count(argv[4], 1024), iters = parse_count(argv[5], 1000000);
    if (threads < 0 || iters < 0) {
        fprintf(stderr, "vidcap-bench: THREADS and ITERS must be positive integers (got '%s', '%s')\n",
                argv[4], argv[5]);
        return 2;
    }
    int rc = 1;
    vc_model *m = NULL;
    vc_state *s = NULL;
    float *input = NULL;
    double *t = NULL;
    char err[512];

    vc_model_params mp = vc_model_default_params();
    mp.n_threads = threads;
    if (vc_model_load(model_path, mp, &m, err, sizeof(err)) != VC_OK) {
        fprintf(stderr, "vidcap-bench: %s: %s\n", model_path, err);
        goto end;
    }
    if (strcmp(vc_model_arch(m), "nest") != 0) {
        fprintf(stderr, "vidcap-bench: %s: architecture '%s', the nest benchmark needs a NesT\n", model_path,
                vc_model_arch(m));
        goto end;
    }
    const size_t n_in = (size_t)vc_input_size(m) * vc_input_size(m) * vc_input_channels(m);
    input = malloc(n_in * sizeof(float));
    t = malloc((size_t)iters * sizeof(double));
    s = vc_state_create(m);
    if (!input || !t || !s) {
        fprintf(stderr, "vidcap-bench: out of memory\n");
        goto end;
    }
    if (read_floats(input_path, input, n_in)) goto end;
    if (argc >= 8) { /* token filter: KEEP [FILTER | random] (the model's own filter when omitted) */
        if (argc == 9 && !strcmp(argv[8], "random"))
            vc_model_use_random_filter(m);
        else if (argc == 9 && vc_model_load_filter(m, argv[8], err, sizeof(err)))
            goto fail_msg;
        if (vc_state_set_keep(s, strtof(argv[7], NULL), err, sizeof(err))) goto fail_msg;
    }
    fprintf(stderr, "%s\n", vc_system_info(threads));

    if (vc_classify_tensor(s, input) != VC_OK) { /* warm-up: first touch of weights and buffers */
        fprintf(stderr, "vidcap-bench: forward failed\n");
        goto end;
    }
    double total = 0, best = 0;
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        if (vc_classify_tensor(s, input) != VC_OK) {
            fprintf(stderr, "vidcap-bench: forward failed\n");
            goto end;
        }
        t[i] = now_ms() - t0;
        total += t[i];
        if (i == 0 || t[i] < best) best = t[i];
    }
    if (write_floats(out_path, vc_logits(s), (size_t)vc_n_classes(s))) goto end;
    printf("{\"ms_per_image\": %.3f, \"ms_mean\": %.3f, \"ms_min\": %.3f, \"threads\": %d, \"iters\": %d}\n",
           median(t, iters), total / iters, best, threads, iters);
    rc = 0;
    goto end;
fail_msg:
    fprintf(stderr, "vidcap-bench: %s\n", err);
end:
    vc_state_free(s);
    vc_model_free(m);
    free(input);
    free(t);
    return rc;
}

static int bench_sgemm(int argc, char **argv)
{
    if (argc != 5) {
        fputs(usage, stderr);
        return 2;
    }
    int n = parse_count(argv[2], 16384), threads = parse_count(argv[3], 1024),
        iters = parse_count(argv[4], 100000);
    if (n < 0 || threads < 0 || iters < 0) {
        fprintf(stderr, "vidcap-bench: N, THREADS and ITERS must be positive integers\n");
        return 2;
    }
    int rc = 1;
    const size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
    double *t = malloc((size_t)iters * sizeof(double));
    if (!a || !b || !c || !t) {
        fprintf(stderr, "vidcap-bench: out of memory for %d x %d matrices\n", n, n);
        goto end;
    }
    /* deterministic values in [-1, 1): no denormals, no special cases */
    uint32_t x = 12345;
    for (size_t i = 0; i < nn; i++) {
        x = x * 1664525u + 1013904223u;
        a[i] = (float)(x >> 8) / (1u << 23) - 1.f;
        x = x * 1664525u + 1013904223u;
        b[i] = (float)(x >> 8) / (1u << 23) - 1.f;
    }
    vc_system_info(threads); /* the same OpenBLAS kernel selection vidcap's own runs get */
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.f, a, n, b, n, 0.f, c, n); /* warm-up */
    double best = 0;
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.f, a, n, b, n, 0.f, c, n);
        t[i] = now_ms() - t0;
        if (i == 0 || t[i] < best) best = t[i];
    }
    const double flop = 2.0 * n * n * n;
    printf("{\"gflops\": %.2f, \"gflops_best\": %.2f, \"n\": %d, \"threads\": %d, \"blas_threads\": %d, "
           "\"iters\": %d, \"core\": \"%s\"}\n",
           flop / (median(t, iters) * 1e6), flop / (best * 1e6), n, threads, openblas_get_num_threads(),
           iters, openblas_get_corename());
    rc = 0;
end:
    free(a);
    free(b);
    free(c);
    free(t);
    return rc;
}

/* Spearman rank correlation of two samples */
static double spearman(const float *a, const float *b, int n)
{
    double *ra = malloc((size_t)n * sizeof(double)), *rb = malloc((size_t)n * sizeof(double)), s = 0;
    if (!ra || !rb) {
        free(ra);
        free(rb);
        return NAN;
    }
    for (int k = 0; k < 2; k++) { /* average ranks, ties shared */
        const float *x = k ? b : a;
        double *r = k ? rb : ra;
        for (int i = 0; i < n; i++) {
            int less = 0, equal = 0;
            for (int j = 0; j < n; j++)
                less += x[j] < x[i], equal += x[j] == x[i];
            r[i] = less + (equal - 1) / 2.0;
        }
    }
    double ma = 0, mb = 0, va = 0, vb = 0;
    for (int i = 0; i < n; i++)
        ma += ra[i] / n, mb += rb[i] / n;
    for (int i = 0; i < n; i++)
        s += (ra[i] - ma) * (rb[i] - mb), va += (ra[i] - ma) * (ra[i] - ma),
            vb += (rb[i] - mb) * (rb[i] - mb);
    free(ra);
    free(rb);
    return s / sqrt(va * vb + 1e-30);
}

/* How well the one-backward token-impact estimate ranks tokens like the exact leave-one-out: the mean
 * over images of the per-image Spearman correlation, on N raw IDX test images (uncompressed). */
static int bench_impact(int argc, char **argv)
{
    if (argc != 6) {
        fputs(usage, stderr);
        return 2;
    }
    const int n = parse_count(argv[5], 100000);
    char err[512];
    int rc = 1, w = 0, h = 0;
    vc_model *m = NULL;
    vc_state *s = NULL;
    FILE *fi = fopen(argv[3], "rb"), *fl = fopen(argv[4], "rb");
    uint8_t hdr[16], lab, *gray = NULL, *rgb = NULL;
    float loo[4096], grad[4096];
    if (n < 0 || !fi || !fl || fread(hdr, 1, 16, fi) != 16 || fseek(fl, 8, SEEK_SET)) {
        fprintf(stderr, "vidcap-bench: cannot read the IDX files\n");
        goto end;
    }
    h = hdr[8] << 24 | hdr[9] << 16 | hdr[10] << 8 | hdr[11];
    w = hdr[12] << 24 | hdr[13] << 16 | hdr[14] << 8 | hdr[15];
    gray = malloc((size_t)w * h);
    rgb = malloc((size_t)w * h * 3);
    if (!gray || !rgb || vc_model_load(argv[2], vc_model_default_params(), &m, err, sizeof(err)) ||
        !(s = vc_state_create(m))) {
        fprintf(stderr, "vidcap-bench: %s\n", m ? "out of memory" : err);
        goto end;
    }
    double sum = 0;
    int done = 0;
    for (int i = 0; i < n; i++) {
        if (fread(gray, 1, (size_t)w * h, fi) != (size_t)w * h || fread(&lab, 1, 1, fl) != 1) break;
        for (int p = 0; p < w * h; p++)
            rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = gray[p];
        int g = vc_token_impact(s, rgb, w, h, lab, loo, grad, err, sizeof(err));
        if (g < 0) {
            fprintf(stderr, "vidcap-bench: %s\n", err);
            goto end;
        }
        sum += spearman(loo, grad, g);
        done++;
    }
    printf("{\"images\": %d, \"mean_spearman_loo_vs_grad\": %.3f}\n", done, sum / (done ? done : 1));
    rc = 0;
end:
    if (fi) fclose(fi);
    if (fl) fclose(fl);
    free(gray);
    free(rgb);
    vc_state_free(s);
    vc_model_free(m);
    return rc;
}

/* The cost of one explanation (recorded forward + backward + GradCAT walk) against one classification. */
static int bench_explain(int argc, char **argv)
{
    if (argc != 6) {
        fputs(usage, stderr);
        return 2;
    }
    const int threads = parse_count(argv[4], 256), iters = parse_count(argv[5], 100000);
    if (threads < 0 || iters < 0) {
        fputs(usage, stderr);
        return 2;
    }
    char err[512];
    int rc = 1;
    vc_model *m = NULL;
    vc_state *s = NULL;
    double *tc = malloc((size_t)iters * sizeof(double)), *te = malloc((size_t)iters * sizeof(double));
    vc_model_params mp = vc_model_default_params();
    mp.n_threads = threads;
    if (!tc || !te || vc_model_load(argv[2], mp, &m, err, sizeof(err)) || !(s = vc_state_create(m))) {
        fprintf(stderr, "vidcap-bench: %s\n", tc && te && !m ? err : "cannot set up the model");
        goto end;
    }
    vc_explain_params ep = vc_explain_default_params();
    if (vc_classify_file(s, argv[3], err, sizeof(err)) || vc_explain_file(s, argv[3], ep, err, sizeof(err))) {
        fprintf(stderr, "vidcap-bench: %s\n", err);
        goto end;
    }
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        vc_classify_file(s, argv[3], err, sizeof(err));
        double t1 = now_ms();
        vc_explain_file(s, argv[3], ep, err, sizeof(err));
        tc[i] = t1 - t0;
        te[i] = now_ms() - t1;
    }
    double c = median(tc, iters), e = median(te, iters);
    printf("{\"classify_ms\": %.3f, \"explain_ms\": %.3f, \"ratio\": %.2f, \"threads\": %d, \"iters\": %d}\n",
           c, e, e / c, threads, iters);
    rc = 0;
end:
    vc_state_free(s);
    vc_model_free(m);
    free(tc);
    free(te);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "explain") == 0) return bench_explain(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "impact") == 0) return bench_impact(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "nest") == 0) return bench_nest(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "sgemm") == 0) return bench_sgemm(argc, argv);
    fputs(usage, stderr);
    return 2;
}
