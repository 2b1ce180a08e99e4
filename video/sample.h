/* Time-based frame sampling, kept free of libav* so it can be driven by synthetic timestamps in tests:
 * the frame clock (stream ticks to seconds since the stream's start) and the sampler that picks, for each
 * sample time k / fps, the frame on screen at that time. The rules are spelled out in video/decode.h. */
#pragma once
#include <stdint.h>

/* A timestamp that jumps forward by more than this from the previous frame (or from 0 for the first
 * frame) is taken as corrupt: a damaged pts would otherwise turn into hours of repeated samples. */
#define VID_MAX_TS_JUMP_SEC 600.0

/* Stream ticks to seconds relative to the stream's start. */
typedef struct vid_clock {
    double tick;     /* seconds per tick (the stream's time base) */
    int64_t start;   /* ticks; meaningful when has_start */
    int has_start;   /* 0: the first timestamped frame defines the start */
    double interval; /* nominal frame interval in seconds, > 0: fills missing or rejected timestamps */
    int n_frames;    /* frames timed so far */
    double prev;     /* time of the previous frame */
} vid_clock;

/* has_start = 0 when the container gives no start time. interval must be > 0. */
void vid_clock_init(vid_clock *c, double tick, int has_start, int64_t start, double interval);
/* Seconds for a frame with best-effort timestamp pts (has_pts = 0 when the frame has none). A missing
 * timestamp, or one that jumps more than VID_MAX_TS_JUMP_SEC ahead, becomes the previous time plus one
 * interval; *rejected is set to 1 in the second case (0 otherwise). */
double vid_clock_time(vid_clock *c, int has_pts, int64_t pts, int *rejected);

/* One frame as the sampler sees it. */
typedef struct vid_slot {
    int valid;
    double t;   /* start of display, seconds */
    double end; /* end of display, seconds, > t; only used for the last frame */
} vid_slot;

typedef struct vid_sampler {
    double fps;
    double eps; /* a frame starting within eps after a sample time counts as on screen at that time */
    int64_t k;  /* index of the next sample */
} vid_sampler;

/* What the reader does next. */
enum vid_step {
    VID_STEP_EMIT,    /* sample k is the held frame: output it at vid_sample_time, then k++ */
    VID_STEP_ADVANCE, /* the next frame is already on screen at sample k: it becomes the held frame */
    VID_STEP_DECODE,  /* no next frame yet: decode one (or learn the stream has ended) */
    VID_STEP_END,     /* no more samples */
};

/* tick: the stream's time base in seconds, used for the epsilon (one tick, at least 1e-6 s, at most a
 * tenth of the sampling step): timestamps are rounded to ticks, sample times are not. */
void vid_sampler_init(vid_sampler *s, double fps, double tick);
double vid_sample_time(const vid_sampler *s);
/* held: the frame on screen so far (the first frame until a later one starts); next: a decoded frame not
 * yet shown; eof: the decoder has no more frames. Every answer but DECODE and ADVANCE either emits or
 * ends, and ADVANCE/DECODE consume a frame, so a finite stream always ends. */
enum vid_step vid_sampler_next(const vid_sampler *s, const vid_slot *held, const vid_slot *next, int eof);
