/* Image files to 8-bit RGB pixels: JPEG through libjpeg-turbo (EXIF orientation applied), PNG, BMP, GIF,
 * TGA and PNM through stb_image. The format is recognised from the first bytes, never from the name.
 *
 * Conversions follow PIL's Image.convert('RGB'), the oracle the models were trained against: grey is
 * replicated, palettes are expanded, alpha is dropped without compositing (a transparent pixel keeps its
 * stored colour), 16-bit samples keep their high byte, CMYK/YCCK JPEGs are read with Adobe (inverted)
 * polarity. Known differences from PIL: 16-bit greyscale PNGs (PIL clips the 16-bit value at 255, we keep
 * the high byte as viewers do), transparent pixels of a GIF's first frame (black here, the palette
 * colour in PIL), and EXIF orientation is honoured for JPEG only.
 *
 * Strictness: any libjpeg warning about the pixel data (premature end, corrupt data) is an error, so a
 * truncated JPEG is rejected rather than grey-filled; PNG, GIF, PNM, uncompressed BMP and TGA files too
 * short for their pixel data are rejected (truncated RLE TGA is not detected: stb fills it with zeros).
 * Dimensions are checked from the header before any pixel memory is allocated. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define IMG_MAX_SIDE 16384
#define IMG_MAX_PIXELS 100000000LL
#define IMG_MAX_FILE_BYTES (1LL << 30)

typedef struct img_rgb {
    uint8_t *data; /* w*h*3 bytes, rows of w*3, top row first as a viewer shows the image */
    int w, h;
} img_rgb;

/* Decodes the file at path. On failure returns a negative VC_ERR_*, leaves *out zeroed and writes
 * "path: reason" (one line) into err. */
int img_load(const char *path, img_rgb *out, char *err, size_t errlen);
/* Same on bytes already in memory; name is only used in error messages. */
int img_load_memory(const char *name, const uint8_t *buf, size_t len, img_rgb *out, char *err, size_t errlen);
/* Frees the pixels and zeroes the fields; NULL and already-freed images are fine. */
void img_free(img_rgb *img);
