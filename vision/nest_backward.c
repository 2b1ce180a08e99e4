/* Reverse-mode pass through NesT, activations only (no weight gradients): what GradCAT and token-impact
 * estimates need. The forward records each layer's inputs (nest_tape); this walks the levels top-down:
 * head -> mean pool -> final LayerNorm -> [layers in reverse -> ConvPool (max-pool, LayerNorm, conv)]. */
#include <string.h>

#include "vidcap.h"
#include "vision/nest.h"

int nest_state_enable_backward(nest_state *s, int to_embed)
{
    if (s->tape && (s->tape->to_embed || !to_embed)) return 0;
    nn_arena_release(&s->tape_arena); /* a tape without level 0 cannot serve a to_embed request */
    s->tape = NULL;
    const nest_config *c = &s->m->cfg;
    const int nt = nn_pool_size(s->pool);
    int64_t rows_c_max = 0, qkv_max = 0, hid_max = 0, ws_max = 0, col_max = 0;
    size_t total = nn_arena_cost(sizeof(nest_tape));
#define ADD(n) total += nn_arena_cost((size_t)(n) * sizeof(float))
    for (int i = 0; i < c->num_levels; i++) {
        const int64_t rows = (int64_t)c->num_blocks[i] * c->seq_length, C = c->embed_dims[i];
        const int64_t probs = (int64_t)c->num_blocks[i] * c->num_heads[i] * c->seq_length * c->seq_length;
        total += nn_arena_cost((size_t)(c->depths[i] ? c->depths[i] : 1) * sizeof(nest_tape_layer));
        /* level 0's layers are walked back only to reach the patch embedding */
        for (int j = 0; j < c->depths[i] && (i > 0 || to_embed); j++) {
            ADD(rows * C);
            ADD(rows * C);
            ADD(rows * 3 * C);
            ADD(probs);
            ADD(rows * c->hidden[i]);
        }
        if (i > 0) {
            const int64_t pre = (int64_t)c->grid[i - 1] * c->grid[i - 1] * C;
            ADD(pre);
            total += nn_arena_cost((size_t)rows * C * sizeof(int32_t));
            nn_conv2d_shape cs = {c->grid[i - 1], c->grid[i - 1], c->embed_dims[i - 1], C, 3, 1, 1};
            if ((int64_t)nn_conv2d_col_size(&cs) > col_max) col_max = (int64_t)nn_conv2d_col_size(&cs);
            if (pre > rows_c_max) rows_c_max = pre;
        }
        ADD(rows * C); /* grads[i] */
        if (rows * C > rows_c_max) rows_c_max = rows * C;
        if (rows * 3 * C > qkv_max) qkv_max = rows * 3 * C;
        if (rows * c->hidden[i] > hid_max) hid_max = rows * c->hidden[i];
        nn_attention_shape as = {c->num_blocks[i],   c->seq_length, C,   c->num_heads[i],
                                 NN_MERGE_DIM_MAJOR, NULL,          NULL};
        if ((int64_t)nn_attention_backward_workspace(&as, nt) > ws_max)
            ws_max = (int64_t)nn_attention_backward_workspace(&as, nt);
    }
    ADD(rows_c_max);
    ADD(rows_c_max);
    ADD(qkv_max);
    ADD(hid_max);
    ADD(col_max);
    ADD(c->num_classes);
    ADD(c->embed_dims[c->num_levels - 1]);
    ADD(ws_max);
    ADD((int64_t)c->grid[0] * c->grid[0] * c->embed_dims[0]); /* dembed */
    ADD(rows_c_max);                                          /* dmasked */
    for (int i = 0; i < c->num_levels; i++)
        total += nn_arena_cost((size_t)c->num_blocks[i] * c->seq_length);
#undef ADD
    if (nn_arena_init(&s->tape_arena, total)) return VC_ERR_NOMEM;
    nn_arena *a = &s->tape_arena;
    nest_tape *t = nn_arena_alloc(a, sizeof(nest_tape));
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < c->num_levels; i++) {
        const int64_t rows = (int64_t)c->num_blocks[i] * c->seq_length, C = c->embed_dims[i];
        const int64_t probs = (int64_t)c->num_blocks[i] * c->num_heads[i] * c->seq_length * c->seq_length;
        t->layers[i] = nn_arena_alloc(a, (size_t)(c->depths[i] ? c->depths[i] : 1) * sizeof(nest_tape_layer));
        for (int j = 0; j < c->depths[i] && (i > 0 || to_embed); j++) {
            nest_tape_layer *l = &t->layers[i][j];
            l->x0 = nn_arena_floats(a, rows * C);
            l->x1 = nn_arena_floats(a, rows * C);
            l->qkv = nn_arena_floats(a, rows * 3 * C);
            l->probs = nn_arena_floats(a, probs);
            l->h = nn_arena_floats(a, rows * c->hidden[i]);
        }
        if (i > 0) {
            t->conv_out[i] = nn_arena_floats(a, (int64_t)c->grid[i - 1] * c->grid[i - 1] * C);
            t->argmax[i] = nn_arena_alloc(a, (size_t)rows * C * sizeof(int32_t));
        }
        t->grads[i] = nn_arena_floats(a, rows * C);
    }
    t->dx = nn_arena_floats(a, rows_c_max);
    t->dy = nn_arena_floats(a, rows_c_max);
    t->dqkv = nn_arena_floats(a, qkv_max);
    t->dhidden = nn_arena_floats(a, hid_max);
    t->dcol = nn_arena_floats(a, col_max);
    t->dlogits = nn_arena_floats(a, c->num_classes);
    t->dpooled = nn_arena_floats(a, c->embed_dims[c->num_levels - 1]);
    t->ws = nn_arena_floats(a, ws_max);
    t->dembed = nn_arena_floats(a, (int64_t)c->grid[0] * c->grid[0] * c->embed_dims[0]);
    t->dmasked = nn_arena_floats(a, rows_c_max);
    for (int i = 0; i < c->num_levels; i++)
        t->rowkeep[i] = nn_arena_alloc(a, (size_t)c->num_blocks[i] * c->seq_length);
    t->to_embed = to_embed;
    s->tape = t;
    return 0;
}

/* m * dx: the gradient that reaches a branch whose output is zeroed for dropped rows (row_keep NULL: dx) */
static const float *branch_grad(const nest_tape *t, const float *dx, int64_t rows, int64_t C,
                                const uint8_t *row_keep)
{
    if (!row_keep) return dx;
    for (int64_t r = 0; r < rows; r++) {
        if (row_keep[r])
            memcpy(t->dmasked + r * C, dx + r * C, (size_t)C * sizeof(float));
        else
            memset(t->dmasked + r * C, 0, (size_t)C * sizeof(float));
    }
    return t->dmasked;
}

/* dx holds d/d(layer output) on entry and d/d(layer input) on return. row_keep: the filtered forward's
 * mask (dropped rows pass through: their branches get no gradient), or NULL. */
static void layer_backward(nest_state *s, const nest_layer *ly, const nest_tape_layer *r, int level,
                           float *dx, const uint8_t *row_keep)
{
    const nest_config *c = &s->m->cfg;
    nest_tape *t = s->tape;
    const int64_t rows = (int64_t)c->num_blocks[level] * c->seq_length, C = c->embed_dims[level];
    const int64_t Hd = c->hidden[level], n = rows * C;
    nn_attention_shape as = {c->num_blocks[level], c->seq_length, C,   c->num_heads[level],
                             NN_MERGE_DIM_MAJOR,   NULL,          NULL};
    /* MLP branch: x2 = x1 + fc2(gelu(fc1(LN2(x1)))) */
    nn_linear_backward(s->pool, branch_grad(t, dx, rows, C, row_keep), rows, C, ly->fc2_w, Hd, t->dhidden);
    nn_gelu_backward(r->h, t->dhidden, rows * Hd, t->dhidden);
    nn_linear_backward(s->pool, t->dhidden, rows, Hd, ly->fc1_w, C, t->dy);
    nn_layernorm_backward(s->pool, r->x1, t->dy, rows, C, ly->norm2_w, NEST_LN_EPS, t->dy);
    nn_add(dx, t->dy, n, dx);
    /* attention branch: x1 = x0 + proj(attn(qkv(LN1(x0)))) */
    nn_linear_backward(s->pool, branch_grad(t, dx, rows, C, row_keep), rows, C, ly->proj_w, C, t->dy);
    nn_attention_backward(s->pool, &as, r->qkv, r->probs, t->dy, t->dqkv, t->ws);
    nn_linear_backward(s->pool, t->dqkv, rows, 3 * C, ly->qkv_w, C, t->dy);
    nn_layernorm_backward(s->pool, r->x0, t->dy, rows, C, ly->norm1_w, NEST_LN_EPS, t->dy);
    nn_add(dx, t->dy, n, dx);
}

void nest_backward(nest_state *s, const float *dlogits)
{
    const nest_model *m = s->m;
    const nest_config *c = &m->cfg;
    nest_tape *t = s->tape;
    const int L = c->num_levels - 1;
    const int64_t Cl = c->embed_dims[L], P = (int64_t)c->grid[L] * c->grid[L];
    /* head, global average pool, final LayerNorm */
    nn_linear_backward(NULL, dlogits, 1, c->num_classes, m->head_w, Cl, t->dpooled);
    if (t->filtered) { /* the mean over the kept top-level tokens */
        int64_t kept = 0;
        for (int64_t p = 0; p < P; p++)
            kept += t->rowkeep[L][p];
        for (int64_t p = 0; p < P; p++)
            for (int64_t ch = 0; ch < Cl; ch++)
                t->dy[p * Cl + ch] = t->rowkeep[L][p] ? t->dpooled[ch] / (float)kept : 0.f;
    } else {
        nn_meanpool_backward(t->dpooled, P, Cl, t->dy);
    }
    nn_layernorm_backward(s->pool, s->maps[L], t->dy, P, Cl, m->norm_w, NEST_LN_EPS, t->grads[L]);
    for (int i = L; i >= (t->to_embed ? 0 : 1); i--) {
        const nest_level *lv = &m->levels[i];
        const int64_t C = c->embed_dims[i], G = c->grid[i], S = c->block_size;
        nest_blockify(t->grads[i], (int)(G / S), (int)S, (int)C, t->dx, 0);
        for (int j = c->depths[i] - 1; j >= 0; j--)
            layer_backward(s, &lv->layers[j], &t->layers[i][j], i, t->dx, t->filtered ? t->rowkeep[i] : NULL);
        /* + pos_embed passes the gradient through; back to the pooled map (or the patch embedding) */
        if (i == 0) {
            nest_blockify(t->dembed, (int)(G / S), (int)S, (int)C, t->dx, 1);
            break;
        }
        const int64_t Gp = c->grid[i - 1];
        nest_blockify(t->dy, (int)(G / S), (int)S, (int)C, t->dx, 1);
        nn_maxpool_backward(t->dy, t->argmax[i], G * G * C, Gp * Gp * C, t->dx);
        nn_layernorm_backward(s->pool, t->conv_out[i], t->dx, Gp * Gp, C, lv->norm_w, NEST_LN_EPS, t->dx);
        nn_conv2d_shape cs = {Gp, Gp, c->embed_dims[i - 1], C, 3, 1, 1};
        nn_conv2d_backward(s->pool, &cs, t->dx, lv->conv_w, t->grads[i - 1], t->dcol);
    }
}

void nest_backward_log_prob(nest_state *s, int target, float scale)
{
    const int n = s->m->cfg.num_classes;
    float *d = s->tape->dlogits;
    /* d log softmax_t / d logits = onehot(t) - softmax */
    memcpy(d, s->logits, (size_t)n * sizeof(float));
    nn_softmax(d, 1, n);
    for (int k = 0; k < n; k++)
        d[k] = scale * ((float)(k == target) - d[k]);
    nest_backward(s, d);
}
