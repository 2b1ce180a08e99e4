/* Dense captioning of a video file: the frame features stream in (pipeline/frame_features.c) and the
 * Masked Transformer runs on overlapping windows of them as soon as each window is complete, so long
 * videos have no length limit and memory holds only the feature rows.
 *
 * Windows. The captioner's window is T steps (its config); windows start every S = T - T/4 steps, so
 * neighbours overlap by a quarter window (10 s for the shipped model, longer than any of its events). A
 * window is run once the rows past its end exist; the last one is aligned to end at the last row. An
 * event of a window that touches the window's left edge (when another window lies before it) or its right
 * edge (when another lies after it) is left to that neighbour, which sees it whole; duplicates in the
 * overlap (tIoU >= 0.5) keep the higher score (cap_events_merge).
 *
 * Final events. Once the window starting at step a has run, no later window can produce an event ending
 * before time(a): events that end there are final. They are handed to the new_event callback in order of
 * start time as soon as every event starting earlier is final too, so stdout shows them in time order
 * while decoding goes on. --max-events caps the events of each window (after NMS), not the whole video. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "captioning/captioner.h"
#include "captioning/events.h"
#include "nn/nn.h"
#include "pipeline/model.h"

#define CAP_DUPLICATE_TIOU 0.5

struct vc_captions {
    cap_events *events; /* final, in time order */
    double duration;
    double t_decode, t_backbone, t_captioner, t_total;
    int n_frames, n_corrupt, n_windows;
};

vc_caption_params vc_caption_default_params(void)
{
    vc_caption_params p = {.min_score = -1.f, .nms_tiou = -1.f, .max_events = -1, .beam = 0};
    return p;
}

typedef struct caption_run {
    const vc_model *m;
    vc_caption_params p;
    cap_params cp;
    cap_state *cs;
    nn_pool *pool;
    cap_proposal *props;
    cap_events *window, *pending, *final;
    int T, S, next_start, windows;
    double final_until; /* every event ending at or before this time is final */
    double t_captioner;
} caption_run;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Moves the pending events that are final to `final`, earliest start first, while every event that
 * starts earlier is final too. */
static int release_final(caption_run *r, double until, char *err, size_t errlen)
{
    cap_events_sort_by_time(r->pending);
    size_t k = 0;
    while (k < r->pending->n && r->pending->ev[k].t1 <= until)
        k++;
    for (size_t i = 0; i < k; i++) {
        const cap_event *e = &r->pending->ev[i];
        int rc = cap_events_add(r->final, e->t0, e->t1, e->score, e->sentence, err, errlen);
        if (rc) return rc;
        if (r->p.new_event) r->p.new_event(e->t0, e->t1, e->score, e->sentence, r->p.user_data);
    }
    /* keep the rest: rebuild pending without the released prefix */
    cap_events *rest = cap_events_create();
    if (!rest) return VC_ERR_NOMEM;
    for (size_t i = k; i < r->pending->n; i++) {
        const cap_event *e = &r->pending->ev[i];
        int rc = cap_events_add(rest, e->t0, e->t1, e->score, e->sentence, err, errlen);
        if (rc) {
            cap_events_free(rest);
            return rc;
        }
    }
    cap_events_free(r->pending);
    r->pending = rest;
    return 0;
}

/* Runs the window [a, a + Lw) of the feature rows. */
static int run_window(caption_run *r, const vc_features *f, int a, int Lw, int last, char *err, size_t errlen)
{
    const double t0 = now();
    const int dim = vc_features_dim(f);
    const float *times = vc_features_times(f) + a;
    int n = 0, rc;
    char why[512];
    rc = cap_run_window(r->cs, r->pool, vc_features_data(f) + (size_t)a * dim, times, Lw,
                        vc_features_duration(f), &r->cp, r->props, &n, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    cap_events_clear(r->window);
    for (int i = 0; i < n; i++) {
        const cap_proposal *q = &r->props[i];
        if ((a > 0 && q->w_start == 0) || (!last && q->w_end >= Lw)) continue; /* a neighbour sees it whole */
        double e0 = q->t0, e1 = q->t1; /* clipped to the video's duration by the captioner */
        if (e0 > e1) e0 = e1;
        if (e1 <= r->final_until) continue; /* that stretch is settled */
        if ((rc = cap_events_add(r->window, e0, e1, q->score, q->sentence, err, errlen))) return rc;
    }
    if ((rc = cap_events_merge(r->pending, r->window, CAP_DUPLICATE_TIOU, err, errlen))) return rc;
    r->windows++;
    r->t_captioner += now() - t0;
    if (!last) {
        r->final_until = vc_features_times(f)[a + r->S];
        return release_final(r, r->final_until, err, errlen);
    }
    return release_final(r, INFINITY, err, errlen);
}

static int on_rows(const vc_features *f, int last, void *user, char *err, size_t errlen)
{
    caption_run *r = user;
    const int L = vc_features_n(f);
    int rc;
    /* a window runs as non-final only when a row past its end exists */
    while (L > r->next_start + r->T) {
        if ((rc = run_window(r, f, r->next_start, r->T, 0, err, errlen))) return rc;
        r->next_start += r->S;
    }
    if (!last) return 0;
    const int a = L > r->T ? L - r->T : 0;
    return run_window(r, f, a, L - a, 1, err, errlen);
}

static void on_progress(double t, double duration, void *user)
{
    const caption_run *r = user;
    r->p.progress(t, duration, r->p.user_data);
}

static void run_free(caption_run *r)
{
    cap_state_free(r->cs);
    nn_pool_free(r->pool);
    free(r->props);
    cap_events_free(r->window);
    cap_events_free(r->pending);
    cap_events_free(r->final);
}

int vc_caption_file(const vc_model *m, const char *path, vc_caption_params p, vc_captions **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (!m->captioner) {
        snprintf(err, errlen, "%s: the model has no captioner (a bundle with \"captioner.\" is needed)",
                 path);
        return VC_ERR_MODEL;
    }
    const double t_start = now();
    caption_run r = {.m = m, .p = p};
    r.cp = cap_model_default_params(m->captioner);
    if (p.min_score >= 0.f) r.cp.min_score = p.min_score;
    if (p.nms_tiou >= 0.f) r.cp.nms_tiou = p.nms_tiou;
    if (p.max_events >= 0) r.cp.max_events = p.max_events;
    if (p.beam > 0) r.cp.beam = p.beam;
    r.T = cap_model_window(m->captioner);
    r.S = r.T - r.T / 4;
    r.final_until = -INFINITY;
    vc_captions *c = calloc(1, sizeof(*c));
    vc_features *f = NULL;
    int rc = VC_ERR_NOMEM;
    r.cs = cap_state_create(m->captioner);
    r.pool = nn_pool_create(vc_default_threads(m->params.n_threads));
    r.props = malloc((size_t)(r.cp.max_events > 0 ? r.cp.max_events : 1) * sizeof(cap_proposal));
    r.window = cap_events_create();
    r.pending = cap_events_create();
    r.final = cap_events_create();
    if (!c || !r.cs || !r.pool || !r.props || !r.window || !r.pending || !r.final) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto end;
    }
    vc_features_params fp = vc_features_default_params();
    fp.fps = p.fps > 0.f ? p.fps : (float)cap_model_fps(m->captioner);
    fp.keep = p.keep;
    if (p.progress) fp.progress = on_progress;
    fp.on_rows = on_rows;
    fp.user_data = &r;
    char why[1024];
    if ((rc = vc_video_features(m, path, fp, &f, why, sizeof(why)))) {
        /* errors from the captioner come without the file name */
        if (strncmp(why, path, strlen(path)) == 0)
            snprintf(err, errlen, "%s", why);
        else
            snprintf(err, errlen, "%s: %s", path, why);
        goto end;
    }
    c->events = r.final;
    r.final = NULL;
    c->duration = vc_features_duration(f);
    c->n_frames = vc_features_n(f);
    c->n_corrupt = vc_features_n_corrupt(f);
    c->n_windows = r.windows;
    double total;
    vc_features_timings(f, &c->t_decode, &c->t_backbone, &total);
    c->t_captioner = r.t_captioner;
    c->t_total = now() - t_start;
    *out = c;
    c = NULL;
    rc = 0;
end:
    vc_features_free(f);
    run_free(&r);
    vc_captions_free(c);
    return rc;
}

void vc_captions_free(vc_captions *c)
{
    if (!c) return;
    cap_events_free(c->events);
    free(c);
}

int vc_captions_n(const vc_captions *c)
{
    return (int)c->events->n;
}

void vc_captions_event(const vc_captions *c, int i, double *t0, double *t1, float *score,
                       const char **sentence)
{
    const cap_event *e = &c->events->ev[i];
    *t0 = e->t0, *t1 = e->t1, *score = e->score, *sentence = e->sentence;
}

double vc_captions_duration(const vc_captions *c)
{
    return c->duration;
}

int vc_captions_n_corrupt(const vc_captions *c)
{
    return c->n_corrupt;
}

void vc_captions_timings(const vc_captions *c, double *decode, double *backbone, double *captioner,
                         double *total)
{
    *decode = c->t_decode, *backbone = c->t_backbone, *captioner = c->t_captioner, *total = c->t_total;
}

int vc_captions_save(const vc_captions *c, const char *path, enum vc_caption_format fmt, const char *video_id,
                     char *err, size_t errlen)
{
    switch (fmt) {
    case VC_CAPTIONS_TXT:
        return cap_save_txt(path, c->events, err, errlen);
    case VC_CAPTIONS_SRT:
        return cap_save_srt(path, c->events, err, errlen);
    case VC_CAPTIONS_VTT:
        return cap_save_vtt(path, c->events, err, errlen);
    case VC_CAPTIONS_JSON: {
        const cap_video_result v = {video_id, c->duration, c->events};
        return cap_save_anet(path, &v, 1, "frame features: vidcap's NesT frame encoder", err, errlen);
    }
    }
    snprintf(err, errlen, "%s: unknown caption format", path);
    return VC_ERR_ARG;
}
