/* Model input preprocessing, bit-compatible with the PIL + torchvision eval transforms the models were
 * trained with: [convert('L')] -> Resize(resize, BICUBIC) -> CenterCrop(crop) -> [Pad(pad)] -> ToTensor ->
 * Normalize(mean, std), output channels-last float32.
 *
 * Resize is PIL's antialiased bicubic (ImagingResample: a = -0.5, support scaled by the downscale factor,
 * 22-bit fixed-point coefficients, horizontal pass then vertical, uint8 rounding and clamping between them);
 * only the pixels that survive the crop are computed, and they are identical to resizing the whole image.
 * An image smaller than the crop (possible only with resize = 0) is rejected with VC_ERR_UNSUPPORTED
 * instead of being zero-padded as torchvision's CenterCrop would: such an input is almost always a
 * mistake and padding would silently change what the model sees. */
#pragma once
#include <stddef.h>

#include "vision/image.h"

#define IMG_PREPROCESS_MAX_SIZE 4096

typedef struct img_preprocess {
    int channels;          /* 1 (PIL 'L' conversion first) or 3 */
    int resize;            /* shorter side target, 0 = none */
    int crop;              /* center crop side */
    int pad;               /* zero-valued pixels added on every side after crop, before normalisation */
    float mean[3], std[3]; /* per channel, on values in [0, 1] */
} img_preprocess;

/* Parses the JSON object stored in a model's metadata, e.g.
 * {"channels":1,"resize":28,"interpolation":"bicubic","crop":28,"pad":2,"mean":[0.286],"std":[0.353]}.
 * "resize" (0), "pad" (0) and "interpolation" ("bicubic", the only one supported) are optional; unknown
 * keys are ignored. err gets "preprocess: reason" without a file name: the caller prefixes the file. */
int img_preprocess_parse(const char *json, img_preprocess *out, char *err, size_t errlen);
/* 0 when p is usable, else VC_ERR_ARG and the reason. */
int img_preprocess_check(const img_preprocess *p, char *err, size_t errlen);
/* timm's ImageNet eval: Resize(256, bicubic), CenterCrop(224), ImageNet mean/std. */
img_preprocess img_preprocess_timm_imagenet(void);
/* Side of the output image: crop + 2 * pad. */
int img_preprocess_side(const img_preprocess *p);
/* Where the model's view lies in a w x h image: the size after Resize and the crop's top-left corner in
 * resized pixels. Model-input pixel (x, y) is resized pixel (x - pad + left, y - pad + top), i.e. image
 * pixel ((x - pad + left) * w / resized_w, ...). Returns VC_ERR_ARG for invalid p or size, and
 * VC_ERR_UNSUPPORTED (left and top then 0) when the resized image is smaller than the crop. */
typedef struct img_geometry {
    int resized_w, resized_h;
    int left, top;
} img_geometry;
int img_preprocess_geometry(const img_preprocess *p, int w, int h, img_geometry *g);
/* Writes out[side][side][channels]. Fails on invalid params (VC_ERR_ARG), an empty image (VC_ERR_ARG), an
 * image smaller than the crop (VC_ERR_UNSUPPORTED) or out of memory. */
int img_preprocess_run(const img_preprocess *p, const img_rgb *in, float *out, char *err, size_t errlen);
