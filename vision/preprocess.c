/* Preprocessing as PIL + torchvision do it (see preprocess.h): PIL's fixed-point antialiased bicubic
 * resize evaluated only on the center-crop window, then ToTensor/Normalize in float32 as torch does. */
#include "vision/preprocess.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nn/nn.h"
#include "vidcap.h"

/* PIL keeps 8 bits for the result and 2 for the overshoot of the negative-lobed filter: 32 - 8 - 2. */
#define RESAMPLE_BITS 22

#define fail(code, err, errlen, ...) nn_error(code, err, errlen, "preprocess", __VA_ARGS__)

/* ---- parameters ---- */

img_preprocess img_preprocess_timm_imagenet(void)
{
    img_preprocess p = {.channels = 3,
                        .resize = 256,
                        .crop = 224,
                        .pad = 0,
                        .mean = {0.485f, 0.456f, 0.406f},
                        .std = {0.229f, 0.224f, 0.225f}};
    return p;
}

int img_preprocess_side(const img_preprocess *p)
{
    return p->crop + 2 * p->pad;
}

/* Shared by the parser (bad metadata: VC_ERR_FORMAT) and the run-time check (bad caller: VC_ERR_ARG). */
static int check(const img_preprocess *p, int code, char *err, size_t errlen)
{
    const int max = IMG_PREPROCESS_MAX_SIZE;
    if (!p) return fail(code, err, errlen, "no parameters");
    if (p->channels != 1 && p->channels != 3)
        return fail(code, err, errlen, "'channels' must be 1 or 3 (got %d)", p->channels);
    if (p->resize < 0 || p->resize > max)
        return fail(code, err, errlen, "'resize' must be 0 (none) or 1..%d (got %d)", max, p->resize);
    if (p->crop < 1 || p->crop > max)
        return fail(code, err, errlen, "'crop' must be in 1..%d (got %d)", max, p->crop);
    if (p->pad < 0 || p->pad > max || p->crop + 2 * p->pad > max)
        return fail(code, err, errlen, "'pad' must be >= 0 with crop + 2*pad <= %d (got pad %d)", max,
                    p->pad);
    if (p->resize > 0 && p->crop > p->resize)
        return fail(code, err, errlen, "'crop' (%d) is larger than 'resize' (%d)", p->crop, p->resize);
    for (int c = 0; c < p->channels; c++) {
        if (!isfinite(p->mean[c])) return fail(code, err, errlen, "'mean'[%d] is not a finite number", c);
        if (!isfinite(p->std[c]) || !(p->std[c] > 0))
            return fail(code, err, errlen, "'std'[%d] must be a finite number > 0 (got %g)", c,
                        (double)p->std[c]);
    }
    return VC_OK;
}

int img_preprocess_check(const img_preprocess *p, char *err, size_t errlen)
{
    return check(p, VC_ERR_ARG, err, errlen);
}

/* Integer member; absent -> *v = dflt, or an error when required. */
static int json_int(const cJSON *root, const char *key, int required, int dflt, int *v, char *err,
                    size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) {
        if (required) return fail(VC_ERR_FORMAT, err, errlen, "missing '%s'", key);
        *v = dflt;
        return VC_OK;
    }
    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!(d >= 0 && d <= 1e6) || d != floor(d))
        return fail(VC_ERR_FORMAT, err, errlen, "'%s' must be a non-negative integer", key);
    *v = (int)d;
    return VC_OK;
}

static int json_floats(const cJSON *root, const char *key, int n, float *v, char *err, size_t errlen)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!arr) return fail(VC_ERR_FORMAT, err, errlen, "missing '%s'", key);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n)
        return fail(VC_ERR_FORMAT, err, errlen, "'%s' must be an array of %d number%s (one per channel)", key,
                    n, n == 1 ? "" : "s");
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return fail(VC_ERR_FORMAT, err, errlen, "'%s'[%d] is not a finite number", key, i);
        v[i++] = (float)it->valuedouble; /* as torch.as_tensor(mean, dtype=float32) rounds it */
    }
    return VC_OK;
}

int img_preprocess_parse(const char *json, img_preprocess *out, char *err, size_t errlen)
{
    if (!out) return fail(VC_ERR_ARG, err, errlen, "no output parameters");
    memset(out, 0, sizeof *out);
    if (!json) return fail(VC_ERR_ARG, err, errlen, "no JSON text");
    img_preprocess p = {0};
    int rc = VC_OK;
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        rc = fail(VC_ERR_FORMAT, err, errlen, "not valid JSON");
        goto end;
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(VC_ERR_FORMAT, err, errlen, "expected a JSON object");
        goto end;
    }
    if ((rc = json_int(root, "channels", 1, 0, &p.channels, err, errlen)) < 0) goto end;
    if (p.channels != 1 && p.channels != 3) {
        rc = fail(VC_ERR_FORMAT, err, errlen, "'channels' must be 1 or 3 (got %d)", p.channels);
        goto end;
    }
    if ((rc = json_int(root, "resize", 0, 0, &p.resize, err, errlen)) < 0) goto end;
    if ((rc = json_int(root, "crop", 1, 0, &p.crop, err, errlen)) < 0) goto end;
    if ((rc = json_int(root, "pad", 0, 0, &p.pad, err, errlen)) < 0) goto end;
    const cJSON *interp = cJSON_GetObjectItemCaseSensitive(root, "interpolation");
    if (interp && !cJSON_IsString(interp)) {
        rc = fail(VC_ERR_FORMAT, err, errlen, "'interpolation' must be a string");
        goto end;
    }
    if (interp && strcmp(interp->valuestring, "bicubic") != 0) {
        rc = fail(VC_ERR_UNSUPPORTED, err, errlen, "interpolation '%.40s' is not supported (only 'bicubic')",
                  interp->valuestring);
        goto end;
    }
    if ((rc = json_floats(root, "mean", p.channels, p.mean, err, errlen)) < 0) goto end;
    if ((rc = json_floats(root, "std", p.channels, p.std, err, errlen)) < 0) goto end;
    if ((rc = check(&p, VC_ERR_FORMAT, err, errlen)) < 0) goto end;
    *out = p;
end:
    cJSON_Delete(root);
    return rc;
}

/* ---- PIL's resampling ---- */

/* Keys' cubic convolution kernel with a = -0.5, in the Horner form PIL evaluates (bit-exact coefficients
 * need the same operation order). */
static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Fixed-point taps of the outputs first .. first+n-1 of an in_size -> out_size resize along one axis. */
typedef struct resample_axis {
    int n, ksize;
    int *lo, *cnt;    /* first input index and number of taps per output */
    int32_t *k;       /* n * ksize */
    int in_lo, in_hi; /* input range [in_lo, in_hi) the outputs read */
} resample_axis;

static void axis_free(resample_axis *a)
{
    free(a->lo);
    free(a->cnt);
    free(a->k);
    memset(a, 0, sizeof *a);
}

static int axis_init(resample_axis *a, int in_size, int out_size, int first, int n)
{
    memset(a, 0, sizeof *a);
    /* PIL's precompute_coeffs with box (0, in_size): the filter widens with the downscale factor */
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    double ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1; /* in_size <= IMG_MAX_SIDE keeps this small */
    double *w = malloc((size_t)ksize * sizeof *w);
    a->lo = malloc((size_t)n * sizeof *a->lo);
    a->cnt = malloc((size_t)n * sizeof *a->cnt);
    a->k = calloc((size_t)n * (size_t)ksize, sizeof *a->k);
    if (!w || !a->lo || !a->cnt || !a->k) {
        free(w);
        axis_free(a);
        return VC_ERR_NOMEM;
    }
    a->n = n;
    a->ksize = ksize;
    a->in_lo = in_size;
    a->in_hi = 0;
    for (int i = 0; i < n; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = a->k + (size_t)i * ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            /* round half away from zero, as PIL's normalize_coeffs_8bpc */
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << RESAMPLE_BITS))
                         : (int32_t)(0.5 + v * (1 << RESAMPLE_BITS));
        }
        a->lo[i] = xmin;
        a->cnt[i] = xmax;
        if (xmax > 0) {
            if (xmin < a->in_lo) a->in_lo = xmin;
            if (xmin + xmax > a->in_hi) a->in_hi = xmin + xmax;
        }
    }
    if (a->in_hi < a->in_lo) a->in_lo = a->in_hi = 0;
    free(w);
    return VC_OK;
}

static uint8_t clip8(int64_t ss)
{
    if (ss < 0) return 0;
    ss >>= RESAMPLE_BITS;
    return (uint8_t)(ss > 255 ? 255 : ss);
}

/* One output sample: sum of taps over pixels spaced step bytes apart, with PIL's rounding offset. */
static uint8_t convolve(const uint8_t *p, size_t step, const int32_t *k, int cnt)
{
    int64_t ss = 1 << (RESAMPLE_BITS - 1);
    for (int t = 0; t < cnt; t++)
        ss += (int64_t)p[(size_t)t * step] * k[t];
    return clip8(ss);
}

/* PIL's RGB -> 'L': ITU-R 601-2 weights in 16-bit fixed point, rounded. */
static uint8_t pil_luma(const uint8_t *rgb)
{
    return (
        uint8_t)(((uint32_t)rgb[0] * 19595 + (uint32_t)rgb[1] * 38470 + (uint32_t)rgb[2] * 7471 + 0x8000) >>
                 16);
}

/* Offset of a centered crop: torchvision's int(round(d / 2.0)), Python rounding half to even. */
static int center_offset(int d)
{
    int k = d / 2;
    if (d % 2 != 0 && k % 2 != 0) k++;
    return k;
}

int img_preprocess_geometry(const img_preprocess *p, int w, int h, img_geometry *g)
{
    memset(g, 0, sizeof *g);
    if (check(p, VC_ERR_ARG, NULL, 0) < 0 || w <= 0 || h <= 0 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE)
        return VC_ERR_ARG;
    /* torchvision Resize(int): shorter side to `resize`, longer side int(resize * long / short); at most
     * 4096 * 16384, so it fits an int */
    int rw = w, rh = h;
    if (p->resize > 0) {
        int shorter = w <= h ? w : h, longer = w <= h ? h : w;
        int nl = (int)((double)((long long)p->resize * longer) / shorter);
        rw = w <= h ? p->resize : nl;
        rh = w <= h ? nl : p->resize;
    }
    g->resized_w = rw;
    g->resized_h = rh;
    if (p->crop > rw || p->crop > rh) return VC_ERR_UNSUPPORTED;
    g->left = center_offset(rw - p->crop);
    g->top = center_offset(rh - p->crop);
    return VC_OK;
}

static int no_memory(char *err, size_t errlen, int w, int h)
{
    return fail(VC_ERR_NOMEM, err, errlen, "out of memory preprocessing a %dx%d image", w, h);
}

int img_preprocess_run(const img_preprocess *p, const img_rgb *in, float *out, char *err, size_t errlen)
{
    int rc = check(p, VC_ERR_ARG, err, errlen);
    if (rc < 0) return rc;
    if (!in || !in->data || in->w <= 0 || in->h <= 0)
        return fail(VC_ERR_ARG, err, errlen, "empty input image");
    if (in->w > IMG_MAX_SIDE || in->h > IMG_MAX_SIDE || (long long)in->w * in->h > IMG_MAX_PIXELS)
        return fail(VC_ERR_ARG, err, errlen, "input image %dx%d exceeds %d a side or %lld pixels", in->w,
                    in->h, IMG_MAX_SIDE, IMG_MAX_PIXELS);
    if (!out) return fail(VC_ERR_ARG, err, errlen, "no output buffer");

    const int w = in->w, h = in->h, nc = p->channels, crop = p->crop;
    uint8_t *gray = NULL, *tmp = NULL, *win = NULL;
    resample_axis ax = {0}, ay = {0};

    img_geometry geo;
    rc = img_preprocess_geometry(p, w, h, &geo);
    if (rc < 0) {
        rc = fail(rc, err, errlen, "image is %dx%d, smaller than the %dx%d center crop", geo.resized_w,
                  geo.resized_h, crop, crop);
        goto end;
    }
    const int rw = geo.resized_w, rh = geo.resized_h, left = geo.left, top = geo.top;

    /* PIL skips a pass whose size does not change (and returns a copy when neither does) */
    const int need_h = rw != w, need_v = rh != h;
    if ((need_h && axis_init(&ax, w, rw, left, crop) < 0) ||
        (need_v && axis_init(&ay, h, rh, top, crop) < 0)) {
        rc = no_memory(err, errlen, w, h);
        goto end;
    }
    const int x0 = need_h ? ax.in_lo : left, x1 = need_h ? ax.in_hi : left + crop;
    const int y0 = need_v ? ay.in_lo : top, y1 = need_v ? ay.in_hi : top + crop;

    /* The input region the window reads, in the working mode: RGB as is, or PIL's 'L' conversion. */
    const uint8_t *src;
    size_t src_stride;
    if (nc == 3) {
        src = in->data + ((size_t)y0 * w + x0) * 3;
        src_stride = (size_t)w * 3;
    } else {
        size_t rw_ = (size_t)(x1 - x0);
        gray = malloc(rw_ * (size_t)(y1 - y0) + 1);
        if (!gray) {
            rc = no_memory(err, errlen, w, h);
            goto end;
        }
        for (int y = y0; y < y1; y++) {
            const uint8_t *s = in->data + ((size_t)y * w + x0) * 3;
            uint8_t *d = gray + (size_t)(y - y0) * rw_;
            for (size_t x = 0; x < rw_; x++, s += 3)
                d[x] = pil_luma(s);
        }
        src = gray;
        src_stride = rw_;
    }

    /* horizontal pass over rows y0..y1 (the rows the vertical pass needs), window columns only */
    const uint8_t *hs = src; /* pixel (left, y0) after this pass */
    size_t hs_stride = src_stride;
    if (need_h) {
        size_t row = (size_t)crop * nc;
        tmp = malloc(row * (size_t)(y1 - y0));
        if (!tmp) {
            rc = no_memory(err, errlen, w, h);
            goto end;
        }
        for (int y = 0; y < y1 - y0; y++) {
            const uint8_t *s = src + (size_t)y * src_stride;
            uint8_t *d = tmp + (size_t)y * row;
            for (int i = 0; i < crop; i++) {
                const int32_t *k = ax.k + (size_t)i * ax.ksize;
                const uint8_t *s0 = s + (size_t)(ax.lo[i] - x0) * nc;
                for (int c = 0; c < nc; c++)
                    d[(size_t)i * nc + c] = convolve(s0 + c, (size_t)nc, k, ax.cnt[i]);
            }
        }
        hs = tmp;
        hs_stride = row;
    } else {
        hs = src + (size_t)(left - x0) * nc;
    }

    /* vertical pass: window rows only */
    const uint8_t *vs; /* pixel (left, top) after this pass */
    size_t vs_stride;
    if (need_v) {
        size_t row = (size_t)crop * nc;
        win = malloc(row * (size_t)crop);
        if (!win) {
            rc = no_memory(err, errlen, w, h);
            goto end;
        }
        for (int i = 0; i < crop; i++) {
            const int32_t *k = ay.k + (size_t)i * ay.ksize;
            const uint8_t *s0 = hs + (size_t)(ay.lo[i] - y0) * hs_stride;
            uint8_t *d = win + (size_t)i * row;
            for (size_t j = 0; j < row; j++)
                d[j] = convolve(s0 + j, hs_stride, k, ay.cnt[i]);
        }
        vs = win;
        vs_stride = row;
    } else {
        vs = hs + (size_t)(top - y0) * hs_stride;
        vs_stride = hs_stride;
    }

    /* ToTensor (/255) and Normalize in float32, as torch computes them; padding is 0 before Normalize */
    const int side = img_preprocess_side(p), pad = p->pad;
    for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) {
            int inside = y >= pad && y < pad + crop && x >= pad && x < pad + crop;
            const uint8_t *s = inside ? vs + (size_t)(y - pad) * vs_stride + (size_t)(x - pad) * nc : NULL;
            float *o = out + ((size_t)y * side + x) * nc;
            for (int c = 0; c < nc; c++) {
                float v = inside ? (float)s[c] / 255.0f : 0.0f;
                o[c] = (v - p->mean[c]) / p->std[c];
            }
        }
    }
    rc = VC_OK;
end:
    axis_free(&ax);
    axis_free(&ay);
    free(gray);
    free(tmp);
    free(win);
    return rc;
}
