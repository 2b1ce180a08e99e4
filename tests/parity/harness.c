/* Parity harness (see harness.h): fixture lookup with shape checks and scale-relative comparison. */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

struct parity_file {
    st_file *st;
    char *used; /* per tensor index: looked at by the test */
};

parity_file *parity_open(const char *path)
{
    char err[512];
    parity_file *pf = calloc(1, sizeof *pf);
    if (!pf) goto fail;
    if (st_open(path, &pf->st, err, sizeof err) < 0) {
        fprintf(stderr, "parity: %s\n", err);
        goto fail;
    }
    pf->used = calloc((size_t)st_n_tensors(pf->st) + 1, 1);
    if (!pf->used) goto fail;
    return pf;
fail:
    if (!pf) fprintf(stderr, "parity: %s: out of memory\n", path);
    parity_close(pf);
    tu_failures++;
    return NULL;
}

void parity_close(parity_file *pf)
{
    if (!pf) return;
    st_close(pf->st);
    free(pf->used);
    free(pf);
}

static void mark_used(parity_file *pf, const st_tensor *t)
{
    for (int i = 0; i < st_n_tensors(pf->st); i++)
        if (st_tensor_at(pf->st, i) == t) pf->used[i] = 1;
}

const st_tensor *parity_find(parity_file *pf, const char *name)
{
    const st_tensor *t = st_find(pf->st, name);
    if (t) mark_used(pf, t);
    return t;
}

static void print_shape(FILE *f, int ndim, const int64_t *shape)
{
    fputc('[', f);
    for (int i = 0; i < ndim; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)shape[i]);
    fputc(']', f);
}

const float *parity_get(parity_file *pf, const char *name, int ndim, int64_t *shape)
{
    const st_tensor *t = parity_find(pf, name);
    if (!t) {
        fprintf(stderr, "%s: not in %s\n", name, st_path(pf->st));
        tu_failures++;
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (!ok) {
        fprintf(stderr, "%s: shape ", name);
        print_shape(stderr, t->ndim, t->shape);
        fprintf(stderr, ", want ");
        print_shape(stderr, ndim, shape);
        fprintf(stderr, " (-1 = any)\n");
        tu_failures++;
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        shape[i] = t->shape[i];
    return t->data;
}

const char *parity_meta_str(parity_file *pf, const char *key)
{
    const char *v = st_meta(pf->st, key);
    if (!v) {
        fprintf(stderr, "%s: metadata key %s missing\n", st_path(pf->st), key);
        tu_failures++;
    }
    return v;
}

int parity_meta_double(parity_file *pf, const char *key, double *out)
{
    const char *v = parity_meta_str(pf, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end) {
        fprintf(stderr, "%s: metadata %s = \"%s\" is not a number\n", st_path(pf->st), key, v);
        tu_failures++;
        return 0;
    }
    *out = d;
    return 1;
}

int parity_meta_int(parity_file *pf, const char *key, int64_t *out)
{
    const char *v = parity_meta_str(pf, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end) {
        fprintf(stderr, "%s: metadata %s = \"%s\" is not an integer\n", st_path(pf->st), key, v);
        tu_failures++;
        return 0;
    }
    *out = n;
    return 1;
}

int parity_compare(parity_file *pf, const char *name, const float *got, int64_t n, double tol)
{
    const st_tensor *t = parity_find(pf, name);
    if (!t || !got || t->numel != n) {
        fprintf(stderr, "%s: FAIL: ", name);
        if (!t)
            fprintf(stderr, "not in %s\n", st_path(pf->st));
        else if (!got)
            fprintf(stderr, "no result\n");
        else
            fprintf(stderr, "%lld values, want %lld\n", (long long)n, (long long)t->numel);
        tu_failures++;
        return 0;
    }
    double err = 0, scale = 0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - t->data[i]);
        if (!(d <= err)) { /* NaN counts as infinitely wrong */
            err = isnan(d) ? INFINITY : d;
            worst = i;
        }
        if (fabs(t->data[i]) > scale) scale = fabs(t->data[i]);
    }
    int ok = err <= tol * (scale > 0 ? scale : 1e-30);
    fprintf(stderr, "%s: max err %.3g scale %.3g %s", name, err, scale, ok ? "ok" : "FAIL");
    if (!ok)
        fprintf(stderr, " (tol %.1g, worst at %lld: got %.7g want %.7g)", tol, (long long)worst, got[worst],
                t->data[worst]);
    fputc('\n', stderr);
    if (!ok) tu_failures++;
    return ok;
}

int parity_check_all_used(parity_file *pf)
{
    int unused = 0;
    for (int i = 0; i < st_n_tensors(pf->st); i++)
        if (!pf->used[i]) {
            fprintf(stderr, "%s: %s was never checked\n", st_path(pf->st), st_tensor_at(pf->st, i)->name);
            unused++;
        }
    tu_failures += unused;
    return unused;
}
