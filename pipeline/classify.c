/* Image classification: decode -> preprocess (as the model's metadata says) -> NesT -> softmax -> top-k. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "pipeline/model.h"
#include "vision/image.h"
#include "vision/token_impact.h"

vc_state *vc_state_create(const vc_model *m)
{
    return vc_state_create_threads(m, vc_default_threads(m->params.n_threads));
}

vc_state *vc_state_create_threads(const vc_model *m, int n_threads)
{
    vc_state *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->model = m;
    const nest_config *c = &m->nest.cfg;
    s->pool = n_threads > 1 ? nn_pool_create(n_threads) : NULL;
    s->input = malloc((size_t)c->img_size * c->img_size * c->in_chans * sizeof(float));
    s->probs = malloc((size_t)c->num_classes * sizeof(float));
    s->keep = 1.f;
    s->rng = 0x9E3779B97F4A7C15ull;
    const int groups = tf_groups(c), hidden = m->has_filter ? m->filter.hidden : 1;
    s->tf_feat = malloc((size_t)groups * 2 * c->embed_dims[0] * sizeof(float));
    s->tf_hidden = malloc((size_t)groups * hidden * sizeof(float));
    s->tf_scores = malloc((size_t)groups * sizeof(float));
    s->tf_mask = malloc((size_t)groups);
    if ((n_threads > 1 && !s->pool) || !s->input || !s->probs || !s->tf_feat || !s->tf_hidden ||
        !s->tf_scores || !s->tf_mask || nest_state_init(&s->nest, &m->nest, s->pool)) {
        vc_state_free(s);
        return NULL;
    }
    return s;
}

void vc_state_free(vc_state *s)
{
    if (!s) return;
    for (int i = 0; i < NEST_MAX_LEVELS; i++)
        free(s->explain.score_maps[i]);
    nest_state_release(&s->nest);
    nn_pool_free(s->pool);
    free(s->tf_feat);
    free(s->tf_hidden);
    free(s->tf_scores);
    free(s->tf_mask);
    free(s->input);
    free(s->probs);
    free(s);
}

int vc_input_size(const vc_model *m)
{
    return m->nest.cfg.img_size;
}

int vc_input_channels(const vc_model *m)
{
    return m->nest.cfg.in_chans;
}

int vc_state_set_keep(vc_state *s, float keep, char *err, size_t errlen)
{
    if (!(keep > 0.f && keep <= 1.f)) {
        snprintf(err, errlen, "keep ratio %g is outside (0, 1]", keep);
        return VC_ERR_ARG;
    }
    if (keep < 1.f && !s->model->has_filter) {
        snprintf(err, errlen,
                 "keep ratio %g needs a token filter: the model has none (fit one with "
                 "vidcap filter-fit, then pass it with --filter)",
                 keep);
        return VC_ERR_ARG;
    }
    if (keep < 1.f && !s->model->random_filter) { /* the filter may have been loaded after this state */
        float *h = realloc(s->tf_hidden,
                           (size_t)tf_groups(&s->model->nest.cfg) * s->model->filter.hidden * sizeof(float));
        if (!h) {
            snprintf(err, errlen, "out of memory");
            return VC_ERR_NOMEM;
        }
        s->tf_hidden = h;
    }
    s->keep = keep;
    return 0;
}

/* The filter scores the top-level tokens once, from the patch embeddings, before any attention; returns
 * the keep mask (s->tf_mask), or NULL when the state does not filter. Leaves the embedding in s->nest. */
const uint8_t *vc_state_keep_mask(vc_state *s, const float *input)
{
    if (s->keep >= 1.f) return NULL;
    const tf_filter *t = &s->model->filter;
    const int groups = tf_groups(&s->model->nest.cfg);
    nest_embed(&s->nest, input);
    if (s->model->random_filter) {
        for (int g = 0; g < groups; g++) {
            s->rng ^= s->rng << 13, s->rng ^= s->rng >> 7, s->rng ^= s->rng << 17;
            s->tf_scores[g] = (float)(s->rng >> 40);
        }
    } else {
        tf_features(&s->nest, t->context, s->tf_feat);
        tf_scores(t, s->tf_feat, groups, s->tf_hidden, s->tf_scores);
    }
    tf_keep_topk(s->tf_scores, groups, s->keep, s->tf_mask);
    return s->tf_mask;
}

int vc_classify_tensor(vc_state *s, const float *input)
{
    const uint8_t *keep = vc_state_keep_mask(s, input);
    if (keep)
        nest_forward_levels(&s->nest, keep); /* the embedding is there already */
    else
        nest_forward(&s->nest, input);
    const int n = s->model->nest.cfg.num_classes;
    memcpy(s->probs, s->nest.logits, (size_t)n * sizeof(float));
    nn_softmax(s->probs, 1, n);
    return 0;
}

int vc_classify_rgb(vc_state *s, const uint8_t *rgb, int w, int h, char *err, size_t errlen)
{
    img_rgb img = {(uint8_t *)rgb, w, h};
    int rc = img_preprocess_run(&s->model->pre, &img, s->input, err, errlen);
    if (rc) return rc;
    return vc_classify_tensor(s, s->input);
}

int vc_classify_file(vc_state *s, const char *path, char *err, size_t errlen)
{
    img_rgb img = {0};
    int rc = img_load(path, &img, err, errlen);
    if (rc) return rc;
    char reason[256];
    rc = vc_classify_rgb(s, img.data, img.w, img.h, reason, sizeof(reason));
    if (rc) snprintf(err, errlen, "%s: %s", path, reason);
    img_free(&img);
    return rc;
}

int vc_n_classes(const vc_state *s)
{
    return s->model->nest.cfg.num_classes;
}

const float *vc_probs(const vc_state *s)
{
    return s->probs;
}

const float *vc_logits(const vc_state *s)
{
    return s->nest.logits;
}

int vc_top_k(const vc_state *s, int k, int *idx, float *prob)
{
    const int n = vc_n_classes(s);
    if (k > n) k = n;
    /* partial selection sort: k is small; ties keep the lower class index, as torch.topk does on CPU */
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int c = 0; c < n; c++) {
            int taken = 0;
            for (int j = 0; j < i; j++)
                taken |= idx[j] == c;
            if (!taken && (best < 0 || s->probs[c] > s->probs[best])) best = c;
        }
        idx[i] = best;
        prob[i] = s->probs[best];
    }
    return k < 0 ? 0 : k;
}
