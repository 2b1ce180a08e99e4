/* Heatmap rendering: RGB (not BGR) JET, the picture at the image's own aspect and size (upscaled only when
 * small), boxes mapped back through resize and center crop, pixels outside the crop left without heat. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vision/heatmap.h"

static const uint8_t *px(const img_rgb *im, int x, int y)
{
    return im->data + ((size_t)y * im->w + x) * 3;
}

int main(void)
{
    /* a 400x300 grey image, timm-style preprocessing: resize 256 (-> 341x256), crop 224 */
    img_rgb img = {malloc(400 * 300 * 3), 400, 300};
    memset(img.data, 128, 400 * 300 * 3);
    img_preprocess pre = img_preprocess_timm_imagenet();
    /* 4x4 score map, hot top-left cell, cold elsewhere; one cell = 56 model px */
    float score[16] = {0};
    score[0] = 1.f;
    heatmap_box box = {0, 0, 112, 112, 255};
    img_rgb out = {0};
    TU_CHECK(heatmap_render(&img, &pre, score, 4, 56, &box, 1, &out) == 0, "render failed");
    TU_CHECK(out.w == 400 && out.h == 300, "a 400x300 image renders at 400x300, got %dx%d", out.w, out.h);
    /* resize 341x256, crop offsets left 58 (round half to even of 58.5), top 16: model (0,0) is original
     * (58 / 0.8525, 16 / 0.8533) = (68, 18.75); the hot cell (model px 0..56) is red there */
    const uint8_t *hot = px(&out, 80, 30), *cold = px(&out, 250, 250);
    TU_CHECK(hot[0] > hot[2] + 60, "hot cell must be red in RGB order: %d,%d,%d", hot[0], hot[1], hot[2]);
    TU_CHECK(cold[2] > cold[0] + 30, "cold cell must be blue in RGB order: %d,%d,%d", cold[0], cold[1],
             cold[2]);
    /* outside the 224 crop (x < 68 in the original): dimmed grey, no colour */
    const uint8_t *out_of_view = px(&out, 10, 150);
    TU_CHECK(out_of_view[0] == out_of_view[1] && out_of_view[1] == out_of_view[2] && out_of_view[0] < 128,
             "outside the crop: dimmed grey, got %d,%d,%d", out_of_view[0], out_of_view[1], out_of_view[2]);
    /* the box: model px [0,112) -> original x from 68 to 199, drawn as a white outline 3 px wide */
    const uint8_t *edge = px(&out, 69, 100), *inside = px(&out, 120, 100);
    TU_CHECK(edge[0] == 255 && edge[1] == 255 && edge[2] == 255, "box edge white, got %d,%d,%d", edge[0],
             edge[1], edge[2]);
    TU_CHECK(!(inside[0] == 255 && inside[1] == 255 && inside[2] == 255), "box interior is not outlined");
    img_free(&out);

    /* a 28x28 image is upscaled by an integer factor to at least 224 px */
    img_rgb small = {malloc(28 * 28 * 3), 28, 28};
    memset(small.data, 0, 28 * 28 * 3);
    img_preprocess fashion = {
        .channels = 1, .resize = 28, .crop = 28, .pad = 2, .mean = {0.286f}, .std = {0.353f}};
    float s2[256];
    for (int i = 0; i < 256; i++)
        s2[i] = (float)i;
    TU_CHECK(heatmap_render(&small, &fashion, s2, 16, 2, NULL, 0, &out) == 0, "render failed");
    TU_CHECK(out.w == 224 && out.h == 224, "28 px upscaled x8 to 224, got %dx%d", out.w, out.h);
    img_free(&out);
    free(img.data);
    free(small.data);
    return tu_finish("heatmap");
}
