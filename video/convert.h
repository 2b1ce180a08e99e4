/* Decoded frame to upright RGB24: libswscale with the source's colour matrix and range at reproducible
 * (bit-exact) settings, then the display matrix's right-angle rotation or flip applied to the RGB pixels. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct AVFrame;
struct SwsContext;

/* The 2x2 part of a display matrix reduced to a signed permutation, entries in {-1, 0, 1}: a stored pixel
 * (x, y) is shown at (a*x + c*y, b*x + d*y) up to a translation (libavutil/display.h's convention). */
typedef struct vid_orient {
    int a, b, c, d;
} vid_orient;

/* Identity when m is NULL or not a multiple of 90 degrees (with or without a flip); returns 1 when m was
 * recognised as one of the seven non-identity right-angle orientations. */
int vid_orient_from_matrix(const int32_t *m, vid_orient *o);
/* 1 when the orientation swaps width and height (90 or 270 degrees). */
int vid_orient_swaps(vid_orient o);
/* src: sw x sh RGB24 rows of src_stride bytes; dst: the oriented image, tightly packed, (sh x sw when
 * the orientation swaps). */
void vid_orient_apply(vid_orient o, const uint8_t *src, int sw, int sh, size_t src_stride, uint8_t *dst);

/* A cached libswscale context and the source properties it was made for. */
typedef struct vid_scaler {
    struct SwsContext *sws;
    int src_w, src_h, src_fmt, full_range, matrix; /* the key: a change rebuilds the context */
    int dst_w, dst_h;
} vid_scaler;

/* Scales frame f to dst_w x dst_h RGB24 rows of dst_stride bytes (dst must allow libswscale to write
 * whole aligned rows: allocate dst_stride >= FFALIGN(dst_w * 3, 64)). Returns 0, or a negative VC_ERR_*
 * with the reason (without a file name) in why. */
int vid_scaler_run(vid_scaler *s, const struct AVFrame *f, uint8_t *dst, int dst_stride, int dst_w, int dst_h,
                   char *why, size_t whylen);
/* 1 when libswscale can read the pixel format. */
int vid_scaler_supports(int pix_fmt);
void vid_scaler_free(vid_scaler *s);
