/* Masked Transformer parity: the C captioner (captioning/) against tools/masked_transformer.py on the
 * fixtures of tests/parity/gen_captioner.py, stage by stage (embedding, encoder layers, anchors, masks,
 * masked encoder layers, decoder logits per step: max error within 1e-4 of the tensor's scale), the kept
 * proposals (same anchors, windows, times within 1e-3 s) and token-identical captions; the same answer
 * serially with the default chunk and on 2 threads with chunks of 2 proposals. Also: the one-line errors of
 * cap_model_bind on broken models and of cap_run_window on bad arguments, and a timing mode.
 * usage: test_captioner_parity DIR CASE...      parity cases (DIR/CASE.model.safetensors, .expect.)
 *        test_captioner_parity --bad DIR         broken variants of DIR/greedy.model.safetensors
 *        test_captioner_parity --bench DIR [N]   ms per window of the shipped-size model (gen --bench) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "captioning/captioner.h"
#include "nn/safetensors.h"
#include "parity/harness.h"
#include "testutil.h"
#include "vidcap.h"

#define TOL 1e-4

/* ---- assembling the C trace into the reference's tensors ---- */

#define MAX_TRACE 256

typedef struct slot {
    char name[96];
    int64_t numel, row; /* row: floats per row (the whole tensor for unsplit names) */
    float *got;
    int rows_seen;
} slot;

typedef struct collector {
    parity_file *pf;
    slot slots[MAX_TRACE];
    int n;
    int bad; /* trace entries the reference does not have, or of the wrong size */
} collector;

static slot *slot_for(collector *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->slots[i].name, name) == 0) return &c->slots[i];
    const st_tensor *t = parity_find(c->pf, name);
    if (!t || c->n == MAX_TRACE) return NULL;
    slot *s = &c->slots[c->n++];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->numel = t->numel;
    s->row = t->ndim > 0 && t->shape[0] > 0 ? t->numel / t->shape[0] : 0;
    s->got = malloc((size_t)(s->numel > 0 ? s->numel : 1) * sizeof(float));
    for (int64_t i = 0; i < s->numel; i++)
        s->got[i] = NAN; /* rows C never sends fail the comparison */
    return s;
}

/* C names end in .<p> (mask.*, masked.*: row p of the reference tensor) or .<p>.<t> (decoder.logits: row t
 * of decoder.logits.<p>); the rest are whole tensors. */
static void on_trace(void *user, const char *name, const float *data, int ndim, const int64_t *shape)
{
    collector *c = user;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    char base[96];
    snprintf(base, sizeof(base), "%s", name);
    long row = -1;
    const int split = strncmp(name, "mask", 4) == 0 || strncmp(name, "decoder.logits.", 15) == 0;
    if (split) {
        char *dot = strrchr(base, '.');
        row = strtol(dot + 1, NULL, 10);
        *dot = 0;
    }
    slot *s = slot_for(c, base);
    if (!s) {
        fprintf(stderr, "trace %s: the reference has no %s\n", name, base);
        c->bad++;
        return;
    }
    if (!split) {
        if (n != s->numel) {
            fprintf(stderr, "trace %s: %lld values, the reference has %lld\n", name, (long long)n,
                    (long long)s->numel);
            c->bad++;
            return;
        }
        memcpy(s->got, data, (size_t)n * sizeof(float));
        s->rows_seen += n > 0; /* an empty tensor (no anchors) is sent as such */
        return;
    }
    if (n != s->row || row < 0 || (row + 1) * s->row > s->numel) {
        fprintf(stderr, "trace %s: row %ld of %lld values does not fit %s (%lld values, rows of %lld)\n",
                name, row, (long long)n, base, (long long)s->numel, (long long)s->row);
        c->bad++;
        return;
    }
    memcpy(s->got + row * s->row, data, (size_t)n * sizeof(float));
    s->rows_seen++;
}

static void collector_free(collector *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->slots[i].got);
    c->n = 0;
}

/* worst relative error per stage, for the summary the notes quote */
typedef struct stage {
    const char *prefix;
    double worst;
    int tensors;
} stage;

static stage g_stages[] = {{"embedding", 0, 0},  {"encoder.", 0, 0},      {"anchors.", 0, 0},
                           {"mask.input", 0, 0}, {"mask.logits", 0, 0},   {"masked.", 0, 0},
                           {"mask", 0, 0},       {"decoder.logits", 0, 0}};

static void note_stage(const char *name, const float *got, const float *want, int64_t n)
{
    double scale = 1e-12, err = 0;
    for (int64_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(want[i]));
        double d = fabs((double)got[i] - want[i]);
        err = d > err || isnan(d) ? (isnan(d) ? INFINITY : d) : err;
    }
    for (size_t i = 0; i < sizeof(g_stages) / sizeof(*g_stages); i++)
        if (strncmp(name, g_stages[i].prefix, strlen(g_stages[i].prefix)) == 0) {
            g_stages[i].worst = fmax(g_stages[i].worst, err / scale);
            g_stages[i].tensors++;
            return;
        }
}

/* ---- one case ---- */

typedef struct case_data {
    const char *name;
    parity_file *pf;
    st_file *expect; /* the same file, for listing its tensors */
    st_file *model_file;
    cap_model *m;
    const float *features, *times;
    int L, K, beam;
    double duration;
    cap_params p;
    cJSON *sentences;
} case_data;

static int load_case(case_data *cd, const char *dir, const char *name)
{
    char path[1024], err[512];
    memset(cd, 0, sizeof(*cd));
    cd->name = name;
    snprintf(path, sizeof(path), "%s/%s.expect.safetensors", dir, name);
    if (!(cd->pf = parity_open(path))) return 0;
    if (st_open(path, &cd->expect, err, sizeof(err))) return 0;
    int64_t L = 0, K = 0, beam = 0, me = 0;
    double ms = 0, nt = 0, dur = 0;
    const char *prefix = parity_meta_str(cd->pf, "prefix"), *sent = parity_meta_str(cd->pf, "sentences");
    if (!parity_meta_int(cd->pf, "L", &L) || !parity_meta_int(cd->pf, "n_events", &K) ||
        !parity_meta_int(cd->pf, "beam", &beam) || !parity_meta_int(cd->pf, "max_events", &me) ||
        !parity_meta_double(cd->pf, "min_score", &ms) || !parity_meta_double(cd->pf, "nms_tiou", &nt) ||
        !parity_meta_double(cd->pf, "duration", &dur) || !prefix || !sent)
        return 0;
    cd->L = (int)L;
    cd->K = (int)K;
    cd->beam = (int)beam;
    cd->duration = dur;
    cd->sentences = cJSON_Parse(sent);
    snprintf(path, sizeof(path), "%s/%s.model.safetensors", dir, name);
    int rc = st_open(path, &cd->model_file, err, sizeof(err));
    TU_CHECK(rc == 0, "%s", err);
    if (rc) return 0;
    rc = cap_model_bind(cd->model_file, prefix, &cd->m, err, sizeof(err));
    TU_CHECK(rc == 0, "%s: %s", name, err);
    if (rc) return 0;
    const int d_in = cap_model_d_in(cd->m);
    int64_t fs[2] = {L, d_in}, ts[1] = {L};
    cd->features = parity_get(cd->pf, "features", 2, fs);
    cd->times = parity_get(cd->pf, "times", 1, ts);
    /* the model's vidcap.inference must be what the reference ran with, and the params those */
    cd->p = cap_model_default_params(cd->m);
    TU_CHECK(cd->p.min_score == ms && cd->p.nms_tiou == nt && cd->p.max_events == me,
             "%s: vidcap.inference gives %g %g %d, the reference ran %g %g %lld", name, cd->p.min_score,
             cd->p.nms_tiou, cd->p.max_events, ms, nt, (long long)me);
    cd->p.beam = (int)beam;
    return cd->features && cd->times && cd->sentences;
}

static void free_case(case_data *cd)
{
    cap_model_free(cd->m);
    st_close(cd->model_file);
    cJSON_Delete(cd->sentences);
    st_close(cd->expect);
    parity_close(cd->pf);
}

/* the kept proposals and their captions against the reference's events */
static void check_events(case_data *cd, const char *run, const cap_proposal *out, int n)
{
    TU_CHECK(n == cd->K, "%s %s: %d proposals kept, the reference keeps %d", cd->name, run, n, cd->K);
    if (n != cd->K) return;
    int64_t s2[2] = {cd->K, 2}, s1[1] = {cd->K};
    const float *win = parity_get(cd->pf, "events.window", 2, s2),
                *prop = parity_get(cd->pf, "events.proposal", 2, s2);
    const float *tim = parity_get(cd->pf, "events.time", 2, s2),
                *score = parity_get(cd->pf, "events.score", 1, s1);
    const float *anchor = parity_get(cd->pf, "events.anchor", 1, s1);
    if (!win || !prop || !tim || !score || !anchor) return;
    double worst_t = 0, worst_p = 0, worst_s = 0;
    int tokens_same = 0;
    for (int i = 0; i < n; i++) {
        const cap_proposal *o = &out[i];
        TU_CHECK(
            o->anchor == (int)anchor[i] && o->w_start == (int)win[2 * i] && o->w_end == (int)win[2 * i + 1],
            "%s %s: proposal %d is anchor %d [%d, %d), the reference's anchor %d [%d, %d)", cd->name, run, i,
            o->anchor, o->w_start, o->w_end, (int)anchor[i], (int)win[2 * i], (int)win[2 * i + 1]);
        worst_t = fmax(worst_t, fmax(fabs(o->t0 - tim[2 * i]), fabs(o->t1 - tim[2 * i + 1])));
        worst_p = fmax(worst_p, fmax(fabs(o->start - prop[2 * i]), fabs(o->end - prop[2 * i + 1])));
        worst_s = fmax(worst_s, fabs(o->score - score[i]));
        char tn[64];
        snprintf(tn, sizeof(tn), "events.tokens.%d", i);
        int64_t ns[1] = {-1};
        const float *want = parity_get(cd->pf, tn, 1, ns);
        int same = want && ns[0] == o->n_tokens;
        for (int k = 0; same && k < o->n_tokens; k++)
            same = o->tokens[k] == (int)want[k];
        const cJSON *ws = cJSON_GetArrayItem(cd->sentences, i);
        const char *wsent = cJSON_IsString(ws) ? ws->valuestring : "?";
        TU_CHECK(same && strcmp(o->sentence, wsent) == 0, "%s %s: caption %d '%s', the reference says '%s'",
                 cd->name, run, i, o->sentence, wsent);
        tokens_same += same && strcmp(o->sentence, wsent) == 0;
    }
    TU_CHECK(worst_t <= 1e-3, "%s %s: event times differ by %.3g s", cd->name, run, worst_t);
    TU_CHECK(worst_p <= 1e-3, "%s %s: proposal bounds differ by %.3g steps", cd->name, run, worst_p);
    TU_CHECK(worst_s <= 1e-4, "%s %s: proposal scores differ by %.3g", cd->name, run, worst_s);
    fprintf(stderr,
            "%s %s: %d proposals (anchors and windows identical), times max err %.2e s, bounds %.2e steps, "
            "scores %.2e; %d/%d captions token-identical\n",
            cd->name, run, n, worst_t, worst_p, worst_s, tokens_same, n);
}

static int run(case_data *cd, cap_state *s, nn_pool *pool, cap_proposal *out, int *n)
{
    char err[512];
    int rc = cap_run_window(s, pool, cd->features, cd->times, cd->L, cd->duration, &cd->p, out, n, err,
                            sizeof(err));
    TU_CHECK(rc == 0, "%s: %s", cd->name, err);
    return rc == 0;
}

static void check_case(const char *dir, const char *name, nn_pool *pool2)
{
    case_data cd;
    if (!load_case(&cd, dir, name)) {
        free_case(&cd);
        return;
    }
    const int cap = cd.p.max_events > 0 ? cd.p.max_events : 1;
    cap_proposal *a = calloc((size_t)cap, sizeof(*a)), *b = calloc((size_t)cap, sizeof(*b));
    cap_state *s = cap_state_create(cd.m);
    TU_CHECK(s != NULL, "%s: cap_state_create failed", name);
    if (!s || !a || !b) goto end;

    /* 2 threads, chunks of 2 proposals, every stage traced */
    collector col = {.pf = cd.pf};
    TU_CHECK(cap_state_set_chunk(s, 2) == 0, "%s: cap_state_set_chunk(2) failed", name);
    cap_state_set_trace(s, on_trace, &col);
    int na = 0, nb = 0;
    if (run(&cd, s, pool2, a, &na)) {
        check_events(&cd, "2 threads, chunk 2", a, na);
        TU_CHECK(col.bad == 0, "%s: %d trace entries did not match the reference's tensors", name, col.bad);
        for (int i = 0; i < st_n_tensors(cd.expect); i++) {
            const st_tensor *t = st_tensor_at(cd.expect, i);
            if (strncmp(t->name, "events.", 7) == 0 || strcmp(t->name, "features") == 0 ||
                strcmp(t->name, "times") == 0)
                continue;
            if (strncmp(t->name, "proposals.", 10) == 0 || strncmp(t->name, "decoder.tokens.", 15) == 0) {
                parity_find(cd.pf, t->name); /* checked through check_events */
                continue;
            }
            slot *sl = NULL;
            for (int k = 0; k < col.n; k++)
                if (strcmp(col.slots[k].name, t->name) == 0) sl = &col.slots[k];
            if (t->numel == 0) { /* the empty case's zero-row tensors: C must not have sent rows */
                TU_CHECK(!sl || sl->rows_seen == 0, "%s: rows sent for the empty %s", name, t->name);
                parity_find(cd.pf, t->name);
                continue;
            }
            TU_CHECK(sl != NULL, "%s: C traced nothing for %s", name, t->name);
            if (!sl) continue;
            parity_compare(cd.pf, t->name, sl->got, t->numel, TOL);
            note_stage(t->name, sl->got, t->data, t->numel);
        }
    }
    collector_free(&col);

    /* serial, default chunk, no trace: the same proposals and captions */
    cap_state_set_trace(s, NULL, NULL);
    TU_CHECK(cap_state_set_chunk(s, 16) == 0, "%s: cap_state_set_chunk(16) failed", name);
    if (run(&cd, s, NULL, b, &nb)) {
        check_events(&cd, "serial, chunk 16", b, nb);
        TU_CHECK(na == nb, "%s: %d proposals on 2 threads, %d serially", name, na, nb);
        for (int i = 0; i < na && i < nb; i++)
            TU_CHECK(strcmp(a[i].sentence, b[i].sentence) == 0 && fabs(a[i].score - b[i].score) < 1e-6,
                     "%s: proposal %d differs between the runs", name, i);
    }
    TU_CHECK(parity_check_all_used(cd.pf) == 0, "%s: reference tensors left unchecked", name);
end:
    cap_state_free(s);
    free(a);
    free(b);
    free_case(&cd);
}

/* bad arguments to cap_run_window: one-line errors, nothing written */
static void check_bad_args(const char *dir)
{
    case_data cd;
    if (!load_case(&cd, dir, "greedy")) {
        free_case(&cd);
        return;
    }
    cap_state *s = cap_state_create(cd.m);
    const int T = cap_model_window(cd.m), d_in = cap_model_d_in(cd.m);
    float *feat = calloc((size_t)(T + 1) * d_in, sizeof(float)),
          *times = calloc((size_t)T + 1, sizeof(float));
    cap_proposal out[8];
    char err[256];
    int n = -1;
    cap_params p = cd.p;
    int rc = cap_run_window(s, NULL, feat, times, T + 1, 0, &p, out, &n, err, sizeof(err));
    TU_CHECK(rc == VC_ERR_ARG && strstr(err, "window") && n == 0, "L > window: rc %d, '%s'", rc, err);
    feat[5] = NAN;
    rc = cap_run_window(s, NULL, feat, times, T, 0, &p, out, &n, err, sizeof(err));
    TU_CHECK(rc == VC_ERR_ARG && strstr(err, "not finite"), "NaN feature: rc %d, '%s'", rc, err);
    feat[5] = 0;
    p.beam = 0;
    rc = cap_run_window(s, NULL, feat, times, T, 0, &p, out, &n, err, sizeof(err));
    TU_CHECK(rc == VC_ERR_ARG && strstr(err, "beam"), "beam 0: rc %d, '%s'", rc, err);
    p = cd.p;
    p.nms_tiou = 1.5;
    rc = cap_run_window(s, NULL, feat, times, T, 0, &p, out, &n, err, sizeof(err));
    TU_CHECK(rc == VC_ERR_ARG && strstr(err, "nms_tiou"), "nms_tiou 1.5: rc %d, '%s'", rc, err);
    p = cd.p;
    rc = cap_run_window(s, NULL, feat, times, 0, 0, &p, out, &n, err, sizeof(err));
    TU_CHECK(rc == 0 && n == 0, "L = 0: rc %d, %d events", rc, n);
    /* all-zero features on a window: runs, and every caption's sentence is a valid string */
    p.max_events = 8;
    rc = cap_run_window(s, NULL, feat, times, T, 0, &p, out, &n, err, sizeof(err));
    TU_CHECK(rc == 0 && n >= 0 && n <= 8, "zero features: rc %d, %d events", rc, n);
    free(feat);
    free(times);
    cap_state_free(s);
    free_case(&cd);
}

/* ---- broken models ---- */

typedef enum { EDIT_DROP, EDIT_SHAPE, EDIT_NAN, EDIT_META } edit_kind;

/* Copies src to path with one change: drop or reshape tensor `name`, put a NaN in it, or set metadata
 * `name` to `value` (NULL removes it). */
static int write_variant(const st_file *src, const char *path, edit_kind kind, const char *name,
                         const char *value)
{
    st_writer *w = st_writer_create();
    char err[512];
    int ok = w != NULL;
    for (int i = 0; ok && i < st_n_tensors(src); i++) {
        const st_tensor *t = st_tensor_at(src, i);
        const int hit = kind != EDIT_META && strcmp(t->name, name) == 0;
        if (hit && kind == EDIT_DROP) continue;
        int64_t shape[NN_MAX_DIMS];
        memcpy(shape, t->shape, sizeof(shape));
        float *data = malloc((size_t)t->numel * sizeof(float));
        memcpy(data, t->data, (size_t)t->numel * sizeof(float));
        int64_t numel = t->numel;
        if (hit && kind == EDIT_SHAPE) { /* one fewer along the last dim */
            shape[t->ndim - 1]--;
            numel = numel / t->shape[t->ndim - 1] * shape[t->ndim - 1];
        }
        if (hit && kind == EDIT_NAN) data[numel / 2] = NAN;
        ok = st_writer_add(w, t->name, t->ndim, shape, data) == 0;
        free(data);
    }
    for (int i = 0; ok && i < st_n_meta(src); i++) {
        const char *k = st_meta_key(src, i), *v = st_meta_value(src, i);
        if (kind == EDIT_META && strcmp(k, name) == 0) {
            if (!value) continue;
            v = value;
        }
        ok = st_writer_meta(w, k, v) == 0;
    }
    ok = ok && st_writer_save(w, path, err, sizeof(err)) == 0;
    TU_CHECK(ok, "cannot write %s", path);
    st_writer_free(w);
    return ok;
}

static void expect_bind_error(const char *path, const char *prefix, const char *want)
{
    st_file *f = NULL;
    cap_model *m = NULL;
    char err[512] = "";
    int rc = st_open(path, &f, err, sizeof(err));
    TU_CHECK(rc == 0, "%s", err);
    if (rc) return;
    rc = cap_model_bind(f, prefix, &m, err, sizeof(err));
    TU_CHECK(rc < 0 && m == NULL, "%s: cap_model_bind accepted a broken model", path);
    TU_CHECK(strstr(err, want) && !strchr(err, '\n') && strncmp(err, path, strlen(path)) == 0,
             "%s: error '%s' should be one line starting with the path and saying '%s'", path, err, want);
    fprintf(stderr, "bad model ok: %s\n", err);
    st_close(f);
}

static char *config_with(const char *json, const char *key, double value)
{
    cJSON *o = cJSON_Parse(json);
    cJSON_ReplaceItemInObjectCaseSensitive(o, key, cJSON_CreateNumber(value));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void check_bad_models(const char *dir)
{
    char src_path[1024], path[1100], err[512];
    snprintf(src_path, sizeof(src_path), "%s/greedy.model.safetensors", dir);
    st_file *src = NULL;
    if (st_open(src_path, &src, err, sizeof(err))) {
        TU_CHECK(0, "%s", err);
        return;
    }
    const char *cfg = st_meta(src, "vidcap.config"), *vocab = st_meta(src, "vidcap.vocab");
#define VARIANT(tag, kind, name, value, want)                                                                \
    do {                                                                                                     \
        snprintf(path, sizeof(path), "%s/bad-%s.safetensors", dir, tag);                                     \
        if (write_variant(src, path, kind, name, value)) expect_bind_error(path, "", want);                  \
    } while (0)
    VARIANT("missing", EDIT_DROP, "cap_model.decoder.layers.1.feedforward.layernorm.beta", NULL,
            "missing tensor cap_model.decoder.layers.1.feedforward.layernorm.beta");
    VARIANT("shape", EDIT_SHAPE, "prop_out.2.1.weight", NULL, "prop_out.2.1.weight has shape [32,1,5]");
    VARIANT("nan", EDIT_NAN, "mask_model.3.weight", NULL, "mask_model.3.weight holds a non-finite value");
    /* a vocabulary one word short of the output layer */
    cJSON *v = cJSON_Parse(vocab);
    cJSON_DeleteItemFromArray(v, cJSON_GetArraySize(v) - 1);
    char *short_vocab = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    VARIANT("vocab", EDIT_META, "vidcap.vocab", short_vocab, "the vocabulary has");
    free(short_vocab);
    char *c0 = config_with(cfg, "d_ff", 0), *c1 = config_with(cfg, "n_layers", 1),
         *c2 = config_with(cfg, "d_model", -32);
    VARIANT("dff0", EDIT_META, "vidcap.config", c0, "'d_ff' = 0 outside");
    VARIANT("dmodel", EDIT_META, "vidcap.config", c2, "'d_model' = -32 outside");
    VARIANT("layers", EDIT_META, "vidcap.config", c1, "the config describes");
    free(c0);
    free(c1);
    free(c2);
    VARIANT("novocab", EDIT_META, "vidcap.vocab", NULL, "vidcap.vocab is missing");
    VARIANT("noinference", EDIT_META, "vidcap.inference", NULL, "vidcap.inference is missing");
    VARIANT("arch", EDIT_META, "vidcap.arch", "nest", "not a captioner");
    VARIANT("specials", EDIT_META, "vidcap.vocab", "[\"<pad>\",\"<unk>\",\"<init>\",\"<eos>\",\"a\"]",
            "word 0 is '<pad>'");
#undef VARIANT
    /* the right file under the wrong prefix */
    expect_bind_error(src_path, "captioner.", "vidcap.arch is '(missing)'");
    st_close(src);
}

/* ---- timing ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(const char *dir, int reps)
{
    char path[1024], err[512];
    st_file *mf = NULL, *ff = NULL;
    cap_model *m = NULL;
    snprintf(path, sizeof(path), "%s/bench.model.safetensors", dir);
    if (st_open(path, &mf, err, sizeof(err)) || cap_model_bind(mf, "", &m, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/bench.features.safetensors", dir);
    if (st_open(path, &ff, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const st_tensor *x = st_find(ff, "features"), *t = st_find(ff, "times");
    const int L = (int)x->shape[0];
    cap_proposal out[10];
    for (int beam = 1; beam <= 3; beam += 2)
        for (int threads = 1; threads <= 2; threads++) {
            nn_pool *pool = nn_pool_create(threads);
            cap_state *s = cap_state_create(m);
            cap_params p = cap_model_default_params(m);
            p.beam = beam;
            int n = 0;
            cap_run_window(s, pool, x->data, t->data, L, 0, &p, out, &n, err, sizeof(err)); /* warm-up */
            double best = INFINITY, sum = 0;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                cap_run_window(s, pool, x->data, t->data, L, 0, &p, out, &n, err, sizeof(err));
                double dt = now() - t0;
                best = fmin(best, dt);
                sum += dt;
            }
            printf("window %d steps, %d proposals, beam %d, %d thread(s): %.1f ms (best), %.1f ms (mean of "
                   "%d)\n",
                   L, n, beam, threads, 1e3 * best, 1e3 * sum / reps, reps);
            cap_state_free(s);
            nn_pool_free(pool);
        }
    cap_model_free(m);
    st_close(mf);
    st_close(ff);
    return 0;
}

int main(int argc, char **argv)
{
    nn_blas_single_threaded();
    if (argc >= 3 && strcmp(argv[1], "--bench") == 0) return bench(argv[2], argc > 3 ? atoi(argv[3]) : 10);
    if (argc == 3 && strcmp(argv[1], "--bad") == 0) {
        check_bad_models(argv[2]);
        check_bad_args(argv[2]);
        return tu_finish("test_captioner_parity --bad");
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR CASE... | --bad DIR | --bench DIR [N]\n", argv[0]);
        return 2;
    }
    nn_pool *pool2 = nn_pool_create(2);
    for (int i = 2; i < argc; i++)
        check_case(argv[1], argv[i], pool2);
    nn_pool_free(pool2);
    fprintf(stderr, "worst error relative to the tensor's scale, per stage:\n");
    for (size_t i = 0; i < sizeof(g_stages) / sizeof(*g_stages); i++)
        if (g_stages[i].tensors)
            fprintf(stderr, "  %-16s %.2e over %d tensors\n", g_stages[i].prefix, g_stages[i].worst,
                    g_stages[i].tensors);
    return tu_finish("test_captioner_parity");
}
