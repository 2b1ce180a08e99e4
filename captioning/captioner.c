/* One window through the captioner (contract, "Inference on one window"): embed, unmasked encoder pass,
 * anchors and NMS, then per chunk of kept proposals their masks, the batched masked encoder passes and
 * decoding; plus the run state whose arena every buffer comes from. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "captioning/internal.h"
#include "vidcap.h"

/* ---- the state's arena ---- */

/* Lays out every buffer twice with the same code: once measuring, once carving, so sizing and use cannot
 * disagree. */
typedef struct carver {
    nn_arena *arena; /* NULL while measuring */
    size_t total;
    int overflow;
} carver;

static void *take(carver *c, int64_t count, size_t elem)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / 2 / elem) {
        c->overflow = 1;
        return NULL;
    }
    const size_t bytes = (size_t)count * elem, cost = nn_arena_cost(bytes ? bytes : 1);
    if (!c->arena) {
        if (c->total > SIZE_MAX - cost) c->overflow = 1;
        c->total += cost;
        return NULL;
    }
    void *p = nn_arena_alloc(c->arena, bytes ? bytes : 1);
    if (!p) c->overflow = 1;
    return p;
}

#define F(n) take(c, (n), sizeof(float))
#define I(n) take(c, (n), sizeof(int))

static void layout(cap_state *s, carver *c, int beam, int n_threads)
{
    const cap_model *m = s->m;
    const cap_config *g = &m->cfg;
    const int64_t T = g->window, d = g->d_model, ff = g->d_ff, V = m->n_vocab, NL = g->n_layers;
    const int64_t Nt = g->max_tokens, C = s->chunk, B = beam, R = C * B, NA = m->max_anchors;
    const int64_t D = g->pe_mask_dim, rows = C * T;
    int64_t ws = T * T;
    ws = B * T > ws ? B * T : ws;
    ws = Nt > ws ? Nt : ws;
    s->embed = F(T * d);
    s->base = F(T * d);
    s->enc_out = F(NL * T * d);
    s->x = F(rows * d);
    s->q = F(rows * d);
    s->k = F(rows * d);
    s->v = F(rows * d);
    s->att = F(rows * d);
    s->tmp = F(rows * d);
    s->hidden = F(rows * ff);
    s->ws_per_thread = (size_t)ws;
    s->attn_ws = F(ws * n_threads);
    s->br_a = F(T * d);
    s->br_b = F(T * d);
    s->anchors = F(NA * 4);
    s->a_centre = F(NA);
    s->a_length = F(NA);
    s->a_score = F(NA);
    s->a_start = F(NA);
    s->a_end = F(NA);
    s->cand = take(c, NA, sizeof(cap_cand));
    s->kept = take(c, NA, sizeof(cap_kept));
    s->mask_in = F(C * (4 * D + T));
    s->mask_hidden = F(C * d);
    s->mask_logits = F(C * T);
    s->mask = F(C * T);
    s->mem_k = F(NL * rows * d);
    s->mem_v = F(NL * rows * d);
    s->dx = F(R * d);
    s->dq = F(R * d);
    s->dk = F(R * d);
    s->dv = F(R * d);
    s->datt = F(R * d);
    s->dtmp = F(R * d);
    s->dhidden = F(R * ff);
    s->logits = F(R * V);
    for (int i = 0; i < 2; i++) {
        s->cache_k[i] = F(NL * R * Nt * d);
        s->cache_v[i] = F(NL * R * Nt * d);
        s->tok[i] = I(R * Nt);
        s->len[i] = I(R);
        s->score[i] = F(R);
        s->ended[i] = take(c, R, 1);
    }
    s->in_tok = I(R);
    s->n_hyps = I(C);
    s->n_steps = I(C);
    s->sel_score = F(B);
    s->sel_src = I(B);
    s->sel_word = I(B);
}
#undef F
#undef I

/* Sizes the arena for beam and n_threads; keeps it when it is already large enough. */
static int reserve(cap_state *s, int beam, int n_threads)
{
    if (s->arena.base && beam <= s->beam && n_threads <= s->n_threads) return 0;
    beam = beam > s->beam ? beam : s->beam;
    n_threads = n_threads > s->n_threads ? n_threads : s->n_threads;
    carver measure = {0};
    layout(s, &measure, beam, n_threads);
    if (measure.overflow) return VC_ERR_NOMEM;
    nn_arena_release(&s->arena);
    if (nn_arena_init(&s->arena, measure.total)) return VC_ERR_NOMEM;
    carver carve = {&s->arena, 0, 0};
    layout(s, &carve, beam, n_threads);
    if (carve.overflow) {
        nn_arena_release(&s->arena);
        return VC_ERR_NOMEM;
    }
    s->beam = beam;
    s->n_threads = n_threads;
    return 0;
}

cap_state *cap_state_create(const cap_model *m)
{
    if (!m) return NULL;
    cap_state *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->m = m;
    const cap_config *c = &m->cfg;
    /* chunk x window x max(d_model, d_ff) floats per encoder buffer stay near CAP_CHUNK_FLOATS */
    const int64_t per = (int64_t)c->window * (c->d_model > c->d_ff ? c->d_model : c->d_ff);
    int64_t chunk = CAP_CHUNK_FLOATS / per;
    s->chunk = (int)(chunk < 1 ? 1 : chunk > CAP_MAX_CHUNK ? CAP_MAX_CHUNK : chunk);
    if (reserve(s, 1, 1)) {
        cap_state_free(s);
        return NULL;
    }
    return s;
}

void cap_state_free(cap_state *s)
{
    if (!s) return;
    nn_arena_release(&s->arena);
    free(s);
}

void cap_state_set_trace(cap_state *s, cap_trace_fn fn, void *user)
{
    s->trace = fn;
    s->trace_user = user;
}

int cap_state_chunk(const cap_state *s)
{
    return s->chunk;
}

int cap_state_set_chunk(cap_state *s, int chunk)
{
    if (chunk < 1 || chunk > CAP_MAX_CHUNK_SET) return VC_ERR_ARG;
    s->chunk = chunk;
    nn_arena_release(&s->arena);
    return reserve(s, s->beam, s->n_threads);
}

void cap_trace_emit(const cap_state *s, const float *data, int ndim, int64_t d0, int64_t d1, const char *fmt,
                    ...)
{
    if (!s->trace) return;
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    const int64_t shape[2] = {d0, d1};
    s->trace(s->trace_user, name, data, ndim, shape);
}

/* ---- a window ---- */

int cap_run_window(cap_state *s, nn_pool *pool, const float *features, const float *times, int L,
                   double duration, const cap_params *p, cap_proposal *out, int *n_out, char *err,
                   size_t errlen)
{
    if (n_out) *n_out = 0;
    if (!s || !p || !n_out) return nn_error(VC_ERR_ARG, err, errlen, "captioner", "missing argument");
    const cap_model *m = s->m;
    const cap_config *c = &m->cfg;
    int rc = cap_params_check(p, err, errlen);
    if (rc) return rc;
    if (L < 0 || L > c->window)
        return nn_error(VC_ERR_ARG, err, errlen, "captioner", "%d feature rows, the window holds 0..%d", L,
                        c->window);
    if (L == 0 || p->max_events == 0) return 0;
    if (!features || !times || !out)
        return nn_error(VC_ERR_ARG, err, errlen, "captioner", "missing argument");
    for (int64_t i = 0; i < (int64_t)L * c->d_in; i++)
        if (!isfinite(features[i]))
            return nn_error(VC_ERR_ARG, err, errlen, "captioner", "feature %lld of row %lld is not finite",
                            (long long)(i % c->d_in), (long long)(i / c->d_in));
    for (int i = 0; i < L; i++)
        if (!isfinite(times[i]))
            return nn_error(VC_ERR_ARG, err, errlen, "captioner", "time of row %d is not finite", i);
    if ((rc = reserve(s, p->beam, nn_pool_size(pool))))
        return nn_error(rc, err, errlen, "captioner", "out of memory for beam %d", p->beam);

    cap_embed(s, pool, features, L);
    cap_encode(s, pool);
    const int n_anchors = cap_anchors(s, pool, L);
    const int K = cap_select(s, n_anchors, L, p);
    /* the reference's default duration: the window ends one step after its last sample */
    if (!(duration > 0) || !isfinite(duration)) duration = (double)times[L - 1] + 1.0 / c->fps;
    for (int i = 0; i < K; i++) {
        const cap_kept *k = &s->kept[i];
        cap_proposal *o = &out[i];
        o->w_start = k->w_start;
        o->w_end = k->w_end;
        o->start = k->start;
        o->end = k->end;
        o->score = k->score;
        o->anchor = k->anchor;
        o->t0 = fmin((double)times[0] + k->w_start / c->fps, duration);
        o->t1 = fmin((double)times[0] + k->w_end / c->fps, duration);
    }
    for (int first = 0; first < K; first += s->chunk) {
        const int n = K - first < s->chunk ? K - first : s->chunk;
        cap_masks(s, pool, first, n);
        cap_encode_masked(s, pool, n, first);
        cap_decode(s, pool, n, p->beam, first, out + first);
    }
    *n_out = K;
    return 0;
}
