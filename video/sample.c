/* The frame clock and the time-based sampler (see video/sample.h and the rules in video/decode.h). */
#include "video/sample.h"

void vid_clock_init(vid_clock *c, double tick, int has_start, int64_t start, double interval)
{
    c->tick = tick;
    c->has_start = has_start;
    c->start = start;
    c->interval = interval;
    c->n_frames = 0;
    c->prev = 0;
}

double vid_clock_time(vid_clock *c, int has_pts, int64_t pts, int *rejected)
{
    *rejected = 0;
    double t;
    if (has_pts && !c->has_start) {
        c->start = pts;
        c->has_start = 1;
    }
    /* in double: the difference of two arbitrary int64 values can overflow, and beyond 2^53 ticks the
     * lost precision does not matter any more */
    double base = c->n_frames ? c->prev : 0.0;
    if (!has_pts) {
        t = c->n_frames ? c->prev + c->interval : 0.0;
    } else {
        t = ((double)pts - (double)c->start) * c->tick;
        if (t - base > VID_MAX_TS_JUMP_SEC) {
            *rejected = 1;
            t = c->n_frames ? c->prev + c->interval : 0.0;
        }
    }
    c->prev = t;
    c->n_frames++;
    return t;
}

void vid_sampler_init(vid_sampler *s, double fps, double tick)
{
    s->fps = fps;
    s->k = 0;
    double eps = tick > 1e-6 ? tick : 1e-6;
    if (eps > 0.1 / fps) eps = 0.1 / fps;
    s->eps = eps;
}

double vid_sample_time(const vid_sampler *s)
{
    /* from k, never by accumulating 1/fps: no drift over long videos */
    return (double)s->k / s->fps;
}

enum vid_step vid_sampler_next(const vid_sampler *s, const vid_slot *held, const vid_slot *next, int eof)
{
    double t = vid_sample_time(s);
    if (!held->valid) return next->valid ? VID_STEP_ADVANCE : eof ? VID_STEP_END : VID_STEP_DECODE;
    if (next->valid) return next->t <= t + s->eps ? VID_STEP_ADVANCE : VID_STEP_EMIT;
    if (!eof) return VID_STEP_DECODE;
    /* the held frame is the last one: it stays on screen until its end; sample 0 always exists */
    return (s->k == 0 || t + s->eps < held->end) ? VID_STEP_EMIT : VID_STEP_END;
}
