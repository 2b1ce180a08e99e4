/* Caption events: byte-exact stdout/txt/SRT/WebVTT/JSON output for a small list with awkward times and text,
 * the JSON read back with cJSON, window merging and sorting against hand-computed answers, atomic files
 * (one file on success, none on failure, a one-line error), and the video-id and output-name helpers.
 * Usage: test_events SCRATCH_DIR (a directory the test may create a subdirectory in). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "captioning/events.h"
#include "testutil.h"
#include "vidcap.h"

/* ---- helpers ---- */

typedef int (*list_writer)(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen);

/* What a writer produces for list, as a NUL-terminated malloc'd string (NULL when the writer fails). */
static char *render(list_writer w, const cap_events *list)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    char err[256] = "";
    int rc = w(f, "mem", list, err, sizeof err);
    fclose(f);
    if (rc) {
        fprintf(stderr, "writer failed: %s\n", err);
        free(buf);
        return NULL;
    }
    return buf;
}

static char *render_anet(const cap_video_result *v, size_t n, const char *details)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    char err[256] = "";
    int rc = cap_write_anet(f, "mem", v, n, details, err, sizeof err);
    fclose(f);
    if (rc) {
        fprintf(stderr, "anet writer failed: %s\n", err);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Compares got with want and, when they differ, prints the first differing byte and both texts. */
static void check_golden(const char *what, const char *got, const char *want)
{
    if (!got) {
        TU_CHECK(0, "%s: no output", what);
        return;
    }
    if (strcmp(got, want) == 0) return;
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    TU_CHECK(0, "%s differs from the golden at byte %zu:\n--- got ---\n%s--- want ---\n%s---", what, i, got,
             want);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap ? 2 * cap : 256;
            char *b = realloc(buf, cap);
            if (!b) break;
            buf = b;
        }
        buf[len++] = (char)c;
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf ? buf : calloc(1, 1);
}

/* Number of entries in dir besides . and ..; names the first into first (if not NULL). */
static int count_entries(const char *dir, char *first, size_t firstlen)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    if (first && firstlen) first[0] = '\0';
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == 0 && first) snprintf(first, firstlen, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void add(cap_events *l, double t0, double t1, float score, const char *s)
{
    char err[256] = "";
    int rc = cap_events_add(l, t0, t1, score, s, err, sizeof err);
    TU_CHECK(rc == 0, "add [%g, %g] '%s': %s", t0, t1, s, err);
}

/* ---- the list every writer golden uses ----
 * Added out of time order; written in time order:
 *   3.5 .. 7.0          plain sentence (whisper-cli's example line)
 *   4.0005 .. 5.0       a decimal half below the ms (stored 4.000499999...) -> 00:00:04.001; a newline
 *   10.0 .. 10.0        zero length -> written as 1 ms
 *   59.9995 .. 3723.4565  rounding at .9995 carries into the minute; an end past one hour
 *   360000.25 .. 360001.9995  100 hours; & < > --> quote tab and a non-ASCII word */
static const char *awkward = "the bag <left> & the shoe --> \"gone\"\there caf\xC3\xA9";

static cap_events *golden_list(void)
{
    cap_events *l = cap_events_create();
    add(l, 59.9995, 3723.4565, 0.5f, "a bag moves up");
    add(l, 360000.25, 360001.9995, 0.75f, awkward);
    add(l, 10.0, 10.0, 0.25f, "a coat appears");
    add(l, 3.5, 7.0, 0.9f, "a red sneaker enters from the left");
    add(l, 4.0005, 5.0, 0.125f, "two\nlines");
    return l;
}

static void test_time_format(void)
{
    char buf[CAP_TIMESTAMP_LEN];
    struct {
        double s;
        int64_t ms;
        const char *dot;
    } cases[] = {
        {0.0, 0, "00:00:00.000"},
        {0.0004999, 0, "00:00:00.000"},
        {0.0005, 1, "00:00:00.001"},
        {1.2345, 1235, "00:00:01.235"},
        {4.0005, 4001, "00:00:04.001"},   /* 4000.4999999999995 after the product */
        {16.0005, 16001, "00:00:16.001"}, /* 16000.499999999998 */
        {0.5005, 501, "00:00:00.501"},    /* 500.49999999999994 */
        {59.9995, 60000, "00:01:00.000"},
        {59.99949, 59999, "00:00:59.999"},
        {3599.9995, 3600000, "01:00:00.000"},
        {3723.4565, 3723457, "01:02:03.457"},
        {359999.9995, 360000000, "100:00:00.000"},
        {-1.0, 0, "00:00:00.000"},
        {NAN, 0, "00:00:00.000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = cap_ms_from_seconds(cases[i].s);
        TU_CHECK(ms == cases[i].ms, "%.7f s -> %lld ms, want %lld", cases[i].s, (long long)ms,
                 (long long)cases[i].ms);
        cap_format_timestamp(ms, '.', buf);
        TU_CHECK(strcmp(buf, cases[i].dot) == 0, "%lld ms -> '%s', want '%s'", (long long)ms, buf,
                 cases[i].dot);
    }
    cap_format_timestamp(3723457, ',', buf);
    TU_CHECK(strcmp(buf, "01:02:03,457") == 0, "SRT separator: '%s'", buf);
    cap_format_timestamp((int64_t)(CAP_MAX_SECONDS * 1000), '.', buf);
    TU_CHECK(strcmp(buf, "277777:46:40.000") == 0, "the largest time: '%s'", buf);
    TU_CHECK(cap_ms_from_seconds(1e300) == (int64_t)(CAP_MAX_SECONDS * 1000), "huge values clamp");

    cap_event zero = {10.0, 10.0, 0.f, (char *)"x"}, tiny = {1.0, 1.0004, 0.f, (char *)"x"};
    int64_t a, b;
    cap_event_span_ms(&zero, &a, &b);
    TU_CHECK(a == 10000 && b == 10001, "zero length -> [%lld, %lld], want [10000, 10001]", (long long)a,
             (long long)b);
    cap_event_span_ms(&tiny, &a, &b);
    TU_CHECK(a == 1000 && b == 1001, "0.4 ms long rounds to zero length -> [%lld, %lld]", (long long)a,
             (long long)b);
}

static void test_text_goldens(void)
{
    cap_events *l = golden_list();
    char *got = render(cap_write_lines, l);
    check_golden(
        "stdout lines", got,
        "[00:00:03.500 --> 00:00:07.000]  a red sneaker enters from the left\n"
        "[00:00:04.001 --> 00:00:05.000]  two lines\n"
        "[00:00:10.000 --> 00:00:10.001]  a coat appears\n"
        "[00:01:00.000 --> 01:02:03.457]  a bag moves up\n"
        "[100:00:00.250 --> 100:00:02.000]  the bag <left> & the shoe --> \"gone\"\there caf\xC3\xA9\n");
    free(got);

    got = render(cap_write_txt, l);
    check_golden("txt", got,
                 "a red sneaker enters from the left\n"
                 "two lines\n"
                 "a coat appears\n"
                 "a bag moves up\n"
                 "the bag <left> & the shoe --> \"gone\"\there caf\xC3\xA9\n");
    free(got);

    got = render(cap_write_srt, l);
    check_golden(
        "srt", got,
        "1\n00:00:03,500 --> 00:00:07,000\na red sneaker enters from the left\n\n"
        "2\n00:00:04,001 --> 00:00:05,000\ntwo lines\n\n"
        "3\n00:00:10,000 --> 00:00:10,001\na coat appears\n\n"
        "4\n00:01:00,000 --> 01:02:03,457\na bag moves up\n\n"
        "5\n100:00:00,250 --> 100:00:02,000\nthe bag <left> & the shoe --> \"gone\"\there caf\xC3\xA9\n\n");
    free(got);

    got = render(cap_write_vtt, l);
    check_golden("vtt", got,
                 "WEBVTT\n\n"
                 "00:00:03.500 --> 00:00:07.000\na red sneaker enters from the left\n\n"
                 "00:00:04.001 --> 00:00:05.000\ntwo lines\n\n"
                 "00:00:10.000 --> 00:00:10.001\na coat appears\n\n"
                 "00:01:00.000 --> 01:02:03.457\na bag moves up\n\n"
                 "100:00:00.250 --> 100:00:02.000\n"
                 "the bag &lt;left&gt; &amp; the shoe --&gt; \"gone\"\there caf\xC3\xA9\n\n");
    /* the payload lines hold no arrow: only the five timing lines do */
    int arrows = 0;
    for (const char *p = got; p && (p = strstr(p, "-->")); p += 3)
        arrows++;
    TU_CHECK(arrows == 5, "vtt: %d '-->' in the file, want exactly the 5 timing lines", arrows);
    free(got);

    /* the writers do not reorder the caller's list */
    TU_CHECK(l->ev[0].t0 == 59.9995 && l->ev[4].t0 == 4.0005, "writing must not reorder the list");

    /* one event as the new-event callback prints it */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char err[256] = "";
    TU_CHECK(cap_print_event(f, "stdout", &l->ev[3], err, sizeof err) == 0, "print_event: %s", err);
    fclose(f);
    check_golden("print_event", buf, "[00:00:03.500 --> 00:00:07.000]  a red sneaker enters from the left\n");
    free(buf);

    /* empty lists */
    cap_events *empty = cap_events_create();
    got = render(cap_write_srt, empty);
    check_golden("empty srt", got, "");
    free(got);
    got = render(cap_write_vtt, empty);
    check_golden("empty vtt", got, "WEBVTT\n\n");
    free(got);
    got = render(cap_write_txt, NULL);
    check_golden("NULL list txt", got, "");
    free(got);
    cap_events_free(empty);
    cap_events_free(l);
}

static const char *anet_golden =
    "{\n"
    "\t\"version\":\t\"VERSION 1.0\",\n"
    "\t\"results\":\t{\n"
    "\t\t\"clip.v1\":\t[{\n"
    "\t\t\t\t\"sentence\":\t\"a red sneaker enters from the left\",\n"
    "\t\t\t\t\"timestamp\":\t[3.5, 7],\n"
    "\t\t\t\t\"proposal_score\":\t0.9,\n"
    "\t\t\t\t\"vid_duration\":\t360002.5\n"
    "\t\t\t}, {\n"
    "\t\t\t\t\"sentence\":\t\"two\\nlines\",\n"
    "\t\t\t\t\"timestamp\":\t[4.001, 5],\n"
    "\t\t\t\t\"proposal_score\":\t0.125,\n"
    "\t\t\t\t\"vid_duration\":\t360002.5\n"
    "\t\t\t}, {\n"
    "\t\t\t\t\"sentence\":\t\"a coat appears\",\n"
    "\t\t\t\t\"timestamp\":\t[10, 10.001],\n"
    "\t\t\t\t\"proposal_score\":\t0.25,\n"
    "\t\t\t\t\"vid_duration\":\t360002.5\n"
    "\t\t\t}, {\n"
    "\t\t\t\t\"sentence\":\t\"a bag moves up\",\n"
    "\t\t\t\t\"timestamp\":\t[60, 3723.457],\n"
    "\t\t\t\t\"proposal_score\":\t0.5,\n"
    "\t\t\t\t\"vid_duration\":\t360002.5\n"
    "\t\t\t}, {\n"
    "\t\t\t\t\"sentence\":\t\"the bag <left> & the shoe --> \\\"gone\\\"\\there caf\xC3\xA9\",\n"
    "\t\t\t\t\"timestamp\":\t[360000.25, 360002],\n"
    "\t\t\t\t\"proposal_score\":\t0.75,\n"
    "\t\t\t\t\"vid_duration\":\t360002.5\n"
    "\t\t\t}],\n"
    "\t\t\"v_second\":\t[{\n"
    "\t\t\t\t\"sentence\":\t\"bell\\u0007 and CR\\r\",\n"
    "\t\t\t\t\"timestamp\":\t[1.25, 2.5],\n"
    "\t\t\t\t\"proposal_score\":\t0.33333334\n"
    "\t\t\t}],\n"
    "\t\t\"empty\":\t[]\n"
    "\t},\n"
    "\t\"external_data\":\t{\n"
    "\t\t\"used\":\ttrue,\n"
    "\t\t\"details\":\t\"NesT frame features trained on Fashion-MNIST\"\n"
    "\t}\n"
    "}\n";

/* One event of the parsed JSON against what was written. */
static void check_json_event(const cJSON *ev, const char *sentence, double t0, double t1, double score,
                             double duration)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(ev, "sentence");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(ev, "timestamp");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(ev, "proposal_score");
    const cJSON *vd = cJSON_GetObjectItemCaseSensitive(ev, "vid_duration");
    TU_CHECK(cJSON_IsString(s) && strcmp(s->valuestring, sentence) == 0, "sentence '%s', want '%s'",
             cJSON_IsString(s) ? s->valuestring : "(missing)", sentence);
    TU_CHECK(cJSON_IsArray(ts) && cJSON_GetArraySize(ts) == 2, "timestamp must be [start, end]");
    if (cJSON_IsArray(ts) && cJSON_GetArraySize(ts) == 2) {
        double a = cJSON_GetArrayItem(ts, 0)->valuedouble, b = cJSON_GetArrayItem(ts, 1)->valuedouble;
        TU_CHECK(a == t0 && b == t1, "'%s': timestamp [%.17g, %.17g], want [%.17g, %.17g]", sentence, a, b,
                 t0, t1);
    }
    TU_CHECK(cJSON_IsNumber(ps) && ps->valuedouble == score, "'%s': proposal_score %.17g, want %.17g",
             sentence, cJSON_IsNumber(ps) ? ps->valuedouble : NAN, score);
    if (duration > 0)
        TU_CHECK(cJSON_IsNumber(vd) && vd->valuedouble == duration, "'%s': vid_duration %.17g, want %.17g",
                 sentence, cJSON_IsNumber(vd) ? vd->valuedouble : NAN, duration);
    else
        TU_CHECK(vd == NULL, "'%s': an unknown duration must leave vid_duration out", sentence);
}

static void test_anet(void)
{
    cap_events *l = golden_list();
    cap_events *second = cap_events_create();
    add(second, 1.25, 2.5, 1.f / 3.f, "bell\a and CR\r");
    cap_events *empty = cap_events_create();
    cap_video_result v[3] = {
        {"clip.v1", 360002.5, l},
        {"v_second", 0.0, second}, /* unknown duration */
        {"empty", 12.0, empty},
    };
    char *got = render_anet(v, 3, "NesT frame features trained on Fashion-MNIST");
    check_golden("activitynet json", got, anet_golden);

    /* read back field by field */
    cJSON *root = got ? cJSON_Parse(got) : NULL;
    TU_CHECK(root != NULL, "the JSON must parse");
    if (root) {
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
        TU_CHECK(cJSON_IsString(ver) && strcmp(ver->valuestring, "VERSION 1.0") == 0, "version");
        const cJSON *ext = cJSON_GetObjectItemCaseSensitive(root, "external_data");
        TU_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ext, "used")), "external_data.used is true");
        const cJSON *det = cJSON_GetObjectItemCaseSensitive(ext, "details");
        TU_CHECK(cJSON_IsString(det) &&
                     strcmp(det->valuestring, "NesT frame features trained on Fashion-MNIST") == 0,
                 "external_data.details");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "results");
        TU_CHECK(cJSON_IsObject(res) && cJSON_GetArraySize(res) == 3, "results holds the three videos");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(res, "clip.v1");
        TU_CHECK(cJSON_IsArray(c) && cJSON_GetArraySize(c) == 5, "clip.v1 has its 5 events");
        if (cJSON_IsArray(c) && cJSON_GetArraySize(c) == 5) {
            check_json_event(cJSON_GetArrayItem(c, 0), "a red sneaker enters from the left", 3.5, 7.0, 0.9,
                             360002.5);
            check_json_event(cJSON_GetArrayItem(c, 1), "two\nlines", 4.001, 5.0, 0.125, 360002.5);
            check_json_event(cJSON_GetArrayItem(c, 2), "a coat appears", 10.0, 10.001, 0.25, 360002.5);
            check_json_event(cJSON_GetArrayItem(c, 3), "a bag moves up", 60.0, 3723.457, 0.5, 360002.5);
            check_json_event(cJSON_GetArrayItem(c, 4), awkward, 360000.25, 360002.0, 0.75, 360002.5);
        }
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(res, "v_second");
        TU_CHECK(cJSON_IsArray(s) && cJSON_GetArraySize(s) == 1, "v_second has its event");
        if (cJSON_IsArray(s) && cJSON_GetArraySize(s) == 1)
            check_json_event(cJSON_GetArrayItem(s, 0), "bell\a and CR\r", 1.25, 2.5, 0.33333334, 0);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(res, "empty");
        TU_CHECK(cJSON_IsArray(e) && cJSON_GetArraySize(e) == 0, "an empty video is an empty list");
        cJSON_Delete(root);
    }
    /* control characters never reach the file raw */
    for (const char *p = got; p && *p; p++)
        TU_CHECK((unsigned char)*p >= 0x20 || *p == '\n' || *p == '\t', "raw control byte 0x%02x in the JSON",
                 (unsigned char)*p);
    free(got);

    /* two videos with one id would collapse into one JSON key */
    cap_video_result dup[2] = {{"clip", 1.0, l}, {"clip", 2.0, second}};
    char err[256] = "";
    FILE *f = fopen("/dev/null", "w");
    TU_CHECK(cap_write_anet(f, "out.json", dup, 2, NULL, err, sizeof err) == VC_ERR_ARG,
             "duplicate ids refused");
    TU_CHECK(strcmp(err, "out.json: two videos have the id 'clip'") == 0, "duplicate id message: '%s'", err);
    fclose(f);

    cap_events_free(l);
    cap_events_free(second);
    cap_events_free(empty);
}

static void test_add_and_sort(void)
{
    cap_events *l = cap_events_create();
    char err[256] = "";
    TU_CHECK(cap_events_add(l, 5.0, 4.0, 0.5f, "x", err, sizeof err) == VC_ERR_ARG, "t1 < t0 refused");
    TU_CHECK(strchr(err, '\n') == NULL && strncmp(err, "caption event: ", 15) == 0, "one-line message: '%s'",
             err);
    TU_CHECK(cap_events_add(l, -0.5, 4.0, 0.5f, "x", err, sizeof err) == VC_ERR_ARG, "negative t0 refused");
    TU_CHECK(cap_events_add(l, NAN, 4.0, 0.5f, "x", err, sizeof err) == VC_ERR_ARG, "NaN refused");
    TU_CHECK(cap_events_add(l, 0, INFINITY, 0.5f, "x", err, sizeof err) == VC_ERR_ARG, "inf refused");
    TU_CHECK(cap_events_add(l, 0, 2e9, 0.5f, "x", err, sizeof err) == VC_ERR_ARG, "past CAP_MAX_SECONDS");
    TU_CHECK(cap_events_add(l, 0, 1, NAN, "x", err, sizeof err) == VC_ERR_ARG, "NaN score refused");
    TU_CHECK(cap_events_add(l, 0, 1, 0.5f, NULL, err, sizeof err) == VC_ERR_ARG, "NULL sentence refused");
    TU_CHECK(l->n == 0, "refused events are not added");

    /* invalid UTF-8 becomes U+FFFD byte by byte; valid multibyte text is kept */
    add(l, 0, 1, 0.5f, "ok \xC3\xA9 bad \xFF end \xE2\x82 cut \xED\xA0\x80 surrogate \xF0\x9F\x98\x80");
    TU_CHECK(l->n == 1 && strcmp(l->ev[0].sentence,
                                 "ok \xC3\xA9 bad \xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD cut "
                                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD surrogate \xF0\x9F\x98\x80") == 0,
             "sanitised sentence: '%s'", l->n ? l->ev[0].sentence : "");
    cap_events_clear(l);
    TU_CHECK(l->n == 0 && l->cap >= 1, "clear empties the list and keeps its capacity");

    /* sorting: t0, then t1, then score descending */
    add(l, 2.0, 3.0, 0.1f, "d");
    add(l, 1.0, 5.0, 0.2f, "c");
    add(l, 1.0, 4.0, 0.3f, "b1"); /* names sort against the scores */
    add(l, 1.0, 4.0, 0.9f, "b2");
    add(l, 0.5, 9.0, 0.0f, "a");
    for (int i = 0; i < 40; i++) /* enough to make the array grow past its first allocation */
        add(l, 100.0 - i, 200.0, 0.5f, "filler");
    cap_events_sort_by_time(l);
    const char *want[] = {"a", "b2", "b1", "c", "d"};
    for (int i = 0; i < 5; i++)
        TU_CHECK(strcmp(l->ev[i].sentence, want[i]) == 0, "sorted[%d] = '%s', want '%s'", i,
                 l->ev[i].sentence, want[i]);
    for (size_t i = 1; i < l->n; i++)
        TU_CHECK(cap_event_cmp_time(&l->ev[i - 1], &l->ev[i]) <= 0, "not sorted at %zu", i);
    TU_CHECK(l->n == 45 && l->ev[5].t0 == 61.0 && l->ev[44].t0 == 100.0,
             "fillers in time order after the rest");
    cap_events_free(l);
    cap_events_free(NULL); /* a no-op */
    cap_events_clear(NULL);
}

static void test_tiou(void)
{
    struct {
        double a0, a1, b0, b1, want;
    } c[] = {
        {0, 10, 5, 15, 5.0 / 15.0}, /* overlap 5, union 15 */
        {0, 10, 2, 4, 0.2},         /* nested */
        {0, 10, 0, 10, 1.0},        /* identical */
        {0, 5, 5, 10, 0.0},         /* touching closed intervals share one instant: length 0 */
        {0, 1, 3, 4, 0.0},          /* disjoint: intersection clipped at 0 */
        {3, 3, 3, 3, 1.0},          /* the same instant */
        {3, 3, 4, 4, 0.0},          /* two different instants */
        {0, 10, 5, 5, 0.0},         /* an instant inside an interval */
        {1, 10, 0, 10, 0.9},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double got = cap_tiou(c[i].a0, c[i].a1, c[i].b0, c[i].b1),
               sym = cap_tiou(c[i].b0, c[i].b1, c[i].a0, c[i].a1);
        TU_CHECK(fabs(got - c[i].want) < 1e-12 && got == sym,
                 "tIoU([%g,%g],[%g,%g]) = %.17g (sym %.17g), want %.17g", c[i].a0, c[i].a1, c[i].b0, c[i].b1,
                 got, sym, c[i].want);
    }
}

static void check_list(const char *what, const cap_events *l, int n, const char *const *sentences,
                       const float *scores)
{
    TU_CHECK((int)l->n == n, "%s: %zu events, want %d", what, l->n, n);
    for (int i = 0; i < n && i < (int)l->n; i++)
        TU_CHECK(strcmp(l->ev[i].sentence, sentences[i]) == 0 && l->ev[i].score == scores[i],
                 "%s: [%d] = '%s' %g, want '%s' %g", what, i, l->ev[i].sentence, l->ev[i].score, sentences[i],
                 scores[i]);
}

static void test_merge(void)
{
    char err[256] = "";
    cap_events *dst = cap_events_create(), *src = cap_events_create();
    /* window 1 */
    add(dst, 0, 10, 0.5f, "A");
    add(dst, 20, 30, 0.9f, "B");
    /* window 2, tIoU 0.7:
     *   C [1,10]  vs A: 9/10 = 0.9, higher score 0.8 > 0.5 -> replaces A in its slot
     *   D [22,30] vs B: 8/10 = 0.8, same score 0.9 -> the tie keeps B
     *   E [5,25]  vs A: 5/25 = 0.2, vs B: 5/25 = 0.2 -> new, appended
     *   F [40,41] overlaps nothing -> appended */
    add(src, 1, 10, 0.8f, "C");
    add(src, 22, 30, 0.9f, "D");
    add(src, 5, 25, 1.0f, "E");
    add(src, 40, 41, 0.1f, "F");
    TU_CHECK(cap_events_merge(dst, src, 0.7, err, sizeof err) == 0, "merge: %s", err);
    const char *w1[] = {"C", "B", "E", "F"};
    const float s1[] = {0.8f, 0.9f, 1.0f, 0.1f};
    check_list("merge 1", dst, 4, w1, s1);
    TU_CHECK(dst->ev[0].t0 == 1 && dst->ev[0].t1 == 10, "the winner brings its own times");
    TU_CHECK(src->n == 4 && strcmp(src->ev[0].sentence, "C") == 0, "src is left as it was");
    TU_CHECK(dst->ev[0].sentence != src->ev[0].sentence, "dst owns copies of the sentences");

    /* at tIoU 0.2, E [5,25] matches A and B equally (0.2 each): the first, A's slot, is its match, and
     * scoring higher E takes it */
    cap_events_clear(dst);
    cap_events_clear(src);
    add(dst, 0, 10, 0.5f, "A");
    add(dst, 20, 30, 0.9f, "B");
    add(src, 5, 25, 1.0f, "E");
    TU_CHECK(cap_events_merge(dst, src, 0.2, err, sizeof err) == 0, "merge: %s", err);
    const char *w2[] = {"E", "B"};
    const float s2[] = {1.0f, 0.9f};
    check_list("merge at 0.2", dst, 2, w2, s2);

    /* the best match wins: R [2,10] matches P [0,10] at 0.8 and Q [2,10] at 1.0 -> Q's slot */
    cap_events_clear(dst);
    cap_events_clear(src);
    add(dst, 0, 10, 0.9f, "P");
    add(dst, 2, 10, 0.3f, "Q");
    add(src, 2, 10, 0.6f, "R");
    TU_CHECK(cap_events_merge(dst, src, 0.5, err, sizeof err) == 0, "merge: %s", err);
    const char *w3[] = {"P", "R"};
    const float s3[] = {0.9f, 0.6f};
    check_list("best match", dst, 2, w3, s3);

    /* two src events duplicating one slot: X [0,9] (0.9) takes A's slot from 0.5, Y [1,10] (0.9) then beats
     * X's 0.6 with 0.7; one event remains. Duplicates are judged against A's interval, not X's. */
    cap_events_clear(dst);
    cap_events_clear(src);
    add(dst, 0, 10, 0.5f, "A");
    add(src, 0, 9, 0.6f, "X");
    add(src, 1, 10, 0.7f, "Y");
    TU_CHECK(cap_events_merge(dst, src, 0.85, err, sizeof err) == 0, "merge: %s", err);
    const char *w4[] = {"Y"};
    const float s4[] = {0.7f};
    check_list("two claims on one slot", dst, 1, w4, s4);

    /* events of one window never deduplicate each other: into an empty dst everything is appended */
    cap_events_clear(dst);
    TU_CHECK(cap_events_merge(dst, src, 0.5, err, sizeof err) == 0, "merge: %s", err);
    const char *w5[] = {"X", "Y"};
    const float s5[] = {0.6f, 0.7f};
    check_list("into empty", dst, 2, w5, s5);

    /* tIoU exactly at the threshold counts as a duplicate: [0,10] vs [0,5] = 0.5 */
    cap_events_clear(dst);
    cap_events_clear(src);
    add(dst, 0, 10, 0.5f, "A");
    add(src, 0, 5, 0.4f, "half");
    TU_CHECK(cap_events_merge(dst, src, 0.5, err, sizeof err) == 0, "merge: %s", err);
    const char *w6[] = {"A"};
    const float s6[] = {0.5f};
    check_list("at the threshold", dst, 1, w6, s6);

    /* bad arguments leave dst unchanged */
    TU_CHECK(cap_events_merge(dst, src, 0.0, err, sizeof err) == VC_ERR_ARG, "tiou 0 refused");
    TU_CHECK(strcmp(err, "caption merge: tIoU 0 is not in (0, 1]") == 0, "message: '%s'", err);
    TU_CHECK(cap_events_merge(dst, src, 1.5, err, sizeof err) == VC_ERR_ARG, "tiou 1.5 refused");
    TU_CHECK(cap_events_merge(dst, src, NAN, err, sizeof err) == VC_ERR_ARG, "tiou NaN refused");
    TU_CHECK(cap_events_merge(dst, dst, 0.5, err, sizeof err) == VC_ERR_ARG,
             "merging a list into itself refused");
    check_list("after refusals", dst, 1, w6, s6);
    cap_events_free(dst);
    cap_events_free(src);
}

/* ---- atomic files ---- */

static int fail_after_some_bytes(FILE *f, const char *name, void *ctx, char *err, size_t errlen)
{
    fputs("partial content that must never be seen\n", f);
    fflush(f);
    snprintf(err, errlen, "%s: %s", name, "the model stopped");
    return VC_ERR_IO;
}

static void test_atomic(const char *scratch)
{
    char dir[1024], path[2048], sub[1536], err[2600] = "", first[256];
    snprintf(dir, sizeof dir, "%s/events_atomic.XXXXXX", scratch);
    TU_CHECK(mkdtemp(dir) != NULL, "mkdtemp in %s: %s", scratch, strerror(errno));
    cap_events *l = golden_list();

    /* success: exactly one file, the SRT bytes, mode 0666 minus the umask (022 here) */
    snprintf(path, sizeof path, "%s/clip.srt", dir);
    TU_CHECK(cap_save_srt(path, l, err, sizeof err) == 0, "save srt: %s", err);
    TU_CHECK(count_entries(dir, first, sizeof first) == 1 && strcmp(first, "clip.srt") == 0,
             "one file after success, found '%s' and %d entries", first, count_entries(dir, NULL, 0));
    char *want = render(cap_write_srt, l), *got = read_file(path);
    TU_CHECK(want && got && strcmp(want, got) == 0, "the file holds the SRT bytes");
    free(got);
    free(want);
    struct stat st;
    TU_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "new file mode %o, want 644",
             (unsigned)(st.st_mode & 0777));

    /* replacing: a writer that fails leaves the old file as it was and no temporary behind */
    TU_CHECK(chmod(path, 0640) == 0, "chmod");
    err[0] = '\0';
    TU_CHECK(cap_write_file_atomic(path, fail_after_some_bytes, NULL, err, sizeof err) == VC_ERR_IO,
             "a failing writer fails the write");
    char want_err[2600];
    snprintf(want_err, sizeof want_err, "%s: the model stopped", path);
    TU_CHECK(strcmp(err, want_err) == 0, "writer's message passed through: '%s'", err);
    want = render(cap_write_srt, l);
    got = read_file(path);
    TU_CHECK(want && got && strcmp(want, got) == 0, "the old file survives a failed write");
    free(got);
    free(want);
    TU_CHECK(count_entries(dir, first, sizeof first) == 1,
             "no temporary left after a failure (found '%s' + %d)", first, count_entries(dir, NULL, 0) - 1);

    /* replacing successfully keeps the replaced file's mode */
    TU_CHECK(cap_save_vtt(path, l, err, sizeof err) == 0, "save vtt over srt: %s", err);
    got = read_file(path);
    TU_CHECK(got && strncmp(got, "WEBVTT\n\n", 8) == 0, "replaced content");
    free(got);
    TU_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640, "replaced file keeps mode 640, got %o",
             (unsigned)(st.st_mode & 0777));

    /* a missing directory: no file anywhere, the one-line message of the brief */
    snprintf(path, sizeof path, "%s/missing/clip.srt", dir);
    TU_CHECK(cap_save_srt(path, l, err, sizeof err) == VC_ERR_IO, "missing dir fails");
    snprintf(want_err, sizeof want_err, "%s: No such file or directory", path);
    TU_CHECK(strcmp(err, want_err) == 0, "message '%s', want '%s'", err, want_err);

    /* a "directory" that is a regular file */
    snprintf(path, sizeof path, "%s/clip.srt/x.json", dir);
    cap_video_result v = {"clip", 1.0, l};
    TU_CHECK(cap_save_anet(path, &v, 1, "", err, sizeof err) == VC_ERR_IO, "file as dir fails");
    snprintf(want_err, sizeof want_err, "%s: Not a directory", path);
    TU_CHECK(strcmp(err, want_err) == 0, "message '%s', want '%s'", err, want_err);

    /* the target is a directory: the rename fails, the temporary is removed */
    snprintf(sub, sizeof sub, "%s/out.txt", dir);
    TU_CHECK(mkdir(sub, 0755) == 0, "mkdir");
    TU_CHECK(cap_save_txt(sub, l, err, sizeof err) == VC_ERR_IO, "a directory as target fails");
    snprintf(want_err, sizeof want_err, "%s: Is a directory", sub);
    TU_CHECK(strcmp(err, want_err) == 0, "message '%s', want '%s'", err, want_err);
    TU_CHECK(count_entries(dir, NULL, 0) == 2, "only clip.srt and out.txt/ remain, %d entries",
             count_entries(dir, NULL, 0));

    /* an unwritable directory (root writes anywhere, so only checked for other users) */
    snprintf(sub, sizeof sub, "%s/ro", dir);
    TU_CHECK(mkdir(sub, 0555) == 0, "mkdir ro");
    snprintf(path, sizeof path, "%s/clip.json", sub);
    if (geteuid() != 0) {
        TU_CHECK(cap_save_anet(path, &v, 1, NULL, err, sizeof err) == VC_ERR_IO, "read-only dir fails");
        snprintf(want_err, sizeof want_err, "%s: Permission denied", path);
        TU_CHECK(strcmp(err, want_err) == 0, "message '%s', want '%s'", err, want_err);
        TU_CHECK(count_entries(sub, NULL, 0) == 0, "nothing left in the read-only dir");
    } else {
        fprintf(stderr, "test_events: running as root, the read-only directory case is skipped\n");
    }

    /* a stream that cannot be written: the error names the stream and the reason */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        TU_CHECK(cap_write_srt(full, "/dev/full", l, err, sizeof err) == VC_ERR_IO, "/dev/full fails");
        TU_CHECK(strcmp(err, "/dev/full: No space left on device") == 0, "message '%s'", err);
        fclose(full);
    }
    FILE *ro = fopen("/dev/null", "r");
    TU_CHECK(cap_write_lines(ro, "stdout", l, err, sizeof err) == VC_ERR_IO, "read-only stream fails");
    TU_CHECK(strcmp(err, "stdout: Bad file descriptor") == 0, "message '%s'", err);
    fclose(ro);

    /* clean up */
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/out.txt", dir);
    rmdir(sub);
    snprintf(path, sizeof path, "%s/clip.srt", dir);
    unlink(path);
    TU_CHECK(rmdir(dir) == 0, "scratch dir empty at the end: %s", strerror(errno));
    cap_events_free(l);
}

/* ---- names ---- */

static void test_names(void)
{
    struct {
        const char *path, *id;
    } ids[] = {
        {"dir/clip.v1.mp4", "clip.v1"},
        {"clip.mp4", "clip"},
        {"clip", "clip"},
        {".hidden", ".hidden"},
        {"dir/.hidden.mp4", ".hidden"},
        {"clip.", "clip."},
        {"a..b", "a."},
        {"...", "..."},
        {"..", ".."},
        {"a.b/clip", "clip"},
        {"dir/sub/", "sub"},
        {"dir/clip.mkv//", "clip"},
        {"/", ""},
        {"", ""},
        {"/abs/v_uqiMw7tQ1Cc.webm", "v_uqiMw7tQ1Cc"},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char *id = cap_video_id_from_path(ids[i].path);
        TU_CHECK(id && strcmp(id, ids[i].id) == 0, "id of '%s' = '%s', want '%s'", ids[i].path,
                 id ? id : "(null)", ids[i].id);
        free(id);
    }
    TU_CHECK(cap_video_id_from_path(NULL) == NULL, "NULL path");

    struct {
        const char *base, *input, *ext, *want;
    } outs[] = {
        {NULL, "dir/clip.mp4", "srt", "dir/clip.srt"},
        {NULL, "dir/clip.mp4", ".vtt", "dir/clip.vtt"},
        {NULL, "dir/clip.v1.mp4", "json", "dir/clip.v1.json"},
        {NULL, "dir/clip", "srt", "dir/clip.srt"},
        {NULL, "a.b/clip", "txt", "a.b/clip.txt"},
        {NULL, "dir/.hidden", "srt", "dir/.hidden.srt"},
        {NULL, ".hidden.mp4", "srt", ".hidden.srt"},
        {NULL, "dir/sub/", "srt", "dir/sub.srt"},
        {NULL, "clip.", "srt", "clip..srt"},
        {"out/run1", "dir/clip.mp4", "srt", "out/run1.srt"},
        {"out/run1.final", "dir/clip.mp4", "json", "out/run1.final.json"},
        {"base", NULL, "txt", "base.txt"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        err[0] = '\0';
        char *p = cap_output_path(outs[i].base, outs[i].input, outs[i].ext, err, sizeof err);
        TU_CHECK(p && strcmp(p, outs[i].want) == 0, "output(%s, %s, %s) = '%s', want '%s' (%s)",
                 outs[i].base ? outs[i].base : "NULL", outs[i].input ? outs[i].input : "NULL", outs[i].ext,
                 p ? p : "(null)", outs[i].want, err);
        free(p);
    }
    struct {
        const char *base, *input, *ext, *err;
    } bad[] = {
        {NULL, "", "srt", ": no file name to name the output after"},
        {NULL, "/", "srt", "/: no file name to name the output after"},
        {NULL, "dir/..", "srt", "dir/..: no file name to name the output after"},
        {NULL, "./", "srt", "./: no file name to name the output after"},
        {NULL, "notes.srt", "srt",
         "notes.srt: the .srt output would overwrite the input; give an output base"},
        {NULL, "dir/clip.mp4", "", "output name: no extension given"},
        {NULL, "dir/clip.mp4", NULL, "output name: no extension given"},
        {"", "dir/clip.mp4", "srt", "output name: empty output base"},
        {NULL, NULL, "srt", "output name: no input path"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        char *p = cap_output_path(bad[i].base, bad[i].input, bad[i].ext, err, sizeof err);
        TU_CHECK(p == NULL && strcmp(err, bad[i].err) == 0,
                 "output(%s, %s, %s): got '%s' / '%s', want error '%s'", bad[i].base ? bad[i].base : "NULL",
                 bad[i].input ? bad[i].input : "NULL", bad[i].ext ? bad[i].ext : "NULL", p ? p : "(null)",
                 err, bad[i].err);
        free(p);
    }
}

int main(int argc, char **argv)
{
    const char *scratch = argc > 1 ? argv[1] : ".";
    umask(022); /* the mode check expects 0644 for a new file */
    test_time_format();
    test_text_goldens();
    test_anet();
    test_add_and_sort();
    test_tiou();
    test_merge();
    test_atomic(scratch);
    test_names();
    return tu_finish("test_events");
}
