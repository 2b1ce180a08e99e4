/* Token filter for NesT: features, scores, top-k keep masks, fitting (BCE + Adam) and its file format.
 * Decisions (specs/token_filter.md leaves them open): one score per top-level token, from the mean of the
 * patch + position embeddings it covers, with the image's mean row as context; fixed top-k per image so
 * every image costs the same; labels are "masking this token raises the loss" (see pipeline/filter_fit.c). */
#include "vision/token_filter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "vidcap.h"
#include "vision/token_impact.h"

int tf_filter_bind(tf_filter *t, const st_file *f, const char *prefix, int c0, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    char key[160];
    snprintf(key, sizeof(key), "%svidcap.config", prefix);
    const char *json = st_meta(f, key);
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "hidden"),
                *cx = cJSON_GetObjectItemCaseSensitive(o, "context");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "keep");
    int rc = VC_ERR_MODEL;
    if (!cJSON_IsNumber(h) || !cJSON_IsBool(cx) || !cJSON_IsNumber(k)) {
        snprintf(err, errlen, "token filter: %s missing or not {\"hidden\":H,\"context\":bool,\"keep\":R}",
                 key);
        goto end;
    }
    t->hidden = (int)h->valuedouble;
    t->context = cJSON_IsTrue(cx);
    t->keep = (float)k->valuedouble;
    t->in_dim = c0 * (t->context ? 2 : 1);
    if (t->hidden < 1 || t->hidden > 65536 || !(t->keep > 0.f && t->keep <= 1.f)) {
        snprintf(err, errlen, "token filter: hidden %d or keep %g out of range", t->hidden, t->keep);
        goto end;
    }
    const int64_t want[4][2] = {{t->hidden, t->in_dim}, {t->hidden, 0}, {1, t->hidden}, {1, 0}};
    const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    const float **dst[4] = {&t->fc1_w, &t->fc1_b, &t->fc2_w, &t->fc2_b};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "%s%s", prefix, names[i]);
        const st_tensor *ts = st_find(f, key);
        int nd = want[i][1] ? 2 : 1;
        if (!ts || ts->ndim != nd || ts->shape[0] != want[i][0] || (nd == 2 && ts->shape[1] != want[i][1])) {
            snprintf(err, errlen,
                     "token filter: %s missing or not [%lld%s%lld] (does the filter fit this backbone, "
                     "level-0 width %d?)",
                     key, (long long)want[i][0], nd == 2 ? ", " : "", nd == 2 ? (long long)want[i][1] : 0LL,
                     c0);
            goto end;
        }
        *dst[i] = ts->data;
    }
    rc = 0;
end:
    cJSON_Delete(o);
    return rc;
}

void tf_filter_free(tf_filter *t)
{
    if (!t) return;
    free(t->owned);
    t->owned = NULL;
}

int tf_filter_save(const tf_filter *t, const char *path, char *err, size_t errlen)
{
    st_writer *w = st_writer_create();
    char cfg[160];
    snprintf(cfg, sizeof(cfg), "{\"in_dim\":%d,\"hidden\":%d,\"context\":%s,\"keep\":%g}", t->in_dim,
             t->hidden, t->context ? "true" : "false", t->keep);
    const int64_t s1[2] = {t->hidden, t->in_dim}, s2[1] = {t->hidden}, s3[2] = {1, t->hidden}, s4[1] = {1};
    int rc = !w || st_writer_add(w, "fc1.weight", 2, s1, t->fc1_w) ||
             st_writer_add(w, "fc1.bias", 1, s2, t->fc1_b) ||
             st_writer_add(w, "fc2.weight", 2, s3, t->fc2_w) ||
             st_writer_add(w, "fc2.bias", 1, s4, t->fc2_b) || st_writer_meta(w, "vidcap.format", "1") ||
             st_writer_meta(w, "vidcap.arch", "token_filter") || st_writer_meta(w, "vidcap.config", cfg);
    if (rc) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = VC_ERR_NOMEM;
    } else {
        rc = st_writer_save(w, path, err, errlen);
    }
    st_writer_free(w);
    return rc;
}

void tf_features(const nest_state *s, int context, float *feat)
{
    const nest_config *c = &s->m->cfg;
    const int G0 = c->grid[0], C = c->embed_dims[0], S = c->block_size, top = c->grid[c->num_levels - 1];
    const int side = G0 / top, groups = top * top, stride = context ? 2 * C : C;
    const float *pos = s->m->levels[0].pos_embed;
    for (int g = 0; g < groups; g++) {
        float *f = feat + (size_t)g * stride;
        memset(f, 0, (size_t)C * sizeof(float));
        for (int y = (g / top) * side; y < (g / top + 1) * side; y++)
            for (int x = (g % top) * side; x < (g % top + 1) * side; x++) {
                const float *e = s->embed + ((size_t)y * G0 + x) * C;
                const float *p =
                    pos + ((size_t)((y / S) * (G0 / S) + x / S) * S * S + (size_t)(y % S) * S + x % S) * C;
                for (int k = 0; k < C; k++)
                    f[k] += e[k] + p[k];
            }
        for (int k = 0; k < C; k++)
            f[k] /= (float)(side * side);
    }
    if (!context) return;
    float *mean = feat + C; /* built in row 0's context slot, then copied to every row */
    memset(mean, 0, (size_t)C * sizeof(float));
    for (int g = 0; g < groups; g++)
        for (int k = 0; k < C; k++)
            mean[k] += feat[(size_t)g * stride + k] / (float)groups;
    for (int g = 1; g < groups; g++)
        memcpy(feat + (size_t)g * stride + C, mean, (size_t)C * sizeof(float));
}

void tf_scores(const tf_filter *t, const float *feat, int groups, float *hidden, float *scores)
{
    nn_linear(NULL, feat, groups, t->in_dim, t->fc1_w, t->fc1_b, t->hidden, hidden);
    nn_gelu(NULL, hidden, (int64_t)groups * t->hidden, hidden);
    nn_linear(NULL, hidden, groups, t->hidden, t->fc2_w, t->fc2_b, 1, scores);
}

void tf_keep_topk(const float *scores, int groups, float keep, uint8_t *mask)
{
    int k = (int)lroundf(keep * (float)groups);
    k = k < 1 ? 1 : k > groups ? groups : k;
    memset(mask, 0, (size_t)groups);
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int g = 0; g < groups; g++)
            if (!mask[g] && (best < 0 || scores[g] > scores[best])) best = g;
        mask[best] = 1;
    }
}

/* ---- fitting ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float rng_uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((rng_next(s) >> 40) * (1.0 / 16777216.0));
}

int tf_fit(const float *feat, const float *labels, int64_t n, int in_dim, const tf_fit_params *p,
           tf_filter *out)
{
    enum { BATCH = 256 };
    const int H = p->hidden;
    const size_t n_w1 = (size_t)H * in_dim, n_params = n_w1 + H + H + 1;
    memset(out, 0, sizeof(*out));
    /* parameters, Adam moments, gradients; then per-batch activations */
    float *mem = calloc(n_params * 4 + (size_t)BATCH * (in_dim + 3 * H + 2), sizeof(float));
    int64_t *order = malloc((size_t)n * sizeof(int64_t));
    if (!mem || !order) {
        free(mem);
        free(order);
        return VC_ERR_NOMEM;
    }
    float *w = mem, *m1 = w + n_params, *m2 = m1 + n_params, *g = m2 + n_params, *xb = g + n_params;
    float *h = xb + (size_t)BATCH * in_dim, *a = h + (size_t)BATCH * H, *da = a + (size_t)BATCH * H;
    float *z = da + (size_t)BATCH * H, *dz = z + BATCH;
    float *W1 = w, *B1 = W1 + n_w1, *W2 = B1 + H, *B2 = W2 + H;
    float *gW1 = g, *gB1 = gW1 + n_w1, *gW2 = gB1 + H, *gB2 = gW2 + H;
    uint64_t rng = p->seed * 0x9E3779B97F4A7C15ull + 1;
    /* PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    for (size_t i = 0; i < n_w1; i++)
        W1[i] = rng_uniform(&rng, -1.f, 1.f) / sqrtf((float)in_dim);
    for (int i = 0; i < H; i++)
        W2[i] = rng_uniform(&rng, -1.f, 1.f) / sqrtf((float)H);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    double pos = 0;
    for (int64_t i = 0; i < n; i++)
        pos += labels[i] > 0.5f;
    /* weight positives so both classes count equally, whatever the labels' balance */
    const float pos_weight = pos > 0 && pos < n ? (float)((n - pos) / pos) : 1.f;
    int64_t step = 0;
    for (int ep = 0; ep < p->epochs; ep++) {
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(rng_next(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double total = 0;
        for (int64_t b0 = 0; b0 < n; b0 += BATCH) {
            const int B = (int)(n - b0 < BATCH ? n - b0 : BATCH);
            for (int r = 0; r < B; r++)
                memcpy(xb + (size_t)r * in_dim, feat + (size_t)order[b0 + r] * in_dim,
                       (size_t)in_dim * sizeof(float));
            nn_linear(NULL, xb, B, in_dim, W1, B1, H, h);
            nn_gelu(NULL, h, (int64_t)B * H, a);
            nn_linear(NULL, a, B, H, W2, B2, 1, z);
            for (int r = 0; r < B; r++) {
                const float y = labels[order[b0 + r]] > 0.5f, wgt = y > 0 ? pos_weight : 1.f;
                const float sig = 1.f / (1.f + expf(-z[r]));
                total += wgt * (fmaxf(z[r], 0.f) - z[r] * y + log1pf(expf(-fabsf(z[r]))));
                dz[r] = wgt * (sig - y) / (float)B;
            }
            memset(g, 0, n_params * sizeof(float));
            nn_linear_backward_weights(dz, a, B, H, 1, gW2, gB2);
            nn_linear_backward(NULL, dz, B, 1, W2, H, da);
            nn_gelu_backward(h, da, (int64_t)B * H, da);
            nn_linear_backward_weights(da, xb, B, in_dim, H, gW1, gB1);
            step++;
            const float c1 = 1.f - powf(0.9f, (float)step), c2 = 1.f - powf(0.999f, (float)step);
            for (size_t i = 0; i < n_params; i++) {
                m1[i] = 0.9f * m1[i] + 0.1f * g[i];
                m2[i] = 0.999f * m2[i] + 0.001f * g[i] * g[i];
                w[i] -= p->lr * (m1[i] / c1) / (sqrtf(m2[i] / c2) + 1e-8f);
            }
        }
        if (p->progress) p->progress(ep + 1, p->epochs, (float)(total / n), p->user_data);
    }
    free(order);
    /* keep only the parameters */
    float *params = realloc(mem, n_params * sizeof(float));
    out->owned = params ? params : mem;
    out->in_dim = in_dim;
    out->hidden = H;
    out->context = p->context;
    out->keep = p->keep;
    out->fc1_w = out->owned;
    out->fc1_b = out->fc1_w + n_w1;
    out->fc2_w = out->fc1_b + H;
    out->fc2_b = out->fc2_w + H;
    return 0;
}
