/* safetensors: strict mmap reader for vidcap's weight files (rules in safetensors.h; the writer is in
 * safetensors_write.c).
 * Codes: VC_ERR_IO when the file cannot be opened, stat'ed, mapped or written (a directory included);
 * VC_ERR_UNSUPPORTED for a well-formed file vidcap cannot use; VC_ERR_FORMAT for every malformed one. */
#include "nn/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vidcap.h"

#define ST_MAX_HEADER 100000000ull
/* From 2^53 on, a double no longer names a single integer, so a larger JSON number cannot be trusted. */
#define ST_MAX_JSON_INT 9007199254740992.0

struct st_file {
    char *path;
    void *map;
    size_t map_len;
    cJSON *root; /* tensor names and metadata strings point into it */
    st_tensor *tensors;
    int n_tensors;
    const char **meta; /* key, value, key, value, ... sorted by key */
    int n_meta;
    float *owned; /* one block holding every widened or realigned tensor */
};

/* Zero-element tensors point here, so callers may memcpy(dst, t->data, 0) without passing NULL. */
static const float st_no_data[1];

#define st_fail(err, errlen, code, path, ...) nn_error(code, err, errlen, path, __VA_ARGS__)

/* ---- dtypes ---- */

typedef struct st_dtype_info {
    const char *name;
    int bits;
    int supported; /* F32, F16, BF16: the ones vidcap widens to F32 */
    st_dtype dtype;
} st_dtype_info;

/* Every dtype the reference parser knows: a valid file in another dtype is "unsupported", not "malformed". */
static const st_dtype_info st_dtypes[] = {
    {"F32", 32, 1, ST_F32},        {"F16", 16, 1, ST_F16},    {"BF16", 16, 1, ST_BF16},
    {"BOOL", 8, 0, ST_F32},        {"U8", 8, 0, ST_F32},      {"I8", 8, 0, ST_F32},
    {"I16", 16, 0, ST_F32},        {"U16", 16, 0, ST_F32},    {"I32", 32, 0, ST_F32},
    {"U32", 32, 0, ST_F32},        {"F64", 64, 0, ST_F32},    {"I64", 64, 0, ST_F32},
    {"U64", 64, 0, ST_F32},        {"C64", 64, 0, ST_F32},    {"F4", 4, 0, ST_F32},
    {"F6_E2M3", 6, 0, ST_F32},     {"F6_E3M2", 6, 0, ST_F32}, {"F8_E5M2", 8, 0, ST_F32},
    {"F8_E4M3", 8, 0, ST_F32},     {"F8_E8M0", 8, 0, ST_F32}, {"F8_E4M3FNUZ", 8, 0, ST_F32},
    {"F8_E5M2FNUZ", 8, 0, ST_F32},
};

static const st_dtype_info *st_dtype_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

int st_host_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static float st_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Exact: every F16 value, subnormals, infinities and NaN payloads included, is an F32 value. */
static float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    if (exp == 0x1F) return st_bits_f32(sign | 0x7F800000u | man << 13);
    if (exp) return st_bits_f32(sign | (exp + 112) << 23 | man << 13);
    if (!man) return st_bits_f32(sign);
    /* subnormal (man x 2^-24): shift until the leading 1 becomes F32's implicit bit */
    exp = 113;
    while (!(man & 0x400u)) {
        man <<= 1;
        exp--;
    }
    return st_bits_f32(sign | exp << 23 | (man & 0x3FFu) << 13);
}

static void st_widen(const unsigned char *src, st_dtype dtype, int64_t n, float *dst)
{
    if (dtype == ST_F32) {
        for (int64_t i = 0; i < n; i++, src += 4)
            dst[i] = st_bits_f32((uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
                                 (uint32_t)src[3] << 24);
    } else if (dtype == ST_F16) {
        for (int64_t i = 0; i < n; i++, src += 2)
            dst[i] = st_f16_to_f32((uint16_t)(src[0] | src[1] << 8));
    } else {
        for (int64_t i = 0; i < n; i++, src += 2)
            dst[i] = st_bits_f32((uint32_t)src[0] << 16 | (uint32_t)src[1] << 24);
    }
}

/* ---- header text ---- */

/* Length of the well-formed UTF-8 sequence at s (no overlongs, surrogates or code points past U+10FFFF),
 * or 0. */
static size_t st_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int st_utf8_valid(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = st_utf8_len((const unsigned char *)s + i, n - i))) return 0;
    return 1;
}

static int st_json_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What cJSON lets through but JSON forbids: invalid UTF-8, raw control bytes (cJSON treats any byte
 * <= 0x20 as whitespace and copies them inside strings), and \u0000, which cJSON silently cuts a C string
 * at. A small string-aware scan catches all three before parsing. */
static int st_check_text(const char *path, const unsigned char *h, size_t n, char *err, size_t errlen)
{
    int in_string = 0;
    for (size_t i = 0, k; i < n; i += k) {
        unsigned char c = h[i];
        if (!(k = st_utf8_len(h + i, n - i)))
            return st_fail(err, errlen, VC_ERR_FORMAT, path,
                           "header is not valid UTF-8 (byte 0x%02x at file offset %zu)", c, 8 + i);
        if (c < 0x20 && (in_string || !st_json_ws(c)))
            return st_fail(err, errlen, VC_ERR_FORMAT, path,
                           "header has a raw control byte 0x%02x at file offset %zu", c, 8 + i);
        if (c == '"') {
            in_string = !in_string;
        } else if (in_string && c == '\\' && i + 1 < n) {
            if (n - i >= 6 && memcmp(h + i + 1, "u0000", 5) == 0)
                return st_fail(err, errlen, VC_ERR_UNSUPPORTED, path,
                               "header has a \\u0000 escape at file offset %zu; vidcap names are C strings",
                               8 + i);
            /* skip the escaped byte so \" and \\ keep the state; cJSON rejects bad escapes */
            k = h[i + 1] >= 0x20 && h[i + 1] < 0x80 ? 2 : 1;
        }
    }
    return 0;
}

static int st_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* cJSON keeps duplicate keys and looks up the first, so a second "w" would be silently shadowed; the
 * reference parser rejects duplicates anywhere in the header. Returns 1 with *dup set, 0, or -1 (no memory).
 * *keys is scratch space reused down the tree. */
static int st_find_dup(const cJSON *node, const char **dup, const char ***keys, size_t *cap)
{
    if (cJSON_IsObject(node)) {
        size_t n = 0;
        for (const cJSON *c = node->child; c; c = c->next)
            n++;
        if (n > *cap) {
            const char **k = realloc(*keys, n * sizeof *k);
            if (!k) return -1;
            *keys = k;
            *cap = n;
        }
        n = 0;
        for (const cJSON *c = node->child; c; c = c->next)
            (*keys)[n++] = c->string;
        if (n > 1) qsort(*keys, n, sizeof **keys, st_cmp_str); /* *keys is still NULL for {} */
        for (size_t i = 1; i < n; i++) {
            if (strcmp((*keys)[i - 1], (*keys)[i]) == 0) {
                *dup = (*keys)[i];
                return 1;
            }
        }
    }
    if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
        for (const cJSON *c = node->child; c; c = c->next) {
            int r = st_find_dup(c, dup, keys, cap);
            if (r) return r;
        }
    }
    return 0;
}

/* JSON numbers arrive as doubles: accept only exact integers in [0, 2^53). */
static int st_json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d < ST_MAX_JSON_INT) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int st_bad_uint(const char *path, const char *name, const char *field, int i, const cJSON *v,
                       char *err, size_t errlen)
{
    if (!cJSON_IsNumber(v))
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "tensor \"%.64s\": %s[%d] is not a number", name,
                       field, i);
    return st_fail(err, errlen, VC_ERR_FORMAT, path,
                   "tensor \"%.64s\": %s[%d] is %.17g, not an integer in [0, 2^53)", name, field, i,
                   v->valuedouble);
}

/* "[2, 3, 4]" for messages; truncated to fit. */
static const char *st_shape_str(const cJSON *shape, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const cJSON *d = shape->child; d && used < len; d = d->next) {
        int w = snprintf(buf + used, len - used, "%s%.17g", used ? ", " : "[", d->valuedouble);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used < len) snprintf(buf + used, len - used, "%s", used ? "]" : "[]");
    return buf;
}

/* ---- reader ---- */

typedef struct st_span {
    uint64_t begin, end;
    int index; /* into f->tensors */
} st_span;

static int st_cmp_span(const void *a, const void *b)
{
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index - y->index;
}

static int st_cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

int st_cmp_meta(const void *a, const void *b)
{
    return strcmp(((const char *const *)a)[0], ((const char *const *)b)[0]);
}

/* Checks one tensor entry against its dtype, shape and data_offsets rules and fills t and span.
 * A well-formed entry vidcap cannot load sets *unsupported (the first one is reported once the whole
 * file has been validated, so a malformed file is never called merely unsupported). */
static int st_parse_entry(const char *path, const cJSON *e, st_tensor *t, st_span *span, char *unsupported,
                          size_t ulen, char *err, size_t errlen)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "tensor \"%.64s\": entry is not a JSON object",
                       name);
    /* case-sensitive: cJSON_GetObjectItem would also match "DTYPE" */
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offs ? "data_offsets" : NULL;
    if (missing)
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "tensor \"%.64s\": missing \"%s\"", name, missing);
    if (!cJSON_IsString(dtype))
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "tensor \"%.64s\": \"dtype\" is not a string", name);
    if (!cJSON_IsArray(shape))
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "tensor \"%.64s\": \"shape\" is not an array", name);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return st_fail(err, errlen, VC_ERR_FORMAT, path,
                       "tensor \"%.64s\": \"data_offsets\" is not a [begin, end] array", name);
    const st_dtype_info *dt = st_dtype_lookup(dtype->valuestring);
    if (!dt)
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "tensor \"%.64s\": unknown dtype \"%.32s\"", name,
                       dtype->valuestring);

    /* checked product, failing on overflow even if a later dim is 0, as the reference parser does */
    int ndim = 0;
    int64_t numel = 1;
    for (const cJSON *d = shape->child; d; d = d->next, ndim++) {
        uint64_t v;
        if (!st_json_uint(d, &v)) return st_bad_uint(path, name, "shape", ndim, d, err, errlen);
        if (v && (uint64_t)numel > (uint64_t)INT64_MAX / v)
            return st_fail(err, errlen, VC_ERR_FORMAT, path,
                           "tensor \"%.64s\": shape product overflows 64 bits", name);
        numel *= (int64_t)v;
        if (ndim < NN_MAX_DIMS) t->shape[ndim] = (int64_t)v;
    }
    uint64_t begin, end;
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetArrayItem(offs, i);
        if (!st_json_uint(v, i ? &end : &begin))
            return st_bad_uint(path, name, "data_offsets", i, v, err, errlen);
    }
    if (end < begin)
        return st_fail(err, errlen, VC_ERR_FORMAT, path,
                       "tensor \"%.64s\": data_offsets end %" PRIu64 " is before begin %" PRIu64, name, end,
                       begin);
    if ((uint64_t)numel > UINT64_MAX / (uint64_t)dt->bits)
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "tensor \"%.64s\": byte size overflows 64 bits",
                       name);
    uint64_t bits = (uint64_t)numel * (uint64_t)dt->bits;
    char shape_buf[160];
    if (bits % 8)
        return st_fail(err, errlen, VC_ERR_FORMAT, path,
                       "tensor \"%.64s\": shape %s of %s ends in a partial byte", name,
                       st_shape_str(shape, shape_buf, sizeof shape_buf), dt->name);
    if (end - begin != bits / 8)
        return st_fail(
            err, errlen, VC_ERR_FORMAT, path,
            "tensor \"%.64s\": data_offsets span %" PRIu64 " bytes but shape %s of %s needs %" PRIu64, name,
            end - begin, st_shape_str(shape, shape_buf, sizeof shape_buf), dt->name, bits / 8);

    if (!unsupported[0] && !dt->supported)
        snprintf(unsupported, ulen,
                 "tensor \"%.64s\": dtype %s is not supported (vidcap reads F32, F16 and BF16)", name,
                 dt->name);
    if (!unsupported[0] && ndim > NN_MAX_DIMS)
        snprintf(unsupported, ulen, "tensor \"%.64s\": %d dims, vidcap supports at most %d", name, ndim,
                 NN_MAX_DIMS);
    t->name = name;
    t->dtype = dt->dtype;
    t->ndim = ndim;
    t->numel = numel;
    span->begin = begin;
    span->end = end;
    return 0;
}

static int st_parse_meta(const char *path, st_file *f, const cJSON *meta, char *err, size_t errlen)
{
    if (!cJSON_IsObject(meta))
        return st_fail(err, errlen, VC_ERR_FORMAT, path, "\"__metadata__\" is not an object of strings");
    int n = cJSON_GetArraySize(meta);
    if (!n) return 0;
    /* keys and values side by side so one qsort keeps the pairs together */
    if (!(f->meta = malloc((size_t)n * 2 * sizeof *f->meta)))
        return st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory for %d metadata entries", n);
    int i = 0;
    for (const cJSON *c = meta->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c))
            return st_fail(err, errlen, VC_ERR_FORMAT, path,
                           "\"__metadata__\" value for \"%.64s\" is not a string", c->string);
        f->meta[2 * i] = c->string;
        f->meta[2 * i + 1] = c->valuestring;
    }
    qsort(f->meta, (size_t)n, 2 * sizeof *f->meta, st_cmp_meta);
    f->n_meta = n;
    return 0;
}

/* Points every tensor at its F32 data: in place when the mapping already holds aligned little-endian F32,
 * otherwise widened or copied into one owned block. */
static int st_load_data(const char *path, st_file *f, const unsigned char *data, const st_span *spans,
                        char *err, size_t errlen)
{
    int le = st_host_le();
    uint64_t owned = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        st_tensor *t = &f->tensors[spans[i].index];
        const unsigned char *src = data + spans[i].begin;
        t->data = NULL;
        if (t->numel == 0)
            t->data = st_no_data;
        else if (t->dtype == ST_F32 && le && (uintptr_t)src % sizeof(float) == 0)
            t->data = (const float *)(const void *)src;
        else
            owned += (uint64_t)t->numel; /* bounded by the file size, so the sum cannot overflow */
    }
    if (!owned) return 0;
    if (owned > SIZE_MAX / sizeof(float))
        return st_fail(err, errlen, VC_ERR_NOMEM, path, "%" PRIu64 " floats do not fit in memory", owned);
    f->owned = malloc((size_t)owned * sizeof(float));
    if (!f->owned)
        return st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory widening %" PRIu64 " values to F32",
                       owned);
    float *dst = f->owned;
    for (int i = 0; i < f->n_tensors; i++) {
        st_tensor *t = &f->tensors[spans[i].index];
        if (t->data) continue;
        st_widen(data + spans[i].begin, t->dtype, t->numel, dst);
        t->data = dst;
        dst += t->numel;
    }
    return 0;
}

int st_open(const char *path, st_file **out, char *err, size_t errlen)
{
    int rc = 0, fd = -1;
    st_file *f = NULL;
    char *json = NULL;
    st_span *spans = NULL;
    const char **keys = NULL;
    size_t keys_cap = 0;
    char unsupported[256] = "";

    if (err && errlen) err[0] = '\0';
    if (out) *out = NULL;
    if (!path || !out) return st_fail(err, errlen, VC_ERR_ARG, path, "st_open needs a path and an output");

    f = calloc(1, sizeof *f);
    if (!f || !(f->path = malloc(strlen(path) + 1))) {
        rc = st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory");
        goto end;
    }
    strcpy(f->path, path);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "cannot open: %s", strerror(errno));
        goto end;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "cannot stat: %s", strerror(errno));
        goto end;
    }
    if (S_ISDIR(sb.st_mode)) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "is a directory, not a safetensors file");
        goto end;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "is not a regular file");
        goto end;
    }
    if (sb.st_size < 8) {
        rc = sb.st_size == 0 ? st_fail(err, errlen, VC_ERR_FORMAT, path,
                                       "file is empty; a safetensors file starts with an "
                                       "8-byte header length")
                             : st_fail(err, errlen, VC_ERR_FORMAT, path,
                                       "file is %lld bytes, too short for the 8-byte header length",
                                       (long long)sb.st_size);
        goto end;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "file is too large to map");
        goto end;
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = st_fail(err, errlen, VC_ERR_IO, path, "cannot map: %s", strerror(errno));
        goto end;
    }
    f->map = map;
    f->map_len = size;

    const unsigned char *p = map;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)p[i] << (8 * i);
    if (n > ST_MAX_HEADER) {
        rc = st_fail(err, errlen, VC_ERR_FORMAT, path,
                     "header length %" PRIu64 " exceeds the %llu-byte limit", n, ST_MAX_HEADER);
        goto end;
    }
    if (n > size - 8) {
        rc = st_fail(err, errlen, VC_ERR_FORMAT, path,
                     "header length %" PRIu64 " runs past the end of the file (%zu bytes)", n, size);
        goto end;
    }
    const unsigned char *h = p + 8;
    if ((rc = st_check_text(path, h, (size_t)n, err, errlen))) goto end;
    size_t a = 0;
    while (a < n && st_json_ws(h[a]))
        a++;
    if (a == n) {
        rc = st_fail(err, errlen, VC_ERR_FORMAT, path, "header is not a JSON object: it is empty");
        goto end;
    }
    if (h[a] != '{') {
        rc = h[a] < 0x80 ? st_fail(err, errlen, VC_ERR_FORMAT, path,
                                   "header is not a JSON object: it starts with '%c'", h[a])
                         : st_fail(err, errlen, VC_ERR_FORMAT, path,
                                   "header is not a JSON object: it starts with byte 0x%02x", h[a]);
        goto end;
    }
    /* cJSON wants a NUL-terminated string; st_check_text has ruled out NUL bytes inside the header */
    size_t jlen = (size_t)n - a;
    if (!(json = malloc(jlen + 1))) {
        rc = st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory for a %zu-byte header", jlen);
        goto end;
    }
    memcpy(json, h + a, jlen);
    json[jlen] = '\0';
    const char *jend = NULL;
    f->root = cJSON_ParseWithOpts(json, &jend, 0);
    if (!f->root || !cJSON_IsObject(f->root)) {
        rc = st_fail(err, errlen, VC_ERR_FORMAT, path, "header is not valid JSON (near file offset %zu)",
                     8 + a + (jend ? (size_t)(jend - json) : 0));
        goto end;
    }
    for (const char *c = jend; *c; c++) {
        if (!st_json_ws((unsigned char)*c)) {
            rc = st_fail(err, errlen, VC_ERR_FORMAT, path,
                         "unexpected bytes after the JSON object at file offset %zu",
                         8 + a + (size_t)(c - json));
            goto end;
        }
    }
    const char *dup = NULL;
    int r = st_find_dup(f->root, &dup, &keys, &keys_cap);
    if (r < 0) {
        rc = st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory checking header keys");
        goto end;
    }
    if (r) {
        rc = st_fail(err, errlen, VC_ERR_FORMAT, path, "duplicate key \"%.64s\" in the header", dup);
        goto end;
    }

    int n_entries = cJSON_GetArraySize(f->root);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(f->root, "__metadata__");
    int nt = n_entries - (meta != NULL);
    f->tensors = calloc(nt ? (size_t)nt : 1, sizeof *f->tensors);
    spans = calloc(nt ? (size_t)nt : 1, sizeof *spans);
    if (!f->tensors || !spans) {
        rc = st_fail(err, errlen, VC_ERR_NOMEM, path, "out of memory for %d tensors", nt);
        goto end;
    }
    if (meta && (rc = st_parse_meta(path, f, meta, err, errlen))) goto end;
    for (const cJSON *e = f->root->child; e; e = e->next) {
        if (e == meta) continue;
        int i = f->n_tensors;
        rc = st_parse_entry(path, e, &f->tensors[i], &spans[i], unsupported, sizeof unsupported, err, errlen);
        if (rc) goto end;
        spans[i].index = i;
        f->n_tensors++;
    }

    /* Sorted by offset, tensors must tile the buffer exactly: no holes a polyglot file could hide data in,
     * no overlaps. */
    qsort(spans, (size_t)f->n_tensors, sizeof *spans, st_cmp_span);
    uint64_t pos = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[spans[i].index].name;
        if (spans[i].begin != pos) {
            if (i == 0)
                rc = st_fail(err, errlen, VC_ERR_FORMAT, path,
                             "tensor \"%.64s\": data starts at %" PRIu64 ", expected 0 (first tensor)", name,
                             spans[i].begin);
            else
                rc = st_fail(err, errlen, VC_ERR_FORMAT, path,
                             "tensor \"%.64s\": data starts at %" PRIu64
                             " but the previous tensor ends at %" PRIu64 " (%s)",
                             name, spans[i].begin, pos, spans[i].begin > pos ? "hole" : "overlap");
            goto end;
        }
        pos = spans[i].end;
    }
    uint64_t data_len = size - 8 - n;
    if (pos > data_len) {
        rc = st_fail(err, errlen, VC_ERR_FORMAT, path,
                     "file is truncated: tensors need %" PRIu64 " data bytes but %" PRIu64
                     " follow the header",
                     pos, data_len);
        goto end;
    }
    if (pos < data_len) {
        rc = st_fail(err, errlen, VC_ERR_FORMAT, path,
                     "%" PRIu64 " trailing bytes after the last tensor's data", data_len - pos);
        goto end;
    }
    if (unsupported[0]) {
        rc = st_fail(err, errlen, VC_ERR_UNSUPPORTED, path, "%s", unsupported);
        goto end;
    }

    if ((rc = st_load_data(path, f, h + n, spans, err, errlen))) goto end;
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, st_cmp_tensor);
    *out = f;
    f = NULL;
end:
    if (fd >= 0) close(fd); /* the mapping stays valid without the descriptor */
    free(json);
    free(spans);
    free(keys);
    st_close(f);
    return rc;
}

void st_close(st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    cJSON_Delete(f->root);
    free(f->tensors);
    free(f->meta);
    free(f->owned);
    free(f->path);
    free(f);
}

const char *st_path(const st_file *f)
{
    return f ? f->path : NULL;
}

int st_n_tensors(const st_file *f)
{
    return f ? f->n_tensors : 0;
}

const st_tensor *st_tensor_at(const st_file *f, int i)
{
    return f && i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(name, f->tensors[mid].name);
        if (!c) return &f->tensors[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int st_n_meta(const st_file *f)
{
    return f ? f->n_meta : 0;
}

const char *st_meta_key(const st_file *f, int i)
{
    return f && i >= 0 && i < f->n_meta ? f->meta[2 * i] : NULL;
}

const char *st_meta_value(const st_file *f, int i)
{
    return f && i >= 0 && i < f->n_meta ? f->meta[2 * i + 1] : NULL;
}

const char *st_meta(const st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    int lo = 0, hi = f->n_meta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(key, f->meta[2 * mid]);
        if (!c) return f->meta[2 * mid + 1];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const st_tensor *st_expect(const st_file *f, const char *name, int ndim, const int64_t *want, char *why,
                           size_t whylen)
{
    const st_tensor *t = st_find(f, name);
    if (!t) {
        snprintf(why, whylen, "missing tensor %s", name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == want[i];
    if (!ok) {
        char got[128] = "", exp[128] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp), "%s%lld", i ? "," : "",
                     (long long)want[i]);
        snprintf(why, whylen, "tensor %s has shape [%s], the config needs [%s]", name, got, exp);
        return NULL;
    }
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(t->data[i])) {
            snprintf(why, whylen, "tensor %s holds a non-finite value at %lld", name, (long long)i);
            return NULL;
        }
    return t;
}
