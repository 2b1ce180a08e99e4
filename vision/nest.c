/* NesT forward pass (timm `Nest`): patch embedding, then per level ConvPool -> blockify -> +pos_embed ->
 * block-local transformer layers -> deblockify, then LayerNorm, global average pooling and the head.
 * Op order and constants follow specs/nest_gradcat.md §3 (LN eps 1e-6, erf GELU, merge e*H+h, -inf pool). */
#include "vision/nest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "vidcap.h"

#define NEST_TIMM_HEAD_DIM 32

/* ---- configuration ---- */

static int json_int_array(const cJSON *o, const char *key, int *out, int n, char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) {
        snprintf(err, errlen, "config: '%s' must be an array of %d integers", key, n);
        return VC_ERR_MODEL;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble) {
            snprintf(err, errlen, "config: '%s' must hold integers", key);
            return VC_ERR_MODEL;
        }
        out[i] = (int)v->valuedouble;
    }
    return 0;
}

static int json_int(const cJSON *o, const char *key, int *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble) {
        snprintf(err, errlen, "config: '%s' must be an integer", key);
        return VC_ERR_MODEL;
    }
    *out = (int)v->valuedouble;
    return 0;
}

int nest_config_parse(const char *json, nest_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cJSON *o = cJSON_Parse(json);
    int rc = VC_ERR_MODEL;
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "config: vidcap.config is not a JSON object");
        goto end;
    }
    if ((rc = json_int(o, "img_size", &cfg->img_size, err, errlen)) ||
        (rc = json_int(o, "in_chans", &cfg->in_chans, err, errlen)) ||
        (rc = json_int(o, "patch_size", &cfg->patch_size, err, errlen)) ||
        (rc = json_int(o, "num_levels", &cfg->num_levels, err, errlen)) ||
        (rc = json_int(o, "num_classes", &cfg->num_classes, err, errlen)))
        goto end;
    rc = VC_ERR_MODEL;
    if (cfg->num_levels < 1 || cfg->num_levels > NEST_MAX_LEVELS) {
        snprintf(err, errlen, "config: num_levels %d outside 1..%d", cfg->num_levels, NEST_MAX_LEVELS);
        goto end;
    }
    if ((rc = json_int_array(o, "embed_dims", cfg->embed_dims, cfg->num_levels, err, errlen)) ||
        (rc = json_int_array(o, "num_heads", cfg->num_heads, cfg->num_levels, err, errlen)) ||
        (rc = json_int_array(o, "depths", cfg->depths, cfg->num_levels, err, errlen)))
        goto end;
    const cJSON *mr = cJSON_GetObjectItemCaseSensitive(o, "mlp_ratio");
    cfg->mlp_ratio = cJSON_IsNumber(mr) ? (float)mr->valuedouble : 4.f;
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(o, "pad_type");
    if (pad && !cJSON_IsString(pad)) {
        snprintf(err, errlen, "config: 'pad_type' must be \"same\" or \"\"");
        goto end;
    }
    if (pad && strcmp(pad->valuestring, "same") != 0 && pad->valuestring[0] != 0) {
        snprintf(err, errlen, "config: unknown pad_type '%.32s' (want \"same\" or \"\")", pad->valuestring);
        goto end;
    }
    cfg->pad = pad && strcmp(pad->valuestring, "same") == 0 ? NN_PAD_SAME : NN_PAD_SYMMETRIC;
    rc = nest_config_finish(cfg, err, errlen);
end:
    cJSON_Delete(o);
    return rc;
}

static int isqrt_exact(int n)
{
    int r = (int)lround(sqrt((double)n));
    return r * r == n ? r : -1;
}

int nest_config_finish(nest_config *c, char *err, size_t errlen)
{
    const int L = c->num_levels;
#define BAD(...)                                                                                             \
    do {                                                                                                     \
        snprintf(err, errlen, "config: " __VA_ARGS__);                                                       \
        return VC_ERR_MODEL;                                                                                 \
    } while (0)
    if (L < 1 || L > NEST_MAX_LEVELS) BAD("num_levels %d outside 1..%d", L, NEST_MAX_LEVELS);
    if (c->in_chans < 1 || c->in_chans > 4) BAD("in_chans %d outside 1..4", c->in_chans);
    if (c->img_size < 1 || c->img_size > 4096) BAD("img_size %d outside 1..4096", c->img_size);
    if (c->patch_size < 1 || c->img_size % c->patch_size)
        BAD("img_size %d is not a multiple of patch_size %d", c->img_size, c->patch_size);
    if (c->num_classes < 1 || c->num_classes > 100000)
        BAD("num_classes %d outside 1..100000", c->num_classes);
    if (!(c->mlp_ratio > 0 && c->mlp_ratio <= 16)) BAD("mlp_ratio outside (0, 16]");
    int grid = c->img_size / c->patch_size;
    int per_side = 1 << (L - 1); /* level-0 blocks per side */
    if (grid % per_side) BAD("patch grid %d is not divisible into %dx%d blocks", grid, per_side, per_side);
    c->block_size = grid / per_side;
    c->seq_length = c->block_size * c->block_size;
    for (int i = 0; i < L; i++) {
        if (c->embed_dims[i] < 1 || c->embed_dims[i] > 8192)
            BAD("embed_dims[%d] = %d out of range", i, c->embed_dims[i]);
        if (c->num_heads[i] < 1 || c->embed_dims[i] % c->num_heads[i])
            BAD("embed_dims[%d] = %d is not divisible by num_heads %d", i, c->embed_dims[i], c->num_heads[i]);
        if (c->depths[i] < 0 || c->depths[i] > 256) BAD("depths[%d] = %d out of range", i, c->depths[i]);
        c->num_blocks[i] = 1 << (2 * (L - 1 - i));
        c->grid[i] = grid >> i;
        c->hidden[i] = (int)(c->embed_dims[i] * c->mlp_ratio);
        /* ConvPool halves the map, so every map that is pooled must have an even side */
        if (i + 1 < L && c->grid[i] % 2) BAD("level %d map side %d is odd", i, c->grid[i]);
    }
#undef BAD
    return 0;
}

/* ---- timm recognition ---- */

int nest_config_from_timm(const st_file *f, nest_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    const st_tensor *pe = st_find(f, "patch_embed.proj.weight"), *head = st_find(f, "head.weight");
    if (!pe || pe->ndim != 4 || pe->shape[2] != pe->shape[3] || !head || head->ndim != 2) {
        snprintf(err, errlen,
                 "not a NesT model: no vidcap metadata and no timm NesT keys "
                 "(patch_embed.proj.weight, head.weight)");
        return VC_ERR_MODEL;
    }
    c->in_chans = (int)pe->shape[1];
    c->patch_size = (int)pe->shape[2];
    c->num_classes = (int)head->shape[0];
    c->mlp_ratio = 4.f;
    c->pad = NN_PAD_SAME;
    char name[128];
    int L = 0;
    for (; L < NEST_MAX_LEVELS; L++) {
        snprintf(name, sizeof(name), "levels.%d.pos_embed", L);
        const st_tensor *pos = st_find(f, name);
        if (!pos) break;
        if (pos->ndim != 4 || pos->shape[3] < 1 || pos->shape[3] > 8192) {
            snprintf(err, errlen, "%s has an unexpected shape", name);
            return VC_ERR_MODEL;
        }
        c->embed_dims[L] = (int)pos->shape[3];
        c->num_heads[L] =
            c->embed_dims[L] / NEST_TIMM_HEAD_DIM > 0 ? c->embed_dims[L] / NEST_TIMM_HEAD_DIM : 1;
        if (L == 0) {
            int blocks = isqrt_exact((int)pos->shape[1]), side = isqrt_exact((int)pos->shape[2]);
            if (blocks < 1 || side < 1) {
                snprintf(err, errlen, "%s: blocks and tokens per block must be squares", name);
                return VC_ERR_MODEL;
            }
            c->img_size = blocks * side * c->patch_size;
        }
        int d = 0;
        for (;; d++) {
            snprintf(name, sizeof(name), "levels.%d.transformer_encoder.%d.norm1.weight", L, d);
            if (!st_find(f, name)) break;
        }
        c->depths[L] = d;
    }
    if (L == 0) {
        snprintf(err, errlen, "not a NesT model: no levels.0.pos_embed");
        return VC_ERR_MODEL;
    }
    c->num_levels = L;
    return nest_config_finish(c, err, errlen);
}

/* ---- weights ---- */

typedef struct binder {
    const st_file *f;
    const char *prefix;
    char *err;
    size_t errlen;
    int rc, used;
} binder;

/* Looks up prefix+name, checks its shape (dims terminated by 0) and that every value is finite. */
static const float *bind(binder *b, const char *name, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    if (b->rc) return NULL;
    const int64_t want[4] = {d0, d1, d2, d3};
    int nd = 0;
    while (nd < 4 && want[nd])
        nd++;
    char key[256];
    snprintf(key, sizeof(key), "%s%s", b->prefix, name);
    const st_tensor *t = st_expect(b->f, key, nd, want, b->err, b->errlen);
    if (!t) {
        b->rc = VC_ERR_MODEL;
        return NULL;
    }
    b->used++;
    return t->data;
}

int nest_bind(nest_model *m, const st_file *f, const char *prefix, const nest_config *cfg, char *err,
              size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    const nest_config *c = &m->cfg;
    binder b = {f, prefix, err, errlen, 0, 0};
    char n[160];
    const int64_t p = c->patch_size, N = c->seq_length;
    m->patch_w = bind(&b, "patch_embed.proj.weight", c->embed_dims[0], c->in_chans, p, p);
    m->patch_b = bind(&b, "patch_embed.proj.bias", c->embed_dims[0], 0, 0, 0);
    for (int i = 0; i < c->num_levels && !b.rc; i++) {
        nest_level *lv = &m->levels[i];
        const int64_t C = c->embed_dims[i], Hd = c->hidden[i];
        snprintf(n, sizeof(n), "levels.%d.pos_embed", i);
        lv->pos_embed = bind(&b, n, 1, c->num_blocks[i], N, C);
        if (i > 0) {
            const int64_t Cp = c->embed_dims[i - 1];
            snprintf(n, sizeof(n), "levels.%d.pool.conv.weight", i);
            lv->conv_w = bind(&b, n, C, Cp, 3, 3);
            snprintf(n, sizeof(n), "levels.%d.pool.conv.bias", i);
            lv->conv_b = bind(&b, n, C, 0, 0, 0);
            snprintf(n, sizeof(n), "levels.%d.pool.norm.weight", i);
            lv->norm_w = bind(&b, n, C, 0, 0, 0);
            snprintf(n, sizeof(n), "levels.%d.pool.norm.bias", i);
            lv->norm_b = bind(&b, n, C, 0, 0, 0);
        }
        lv->layers = calloc((size_t)(c->depths[i] ? c->depths[i] : 1), sizeof(nest_layer));
        if (!lv->layers) {
            snprintf(err, errlen, "out of memory");
            b.rc = VC_ERR_NOMEM;
            break;
        }
        for (int j = 0; j < c->depths[i] && !b.rc; j++) {
            nest_layer *ly = &lv->layers[j];
#define W(field, suffix, d0, d1)                                                                             \
    snprintf(n, sizeof(n), "levels.%d.transformer_encoder.%d.%s", i, j, suffix);                             \
    ly->field = bind(&b, n, d0, d1, 0, 0)
            W(norm1_w, "norm1.weight", C, 0);
            W(norm1_b, "norm1.bias", C, 0);
            W(qkv_w, "attn.qkv.weight", 3 * C, C);
            W(qkv_b, "attn.qkv.bias", 3 * C, 0);
            W(proj_w, "attn.proj.weight", C, C);
            W(proj_b, "attn.proj.bias", C, 0);
            W(norm2_w, "norm2.weight", C, 0);
            W(norm2_b, "norm2.bias", C, 0);
            W(fc1_w, "mlp.fc1.weight", Hd, C);
            W(fc1_b, "mlp.fc1.bias", Hd, 0);
            W(fc2_w, "mlp.fc2.weight", C, Hd);
            W(fc2_b, "mlp.fc2.bias", C, 0);
#undef W
        }
    }
    const int64_t Cl = c->embed_dims[c->num_levels - 1];
    m->norm_w = bind(&b, "norm.weight", Cl, 0, 0, 0);
    m->norm_b = bind(&b, "norm.bias", Cl, 0, 0, 0);
    m->head_w = bind(&b, "head.weight", c->num_classes, Cl, 0, 0);
    m->head_b = bind(&b, "head.bias", c->num_classes, 0, 0, 0);
    if (!b.rc) {
        /* every NesT tensor under the prefix must have been used: an extra one means a config mismatch
         * (other parts of a bundle, such as "filter.", live beside them) */
        static const char *const roots[] = {"patch_embed.", "levels.", "norm.", "head."};
        size_t plen = strlen(prefix);
        int total = 0;
        for (int i = 0; i < st_n_tensors(f); i++) {
            const char *name = st_tensor_at(f, i)->name;
            if (strncmp(name, prefix, plen) != 0) continue;
            for (int r = 0; r < 4; r++)
                total += strncmp(name + plen, roots[r], strlen(roots[r])) == 0;
        }
        if (total != b.used) {
            snprintf(err, errlen,
                     "the file holds %d NesT tensors, the config describes %d (depths or levels "
                     "in the metadata contradict the tensors)",
                     total, b.used);
            b.rc = VC_ERR_MODEL;
        }
    }
    if (b.rc) nest_unbind(m);
    return b.rc;
}

void nest_unbind(nest_model *m)
{
    if (!m) return;
    for (int i = 0; i < NEST_MAX_LEVELS; i++) {
        free(m->levels[i].layers);
        m->levels[i].layers = NULL;
    }
}

/* ---- forward ---- */

int nest_state_init(nest_state *s, const nest_model *m, nn_pool *pool)
{
    memset(s, 0, sizeof(*s));
    s->m = m;
    s->pool = pool;
    nn_blas_single_threaded();
    const nest_config *c = &m->cfg;
    const int nt = nn_pool_size(pool);
    /* largest per-level activation sizes */
    int64_t x_max = 0, qkv_max = 0, hid_max = 0, attn_max = 0, col_max = 0, maps = 0;
    nn_conv2d_shape pe = {
        c->img_size, c->img_size, c->in_chans, c->embed_dims[0], c->patch_size, c->patch_size, 0};
    col_max = (int64_t)nn_conv2d_col_size(&pe);
    for (int i = 0; i < c->num_levels; i++) {
        int64_t tokens = (int64_t)c->num_blocks[i] * c->seq_length, C = c->embed_dims[i];
        if (i > 0) {
            nn_conv2d_shape cs = {c->grid[i - 1], c->grid[i - 1], c->embed_dims[i - 1], C, 3, 1, 1};
            int64_t col = (int64_t)nn_conv2d_col_size(&cs);
            if (col > col_max) col_max = col;
            int64_t pre = (int64_t)c->grid[i - 1] * c->grid[i - 1] * C; /* conv output before pooling */
            if (pre > x_max) x_max = pre;
        }
        if (tokens * C > x_max) x_max = tokens * C;
        if (tokens * 3 * C > qkv_max) qkv_max = tokens * 3 * C;
        if (tokens * c->hidden[i] > hid_max) hid_max = tokens * c->hidden[i];
        nn_attention_shape as = {c->num_blocks[i],   c->seq_length, C,   c->num_heads[i],
                                 NN_MERGE_DIM_MAJOR, NULL,          NULL};
        int64_t aw = (int64_t)nn_attention_workspace(&as, nt);
        if (aw > attn_max) attn_max = aw;
        maps += tokens * C;
    }
    const int64_t Cl = c->embed_dims[c->num_levels - 1];
    const int64_t sizes[] = {
        maps,    Cl,      c->num_classes, x_max,   x_max,
        qkv_max, hid_max, attn_max,       col_max, (int64_t)c->grid[0] * c->grid[0] * c->embed_dims[0],
        x_max};
    const int64_t max_rows = (int64_t)c->num_blocks[0] * c->seq_length; /* every level has N tokens a block */
    size_t total = nn_arena_cost((size_t)max_rows * sizeof(int64_t)) +
                   nn_arena_cost((size_t)(c->num_blocks[0] + 1) * sizeof(int64_t));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        total += nn_arena_cost((size_t)sizes[i] * sizeof(float));
    if (nn_arena_init(&s->arena, total)) return VC_ERR_NOMEM;
    float *all_maps = nn_arena_floats(&s->arena, maps);
    for (int i = 0, off = 0; i < c->num_levels; i++) {
        s->maps[i] = all_maps + off;
        off += c->num_blocks[i] * c->seq_length * c->embed_dims[i];
    }
    s->pooled = nn_arena_floats(&s->arena, Cl);
    s->logits = nn_arena_floats(&s->arena, c->num_classes);
    s->x = nn_arena_floats(&s->arena, x_max);
    s->y = nn_arena_floats(&s->arena, x_max);
    s->qkv = nn_arena_floats(&s->arena, qkv_max);
    s->hidden = nn_arena_floats(&s->arena, hid_max);
    s->attn_ws = nn_arena_floats(&s->arena, attn_max);
    s->col = nn_arena_floats(&s->arena, col_max);
    s->embed = nn_arena_floats(&s->arena, sizes[9]);
    s->xk = nn_arena_floats(&s->arena, x_max);
    s->gather = nn_arena_alloc(&s->arena, (size_t)max_rows * sizeof(int64_t));
    s->offsets = nn_arena_alloc(&s->arena, (size_t)(c->num_blocks[0] + 1) * sizeof(int64_t));
    return 0;
}

void nest_state_release(nest_state *s)
{
    if (!s) return;
    nn_arena_release(&s->arena);
    nn_arena_release(&s->tape_arena);
    s->tape = NULL;
}

/* map [G*S, G*S, C] <-> tokens [G*G, S*S, C]: block t = (y/S)*G + x/S, token n = (y%S)*S + x%S */
void nest_blockify(const float *map, int G, int S, int C, float *tok, int inverse)
{
    const size_t row = (size_t)S * C * sizeof(float);
    for (int gy = 0; gy < G; gy++)
        for (int gx = 0; gx < G; gx++)
            for (int sy = 0; sy < S; sy++) {
                float *t = tok + ((size_t)(gy * G + gx) * S * S + (size_t)sy * S) * C;
                float *mp = (float *)map + ((size_t)(gy * S + sy) * G * S + (size_t)gx * S) * C;
                if (inverse)
                    memcpy(mp, t, row);
                else
                    memcpy(t, mp, row);
            }
}

static void zero_dropped(float *y, int64_t rows, int64_t C, const uint8_t *row_keep)
{
    for (int64_t r = 0; r < rows; r++)
        if (!row_keep[r]) memset(y + r * C, 0, (size_t)C * sizeof(float));
}

/* One pre-norm transformer layer on x[rows, C], in place: all T*N tokens (offsets NULL), or the tokens the
 * filter kept, block b being rows [offsets[b], offsets[b+1]); or all tokens with row_keep masking the
 * dropped ones (attention keys, branch outputs). Records into t when it is not NULL. */
static void transformer_layer(nest_state *s, const nest_layer *ly, int level, float *x, int64_t rows,
                              const int64_t *offsets, nest_tape_layer *t, const uint8_t *row_keep)
{
    const nest_config *c = &s->m->cfg;
    const int64_t C = c->embed_dims[level], Hd = c->hidden[level];
    nn_attention_shape as = {c->num_blocks[level], c->seq_length, C,       c->num_heads[level],
                             NN_MERGE_DIM_MAJOR,   offsets,       row_keep};
    float *qkv = t ? t->qkv : s->qkv, *h = t ? t->h : s->hidden;
    if (t) memcpy(t->x0, x, (size_t)(rows * C) * sizeof(float));
    nn_layernorm(s->pool, x, rows, C, ly->norm1_w, ly->norm1_b, NEST_LN_EPS, s->y);
    nn_linear(s->pool, s->y, rows, C, ly->qkv_w, ly->qkv_b, 3 * C, qkv);
    nn_attention(s->pool, &as, qkv, t ? t->probs : NULL, s->y, s->attn_ws);
    nn_linear(s->pool, s->y, rows, C, ly->proj_w, ly->proj_b, C, s->hidden);
    if (row_keep) zero_dropped(s->hidden, rows, C, row_keep);
    nn_add(x, s->hidden, rows * C, x);
    if (t) memcpy(t->x1, x, (size_t)(rows * C) * sizeof(float));
    nn_layernorm(s->pool, x, rows, C, ly->norm2_w, ly->norm2_b, NEST_LN_EPS, s->y);
    nn_linear(s->pool, s->y, rows, C, ly->fc1_w, ly->fc1_b, Hd, h);
    nn_gelu(s->pool, h, rows * Hd, s->hidden);
    nn_linear(s->pool, s->hidden, rows, Hd, ly->fc2_w, ly->fc2_b, C, s->y);
    if (row_keep) zero_dropped(s->y, rows, C, row_keep);
    nn_add(x, s->y, rows * C, x);
}

/* row_keep[t * N + n] = is the top-level token above level-i token n of block t kept */
static int64_t level_row_keep(const nest_config *c, int level, const uint8_t *keep, uint8_t *row_keep)
{
    const int S = c->block_size, G = c->grid[level] / S, shift = c->num_levels - 1 - level;
    const int top = c->grid[c->num_levels - 1];
    int64_t k = 0;
    for (int t = 0; t < c->num_blocks[level]; t++)
        for (int n = 0; n < c->seq_length; n++) {
            int y = (t / G) * S + n / S, x = (t % G) * S + n % S;
            row_keep[(int64_t)t * c->seq_length + n] = keep[(y >> shift) * top + (x >> shift)] != 0;
            k += row_keep[(int64_t)t * c->seq_length + n];
        }
    return k;
}

/* The level-i tokens whose top-level token is kept, block by block: their rows in the blocked tensor go to
 * gather[], block b's run to offsets[b]..offsets[b+1]. Returns how many. */
static int64_t gather_kept(const nest_config *c, int level, const uint8_t *keep, int64_t *gather,
                           int64_t *offsets)
{
    const int S = c->block_size, G = c->grid[level] / S, shift = c->num_levels - 1 - level;
    const int top = c->grid[c->num_levels - 1];
    int64_t k = 0;
    offsets[0] = 0;
    for (int t = 0; t < c->num_blocks[level]; t++) {
        for (int n = 0; n < c->seq_length; n++) {
            int y = (t / G) * S + n / S, x = (t % G) * S + n % S;
            if (keep[(y >> shift) * top + (x >> shift)]) gather[k++] = (int64_t)t * c->seq_length + n;
        }
        offsets[t + 1] = k;
    }
    return k;
}

void nest_forward(nest_state *s, const float *input)
{
    nest_forward_filtered(s, input, NULL);
}

void nest_forward_filtered(nest_state *s, const float *input, const uint8_t *keep)
{
    nest_embed(s, input);
    nest_forward_levels(s, keep);
}

void nest_embed(nest_state *s, const float *input)
{
    const nest_config *c = &s->m->cfg;
    nn_conv2d_shape pe = {
        c->img_size, c->img_size, c->in_chans, c->embed_dims[0], c->patch_size, c->patch_size, 0};
    nn_conv2d(s->pool, &pe, input, s->m->patch_w, s->m->patch_b, s->embed, s->col);
}

void nest_forward_levels(nest_state *s, const uint8_t *keep)
{
    const nest_model *m = s->m;
    const nest_config *c = &m->cfg;
    const float *prev = s->embed;
    int64_t kept = 0;
    for (int i = 0; i < c->num_levels; i++) {
        const nest_level *lv = &m->levels[i];
        const int64_t C = c->embed_dims[i], G = c->grid[i], S = c->block_size;
        const int64_t rows = (int64_t)c->num_blocks[i] * c->seq_length;
        float *map = s->maps[i];
        if (i > 0) {
            /* ConvPool on the full map: conv3x3 -> LayerNorm over channels -> 3x3/2 max-pool */
            const int64_t Gp = c->grid[i - 1];
            nn_conv2d_shape cs = {Gp, Gp, c->embed_dims[i - 1], C, 3, 1, 1};
            float *conv = s->tape ? s->tape->conv_out[i] : s->y;
            nn_conv2d(s->pool, &cs, prev, lv->conv_w, lv->conv_b, conv, s->col);
            nn_layernorm(s->pool, conv, Gp * Gp, C, lv->norm_w, lv->norm_b, NEST_LN_EPS, s->y);
            nn_maxpool3x3s2(s->y, Gp, Gp, C, c->pad, map, s->tape ? s->tape->argmax[i] : NULL);
            prev = map;
        }
        nest_blockify(prev, (int)(G / S), (int)S, (int)C, s->x, 0);
        nn_add(s->x, lv->pos_embed, rows * C, s->x);
        nest_tape_layer *rec = s->tape && (i > 0 || s->tape->to_embed) ? s->tape->layers[i] : NULL;
        if (!keep) {
            for (int j = 0; j < c->depths[i]; j++)
                transformer_layer(s, &lv->layers[j], i, s->x, rows, NULL, rec ? &rec[j] : NULL, NULL);
        } else if (s->tape) {
            /* recorded for a backward pass: the dense, masked form */
            kept = level_row_keep(c, i, keep, s->tape->rowkeep[i]);
            for (int j = 0; j < c->depths[i]; j++)
                transformer_layer(s, &lv->layers[j], i, s->x, rows, NULL, rec ? &rec[j] : NULL,
                                  s->tape->rowkeep[i]);
        } else {
            /* only kept tokens run the layers; dropped ones pass through unchanged */
            kept = gather_kept(c, i, keep, s->gather, s->offsets);
            for (int64_t r = 0; r < kept; r++)
                memcpy(s->xk + r * C, s->x + s->gather[r] * C, (size_t)C * sizeof(float));
            for (int j = 0; j < c->depths[i]; j++)
                transformer_layer(s, &lv->layers[j], i, s->xk, kept, s->offsets, NULL, NULL);
            for (int64_t r = 0; r < kept; r++)
                memcpy(s->x + s->gather[r] * C, s->xk + r * C, (size_t)C * sizeof(float));
        }
        nest_blockify(map, (int)(G / S), (int)S, (int)C, s->x, 1);
        prev = map;
    }
    /* final LayerNorm, mean over the top level's (kept) tokens, head */
    const int L = c->num_levels - 1;
    const int64_t Cl = c->embed_dims[L], all = (int64_t)c->grid[L] * c->grid[L];
    if (s->tape) s->tape->filtered = keep != NULL;
    if (keep && s->tape) { /* the top level is one block: its rows are the map's pixels */
        const uint8_t *rk = s->tape->rowkeep[L];
        nn_layernorm(s->pool, s->maps[L], all, Cl, m->norm_w, m->norm_b, NEST_LN_EPS, s->y);
        memset(s->pooled, 0, (size_t)Cl * sizeof(float));
        for (int64_t r = 0; r < all; r++)
            for (int64_t ch = 0; rk[r] && ch < Cl; ch++)
                s->pooled[ch] += s->y[r * Cl + ch];
        for (int64_t ch = 0; ch < Cl; ch++)
            s->pooled[ch] /= (float)kept;
    } else {
        const int64_t P = keep ? kept : all;
        nn_layernorm(s->pool, keep ? s->xk : s->maps[L], P, Cl, m->norm_w, m->norm_b, NEST_LN_EPS, s->y);
        nn_meanpool(s->y, P, Cl, s->pooled);
    }
    nn_linear(NULL, s->pooled, 1, Cl, m->head_w, m->head_b, c->num_classes, s->logits);
}
