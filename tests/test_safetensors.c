/* Tests for nn/safetensors.c: writer -> reader round trip, exact F16/BF16 widening, edge files that must
 * load, and the malformed corpus (every file in assets/safetensors/bad fails as bad/EXPECTED says).
 * Usage: test_safetensors ASSETS_DIR (tests/assets/safetensors). */
#include "nn/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "vidcap.h"

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void join(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(2);
    }
}

/* A failed call must leave a single line that starts with "path: ". */
static void check_message(const char *err, const char *path, const char *want, const char *what)
{
    size_t n = strlen(path);
    TU_CHECK(strncmp(err, path, n) == 0 && strncmp(err + n, ": ", 2) == 0,
             "%s: message \"%s\" does not start "
             "with the path",
             what, err);
    TU_CHECK(strchr(err, '\n') == NULL, "%s: message has a newline: \"%s\"", what, err);
    if (want) TU_CHECK(strstr(err, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, want);
}

/* Number of files in dir whose name contains part. */
static int count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

/* ---- writer -> reader ---- */

typedef struct case_tensor {
    const char *name;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
} case_tensor;

static void test_roundtrip(const char *dir)
{
    /* added out of order on purpose: the file and st_tensor_at must come back sorted by name */
    const case_tensor cases[] = {
        {"blocks.0.weight", 2, {3, 4}},
        {"blocks.0.bias", 1, {4}},
        {"scalar", 0, {0}},
        {"empty", 2, {0, 5}},
        {"zero_mid", 3, {2, 0, 3}},
        {"eight_dims", 8, {1, 2, 1, 2, 1, 1, 2, 1}},
        {"specials", 1, {6}},
        {"\xc3\xbcnic\xc3\xb6"
         "de/\xc3\x9f",
         1,
         {2}},
        {"we\"ird\nname\\", 1, {1}},
    };
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    const char *meta[][2] = {{"vidcap.arch", "nest"},
                             {"format", "pt"},
                             {"empty", ""},
                             {"unicode", "h\xc3\xa9llo \xe2\x9c\x93"},
                             {"quote\"key", "line\nbreak"}};
    const int n_meta = (int)(sizeof meta / sizeof meta[0]);
    float *data[sizeof cases / sizeof cases[0]] = {0};
    char path[1024], err[512];
    join(path, sizeof path, dir, "roundtrip.safetensors");

    tu_seed(7);
    st_writer *w = st_writer_create();
    TU_CHECK(w != NULL, "st_writer_create");
    if (!w) return;
    for (int i = 0; i < n_cases; i++) {
        int64_t numel = 1;
        for (int d = 0; d < cases[i].ndim; d++)
            numel *= cases[i].shape[d];
        data[i] = malloc((size_t)(numel ? numel : 1) * sizeof(float));
        tu_fill(data[i], numel, -3.f, 3.f);
        if (strcmp(cases[i].name, "specials") == 0) {
            const float s[6] = {NAN, INFINITY, -INFINITY, -0.0f, 1e-45f, 3.4028235e38f};
            memcpy(data[i], s, sizeof s);
        }
        /* a zero-size tensor may come with no data at all */
        const float *src = strcmp(cases[i].name, "empty") == 0 ? NULL : data[i];
        int rc = st_writer_add(w, cases[i].name, cases[i].ndim, cases[i].shape, src);
        TU_CHECK(rc == 0, "st_writer_add %s: %d", cases[i].name, rc);
    }
    for (int i = 0; i < n_meta; i++)
        TU_CHECK(st_writer_meta(w, meta[i][0], meta[i][1]) == 0, "meta %s", meta[i][0]);

    /* rejected additions must leave the writer usable */
    const int64_t shape9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-1}, two[1] = {2};
    const float two_vals[2] = {1, 2};
    TU_CHECK(st_writer_add(w, "scalar", 0, NULL, two_vals) == VC_ERR_ARG, "duplicate name accepted");
    TU_CHECK(st_writer_add(w, "__metadata__", 1, two, two_vals) == VC_ERR_ARG, "reserved name accepted");
    TU_CHECK(st_writer_add(w, "nine", 9, shape9, two_vals) == VC_ERR_ARG, "9 dims accepted");
    TU_CHECK(st_writer_add(w, "neg", 1, neg, two_vals) == VC_ERR_ARG, "negative dim accepted");
    TU_CHECK(st_writer_add(w, "nodata", 1, two, NULL) == VC_ERR_ARG, "NULL data for 2 elements accepted");
    TU_CHECK(st_writer_add(w, "bad\xff", 1, two, two_vals) == VC_ERR_ARG, "non-UTF-8 name accepted");
    TU_CHECK(st_writer_meta(w, "format", "again") == VC_ERR_ARG, "duplicate metadata key accepted");
    TU_CHECK(st_writer_meta(w, "k", "\xc0\xaf") == VC_ERR_ARG, "non-UTF-8 metadata accepted");

    int rc = st_writer_save(w, path, err, sizeof err);
    TU_CHECK(rc == 0, "save: %d %s", rc, err);
    /* saving again replaces the file through rename */
    rc = st_writer_save(w, path, err, sizeof err);
    TU_CHECK(rc == 0, "second save: %d %s", rc, err);
    TU_CHECK(count_files(dir, ".tmp.") == 0, "a temp file was left in %s", dir);

    /* the bytes: '{' first, header padded with spaces to a multiple of 8, F32 data filling the rest */
    FILE *fp = fopen(path, "rb");
    unsigned char head[9] = {0};
    struct stat sb;
    TU_CHECK(fp && fread(head, 1, 9, fp) == 9, "read back %s", path);
    if (fp) fclose(fp);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)head[i] << (8 * i);
    TU_CHECK(head[8] == '{', "header starts with 0x%02x", head[8]);
    TU_CHECK(hlen % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)hlen);
    int64_t total = 0;
    for (int i = 0; i < n_cases; i++) {
        int64_t numel = 1;
        for (int d = 0; d < cases[i].ndim; d++)
            numel *= cases[i].shape[d];
        total += numel * 4;
    }
    TU_CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size == 8 + hlen + (uint64_t)total,
             "file size %lld, want %llu", (long long)sb.st_size,
             (unsigned long long)(8 + hlen + (uint64_t)total));
    TU_CHECK((sb.st_mode & 0777) == 0644, "file mode %o", (unsigned)(sb.st_mode & 0777));

    st_file *f = NULL;
    rc = st_open(path, &f, err, sizeof err);
    TU_CHECK(rc == 0 && f, "open: %d %s", rc, err);
    if (f) {
        TU_CHECK(strcmp(st_path(f), path) == 0, "st_path");
        TU_CHECK(st_n_tensors(f) == n_cases, "%d tensors", st_n_tensors(f));
        for (int i = 1; i < st_n_tensors(f); i++)
            TU_CHECK(strcmp(st_tensor_at(f, i - 1)->name, st_tensor_at(f, i)->name) < 0, "not sorted at %d",
                     i);
        TU_CHECK(st_tensor_at(f, -1) == NULL && st_tensor_at(f, n_cases) == NULL, "out-of-range index");
        TU_CHECK(st_find(f, "absent") == NULL && st_find(f, "") == NULL, "st_find of an absent name");
        for (int i = 0; i < n_cases; i++) {
            const st_tensor *t = st_find(f, cases[i].name);
            TU_CHECK(t != NULL, "st_find %s", cases[i].name);
            if (!t) continue;
            int64_t numel = 1;
            for (int d = 0; d < cases[i].ndim; d++)
                numel *= cases[i].shape[d];
            TU_CHECK(t->dtype == ST_F32 && t->ndim == cases[i].ndim && t->numel == numel,
                     "%s: dtype %d ndim %d "
                     "numel %lld",
                     cases[i].name, t->dtype, t->ndim, (long long)t->numel);
            TU_CHECK(memcmp(t->shape, cases[i].shape, (size_t)t->ndim * sizeof(int64_t)) == 0, "%s: shape",
                     cases[i].name);
            TU_CHECK(t->data != NULL, "%s: data is NULL", cases[i].name);
            /* bitwise, so NaN, -0 and subnormals must survive unchanged */
            if (t->data && numel)
                TU_CHECK(memcmp(t->data, data[i], (size_t)numel * sizeof(float)) == 0, "%s: data differs",
                         cases[i].name);
        }
        TU_CHECK(st_n_meta(f) == n_meta, "%d metadata entries", st_n_meta(f));
        for (int i = 1; i < st_n_meta(f); i++)
            TU_CHECK(strcmp(st_meta_key(f, i - 1), st_meta_key(f, i)) < 0, "metadata not sorted at %d", i);
        for (int i = 0; i < n_meta; i++) {
            const char *v = st_meta(f, meta[i][0]);
            TU_CHECK(v && strcmp(v, meta[i][1]) == 0, "metadata %s = %s", meta[i][0], v ? v : "(absent)");
        }
        for (int i = 0; i < st_n_meta(f); i++)
            TU_CHECK(strcmp(st_meta(f, st_meta_key(f, i)), st_meta_value(f, i)) == 0, "st_meta_value %d", i);
        TU_CHECK(st_meta(f, "absent") == NULL && st_meta_key(f, n_meta) == NULL, "absent metadata");
    }
    st_close(f);

    /* failures: the target is left alone and no temp file remains */
    char sub[1024];
    join(sub, sizeof sub, dir, "is_a_dir");
    TU_CHECK(mkdir(sub, 0755) == 0, "mkdir %s", sub);
    rc = st_writer_save(w, sub, err, sizeof err);
    TU_CHECK(rc == VC_ERR_IO, "save onto a directory: %d", rc);
    check_message(err, sub, "cannot rename", "save onto a directory");
    TU_CHECK(count_files(dir, ".tmp.") == 0, "a failed save left a temp file in %s", dir);
    rmdir(sub);
    const char *nodir = "/nonexistent-vidcap-dir/x.safetensors";
    rc = st_writer_save(w, nodir, err, sizeof err);
    TU_CHECK(rc == VC_ERR_IO, "save into a missing directory: %d", rc);
    check_message(err, nodir, "cannot create", "save into a missing directory");

    /* an empty writer makes a valid empty file */
    st_writer *empty = st_writer_create();
    char epath[1024];
    join(epath, sizeof epath, dir, "empty.safetensors");
    TU_CHECK(st_writer_save(empty, epath, err, sizeof err) == 0, "save empty: %s", err);
    rc = st_open(epath, &f, err, sizeof err);
    TU_CHECK(rc == 0 && st_n_tensors(f) == 0 && st_n_meta(f) == 0, "open empty: %d %s", rc, err);
    st_close(f);
    st_writer_free(empty);

    st_writer_free(w);
    for (int i = 0; i < n_cases; i++)
        free(data[i]);
    unlink(path);
    unlink(epath);
}

/* ---- good edge files ---- */

static st_file *open_good(const char *assets, const char *name)
{
    char path[1024], err[512];
    st_file *f = NULL;
    char dir[1024];
    join(dir, sizeof dir, assets, "good");
    join(path, sizeof path, dir, name);
    int rc = st_open(path, &f, err, sizeof err);
    TU_CHECK(rc == 0 && f, "%s: %d %s", name, rc, err);
    return f;
}

static void test_widening(const char *assets)
{
    /* F16 bits -> exact F32 bits: signed zeros, normal limits, subnormals, infinities, NaN payloads */
    static const uint32_t f16_want[16] = {0x00000000,
                                          0x80000000,
                                          0x3F800000,
                                          0xC0000000,
                                          0x477FE000 /* 65504 */,
                                          0x38800000 /* 2^-14 */,
                                          0x33800000 /* 2^-24 */,
                                          0x387FC000 /* largest subnormal */,
                                          0xB3800000,
                                          0x38000000 /* 2^-15 */,
                                          0x7F800000,
                                          0xFF800000,
                                          0x7FC00000,
                                          0x7F802000 /* signalling NaN, payload kept */,
                                          0xFFC00000,
                                          0x3EAAA000 /* 0.333251953125 */};
    static const uint32_t bf16_want[9] = {0x3F800000, 0x00010000, 0x7F800000, 0xFF800000, 0x7FC10000,
                                          0x80000000, 0x40490000, 0x7F7F0000, 0x00000000};
    st_file *f = open_good(assets, "widening.safetensors");
    if (!f) return;
    const st_tensor *a = st_find(f, "a"), *h = st_find(f, "h"), *b = st_find(f, "b"), *g = st_find(f, "f");
    TU_CHECK(a && h && b && g, "widening: tensors missing");
    if (a && h && b && g) {
        TU_CHECK(a->dtype == ST_F32 && a->data[0] == 0.5f && a->data[1] == -1.5f, "a");
        TU_CHECK(h->dtype == ST_F16 && h->ndim == 2 && h->shape[0] == 4 && h->shape[1] == 4 && h->numel == 16,
                 "h: dtype %d shape", h->dtype);
        for (int i = 0; i < 16; i++)
            TU_CHECK(bits_of(h->data[i]) == f16_want[i], "F16 #%d: 0x%08x, want 0x%08x", i,
                     (unsigned)bits_of(h->data[i]), (unsigned)f16_want[i]);
        TU_CHECK(b->dtype == ST_BF16 && b->numel == 9, "b: dtype %d", b->dtype);
        for (int i = 0; i < 9; i++)
            TU_CHECK(bits_of(b->data[i]) == bf16_want[i], "BF16 #%d: 0x%08x, want 0x%08x", i,
                     (unsigned)bits_of(b->data[i]), (unsigned)bf16_want[i]);
        /* stored at a data offset that is not 4-aligned: must be copied (UBSan flags a misaligned read) */
        TU_CHECK((uintptr_t)g->data % sizeof(float) == 0, "f: misaligned data pointer");
        TU_CHECK(g->data[0] == 3.0f && bits_of(g->data[1]) == 0x80000000 && bits_of(g->data[2]) == 1,
                 "f values");
        const char *note = st_meta(f, "note");
        TU_CHECK(note && strcmp(note, "widening") == 0, "metadata note");
    }
    st_close(f);
}

static void test_good_files(const char *assets)
{
    st_file *f = open_good(assets, "whitespace_padded.safetensors");
    const st_tensor *t = f ? st_find(f, "w") : NULL;
    TU_CHECK(t && t->numel == 2 && t->data[0] == 1.0f && t->data[1] == 2.0f, "whitespace_padded: w");
    st_close(f);

    f = open_good(assets, "zero_size_and_scalar.safetensors");
    if (f) {
        TU_CHECK(st_n_tensors(f) == 4, "%d tensors", st_n_tensors(f));
        const st_tensor *e = st_find(f, "empty"), *s = st_find(f, "s"), *w = st_find(f, "w"),
                        *z = st_find(f, "z_end");
        TU_CHECK(e && e->numel == 0 && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3 && e->data,
                 "empty tensor");
        TU_CHECK(s && s->ndim == 0 && s->numel == 1 && s->data[0] == 7.0f, "scalar");
        TU_CHECK(w && w->numel == 2 && w->data[0] == 1.0f && w->data[1] == 2.0f, "w");
        TU_CHECK(z && z->numel == 0 && z->ndim == 2, "zero-size tensor at the end of the data");
        /* stored unsorted: zeta, alpha, mu */
        TU_CHECK(st_n_meta(f) == 3 && strcmp(st_meta_key(f, 0), "alpha") == 0 &&
                     strcmp(st_meta_value(f, 0), "2") == 0 && strcmp(st_meta_key(f, 2), "zeta") == 0,
                 "metadata order");
        TU_CHECK(st_meta(f, "mu") && !st_meta(f, "mu")[0] && st_meta(f, "zeta") && !st_meta(f, "z"),
                 "metadata lookup");
    }
    st_close(f);

    f = open_good(assets, "escapes_pretty_printed.safetensors");
    const char *q = f ? st_meta(f, "q") : NULL;
    TU_CHECK(f && st_find(f, "a\"b\\") && st_find(f, "x\\u0000"), "escaped names");
    TU_CHECK(q && strcmp(q, "say \"hi\"\n\ttab\\") == 0, "escaped metadata: %s", q ? q : "(absent)");
    st_close(f);

    f = open_good(assets, "only_zero_size.safetensors");
    TU_CHECK(f && st_n_tensors(f) == 1 && st_tensor_at(f, 0)->numel == 0, "only_zero_size");
    st_close(f);
    f = open_good(assets, "no_tensors.safetensors");
    TU_CHECK(f && st_n_tensors(f) == 0 && st_meta(f, "k") && strcmp(st_meta(f, "k"), "v") == 0, "no_tensors");
    st_close(f);

    /* every file in good/ loads, including ones added later */
    char dir[1024];
    join(dir, sizeof dir, assets, "good");
    int n = count_files(dir, ".safetensors");
    TU_CHECK(n >= 5, "good/ holds %d files", n);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strstr(e->d_name, ".safetensors")) continue;
        st_close(open_good(assets, e->d_name));
    }
    if (d) closedir(d);
}

/* ---- bad files ---- */

static int code_of(const char *s)
{
    if (!s || !*s || strcmp(s, "FORMAT") == 0) return VC_ERR_FORMAT;
    if (strcmp(s, "IO") == 0) return VC_ERR_IO;
    if (strcmp(s, "UNSUPPORTED") == 0) return VC_ERR_UNSUPPORTED;
    return 1; /* never returned by st_open, so the case fails loudly */
}

static void test_bad_corpus(const char *assets)
{
    char dir[1024], table[1024], line[1024];
    join(dir, sizeof dir, assets, "bad");
    join(table, sizeof table, dir, "EXPECTED");
    FILE *fp = fopen(table, "r");
    TU_CHECK(fp != NULL, "cannot open %s: %s", table, strerror(errno));
    if (!fp) return;
    /* a live file as the "not yet written" value, to see that a failed st_open sets *out to NULL */
    char good[1024], err0[512];
    st_file *sentinel = NULL;
    join(good, sizeof good, assets, "good/only_zero_size.safetensors");
    TU_CHECK(st_open(good, &sentinel, err0, sizeof err0) == 0, "%s", err0);
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        char *name = line, *want = strchr(line, '\t'), *code = NULL;
        TU_CHECK(want != NULL, "EXPECTED line without a tab: %s", line);
        if (!want) continue;
        *want++ = '\0';
        if ((code = strchr(want, '\t'))) *code++ = '\0';

        char path[1024], err[512] = "";
        join(path, sizeof path, dir, name);
        st_file *f = sentinel;
        int rc = st_open(path, &f, err, sizeof err);
        TU_CHECK(rc == code_of(code), "%s: returned %d, want %s (%d); message: %s", name, rc,
                 code ? code : "FORMAT", code_of(code), err);
        TU_CHECK(f == NULL, "%s: *out not NULL after failure", name);
        if (rc == 0) st_close(f);
        check_message(err, path, want, name);
        n++;
    }
    fclose(fp);
    st_close(sentinel);
    /* every file in bad/ has a line, so a new case cannot be forgotten */
    int files = count_files(dir, ".safetensors");
    TU_CHECK(files == n, "bad/ holds %d .safetensors files but EXPECTED lists %d", files, n);
    TU_CHECK(n >= 18, "only %d bad cases", n);
    printf("bad corpus: %d files rejected as expected\n", n);
}

static void test_open_errors(const char *assets)
{
    char err[512];
    st_file *f = NULL;
    const char *missing = "/nonexistent-vidcap-dir/x.safetensors";
    TU_CHECK(st_open(missing, &f, err, sizeof err) == VC_ERR_IO && !f, "missing file");
    check_message(err, missing, "cannot open", "missing file");
    TU_CHECK(st_open(assets, &f, err, sizeof err) == VC_ERR_IO && !f, "directory");
    check_message(err, assets, "is a directory", "directory");

    /* a short buffer is truncated, never overrun; a NULL buffer is allowed */
    char small[12];
    memset(small, 'x', sizeof small);
    TU_CHECK(st_open(assets, &f, small, 8) == VC_ERR_IO && small[7] == '\0' && small[8] == 'x',
             "short buffer");
    TU_CHECK(st_open(assets, &f, NULL, 0) == VC_ERR_IO, "NULL error buffer");
    st_close(NULL);
    st_writer_free(NULL);
    TU_CHECK(st_n_tensors(NULL) == 0 && st_find(NULL, "x") == NULL && st_meta(NULL, "x") == NULL,
             "NULL file");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/assets/safetensors\n", argv[0]);
        return 2;
    }
    const char *assets = argv[1];
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/vidcap-st-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    test_roundtrip(dir);
    test_widening(assets);
    test_good_files(assets);
    test_bad_corpus(assets);
    test_open_errors(assets);
    if (rmdir(dir) != 0) TU_CHECK(0, "temp dir %s not empty: %s", dir, strerror(errno));
    return tu_finish("test_safetensors");
}
