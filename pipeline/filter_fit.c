/* `vidcap filter-fit`: token-impact labels from the backbone itself on a folder of images (one sub-folder
 * per class), then the filter MLP fitted on them, in C, no Python.
 * Label: a top-level token is one to keep when masking it (patch embeddings zeroed, position embeddings
 * kept) raises the loss of the image's true class: delta > 0, exactly by leave-one-out for models with up to
 * 64 top-level tokens, else by the gradient x input estimate (one backward per image). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline/model.h"
#include "vision/image.h"
#include "vision/token_impact.h"

vc_filter_fit_params vc_filter_fit_default_params(void)
{
    vc_filter_fit_params p = {.epochs = 30, .keep = 0.5f, .labels = VC_LABELS_AUTO};
    return p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorted entries of a directory (without . and ..); NULL on failure */
static char **list_dir(const char *path, int *n)
{
    DIR *d = opendir(path);
    char **names = NULL;
    *n = 0;
    if (!d) return NULL;
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, (size_t)cap * sizeof(char *));
            if (!grown) break;
            names = grown;
        }
        if (!(names[*n] = strdup(e->d_name))) break;
        (*n)++;
    }
    closedir(d);
    if (!names) names = calloc(1, sizeof(char *));
    if (names) qsort(names, (size_t)*n, sizeof(char *), cmp_str);
    return names;
}

static void free_list(char **names, int n)
{
    for (int i = 0; i < n && names; i++)
        free(names[i]);
    free(names);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* a folder names its class by label, or by label with '/' written as '-' (it cannot be in a file name),
 * or by index */
static int class_of(const vc_model *m, const char *folder)
{
    int c = vc_model_find_label(m, folder);
    if (c >= 0) return c;
    for (int i = 0; i < m->n_labels; i++) {
        const char *a = m->labels[i], *b = folder;
        while (*a && *b && (*a == *b || (*a == '/' && *b == '-')))
            a++, b++;
        if (!*a && !*b) return i;
    }
    char *end;
    long v = strtol(folder, &end, 10);
    return *folder && !*end && v >= 0 && v < m->n_labels ? (int)v : -1;
}

typedef struct fit_data {
    float *feat, *labels;
    int64_t n, cap;
} fit_data;

static int fit_data_grow(fit_data *d, int rows, int in_dim)
{
    if (d->n + rows <= d->cap) return 0;
    int64_t cap = d->cap ? 2 * d->cap : 4096;
    while (cap < d->n + rows)
        cap *= 2;
    float *f = realloc(d->feat, (size_t)cap * in_dim * sizeof(float));
    if (f) d->feat = f;
    float *l = realloc(d->labels, (size_t)cap * sizeof(float));
    if (l) d->labels = l;
    if (!f || !l) return VC_ERR_NOMEM;
    d->cap = cap;
    return 0;
}

int vc_token_impact(vc_state *s, const uint8_t *rgb, int w, int h, int label, float *loo, float *grad,
                    char *err, size_t errlen)
{
    const nest_config *c = &s->model->nest.cfg;
    img_rgb img = {(uint8_t *)rgb, w, h};
    int rc;
    if (label < 0 || label >= c->num_classes) {
        snprintf(err, errlen, "class %d out of range", label);
        return VC_ERR_ARG;
    }
    if ((rc = img_preprocess_run(&s->model->pre, &img, s->input, err, errlen))) return rc;
    if (nest_state_enable_backward(&s->nest, 1)) return VC_ERR_NOMEM;
    if (loo) {
        float *scratch = malloc((size_t)c->grid[0] * c->grid[0] * c->embed_dims[0] * sizeof(float));
        if (!scratch) return VC_ERR_NOMEM;
        tf_impact_loo(&s->nest, s->input, label, loo, scratch);
        free(scratch);
    }
    if (grad) tf_impact_grad(&s->nest, s->input, label, grad);
    return tf_groups(c);
}

static void fit_progress(int epoch, int epochs, float loss, void *user)
{
    const vc_filter_fit_params *p = user;
    (void)loss;
    if (p->progress) p->progress("fitting the filter", epoch, epochs, p->user_data);
}

int vc_filter_fit(vc_state *s, const char *dir, vc_filter_fit_params p, const char *out, int *n_images,
                  int *skipped, char *err, size_t errlen)
{
    const vc_model *m = s->model;
    const nest_config *c = &m->nest.cfg;
    const int groups = tf_groups(c), C0 = c->embed_dims[0], in_dim = 2 * C0;
    const int loo = p.labels == VC_LABELS_LOO || (p.labels == VC_LABELS_AUTO && groups <= 64);
    int n_classes = 0, rc = 0, classes_used = 0;
    char **classes = list_dir(dir, &n_classes);
    fit_data d = {0};
    float *delta = malloc((size_t)groups * sizeof(float));
    float *scratch = malloc((size_t)c->grid[0] * c->grid[0] * C0 * sizeof(float));
    *n_images = *skipped = 0;
    if (!classes) {
        snprintf(err, errlen, "%s: cannot read the folder", dir);
        rc = VC_ERR_IO;
        goto end;
    }
    if (!delta || !scratch || nest_state_enable_backward(&s->nest, 1)) {
        snprintf(err, errlen, "out of memory");
        rc = VC_ERR_NOMEM;
        goto end;
    }
    for (int ci = 0; ci < n_classes; ci++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, classes[ci]);
        if (!is_dir(path)) continue;
        const int label = class_of(m, classes[ci]);
        int n_files = 0;
        char **files = list_dir(path, &n_files);
        if (label < 0) {
            fprintf(stderr, "vidcap: %s: not a class of the model, %d file(s) skipped\n", path, n_files);
            *skipped += n_files;
            free_list(files, n_files);
            continue;
        }
        classes_used++;
        for (int fi = 0; fi < n_files; fi++) {
            char file[8192], why[1024];
            snprintf(file, sizeof(file), "%s/%s", path, files[fi]);
            img_rgb img = {0};
            if (img_load(file, &img, why, sizeof(why)) ||
                img_preprocess_run(&m->pre, &img, s->input, why, sizeof(why))) {
                fprintf(stderr, "vidcap: %s (skipped)\n", why);
                (*skipped)++;
                img_free(&img);
                continue;
            }
            img_free(&img);
            if (loo)
                tf_impact_loo(&s->nest, s->input, label, delta, scratch);
            else
                tf_impact_grad(&s->nest, s->input, label, delta);
            if ((rc = fit_data_grow(&d, groups, in_dim))) {
                free_list(files, n_files);
                snprintf(err, errlen, "out of memory");
                goto end;
            }
            tf_features(&s->nest, 1, d.feat + (size_t)d.n * in_dim); /* s->nest.embed holds this image's */
            for (int g = 0; g < groups; g++)
                d.labels[d.n + g] = delta[g] > 0.f;
            d.n += groups;
            (*n_images)++;
            if (p.progress) p.progress("token-impact labels", *n_images, 0, p.user_data);
        }
        free_list(files, n_files);
    }
    if (!classes_used || !*n_images) {
        snprintf(err, errlen, "%s: no usable images (want one sub-folder per class, named by label or index)",
                 dir);
        rc = VC_ERR_ARG;
        goto end;
    }
    tf_fit_params fp = {.hidden = C0,
                        .context = 1,
                        .epochs = p.epochs,
                        .lr = 1e-3f,
                        .keep = p.keep,
                        .seed = 1,
                        .progress = fit_progress,
                        .user_data = &p};
    tf_filter t;
    if ((rc = tf_fit(d.feat, d.labels, d.n, in_dim, &fp, &t))) {
        snprintf(err, errlen, "out of memory fitting the filter");
        goto end;
    }
    rc = tf_filter_save(&t, out, err, errlen);
    tf_filter_free(&t);
end:
    free_list(classes, n_classes);
    free(d.feat);
    free(d.labels);
    free(delta);
    free(scratch);
    return rc;
}
