/* `vidcap explain`: classify, run GradCAT on the target class, map its path back to the original image and
 * optionally render the heatmap picture (written to a temporary name, then renamed: never a partial PNG). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "pipeline/model.h"
#include "vision/heatmap.h"
#include "vision/image.h"

vc_explain_params vc_explain_default_params(void)
{
    vc_explain_params p = {.target = -1, .flip_sign = 0, .png = NULL};
    return p;
}

int vc_model_find_label(const vc_model *m, const char *name)
{
    for (int i = 0; i < m->n_labels; i++)
        if (!strcmp(m->labels[i], name)) return i;
    return -1;
}

int vc_explain_target(const vc_state *s)
{
    return s->explain.target;
}

int vc_explain_path_len(const vc_state *s)
{
    return s->explain.n_path;
}

void vc_explain_path_node(const vc_state *s, int i, int *level, int box[4], float *score)
{
    *level = s->explain.path[i].level;
    memcpy(box, s->explain_boxes[i], 4 * sizeof(int));
    *score = s->explain.path[i].score;
}

static int ensure_buffers(vc_state *s)
{
    const nest_config *c = &s->model->nest.cfg;
    if (nest_state_enable_backward(&s->nest, 0)) return VC_ERR_NOMEM;
    for (int l = 0; l < c->num_levels; l++)
        if (!s->explain.score_maps[l] &&
            !(s->explain.score_maps[l] = malloc((size_t)c->grid[l] * c->grid[l] * sizeof(float))))
            return VC_ERR_NOMEM;
    return 0;
}

/* stb writes to a FILE we name; a failure removes the temporary file so no partial PNG remains */
static int write_png_atomic(const char *path, const img_rgb *img, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (!stbi_write_png(tmp, img->w, img->h, 3, img->data, img->w * 3)) {
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot write the PNG (is the folder writable?)", path);
        return VC_ERR_IO;
    }
    if (rename(tmp, path)) {
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot rename the finished PNG into place", path);
        return VC_ERR_IO;
    }
    return 0;
}

int vc_explain_file(vc_state *s, const char *path, vc_explain_params p, char *err, size_t errlen)
{
    img_rgb img = {0};
    int rc = img_load(path, &img, err, errlen);
    if (rc) return rc;
    rc = vc_explain_rgb(s, img.data, img.w, img.h, path, p, err, errlen);
    img_free(&img);
    return rc;
}

int vc_explain_rgb(vc_state *s, const uint8_t *rgb, int w, int h, const char *path, vc_explain_params p,
                   char *err, size_t errlen)
{
    const vc_model *m = s->model;
    const nest_config *c = &m->nest.cfg;
    const img_rgb img = {(uint8_t *)rgb, w, h};
    img_rgb pic = {0};
    int rc;
    if (p.target >= c->num_classes) {
        snprintf(err, errlen, "class index %d out of range (the model has %d classes)", p.target,
                 c->num_classes);
        return VC_ERR_ARG;
    }
    if ((rc = ensure_buffers(s))) {
        snprintf(err, errlen, "%s: out of memory for the backward pass", path);
        return rc;
    }
    char reason[256];
    if ((rc = img_preprocess_run(&m->pre, &img, s->input, reason, sizeof(reason)))) {
        snprintf(err, errlen, "%s: %s", path, reason);
        goto end;
    }
    gradcat_run(&s->nest, s->input, vc_state_keep_mask(s, s->input), p.target, p.flip_sign ? -1 : 1,
                &s->explain);
    memcpy(s->probs, s->nest.logits, (size_t)c->num_classes * sizeof(float));
    nn_softmax(s->probs, 1, c->num_classes);
    /* path boxes back to original-image pixels */
    img_geometry g;
    img_preprocess_geometry(&m->pre, img.w, img.h, &g);
    const double sx = (double)g.resized_w / img.w, sy = (double)g.resized_h / img.h;
    heatmap_box boxes[NEST_MAX_LEVELS];
    int n_boxes = 0;
    for (int i = 0; i < s->explain.n_path; i++) {
        const gradcat_node *n = &s->explain.path[i];
        int *b = s->explain_boxes[i];
        b[0] = (int)((n->x0 - m->pre.pad + g.left) / sx + 0.5);
        b[1] = (int)((n->y0 - m->pre.pad + g.top) / sy + 0.5);
        b[2] = (int)((n->x1 - m->pre.pad + g.left) / sx + 0.5);
        b[3] = (int)((n->y1 - m->pre.pad + g.top) / sy + 0.5);
        for (int k = 0; k < 4; k++)
            b[k] = b[k] < 0 ? 0 : b[k] > (k % 2 ? img.h : img.w) ? (k % 2 ? img.h : img.w) : b[k];
        if (i == 0) continue; /* the root is the whole model view: no box */
        boxes[n_boxes] =
            (heatmap_box){n->x0, n->y0, n->x1, n->y1,
                          s->explain.n_path > 2 ? 128 + 127 * (i - 1) / (s->explain.n_path - 2) : 255};
        n_boxes++;
    }
    if (p.png) {
        if ((rc = heatmap_render(&img, &m->pre, s->explain.score_maps[0], c->grid[0], c->patch_size, boxes,
                                 n_boxes, &pic))) {
            snprintf(err, errlen, "%s: out of memory rendering the heatmap", path);
            goto end;
        }
        rc = write_png_atomic(p.png, &pic, err, errlen);
    }
end:
    img_free(&pic);
    return rc;
}
