/* A persistent pool of compute threads. vidcap parallelises its own loops (rows or columns of a GEMM,
 * blocks x heads of attention) and keeps OpenBLAS single-threaded inside each chunk, so -t N means N busy
 * cores. A forward pass dispatches ~100 jobs, so threads spin briefly before sleeping on a condition
 * variable: waking a sleeping thread costs tens of microseconds per job. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "nn/nn.h"

/* ~20-50 us of polling before blocking */
#define NN_SPIN 20000

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
    atomic_uint_fast64_t generation;
    atomic_int pending, quit;
    /* the job being run, written before generation is bumped */
    nn_task_fn fn;
    void *ctx;
    int64_t total;
    int chunks;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_chunk(nn_pool *p, int c)
{
    int64_t b = p->total * c / p->chunks, e = p->total * (c + 1) / p->chunks;
    if (b < e) p->fn(p->ctx, b, e, c);
}

static void *worker(void *arg)
{
    nn_worker *w = arg;
    nn_pool *p = w->pool;
    uint_fast64_t seen = 0;
    for (;;) {
        for (int i = 0; i < NN_SPIN && atomic_load(&p->generation) == seen && !atomic_load(&p->quit); i++)
            cpu_relax();
        if (atomic_load(&p->generation) == seen && !atomic_load(&p->quit)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->start, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) break;
        seen = atomic_load(&p->generation);
        if (w->index < p->chunks) run_chunk(p, w->index);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
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
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->quit, 0);
    /* thread 0 is the caller of nn_pool_run; workers are 1..n-1 */
    for (int i = 1; i < n_threads; i++) {
        p->workers[i] = (nn_worker){p, i};
        if (pthread_create(&p->threads[i], NULL, worker, &p->workers[i]) != 0) {
            p->n = i;
            break;
        }
    }
    return p;
}

void nn_pool_free(nn_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
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
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    p->chunks = (int)chunks;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->generation, 1); /* publishes the job (seq_cst) */
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    for (int i = 0; i < NN_SPIN && atomic_load(&p->pending) > 0; i++)
        cpu_relax();
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
