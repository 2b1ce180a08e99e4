/* Heatmap rendering for `vidcap explain`, following pytorch-grad-cam's show_cam_on_image conventions
 * (specs/ecosystem_style.md §1.5) so users can compare pictures side by side. */
#include "vision/heatmap.h"

#include <math.h>
#include <stdlib.h>

#include "vidcap.h"

static float clamp01(float v)
{
    return v < 0.f ? 0.f : v > 1.f ? 1.f : v;
}

/* OpenCV's COLORMAP_JET as piecewise-linear RGB (blue -> cyan -> yellow -> red), channel order R, G, B */
static void jet(float t, float rgb[3])
{
    rgb[0] = clamp01(1.5f - fabsf(4.f * t - 3.f));
    rgb[1] = clamp01(1.5f - fabsf(4.f * t - 2.f));
    rgb[2] = clamp01(1.5f - fabsf(4.f * t - 1.f));
}

/* bilinear sample of a grid x grid map at continuous cell coordinates (cell centres at i + 0.5) */
static float sample(const float *m, int grid, float gx, float gy)
{
    float fx = gx - 0.5f, fy = gy - 0.5f;
    fx = fx < 0 ? 0 : fx > grid - 1 ? (float)(grid - 1) : fx;
    fy = fy < 0 ? 0 : fy > grid - 1 ? (float)(grid - 1) : fy;
    int x0 = (int)fx, y0 = (int)fy;
    int x1 = x0 + 1 < grid ? x0 + 1 : x0, y1 = y0 + 1 < grid ? y0 + 1 : y0;
    float ax = fx - x0, ay = fy - y0;
    float top = m[y0 * grid + x0] * (1 - ax) + m[y0 * grid + x1] * ax;
    float bot = m[y1 * grid + x0] * (1 - ax) + m[y1 * grid + x1] * ax;
    return top * (1 - ay) + bot * ay;
}

int heatmap_render(const img_rgb *img, const img_preprocess *pre, const float *score, int grid, int cell_px,
                   const heatmap_box *boxes, int n_boxes, img_rgb *out)
{
    img_geometry g;
    img_preprocess_geometry(pre, img->w, img->h, &g);
    const int shorter = img->w < img->h ? img->w : img->h;
    int k = shorter < 224 ? (224 + shorter - 1) / shorter : 1;
    while (k > 1 && ((int64_t)img->w * k > 4096 || (int64_t)img->h * k > 4096))
        k--;
    const int W = img->w * k, H = img->h * k;
    float *cam = malloc((size_t)W * H * 3 * sizeof(float));
    uint8_t *px = malloc((size_t)W * H * 3);
    if (!cam || !px) {
        free(cam);
        free(px);
        return VC_ERR_NOMEM;
    }
    float lo = score[0], hi = score[0];
    for (int i = 1; i < grid * grid; i++) {
        lo = score[i] < lo ? score[i] : lo;
        hi = score[i] > hi ? score[i] : hi;
    }
    /* original-image pixel -> resized -> cropped -> model input, in continuous coordinates */
    const float sx = (float)g.resized_w / img->w, sy = (float)g.resized_h / img->h;
    float peak = 1e-7f;
    for (int Y = 0; Y < H; Y++)
        for (int X = 0; X < W; X++) {
            const uint8_t *src = img->data + ((size_t)(Y / k) * img->w + X / k) * 3;
            float *c = cam + ((size_t)Y * W + X) * 3;
            float u = ((X + 0.5f) / k) * sx - g.left + pre->pad, v = ((Y + 0.5f) / k) * sy - g.top + pre->pad;
            int seen = u >= pre->pad && u < pre->pad + pre->crop && v >= pre->pad && v < pre->pad + pre->crop;
            if (!seen) {
                for (int ch = 0; ch < 3; ch++)
                    c[ch] = 0.5f * src[ch] / 255.f;
            } else {
                float t = (sample(score, grid, u / cell_px, v / cell_px) - lo) / (hi - lo + 1e-7f), heat[3];
                jet((float)(int)(255.f * t) / 255.f, heat); /* applyColorMap(uint8(255 * mask)) truncates */
                for (int ch = 0; ch < 3; ch++)
                    c[ch] = 0.5f * heat[ch] + 0.5f * src[ch] / 255.f;
            }
            for (int ch = 0; ch < 3; ch++)
                peak = c[ch] > peak ? c[ch] : peak;
        }
    for (size_t i = 0; i < (size_t)W * H * 3; i++)
        px[i] = (uint8_t)(255.f * cam[i] / peak); /* uint8() truncates */
    free(cam);
    /* boxes: model-input pixels -> output pixels */
    const int thick = shorter * k / 100 > 1 ? shorter * k / 100 : 1;
    for (int b = 0; b < n_boxes; b++) {
        int x0 = (int)lrintf((boxes[b].x0 - pre->pad + g.left) / sx * k);
        int x1 = (int)lrintf((boxes[b].x1 - pre->pad + g.left) / sx * k);
        int y0 = (int)lrintf((boxes[b].y0 - pre->pad + g.top) / sy * k);
        int y1 = (int)lrintf((boxes[b].y1 - pre->pad + g.top) / sy * k);
        for (int Y = y0; Y < y1; Y++)
            for (int X = x0; X < x1; X++) {
                if (X < 0 || Y < 0 || X >= W || Y >= H) continue;
                int edge = X < x0 + thick || X >= x1 - thick || Y < y0 + thick || Y >= y1 - thick;
                if (!edge) continue;
                uint8_t *p = px + ((size_t)Y * W + X) * 3;
                p[0] = p[1] = p[2] = (uint8_t)boxes[b].brightness;
            }
    }
    out->data = px;
    out->w = W;
    out->h = H;
    return 0;
}
