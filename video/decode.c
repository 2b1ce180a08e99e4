/* The video reader (see video/decode.h): opening and validating a file, the demux and decode loop with its
 * damage accounting, and vid_read, which lets the time-based sampler (video/sample.c) choose the frames
 * that video/convert.c turns into RGB. */
#include "video/decode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>

#include "vidcap.h"
#include "video/convert.h"
#include "video/sample.h"

/* receive_frame errors in a row with no new input in between: a decoder in that state is not going to
 * recover, and without a bound it could keep the loop busy forever */
#define VID_MAX_DECODE_ERRORS_IN_A_ROW 64
#define VID_PROBE_BYTES 4096

struct vid_reader {
    char *path;
    vid_params p;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVStream *st;
    AVPacket *pkt;
    AVFrame *held, *next; /* the frame on screen at the next sample, and the decoded one after it */
    vid_slot held_slot, next_slot;
    int input_done; /* the demuxer has ended and the decoder was sent the flush packet */
    int eof;        /* the decoder has no more frames */
    vid_clock clock;
    vid_sampler sampler;
    vid_orient orient;
    vid_scaler scaler;
    int pre_w, pre_h; /* output size before orientation */
    uint8_t *scaled;  /* pre_h rows of scaled_stride bytes, libswscale's destination */
    int scaled_stride;
    uint8_t *rgb; /* the held frame converted and oriented, width * height * 3; valid when rgb_valid */
    int rgb_valid;
    int src_w, src_h;
    int n_corrupt;
    int bad_format;   /* pixel format of the last frame dropped because libswscale cannot read it, or -1 */
    int big_w, big_h; /* size of the last frame dropped for being too large */
    double duration;
};

static int vid_fail(int code, char *err, size_t errlen, const char *who, const char *fmt, ...)
{
    if (!err || !errlen) return code;
    int n = snprintf(err, errlen, "%s: ", who ? who : "(null)");
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* file names and libav* texts may carry control characters; the message must stay one line */
    for (char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return code;
}

static const char *av_text(int averr, char *buf, size_t len)
{
    if (av_strerror(averr, buf, len) < 0) snprintf(buf, len, "libav error %d", averr);
    return buf;
}

vid_params vid_default_params(void)
{
    return (vid_params){.width = 224, .height = 224, .fps = 2.0, .n_threads = 0};
}

static int too_large(long long w, long long h)
{
    return w > VID_MAX_SIDE || h > VID_MAX_SIDE || w * h > VID_MAX_PIXELS;
}

static int check_params(const char *path, const vid_params *p, char *err, size_t errlen)
{
    if (p->width < 1 || p->height < 1 || too_large(p->width, p->height))
        return vid_fail(VC_ERR_ARG, err, errlen, path,
                        "invalid output size %dx%d (1 to %d a side, at most %lld pixels)", p->width,
                        p->height, VID_MAX_SIDE, (long long)VID_MAX_PIXELS);
    if (!(p->fps > 0 && p->fps <= VID_MAX_FPS))
        return vid_fail(VC_ERR_ARG, err, errlen, path, "invalid sampling rate %g fps (must be in (0, %g])",
                        p->fps, VID_MAX_FPS);
    if (p->n_threads < 0 || p->n_threads > 256)
        return vid_fail(VC_ERR_ARG, err, errlen, path, "invalid decoder thread count %d (0 to 256)",
                        p->n_threads);
    return 0;
}

/* The file itself, before libavformat sees it: clear messages for the common mistakes, and the first bytes
 * for telling "not a video" from "a damaged video" should the demuxer refuse it. */
static int check_file(const char *path, uint8_t *head, size_t *head_len, char *err, size_t errlen)
{
    struct stat sb;
    char why[128];
    if (stat(path, &sb) != 0) {
        int e = errno;
        if (strerror_r(e, why, sizeof why) != 0) snprintf(why, sizeof why, "error %d", e);
        return vid_fail(VC_ERR_IO, err, errlen, path, "cannot open: %s", why);
    }
    if (S_ISDIR(sb.st_mode)) return vid_fail(VC_ERR_IO, err, errlen, path, "cannot open: is a directory");
    if (S_ISREG(sb.st_mode) && sb.st_size == 0)
        return vid_fail(VC_ERR_FORMAT, err, errlen, path, "empty file (0 bytes)");
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (strerror_r(e, why, sizeof why) != 0) snprintf(why, sizeof why, "error %d", e);
        return vid_fail(VC_ERR_IO, err, errlen, path, "cannot open: %s", why);
    }
    *head_len = fread(head, 1, VID_PROBE_BYTES, f);
    fclose(f);
    return 0;
}

/* avformat_open_input refused the file: say whether any demuxer recognises its first bytes at all. */
static int open_failure(const char *path, int averr, const uint8_t *head, size_t head_len, char *err,
                        size_t errlen)
{
    char why[AV_ERROR_MAX_STRING_SIZE];
    if (averr != AVERROR_INVALIDDATA)
        return vid_fail(averr == AVERROR(ENOMEM) ? VC_ERR_NOMEM : VC_ERR_IO, err, errlen, path,
                        "cannot open: %s", av_text(averr, why, sizeof why));
    uint8_t buf[VID_PROBE_BYTES + AVPROBE_PADDING_SIZE] = {0};
    memcpy(buf, head, head_len);
    AVProbeData pd = {.filename = path, .buf = buf, .buf_size = (int)head_len};
    int score = 0;
    const AVInputFormat *ifmt = av_probe_input_format3(&pd, 1, &score);
    if (ifmt && score > AVPROBE_SCORE_RETRY) /* "mov,mp4,m4a,..." names one demuxer: say "mov" */
        return vid_fail(VC_ERR_FORMAT, err, errlen, path, "corrupt or truncated %.*s file (%s)",
                        (int)strcspn(ifmt->name, ","), ifmt->name, av_text(averr, why, sizeof why));
    return vid_fail(VC_ERR_FORMAT, err, errlen, path, "not a video file (no known container format)");
}

static int no_video_stream(const char *path, const AVFormatContext *fmt, int n_cover, char *err,
                           size_t errlen)
{
    int n_audio = 0;
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        n_audio += fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
    if (fmt->nb_streams == 0)
        return vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path, "no video stream (the file has no streams)");
    if (n_cover)
        return vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path, "no video stream (only a cover picture)");
    if ((unsigned)n_audio == fmt->nb_streams)
        return vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path, "no video stream (audio only)");
    return vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path, "no video stream (%u streams, none of them video)",
                    fmt->nb_streams);
}

/* The best video stream that is a moving picture: a cover picture (attached pic) does not count. */
static int pick_stream(const AVFormatContext *fmt, int *n_cover)
{
    *n_cover = 0;
    int best = av_find_best_stream((AVFormatContext *)fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (best >= 0 && !(fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) return best;
    best = -1;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) continue;
        if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
            (*n_cover)++;
        else if (best < 0)
            best = (int)i;
    }
    return best;
}

static double frame_interval(const AVStream *st, double fps)
{
    AVRational rates[2] = {st->avg_frame_rate, st->r_frame_rate};
    for (int i = 0; i < 2; i++)
        if (rates[i].num > 0 && rates[i].den > 0) {
            double dt = av_q2d(av_inv_q(rates[i]));
            if (dt > 0 && dt <= VID_MAX_TS_JUMP_SEC) return dt;
        }
    return 1.0 / fps;
}

static int64_t frame_duration(const AVFrame *f)
{
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
    return f->duration;
#else
    return f->pkt_duration;
#endif
}

/* Next packet of our stream into r->pkt: 1, or 0 at the end of the input. Read errors end the input like
 * end of file; anything but a clean end counts as damage. */
static int read_packet(vid_reader *r)
{
    for (;;) {
        int ret = av_read_frame(r->fmt, r->pkt);
        if (ret < 0) {
            if (ret != AVERROR_EOF) r->n_corrupt++;
            return 0;
        }
        if (r->pkt->stream_index == r->st->index) return 1;
        av_packet_unref(r->pkt);
    }
}

/* Decodes the next usable frame into f: 1, 0 when the decoder is drained, or VC_ERR_NOMEM. */
static int decode_frame(vid_reader *r, AVFrame *f)
{
    int errors_in_a_row = 0;
    for (;;) {
        int ret = avcodec_receive_frame(r->dec, f);
        if (ret >= 0) {
            int unreadable = !vid_scaler_supports(f->format);
            if (f->width < 1 || f->height < 1 || too_large(f->width, f->height) || unreadable) {
                /* a frame the header did not announce (a damaged mid-stream size or format change) */
                if (unreadable) r->bad_format = f->format;
                if (too_large(f->width, f->height)) {
                    r->big_w = f->width;
                    r->big_h = f->height;
                }
                av_frame_unref(f);
                r->n_corrupt++;
                continue;
            }
            if ((f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags) r->n_corrupt++;
            return 1;
        }
        if (ret == AVERROR_EOF) return 0;
        if (ret == AVERROR(ENOMEM)) return VC_ERR_NOMEM;
        if (ret != AVERROR(EAGAIN)) {
            r->n_corrupt++;
            if (++errors_in_a_row > VID_MAX_DECODE_ERRORS_IN_A_ROW) return 0;
            continue;
        }
        if (r->input_done) return 0; /* drained without saying EOF: nothing more will come */
        errors_in_a_row = 0;
        if (!read_packet(r)) {
            r->input_done = 1;
            ret = avcodec_send_packet(r->dec, NULL);
            if (ret == AVERROR(ENOMEM)) return VC_ERR_NOMEM;
            continue;
        }
        int damaged = (r->pkt->flags & AV_PKT_FLAG_CORRUPT) != 0;
        ret = avcodec_send_packet(r->dec, r->pkt);
        av_packet_unref(r->pkt);
        if (ret == AVERROR(ENOMEM)) return VC_ERR_NOMEM;
        if (damaged || (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)) r->n_corrupt++;
    }
}

/* Decodes the next frame into r->next and times it: 1, 0 at the end, or VC_ERR_NOMEM. */
static int fetch_next(vid_reader *r)
{
    int ret = decode_frame(r, r->next);
    if (ret <= 0) return ret;
    int64_t pts = r->next->best_effort_timestamp;
    int rejected = 0;
    double t = vid_clock_time(&r->clock, pts != AV_NOPTS_VALUE, pts, &rejected);
    r->n_corrupt += rejected;
    int64_t d = frame_duration(r->next);
    double dt = d > 0 ? (double)d * r->clock.tick : 0;
    if (!(dt > 0 && dt <= VID_MAX_TS_JUMP_SEC)) dt = r->clock.interval;
    r->next_slot = (vid_slot){.valid = 1, .t = t, .end = t + dt};
    return 1;
}

void vid_close(vid_reader *r)
{
    if (!r) return;
    av_frame_free(&r->held);
    av_frame_free(&r->next);
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->dec);
    avformat_close_input(&r->fmt);
    vid_scaler_free(&r->scaler);
    av_freep(&r->scaled);
    av_freep(&r->rgb);
    free(r->path);
    free(r);
}

int vid_open(const char *path, const vid_params *p, vid_reader **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out) return vid_fail(VC_ERR_ARG, err, errlen, path, "no output reader");
    *out = NULL;
    if (!path || !p) return vid_fail(VC_ERR_ARG, err, errlen, path, "no file name or no parameters");
    int rc = check_params(path, p, err, errlen);
    if (rc) return rc;
    uint8_t head[VID_PROBE_BYTES];
    size_t head_len = 0;
    if ((rc = check_file(path, head, &head_len, err, errlen)) != 0) return rc;

    char why[AV_ERROR_MAX_STRING_SIZE];
    AVDictionary *opts = NULL;
    char *url = NULL;
    vid_reader *r = calloc(1, sizeof *r);
    size_t plen = strlen(path);
    if (!r || !(r->path = malloc(plen + 1)) || !(url = malloc(plen + 6))) {
        rc = vid_fail(VC_ERR_NOMEM, err, errlen, path, "out of memory");
        goto end;
    }
    memcpy(r->path, path, plen + 1);
    r->bad_format = -1;
    /* "file:" so that a name with a colon is never taken for another protocol */
    memcpy(url, "file:", 5);
    memcpy(url + 5, path, plen + 1);
    r->p = *p;

    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int ret = avformat_open_input(&r->fmt, url, NULL, &opts);
    if (ret < 0) {
        rc = open_failure(path, ret, head, head_len, err, errlen);
        goto end;
    }
    if ((ret = avformat_find_stream_info(r->fmt, NULL)) < 0) {
        rc = vid_fail(ret == AVERROR(ENOMEM) ? VC_ERR_NOMEM : VC_ERR_FORMAT, err, errlen, path,
                      "cannot read the stream information (%s)", av_text(ret, why, sizeof why));
        goto end;
    }
    int n_cover = 0, idx = pick_stream(r->fmt, &n_cover);
    if (idx < 0) {
        rc = no_video_stream(path, r->fmt, n_cover, err, errlen);
        goto end;
    }
    r->st = r->fmt->streams[idx];
    const AVCodecParameters *par = r->st->codecpar;
    if (too_large(par->width, par->height)) {
        rc = vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path,
                      "video too large (%dx%d; the limit is %d a side and %lld pixels)", par->width,
                      par->height, VID_MAX_SIDE, (long long)VID_MAX_PIXELS);
        goto end;
    }
    if (r->st->time_base.num <= 0 || r->st->time_base.den <= 0) {
        rc = vid_fail(VC_ERR_FORMAT, err, errlen, path, "invalid stream time base %d/%d",
                      r->st->time_base.num, r->st->time_base.den);
        goto end;
    }
    for (unsigned i = 0; i < r->fmt->nb_streams; i++)
        if ((int)i != idx) r->fmt->streams[i]->discard = AVDISCARD_ALL;

    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec) {
        rc = vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path, "no decoder for the video codec %s",
                      avcodec_get_name(par->codec_id));
        goto end;
    }
    if (!(r->dec = avcodec_alloc_context3(codec)) || avcodec_parameters_to_context(r->dec, par) < 0) {
        rc = vid_fail(VC_ERR_NOMEM, err, errlen, path, "out of memory");
        goto end;
    }
    r->dec->thread_count = p->n_threads;
    r->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    r->dec->pkt_timebase = r->st->time_base;
    r->dec->max_pixels = VID_MAX_PIXELS; /* the decoder refuses a later header that grows past the limit */
    if ((ret = avcodec_open2(r->dec, codec, NULL)) < 0) {
        rc = vid_fail(ret == AVERROR(ENOMEM) ? VC_ERR_NOMEM : VC_ERR_UNSUPPORTED, err, errlen, path,
                      "cannot open the %s decoder (%s)", codec->name, av_text(ret, why, sizeof why));
        goto end;
    }

    size_t msize = 0;
    const uint8_t *matrix = av_stream_get_side_data(r->st, AV_PKT_DATA_DISPLAYMATRIX, &msize);
    vid_orient_from_matrix(matrix && msize >= 9 * sizeof(int32_t) ? (const int32_t *)matrix : NULL,
                           &r->orient);

    double tick = av_q2d(r->st->time_base);
    vid_clock_init(&r->clock, tick, r->st->start_time != AV_NOPTS_VALUE, r->st->start_time,
                   frame_interval(r->st, p->fps));
    vid_sampler_init(&r->sampler, p->fps, tick);
    if (r->st->duration != AV_NOPTS_VALUE && r->st->duration > 0)
        r->duration = (double)r->st->duration * tick;
    else if (r->fmt->duration != AV_NOPTS_VALUE && r->fmt->duration > 0)
        r->duration = (double)r->fmt->duration / AV_TIME_BASE;

    if (!(r->pkt = av_packet_alloc()) || !(r->held = av_frame_alloc()) || !(r->next = av_frame_alloc())) {
        rc = vid_fail(VC_ERR_NOMEM, err, errlen, path, "out of memory");
        goto end;
    }
    ret = fetch_next(r);
    if (ret < 0) {
        rc = vid_fail(ret, err, errlen, path, "out of memory decoding the first frame");
        goto end;
    }
    if (ret == 0) {
        const char *fmt_name = r->bad_format >= 0 ? av_get_pix_fmt_name(r->bad_format) : NULL;
        if (r->big_w)
            rc = vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path,
                          "video too large (%dx%d; the limit is %d a side and %lld pixels)", r->big_w,
                          r->big_h, VID_MAX_SIDE, (long long)VID_MAX_PIXELS);
        else if (r->bad_format >= 0)
            rc = vid_fail(VC_ERR_UNSUPPORTED, err, errlen, path, "unsupported pixel format %s",
                          fmt_name ? fmt_name : "(unknown)");
        else if (r->n_corrupt)
            rc = vid_fail(VC_ERR_FORMAT, err, errlen, path,
                          "no decodable video frames (%d damaged packets or decoding errors)", r->n_corrupt);
        else
            rc = vid_fail(VC_ERR_FORMAT, err, errlen, path, "no video frames");
        goto end;
    }
    int swaps = vid_orient_swaps(r->orient);
    r->src_w = swaps ? r->next->height : r->next->width;
    r->src_h = swaps ? r->next->width : r->next->height;
    r->pre_w = swaps ? p->height : p->width;
    r->pre_h = swaps ? p->width : p->height;
    /* libswscale may write whole SIMD blocks past the last pixel of a row: padded rows, one spare row */
    r->scaled_stride = FFALIGN(r->pre_w * 3, 64);
    r->scaled = av_malloc((size_t)r->scaled_stride * (size_t)(r->pre_h + 1));
    r->rgb = av_malloc((size_t)p->width * (size_t)p->height * 3);
    if (!r->scaled || !r->rgb) {
        rc = vid_fail(VC_ERR_NOMEM, err, errlen, path, "out of memory for %dx%d frames", p->width, p->height);
        goto end;
    }
    *out = r;
    r = NULL;
    rc = 0;
end:
    av_dict_free(&opts);
    free(url);
    vid_close(r);
    return rc;
}

/* The held frame as RGB, converted once however many samples show it. */
static int convert_held(vid_reader *r, char *err, size_t errlen)
{
    if (r->rgb_valid) return 0;
    char why[160];
    int rc =
        vid_scaler_run(&r->scaler, r->held, r->scaled, r->scaled_stride, r->pre_w, r->pre_h, why, sizeof why);
    if (rc) return vid_fail(rc, err, errlen, r->path, "%s", why);
    vid_orient_apply(r->orient, r->scaled, r->pre_w, r->pre_h, (size_t)r->scaled_stride, r->rgb);
    r->rgb_valid = 1;
    return 0;
}

int vid_read(vid_reader *r, uint8_t *rgb, double *t_sec, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!r || !rgb || !t_sec)
        return vid_fail(VC_ERR_ARG, err, errlen, r ? r->path : "video", "no reader or buffer");
    for (;;) {
        switch (vid_sampler_next(&r->sampler, &r->held_slot, &r->next_slot, r->eof)) {
        case VID_STEP_EMIT: {
            int rc = convert_held(r, err, errlen);
            if (rc) return rc;
            memcpy(rgb, r->rgb, (size_t)r->p.width * (size_t)r->p.height * 3);
            *t_sec = vid_sample_time(&r->sampler);
            r->sampler.k++;
            return 1;
        }
        case VID_STEP_ADVANCE: {
            AVFrame *tmp = r->held;
            r->held = r->next;
            r->next = tmp;
            av_frame_unref(r->next);
            r->held_slot = r->next_slot;
            r->next_slot.valid = 0;
            r->rgb_valid = 0;
            break;
        }
        case VID_STEP_DECODE: {
            int ret = fetch_next(r);
            if (ret < 0) return vid_fail(ret, err, errlen, r->path, "out of memory while decoding");
            if (ret == 0) r->eof = 1;
            break;
        }
        case VID_STEP_END:
            return 0;
        }
    }
}

double vid_duration(const vid_reader *r)
{
    return r ? r->duration : 0;
}

int vid_source_width(const vid_reader *r)
{
    return r ? r->src_w : 0;
}

int vid_source_height(const vid_reader *r)
{
    return r ? r->src_h : 0;
}

int vid_n_corrupt(const vid_reader *r)
{
    return r ? r->n_corrupt : 0;
}
