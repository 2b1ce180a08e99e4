/* The caption decoder: tied word embedding (out.weight[tok] * sqrt(d) + PE), post-LN layers of causal
 * self-attention, cross-attention to the proposal's masked memory and FFN, logits = out.weight h + out.bias.
 * Decoding is incremental: each step runs one new token per hypothesis, its self-attention reading the keys
 * and values cached at earlier steps, and the cross-attention keys and values were projected once per
 * proposal (cap_encode_masked). All proposals of a chunk, and all their beams, are one batch of rows, split
 * between the threads by proposal.
 * Greedy takes the first maximal logit; beam search follows tools/masked_transformer.py (plain sum of
 * float32 log-probs, finished hypotheses compete with the extensions of live ones, stable order). */
#include <math.h>
#include <string.h>

#include "captioning/internal.h"

/* layout of the self-attention caches: [n_layers, R, max_tokens, d] */
static float *cache_at(const cap_state *s, float *base, int l, int R, int r, int t)
{
    const int64_t Nt = s->m->cfg.max_tokens, d = s->m->cfg.d_model;
    return base + (((int64_t)l * R + r) * Nt + t) * d;
}

static void add_norm(float *x, const float *fx, int64_t rows, int64_t d, const float *gamma,
                     const float *beta)
{
    nn_add(x, fx, rows * d, x);
    nn_layernorm_std(NULL, x, rows, d, gamma, beta, CAP_LN_EPS, x);
}

/* One step at position t for the rows of proposals [p0, p1) (B rows per proposal, proposal p's rows
 * p*B .. p*B + B - 1 of the R = n x B), serially on the caller with workspace ws: reads s->in_tok, writes
 * keys and values to cache set cs at position t, leaves the rows' logits in s->logits. */
static void step_range(cap_state *s, int p0, int p1, int B, int R, int t, int cs, float *ws)
{
    const cap_model *m = s->m;
    const cap_config *c = &m->cfg;
    const int64_t d = c->d_model, ff = c->d_ff, T = c->window, V = m->n_vocab, Nt = c->max_tokens;
    const int r0 = p0 * B, rows = (p1 - p0) * B;
    const float emb_scale = (float)sqrt((double)d), scale = (float)(1.0 / sqrt((double)d));
    float *x = s->dx + (int64_t)r0 * d, *q = s->dq + (int64_t)r0 * d, *k = s->dk + (int64_t)r0 * d,
          *v = s->dv + (int64_t)r0 * d, *att = s->datt + (int64_t)r0 * d, *tmp = s->dtmp + (int64_t)r0 * d,
          *hid = s->dhidden + (int64_t)r0 * ff;
    for (int r = 0; r < rows; r++) {
        const float *w = m->out_w + (int64_t)s->in_tok[r0 + r] * d, *pe = m->pos + (int64_t)t * d;
        for (int64_t i = 0; i < d; i++)
            x[r * d + i] = w[i] * emb_scale + pe[i];
    }
    for (int l = 0; l < c->n_layers; l++) {
        const cap_dec_layer *ly = &m->dec[l];
        /* causal self-attention: the new token against itself and the cached earlier ones */
        nn_linear(NULL, x, rows, d, ly->self.wq, NULL, d, q);
        nn_linear(NULL, x, rows, d, ly->self.wk, NULL, d, k);
        nn_linear(NULL, x, rows, d, ly->self.wv, NULL, d, v);
        for (int r = 0; r < rows; r++) {
            memcpy(cache_at(s, s->cache_k[cs], l, R, r0 + r, t), k + r * d, (size_t)d * sizeof(float));
            memcpy(cache_at(s, s->cache_v[cs], l, R, r0 + r, t), v + r * d, (size_t)d * sizeof(float));
        }
        const nn_mha_shape self = {.groups = rows,
                                   .nq = 1,
                                   .nk = t + 1,
                                   .dim = d,
                                   .heads = c->n_heads,
                                   .scale = scale,
                                   .q_ld = d,
                                   .kv_ld = d,
                                   .out_ld = d,
                                   .q_group = d,
                                   .kv_group = Nt * d,
                                   .out_group = d};
        nn_mha(NULL, &self, q, cache_at(s, s->cache_k[cs], l, R, r0, 0),
               cache_at(s, s->cache_v[cs], l, R, r0, 0), att, ws);
        nn_linear(NULL, att, rows, d, ly->self.wo, NULL, d, tmp);
        add_norm(x, tmp, rows, d, ly->self.ln_gamma, ly->self.ln_beta);
        /* cross-attention: a proposal's B hypotheses are B queries against its one memory */
        nn_linear(NULL, x, rows, d, ly->cross.wq, NULL, d, q);
        const int64_t mem = ((int64_t)l * s->chunk + p0) * T * d;
        const nn_mha_shape cross = {.groups = p1 - p0,
                                    .nq = B,
                                    .nk = T,
                                    .dim = d,
                                    .heads = c->n_heads,
                                    .scale = scale,
                                    .q_ld = d,
                                    .kv_ld = d,
                                    .out_ld = d,
                                    .q_group = B * d,
                                    .kv_group = T * d,
                                    .out_group = B * d};
        nn_mha(NULL, &cross, q, s->mem_k + mem, s->mem_v + mem, att, ws);
        nn_linear(NULL, att, rows, d, ly->cross.wo, NULL, d, tmp);
        add_norm(x, tmp, rows, d, ly->cross.ln_gamma, ly->cross.ln_beta);
        nn_linear(NULL, x, rows, d, ly->ffn.w1, ly->ffn.b1, ff, hid);
        for (int64_t i = 0; i < rows * ff; i++)
            hid[i] = hid[i] > 0.f ? hid[i] : 0.f;
        nn_linear(NULL, hid, rows, ff, ly->ffn.w2, ly->ffn.b2, d, tmp);
        add_norm(x, tmp, rows, d, ly->ffn.ln_gamma, ly->ffn.ln_beta);
    }
    nn_linear(NULL, x, rows, d, m->out_w, m->out_b, V, s->logits + (int64_t)r0 * V);
}

typedef struct step_job {
    cap_state *s;
    int B, R, t, cs;
} step_job;

static void step_task(void *ctx, int64_t p0, int64_t p1, int thread)
{
    const step_job *j = ctx;
    step_range(j->s, (int)p0, (int)p1, j->B, j->R, j->t, j->cs,
               j->s->attn_ws + (size_t)thread * j->s->ws_per_thread);
}

/* One step for all n proposals. The threads split the proposals, each running whole steps serially on
 * its share: a step is ~40 small products, and one dispatch per step instead of one per product keeps a
 * busy or oversubscribed machine from paying a thread wake-up for each. */
static void step(cap_state *s, nn_pool *pool, int n, int B, int t, int cs)
{
    step_job j = {s, B, n * B, t, cs};
    nn_pool_run(pool, n, 1, step_task, &j);
}

static void finish(const cap_model *m, const int *emitted, int n_emitted, cap_proposal *out)
{
    int n = 0;
    while (n < n_emitted && emitted[n] != CAP_TOK_EOS)
        n++;
    memcpy(out->tokens, emitted, (size_t)n * sizeof(int));
    out->n_tokens = n;
    cap_vocab_join(m, out->tokens, n, out->sentence, sizeof(out->sentence));
}

/* Greedy decoding of n proposals (one row each), or with forced != NULL the replay of given token
 * sequences (forced[p * max_tokens + i], forced_len[p] of them) that traces the logits beam search chose. */
static void greedy(cap_state *s, nn_pool *pool, int n, int first, const int *forced, const int *forced_len,
                   cap_proposal *out)
{
    const cap_model *m = s->m;
    const int Nt = m->cfg.max_tokens, steps = Nt - 1, V = m->n_vocab;
    int *tok = s->tok[0];
    unsigned char *done = s->ended[0];
    int live = 0;
    for (int p = 0; p < n; p++) {
        tok[p * Nt] = CAP_TOK_INIT;
        done[p] = forced && forced_len[p] == 0;
        s->n_steps[p] = forced ? forced_len[p] : steps;
        live += !done[p];
    }
    for (int t = 0; t < steps && live; t++) {
        for (int p = 0; p < n; p++)
            s->in_tok[p] = tok[p * Nt + t];
        step(s, pool, n, 1, t, 0);
        for (int p = 0; p < n; p++) {
            if (done[p]) {
                tok[p * Nt + t + 1] = CAP_TOK_PAD;
                continue;
            }
            const float *lg = s->logits + (int64_t)p * V;
            cap_trace_emit(s, lg, 1, V, 0, "decoder.logits.%d.%d", first + p, t);
            int next = 0;
            if (forced) {
                next = forced[p * Nt + t];
            } else {
                for (int v = 1; v < V; v++)
                    if (lg[v] > lg[next]) next = v;
            }
            tok[p * Nt + t + 1] = next;
            if (forced ? t + 1 == forced_len[p] : next == CAP_TOK_EOS) {
                done[p] = 1;
                s->n_steps[p] = t + 1;
                live--;
            }
        }
    }
    if (forced) return;
    for (int p = 0; p < n; p++)
        finish(m, tok + p * Nt + 1, s->n_steps[p], &out[p]);
}

/* log_softmax of one row in place */
static void log_softmax(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)(x[i] - mx));
    const float lse = (float)log(sum);
    for (int i = 0; i < n; i++)
        x[i] = (x[i] - mx) - lse;
}

/* Offers a candidate to the best-B list of one step. Candidates arrive in pool order, so a tie keeps the
 * earlier one first (the reference's stable descending sort). */
static void offer(cap_state *s, int B, int *nsel, float score, int src, int word)
{
    int k = *nsel;
    if (k == B && !(score > s->sel_score[B - 1])) return;
    if (k < B) k++;
    int i = k - 1;
    while (i > 0 && score > s->sel_score[i - 1]) {
        s->sel_score[i] = s->sel_score[i - 1];
        s->sel_src[i] = s->sel_src[i - 1];
        s->sel_word[i] = s->sel_word[i - 1];
        i--;
    }
    s->sel_score[i] = score;
    s->sel_src[i] = src;
    s->sel_word[i] = word;
    *nsel = k;
}

static void beam_search(cap_state *s, nn_pool *pool, int n, int B, int first, cap_proposal *out)
{
    const cap_model *m = s->m;
    const cap_config *c = &m->cfg;
    const int Nt = c->max_tokens, steps = Nt - 1, V = m->n_vocab, R = n * B, L = c->n_layers;
    const int64_t d = c->d_model;
    int cur = 0;
    for (int p = 0; p < n; p++) {
        const int r = p * B;
        s->n_hyps[p] = 1;
        s->tok[cur][r * Nt] = CAP_TOK_INIT;
        s->len[cur][r] = 1;
        s->score[cur][r] = 0.f;
        s->ended[cur][r] = 0;
    }
    for (int t = 0; t < steps; t++) {
        int any = 0;
        for (int r = 0; r < R; r++) {
            const int live = r % B < s->n_hyps[r / B] && !s->ended[cur][r];
            s->in_tok[r] = live ? s->tok[cur][r * Nt + t] : CAP_TOK_PAD; /* idle rows run on a dummy token */
            any |= live;
        }
        if (!any) break;
        step(s, pool, n, B, t, cur);
        const int nxt = 1 - cur;
        for (int p = 0; p < n; p++) {
            int nsel = 0, live = 0;
            for (int j = 0; j < s->n_hyps[p]; j++)
                live |= !s->ended[cur][p * B + j];
            if (!live) { /* the reference stops here: keep the hypotheses as they are */
                for (int j = 0; j < s->n_hyps[p]; j++) {
                    s->sel_score[j] = s->score[cur][p * B + j];
                    s->sel_src[j] = j;
                    s->sel_word[j] = -1;
                }
                nsel = s->n_hyps[p];
            } else {
                for (int j = 0; j < s->n_hyps[p]; j++) {
                    const int r = p * B + j;
                    if (s->ended[cur][r]) {
                        offer(s, B, &nsel, s->score[cur][r], j, -1);
                        continue;
                    }
                    float *lp = s->logits + (int64_t)r * V;
                    log_softmax(lp, V);
                    for (int v = 0; v < V; v++)
                        offer(s, B, &nsel, s->score[cur][r] + lp[v], j, v);
                }
            }
            for (int i = 0; i < nsel; i++) {
                const int src = p * B + s->sel_src[i], dst = p * B + i, word = s->sel_word[i];
                const int len = s->len[cur][src];
                memcpy(s->tok[nxt] + dst * Nt, s->tok[cur] + src * Nt, (size_t)len * sizeof(int));
                s->score[nxt][dst] = s->sel_score[i];
                if (word >= 0) {
                    s->tok[nxt][dst * Nt + len] = word;
                    s->len[nxt][dst] = len + 1;
                    s->ended[nxt][dst] = word == CAP_TOK_EOS;
                } else {
                    s->len[nxt][dst] = len;
                    s->ended[nxt][dst] = s->ended[cur][src];
                }
                if (s->ended[nxt][dst]) continue; /* a finished hypothesis never reads its cache again */
                for (int l = 0; l < L; l++) {
                    memcpy(cache_at(s, s->cache_k[nxt], l, R, dst, 0),
                           cache_at(s, s->cache_k[cur], l, R, src, 0), (size_t)((t + 1) * d) * sizeof(float));
                    memcpy(cache_at(s, s->cache_v[nxt], l, R, dst, 0),
                           cache_at(s, s->cache_v[cur], l, R, src, 0), (size_t)((t + 1) * d) * sizeof(float));
                }
            }
            s->n_hyps[p] = nsel;
        }
        cur = nxt;
    }
    for (int p = 0; p < n; p++) {
        const int r = p * B; /* the best hypothesis comes first */
        finish(m, s->tok[cur] + r * Nt + 1, s->len[cur][r] - 1, &out[p]);
    }
    if (!s->trace) return;
    /* the logits of the chosen sentences, step by step, for the parity trace: greedy() replays them in set
     * 0, so they move to set 1 (rows compacted in place in increasing order when they are there already) */
    int *forced = s->tok[1], *forced_len = s->len[1];
    for (int p = 0; p < n; p++) {
        const int len = s->len[cur][p * B] - 1;
        memmove(forced + p * Nt, s->tok[cur] + p * B * Nt + 1, (size_t)len * sizeof(int));
        forced_len[p] = len;
    }
    greedy(s, pool, n, first, forced, forced_len, out);
}

void cap_decode(cap_state *s, nn_pool *pool, int n, int beam, int first, cap_proposal *out)
{
    if (beam <= 1)
        greedy(s, pool, n, first, NULL, NULL, out);
    else
        beam_search(s, pool, n, beam, first, out);
}
