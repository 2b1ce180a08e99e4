/* nn: float32 tensors, arenas, threads and the ops vidcap's models are built from.
 * Every op works on contiguous row-major float buffers; layouts are stated per op. Ops that GradCAT or
 * training differentiate through have a *_backward that returns the gradient w.r.t. their input. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define NN_MAX_DIMS 8

/* Writes "who: <printf message>" into err (one line: control characters become '?') and returns code. */
__attribute__((format(printf, 5, 6))) int nn_error(int code, char *err, size_t errlen, const char *who,
                                                   const char *fmt, ...);

/* ---- tensors and arenas (nn/tensor.c, nn/arena.c) ---- */

typedef struct nn_tensor {
    float *data;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
    int64_t stride[NN_MAX_DIMS]; /* in elements */
} nn_tensor;

/* A contiguous view of data with the given shape. */
nn_tensor nn_tensor_view(float *data, int ndim, const int64_t *shape);
int64_t nn_tensor_numel(const nn_tensor *t);
int nn_tensor_is_contiguous(const nn_tensor *t);
/* max |a-b| over n values, and max |a| (the "scale" parity tests compare against) */
float nn_max_abs_diff(const float *a, const float *b, int64_t n);
float nn_max_abs(const float *a, int64_t n);

/* A bump allocator sized once up front; the hot loop allocates from it and never calls malloc. */
typedef struct nn_arena {
    char *base;
    size_t size, used;
} nn_arena;

int nn_arena_init(nn_arena *a, size_t size);     /* 0, or -1 when out of memory */
void *nn_arena_alloc(nn_arena *a, size_t bytes); /* 64-byte aligned; NULL when the arena is full */
float *nn_arena_floats(nn_arena *a, int64_t n);
void nn_arena_reset(nn_arena *a);
void nn_arena_release(nn_arena *a);
/* bytes nn_arena_alloc consumes for a request (for sizing an arena up front) */
size_t nn_arena_cost(size_t bytes);

/* ---- threads (nn/threads.c) ----
 * vidcap runs its own N compute threads and keeps OpenBLAS single-threaded inside them, so -t N means
 * N busy cores, never N x M. A NULL pool runs serially on the caller. */

typedef struct nn_pool nn_pool;
typedef void (*nn_task_fn)(void *ctx, int64_t begin, int64_t end, int thread);

nn_pool *nn_pool_create(int n_threads); /* NULL on failure */
void nn_pool_free(nn_pool *p);
int nn_pool_size(const nn_pool *p); /* 1 for NULL */
/* Splits [0, n) into contiguous chunks of at least `grain` items and runs fn on each, in parallel;
 * returns when all are done. Not reentrant: fn must not call nn_pool_run on the same pool. */
void nn_pool_run(nn_pool *p, int64_t n, int64_t grain, nn_task_fn fn, void *ctx);
/* Once per process: OpenBLAS to one thread, so vidcap's threads own the cores, and its kernels to the
 * ones the CPU supports when it fell back to generic ones (nn_blas_preferred_core). */
void nn_blas_single_threaded(void);
/* "BLAS = OpenBLAS 0.3.21 ... | BLAS threads = 1 | AVX2 = 1 | FMA = 1 | ..." */
void nn_sysinfo(char *buf, size_t len, int n_threads);
/* The OPENBLAS_CORETYPE this CPU deserves when OpenBLAS fell back to a generic pre-AVX2 core, else NULL. */
const char *nn_blas_preferred_core(void);

/* ---- ops ---- */

/* y[rows,out] = x[rows,in] . w[out,in]^T + b[out]   (PyTorch nn.Linear layout; b may be NULL) */
void nn_linear(nn_pool *p, const float *x, int64_t rows, int64_t in, const float *w, const float *b,
               int64_t out, float *y);
/* dx[rows,in] = dy[rows,out] . w[out,in] */
void nn_linear_backward(nn_pool *p, const float *dy, int64_t rows, int64_t out, const float *w, int64_t in,
                        float *dx);
/* Weight gradients, accumulated (for training small heads such as the token filter):
 * dw[out,in] += dy^T . x, db[out] += sum over rows of dy (db may be NULL). */
void nn_linear_backward_weights(const float *dy, const float *x, int64_t rows, int64_t in, int64_t out,
                                float *dw, float *db);

/* Per row of C values: (x - mean) / sqrt(biased var + eps) * gamma + beta. y may equal x. */
void nn_layernorm(nn_pool *p, const float *x, int64_t rows, int64_t C, const float *gamma, const float *beta,
                  float eps, float *y);
void nn_layernorm_backward(nn_pool *p, const float *x, const float *dy, int64_t rows, int64_t C,
                           const float *gamma, float eps, float *dx);
/* The Masked Transformer's LayerNorm: (x - mean) / (unbiased std + eps) * gamma + beta, the std over C - 1
 * (C >= 2) and eps added to the std, not the variance. y may equal x. Forward only. */
void nn_layernorm_std(nn_pool *p, const float *x, int64_t rows, int64_t C, const float *gamma,
                      const float *beta, float eps, float *y);

/* Softmax over the last dim of x[rows,n], in place (max-subtracted). */
void nn_softmax(float *x, int64_t rows, int64_t n);
/* dx = y * (dy - sum(dy*y)) per row, y the softmax output. dx may equal dy. */
void nn_softmax_backward(const float *y, const float *dy, int64_t rows, int64_t n, float *dx);

/* Exact GELU 0.5 x (1 + erf(x / sqrt 2)); y may equal x. */
void nn_gelu(nn_pool *p, const float *x, int64_t n, float *y);
void nn_gelu_backward(const float *x, const float *dy, int64_t n, float *dx);

/* out = a + b elementwise (out may alias either) */
void nn_add(const float *a, const float *b, int64_t n, float *out);

/* Multi-head self-attention over a batch of independent blocks (NesT's local attention; a plain ViT is
 * blocks = 1). Input is the output of a fused qkv Linear: qkv[blocks, tokens, 3*dim], column
 * s*dim + h*head_dim + e for s in {q,k,v}. Softmax(q k^T * head_dim^-0.5) v per (block, head).
 * The merged output feature index is h*head_dim + e (HEAD_MAJOR, the usual) or e*heads + h (DIM_MAJOR,
 * what timm's NesT and the JAX original do). */
typedef enum { NN_MERGE_HEAD_MAJOR = 0, NN_MERGE_DIM_MAJOR = 1 } nn_head_merge;
typedef struct nn_attention_shape {
    int64_t blocks, tokens, dim, heads;
    nn_head_merge merge;
    /* Ragged blocks (the token filter keeps a different number of tokens per block): when not NULL, block
     * b is rows [offsets[b], offsets[b + 1]) of qkv/out, `tokens` is only an upper bound on its length,
     * and probs must be NULL (forward only). Empty blocks are skipped. */
    const int64_t *offsets;
    /* Key mask (the token filter's dense, differentiable form): when not NULL, key j of block b takes part
     * only if key_keep[b * tokens + j]; a block with no kept key is left unmasked. Not with offsets. */
    const uint8_t *key_keep;
} nn_attention_shape;

/* probs[blocks, heads, tokens, tokens]: the attention weights, written here and kept for backward
 * (may be NULL when no backward follows). ws: nn_attention_workspace() floats. */
size_t nn_attention_workspace(const nn_attention_shape *s, int n_threads);
void nn_attention(nn_pool *p, const nn_attention_shape *s, const float *qkv, float *probs, float *out,
                  float *ws);
/* dqkv[blocks, tokens, 3*dim] from dout[blocks, tokens, dim]; needs the forward's qkv and probs. */
size_t nn_attention_backward_workspace(const nn_attention_shape *s, int n_threads);
void nn_attention_backward(nn_pool *p, const nn_attention_shape *s, const float *qkv, const float *probs,
                           const float *dout, float *dqkv, float *ws);

/* Multi-head attention with separate query, key and value rows and an explicit scale (cross-attention,
 * incremental decoding, the Masked Transformer's 1/sqrt(d_model)). For each group g < groups and head h
 * (columns [h*dim/heads, (h+1)*dim/heads) of every row):
 *   out_g = softmax(scale * Q_g K_g^T) V_g
 * with Q_g the nq rows at q + g*q_group (row stride q_ld), K_g and V_g the nk rows at k/v + g*kv_group
 * (row stride kv_ld; kv_group 0 lets every group read one memory) and out_g the nq rows at
 * out + g*out_group (row stride out_ld). causal: query i sees keys j <= i + nk - nq only (the last query
 * sees them all), i.e. a -inf mask above the shifted diagonal. ws: nn_mha_workspace() floats. */
typedef struct nn_mha_shape {
    int64_t groups, nq, nk, dim, heads;
    float scale;
    int causal;
    int64_t q_ld, kv_ld, out_ld;
    int64_t q_group, kv_group, out_group;
} nn_mha_shape;
size_t nn_mha_workspace(const nn_mha_shape *s, int n_threads);
void nn_mha(nn_pool *p, const nn_mha_shape *s, const float *q, const float *k, const float *v, float *out,
            float *ws);

/* 2-D convolution on a channels-last image x[in_h, in_w, in_c] with a PyTorch weight
 * w[out_c, in_c, k, k], square kernel, stride, zero padding `pad` on every side, via im2col + sgemm.
 * y[out_h, out_w, out_c], out_h = (in_h + 2 pad - k) / stride + 1. col: nn_conv2d_col_size() floats. */
typedef struct nn_conv2d_shape {
    int64_t in_h, in_w, in_c, out_c, kernel, stride, pad;
} nn_conv2d_shape;
int64_t nn_conv2d_out_h(const nn_conv2d_shape *s);
int64_t nn_conv2d_out_w(const nn_conv2d_shape *s);
size_t nn_conv2d_col_size(const nn_conv2d_shape *s);
void nn_conv2d(nn_pool *p, const nn_conv2d_shape *s, const float *x, const float *w, const float *b, float *y,
               float *col);
void nn_conv2d_backward(nn_pool *p, const nn_conv2d_shape *s, const float *dy, const float *w, float *dx,
                        float *col);

/* 3x3 stride-2 max-pool on channels-last x[h, w, c]; padding is -inf (never zero).
 * SYMMETRIC pads 1 on every side (PyTorch MaxPool2d(3, 2, 1)); SAME is TF-SAME: total padding
 * max((ceil(n/2) - 1) * 2 + 3 - n, 0), the smaller half before (timm's MaxPool2dSame, NesT _jx).
 * argmax (may be NULL) receives, per output value, the flat input index it came from. */
typedef enum { NN_PAD_SYMMETRIC = 0, NN_PAD_SAME = 1 } nn_pool_pad;
int64_t nn_maxpool3x3s2_out(int64_t n, nn_pool_pad pad);
void nn_maxpool3x3s2(const float *x, int64_t h, int64_t w, int64_t c, nn_pool_pad pad, float *y,
                     int32_t *argmax);
/* dx[in_n] = scatter-add of dy[out_n] to argmax positions (dx is overwritten). */
void nn_maxpool_backward(const float *dy, const int32_t *argmax, int64_t out_n, int64_t in_n, float *dx);

/* Mean over rows: y[C] = mean_r x[rows, C]; backward spreads dy/rows to every row. */
void nn_meanpool(const float *x, int64_t rows, int64_t C, float *y);
void nn_meanpool_backward(const float *dy, int64_t rows, int64_t C, float *dx);

/* Depthwise 1-D convolution over time on x[T, C] (channels-last), PyTorch weight w[C, 1, K],
 * b[C] (may be NULL), stride 1, zero padding `pad` both ends: y[T + 2 pad - K + 1, C]. */
int64_t nn_conv1d_depthwise_out(int64_t T, int64_t K, int64_t pad);
void nn_conv1d_depthwise(const float *x, int64_t T, int64_t C, const float *w, const float *b, int64_t K,
                         int64_t pad, float *y);
void nn_conv1d_depthwise_backward(const float *dy, int64_t T, int64_t C, const float *w, int64_t K,
                                  int64_t pad, float *dx);
/* The same without padding and with a stride (PyTorch Conv1d(C, C, K, stride, groups=C)):
 * y[(T - K) / stride + 1, C], output t reading inputs [t*stride, t*stride + K). Forward only. The output
 * length is 0 when K > T. */
int64_t nn_conv1d_depthwise_strided_out(int64_t T, int64_t K, int64_t stride);
void nn_conv1d_depthwise_strided(const float *x, int64_t T, int64_t C, const float *w, const float *b,
                                 int64_t K, int64_t stride, float *y);

/* Batch norm in eval mode on channels-last x[rows, C]: (x - mean) / sqrt(var + eps) * gamma + beta. */
void nn_batchnorm(const float *x, int64_t rows, int64_t C, const float *mean, const float *var,
                  const float *gamma, const float *beta, float eps, float *y);
void nn_batchnorm_backward(const float *dy, int64_t rows, int64_t C, const float *var, const float *gamma,
                           float eps, float *dx);
