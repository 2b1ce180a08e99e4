/* Video files to RGB frames sampled by presentation time: libavformat demuxes, libavcodec decodes the best
 * video stream, libswscale converts each sampled frame to RGB24 at the model's input size.
 *
 * Stream. av_find_best_stream picks the video stream; a cover picture (attached-pic disposition) is not a
 * video, and every other stream is discarded, so audio is never decoded. Decoder threads: n_threads, 0 =
 * libavcodec's auto; frame and slice threading. Only local files are opened ("file:" protocol, and only
 * it, so a playlist or concat script cannot reach the network or other protocols).
 *
 * Time. A frame's time is its best-effort pts in the stream's time base, minus the stream's start_time
 * (or the first frame's pts when the stream has none), in seconds. A frame without a timestamp, or whose
 * timestamp jumps more than VID_MAX_TS_JUMP_SEC (600 s) ahead of the previous frame (counted as corrupt),
 * is placed one frame interval after the previous one. The frame interval is 1 / the stream's average
 * frame rate, else 1 / its r_frame_rate, else 1 / fps. Timestamps that go backwards (MPEG-TS
 * discontinuities) are taken as they are: the sampler holds the latest frame until time catches up.
 *
 * Sampling. Sample k is at t_k = k / fps and is the frame on screen at t_k: the last decoded frame whose
 * time is <= t_k + eps, with eps one tick of the time base (at least 1e-6 s, at most a tenth of the
 * sampling step) so that timestamps rounded to ticks still land on their sample. It is reported with
 * t_sec = t_k, never with the frame's own time. Samples before the first frame show the first frame.
 * Samples continue while t_k + eps < the end of the last frame (its time plus its duration, or plus one
 * frame interval when the duration is unknown); a video shorter than one step still yields sample 0.
 * Variable frame rate falls out of this: frames repeat or are skipped as their timestamps say. Only
 * sampled frames are converted, each once however often it repeats.
 *
 * Pixels. libswscale, bicubic, accurate rounding, bit-exact, full chroma interpolation: the RGB is
 * reproducible across machines for one FFmpeg version. The source's matrix (BT.601, BT.709, SMPTE 240M,
 * BT.2020, FCC) and range (limited, full; yuvj formats are full) are honoured; unspecified means BT.601
 * limited, like libswscale and the ffmpeg CLI. Any bit depth and chroma layout libswscale reads (8- and
 * 10-bit, 4:2:0, 4:2:2, 4:4:4, RGB, grey). The frame is stretched to width x height; the sample aspect
 * ratio is not applied.
 *
 * Orientation. A display matrix (stream side data) of 90, 180 or 270 degrees, with or without a flip, is
 * applied so the output is upright as a player shows it: the frame is scaled to the pre-rotation size
 * (height x width for 90 and 270) and the RGB is then turned. Other angles are ignored.
 *
 * Bad input. Every failure is a negative VC_ERR_* and one line "path: reason" in err: missing or
 * unreadable file (VC_ERR_IO), empty file, unknown or corrupt container, zero decodable frames
 * (VC_ERR_FORMAT), no video stream, no decoder, more than VID_MAX_SIDE pixels on a side or VID_MAX_PIXELS
 * in all (refused from the stream header, before the decoder is opened; frames that grow past it later are
 * dropped as corrupt), unsupported pixel format (VC_ERR_UNSUPPORTED). vid_open decodes the first frame, so a
 * file it accepts has at least one. A damaged file is decoded as far as it goes: packets the demuxer marks
 * damaged or the decoder rejects, decoder errors, frames the decoder flags as concealed and rejected
 * timestamps are counted in vid_n_corrupt (one damage can count twice: a cut packet the demuxer flags and
 * the decoder then fails; FFmpeg 5.1's H.264 decoder conceals a damaged slice without flagging the frame,
 * so that case is not counted), and the video ends normally where the data ends. A read error ends the
 * stream like end of file (as the ffmpeg CLI does), so a broken file cannot loop. libav* log their own
 * diagnostics through av_log; silencing them is the program's choice (av_log_set_level), not this layer's.
 *
 * Memory. Two decoded frames (the one on screen and the next), one scaled and one oriented RGB buffer,
 * allocated at open; nothing per frame beyond what libavcodec allocates and pools. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define VID_MAX_SIDE 16384
#define VID_MAX_PIXELS (1LL << 26)
#define VID_MAX_FPS 1000.0

typedef struct vid_params {
    int width, height; /* output RGB size (the backbone's input size); the frame is stretched to it */
    double fps;        /* sampling rate, samples per second of video time, in (0, VID_MAX_FPS] */
    int n_threads;     /* decoder threads, 0 = libavcodec's auto */
} vid_params;

/* 224 x 224, 2 samples a second (the Masked Transformer's 0.5 s step), automatic threads. */
vid_params vid_default_params(void);

typedef struct vid_reader vid_reader;

/* Opens path and decodes its first frame. On failure *out is NULL. */
int vid_open(const char *path, const vid_params *p, vid_reader **out, char *err, size_t errlen);
/* Next sample: 1 = frame written to rgb (height * width * 3 bytes, RGB24, top row first) with its time
 * t_k in *t_sec; 0 = end of video; < 0 = error (err filled). */
int vid_read(vid_reader *r, uint8_t *rgb, double *t_sec, char *err, size_t errlen);
/* Seconds, from the stream (else the container) header; <= 0 when unknown. */
double vid_duration(const vid_reader *r);
/* Size of the decoded picture as shown, after the display matrix's rotation. */
int vid_source_width(const vid_reader *r);
int vid_source_height(const vid_reader *r);
/* Damaged packets, decoder errors, concealed frames and rejected timestamps so far. */
int vid_n_corrupt(const vid_reader *r);
/* NULL is a no-op. */
void vid_close(vid_reader *r);
