/* safetensors writer: collects tensors and metadata, writes '{' first, the header padded with spaces to a
 * multiple of 8, tensors sorted by name and tiled without holes, to a temporary file renamed into place. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/safetensors.h"
#include "vidcap.h"

#define ST_MAX_HEADER 100000000ull
#define st_fail(err, errlen, code, path, ...) nn_error(code, err, errlen, path, __VA_ARGS__)

typedef struct st_wtensor {
    char *name;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
    int64_t numel;
    const float *data; /* NULL when numel is 0 */
    float *owned;      /* data when the writer copied it, else NULL (borrowed) */
} st_wtensor;

struct st_writer {
    st_wtensor *t;
    int n, cap;
    char **meta; /* key, value, key, value, ... */
    int n_meta, cap_meta;
};

static char *st_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

st_writer *st_writer_create(void)
{
    return calloc(1, sizeof(st_writer));
}

void st_writer_free(st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].owned);
    }
    for (int i = 0; i < 2 * w->n_meta; i++)
        free(w->meta[i]);
    free(w->t);
    free(w->meta);
    free(w);
}

static int writer_add(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data,
                      int copy)
{
    if (!w || !name || ndim < 0 || ndim > NN_MAX_DIMS || (ndim && !shape)) return VC_ERR_ARG;
    if (!st_utf8_valid(name) || strcmp(name, "__metadata__") == 0) return VC_ERR_ARG;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return VC_ERR_ARG;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > INT64_MAX / shape[i])) return VC_ERR_ARG;
        numel *= shape[i];
    }
    if ((uint64_t)numel > SIZE_MAX / sizeof(float) || (uint64_t)numel > (uint64_t)INT64_MAX / sizeof(float))
        return VC_ERR_ARG;
    if (numel && !data) return VC_ERR_ARG;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return VC_ERR_NOMEM;
        w->t = t;
        w->cap = cap;
    }
    st_wtensor t = {.ndim = ndim, .numel = numel};
    if (ndim) memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    t.name = st_strdup(name);
    t.owned = numel && copy ? malloc((size_t)numel * sizeof(float)) : NULL;
    if (!t.name || (numel && copy && !t.owned)) {
        free(t.name);
        free(t.owned);
        return VC_ERR_NOMEM;
    }
    if (t.owned) memcpy(t.owned, data, (size_t)numel * sizeof(float));
    t.data = numel ? (t.owned ? t.owned : data) : NULL;
    w->t[w->n++] = t;
    return 0;
}

/* Returns VC_ERR_ARG for a name the reader would refuse (not UTF-8, reserved, already added). */
int st_writer_add(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data)
{
    return writer_add(w, name, ndim, shape, data, 1);
}

int st_writer_add_borrowed(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data)
{
    return writer_add(w, name, ndim, shape, data, 0);
}

int st_writer_meta(st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value || !st_utf8_valid(key) || !st_utf8_valid(value)) return VC_ERR_ARG;
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[2 * i], key) == 0) return VC_ERR_ARG;
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **m = realloc(w->meta, (size_t)cap * 2 * sizeof *m);
        if (!m) return VC_ERR_NOMEM;
        w->meta = m;
        w->cap_meta = cap;
    }
    char *k = st_strdup(key), *v = st_strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return VC_ERR_NOMEM;
    }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return 0;
}

static int st_cmp_wtensor(const void *a, const void *b)
{
    return strcmp((*(const st_wtensor *const *)a)->name, (*(const st_wtensor *const *)b)->name);
}

/* cJSON prints doubles with %.15g and would write 1e+15; raw text keeps offsets plain integers. */
static cJSON *st_json_int(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

/* The JSON header, '{' first and padded with spaces to a multiple of 8 so the data starts 8-aligned.
 * Tensors are laid out in the order given. */
static char *st_build_header(const st_writer *w, st_wtensor *const *order, size_t *len)
{
    char *text = NULL, *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) goto end;
    if (w->n_meta) {
        char **kv = malloc((size_t)w->n_meta * 2 * sizeof *kv);
        if (!kv) goto end;
        memcpy(kv, w->meta, (size_t)w->n_meta * 2 * sizeof *kv);
        qsort(kv, (size_t)w->n_meta, 2 * sizeof *kv, st_cmp_meta);
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        int ok = meta != NULL;
        for (int i = 0; ok && i < w->n_meta; i++)
            ok = cJSON_AddStringToObject(meta, kv[2 * i], kv[2 * i + 1]) != NULL;
        free(kv);
        if (!ok) goto end;
    }
    uint64_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        const st_wtensor *t = order[i];
        cJSON *e = cJSON_AddObjectToObject(root, t->name), *shape = NULL, *offs = NULL;
        if (!e || !cJSON_AddStringToObject(e, "dtype", "F32") ||
            !(shape = cJSON_AddArrayToObject(e, "shape")) ||
            !(offs = cJSON_AddArrayToObject(e, "data_offsets")))
            goto end;
        for (int d = 0; d < t->ndim; d++) {
            cJSON *v = st_json_int((uint64_t)t->shape[d]);
            if (!v || !cJSON_AddItemToArray(shape, v)) {
                cJSON_Delete(v);
                goto end;
            }
        }
        uint64_t bytes = (uint64_t)t->numel * sizeof(float);
        cJSON *b = st_json_int(offset), *en = st_json_int(offset + bytes);
        int ok = b && en && cJSON_AddItemToArray(offs, b);
        if (!ok) cJSON_Delete(b);
        ok = ok && cJSON_AddItemToArray(offs, en);
        if (!ok) {
            cJSON_Delete(en);
            goto end;
        }
        offset += bytes;
    }
    if (!(text = cJSON_PrintUnformatted(root))) goto end;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    if (!(out = malloc(padded + 1))) goto end;
    memcpy(out, text, n);
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *len = padded;
end:
    free(text);
    cJSON_Delete(root);
    return out;
}

static int st_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO; /* write() made no progress without saying why */
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static int st_write_f32(int fd, const float *x, int64_t n)
{
    if (st_host_le()) return st_write_all(fd, x, (size_t)n * sizeof *x);
    unsigned char buf[4096];
    for (int64_t i = 0; i < n;) {
        size_t k = 0;
        for (; k + 4 <= sizeof buf && i < n; i++, k += 4) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            for (int b = 0; b < 4; b++)
                buf[k + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        if (st_write_all(fd, buf, k)) return -1;
    }
    return 0;
}

int st_writer_save(const st_writer *w, const char *path, char *err, size_t errlen)
{
    int rc = 0, fd = -1;
    st_wtensor **order = NULL;
    char *header = NULL, *tmp = NULL;
    size_t hlen = 0;

    if (err && errlen) err[0] = '\0';
    if (!w || !path)
        return st_fail(err, errlen, VC_ERR_ARG, path, "st_writer_save needs a writer and a path");
    order = malloc((w->n ? (size_t)w->n : 1) * sizeof *order);
    if (!order) {
        rc = st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory");
        goto end;
    }
    for (int i = 0; i < w->n; i++)
        order[i] = &w->t[i];
    qsort(order, (size_t)w->n, sizeof *order, st_cmp_wtensor);
    if (!(header = st_build_header(w, order, &hlen))) {
        rc = st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory building the header");
        goto end;
    }
    if (hlen > ST_MAX_HEADER) {
        rc = st_fail(err, errlen, VC_ERR_ARG, path, "header would be %zu bytes, over the %llu-byte limit",
                     hlen, ST_MAX_HEADER);
        goto end;
    }

    /* Write beside the target and rename over it, so readers never see a partial file. */
    static const char suffix[] = ".tmp.XXXXXX";
    if (!(tmp = malloc(strlen(path) + sizeof suffix))) {
        rc = st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory");
        goto end;
    }
    strcpy(tmp, path);
    strcat(tmp, suffix);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto end;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = st_write_all(fd, len8, sizeof len8) || st_write_all(fd, header, hlen);
    for (int i = 0; !bad && i < w->n; i++)
        bad = st_write_f32(fd, order[i]->data, order[i]->numel);
    /* mkstemp creates 0600; weights are meant to be shared like any other output file */
    bad = bad || fchmod(fd, 0644) != 0 || fsync(fd) != 0;
    if (bad) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "cannot write %s: %s", tmp, strerror(errno));
        goto end;
    }
    int cerr = close(fd);
    fd = -1;
    if (cerr != 0) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "cannot write %s: %s", tmp, strerror(errno));
        goto end;
    }
    if (rename(tmp, path) != 0) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "cannot rename %s into place: %s", tmp, strerror(errno));
        goto end;
    }
    free(tmp);
    tmp = NULL;
end:
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
    free(tmp);
    free(header);
    free(order);
    return rc;
}
