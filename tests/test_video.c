/* Video decoding and time-based sampling: the sampler against a brute-force reading of its rule on random
 * timestamps, display-matrix orientations, the committed clips (tests/assets/video, made by make_clips.sh)
 * against golden sample times and frame hashes and against what each clip was built to show, every bad
 * input's error, and every prefix and some corruptions of valid clips ending cleanly.
 * usage: test_video ASSETS_DIR            run the tests
 *        test_video ASSETS_DIR --write-golden > ASSETS_DIR/golden.txt */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/log.h>

#include "testutil.h"
#include "vidcap.h"
#include "video/convert.h"
#include "video/decode.h"
#include "video/sample.h"

#define MAX_SAMPLES 4000

static const char *assets;

static const char *asset(const char *name)
{
    static char buf[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", assets, name);
    return buf[i];
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Every sample of a clip. frames (optional) gets all of them back to back. */
typedef struct clip_run {
    int n, n_corrupt, rc, src_w, src_h;
    double duration;
    double t[MAX_SAMPLES];
    uint64_t hash[MAX_SAMPLES];
    uint8_t *frames;
    char err[512];
} clip_run;

static int run_clip(const char *path, int w, int h, double fps, int threads, int keep, clip_run *out)
{
    memset(out, 0, sizeof *out);
    vid_params p = vid_default_params();
    p.width = w;
    p.height = h;
    p.fps = fps;
    p.n_threads = threads;
    vid_reader *r = NULL;
    out->rc = vid_open(path, &p, &r, out->err, sizeof out->err);
    if (out->rc) return out->rc;
    size_t fb = (size_t)w * h * 3;
    uint8_t *buf = malloc(fb);
    if (keep) out->frames = malloc(fb * MAX_SAMPLES);
    out->src_w = vid_source_width(r);
    out->src_h = vid_source_height(r);
    out->duration = vid_duration(r);
    int rc;
    double t;
    while ((rc = vid_read(r, buf, &t, out->err, sizeof out->err)) == 1) {
        if (out->n == MAX_SAMPLES) { /* a sampler that never ends */
            rc = -100;
            snprintf(out->err, sizeof out->err, "%s: more than %d samples", path, MAX_SAMPLES);
            break;
        }
        out->t[out->n] = t;
        out->hash[out->n] = fnv1a(buf, fb);
        if (keep) memcpy(out->frames + fb * out->n, buf, fb);
        out->n++;
    }
    if (rc == 0) { /* the end stays the end */
        rc = vid_read(r, buf, &t, out->err, sizeof out->err);
        if (rc != 0) rc = -101;
    }
    out->rc = rc;
    out->n_corrupt = vid_n_corrupt(r);
    vid_close(r);
    free(buf);
    return rc;
}

static void run_free(clip_run *c)
{
    free(c->frames);
    c->frames = NULL;
}

static const uint8_t *px(const clip_run *c, int w, int h, int k, int x, int y)
{
    return c->frames + ((size_t)k * w * h + (size_t)y * w + x) * 3;
}

/* Opens a clip with libavformat to check it really has the property a test relies on. */
static AVFormatContext *probe(const char *name, AVStream **st)
{
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, asset(name), NULL, NULL) < 0) return NULL;
    if (avformat_find_stream_info(fmt, NULL) < 0) {
        avformat_close_input(&fmt);
        return NULL;
    }
    int i = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (i < 0) {
        avformat_close_input(&fmt);
        return NULL;
    }
    *st = fmt->streams[i];
    return fmt;
}

/* ---- the sampler and the clock on synthetic timestamps ---- */

static double rnd01(void)
{
    return tu_uniform(0.f, 1.f);
}

/* Streams frames at times ts (the last one lasting last_dur) through the sampler and compares each sample
 * with the rule read literally: the last frame whose time is <= t_k + eps (the first frame before it
 * starts), while t_k + eps < the end of the last frame, and always sample 0. */
static void sampler_case(const double *ts, int n, double last_dur, double fps, double tick, const char *what)
{
    vid_sampler s;
    vid_sampler_init(&s, fps, tick);
    vid_slot held = {0}, next = {0};
    int held_i = -1, next_i = -1, i = 0, eof = 0, n_out = 0, iters = 0;
    static int got_i[20000];
    static double got_t[20000];
    for (;;) {
        if (++iters > 100000) {
            TU_CHECK(0, "%s: sampler does not end", what);
            return;
        }
        enum vid_step step = vid_sampler_next(&s, &held, &next, eof);
        if (step == VID_STEP_END) break;
        if (step == VID_STEP_EMIT) {
            if (n_out == 20000) {
                TU_CHECK(0, "%s: too many samples", what);
                return;
            }
            got_i[n_out] = held_i;
            got_t[n_out++] = vid_sample_time(&s);
            s.k++;
        } else if (step == VID_STEP_ADVANCE) {
            held = next;
            held_i = next_i;
            next.valid = 0;
        } else if (i < n) {
            next = (vid_slot){1, ts[i], ts[i] + (i == n - 1 ? last_dur : 0.04)};
            next_i = i++;
        } else {
            eof = 1;
        }
    }
    double eps = s.eps, end = ts[n - 1] + last_dur;
    int k = 0;
    for (;; k++) {
        double t = (double)k / fps;
        if (k > 0 && !(t + eps < end)) break;
        int want = 0;
        for (int j = 0; j < n; j++)
            if (ts[j] <= t + eps) want = j;
        if (k >= n_out) {
            TU_CHECK(0, "%s: sample %d missing (t %.6f, frame %d)", what, k, t, want);
            return;
        }
        if (got_i[k] != want || got_t[k] != t) {
            TU_CHECK(0, "%s: sample %d at %.6f shows frame %d, want frame %d at %.6f", what, k, got_t[k],
                     got_i[k], want, t);
            return;
        }
    }
    TU_CHECK(n_out == k, "%s: %d samples, want %d", what, n_out, k);
}

static void test_sampler(void)
{
    /* the cases the rule is about, by hand */
    double one[1] = {0};
    sampler_case(one, 1, 0.01, 1.0, 1.0 / 1000, "one 10 ms frame at 1 fps (shorter than a step: sample 0)");
    double late[2] = {2.0, 2.5};
    sampler_case(late, 2, 0.5, 2.0, 1.0 / 90000, "first frame at 2 s");
    double vfr[10];
    for (int i = 0; i < 10; i++)
        vfr[i] = 0.02 * i * i;
    sampler_case(vfr, 10, 0.1, 10.0, 1.0 / 1000, "quadratic timestamps at 10 fps");
    double dup[4] = {0, 0.1, 0.1, 0.3};
    sampler_case(dup, 4, 0.1, 10.0, 1.0 / 1000, "duplicate timestamps");

    /* random streams, quantised to a time base as a container stores them */
    static const double fps_set[] = {0.5, 1, 2, 4, 10, 25, 29.97, 30, 60, 1000.0 / 7};
    static const double tick_set[] = {1.0 / 1000, 1.0 / 90000, 1.0 / 25, 1.0 / 12800, 1001.0 / 30000};
    tu_seed(42);
    for (int c = 0; c < 3000; c++) {
        double ts[64];
        int n = 1 + (int)(rnd01() * 40);
        double fps = fps_set[(int)(rnd01() * 10) % 10], tick = tick_set[(int)(rnd01() * 5) % 5];
        double t = (rnd01() - 0.3) * 0.5;
        for (int i = 0; i < n; i++) {
            double u = rnd01();
            t += u < 0.1 ? 0 : u < 0.2 ? tick : u < 0.9 ? rnd01() * 0.2 : rnd01() * 1.5;
            ts[i] = round(t / tick) * tick;
        }
        double last = 0.001 + rnd01() * 0.5;
        char what[96];
        snprintf(what, sizeof what, "random case %d (%d frames, %g fps, tick %g)", c, n, fps, tick);
        sampler_case(ts, n, last, fps, tick, what);
    }
}

static void test_clock(void)
{
    vid_clock c;
    int rej;
    vid_clock_init(&c, 1.0 / 1000, 1, 5000, 0.04);
    TU_CHECK(vid_clock_time(&c, 1, 5000, &rej) == 0 && !rej, "first frame at the start is 0");
    TU_CHECK(fabs(vid_clock_time(&c, 1, 5040, &rej) - 0.04) < 1e-12 && !rej, "40 ticks of 1 ms");
    TU_CHECK(fabs(vid_clock_time(&c, 0, 0, &rej) - 0.08) < 1e-12 && !rej, "no pts: previous + interval");
    double t = vid_clock_time(&c, 1, 5000 + 700000, &rej);
    TU_CHECK(rej && fabs(t - 0.12) < 1e-12, "a 700 s jump is rejected and replaced (got %g, rejected %d)", t,
             rej);
    t = vid_clock_time(&c, 1, 5000 + 500000, &rej);
    TU_CHECK(!rej && fabs(t - 500) < 1e-9, "a 500 s gap is a gap (got %g)", t);
    t = vid_clock_time(&c, 1, 5100, &rej);
    TU_CHECK(!rej && fabs(t - 0.1) < 1e-12, "backwards timestamps are taken as they are (got %g)", t);

    vid_clock_init(&c, 1.0 / 90000, 0, 0, 0.04);
    TU_CHECK(vid_clock_time(&c, 1, 123456, &rej) == 0, "no start time: the first pts is 0");
    TU_CHECK(fabs(vid_clock_time(&c, 1, 123456 + 9000, &rej) - 0.1) < 1e-12, "then relative to it");
    vid_clock_init(&c, 1.0 / 90000, 0, 0, 0.04);
    TU_CHECK(vid_clock_time(&c, 0, 0, &rej) == 0, "first frame without pts is 0");
    TU_CHECK(fabs(vid_clock_time(&c, 1, 777, &rej)) < 1e-12, "the first pts seen defines the start");
}

/* ---- orientation ---- */

static void test_orient(void)
{
    enum { W = 3, H = 2 };
    uint8_t src[H][W][3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            src[y][x][0] = (uint8_t)x, src[y][x][1] = (uint8_t)y, src[y][x][2] = 7;
    for (int rot = -270; rot <= 360; rot += 90)
        for (int hf = 0; hf < 2; hf++)
            for (int vf = 0; vf < 2; vf++) {
                int32_t m[9];
                av_display_rotation_set(m, rot);
                av_display_matrix_flip(m, hf, vf);
                vid_orient o;
                int turned = vid_orient_from_matrix(m, &o);
                int dw = vid_orient_swaps(o) ? H : W, dh = vid_orient_swaps(o) ? W : H;
                TU_CHECK(vid_orient_swaps(o) == (rot % 180 != 0), "rot %d: swaps", rot);
                uint8_t dst[W * H * 3];
                memset(dst, 0, sizeof dst);
                vid_orient_apply(o, &src[0][0][0], W, H, W * 3, dst);
                /* where libavutil's convention puts each stored pixel: (x, y) -> (a x + c y, b x + d y)
                 * about the image centre, from the raw matrix */
                int moved = 0;
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        double cx = x - (W - 1) / 2.0, cy = y - (H - 1) / 2.0;
                        double X = (m[0] * cx + m[3] * cy) / 65536.0 + (dw - 1) / 2.0;
                        double Y = (m[1] * cx + m[4] * cy) / 65536.0 + (dh - 1) / 2.0;
                        int Xi = (int)lround(X), Yi = (int)lround(Y);
                        moved |= Xi != x || Yi != y || dw != W;
                        const uint8_t *q = dst + ((size_t)Yi * dw + Xi) * 3;
                        TU_CHECK(Xi >= 0 && Xi < dw && Yi >= 0 && Yi < dh && q[0] == x && q[1] == y &&
                                     q[2] == 7,
                                 "rot %d hflip %d vflip %d: stored (%d,%d) belongs at (%d,%d)", rot, hf, vf,
                                 x, y, Xi, Yi);
                    }
                TU_CHECK(turned == moved, "rot %d hflip %d vflip %d: recognised as %d", rot, hf, vf, turned);
            }
    /* the player's view, said plainly: 90 degrees counter-clockwise puts the top-left corner at the
     * bottom-left, 90 clockwise (a phone held upright) at the top-right */
    int32_t m[9];
    vid_orient o;
    uint8_t dst[W * H * 3];
    av_display_rotation_set(m, -90); /* libavutil 57's setter turns clockwise, its getter reports ccw */
    TU_CHECK(fabs(av_display_rotation_get(m) - 90) < 1e-6, "a 90 degrees counter-clockwise matrix");
    vid_orient_from_matrix(m, &o);
    vid_orient_apply(o, &src[0][0][0], W, H, W * 3, dst);
    TU_CHECK(dst[(2 * H + 0) * 3] == 0 && dst[(2 * H + 0) * 3 + 1] == 0, "90 ccw: top-left to bottom-left");
    av_display_rotation_set(m, 90);
    vid_orient_from_matrix(m, &o);
    vid_orient_apply(o, &src[0][0][0], W, H, W * 3, dst);
    TU_CHECK(dst[(H - 1) * 3] == 0 && dst[(H - 1) * 3 + 1] == 0, "90 cw: top-left to top-right");

    av_display_rotation_set(m, 45);
    TU_CHECK(vid_orient_from_matrix(m, &o) == 0 && o.a == 1 && o.d == 1 && !o.b && !o.c,
             "45 degrees: ignored");
    TU_CHECK(vid_orient_from_matrix(NULL, &o) == 0 && o.a == 1 && o.d == 1, "no matrix: identity");
    memset(m, 0, sizeof m);
    TU_CHECK(vid_orient_from_matrix(m, &o) == 0 && o.a == 1 && o.d == 1, "zero matrix: identity");
}

/* ---- golden sample times and frame hashes ---- */

static const struct golden_cfg {
    const char *clip;
    int w, h;
    double fps;
} golden_cfgs[] = {
    {"cfr.mp4", 32, 24, 4},        {"cfr.mp4", 32, 24, 25},    {"vfr.mp4", 16, 12, 10},
    {"offset.ts", 16, 12, 10},     {"rot90.mp4", 8, 16, 10},   {"rot180.mp4", 16, 8, 10},
    {"rot270.mp4", 8, 16, 10},     {"bars10.mp4", 56, 32, 10}, {"bars444.mp4", 56, 32, 10},
    {"truncated.mp4", 32, 24, 25},
};

/* The golden lines of every configuration, in order. */
static char *golden_lines(void)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = 0;
    static clip_run c;
    for (size_t i = 0; i < sizeof golden_cfgs / sizeof golden_cfgs[0]; i++) {
        const struct golden_cfg *g = &golden_cfgs[i];
        run_clip(asset(g->clip), g->w, g->h, g->fps, 0, 0, &c);
        char line[256];
        for (int k = 0; k <= c.n; k++) {
            if (k < c.n)
                snprintf(line, sizeof line, "%s %dx%d %g %d %.6f %016llx\n", g->clip, g->w, g->h, g->fps, k,
                         c.t[k], (unsigned long long)c.hash[k]);
            else
                snprintf(line, sizeof line, "%s %dx%d %g end samples=%d status=%d\n", g->clip, g->w, g->h,
                         g->fps, c.n, c.rc);
            size_t l = strlen(line);
            if (len + l + 1 > cap) out = realloc(out, cap *= 2);
            memcpy(out + len, line, l + 1);
            len += l;
        }
    }
    return out;
}

static void test_golden(void)
{
    FILE *f = fopen(asset("golden.txt"), "r");
    TU_CHECK(f != NULL, "%s: cannot open", asset("golden.txt"));
    if (!f) return;
    char *got = golden_lines(), *g = got, line[512];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        n++;
        size_t l = strcspn(g, "\n");
        if (strncmp(g, line, l) != 0 || line[l] != '\n') {
            if (bad++ < 5)
                TU_CHECK(0, "golden line %d: got \"%.*s\", want \"%.*s\"", n, (int)l, g,
                         (int)strcspn(line, "\n"), line);
        }
        g += l + (g[l] == '\n');
    }
    TU_CHECK(*g == 0, "more samples than the golden file lists, from \"%.*s\"", (int)strcspn(g, "\n"), g);
    TU_CHECK(n > 100, "golden file has %d lines", n);
    fclose(f);
    free(got);
}

/* ---- what each clip was made to show ---- */

static void test_cfr(void)
{
    static clip_run all, four, slow, one, two;
    run_clip(asset("cfr.mp4"), 32, 24, 25, 0, 0, &all);
    TU_CHECK(all.rc == 0 && all.n == 50, "cfr at its own rate: %d samples (want 50), status %d %s", all.n,
             all.rc, all.err);
    TU_CHECK(fabs(all.duration - 2.0) < 1e-9 && all.n_corrupt == 0 && all.src_w == 64 && all.src_h == 48,
             "cfr: duration %g, corrupt %d, %dx%d", all.duration, all.n_corrupt, all.src_w, all.src_h);
    int distinct = 0;
    for (int k = 0; k < all.n; k++) {
        TU_CHECK(all.t[k] == k / 25.0, "cfr sample %d at %.9f", k, all.t[k]);
        int j = 0;
        while (j < k && all.hash[j] != all.hash[k])
            j++;
        distinct += j == k;
    }
    /* testsrc2 moves; x264 coded two frames as exact repeats of the previous one */
    TU_CHECK(distinct >= 45, "cfr at its own rate: only %d distinct frames", distinct);

    /* 4 fps: sample k is frame floor(6.25 k), the one on screen at k / 4 s */
    run_clip(asset("cfr.mp4"), 32, 24, 4, 0, 0, &four);
    TU_CHECK(four.rc == 0 && four.n == 8, "cfr at 4 fps: %d samples (want 8)", four.n);
    for (int k = 0; k < four.n && k < 8 && all.n == 50; k++)
        TU_CHECK(four.hash[k] == all.hash[(int)floor(6.25 * k)] && four.t[k] == k / 4.0,
                 "cfr at 4 fps: sample %d is frame %d", k, (int)floor(6.25 * k));

    /* a step longer than the video: sample 0 only */
    run_clip(asset("cfr.mp4"), 32, 24, 0.4, 0, 0, &slow);
    TU_CHECK(slow.rc == 0 && slow.n == 1 && slow.t[0] == 0 && slow.hash[0] == all.hash[0],
             "cfr at 0.4 fps: %d samples", slow.n);

    /* the same stream without a container: no timestamps, no duration, the same frames at the same times */
    static clip_run raw;
    run_clip(asset("cfr.h264"), 32, 24, 25, 0, 0, &raw);
    TU_CHECK(raw.rc == 0 && raw.n == all.n && raw.duration <= 0 &&
                 !memcmp(raw.t, all.t, sizeof(double) * all.n) &&
                 !memcmp(raw.hash, all.hash, sizeof(uint64_t) * all.n),
             "cfr.h264: %d samples (want %d), duration %g %s", raw.n, all.n, raw.duration, raw.err);

    /* thread counts do not change a pixel */
    run_clip(asset("cfr.mp4"), 32, 24, 25, 1, 0, &one);
    run_clip(asset("cfr.mp4"), 32, 24, 25, 2, 0, &two);
    TU_CHECK(one.n == all.n && two.n == all.n && !memcmp(one.hash, all.hash, sizeof(uint64_t) * all.n) &&
                 !memcmp(two.hash, all.hash, sizeof(uint64_t) * all.n),
             "1, 2 and auto decoder threads give the same frames");
}

/* The numbered clips: frame N is grey 20 + 20 N. */
static int frame_number(const uint8_t *p, int *off)
{
    int n = (int)lround((p[0] - 20) / 20.0);
    *off = abs(p[0] - (20 + 20 * n)) + abs(p[1] - p[0]) + abs(p[2] - p[0]);
    return n;
}

static void test_vfr(void)
{
    AVStream *st;
    AVFormatContext *fmt = probe("vfr.mp4", &st);
    TU_CHECK(fmt != NULL, "vfr.mp4: cannot probe");
    if (fmt) { /* the clip really is variable rate: the third frame lasts 100 ms, the ninth 340 ms */
        TU_CHECK(st->time_base.num == 1 && st->time_base.den == 1000, "vfr.mp4: time base %d/%d",
                 st->time_base.num, st->time_base.den);
        avformat_close_input(&fmt);
    }
    static const double rates[] = {10, 7, 33, 2.5};
    for (int r = 0; r < 4; r++) {
        static clip_run c;
        double fps = rates[r], eps = fmin(1e-3, 0.1 / fps);
        run_clip(asset("vfr.mp4"), 16, 12, fps, 0, 1, &c);
        int want_n = 0;
        while (want_n == 0 || want_n / fps + eps < 1.62 + 0.1)
            want_n++;
        TU_CHECK(c.rc == 0 && c.n == want_n, "vfr at %g fps: %d samples, want %d (%s)", fps, c.n, want_n,
                 c.err);
        int seen[10] = {0};
        for (int k = 0; k < c.n && c.frames; k++) {
            double t = k / fps;
            int want = 0;
            for (int i = 0; i < 10; i++)
                if (0.02 * i * i <= t + eps) want = i;
            int off, got = frame_number(px(&c, 16, 12, k, 8, 6), &off);
            TU_CHECK(got == want && off <= 6 && c.t[k] == t,
                     "vfr at %g fps: sample %d (%.3f s) shows frame %d, want %d", fps, k, c.t[k], got, want);
            if (got >= 0 && got < 10) seen[got]++;
        }
        if (fps ==
            10) /* frame 1 (0.02 s) is never on screen at a tenth of a second; frame 3 twice; 8 four times */
            TU_CHECK(seen[1] == 0 && seen[3] == 2 && seen[5] == 3 && seen[8] == 4,
                     "vfr at 10 fps: repeats %d %d %d %d", seen[1], seen[3], seen[5], seen[8]);
        run_free(&c);
    }
}

static void test_offset(void)
{
    AVStream *st;
    AVFormatContext *fmt = probe("offset.ts", &st);
    TU_CHECK(fmt != NULL, "offset.ts: cannot probe");
    if (fmt) {
        double start = st->start_time * av_q2d(st->time_base);
        TU_CHECK(start > 5.0, "offset.ts: the stream starts at %g s (the test needs a late start)", start);
        avformat_close_input(&fmt);
    }
    static const double rates[] = {10, 4};
    for (int r = 0; r < 2; r++) {
        static clip_run c;
        run_clip(asset("offset.ts"), 16, 12, rates[r], 0, 1, &c);
        int want_n = rates[r] == 10 ? 10 : 4;
        TU_CHECK(c.rc == 0 && c.n == want_n && c.n_corrupt == 0, "offset.ts at %g fps: %d samples (%s)",
                 rates[r], c.n, c.err);
        TU_CHECK(fabs(c.duration - 1.0) < 0.05, "offset.ts: duration %g", c.duration);
        for (int k = 0; k < c.n && c.frames; k++) {
            int off, got = frame_number(px(&c, 16, 12, k, 8, 6), &off),
                     want = (int)floor(k / rates[r] * 10 + 1e-6);
            TU_CHECK(got == want && off <= 6,
                     "offset.ts at %g fps: sample %d (%.3f s) shows frame %d, want %d", rates[r], k, c.t[k],
                     got, want);
        }
        TU_CHECK(c.n > 0 && c.t[0] == 0, "offset.ts: first sample at 0");
        run_free(&c);
    }
}

static int is_red(const uint8_t *p)
{
    return p[0] > 200 && p[1] < 60 && p[2] < 60;
}

static int is_blue(const uint8_t *p)
{
    return p[0] < 60 && p[1] < 60 && p[2] > 200;
}

static void test_rotation(void)
{
    /* FFmpeg 5.1's rotate=N writes N degrees counter-clockwise (make_clips.sh): the stored top-left red block
     * (16x8 of a 64x32 frame) is shown at bottom-left (90), bottom-right (180), top-right (270) */
    static const struct {
        const char *clip;
        double angle; /* av_display_rotation_get of the clip's matrix */
        int w, h, red_x, red_y;
    } cases[] = {{"rot90.mp4", 90, 32, 64, 0, 63},
                 {"rot180.mp4", 180, 64, 32, 63, 31},
                 {"rot270.mp4", -90, 32, 64, 31, 0}};
    for (int i = 0; i < 3; i++) {
        AVStream *st;
        AVFormatContext *fmt = probe(cases[i].clip, &st);
        const int32_t *m =
            fmt ? (const int32_t *)av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL) : NULL;
        double a = m ? av_display_rotation_get(m) : 0;
        TU_CHECK(m && fabs(fabs(a) - fabs(cases[i].angle)) < 0.5, "%s: display matrix of %g degrees",
                 cases[i].clip, a);
        avformat_close_input(&fmt);

        static clip_run c;
        int w = cases[i].w, h = cases[i].h;
        run_clip(asset(cases[i].clip), w, h, 10, 0, 1, &c);
        TU_CHECK(c.rc == 0 && c.n == 3 && c.src_w == w && c.src_h == h,
                 "%s: %d samples, source %dx%d (want %dx%d) %s", cases[i].clip, c.n, c.src_w, c.src_h, w, h,
                 c.err);
        if (!c.frames || c.n < 1) continue;
        int rx = cases[i].red_x, ry = cases[i].red_y;
        int corners[4][2] = {{0, 0}, {w - 1, 0}, {0, h - 1}, {w - 1, h - 1}};
        for (int j = 0; j < 4; j++) {
            const uint8_t *p = px(&c, w, h, 0, corners[j][0], corners[j][1]);
            int red_here = corners[j][0] == rx && corners[j][1] == ry;
            TU_CHECK(red_here ? is_red(p) : is_blue(p), "%s: corner (%d,%d) is %d,%d,%d, want %s",
                     cases[i].clip, corners[j][0], corners[j][1], p[0], p[1], p[2],
                     red_here ? "red" : "blue");
        }
        /* the block keeps its shape: 8 wide and 16 tall once turned by a right angle */
        int bw = 0, bh = 0;
        for (int x = 0; x < w; x++)
            bw += is_red(px(&c, w, h, 0, x, ry));
        for (int y = 0; y < h; y++)
            bh += is_red(px(&c, w, h, 0, rx, y));
        int want_w = (i == 1) ? 16 : 8, want_h = (i == 1) ? 8 : 16;
        TU_CHECK(abs(bw - want_w) <= 1 && abs(bh - want_h) <= 1, "%s: red block %dx%d, want %dx%d",
                 cases[i].clip, bw, bh, want_w, want_h);
        run_free(&c);
    }
}

static void test_colour(void)
{
    /* smptebars' 75% bars: white, yellow, cyan, green, magenta, red, blue */
    static const uint8_t bars[7][3] = {{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0},
                                       {191, 0, 191},   {191, 0, 0},   {0, 0, 191}};
    static const struct {
        const char *clip;
        int format, space, range;
    } cases[] = {{"bars10.mp4", AV_PIX_FMT_YUV420P10LE, AVCOL_SPC_BT709, AVCOL_RANGE_MPEG},
                 {"bars444.mp4", AV_PIX_FMT_YUVJ444P, AVCOL_SPC_SMPTE170M, AVCOL_RANGE_JPEG}};
    for (int i = 0; i < 2; i++) {
        AVStream *st;
        AVFormatContext *fmt = probe(cases[i].clip, &st);
        TU_CHECK(fmt && st->codecpar->format == cases[i].format &&
                     (int)st->codecpar->color_space == cases[i].space &&
                     (int)st->codecpar->color_range == cases[i].range,
                 "%s: not the pixel format, matrix and range the test is about", cases[i].clip);
        avformat_close_input(&fmt);
        static clip_run c;
        run_clip(asset(cases[i].clip), 112, 64, 10, 0, 1, &c);
        TU_CHECK(c.rc == 0 && c.n == 3, "%s: %d samples %s", cases[i].clip, c.n, c.err);
        if (!c.frames || c.n < 1) continue;
        for (int b = 0; b < 7; b++) {
            const uint8_t *p = px(&c, 112, 64, 0, 16 * b + 8, 16);
            int d = 0;
            for (int ch = 0; ch < 3; ch++)
                if (abs(p[ch] - bars[b][ch]) > d) d = abs(p[ch] - bars[b][ch]);
            TU_CHECK(d <= 4, "%s: bar %d is %d,%d,%d, want %d,%d,%d", cases[i].clip, b, p[0], p[1], p[2],
                     bars[b][0], bars[b][1], bars[b][2]);
        }
        run_free(&c);
    }
}

/* ---- bad input ---- */

static void expect_open_error(const char *path, const vid_params *p, int code, const char *fragment)
{
    vid_reader *r = (vid_reader *)&r; /* must come back NULL */
    char err[512] = "untouched";
    int rc = vid_open(path, p, &r, err, sizeof err);
    size_t plen = strlen(path);
    TU_CHECK(rc == code && r == NULL, "%s: status %d (want %d), message \"%s\"", path, rc, code, err);
    TU_CHECK(strstr(err, fragment) != NULL, "%s: message \"%s\" lacks \"%s\"", path, err, fragment);
    TU_CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':' && !strchr(err, '\n'),
             "%s: message \"%s\" is not one line naming the file", path, err);
    if (rc == 0) vid_close(r);
}

static void test_bad_inputs(void)
{
    vid_params p = vid_default_params();
    p.width = p.height = 32;
    static const struct {
        const char *name, *fragment;
        int code;
    } cases[] = {
        {"does-not-exist.mp4", "cannot open: No such file or directory", VC_ERR_IO},
        {"empty.mp4", "empty file (0 bytes)", VC_ERR_FORMAT},
        {"not-a-video.mp4", "not a video file (no known container format)", VC_ERR_FORMAT},
        {"truncated-nomoov.mp4", "corrupt or truncated mov file", VC_ERR_FORMAT},
        {"audio.m4a", "no video stream (audio only)", VC_ERR_UNSUPPORTED},
        {"cover.mp3", "no video stream (only a cover picture)", VC_ERR_UNSUPPORTED},
        {"zero-streams.mp4", "no video stream (the file has no streams)", VC_ERR_UNSUPPORTED},
        {"zero-frames.y4m", "no video frames", VC_ERR_FORMAT},
        {"huge-side.y4m", "video too large (16385x16;", VC_ERR_UNSUPPORTED},
        {"huge-area.y4m", "video too large (9000x9000;", VC_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_open_error(asset(cases[i].name), &p, cases[i].code, cases[i].fragment);
    expect_open_error(assets, &p, VC_ERR_IO, "is a directory");

    static const struct {
        int w, h;
        double fps;
        int threads;
        const char *fragment;
    } params[] = {{0, 32, 2, 0, "invalid output size 0x32"},
                  {16385, 1, 2, 0, "invalid output size 16385x1"},
                  {9000, 9000, 2, 0, "invalid output size 9000x9000"},
                  {32, 32, 0, 0, "invalid sampling rate"},
                  {32, 32, -1, 0, "invalid sampling rate"},
                  {32, 32, NAN, 0, "invalid sampling rate"},
                  {32, 32, 1001, 0, "invalid sampling rate"},
                  {32, 32, 2, -1, "invalid decoder thread count"}};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        vid_params q = vid_default_params();
        q.width = params[i].w;
        q.height = params[i].h;
        q.fps = params[i].fps;
        q.n_threads = params[i].threads;
        expect_open_error(asset("cfr.mp4"), &q, VC_ERR_ARG, params[i].fragment);
    }
    char err[256];
    TU_CHECK(vid_open(asset("cfr.mp4"), &p, NULL, err, sizeof err) == VC_ERR_ARG, "NULL reader pointer");
    vid_reader *r = NULL;
    TU_CHECK(vid_open(asset("cfr.mp4"), NULL, &r, err, sizeof err) == VC_ERR_ARG && !r, "NULL params");
    if (vid_open(asset("cfr.mp4"), &p, &r, err, sizeof err) == 0) {
        double t;
        TU_CHECK(vid_read(r, NULL, &t, err, sizeof err) == VC_ERR_ARG, "NULL frame buffer");
        vid_close(r);
    }
    vid_close(NULL);
    TU_CHECK(vid_duration(NULL) <= 0 && vid_n_corrupt(NULL) == 0 && vid_source_width(NULL) == 0,
             "accessors accept NULL");
    vid_params d = vid_default_params();
    TU_CHECK(d.width == 224 && d.height == 224 && d.fps == 2.0 && d.n_threads == 0, "default params");
}

/* ---- damaged files ---- */

static void test_damaged(void)
{
    static clip_run c;
    run_clip(asset("truncated.mp4"), 32, 24, 25, 0, 0, &c);
    /* cut in the middle of packet 20 of 50: about 20 frames, then a normal end, not the header's 2 s */
    TU_CHECK(c.rc == 0 && c.n >= 15 && c.n <= 30 && c.n_corrupt >= 1,
             "truncated.mp4: %d samples, %d corrupt, status %d %s", c.n, c.n_corrupt, c.rc, c.err);
    TU_CHECK(fabs(c.duration - 2.0) < 1e-9, "truncated.mp4: the header still says 2 s (%g)", c.duration);
    run_clip(asset("corrupt.mp4"), 32, 24, 25, 0, 0, &c);
    TU_CHECK(c.rc == 0 && c.n == 50 && c.n_corrupt >= 1, "corrupt.mp4: %d samples, %d corrupt, status %d %s",
             c.n, c.n_corrupt, c.rc, c.err);
    static clip_run good;
    run_clip(asset("cfr.mp4"), 32, 24, 25, 0, 0, &good);
    /* packet 10 in decode order: the first 8 frames in display order come before it (x264 reorders by at
     * most 2), later ones are damaged */
    TU_CHECK(good.n == 50 && !memcmp(good.hash, c.hash, 8 * sizeof(uint64_t)) &&
                 memcmp(good.hash, c.hash, 50 * sizeof(uint64_t)),
             "corrupt.mp4: the frames before the damage are intact, later ones are not");
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n > 0 ? malloc((size_t)n) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = b ? (size_t)n : 0;
    return b;
}

/* A damaged copy opens with a one-line error naming it, or plays to a normal end. */
static void damaged_copy(const char *tmp, const uint8_t *data, size_t len, const char *what)
{
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        TU_CHECK(0, "%s: cannot write %s", what, tmp);
        if (f) fclose(f);
        return;
    }
    fclose(f);
    static clip_run c;
    run_clip(tmp, 16, 12, 10, 0, 0, &c);
    size_t plen = strlen(tmp);
    if (c.n == 0)
        TU_CHECK(c.rc < 0 && strncmp(c.err, tmp, plen) == 0 && c.err[plen] == ':' && !strchr(c.err, '\n'),
                 "%s: status %d, message \"%s\"", what, c.rc, c.err);
    else
        TU_CHECK(c.rc == 0 && c.n <= 40, "%s: %d samples, status %d %s", what, c.n, c.rc, c.err);
}

static void test_prefixes_and_corruption(void)
{
    char dir[] = "/tmp/test_video.XXXXXX";
    if (!mkdtemp(dir)) {
        TU_CHECK(0, "mkdtemp failed");
        return;
    }
    static const struct {
        const char *clip, *ext;
        size_t step;
    } clips[] = {{"offset.ts", "ts", 397}, {"vfr.mp4", "mp4", 61}, {"truncated.mp4", "mp4", 149}};
    int n_runs = 0;
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *data = slurp(asset(clips[i].clip), &len);
        TU_CHECK(data != NULL, "cannot read %s", clips[i].clip);
        if (!data) continue;
        char tmp[64], what[128];
        snprintf(tmp, sizeof tmp, "%s/copy.%s", dir, clips[i].ext);
        for (size_t n = 1; n < len; n += clips[i].step, n_runs++) {
            snprintf(what, sizeof what, "%s cut to %zu bytes", clips[i].clip, n);
            damaged_copy(tmp, data, n, what);
        }
        tu_seed(7 + i);
        uint8_t *bad = malloc(len);
        for (int j = 0; j < 25; j++, n_runs++) {
            memcpy(bad, data, len);
            size_t at = (size_t)(rnd01() * (len - 8));
            for (int b = 0; b < 8; b++)
                bad[at + b] ^= (uint8_t)(1 + rnd01() * 254);
            snprintf(what, sizeof what, "%s with 8 bytes scrambled at %zu", clips[i].clip, at);
            damaged_copy(tmp, bad, len, what);
        }
        free(bad);
        free(data);
        unlink(tmp);
    }
    rmdir(dir);
    TU_CHECK(n_runs > 100, "%d damaged copies", n_runs);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_video ASSETS_DIR [--write-golden]\n");
        return 2;
    }
    assets = argv[1];
    /* libav* report every damaged packet they meet; the checks below say what matters */
    av_log_set_level(getenv("VIDCAP_TEST_VERBOSE") ? AV_LOG_INFO : AV_LOG_QUIET);
    if (argc > 2 && strcmp(argv[2], "--write-golden") == 0) {
        char *lines = golden_lines();
        printf(
            "# test_video golden: clip WxH fps k t_sec FNV-1a-64(RGB24 frame), then the sample count and "
            "the\n"
            "# final vid_read status. Debian 12 FFmpeg 5.1; rewrite with test_video DIR --write-golden.\n%s",
            lines);
        free(lines);
        return 0;
    }
    test_sampler();
    test_clock();
    test_orient();
    test_cfr();
    test_vfr();
    test_offset();
    test_rotation();
    test_colour();
    test_bad_inputs();
    test_damaged();
    test_golden();
    test_prefixes_and_corruption();
    return tu_finish("test_video");
}
