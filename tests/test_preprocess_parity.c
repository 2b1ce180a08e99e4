/* Decoding + preprocessing against PIL + torchvision (tests/parity/gen_preprocess.py) on every sample
 * image and on synthetic ones: the timm ImageNet eval transform and the Fashion-MNIST model's transform.
 * Passes when, un-normalised, at least 99.9 % of values are within 1/255 and 99 % are bit-exact; prints
 * the largest difference.
 * usage: test_preprocess_parity preprocess.safetensors */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/safetensors.h"
#include "testutil.h"
#include "vidcap.h"
#include "vision/image.h"
#include "vision/preprocess.h"

static double worst_levels; /* largest |a - b| * std * 255 over every comparison */

static void compare(const st_file *f, const char *image, const char *pipeline, const img_preprocess *p,
                    const img_rgb *im)
{
    char name[512], err[256];
    snprintf(name, sizeof name, "%s.%s", image, pipeline);
    const st_tensor *t = st_find(f, name);
    int side = img_preprocess_side(p), nc = p->channels;
    TU_CHECK(t && t->ndim == 3 && t->shape[0] == side && t->shape[1] == side && t->shape[2] == nc,
             "%s: missing or not [%d,%d,%d]", name, side, side, nc);
    if (!t || t->numel != (int64_t)side * side * nc) return;

    float *out = malloc(sizeof(float) * (size_t)t->numel);
    int rc = img_preprocess_run(p, im, out, err, sizeof err);
    TU_CHECK(rc == 0, "%s: %s", name, err);
    if (rc == 0) {
        int64_t over = 0, exact = 0, at = 0;
        double worst = 0; /* in 8-bit levels */
        for (int64_t i = 0; i < t->numel; i++) {
            double d = fabs((double)out[i] - t->data[i]) * p->std[i % nc];
            if (!(d <= 1.0 / 255 + 1e-6)) over++;
            if (out[i] == t->data[i]) exact++;
            if (!(d * 255 <= worst)) worst = isnan(d) ? INFINITY : d * 255, at = i;
        }
        if (worst > worst_levels) worst_levels = worst;
        fprintf(stderr, "  %-28s max |diff| %.4f/255 at %lld, %lld of %lld bit-exact, %lld over 1/255\n",
                name, worst, (long long)at, (long long)exact, (long long)t->numel, (long long)over);
        TU_CHECK(over * 1000 <= t->numel, "%s: %lld of %lld values differ by more than 1/255", name,
                 (long long)over, (long long)t->numel);
        /* The same integer arithmetic as PIL and the same libjpeg give identical bytes, and torch's float32
         * ToTensor/Normalize are single IEEE operations: anything but rare exceptions is an off-by-one
         * rounding bug the 1/255 bound above cannot see. */
        TU_CHECK(exact * 100 >= t->numel * 99, "%s: only %lld of %lld values bit-exact", name,
                 (long long)exact, (long long)t->numel);
    }
    free(out);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s preprocess.safetensors\n", argv[0]);
        return 2;
    }
    char err[512];
    st_file *f = NULL;
    int rc = st_open(argv[1], &f, err, sizeof err);
    TU_CHECK(rc == 0, "%s", err);
    if (rc) return tu_finish("test_preprocess_parity");

    img_preprocess timm = img_preprocess_timm_imagenet(), fashion;
    rc = img_preprocess_parse(
        "{\"channels\":1,\"resize\":28,\"interpolation\":\"bicubic\",\"crop\":28,\"pad\":2,"
        "\"mean\":[0.2860],\"std\":[0.3530]}",
        &fashion, err, sizeof err);
    TU_CHECK(rc == 0, "%s", err);

    const char *list = st_meta(f, "images");
    TU_CHECK(list && *list, "no 'images' metadata");
    char *names = strdup(list ? list : "");
    int n = 0;
    for (char *save = NULL, *image = strtok_r(names, ",", &save); image && rc == 0;
         image = strtok_r(NULL, ",", &save)) {
        char key[512];
        snprintf(key, sizeof key, "path.%s", image);
        const char *path = st_meta(f, key);
        TU_CHECK(path, "no metadata %s", key);
        if (!path) continue;
        img_rgb im;
        int lrc = img_load(path, &im, err, sizeof err);
        TU_CHECK(lrc == 0, "%s", err);
        if (lrc) continue;
        compare(f, image, "timm", &timm, &im);
        compare(f, image, "fashion", &fashion, &im);
        img_free(&im);
        n++;
    }
    free(names);
    TU_CHECK(n * 2 == st_n_tensors(f), "compared %d images, the file holds %d tensors", n, st_n_tensors(f));
    fprintf(stderr, "test_preprocess_parity: %d images, largest difference %.4f/255 (after un-normalising)\n",
            n, worst_levels);
    st_close(f);
    return tu_finish("test_preprocess_parity");
}
