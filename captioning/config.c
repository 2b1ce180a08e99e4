/* Loading a captioner: vidcap.config and vidcap.inference parsing, then binding every tensor in place from
 * the safetensors mapping with its shape checked against the config (a wrong file fails here, with one line
 * naming the tensor, never later in the run). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "captioning/internal.h"
#include "vidcap.h"

/* upper bounds that keep every product of dimensions far inside int64 and every size sane */
#define CAP_MAX_DIM 65536
#define CAP_MAX_WINDOW 100000

/* ---- JSON ---- */

static int json_int(const cJSON *o, const char *who, const char *key, int lo, int hi, int *out, char *err,
                    size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return nn_error(VC_ERR_MODEL, err, errlen, who, "'%s' is missing", key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return nn_error(VC_ERR_MODEL, err, errlen, who, "'%s' must be an integer", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return nn_error(VC_ERR_MODEL, err, errlen, who, "'%s' = %.0f outside %d..%d", key, v->valuedouble, lo,
                        hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int json_num(const cJSON *o, const char *who, const char *key, double lo, double hi, double *out,
                    char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return nn_error(VC_ERR_MODEL, err, errlen, who, "'%s' is missing", key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return nn_error(VC_ERR_MODEL, err, errlen, who, "'%s' must be a number", key);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return nn_error(VC_ERR_MODEL, err, errlen, who, "'%s' = %g outside [%g, %g]", key, v->valuedouble, lo,
                        hi);
    *out = v->valuedouble;
    return 0;
}

#define WHO "config"
int cap_config_parse(const char *json, cap_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    cJSON *o = cJSON_Parse(json);
    int rc = VC_ERR_MODEL;
    double fps = 0, drop = 0;
    if (!cJSON_IsObject(o)) {
        nn_error(rc, err, errlen, "config", "vidcap.config is not a JSON object");
        goto end;
    }
    /* d_model >= 2: the LayerNorm's unbiased std divides by d_model - 1 */
    if ((rc = json_int(o, WHO, "d_in", 1, CAP_MAX_DIM, &c->d_in, err, errlen)) ||
        (rc = json_int(o, WHO, "d_model", 2, CAP_MAX_DIM, &c->d_model, err, errlen)) ||
        (rc = json_int(o, WHO, "n_heads", 1, CAP_MAX_DIM, &c->n_heads, err, errlen)) ||
        (rc = json_int(o, WHO, "d_ff", 1, CAP_MAX_DIM, &c->d_ff, err, errlen)) ||
        (rc = json_int(o, WHO, "n_layers", 1, 64, &c->n_layers, err, errlen)) ||
        (rc = json_int(o, WHO, "window", 1, CAP_MAX_WINDOW, &c->window, err, errlen)) ||
        (rc = json_num(o, WHO, "fps", 1e-3, 1e4, &fps, err, errlen)) ||
        (rc = json_int(o, WHO, "stride_factor", 1, CAP_MAX_WINDOW, &c->stride_factor, err, errlen)) ||
        (rc = json_int(o, WHO, "pe_mask_dim", 1, CAP_MAX_DIM, &c->pe_mask_dim, err, errlen)) ||
        (rc = json_int(o, WHO, "max_tokens", 2, CAP_MAX_TOKENS, &c->max_tokens, err, errlen)) ||
        (rc = json_num(o, WHO, "time_dropout", 0, 0.999, &drop, err, errlen)))
        goto end;
    rc = VC_ERR_MODEL;
    c->fps = fps;
    c->time_dropout = drop;
    if (c->d_model % c->n_heads) {
        nn_error(rc, err, errlen, "config", "d_model %d is not divisible by n_heads %d", c->d_model,
                 c->n_heads);
        goto end;
    }
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(o, "mask");
    if (mask && (!cJSON_IsString(mask) || strcmp(mask->valuestring, "gated_sigmoid") != 0)) {
        nn_error(VC_ERR_UNSUPPORTED, err, errlen, "config",
                 "mask '%.32s' is not supported (want gated_sigmoid)",
                 cJSON_IsString(mask) ? mask->valuestring : "?");
        rc = VC_ERR_UNSUPPORTED;
        goto end;
    }
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(o, "kernels");
    int nk = cJSON_IsArray(ks) ? cJSON_GetArraySize(ks) : 0;
    if (nk < 1 || nk > CAP_MAX_KERNELS) {
        nn_error(rc, err, errlen, "config", "'kernels' must be an array of 1..%d anchor lengths",
                 CAP_MAX_KERNELS);
        goto end;
    }
    c->n_kernels = nk;
    for (int i = 0; i < nk; i++) {
        const cJSON *v = cJSON_GetArrayItem(ks, i);
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
            v->valuedouble > c->window) {
            nn_error(rc, err, errlen, "config", "kernels[%d] must be an integer in 1..window (%d)", i,
                     c->window);
            goto end;
        }
        c->kernels[i] = (int)v->valuedouble;
    }
    rc = 0;
end:
    cJSON_Delete(o);
    return rc;
}

int cap_params_check(const cap_params *p, char *err, size_t errlen)
{
    if (!(p->min_score >= 0.f && p->min_score <= 1.f))
        return nn_error(VC_ERR_ARG, err, errlen, "captioner", "min_score %g outside [0, 1]", p->min_score);
    if (!(p->nms_tiou >= 0.f && p->nms_tiou <= 1.f))
        return nn_error(VC_ERR_ARG, err, errlen, "captioner", "nms_tiou %g outside [0, 1]", p->nms_tiou);
    if (p->max_events < 0 || p->max_events > 100000)
        return nn_error(VC_ERR_ARG, err, errlen, "captioner", "max_events %d outside 0..100000",
                        p->max_events);
    if (p->beam < 1 || p->beam > 64)
        return nn_error(VC_ERR_ARG, err, errlen, "captioner", "beam %d outside 1..64", p->beam);
    return 0;
}

#undef WHO
#define WHO "inference"
int cap_inference_parse(const char *json, cap_params *p, char *err, size_t errlen)
{
    cJSON *o = cJSON_Parse(json);
    int rc = VC_ERR_MODEL;
    double ms = 0, nt = 0;
    int me = 0, beam = 1;
    if (!cJSON_IsObject(o)) {
        nn_error(rc, err, errlen, "inference", "vidcap.inference is not a JSON object");
        goto end;
    }
    if ((rc = json_num(o, WHO, "min_score", 0, 1, &ms, err, errlen)) ||
        (rc = json_num(o, WHO, "nms_tiou", 0, 1, &nt, err, errlen)) ||
        (rc = json_int(o, WHO, "max_events", 0, 100000, &me, err, errlen)))
        goto end;
    if (cJSON_GetObjectItemCaseSensitive(o, "beam") &&
        (rc = json_int(o, WHO, "beam", 1, 64, &beam, err, errlen)))
        goto end;
    *p = (cap_params){ms, nt, me, beam};
    rc = 0;
end:
    cJSON_Delete(o);
    return rc;
}

#undef WHO

/* ---- weights ---- */

typedef struct binder {
    const st_file *f;
    const char *prefix;
    char *err;
    size_t errlen;
    int rc, used;
    const st_tensor **seen; /* the bound tensors, to name an extra one */
} binder;

/* prefix + name, shape (dims terminated by 0) checked, every value finite */
static const float *bind(binder *b, const char *name, int64_t d0, int64_t d1, int64_t d2)
{
    if (b->rc) return NULL;
    const int64_t want[3] = {d0, d1, d2};
    int nd = 0;
    while (nd < 3 && want[nd])
        nd++;
    char key[256];
    snprintf(key, sizeof(key), "%s%s", b->prefix, name);
    char why[512];
    const st_tensor *t = st_expect(b->f, key, nd, want, why, sizeof(why));
    if (!t) {
        b->rc = nn_error(VC_ERR_MODEL, b->err, b->errlen, st_path(b->f), "%s", why);
        return NULL;
    }
    if (b->seen) b->seen[b->used] = t;
    b->used++;
    return t->data;
}

static void bind_attn(binder *b, const char *base, int64_t d, cap_attn_w *w)
{
    char n[200];
#define B(field, suffix, d0, d1)                                                                             \
    snprintf(n, sizeof(n), "%s.%s", base, suffix);                                                           \
    w->field = bind(b, n, d0, d1, 0)
    B(wq, "layer.wq.weight", d, d);
    B(wk, "layer.wk.weight", d, d);
    B(wv, "layer.wv.weight", d, d);
    B(wo, "layer.wo.weight", d, d);
    B(ln_gamma, "layernorm.gamma", d, 0);
    B(ln_beta, "layernorm.beta", d, 0);
}

static void bind_ffn(binder *b, const char *base, int64_t d, int64_t ff, cap_ffn_w *w)
{
    char n[200];
    B(w1, "layer.linear1.weight", ff, d);
    B(b1, "layer.linear1.bias", ff, 0);
    B(w2, "layer.linear2.weight", d, ff);
    B(b2, "layer.linear2.bias", d, 0);
    B(ln_gamma, "layernorm.gamma", d, 0);
    B(ln_beta, "layernorm.beta", d, 0);
}
#undef B

static void bind_bn(binder *b, const char *base, int64_t d, cap_bn *bn)
{
    char n[200];
    snprintf(n, sizeof(n), "%s.weight", base);
    bn->gamma = bind(b, n, d, 0, 0);
    snprintf(n, sizeof(n), "%s.bias", base);
    bn->beta = bind(b, n, d, 0, 0);
    snprintf(n, sizeof(n), "%s.running_mean", base);
    bn->mean = bind(b, n, d, 0, 0);
    snprintf(n, sizeof(n), "%s.running_var", base);
    bn->var = bind(b, n, d, 0, 0);
    /* a negative running variance would make sqrt(var + eps) NaN in the middle of a run */
    for (int64_t i = 0; bn->var && i < d; i++)
        if (!(bn->var[i] >= 0.f)) {
            b->rc = nn_error(VC_ERR_MODEL, b->err, b->errlen, st_path(b->f),
                             "tensor %s%s.running_var holds a negative variance at %lld", b->prefix, base,
                             (long long)i);
            return;
        }
}

static int bind_weights(cap_model *m, const st_file *f, const char *prefix, int64_t V, char *err,
                        size_t errlen)
{
    const cap_config *c = &m->cfg;
    const int64_t d = c->d_model, ff = c->d_ff, T = c->window;
    binder b = {f, prefix, err, errlen, 0, 0, calloc((size_t)st_n_tensors(f) + 1, sizeof(st_tensor *))};
    if (!b.seen) return nn_error(VC_ERR_NOMEM, err, errlen, st_path(f), "out of memory");
    char n[200];
    m->emb_w = bind(&b, "emb.weight", d, c->d_in, 0);
    m->emb_b = bind(&b, "emb.bias", d, 0, 0);
    for (int l = 0; l < c->n_layers && !b.rc; l++) {
        snprintf(n, sizeof(n), "vis_emb.encoder.layers.%d.selfattn", l);
        bind_attn(&b, n, d, &m->enc[l].self);
        snprintf(n, sizeof(n), "vis_emb.encoder.layers.%d.feedforward", l);
        bind_ffn(&b, n, d, ff, &m->enc[l].ffn);
    }
    for (int i = 0; i < c->n_kernels && !b.rc; i++) {
        cap_branch *br = &m->branches[i];
        br->kernel = c->kernels[i];
        br->stride = (c->kernels[i] + c->stride_factor - 1) / c->stride_factor;
        br->n_anchors = (int)nn_conv1d_depthwise_strided_out(T, br->kernel, br->stride);
        cap_bn *bns[4] = {&br->bn0, &br->bn2, &br->bn4, &br->bn6};
        for (int j = 0; j < 4; j++) {
            snprintf(n, sizeof(n), "prop_out.%d.%d", i, 2 * j);
            bind_bn(&b, n, d, bns[j]);
        }
        snprintf(n, sizeof(n), "prop_out.%d.1.weight", i);
        br->depthwise = bind(&b, n, d, 1, br->kernel);
        snprintf(n, sizeof(n), "prop_out.%d.3.weight", i);
        br->pointwise = bind(&b, n, d, d, 1);
        snprintf(n, sizeof(n), "prop_out.%d.7.weight", i);
        br->out_w = bind(&b, n, 4, d, 1);
        snprintf(n, sizeof(n), "prop_out.%d.7.bias", i);
        br->out_b = bind(&b, n, 4, 0, 0);
        m->max_anchors += br->n_anchors;
    }
    m->mask_w0 = bind(&b, "mask_model.0.weight", d, 4 * (int64_t)c->pe_mask_dim + T, 0);
    bind_bn(&b, "mask_model.1", d, &m->mask_bn);
    m->mask_w3 = bind(&b, "mask_model.3.weight", T, d, 0);
    m->mask_b3 = bind(&b, "mask_model.3.bias", T, 0, 0);
    for (int l = 0; l < c->n_layers && !b.rc; l++) {
        snprintf(n, sizeof(n), "cap_model.decoder.layers.%d.selfattn", l);
        bind_attn(&b, n, d, &m->dec[l].self);
        snprintf(n, sizeof(n), "cap_model.decoder.layers.%d.attention", l);
        bind_attn(&b, n, d, &m->dec[l].cross);
        snprintf(n, sizeof(n), "cap_model.decoder.layers.%d.feedforward", l);
        bind_ffn(&b, n, d, ff, &m->dec[l].ffn);
    }
    m->out_w = bind(&b, "cap_model.decoder.out.weight", V, d, 0);
    m->out_b = bind(&b, "cap_model.decoder.out.bias", V, 0, 0);
    if (b.rc) {
        free(b.seen);
        return b.rc;
    }
    /* every captioner tensor under the prefix must have been used: an extra layer or branch means the
     * config contradicts the tensors (other models of a bundle live beside them under other prefixes) */
    static const char *const roots[] = {"emb.", "vis_emb.", "prop_out.", "mask_model.", "cap_model."};
    const size_t plen = strlen(prefix);
    int total = 0;
    const char *extra = NULL;
    for (int i = 0; i < st_n_tensors(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        if (strncmp(t->name, prefix, plen) != 0) continue;
        for (int r = 0; r < 5; r++)
            if (strncmp(t->name + plen, roots[r], strlen(roots[r])) == 0) {
                total++;
                int bound = 0;
                for (int k = 0; k < b.used && !bound; k++)
                    bound = b.seen[k] == t;
                if (!bound && !extra) extra = t->name;
            }
    }
    free(b.seen);
    if (total != b.used)
        return nn_error(VC_ERR_MODEL, err, errlen, st_path(f),
                        "the file holds %d captioner tensors, the config describes %d: %s is not part of it "
                        "(n_layers or kernels contradict the tensors)",
                        total, b.used, extra ? extra : "?");
    return 0;
}

/* ---- the model ---- */

static const char *meta(const st_file *f, const char *prefix, const char *key)
{
    char k[160];
    snprintf(k, sizeof(k), "%s%s", prefix, key);
    return st_meta(f, k);
}

int cap_model_bind(const st_file *f, const char *prefix, cap_model **out, char *err, size_t errlen)
{
    if (!out) return nn_error(VC_ERR_ARG, err, errlen, "captioner", "cap_model_bind needs an output pointer");
    *out = NULL;
    if (!f) return nn_error(VC_ERR_ARG, err, errlen, "captioner", "cap_model_bind needs a file");
    if (!prefix) prefix = "";
    const char *path = st_path(f);
    const char *arch = meta(f, prefix, "vidcap.arch"), *fmt = meta(f, prefix, "vidcap.format");
    const char *cfg_json = meta(f, prefix, "vidcap.config"), *vocab_json = meta(f, prefix, "vidcap.vocab");
    const char *inf_json = meta(f, prefix, "vidcap.inference");
    if (!arch || strcmp(arch, "masked_transformer") != 0)
        return nn_error(VC_ERR_MODEL, err, errlen, path,
                        "not a captioner: %svidcap.arch is '%.40s', want "
                        "masked_transformer",
                        prefix, arch ? arch : "(missing)");
    if (!fmt || strcmp(fmt, "1") != 0)
        return nn_error(VC_ERR_UNSUPPORTED, err, errlen, path,
                        "captioner format '%.20s' is not supported (want 1)", fmt ? fmt : "(missing)");
    if (!cfg_json || !vocab_json || !inf_json)
        return nn_error(VC_ERR_MODEL, err, errlen, path, "metadata %svidcap.%s is missing", prefix,
                        !cfg_json     ? "config"
                        : !vocab_json ? "vocab"
                                      : "inference");
    cap_model *m = calloc(1, sizeof(*m));
    if (!m) return nn_error(VC_ERR_NOMEM, err, errlen, path, "out of memory");
    char why[200];
    int rc = cap_config_parse(cfg_json, &m->cfg, why, sizeof(why));
    if (rc) {
        nn_error(rc, err, errlen, path, "%s", why);
        goto fail;
    }
    if ((rc = cap_inference_parse(inf_json, &m->defaults, why, sizeof(why)))) {
        nn_error(rc, err, errlen, path, "%s", why);
        goto fail;
    }
    if ((rc = cap_vocab_parse(m, vocab_json, why, sizeof(why)))) {
        nn_error(rc, err, errlen, path, "%s", why);
        goto fail;
    }
    char key[200];
    snprintf(key, sizeof(key), "%scap_model.decoder.out.weight", prefix);
    const st_tensor *outw = st_find(f, key);
    if (outw && outw->ndim == 2 && outw->shape[0] != m->n_vocab) {
        rc = nn_error(VC_ERR_MODEL, err, errlen, path,
                      "the vocabulary has %d words but the output layer %s predicts %lld", m->n_vocab, key,
                      (long long)outw->shape[0]);
        goto fail;
    }
    const cap_config *c = &m->cfg;
    const int64_t d = c->d_model, P = c->window > c->max_tokens ? c->window : c->max_tokens;
    m->enc = calloc((size_t)c->n_layers, sizeof(*m->enc));
    m->dec = calloc((size_t)c->n_layers, sizeof(*m->dec));
    m->branches = calloc((size_t)c->n_kernels, sizeof(*m->branches));
    m->pos = malloc((size_t)(P * d) * sizeof(float));
    m->mask_inv_freq = malloc((size_t)c->pe_mask_dim * sizeof(double));
    double *inv = malloc((size_t)d * sizeof(double));
    if (!m->enc || !m->dec || !m->branches || !m->pos || !m->mask_inv_freq || !inv) {
        free(inv);
        rc = nn_error(VC_ERR_NOMEM, err, errlen, path, "out of memory");
        goto fail;
    }
    if ((rc = bind_weights(m, f, prefix, m->n_vocab, err, errlen))) {
        free(inv);
        goto fail;
    }
    cap_pe_inv_freq((int)d, inv);
    for (int64_t p = 0; p < P; p++)
        cap_pe((double)p, inv, (int)d, m->pos + p * d);
    free(inv);
    cap_pe_inv_freq(c->pe_mask_dim, m->mask_inv_freq);
    /* (1 - p) in double, rounded once: the float32 scalar PyTorch multiplies by */
    m->embed_scale = (float)(1.0 - c->time_dropout);
    *out = m;
    return 0;
fail:
    cap_model_free(m);
    return rc;
}

void cap_model_free(cap_model *m)
{
    if (!m) return;
    cap_vocab_free(m);
    free(m->enc);
    free(m->dec);
    free(m->branches);
    free(m->pos);
    free(m->mask_inv_freq);
    free(m);
}

const cap_config *cap_model_config(const cap_model *m)
{
    return &m->cfg;
}

int cap_model_window(const cap_model *m)
{
    return m->cfg.window;
}

double cap_model_fps(const cap_model *m)
{
    return m->cfg.fps;
}

int cap_model_d_in(const cap_model *m)
{
    return m->cfg.d_in;
}

int cap_model_n_vocab(const cap_model *m)
{
    return m->n_vocab;
}

const char *cap_model_word(const cap_model *m, int token)
{
    return token >= 0 && token < m->n_vocab ? m->words[token] : NULL;
}

cap_params cap_model_default_params(const cap_model *m)
{
    return m->defaults;
}
