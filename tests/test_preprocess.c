/* Preprocessing parameters and geometry without PyTorch: JSON validation and its messages, exact values
 * on paths that need no resampling, torchvision's half-to-even crop offsets, PIL's 'L' weights, padding,
 * and extreme aspect ratios that must not allocate the whole resized image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vidcap.h"
#include "vision/preprocess.h"

static void expect_parse_error(const char *json, int code, const char *substring)
{
    char err[256] = "";
    img_preprocess p;
    int rc = img_preprocess_parse(json, &p, err, sizeof err);
    TU_CHECK(rc == code, "%s: rc %d want %d (%s)", json, rc, code, err);
    TU_CHECK(strstr(err, substring) && strncmp(err, "preprocess: ", 12) == 0, "%s: message '%s' lacks '%s'",
             json, err, substring);
}

static void test_parse(void)
{
    char err[256] = "";
    img_preprocess p;
    int rc = img_preprocess_parse(
        "{\"channels\":1,\"resize\":28,\"interpolation\":\"bicubic\",\"crop\":28,\"pad\":2,"
        "\"mean\":[0.286],\"std\":[0.353]}",
        &p, err, sizeof err);
    TU_CHECK(rc == 0, "%s", err);
    TU_CHECK(p.channels == 1 && p.resize == 28 && p.crop == 28 && p.pad == 2 && p.mean[0] == 0.286f &&
                 p.std[0] == 0.353f,
             "fashion config parsed wrong");
    TU_CHECK(img_preprocess_side(&p) == 32, "side %d", img_preprocess_side(&p));

    rc = img_preprocess_parse(
        "{\"channels\":3,\"resize\":256,\"interpolation\":\"bicubic\",\"crop\":224,\"pad\":0,"
        "\"mean\":[0.485,0.456,0.406],\"std\":[0.229,0.224,0.225]}",
        &p, err, sizeof err);
    img_preprocess t = img_preprocess_timm_imagenet();
    TU_CHECK(rc == 0 && memcmp(&p, &t, sizeof p) == 0,
             "timm config differs from img_preprocess_timm_imagenet: %s", err);
    TU_CHECK(img_preprocess_side(&t) == 224 && img_preprocess_check(&t, err, sizeof err) == 0, "timm preset");

    /* optional keys take their defaults; unknown keys are ignored */
    rc = img_preprocess_parse("{\"channels\":1,\"crop\":8,\"mean\":[0],\"std\":[1],\"note\":\"x\"}", &p, err,
                              sizeof err);
    TU_CHECK(rc == 0 && p.resize == 0 && p.pad == 0, "defaults: %s", err);

    expect_parse_error("{\"channels\":3,\"resize\":256,\"interpolation\":\"bilinear\",\"crop\":224,"
                       "\"mean\":[0,0,0],\"std\":[1,1,1]}",
                       VC_ERR_UNSUPPORTED, "only 'bicubic'");
    expect_parse_error("{\"channels\":1,\"crop\":8,\"interpolation\":3,\"mean\":[0],\"std\":[1]}",
                       VC_ERR_FORMAT, "'interpolation' must be a string");
    expect_parse_error("{\"channels\":1,\"crop\":8,\"mean\":[0],\"std\":[0]}", VC_ERR_FORMAT, "'std'[0]");
    expect_parse_error("{\"channels\":1,\"crop\":8,\"mean\":[0],\"std\":[-1]}", VC_ERR_FORMAT, "> 0");
    expect_parse_error("{\"channels\":3,\"crop\":8,\"mean\":[0],\"std\":[1,1,1]}", VC_ERR_FORMAT,
                       "'mean' must be an array of 3");
    expect_parse_error("{\"channels\":1,\"crop\":8,\"mean\":[0],\"std\":[1,1]}", VC_ERR_FORMAT,
                       "'std' must be an array of 1");
    expect_parse_error("{\"channels\":1,\"crop\":8,\"mean\":[\"a\"],\"std\":[1]}", VC_ERR_FORMAT,
                       "'mean'[0]");
    expect_parse_error("{\"channels\":2,\"crop\":8,\"mean\":[0,0],\"std\":[1,1]}", VC_ERR_FORMAT,
                       "'channels'");
    expect_parse_error("{\"channels\":1,\"resize\":20,\"crop\":28,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT,
                       "larger than 'resize'");
    expect_parse_error("{\"channels\":1,\"crop\":5000,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT,
                       "'crop' must be");
    expect_parse_error("{\"channels\":1,\"crop\":0,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT,
                       "'crop' must be");
    expect_parse_error("{\"channels\":1,\"crop\":27.5,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT,
                       "'crop' must be");
    expect_parse_error("{\"channels\":1,\"resize\":-1,\"crop\":8,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT,
                       "'resize' must be");
    expect_parse_error("{\"channels\":1,\"crop\":4000,\"pad\":100,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT,
                       "'pad' must be");
    expect_parse_error("{\"channels\":1,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT, "missing 'crop'");
    expect_parse_error("{\"crop\":8,\"mean\":[0],\"std\":[1]}", VC_ERR_FORMAT, "missing 'channels'");
    expect_parse_error("{\"channels\":1,\"crop\":8,\"std\":[1]}", VC_ERR_FORMAT, "missing 'mean'");
    expect_parse_error("[1,2,3]", VC_ERR_FORMAT, "JSON object");
    expect_parse_error("{\"channels\":1,", VC_ERR_FORMAT, "not valid JSON");
    expect_parse_error("", VC_ERR_FORMAT, "not valid JSON");
    rc = img_preprocess_parse(NULL, &p, err, sizeof err);
    TU_CHECK(rc == VC_ERR_ARG, "NULL json: %d", rc);
}

/* w x h RGB image whose pixel (x, y) is f(x, y, c) */
static img_rgb make_image(int w, int h, int (*f)(int x, int y, int c))
{
    img_rgb im = {malloc((size_t)w * h * 3), w, h};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                im.data[((size_t)y * w + x) * 3 + c] = (uint8_t)f(x, y, c);
    return im;
}

static int f_coords(int x, int y, int c)
{
    return c == 0 ? x * 7 % 256 : c == 1 ? y * 5 % 256 : (x * 3 + y * 11) % 256;
}

static int f_const(int x, int y, int c)
{
    return 100 + 50 * c;
}

static int f_red(int x, int y, int c)
{
    return c == 0 ? 255 : c == 1 ? 128 : 3;
}

static float normalised(int v, float mean, float std)
{
    return ((float)v / 255.0f - mean) / std;
}

static void test_no_resample(void)
{
    char err[256];
    img_preprocess p = {.channels = 3,
                        .resize = 0,
                        .crop = 5,
                        .pad = 2,
                        .mean = {0.1f, 0.2f, 0.3f},
                        .std = {0.5f, 0.25f, 2.0f}};
    /* center crop offsets: torchvision's int(round((size - crop) / 2.0)) rounds half to even, so 0.5 -> 0,
     * 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, 4.5 -> 4. Images are w x (w + 2): {w, left, top}. */
    static const int sizes[][3] = {{5, 0, 1}, {6, 0, 2},  {7, 1, 2}, {8, 2, 2},
                                   {9, 2, 3}, {10, 2, 4}, {12, 4, 4}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int w = sizes[t][0], off = sizes[t][1], offy = sizes[t][2];
        img_rgb im = make_image(w, w + 2, f_coords);
        int side = img_preprocess_side(&p);
        float *out = malloc(sizeof(float) * side * side * 3);
        int rc = img_preprocess_run(&p, &im, out, err, sizeof err);
        TU_CHECK(rc == 0, "%s", err);
        int bad = 0;
        for (int y = 0; y < side && rc == 0; y++)
            for (int x = 0; x < side; x++)
                for (int c = 0; c < 3; c++) {
                    int inside = y >= 2 && y < 7 && x >= 2 && x < 7;
                    int v = inside ? f_coords(x - 2 + off, y - 2 + offy, c) : 0;
                    float want = normalised(v, p.mean[c], p.std[c]);
                    if (out[((size_t)y * side + x) * 3 + c] != want && bad++ < 3)
                        TU_CHECK(0, "w=%d (%d,%d,%d): %g want %g", w, x, y, c,
                                 out[((size_t)y * side + x) * 3 + c], want);
                }
        free(out);
        img_free(&im);
    }

    /* resize to the shorter side it already has: PIL returns the image unchanged */
    img_rgb im = make_image(30, 41, f_coords);
    img_preprocess a = {.channels = 3, .resize = 30, .crop = 30, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    img_preprocess b = a;
    b.resize = 0;
    float *oa = malloc(sizeof(float) * 30 * 30 * 3), *ob = malloc(sizeof(float) * 30 * 30 * 3);
    TU_CHECK(img_preprocess_run(&a, &im, oa, err, sizeof err) == 0, "%s", err);
    TU_CHECK(img_preprocess_run(&b, &im, ob, err, sizeof err) == 0, "%s", err);
    TU_CHECK(memcmp(oa, ob, sizeof(float) * 30 * 30 * 3) == 0, "resize to the same size changed pixels");
    free(oa);
    free(ob);
    img_free(&im);

    /* PIL's 'L': (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 */
    im = make_image(4, 4, f_red);
    img_preprocess g = {.channels = 1, .crop = 4, .mean = {0}, .std = {1}};
    float og[16];
    TU_CHECK(img_preprocess_run(&g, &im, og, err, sizeof err) == 0, "%s", err);
    int l = (255 * 19595 + 128 * 38470 + 3 * 7471 + 0x8000) >> 16;
    TU_CHECK(og[5] == (float)l / 255.0f, "L conversion: %g want %d/255", og[5] * 255, l);
    img_free(&im);
}

static void test_resample_sanity(void)
{
    char err[256];
    /* weights sum to one: a flat image stays flat through up- and downscaling */
    int shapes[][2] = {{50, 37}, {9, 13}, {300, 200}, {1, 1}, {2, 500}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        img_rgb im = make_image(shapes[t][0], shapes[t][1], f_const);
        img_preprocess p = {.channels = 3, .resize = 16, .crop = 16, .mean = {0, 0, 0}, .std = {1, 1, 1}};
        float out[16 * 16 * 3];
        int rc = img_preprocess_run(&p, &im, out, err, sizeof err);
        TU_CHECK(rc == 0, "%s", err);
        for (int i = 0; i < 16 * 16 * 3 && rc == 0; i++)
            if (out[i] != (float)(100 + 50 * (i % 3)) / 255.0f) {
                TU_CHECK(0, "%dx%d flat image: value %g at %d", im.w, im.h, out[i] * 255, i);
                break;
            }
        img_free(&im);
    }

    /* extreme aspect ratios: the resized image would be 224 x 3.7 million pixels; only the crop is made */
    int extremes[][2] = {{IMG_MAX_SIDE, 1}, {1, IMG_MAX_SIDE}, {IMG_MAX_SIDE, 3}};
    for (size_t t = 0; t < 3; t++) {
        img_rgb im = make_image(extremes[t][0], extremes[t][1], f_coords);
        img_preprocess p = img_preprocess_timm_imagenet();
        float *out = malloc(sizeof(float) * 224 * 224 * 3);
        int rc = img_preprocess_run(&p, &im, out, err, sizeof err);
        TU_CHECK(rc == 0, "%dx%d: %s", im.w, im.h, err);
        int finite = 1;
        for (int i = 0; i < 224 * 224 * 3; i++)
            finite &= isfinite(out[i]) && fabsf(out[i]) < 3;
        TU_CHECK(finite, "%dx%d: values out of range", im.w, im.h);
        free(out);
        img_free(&im);
    }
}

static void test_geometry(void)
{
    img_preprocess t = img_preprocess_timm_imagenet();
    img_geometry g;
    int rc = img_preprocess_geometry(&t, 300, 200, &g);
    TU_CHECK(rc == 0 && g.resized_w == 384 && g.resized_h == 256 && g.left == 80 && g.top == 16,
             "300x200: %d %dx%d +%d+%d", rc, g.resized_w, g.resized_h, g.left, g.top);
    rc = img_preprocess_geometry(&t, 257, 256, &g); /* 33 / 2 = 16.5 rounds to 16 */
    TU_CHECK(rc == 0 && g.resized_w == 257 && g.left == 16 && g.top == 16, "257x256: +%d+%d", g.left, g.top);
    rc = img_preprocess_geometry(&t, 100, 333, &g); /* int(256 * 333 / 100) = 852 */
    TU_CHECK(rc == 0 && g.resized_w == 256 && g.resized_h == 852 && g.left == 16 && g.top == 314,
             "100x333: %dx%d +%d+%d", g.resized_w, g.resized_h, g.left, g.top);
    t.resize = 0;
    rc = img_preprocess_geometry(&t, 100, 333, &g);
    TU_CHECK(rc == VC_ERR_UNSUPPORTED && g.left == 0 && g.top == 0, "smaller than crop: %d", rc);
    rc = img_preprocess_geometry(&t, 0, 333, &g);
    TU_CHECK(rc == VC_ERR_ARG, "zero width: %d", rc);
}

static void test_run_errors(void)
{
    char err[256];
    float out[8 * 8 * 3];
    img_preprocess p = {.channels = 3, .crop = 8, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    img_rgb im = make_image(7, 20, f_coords);
    int rc = img_preprocess_run(&p, &im, out, err, sizeof err);
    TU_CHECK(rc == VC_ERR_UNSUPPORTED && strstr(err, "smaller than the 8x8 center crop"),
             "small image: %d %s", rc, err);
    img_rgb empty = {0};
    rc = img_preprocess_run(&p, &empty, out, err, sizeof err);
    TU_CHECK(rc == VC_ERR_ARG, "empty image: %d %s", rc, err);
    p.std[1] = 0;
    rc = img_preprocess_run(&p, &im, out, err, sizeof err);
    TU_CHECK(rc == VC_ERR_ARG && strstr(err, "'std'[1]"), "std 0: %d %s", rc, err);
    img_free(&im);
}

int main(void)
{
    test_parse();
    test_no_resample();
    test_resample_sanity();
    test_geometry();
    test_run_errors();
    return tu_finish("test_preprocess");
}
