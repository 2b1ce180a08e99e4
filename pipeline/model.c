/* Model loading: validate the file, read its vidcap metadata (or recognise a timm NesT from its keys),
 * bind the weights and keep labels and preprocessing beside them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nn/nn.h"
#include "pipeline/model.h"
#include "vision/labels.h"

#define VC_FORMAT_VERSION 1

const char *vc_version(void)
{
    return VIDCAP_VERSION;
}

const char *vc_system_info(int n_threads)
{
    static char buf[512];
    nn_blas_single_threaded(); /* how vidcap always runs it: -t N threads of its own, BLAS inside each */
    nn_sysinfo(buf, sizeof(buf), vc_default_threads(n_threads));
    return buf;
}

vc_model_params vc_model_default_params(void)
{
    vc_model_params p = {.n_threads = 0};
    return p;
}

const char *vc_default_classifier_path(void)
{
    static char path[4096];
    const char *dir = getenv("VIDCAP_MODEL_DIR");
    snprintf(path, sizeof(path), "%s/fashion-nest.safetensors", dir && *dir ? dir : VIDCAP_MODEL_DIR);
    return path;
}

const char *vc_default_video_model_path(void)
{
    static char path[4096];
    const char *dir = getenv("VIDCAP_MODEL_DIR");
    snprintf(path, sizeof(path), "%s/moving-fashion.safetensors", dir && *dir ? dir : VIDCAP_MODEL_DIR);
    return path;
}

int vc_default_threads(int requested)
{
    if (requested > 0) return requested;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 4 ? 4 : (int)n;
}

/* vidcap.labels: a JSON array of exactly n strings */
static int parse_labels(vc_model *m, const char *json, int n, char *err, size_t errlen)
{
    cJSON *a = cJSON_Parse(json);
    int rc = VC_ERR_MODEL;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) {
        snprintf(err, errlen, "vidcap.labels must be a JSON array of %d strings (one per class)", n);
        goto end;
    }
    m->labels = calloc((size_t)n, sizeof(char *));
    if (!m->labels) {
        rc = VC_ERR_NOMEM;
        goto end;
    }
    m->n_labels = n;
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(s)) {
            snprintf(err, errlen, "vidcap.labels[%d] is not a string", i);
            goto end;
        }
        if (!(m->labels[i] = strdup(s->valuestring))) {
            rc = VC_ERR_NOMEM;
            goto end;
        }
    }
    rc = 0;
end:
    cJSON_Delete(a);
    return rc;
}

static int builtin_labels(vc_model *m, int n)
{
    m->labels = calloc((size_t)n, sizeof(char *));
    if (!m->labels) return VC_ERR_NOMEM;
    m->n_labels = n;
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "class %d", i);
        m->labels[i] = strdup(n == IMG_IMAGENET_CLASSES ? img_imagenet_labels[i] : buf);
        if (!m->labels[i]) return VC_ERR_NOMEM;
    }
    return 0;
}

/* metadata key `prefix` + `key` ("encoder." + "vidcap.config" inside a bundle) */
static const char *meta(const st_file *f, const char *prefix, const char *key)
{
    char name[128];
    snprintf(name, sizeof(name), "%s%s", prefix, key);
    return st_meta(f, name);
}

/* The NesT under `prefix` ("" for a classifier file, "encoder." inside a bundle) and the token filter
 * under "filter." when the file carries one. */
static int load_nest(vc_model *m, const char *prefix, char *err, size_t errlen)
{
    const st_file *f = m->file;
    nest_config cfg;
    int rc;
    const char *arch = meta(f, prefix, "vidcap.arch");
    if (arch) {
        const char *fmt = meta(f, prefix, "vidcap.format");
        if (fmt && atoi(fmt) > VC_FORMAT_VERSION) {
            snprintf(err, errlen, "vidcap.format %s is newer than this vidcap reads (%d): upgrade vidcap",
                     fmt, VC_FORMAT_VERSION);
            return VC_ERR_UNSUPPORTED;
        }
        if (strcmp(arch, "nest") != 0) {
            snprintf(err, errlen, "model architecture is '%.40s', this command needs a NesT classifier",
                     arch);
            return VC_ERR_MODEL;
        }
        const char *cj = meta(f, prefix, "vidcap.config"), *lj = meta(f, prefix, "vidcap.labels");
        const char *pj = meta(f, prefix, "vidcap.preprocess");
        if (!cj || !lj || !pj) {
            snprintf(err, errlen, "NesT metadata lacks vidcap.%s",
                     !cj   ? "config"
                     : !lj ? "labels"
                           : "preprocess");
            return VC_ERR_MODEL;
        }
        if ((rc = nest_config_parse(cj, &cfg, err, errlen))) return rc;
        if ((rc = parse_labels(m, lj, cfg.num_classes, err, errlen))) return rc;
        if ((rc = img_preprocess_parse(pj, &m->pre, err, errlen))) return rc;
        if (m->pre.channels != cfg.in_chans || img_preprocess_side(&m->pre) != cfg.img_size) {
            snprintf(err, errlen,
                     "vidcap.preprocess gives %d channels at %d px, the network takes %d at %d px",
                     m->pre.channels, img_preprocess_side(&m->pre), cfg.in_chans, cfg.img_size);
            return VC_ERR_MODEL;
        }
        const char *vj = meta(f, prefix, "vidcap.video");
        if (vj) {
            cJSON *v = cJSON_Parse(vj);
            const cJSON *fps = cJSON_GetObjectItemCaseSensitive(v, "fps");
            m->video_fps = cJSON_IsNumber(fps) && fps->valuedouble > 0 && fps->valuedouble <= 1000
                               ? fps->valuedouble
                               : -1;
            cJSON_Delete(v);
            if (m->video_fps < 0) {
                snprintf(err, errlen, "vidcap.video must be {\"fps\": F} with 0 < F <= 1000");
                return VC_ERR_MODEL;
            }
        }
        const char *trained = meta(f, prefix, "vidcap.trained_on");
        snprintf(m->description, sizeof(m->description), "NesT, %d levels, %d classes%s%s", cfg.num_levels,
                 cfg.num_classes, trained ? ", trained on " : "", trained ? trained : "");
    } else {
        if ((rc = nest_config_from_timm(f, &cfg, err, errlen))) return rc;
        if ((rc = builtin_labels(m, cfg.num_classes))) return rc;
        m->pre = img_preprocess_timm_imagenet();
        if (cfg.in_chans != 3 || cfg.img_size != img_preprocess_side(&m->pre)) {
            snprintf(err, errlen,
                     "timm NesT with %d channels at %d px: only 3 x 224 checkpoints are supported",
                     cfg.in_chans, cfg.img_size);
            return VC_ERR_UNSUPPORTED;
        }
        snprintf(m->description, sizeof(m->description),
                 "timm NesT checkpoint (dims %d/%d/%d), ImageNet-1k labels and preprocessing",
                 cfg.embed_dims[0], cfg.num_levels > 1 ? cfg.embed_dims[1] : 0,
                 cfg.num_levels > 2 ? cfg.embed_dims[2] : 0);
    }
    snprintf(m->arch, sizeof(m->arch), "nest");
    if ((rc = nest_bind(&m->nest, f, prefix, &cfg, err, errlen))) return rc;
    if (st_find(f, "filter.fc1.weight")) { /* a filter shipped inside the model file */
        if ((rc = tf_filter_bind(&m->filter, f, "filter.", cfg.embed_dims[0], err, errlen))) return rc;
        m->has_filter = 1;
    }
    return 0;
}

/* The bundle's captioner: its window runs on the encoder's features at its own sampling rate. */
static int load_captioner(vc_model *m, char *err, size_t errlen)
{
    const char *fmt = st_meta(m->file, "vidcap.format");
    if (fmt && atoi(fmt) > VC_FORMAT_VERSION) {
        snprintf(err, errlen, "vidcap.format %s is newer than this vidcap reads (%d): upgrade vidcap", fmt,
                 VC_FORMAT_VERSION);
        return VC_ERR_UNSUPPORTED;
    }
    if (!st_find(m->file, "captioner.emb.weight")) {
        snprintf(err, errlen, "the bundle has no captioner (no \"captioner.\" tensors)");
        return VC_ERR_MODEL;
    }
    if (!m->has_filter) {
        snprintf(err, errlen, "the bundle has no token filter (no \"filter.\" tensors)");
        return VC_ERR_MODEL;
    }
    int rc = cap_model_bind(m->file, "captioner.", &m->captioner, err, errlen);
    if (rc) return rc;
    const nest_config *c = &m->nest.cfg;
    const int G = c->grid[c->num_levels - 1], dim = G * G * c->embed_dims[c->num_levels - 1];
    if (cap_model_d_in(m->captioner) != dim) {
        snprintf(err, errlen, "the captioner reads %d features a frame, the encoder gives %d",
                 cap_model_d_in(m->captioner), dim);
        return VC_ERR_MODEL;
    }
    m->video_fps = cap_model_fps(m->captioner);
    const char *d = st_meta(m->file, "vidcap.description");
    if (d) snprintf(m->description, sizeof(m->description), "%s", d);
    snprintf(m->arch, sizeof(m->arch), "bundle");
    return 0;
}

int vc_model_load(const char *path, vc_model_params params, vc_model **out, char *err, size_t errlen)
{
    *out = NULL;
    vc_model *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", path);
        return VC_ERR_NOMEM;
    }
    m->params = params;
    int rc = st_open(path, &m->file, err, errlen); /* st_open names the file itself */
    if (rc) goto fail;
    char reason[400];
    const char *arch = st_meta(m->file, "vidcap.arch");
    m->bundle = arch && strcmp(arch, "bundle") == 0;
    rc = load_nest(m, m->bundle ? "encoder." : "", reason, sizeof(reason));
    if (!rc && m->bundle) rc = load_captioner(m, reason, sizeof(reason));
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, reason);
        goto fail;
    }
    *out = m;
    return 0;
fail:
    vc_model_free(m);
    return rc;
}

int vc_model_load_filter(vc_model *m, const char *path, char *err, size_t errlen)
{
    st_file *f = NULL;
    char reason[400];
    int rc = st_open(path, &f, err, errlen);
    if (rc) return rc;
    const char *arch = st_meta(f, "vidcap.arch");
    if (!arch || strcmp(arch, "token_filter") != 0) {
        snprintf(err, errlen, "%s: not a token filter (vidcap.arch is '%.40s')", path, arch ? arch : "");
        st_close(f);
        return VC_ERR_MODEL;
    }
    tf_filter t;
    if ((rc = tf_filter_bind(&t, f, "", m->nest.cfg.embed_dims[0], reason, sizeof(reason)))) {
        snprintf(err, errlen, "%s: %s", path, reason);
        st_close(f);
        return rc;
    }
    st_close(m->filter_file);
    m->filter_file = f;
    m->filter = t;
    m->has_filter = 1;
    return 0;
}

void vc_model_use_random_filter(vc_model *m)
{
    m->random_filter = m->has_filter = 1;
}

int vc_model_has_filter(const vc_model *m)
{
    return m->has_filter;
}

void vc_model_free(vc_model *m)
{
    if (!m) return;
    st_close(m->filter_file);
    cap_model_free(m->captioner);
    nest_unbind(&m->nest);
    for (int i = 0; i < m->n_labels; i++)
        free(m->labels[i]);
    free(m->labels);
    st_close(m->file);
    free(m);
}

const char *vc_model_arch(const vc_model *m)
{
    return m->arch;
}

const char *vc_model_description(const vc_model *m)
{
    return m->description;
}

int vc_model_n_labels(const vc_model *m)
{
    return m->n_labels;
}

const char *vc_model_label(const vc_model *m, int i)
{
    return i >= 0 && i < m->n_labels ? m->labels[i] : NULL;
}
