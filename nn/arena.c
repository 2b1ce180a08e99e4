/* Bump allocator: activations are sized once at load time and live here, so inference never mallocs. */
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

#define NN_ALIGN 64

size_t nn_arena_cost(size_t bytes)
{
    return (bytes + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
}

int nn_arena_init(nn_arena *a, size_t size)
{
    a->used = 0;
    a->size = nn_arena_cost(size);
    a->base = NULL;
    if (a->size == 0) return 0;
    a->base = aligned_alloc(NN_ALIGN, a->size);
    if (!a->base) {
        a->size = 0;
        return -1;
    }
    return 0;
}

void *nn_arena_alloc(nn_arena *a, size_t bytes)
{
    size_t cost = nn_arena_cost(bytes);
    if (cost < bytes || cost > a->size - a->used) return NULL;
    void *p = a->base + a->used;
    a->used += cost;
    return p;
}

float *nn_arena_floats(nn_arena *a, int64_t n)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float)) return NULL;
    return nn_arena_alloc(a, (size_t)n * sizeof(float));
}

void nn_arena_reset(nn_arena *a)
{
    a->used = 0;
}

void nn_arena_release(nn_arena *a)
{
    if (!a) return;
    free(a->base);
    memset(a, 0, sizeof(*a));
}
