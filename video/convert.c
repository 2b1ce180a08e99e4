/* Frame to upright RGB24: colour conversion and scaling through libswscale, right-angle orientation of the
 * result (see video/convert.h). */
#include "video/convert.h"

#include <math.h>
#include <stdio.h>

#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "vidcap.h"

/* Bicubic (libswscale widens its support when shrinking, so a 720p frame brought to 64x64 is filtered,
 * not point-sampled); accurate rounding and bit-exact arithmetic make the output independent of the CPU's
 * SIMD paths; full chroma interpolation on input and output keeps colour edges where they belong. */
#define VID_SWS_FLAGS                                                                                        \
    (SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP)

int vid_orient_from_matrix(const int32_t *m, vid_orient *o)
{
    *o = (vid_orient){1, 0, 0, 1};
    if (!m) return 0;
    double v[4] = {m[0], m[1], m[3], m[4]}, mx = 0;
    for (int i = 0; i < 4; i++)
        if (fabs(v[i]) > mx) mx = fabs(v[i]);
    if (!(mx > 0)) return 0;
    /* a right angle leaves two entries at zero; allow the rounding of a 16.16 cosine near 90 degrees */
    int big[4];
    for (int i = 0; i < 4; i++) {
        big[i] = fabs(v[i]) > 0.5 * mx;
        if (!big[i] && fabs(v[i]) > 0.02 * mx) return 0;
    }
    int straight = big[0] && big[3] && !big[1] && !big[2];
    int swapped = big[1] && big[2] && !big[0] && !big[3];
    if (!straight && !swapped) return 0;
    int s[4];
    for (int i = 0; i < 4; i++)
        s[i] = big[i] ? (v[i] > 0 ? 1 : -1) : 0;
    *o = (vid_orient){s[0], s[1], s[2], s[3]};
    return !(s[0] == 1 && s[3] == 1);
}

int vid_orient_swaps(vid_orient o)
{
    return o.a == 0;
}

void vid_orient_apply(vid_orient o, const uint8_t *src, int sw, int sh, size_t src_stride, uint8_t *dst)
{
    int dw = vid_orient_swaps(o) ? sh : sw, dh = vid_orient_swaps(o) ? sw : sh;
    /* shown position (X, Y) = (a x + c y + ox, b x + d y + oy); the 2x2 part is orthogonal, so the stored
     * pixel behind (X, Y) is x = a (X - ox) + b (Y - oy), y = c (X - ox) + d (Y - oy) */
    long ox = -((o.a < 0 ? o.a : 0) * (long)(sw - 1) + (o.c < 0 ? o.c : 0) * (long)(sh - 1));
    long oy = -((o.b < 0 ? o.b : 0) * (long)(sw - 1) + (o.d < 0 ? o.d : 0) * (long)(sh - 1));
    ptrdiff_t step = (ptrdiff_t)o.a * 3 + (ptrdiff_t)o.c * (ptrdiff_t)src_stride;
    for (int Y = 0; Y < dh; Y++) {
        long x = o.a * (0 - ox) + o.b * (Y - oy), y = o.c * (0 - ox) + o.d * (Y - oy);
        const uint8_t *p = src + (size_t)y * src_stride + (size_t)x * 3;
        uint8_t *q = dst + (size_t)Y * dw * 3;
        for (int X = 0; X < dw; X++, p += step, q += 3) {
            q[0] = p[0];
            q[1] = p[1];
            q[2] = p[2];
        }
    }
}

/* libswscale's name for the source's YCbCr matrix; unspecified falls back to BT.601 as libswscale and the
 * ffmpeg CLI do, so frames match what ffmpeg-extracted training data saw. */
static int sws_matrix(enum AVColorSpace cs)
{
    switch (cs) {
    case AVCOL_SPC_BT709:
        return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
        return SWS_CS_FCC;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
        return SWS_CS_ITU601;
    case AVCOL_SPC_SMPTE240M:
        return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        return SWS_CS_BT2020;
    default:
        return SWS_CS_DEFAULT;
    }
}

/* The J formats are full-range YUV under an old name; libswscale wants the plain name plus the range. */
static enum AVPixelFormat unjpeg(enum AVPixelFormat f, int *full)
{
    switch (f) {
    case AV_PIX_FMT_YUVJ420P:
        *full = 1;
        return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
        *full = 1;
        return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
        *full = 1;
        return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
        *full = 1;
        return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P:
        *full = 1;
        return AV_PIX_FMT_YUV411P;
    default:
        return f;
    }
}

int vid_scaler_supports(int pix_fmt)
{
    int full = 0;
    return pix_fmt >= 0 && sws_isSupportedInput(unjpeg((enum AVPixelFormat)pix_fmt, &full));
}

int vid_scaler_run(vid_scaler *s, const AVFrame *f, uint8_t *dst, int dst_stride, int dst_w, int dst_h,
                   char *why, size_t whylen)
{
    int full = f->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat fmt = unjpeg((enum AVPixelFormat)f->format, &full);
    int matrix = sws_matrix(f->colorspace);
    if (!s->sws || s->src_w != f->width || s->src_h != f->height || s->src_fmt != (int)fmt ||
        s->full_range != full || s->matrix != matrix || s->dst_w != dst_w || s->dst_h != dst_h) {
        if (!sws_isSupportedInput(fmt)) {
            const char *name = av_get_pix_fmt_name(fmt);
            snprintf(why, whylen, "unsupported pixel format %s", name ? name : "(unknown)");
            return VC_ERR_UNSUPPORTED;
        }
        s->sws = sws_getCachedContext(s->sws, f->width, f->height, fmt, dst_w, dst_h, AV_PIX_FMT_RGB24,
                                      VID_SWS_FLAGS, NULL, NULL, NULL);
        s->src_w = 0; /* the key is valid only once the context is complete */
        if (!s->sws) {
            snprintf(why, whylen, "cannot convert %dx%d %s to %dx%d RGB", f->width, f->height,
                     av_get_pix_fmt_name(fmt), dst_w, dst_h);
            return VC_ERR_UNSUPPORTED;
        }
        const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
        if (d && !(d->flags & AV_PIX_FMT_FLAG_RGB)) {
            /* source matrix and range; the destination is full-range RGB */
            int rc = sws_setColorspaceDetails(s->sws, sws_getCoefficients(matrix), full,
                                              sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
            if (rc < 0) {
                snprintf(why, whylen, "cannot set the colour matrix for %s", av_get_pix_fmt_name(fmt));
                return VC_ERR_UNSUPPORTED;
            }
        }
        s->src_w = f->width;
        s->src_h = f->height;
        s->src_fmt = (int)fmt;
        s->full_range = full;
        s->matrix = matrix;
        s->dst_w = dst_w;
        s->dst_h = dst_h;
    }
    uint8_t *planes[4] = {dst, NULL, NULL, NULL};
    int strides[4] = {dst_stride, 0, 0, 0};
    int h = sws_scale(s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, planes, strides);
    if (h != dst_h) {
        snprintf(why, whylen, "libswscale produced %d of %d rows", h, dst_h);
        return VC_ERR_FORMAT;
    }
    return 0;
}

void vid_scaler_free(vid_scaler *s)
{
    if (!s) return;
    sws_freeContext(s->sws);
    s->sws = NULL;
}
