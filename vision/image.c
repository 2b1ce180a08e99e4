/* Image decoding (see image.h): format sniffing, size limits, JPEG via libjpeg with EXIF orientation,
 * everything else via stb_image, plus the truncation checks stb does not make. */
#include "vision/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <stb_image.h>

#include "nn/nn.h"
#include "vidcap.h"

/* Encoders write about ten scans; a file of hundreds of tiny legal scans makes libjpeg redo the whole
 * image for each one (djpeg's -maxscans exists for the same reason). */
#define IMG_JPEG_MAX_SCANS 500

typedef enum {
    FMT_UNKNOWN,
    FMT_JPEG,
    FMT_PNG,
    FMT_GIF,
    FMT_BMP,
    FMT_PNM,
    FMT_TGA,
} img_format;

#define fail nn_error

static const char *errno_text(int e, char *buf, size_t len)
{
    if (strerror_r(e, buf, len) != 0) snprintf(buf, len, "error %d", e);
    return buf;
}

void img_free(img_rgb *img)
{
    if (!img) return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = 0;
}

static uint32_t rd16le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t rd32le(const uint8_t *p)
{
    return rd16le(p) | rd16le(p + 2) << 16;
}

static uint32_t rd32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int check_dims(const char *name, const char *fmt, long long w, long long h, char *err, size_t errlen)
{
    if (w <= 0 || h <= 0)
        return fail(VC_ERR_FORMAT, err, errlen, name, "corrupt %s: header gives an empty %lldx%lld image",
                    fmt, w, h);
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || w * h > IMG_MAX_PIXELS)
        return fail(VC_ERR_UNSUPPORTED, err, errlen, name,
                    "image too large: %s header says %lldx%lld pixels (limit %d a side, %lld megapixels)",
                    fmt, w, h, IMG_MAX_SIDE, IMG_MAX_PIXELS / 1000000);
    return VC_OK;
}

/* ---- format sniffing ---- */

/* TGA has no signature: accept only headers whose fields all hold legal values, so text or other binary
 * files are not mistaken for it. */
static int looks_like_tga(const uint8_t *b, size_t n)
{
    if (n < 18) return 0;
    int cmap = b[1], type = b[2], bpp = b[16];
    if (cmap > 1) return 0;
    if (type != 1 && type != 2 && type != 3 && type != 9 && type != 10 && type != 11) return 0;
    if ((type == 1 || type == 9) != (cmap == 1)) return 0;
    if (cmap == 1 && b[7] != 15 && b[7] != 16 && b[7] != 24 && b[7] != 32) return 0;
    if (bpp != 8 && bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32) return 0;
    return rd16le(b + 12) > 0 && rd16le(b + 14) > 0;
}

static img_format sniff(const uint8_t *b, size_t n, const char **other)
{
    *other = NULL;
    if (n >= 2 && b[0] == 0xFF && b[1] == 0xD8) return FMT_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return FMT_PNG;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) return FMT_GIF;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return FMT_BMP;
    int netpbm = n >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' &&
                 (b[2] == ' ' || b[2] == '\t' || b[2] == '\n' || b[2] == '\r' || b[2] == '#');
    if (netpbm && (b[1] == '5' || b[1] == '6')) return FMT_PNM; /* binary grey and RGB: what stb reads */
    /* Recognised but not decoded: name them, it saves the user a guess. */
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        *other = "TIFF";
    else if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        *other = "WebP";
    else if (n >= 12 && memcmp(b + 4, "ftyp", 4) == 0)
        *other = "HEIF/AVIF/MP4";
    else if (n >= 4 && memcmp(b, "8BPS", 4) == 0)
        *other = "PSD";
    else if (netpbm)
        *other = "ASCII, bitmap or PAM netpbm";
    if (*other) return FMT_UNKNOWN;
    if (looks_like_tga(b, n)) return FMT_TGA;
    return FMT_UNKNOWN;
}

/* ---- JPEG ---- */

typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int too_many_scans;
    uint8_t *pixels; /* w*h*3 as stored, before orientation */
    uint8_t *row;    /* one CMYK scanline */
} jpeg_job;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_job *job = (jpeg_job *)c->client_data;
    c->err->format_message(c, job->msg);
    longjmp(job->jump, 1);
}

static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level >= 0) return; /* trace output */
    switch (c->err->msg_code) {
    /* about metadata only: the pixels are fine */
    case JWRN_ADOBE_XFORM:
    case JWRN_JFIF_MAJOR:
    case JWRN_BOGUS_ICC:
        c->err->num_warnings++;
        return;
    default:
        /* premature end or corrupt data: libjpeg would carry on with grey or garbage blocks */
        jpeg_on_error(c);
    }
}

static void jpeg_on_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (c->is_decompressor && d->progressive_mode && d->input_scan_number > IMG_JPEG_MAX_SCANS) {
        jpeg_job *job = (jpeg_job *)c->client_data;
        job->too_many_scans = 1;
        longjmp(job->jump, 1);
    }
}

/* Orientation tag 0x0112 of IFD0 in an APP1 "Exif" payload; 0 when absent or malformed. */
static int exif_orientation(const uint8_t *d, size_t n)
{
    if (n < 6 || memcmp(d, "Exif\0\0", 6) != 0) return 0;
    const uint8_t *t = d + 6;
    size_t tn = n - 6;
    if (tn < 8) return 0;
    int le;
    if (t[0] == 'I' && t[1] == 'I')
        le = 1;
    else if (t[0] == 'M' && t[1] == 'M')
        le = 0;
    else
        return 0;
#define EXIF16(p) (le ? rd16le(p) : (uint32_t)(p)[0] << 8 | (p)[1])
#define EXIF32(p)                                                                                            \
    (le ? rd32le(p) : (uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 | (p)[3])
    if (EXIF16(t + 2) != 42) return 0;
    uint32_t ifd = EXIF32(t + 4);
    if (ifd > tn || tn - ifd < 2) return 0;
    uint32_t count = EXIF16(t + ifd);
    size_t p = (size_t)ifd + 2;
    for (uint32_t i = 0; i < count; i++, p += 12) {
        if (tn - p < 12) return 0;
        if (EXIF16(t + p) != 0x0112) continue;
        uint32_t type = EXIF16(t + p + 2), cnt = EXIF32(t + p + 4), v;
        if (cnt < 1) return 0;
        if (type == 3)
            v = EXIF16(t + p + 8); /* SHORT, the standard type */
        else if (type == 4)
            v = EXIF32(t + p + 8);
        else
            return 0;
        return v >= 1 && v <= 8 ? (int)v : 0;
    }
#undef EXIF16
#undef EXIF32
    return 0;
}

/* Writes the w x h image src as a viewer shows it for EXIF orientation o (PIL's ImageOps.exif_transpose):
 * 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 ccw. */
static void orient_pixels(const uint8_t *src, int w, int h, int o, uint8_t *dst)
{
    int ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (o) {
            case 2:
                sx = w - 1 - x, sy = y;
                break;
            case 3:
                sx = w - 1 - x, sy = h - 1 - y;
                break;
            case 4:
                sx = x, sy = h - 1 - y;
                break;
            case 5:
                sx = y, sy = x;
                break;
            case 6:
                sx = y, sy = h - 1 - x;
                break;
            case 7:
                sx = w - 1 - y, sy = h - 1 - x;
                break;
            case 8:
                sx = w - 1 - y, sy = x;
                break;
            default:
                sx = x, sy = y;
                break;
            }
            memcpy(dst + ((size_t)y * ow + x) * 3, src + ((size_t)sy * w + sx) * 3, 3);
        }
    }
}

/* PIL's cmyk2rgb on Adobe-inverted samples: with c = 255 - stored, R = (255-k) - (255-k)*c/255 rounded. */
static uint8_t cmyk_channel(int stored_c, int stored_k)
{
    int c = 255 - stored_c, nk = stored_k; /* nk = 255 - k */
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Runs inside the setjmp of load_jpeg: every libjpeg call may longjmp back there. Everything it
 * allocates hangs off job, which outlives the jump. */
static int jpeg_decode(jpeg_job *job, const char *name, const uint8_t *buf, size_t len, img_rgb *out,
                       char *err, size_t errlen)
{
    struct jpeg_decompress_struct *ci = &job->cinfo;
    jpeg_create_decompress(ci);
    ci->client_data = job;
    job->progress.progress_monitor = jpeg_on_progress;
    ci->progress = &job->progress;
    jpeg_mem_src(ci, buf, (unsigned long)len);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(ci, TRUE);

    int rc = check_dims(name, "JPEG", ci->image_width, ci->image_height, err, errlen);
    if (rc < 0) return rc;
    int cmyk = 0;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        ci->out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK; the RGB step is ours */
        cmyk = 1;
        break;
    default:
        return fail(VC_ERR_UNSUPPORTED, err, errlen, name, "unsupported JPEG colour space (%d components)",
                    ci->num_components);
    }
    int orientation = 0;
    for (jpeg_saved_marker_ptr m = ci->marker_list; m && !orientation; m = m->next)
        if (m->marker == JPEG_APP0 + 1) orientation = exif_orientation(m->data, m->data_length);

    jpeg_start_decompress(ci);
    int w = (int)ci->output_width, h = (int)ci->output_height;
    if (ci->output_width != ci->image_width || ci->output_height != ci->image_height ||
        ci->output_components != (cmyk ? 4 : 3))
        return fail(VC_ERR_FORMAT, err, errlen, name, "corrupt JPEG: unexpected output geometry");
    size_t row_bytes = (size_t)w * 3; /* w*h <= IMG_MAX_PIXELS, so no overflow below */
    job->pixels = malloc(row_bytes * (size_t)h);
    if (cmyk) job->row = malloc((size_t)w * 4);
    if (!job->pixels || (cmyk && !job->row))
        return fail(VC_ERR_NOMEM, err, errlen, name, "out of memory for a %dx%d image", w, h);
    while (ci->output_scanline < ci->output_height) {
        size_t y = ci->output_scanline;
        JSAMPROW r = cmyk ? job->row : job->pixels + y * row_bytes;
        if (jpeg_read_scanlines(ci, &r, 1) != 1)
            return fail(VC_ERR_FORMAT, err, errlen, name, "corrupt JPEG: decoder stopped at row %zu", y);
        if (cmyk) {
            uint8_t *o = job->pixels + y * row_bytes;
            for (int x = 0; x < w; x++) {
                const uint8_t *s = job->row + (size_t)x * 4;
                o[3 * x + 0] = cmyk_channel(s[0], s[3]);
                o[3 * x + 1] = cmyk_channel(s[1], s[3]);
                o[3 * x + 2] = cmyk_channel(s[2], s[3]);
            }
        }
    }
    jpeg_finish_decompress(ci);

    if (orientation > 1) {
        uint8_t *turned = malloc(row_bytes * (size_t)h);
        if (!turned) return fail(VC_ERR_NOMEM, err, errlen, name, "out of memory for a %dx%d image", w, h);
        orient_pixels(job->pixels, w, h, orientation, turned);
        free(job->pixels);
        job->pixels = turned;
        if (orientation >= 5) {
            int t = w;
            w = h;
            h = t;
        }
    }
    out->data = job->pixels;
    out->w = w;
    out->h = h;
    job->pixels = NULL;
    return VC_OK;
}

static int load_jpeg(const char *name, const uint8_t *buf, size_t len, img_rgb *out, char *err, size_t errlen)
{
    /* On the heap so that nothing libjpeg touches is an automatic variable of the function that calls
     * setjmp (whose values would be indeterminate after the longjmp). */
    jpeg_job *job = calloc(1, sizeof *job);
    if (!job) return fail(VC_ERR_NOMEM, err, errlen, name, "out of memory");
    job->cinfo.err = jpeg_std_error(&job->jerr);
    job->jerr.error_exit = jpeg_on_error;
    job->jerr.emit_message = jpeg_on_message;
    job->cinfo.client_data = job; /* jpeg_create_decompress keeps err and client_data */

    int rc;
    if (!setjmp(job->jump))
        rc = jpeg_decode(job, name, buf, len, out, err, errlen);
    else if (job->too_many_scans)
        rc = fail(VC_ERR_UNSUPPORTED, err, errlen, name, "JPEG has more than %d progressive scans",
                  IMG_JPEG_MAX_SCANS);
    else
        rc = fail(VC_ERR_FORMAT, err, errlen, name, "corrupt JPEG: %s", job->msg);

    jpeg_destroy_decompress(&job->cinfo);
    free(job->pixels);
    free(job->row);
    free(job);
    return rc;
}

/* ---- stb_image formats ---- */

static int skip_gif_sub_blocks(const uint8_t *b, size_t n, size_t *p)
{
    for (;;) {
        if (*p >= n) return 0;
        size_t len = b[(*p)++];
        if (len == 0) return 1;
        if (n - *p < len) return 0;
        *p += len;
    }
}

/* stb reads zeros past the end of a GIF, so a cut first frame would decode into a partly black image;
 * walk the block structure up to the end of the first frame's data instead. */
static int gif_first_frame_complete(const uint8_t *b, size_t n)
{
    if (n < 13) return 0;
    size_t p = 13;
    if (b[10] & 0x80) p += (size_t)3 << ((b[10] & 7) + 1); /* global colour table */
    for (;;) {
        if (p >= n) return 0;
        uint8_t intro = b[p++];
        if (intro == 0x21) { /* extension: label, then sub-blocks */
            if (p >= n) return 0;
            p++;
            if (!skip_gif_sub_blocks(b, n, &p)) return 0;
        } else if (intro == 0x2C) { /* image descriptor, local colour table, LZW code size, data */
            if (n - p < 9) return 0;
            uint8_t flags = b[p + 8];
            p += 9;
            if (flags & 0x80) {
                size_t t = (size_t)3 << ((flags & 7) + 1);
                if (n - p < t) return 0;
                p += t;
            }
            if (p >= n) return 0;
            p++;
            return skip_gif_sub_blocks(b, n, &p);
        } else {
            return 0;
        }
    }
}

/* Reads the next decimal field of a binary PNM header, skipping whitespace and comments. */
static int pnm_field(const uint8_t *b, size_t n, size_t *p, long long *v)
{
    for (;;) {
        if (*p >= n) return 0;
        if (b[*p] == '#') {
            while (*p < n && b[*p] != '\n' && b[*p] != '\r')
                (*p)++;
        } else if (b[*p] == ' ' || b[*p] == '\t' || b[*p] == '\n' || b[*p] == '\r' || b[*p] == '\v' ||
                   b[*p] == '\f') {
            (*p)++;
        } else {
            break;
        }
    }
    if (b[*p] < '0' || b[*p] > '9') return 0;
    *v = 0;
    while (*p < n && b[*p] >= '0' && b[*p] <= '9') {
        *v = *v * 10 + (b[*p] - '0');
        if (*v > INT_MAX) return 0;
        (*p)++;
    }
    return 1;
}

/* Width and height as the header states them, read before any decoder runs so that absurd sizes are
 * refused first; 0 when the header is cut short. */
static int header_dims(img_format f, const uint8_t *b, size_t n, long long *w, long long *h)
{
    size_t p = 2;
    switch (f) {
    case FMT_PNG:
        if (n < 24 || memcmp(b + 12, "IHDR", 4) != 0) return 0;
        *w = rd32be(b + 16);
        *h = rd32be(b + 20);
        return 1;
    case FMT_GIF: /* the logical screen, which is what stb returns for the first frame */
        if (n < 10) return 0;
        *w = rd16le(b + 6);
        *h = rd16le(b + 8);
        return 1;
    case FMT_BMP:
        if (n < 18) return 0;
        if (rd32le(b + 14) == 12) { /* OS/2 BITMAPCOREHEADER: 16-bit sizes */
            if (n < 22) return 0;
            *w = rd16le(b + 18);
            *h = rd16le(b + 20);
            return 1;
        }
        if (n < 26) return 0;
        *w = (long long)rd32le(b + 18) - (rd32le(b + 18) >> 31 ? 1LL << 32 : 0);
        *h = (long long)rd32le(b + 22) - (rd32le(b + 22) >> 31 ? 1LL << 32 : 0);
        if (*h < 0) *h = -*h; /* negative height: rows stored top-down */
        return 1;
    case FMT_PNM:
        return pnm_field(b, n, &p, w) && pnm_field(b, n, &p, h);
    case FMT_TGA: /* sniffing guaranteed the 18-byte header */
        *w = rd16le(b + 12);
        *h = rd16le(b + 14);
        return 1;
    default:
        return 0;
    }
}

/* stb stops at IEND without its CRC and reports a cut chunk only as "outofdata"; walking the chunk list
 * rejects any truncated file with a clear reason. */
static int png_chunks_complete(const uint8_t *b, size_t n)
{
    size_t p = 8;
    for (;;) {
        if (n - p < 12) return 0;
        uint32_t len = rd32be(b + p);
        if (len > 0x7FFFFFFFu || n - p - 12 < len) return 0;
        int iend = memcmp(b + p + 4, "IEND", 4) == 0;
        p += 12 + (size_t)len;
        if (iend) return 1;
    }
}

/* Bytes the pixel data of a stb-decoded file needs past its start, or 0 when the format's size is not
 * fixed by the header (compressed data, handled by the decoder itself). w, h are already validated. */
static long long raw_end(img_format f, const uint8_t *b, size_t n, long long w, long long h)
{
    if (f == FMT_PNM) {
        size_t p = 2;
        long long fw, fh, maxval;
        if (!pnm_field(b, n, &p, &fw) || !pnm_field(b, n, &p, &fh) || !pnm_field(b, n, &p, &maxval))
            return -1;
        if (fw != w || fh != h) return -1;
        p++; /* the single whitespace byte that ends the header */
        long long bytes = (b[1] == '6' ? 3 : 1) * (maxval > 255 ? 2 : 1);
        return (long long)p + w * h * bytes;
    }
    if (f == FMT_BMP && n >= 30) {
        long long off = rd32le(b + 10), hsz = rd32le(b + 14), bpp, comp = 0;
        if (hsz == 12) {
            bpp = rd16le(b + 24);
        } else {
            if (n < 34) return -1;
            bpp = rd16le(b + 28);
            comp = rd32le(b + 30);
        }
        if (comp != 0 && comp != 3 && comp != 6) return 0; /* RLE, JPEG or PNG payload */
        /* the last row's padding is often missing in the wild, so it is not required */
        long long stride = (w * bpp + 31) / 32 * 4;
        return off + stride * (h - 1) + (w * bpp + 7) / 8;
    }
    if (f == FMT_TGA && (b[2] == 1 || b[2] == 2 || b[2] == 3)) {
        long long cmap = b[1] ? (long long)rd16le(b + 5) * ((b[7] + 7) / 8) : 0;
        return 18 + (long long)b[0] + cmap + w * h * ((b[16] + 7) / 8);
    }
    return 0;
}

static int load_stb(const char *name, img_format f, const uint8_t *buf, size_t len, img_rgb *out, char *err,
                    size_t errlen)
{
    static const char *const names[] = {
        [FMT_PNG] = "PNG", [FMT_GIF] = "GIF", [FMT_BMP] = "BMP", [FMT_PNM] = "PNM", [FMT_TGA] = "TGA"};
    const char *fmt = names[f];
    int rc = VC_OK;
    stbi_uc *px = NULL;
    if (len > INT_MAX) return fail(VC_ERR_UNSUPPORTED, err, errlen, name, "%s file too large", fmt);
    long long hw, hh;
    if (!header_dims(f, buf, len, &hw, &hh))
        return fail(VC_ERR_FORMAT, err, errlen, name, "truncated or corrupt %s header", fmt);
    rc = check_dims(name, fmt, hw, hh, err, errlen);
    if (rc < 0) return rc;
    int w, h, comp;
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &comp) || w != hw || h != hh)
        return fail(VC_ERR_FORMAT, err, errlen, name, "corrupt %s header", fmt);
    long long need = raw_end(f, buf, len, w, h);
    if (need < 0) return fail(VC_ERR_FORMAT, err, errlen, name, "corrupt %s header", fmt);
    if (need > (long long)len)
        return fail(VC_ERR_FORMAT, err, errlen, name, "truncated %s: %zu bytes, the header needs %lld", fmt,
                    len, need);
    if (f == FMT_PNG && !png_chunks_complete(buf, len))
        return fail(VC_ERR_FORMAT, err, errlen, name, "truncated PNG: the chunks end before IEND");
    if (f == FMT_GIF && !gif_first_frame_complete(buf, len))
        return fail(VC_ERR_FORMAT, err, errlen, name, "truncated or corrupt GIF: first frame incomplete");

    int dw, dh;
    px = stbi_load_from_memory(buf, (int)len, &dw, &dh, &comp, 3);
    if (!px) {
        const char *why = stbi_failure_reason();
        if (why && strcmp(why, "outofmem") == 0)
            return fail(VC_ERR_NOMEM, err, errlen, name, "out of memory decoding a %dx%d %s", w, h, fmt);
        return fail(VC_ERR_FORMAT, err, errlen, name, "cannot decode %s: corrupt or truncated data (%s)", fmt,
                    why ? why : "unknown");
    }
    if (dw != w || dh != h) {
        rc = fail(VC_ERR_FORMAT, err, errlen, name, "corrupt %s: header says %dx%d, data is %dx%d", fmt, w, h,
                  dw, dh);
        goto end;
    }
    /* copied so that img_free never has to know which allocator made the pixels */
    size_t bytes = (size_t)w * (size_t)h * 3;
    out->data = malloc(bytes);
    if (!out->data) {
        rc = fail(VC_ERR_NOMEM, err, errlen, name, "out of memory for a %dx%d image", w, h);
        goto end;
    }
    memcpy(out->data, px, bytes);
    out->w = w;
    out->h = h;
end:
    stbi_image_free(px);
    return rc;
}

/* ---- entry points ---- */

int img_load_memory(const char *name, const uint8_t *buf, size_t len, img_rgb *out, char *err, size_t errlen)
{
    if (!name) name = "(memory)";
    if (!out) return fail(VC_ERR_ARG, err, errlen, name, "no output image");
    out->data = NULL;
    out->w = out->h = 0;
    if (!buf && len) return fail(VC_ERR_ARG, err, errlen, name, "no input buffer");
    if (len == 0) return fail(VC_ERR_FORMAT, err, errlen, name, "empty file (0 bytes)");
    if ((unsigned long long)len > (unsigned long long)IMG_MAX_FILE_BYTES)
        return fail(VC_ERR_UNSUPPORTED, err, errlen, name, "file too large (%zu bytes, limit 1 GiB)", len);

    const char *other;
    img_format f = sniff(buf, len, &other);
    int rc;
    if (f == FMT_JPEG)
        rc = load_jpeg(name, buf, len, out, err, errlen);
    else if (f != FMT_UNKNOWN)
        rc = load_stb(name, f, buf, len, out, err, errlen);
    else if (other)
        rc = fail(VC_ERR_UNSUPPORTED, err, errlen, name, "unsupported image format (%s)", other);
    else
        rc = fail(VC_ERR_UNSUPPORTED, err, errlen, name, "unsupported image format");
    if (rc < 0) img_free(out);
    return rc;
}

static int read_whole_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    char why[256];
    int rc = VC_OK;
    uint8_t *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = fail(VC_ERR_IO, err, errlen, path, "cannot open: %s", errno_text(errno, why, sizeof why));
        goto end;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = fail(VC_ERR_IO, err, errlen, path, "cannot stat: %s", errno_text(errno, why, sizeof why));
        goto end;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = fail(VC_ERR_IO, err, errlen, path, "is a directory, not an image file");
        goto end;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(VC_ERR_IO, err, errlen, path, "not a regular file");
        goto end;
    }
    if (st.st_size == 0) {
        rc = fail(VC_ERR_FORMAT, err, errlen, path, "empty file (0 bytes)");
        goto end;
    }
    if (st.st_size < 0 || (long long)st.st_size > IMG_MAX_FILE_BYTES) {
        rc = fail(VC_ERR_UNSUPPORTED, err, errlen, path, "file too large (%lld bytes, limit 1 GiB)",
                  (long long)st.st_size);
        goto end;
    }
    size_t n = (size_t)st.st_size, got = 0;
    data = malloc(n);
    if (!data) {
        rc = fail(VC_ERR_NOMEM, err, errlen, path, "out of memory reading %zu bytes", n);
        goto end;
    }
    while (got < n) {
        ssize_t r = read(fd, data + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = fail(VC_ERR_IO, err, errlen, path, "read error: %s", errno_text(errno, why, sizeof why));
            goto end;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got != n) {
        rc = fail(VC_ERR_IO, err, errlen, path, "file shrank while being read");
        goto end;
    }
    *buf = data;
    *len = n;
    data = NULL;
end:
    if (fd >= 0) close(fd);
    free(data);
    return rc;
}

int img_load(const char *path, img_rgb *out, char *err, size_t errlen)
{
    if (!out) return fail(VC_ERR_ARG, err, errlen, path ? path : "(null)", "no output image");
    out->data = NULL;
    out->w = out->h = 0;
    if (!path) return fail(VC_ERR_ARG, err, errlen, "(null)", "no image path");
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_whole_file(path, &buf, &len, err, errlen);
    if (rc == VC_OK) rc = img_load_memory(path, buf, len, out, err, errlen);
    free(buf);
    return rc;
}
