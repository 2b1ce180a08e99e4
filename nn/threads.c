/* A persistent pool of compute threads. vidcap parallelises its own loops (rows of a GEMM, blocks x heads
 * of attention) and keeps OpenBLAS single-threaded inside each chunk, so -t N means N busy cores. */
#include <pthread.h>
#include <stdlib.h>

#include "nn/nn.h"

typedef struct nn_worker {
    struct nn_pool *pool;
    int index;
} nn_worker;

struct nn_pool {
    int n;
    pthread_t *threads;
    nn_worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    uint64_t generation;
    int pending, quit;
    /* the job being run */
    nn_task_fn fn;
    void *ctx;
    int64_t total;
    int chunks;
};

static void run_chunk(nn_pool *p, int c)
{
    int64_t b = p->total * c / p->chunks, e = p->total * (c + 1) / p->chunks;
    if (b < e) p->fn(p->ctx, b, e, c);
}

static void *worker(void *arg)
{
    nn_worker *w = arg;
    nn_pool *p = w->pool;
    int self = w->index;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        int mine = self < p->chunks;
        pthread_mutex_unlock(&p->mu);
        if (mine) run_chunk(p, self);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

nn_pool *nn_pool_create(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    nn_blas_single_threaded();
    nn_pool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->n = n_threads;
    p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    p->workers = calloc((size_t)n_threads, sizeof(nn_worker));
    if (!p->threads || !p->workers) {
        free(p->threads);
        free(p->workers);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    /* thread 0 is the caller of nn_pool_run; workers are 1..n-1. Holding the mutex while creating keeps
     * p->n stable for workers that start before a later pthread_create fails. */
    pthread_mutex_lock(&p->mu);
    for (int i = 1; i < n_threads; i++) {
        p->workers[i] = (nn_worker){p, i};
        if (pthread_create(&p->threads[i], NULL, worker, &p->workers[i]) != 0) {
            p->n = i;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return p;
}

void nn_pool_free(nn_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p->workers);
    free(p);
}

int nn_pool_size(const nn_pool *p)
{
    return p ? p->n : 1;
}

void nn_pool_run(nn_pool *p, int64_t n, int64_t grain, nn_task_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t chunks = n / grain; /* rounded down, so every chunk gets at least grain items */
    if (!p || p->n == 1 || chunks <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    if (chunks > p->n) chunks = p->n;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    p->chunks = (int)chunks;
    p->pending = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
