/* Explanation pictures: a score map as a JET heatmap over the original image, plus boxes. */
#pragma once
#include "vision/image.h"
#include "vision/preprocess.h"

typedef struct heatmap_box {
    int x0, y0, x1, y1; /* model-input pixels */
    int brightness;     /* 0..255 outline grey level: the GradCAT leaf is drawn brightest */
} heatmap_box;

/* Renders `img` at its own aspect (scaled up by an integer factor when its shorter side is under 224 px,
 * so small images stay visible) with score[grid x grid] (one cell = cell_px model-input pixels) blended
 * as pytorch-grad-cam does: min-max normalise, bilinear upsample, JET in RGB order, 0.5 heat + 0.5 image,
 * divide by the maximum. Model-input coordinates map back to the image through pre's resize/crop/pad;
 * pixels the model never saw (outside the center crop) are shown dimmed without heat.
 * out->data is malloc'ed (free with img_free). Returns 0 or VC_ERR_NOMEM. */
int heatmap_render(const img_rgb *img, const img_preprocess *pre, const float *score, int grid, int cell_px,
                   const heatmap_box *boxes, int n_boxes, img_rgb *out);
