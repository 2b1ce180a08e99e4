/* NesT parity: the C forward against tools/nest_ref.py (timm-identical) on every level's output map and
 * the logits (max error within 1e-4 of the tensor's scale) and on the top-5 classes; and the backward:
 * d log p_c / d map at every level against PyTorch autograd (within 1e-3 of the tensor's scale).
 * usage: test_nest_parity DIR CASE...   (files DIR/CASE.model.safetensors and DIR/CASE.expect.safetensors) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/safetensors.h"
#include "testutil.h"
#include "vision/gradcat.h"
#include "vision/nest.h"
#include "vision/token_filter.h"
#include "vision/token_impact.h"

static const st_tensor *need(const st_file *f, const char *name, int64_t numel)
{
    const st_tensor *t = st_find(f, name);
    TU_CHECK(t && t->numel == numel, "%s: tensor %s missing or of wrong size", st_path(f), name);
    return t && t->numel == numel ? t : NULL;
}

/* tu_close, and on success one line with the figures the notes quote */
static void compare(const char *label, const float *got, const float *want, int64_t n, float tol,
                    float floor_scale)
{
    if (tu_close(label, got, want, n, tol, floor_scale))
        fprintf(stderr, "%s: max err %.2e, scale %.3g\n", label, nn_max_abs_diff(got, want, n),
                nn_max_abs(want, n));
}

static void top5(const float *x, int n, int *idx)
{
    for (int i = 0; i < 5 && i < n; i++) {
        int best = -1;
        for (int c = 0; c < n; c++) {
            int taken = 0;
            for (int j = 0; j < i; j++)
                taken |= idx[j] == c;
            if (!taken && (best < 0 || x[c] > x[best])) best = c;
        }
        idx[i] = best;
    }
}

/* Recorded forward + backward from log softmax[target]: the gradients GradCAT reads. */
static void check_backward(nest_state *s, const st_file *ef, const char *name, const float *input)
{
    const nest_config *cfg = &s->m->cfg;
    const st_tensor *target = need(ef, "target", 1);
    if (!target || nest_state_enable_backward(s, 1)) return;
    nest_forward(s, input);
    int n = cfg->num_classes;
    nest_backward_log_prob(s, (int)target->data[0], 1.f);
    for (int i = 0; i < cfg->num_levels; i++) {
        char tn[32], label[96];
        snprintf(tn, sizeof(tn), "grad%d", i);
        int64_t len = (int64_t)cfg->grid[i] * cfg->grid[i] * cfg->embed_dims[i];
        const st_tensor *want = need(ef, tn, len);
        snprintf(label, sizeof(label), "%s %s", name, tn);
        if (want) compare(label, s->tape->grads[i], want->data, len, 1e-3f, 1e-12f);
    }
    /* recording must not change the forward */
    const st_tensor *logits = need(ef, "logits", n);
    if (logits) tu_close("recorded forward logits", s->logits, logits->data, n, 1e-4f, 1e-6f);
}

/* GradCAT against tools/gradcat_ref.py: score maps (1e-3 of scale) and the exact path; `pre` "gradcat"
 * for the full network, "fgradcat" through the filtered forward with the fixture's keep mask. */
static void check_gradcat(nest_state *s, const st_file *ef, const char *name, const float *input,
                          const char *pre)
{
    const nest_config *cfg = &s->m->cfg;
    const int top = cfg->grid[cfg->num_levels - 1];
    char key[64];
    snprintf(key, sizeof(key), "%s.target", pre);
    const st_tensor *target = need(ef, key, 1);
    snprintf(key, sizeof(key), "%s.path", pre);
    const st_tensor *path = need(ef, key, 4 * cfg->num_levels);
    const int filtered = strcmp(pre, "fgradcat") == 0;
    const st_tensor *keep = filtered ? need(ef, "filtered.keep", (int64_t)top * top) : NULL;
    if (!target || !path || (filtered && !keep) || nest_state_enable_backward(s, 1)) return;
    uint8_t mask[4096];
    for (int i = 0; filtered && i < top * top && i < 4096; i++)
        mask[i] = keep->data[i] > 0.5f;
    float *maps[NEST_MAX_LEVELS] = {0};
    gradcat_result r = {0};
    for (int l = 0; l < cfg->num_levels; l++)
        r.score_maps[l] = maps[l] = malloc((size_t)cfg->grid[l] * cfg->grid[l] * sizeof(float));
    gradcat_run(s, input, filtered ? mask : NULL, (int)target->data[0], 1, &r);
    TU_CHECK(r.target == (int)target->data[0], "%s: gradcat target %d", name, r.target);
    /* the top level's map is ~0 (rounding noise): the final LayerNorm is scale-invariant, so sum A*dA
     * vanishes there; compare every level against the largest score anywhere */
    float scale = 0.f;
    for (int l = 0; l < cfg->num_levels; l++) {
        char tn[32];
        snprintf(tn, sizeof(tn), "%s.score%d", pre, l);
        const st_tensor *want = st_find(ef, tn);
        if (want && nn_max_abs(want->data, want->numel) > scale) scale = nn_max_abs(want->data, want->numel);
    }
    for (int l = 0; l < cfg->num_levels; l++) {
        char tn[32], label[96];
        snprintf(tn, sizeof(tn), "%s.score%d", pre, l);
        const st_tensor *want = need(ef, tn, (int64_t)cfg->grid[l] * cfg->grid[l]);
        snprintf(label, sizeof(label), "%s %s", name, tn);
        if (want) tu_close(label, maps[l], want->data, want->numel, 1e-3f, scale);
    }
    TU_CHECK(r.n_path == cfg->num_levels, "%s: path length %d", name, r.n_path);
    for (int k = 0; k < r.n_path && k < cfg->num_levels; k++) {
        const float *w = path->data + 4 * k;
        int G = cfg->grid[(int)w[0]] / cfg->block_size;
        TU_CHECK(r.path[k].level == (int)w[0] && r.path[k].block == (int)w[1] * G + (int)w[2],
                 "%s: gradcat step %d: level %d block %d, reference level %d block (%d,%d)", name, k,
                 r.path[k].level, r.path[k].block, (int)w[0], (int)w[1], (int)w[2]);
        TU_CHECK(fabsf(r.path[k].score - w[3]) <= 1e-3f * scale, "%s: step %d score %g vs %g", name, k,
                 r.path[k].score, w[3]);
    }
    for (int l = 0; l < cfg->num_levels; l++)
        free(maps[l]);
}

/* The token filter's forward (option D) against tools/nest_ref.py forward_filtered, on a random half mask. */
static void check_filtered(nest_state *s, const st_file *ef, const char *name, const float *input)
{
    const nest_config *cfg = &s->m->cfg;
    const int top = cfg->grid[cfg->num_levels - 1];
    const st_tensor *keep = need(ef, "filtered.keep", (int64_t)top * top);
    if (!keep) return;
    uint8_t mask[4096];
    for (int i = 0; i < top * top; i++)
        mask[i] = keep->data[i] > 0.5f;
    nest_forward_filtered(s, input, mask);
    for (int i = 0; i < cfg->num_levels; i++) {
        char tn[40], label[96];
        snprintf(tn, sizeof(tn), "filtered.level%d", i);
        int64_t n = (int64_t)cfg->grid[i] * cfg->grid[i] * cfg->embed_dims[i];
        const st_tensor *want = need(ef, tn, n);
        snprintf(label, sizeof(label), "%s %s", name, tn);
        if (want) compare(label, s->maps[i], want->data, n, 1e-4f, 1e-6f);
    }
    const st_tensor *want = need(ef, "filtered.logits", cfg->num_classes);
    char label[96];
    snprintf(label, sizeof(label), "%s filtered.logits", name);
    if (want) compare(label, s->logits, want->data, cfg->num_classes, 1e-4f, 1e-6f);
}

/* Token-impact labels (leave-one-out where the fixture has them, and gradient x input) against PyTorch. */
static void check_impact(nest_state *s, const st_file *ef, const char *name, const float *input)
{
    const nest_config *cfg = &s->m->cfg;
    const int n = tf_groups(cfg);
    const st_tensor *target = need(ef, "target", 1), *grad = need(ef, "impact.grad", n);
    const st_tensor *loo = st_find(ef, "impact.loo");
    float *delta = malloc((size_t)n * sizeof(float));
    float *scratch = malloc((size_t)cfg->grid[0] * cfg->grid[0] * cfg->embed_dims[0] * sizeof(float));
    char label[96];
    if (target && grad) {
        tf_impact_grad(s, input, (int)target->data[0], delta);
        snprintf(label, sizeof(label), "%s impact.grad", name);
        compare(label, delta, grad->data, n, 1e-3f, 1e-6f);
    }
    if (target && loo) {
        tf_impact_loo(s, input, (int)target->data[0], delta, scratch);
        snprintf(label, sizeof(label), "%s impact.loo", name);
        compare(label, delta, loo->data, n, 1e-3f, 1e-4f);
    }
    free(delta);
    free(scratch);
}

/* A filter shipped inside the model: its scores, its keep mask and the filtered logits against PyTorch. */
static void check_shipped_filter(nest_state *s, const st_file *mf, const st_file *ef, const char *name,
                                 const float *input)
{
    if (!st_find(mf, "filter.fc1.weight")) return;
    const nest_config *cfg = &s->m->cfg;
    const int groups = tf_groups(cfg);
    char err[256], label[96];
    tf_filter t;
    if (tf_filter_bind(&t, mf, "filter.", cfg->embed_dims[0], err, sizeof(err))) {
        TU_CHECK(0, "%s: %s", name, err);
        return;
    }
    const st_tensor *scores = need(ef, "filter.scores", groups), *keep = need(ef, "filter.keep", groups);
    const st_tensor *logits = need(ef, "filter.logits", cfg->num_classes);
    float *feat = malloc((size_t)groups * 2 * cfg->embed_dims[0] * sizeof(float));
    float *hidden = malloc((size_t)groups * t.hidden * sizeof(float)),
          *sc = malloc((size_t)groups * sizeof(float));
    uint8_t *mask = malloc((size_t)groups);
    nest_embed(s, input);
    tf_features(s, t.context, feat);
    tf_scores(&t, feat, groups, hidden, sc);
    tf_keep_topk(sc, groups, t.keep, mask);
    snprintf(label, sizeof(label), "%s filter.scores", name);
    if (scores) tu_close(label, sc, scores->data, groups, 1e-4f, 1e-6f);
    for (int g = 0; keep && g < groups; g++)
        TU_CHECK(mask[g] == (keep->data[g] > 0.5f), "%s: filter keeps token %d differently", name, g);
    nest_forward_levels(s, mask);
    snprintf(label, sizeof(label), "%s filter.logits", name);
    if (logits && tu_close(label, s->logits, logits->data, cfg->num_classes, 1e-4f, 1e-6f))
        fprintf(stderr, "%s: max err %.2e (keeping %d of %d tokens)\n", label,
                nn_max_abs_diff(s->logits, logits->data, cfg->num_classes), (int)s->offsets[1], groups);
    free(feat), free(hidden), free(sc), free(mask);
}

static void run_case(const char *dir, const char *name, nn_pool *pool)
{
    char path[1024], err[512];
    st_file *mf = NULL, *ef = NULL;
    nest_model m;
    nest_config cfg;
    nest_state s;
    int bound = 0, stated = 0;
    snprintf(path, sizeof(path), "%s/%s.model.safetensors", dir, name);
    if (st_open(path, &mf, err, sizeof(err))) {
        TU_CHECK(0, "%s", err);
        goto end;
    }
    snprintf(path, sizeof(path), "%s/%s.expect.safetensors", dir, name);
    if (st_open(path, &ef, err, sizeof(err))) {
        TU_CHECK(0, "%s", err);
        goto end;
    }
    const char *cj = st_meta(mf, "vidcap.config");
    int rc = cj ? nest_config_parse(cj, &cfg, err, sizeof(err))
                : nest_config_from_timm(mf, &cfg, err, sizeof(err));
    if (rc || nest_bind(&m, mf, "", &cfg, err, sizeof(err))) {
        TU_CHECK(0, "%s: %s", name, err);
        goto end;
    }
    bound = 1;
    if (nest_state_init(&s, &m, pool)) {
        TU_CHECK(0, "%s: out of memory", name);
        goto end;
    }
    stated = 1;
    const st_tensor *in = need(ef, "input", (int64_t)cfg.img_size * cfg.img_size * cfg.in_chans);
    if (!in) goto end;
    nest_forward(&s, in->data);
    for (int i = 0; i < cfg.num_levels; i++) {
        char tn[32], label[96];
        snprintf(tn, sizeof(tn), "level%d", i);
        int64_t n = (int64_t)cfg.grid[i] * cfg.grid[i] * cfg.embed_dims[i];
        const st_tensor *want = need(ef, tn, n);
        snprintf(label, sizeof(label), "%s %s", name, tn);
        if (want) compare(label, s.maps[i], want->data, n, 1e-4f, 1e-6f);
    }
    const st_tensor *want = need(ef, "logits", cfg.num_classes);
    if (want) {
        char label[96];
        snprintf(label, sizeof(label), "%s logits", name);
        compare(label, s.logits, want->data, cfg.num_classes, 1e-4f, 1e-6f);
        int a[5] = {0}, b[5] = {0};
        top5(s.logits, cfg.num_classes, a);
        top5(want->data, cfg.num_classes, b);
        TU_CHECK(!memcmp(a, b, sizeof(a)) || cfg.num_classes < 5, "%s: top-5 differs", name);
    }
    check_backward(&s, ef, name, in->data);
    check_gradcat(&s, ef, name, in->data, "gradcat");
    check_gradcat(&s, ef, name, in->data, "fgradcat");
    check_filtered(&s, ef, name, in->data);
    check_impact(&s, ef, name, in->data);
    check_shipped_filter(&s, mf, ef, name, in->data);
end:
    if (stated) nest_state_release(&s);
    if (bound) nest_unbind(&m);
    st_close(mf);
    st_close(ef);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR CASE...\n", argv[0]);
        return 2;
    }
    nn_pool *pool = nn_pool_create(2);
    for (int i = 2; i < argc; i++) {
        run_case(argv[1], argv[i], NULL);
        run_case(argv[1], argv[i], pool); /* threads must not change the answer */
    }
    nn_pool_free(pool);
    return tu_finish("nest_parity");
}
