/* Caption output: timestamps, the stdout/txt/SRT/WebVTT/ActivityNet JSON writers, files written to a
 * temporary name and renamed into place, and the names of videos and output files. Format choices are
 * explained in events.h. */
#include "captioning/events.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/nn.h"
#include "vidcap.h"

/* ---- time ---- */

int64_t cap_ms_from_seconds(double seconds)
{
    if (!(seconds > 0)) return 0;
    if (seconds > CAP_MAX_SECONDS) seconds = CAP_MAX_SECONDS;
    double r = seconds * 1000.0, f = floor(r);
    /* A decimal half such as 4.0005 s is stored a few ulps low (4000.4999999999995 ms after the product);
     * counting anything within 1 ns plus a few ulps of the half as the half rounds it as it was written.
     * Times from stream timestamps are multiples of a time base and never land that close to a half. */
    if (r - f >= 0.5 - (1e-6 + r * 1e-15)) f += 1;
    return (int64_t)f;
}

void cap_format_timestamp(int64_t ms, char sep, char out[CAP_TIMESTAMP_LEN])
{
    if (ms < 0) ms = 0;
    long long h = (long long)(ms / 3600000);
    int m = (int)(ms / 60000 % 60), s = (int)(ms / 1000 % 60), milli = (int)(ms % 1000);
    snprintf(out, CAP_TIMESTAMP_LEN, "%02lld:%02d:%02d%c%03d", h, m, s, sep, milli);
}

void cap_event_span_ms(const cap_event *e, int64_t *start_ms, int64_t *end_ms)
{
    int64_t a = cap_ms_from_seconds(e->t0), b = cap_ms_from_seconds(e->t1);
    if (b < a + 1) b = a + 1; /* never a zero-length cue (whisper.cpp #1967) */
    *start_ms = a;
    *end_ms = b;
}

/* ---- output streams ---- */

/* A stream plus the errno of its first failed write, so the message names the real cause. */
typedef struct cap_out {
    FILE *f;
    int errnum;
    int failed;
} cap_out;

static void out_failed(cap_out *o)
{
    if (!o->failed) o->errnum = errno;
    o->failed = 1;
}

__attribute__((format(printf, 2, 3))) static void out_printf(cap_out *o, const char *fmt, ...)
{
    if (o->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(o->f, fmt, ap);
    va_end(ap);
    if (n < 0) out_failed(o);
}

enum { TEXT_LINE = 0, TEXT_VTT = 1 };

/* The sentence on one line: control characters other than tab become spaces (a newline would end an SRT
 * or WebVTT cue, or split a txt line); WebVTT also escapes & < > (which leaves no "-->" in the payload). */
static void out_text(cap_out *o, const char *s, int mode)
{
    for (const unsigned char *p = (const unsigned char *)s; *p && !o->failed; p++) {
        int rc;
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            rc = putc(' ', o->f);
        else if (mode == TEXT_VTT && *p == '&')
            rc = fputs("&amp;", o->f);
        else if (mode == TEXT_VTT && *p == '<')
            rc = fputs("&lt;", o->f);
        else if (mode == TEXT_VTT && *p == '>')
            rc = fputs("&gt;", o->f);
        else
            rc = putc(*p, o->f);
        if (rc == EOF) out_failed(o);
    }
}

static int out_finish(cap_out *o, const char *name, char *err, size_t errlen)
{
    if (fflush(o->f) != 0) out_failed(o);
    if (!o->failed && ferror(o->f)) {
        o->failed = 1;
        o->errnum = EIO;
    }
    if (!o->failed) return 0;
    return nn_error(VC_ERR_IO, err, errlen, name ? name : "output", "%s",
                    strerror(o->errnum ? o->errnum : EIO));
}

/* The list's events in time order, as pointers so the caller's list stays untouched and no sentence is
 * copied; equal events keep their list order (pointers into one array compare by index). The caller frees.
 * NULL for an empty list or when out of memory. */
static int cmp_event_ptr(const void *a, const void *b)
{
    const cap_event *x = *(const cap_event *const *)a, *y = *(const cap_event *const *)b;
    int c = cap_event_cmp_time(x, y);
    if (c) return c;
    return x < y ? -1 : x > y;
}

static const cap_event **time_order(const cap_events *list)
{
    if (!list || !list->n || list->n > SIZE_MAX / sizeof(cap_event *)) return NULL;
    const cap_event **order = malloc(list->n * sizeof *order);
    if (!order) return NULL;
    for (size_t i = 0; i < list->n; i++)
        order[i] = &list->ev[i];
    qsort(order, list->n, sizeof *order, cmp_event_ptr);
    return order;
}

typedef void (*event_fn)(cap_out *o, size_t i, const cap_event *e);

static int write_events(FILE *f, const char *name, const cap_events *list, const char *header, event_fn fn,
                        char *err, size_t errlen)
{
    if (!f) return nn_error(VC_ERR_ARG, err, errlen, name ? name : "output", "no stream");
    size_t n = list ? list->n : 0;
    const cap_event **order = NULL;
    if (n && !(order = time_order(list)))
        return nn_error(VC_ERR_NOMEM, err, errlen, name ? name : "output", "out of memory");
    cap_out o = {.f = f};
    if (header) out_printf(&o, "%s", header);
    for (size_t i = 0; i < n && !o.failed; i++)
        fn(&o, i, order[i]);
    free(order);
    return out_finish(&o, name, err, errlen);
}

static void out_span(cap_out *o, const cap_event *e, char sep)
{
    int64_t a, b;
    char ta[CAP_TIMESTAMP_LEN], tb[CAP_TIMESTAMP_LEN];
    cap_event_span_ms(e, &a, &b);
    cap_format_timestamp(a, sep, ta);
    cap_format_timestamp(b, sep, tb);
    out_printf(o, "%s --> %s", ta, tb);
}

static void event_line(cap_out *o, size_t i, const cap_event *e)
{
    out_printf(o, "[");
    out_span(o, e, '.');
    out_printf(o, "]  ");
    out_text(o, e->sentence, TEXT_LINE);
    out_printf(o, "\n");
}

static void event_txt(cap_out *o, size_t i, const cap_event *e)
{
    out_text(o, e->sentence, TEXT_LINE);
    out_printf(o, "\n");
}

static void event_srt(cap_out *o, size_t i, const cap_event *e)
{
    out_printf(o, "%zu\n", i + 1);
    out_span(o, e, ',');
    out_printf(o, "\n");
    out_text(o, e->sentence, TEXT_LINE);
    out_printf(o, "\n\n");
}

static void event_vtt(cap_out *o, size_t i, const cap_event *e)
{
    out_span(o, e, '.');
    out_printf(o, "\n");
    out_text(o, e->sentence, TEXT_VTT);
    out_printf(o, "\n\n");
}

int cap_print_event(FILE *f, const char *name, const cap_event *e, char *err, size_t errlen)
{
    if (!f || !e || !e->sentence)
        return nn_error(VC_ERR_ARG, err, errlen, name ? name : "output", "no event");
    cap_out o = {.f = f};
    event_line(&o, 0, e);
    return out_finish(&o, name, err, errlen);
}

int cap_write_lines(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen)
{
    return write_events(f, name, list, NULL, event_line, err, errlen);
}

int cap_write_txt(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen)
{
    return write_events(f, name, list, NULL, event_txt, err, errlen);
}

int cap_write_srt(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen)
{
    return write_events(f, name, list, NULL, event_srt, err, errlen);
}

int cap_write_vtt(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen)
{
    return write_events(f, name, list, "WEBVTT\n\n", event_vtt, err, errlen);
}

/* ---- ActivityNet JSON ---- */

/* The shortest decimal that reads back as the same float, so a score of 0.9f is written 0.9 and not
 * 0.899999976158142 (cJSON prints the double it is given with up to 17 digits). */
static double float_as_written(float x)
{
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        double d = strtod(buf, NULL);
        if ((float)d == x) return d;
    }
    return x;
}

static cJSON *anet_event(const cap_event *e, double duration)
{
    int64_t a, b;
    cap_event_span_ms(e, &a, &b);
    cJSON *ev = cJSON_CreateObject(), *ts = cJSON_CreateArray();
    if (!ev || !ts) goto fail;
    if (!cJSON_AddStringToObject(ev, "sentence", e->sentence)) goto fail;
    cJSON *t0 = cJSON_CreateNumber((double)a / 1000.0), *t1 = cJSON_CreateNumber((double)b / 1000.0);
    if (t0) cJSON_AddItemToArray(ts, t0);
    if (t1) cJSON_AddItemToArray(ts, t1);
    if (!t0 || !t1) goto fail;
    cJSON_AddItemToObject(ev, "timestamp", ts);
    ts = NULL;
    if (!cJSON_AddNumberToObject(ev, "proposal_score", float_as_written(e->score))) goto fail;
    if (isfinite(duration) && duration > 0 &&
        !cJSON_AddNumberToObject(ev, "vid_duration", (double)cap_ms_from_seconds(duration) / 1000.0))
        goto fail;
    return ev;
fail:
    cJSON_Delete(ts);
    cJSON_Delete(ev);
    return NULL;
}

int cap_write_anet(FILE *f, const char *name, const cap_video_result *videos, size_t n_videos,
                   const char *details, char *err, size_t errlen)
{
    const char *who = name ? name : "output";
    if (!f || (n_videos && !videos)) return nn_error(VC_ERR_ARG, err, errlen, who, "no stream or no videos");
    for (size_t i = 0; i < n_videos; i++) {
        if (!videos[i].video_id) return nn_error(VC_ERR_ARG, err, errlen, who, "video %zu has no id", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(videos[i].video_id, videos[j].video_id) == 0)
                return nn_error(VC_ERR_ARG, err, errlen, who, "two videos have the id '%s'",
                                videos[i].video_id);
    }

    int rc = 0;
    char *text = NULL;
    const cap_event **order = NULL;
    cap_out o = {.f = f};
    cJSON *root = cJSON_CreateObject(), *results = NULL, *ext = NULL;
    if (!root || !cJSON_AddStringToObject(root, "version", "VERSION 1.0")) goto nomem;
    if (!(results = cJSON_AddObjectToObject(root, "results"))) goto nomem;
    for (size_t i = 0; i < n_videos; i++) {
        const cap_events *list = videos[i].events;
        size_t n = list ? list->n : 0;
        cJSON *arr = cJSON_AddArrayToObject(results, videos[i].video_id);
        if (!arr || (n && !(order = time_order(list)))) goto nomem;
        for (size_t k = 0; k < n; k++) {
            cJSON *ev = anet_event(order[k], videos[i].duration);
            if (!ev) goto nomem;
            cJSON_AddItemToArray(arr, ev);
        }
        free(order);
        order = NULL;
    }
    if (!(ext = cJSON_AddObjectToObject(root, "external_data")) || !cJSON_AddTrueToObject(ext, "used") ||
        !cJSON_AddStringToObject(ext, "details", details ? details : ""))
        goto nomem;
    if (!(text = cJSON_Print(root))) goto nomem;

    out_printf(&o, "%s\n", text);
    rc = out_finish(&o, name, err, errlen);
    goto end;
nomem:
    rc = nn_error(VC_ERR_NOMEM, err, errlen, who, "out of memory");
end:
    free(order);
    cJSON_free(text);
    cJSON_Delete(root);
    return rc;
}

/* ---- files written atomically ---- */

/* The mode PATH should end up with: the mode of the file it replaces, else 0666 minus the umask. The umask
 * is read from /proc because umask() can only be read by setting it, for every thread at once. */
static mode_t new_file_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return st.st_mode & 0777;
    unsigned mask = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &mask) == 1) break;
        fclose(f);
    }
    return (mode_t)(0666 & ~mask);
}

int cap_write_file_atomic(const char *path, cap_write_fn fn, void *ctx, char *err, size_t errlen)
{
    if (!path || !*path || !fn) return nn_error(VC_ERR_ARG, err, errlen, "output", "no output path");
    static const char suffix[] = ".tmp.XXXXXX";
    size_t len = strlen(path);
    if (len > SIZE_MAX - sizeof suffix) return nn_error(VC_ERR_ARG, err, errlen, "output", "path too long");
    char *tmp = malloc(len + sizeof suffix);
    if (!tmp) return nn_error(VC_ERR_NOMEM, err, errlen, path, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, suffix, sizeof suffix);

    int rc = 0;
    mode_t mode = new_file_mode(path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = nn_error(VC_ERR_IO, err, errlen, path, "%s", strerror(errno));
        free(tmp);
        return rc;
    }
    FILE *f = NULL;
    if (fchmod(fd, mode) != 0 || !(f = fdopen(fd, "w"))) {
        rc = nn_error(VC_ERR_IO, err, errlen, path, "%s", strerror(errno));
        close(fd);
        goto fail;
    }
    rc = fn(f, path, ctx, err, errlen);
    if (rc == 0 && fflush(f) != 0) rc = nn_error(VC_ERR_IO, err, errlen, path, "%s", strerror(errno));
    /* fsync is for durability only; filesystems that cannot sync a file still hold its bytes */
    if (rc == 0 && fsync(fileno(f)) != 0 && errno != EINVAL && errno != ENOTSUP)
        rc = nn_error(VC_ERR_IO, err, errlen, path, "%s", strerror(errno));
    if (fclose(f) != 0 && rc == 0) rc = nn_error(VC_ERR_IO, err, errlen, path, "%s", strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0) rc = nn_error(VC_ERR_IO, err, errlen, path, "%s", strerror(errno));
    if (rc == 0) {
        free(tmp);
        return 0;
    }
fail:
    unlink(tmp);
    free(tmp);
    return rc;
}

typedef int (*list_writer)(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen);
typedef struct save_ctx {
    list_writer write;
    const cap_events *list;
} save_ctx;

static int save_list_fn(FILE *f, const char *name, void *ctx, char *err, size_t errlen)
{
    const save_ctx *c = ctx;
    return c->write(f, name, c->list, err, errlen);
}

static int save_list(const char *path, list_writer write, const cap_events *list, char *err, size_t errlen)
{
    save_ctx c = {write, list};
    return cap_write_file_atomic(path, save_list_fn, &c, err, errlen);
}

int cap_save_lines(const char *path, const cap_events *list, char *err, size_t errlen)
{
    return save_list(path, cap_write_lines, list, err, errlen);
}

int cap_save_txt(const char *path, const cap_events *list, char *err, size_t errlen)
{
    return save_list(path, cap_write_txt, list, err, errlen);
}

int cap_save_srt(const char *path, const cap_events *list, char *err, size_t errlen)
{
    return save_list(path, cap_write_srt, list, err, errlen);
}

int cap_save_vtt(const char *path, const cap_events *list, char *err, size_t errlen)
{
    return save_list(path, cap_write_vtt, list, err, errlen);
}

typedef struct anet_ctx {
    const cap_video_result *videos;
    size_t n_videos;
    const char *details;
} anet_ctx;

static int save_anet_fn(FILE *f, const char *name, void *ctx, char *err, size_t errlen)
{
    const anet_ctx *c = ctx;
    return cap_write_anet(f, name, c->videos, c->n_videos, c->details, err, errlen);
}

int cap_save_anet(const char *path, const cap_video_result *videos, size_t n_videos, const char *details,
                  char *err, size_t errlen)
{
    anet_ctx c = {videos, n_videos, details};
    return cap_write_file_atomic(path, save_anet_fn, &c, err, errlen);
}

/* ---- names ---- */

/* [*start, *end) is the last component of path, trailing slashes ignored. */
static void last_component(const char *path, size_t *start, size_t *end)
{
    size_t e = strlen(path);
    while (e > 0 && path[e - 1] == '/')
        e--;
    size_t s = e;
    while (s > 0 && path[s - 1] != '/')
        s--;
    *start = s;
    *end = e;
}

/* Where the stem of the name [s, e) ends: at its last dot, unless that dot is the name's first character
 * (".hidden") or its last ("clip."), which pathlib does not count as extensions either. */
static size_t stem_end(const char *path, size_t s, size_t e)
{
    for (size_t i = e; i > s; i--)
        if (path[i - 1] == '.') return (i - 1 > s && i < e) ? i - 1 : e;
    return e;
}

static char *join3(const char *a, size_t na, const char *b, const char *c)
{
    size_t nb = strlen(b), nc = strlen(c);
    if (na > SIZE_MAX - nb - nc - 1) return NULL;
    char *out = malloc(na + nb + nc + 1);
    if (!out) return NULL;
    memcpy(out, a, na);
    memcpy(out + na, b, nb);
    memcpy(out + na + nb, c, nc + 1);
    return out;
}

char *cap_video_id_from_path(const char *path)
{
    if (!path) return NULL;
    size_t s, e;
    last_component(path, &s, &e);
    return join3(path + s, stem_end(path, s, e) - s, "", "");
}

char *cap_output_path(const char *base, const char *input, const char *ext, char *err, size_t errlen)
{
    if (ext && *ext == '.') ext++;
    if (!ext || !*ext) {
        nn_error(VC_ERR_ARG, err, errlen, "output name", "no extension given");
        return NULL;
    }
    char *out;
    if (base) {
        if (!*base) {
            nn_error(VC_ERR_ARG, err, errlen, "output name", "empty output base");
            return NULL;
        }
        out = join3(base, strlen(base), ".", ext);
    } else {
        if (!input) {
            nn_error(VC_ERR_ARG, err, errlen, "output name", "no input path");
            return NULL;
        }
        size_t s, e;
        last_component(input, &s, &e);
        size_t n = e - s;
        if (n == 0 || (n == 1 && input[s] == '.') || (n == 2 && input[s] == '.' && input[s + 1] == '.')) {
            nn_error(VC_ERR_ARG, err, errlen, input, "no file name to name the output after");
            return NULL;
        }
        out = join3(input, stem_end(input, s, e), ".", ext);
        if (out && strcmp(out, input) == 0) {
            nn_error(VC_ERR_ARG, err, errlen, input,
                     "the .%s output would overwrite the input; give an output base", ext);
            free(out);
            return NULL;
        }
    }
    if (!out) nn_error(VC_ERR_NOMEM, err, errlen, "output name", "out of memory");
    return out;
}
