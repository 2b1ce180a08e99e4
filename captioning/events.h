/* Dense-caption events {t0, t1, score, sentence}: the list the captioner fills, time order, merging the
 * events of overlapping windows of a long video, and the writers (stdout lines as whisper-cli prints them,
 * txt, SRT, WebVTT, ActivityNet JSON), each to a FILE* or atomically to a path.
 *
 * Decisions where the brief left room (see the functions for details):
 * - Times are double seconds in the list and become int64 milliseconds once, when written, rounding half
 *   up; values within a few ulps below a half count as a half, so a decimal 4.0005 s (stored as
 *   4.000499999...) gives 4.001 as the user wrote it. Every written event lasts at least 1 ms, in JSON too
 *   (a zero-length segment makes the evaluators' tIoU divide 0 by 0).
 * - Sentences are stored as valid UTF-8 (each invalid byte becomes U+FFFD). The line-based formats (stdout,
 *   txt, SRT, WebVTT) turn control characters other than tab into spaces so an event stays one line; JSON
 *   keeps them, escaped by cJSON. WebVTT escapes & < >, which also turns "-->" into "--&gt;" (a player
 *   shows "-->", the cue parser never sees an arrow). SRT has no escaping and gets the text as is.
 * - Every writer emits events in time order (cap_events_sort_by_time's order) without reordering the list.
 * - ActivityNet JSON carries the video duration as PDVC's own result files do: a "vid_duration" key on
 *   every event (PDVC's visualiser takes the duration from the video file, and results[id] must stay a
 *   list for the evaluators). An unknown duration (<= 0 or not finite) leaves the key out.
 * - Merging judges duplicates against the events dst held before the call (events of one window are never
 *   deduplicated against each other: that window's NMS already decided), see cap_events_merge. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Latest time accepted: ~31.7 years, so every millisecond count stays below 2^53 and exact in a double. */
#define CAP_MAX_SECONDS 1e9
/* Room for "HHHHHH:MM:SS.mmm" and the terminating NUL with margin. */
#define CAP_TIMESTAMP_LEN 32

typedef struct cap_event {
    double t0, t1;  /* seconds from the start of the video, 0 <= t0 <= t1 */
    float score;    /* proposal score (written as ActivityNet's "proposal_score") */
    char *sentence; /* owned by the list; valid UTF-8 */
} cap_event;

/* A growable list that owns its events' sentences. Read ev[0..n) directly; change it through the calls. */
typedef struct cap_events {
    cap_event *ev;
    size_t n, cap;
} cap_events;

cap_events *cap_events_create(void); /* NULL when out of memory */
void cap_events_free(cap_events *list);
void cap_events_clear(cap_events *list); /* drops every event, keeps the capacity */
/* Appends a copy of the event. VC_ERR_ARG when a time is not finite, t0 < 0, t1 < t0, t1 > CAP_MAX_SECONDS,
 * the score is not finite or the sentence is NULL; VC_ERR_NOMEM. The list is unchanged on failure. */
int cap_events_add(cap_events *list, double t0, double t1, float score, const char *sentence, char *err,
                   size_t errlen);
/* t0 ascending, then t1 ascending, then score descending, then sentence bytes (so the order is total). */
void cap_events_sort_by_time(cap_events *list);
/* That order as a comparison: negative, 0 or positive. */
int cap_event_cmp_time(const cap_event *a, const cap_event *b);

/* Temporal IoU of the closed intervals [a0, a1] and [b0, b1] as densecap's segment_iou computes it:
 * intersection clipped at 0 over len_a + len_b - intersection. Two zero-length intervals: 1 when they are
 * the same instant, else 0. */
double cap_tiou(double a0, double a1, double b0, double b1);

/* Merges the events of one more window (src) into dst. A src event whose best match among the events dst
 * held before the call (highest tIoU, the first one on ties) has tIoU >= tiou is a duplicate of that slot:
 * the slot keeps whichever of its current holder and the src event scores higher (ties keep the holder,
 * so dst's event wins a tie). Other src events are appended in src order. tiou must be in (0, 1] and src
 * must not be dst (VC_ERR_ARG). On failure (VC_ERR_NOMEM) dst is unchanged. */
int cap_events_merge(cap_events *dst, const cap_events *src, double tiou, char *err, size_t errlen);

/* ---- time formatting ---- */

/* Seconds to milliseconds, rounding half up (see the header comment); negative or NaN gives 0 and values
 * past CAP_MAX_SECONDS are clamped there. */
int64_t cap_ms_from_seconds(double seconds);
/* "HH:MM:SS<sep>mmm", hours with at least two digits (100:00:00.000 past 99 hours). sep is '.' for
 * stdout and WebVTT, ',' for SRT. Negative ms print as 0. */
void cap_format_timestamp(int64_t ms, char sep, char out[CAP_TIMESTAMP_LEN]);
/* The event's [start, end] as written: both rounded once, end at least start + 1 ms. */
void cap_event_span_ms(const cap_event *e, int64_t *start_ms, int64_t *end_ms);

/* ---- writers ----
 * Each writes to f, flushes it, and returns 0 or VC_ERR_IO with "name: reason" in err (name is what the
 * message calls the stream: a path, or "stdout"). */

/* One event as whisper-cli prints a segment, flushed so a pipe sees it at once:
 * "[00:00:03.500 --> 00:00:07.000]  a red sneaker enters from the left\n". */
int cap_print_event(FILE *f, const char *name, const cap_event *e, char *err, size_t errlen);
/* Every event in cap_print_event's format, in time order (the whole stdout listing at once). */
int cap_write_lines(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen);
/* One sentence per line. */
int cap_write_txt(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen);
/* SubRip: counter from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", the sentence, a blank line. */
int cap_write_srt(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen);
/* WebVTT: "WEBVTT", a blank line, then per event "HH:MM:SS.mmm --> HH:MM:SS.mmm", the escaped sentence,
 * a blank line. */
int cap_write_vtt(FILE *f, const char *name, const cap_events *list, char *err, size_t errlen);

/* One video's result for the ActivityNet JSON. */
typedef struct cap_video_result {
    const char *video_id;     /* the key under "results" (cap_video_id_from_path, or "v_" + it) */
    double duration;          /* seconds; <= 0 or not finite when unknown */
    const cap_events *events; /* NULL is an empty list */
} cap_video_result;

/* {"version": "VERSION 1.0", "results": {id: [{"sentence", "timestamp": [t0, t1], "proposal_score",
 * "vid_duration"}, ...], ...}, "external_data": {"used": true, "details": details}} as densevid_eval and
 * PDVC read it, videos in the given order, events in time order, times in seconds rounded to the ms.
 * details NULL is "". VC_ERR_ARG for a NULL or repeated video id (the JSON object would lose a video). */
int cap_write_anet(FILE *f, const char *name, const cap_video_result *videos, size_t n_videos,
                   const char *details, char *err, size_t errlen);

/* ---- files written atomically ----
 * The content goes to PATH.tmp.XXXXXX (mkstemp, same directory), is flushed and fsynced, gets the mode
 * of the file it replaces (or 0666 minus the umask) and is renamed over PATH. On any failure the temporary
 * file is removed, PATH is left as it was, and err reads "PATH: reason" (e.g.
 * "out/clip.srt: No such file or directory"). */

typedef int (*cap_write_fn)(FILE *f, const char *name, void *ctx, char *err, size_t errlen);
/* Runs fn on the temporary file (name is path, for fn's messages); fn returns 0 or a VC_ERR_*. */
int cap_write_file_atomic(const char *path, cap_write_fn fn, void *ctx, char *err, size_t errlen);
int cap_save_lines(const char *path, const cap_events *list, char *err, size_t errlen);
int cap_save_txt(const char *path, const cap_events *list, char *err, size_t errlen);
int cap_save_srt(const char *path, const cap_events *list, char *err, size_t errlen);
int cap_save_vtt(const char *path, const cap_events *list, char *err, size_t errlen);
int cap_save_anet(const char *path, const cap_video_result *videos, size_t n_videos, const char *details,
                  char *err, size_t errlen);

/* ---- names ---- */

/* The video id for a file path: its stem, i.e. the last path component (trailing slashes ignored) without
 * its last extension, where a leading or final dot starts no extension (as Python's PurePath.stem):
 * "dir/clip.v1.mp4" -> "clip.v1", ".hidden" -> ".hidden", "clip." -> "clip.", "clip" -> "clip",
 * "dir/sub/" -> "sub", "/" -> "". Returns a malloc'd string, NULL only for a NULL path or when out
 * of memory. */
char *cap_video_id_from_path(const char *path);
/* Where an output file goes: with base (-of BASE) BASE + "." + ext; otherwise the input path with its last
 * extension replaced ("dir/clip.mp4" -> "dir/clip.srt", "dir/clip" -> "dir/clip.srt", "dir/sub/" ->
 * "dir/sub.srt"), never "dir/clip.mp4.srt". ext may start with a dot. Returns a malloc'd string, or NULL
 * with a reason in err when ext is empty, the input has no file name ("", "/", ".", ".."), the result
 * would be the input itself (an input "x.srt" asked for "srt"), or memory runs out. */
char *cap_output_path(const char *base, const char *input, const char *ext, char *err, size_t errlen);
