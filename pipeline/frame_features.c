/* Frame features from a video, streamed: a decode thread samples frames by presentation time into a
 * bounded queue; the caller's thread takes them in batches and runs the filtered NesT on a batch with one
 * frame per compute thread (each with its own single-threaded state: a 64x64 frame is too small to split
 * one GEMM across cores, a batch is not). A frame's feature is the top level's token grid after the final
 * LayerNorm, flattened channels-last; tokens the filter dropped are zeros. Memory is the queue, the batch
 * and the feature sequence: nothing else grows with the video's length. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <libavutil/log.h>

#include "nn/nn.h"
#include "pipeline/model.h"
#include "video/decode.h"

struct vc_features {
    int n, cap, dim, grid, channels;
    float *data, *times;
    double fps, duration, keep;
    int n_corrupt;
    double t_decode, t_backbone, t_total; /* seconds */
    char source[256];
};

void vc_quiet_ffmpeg_logs(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

vc_features_params vc_features_default_params(void)
{
    vc_features_params p = {.fps = 0.f, .keep = 0.f, .batch = 8, .queue = 32};
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the bounded queue between the decode thread and the backbone ---- */

typedef struct frame_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    uint8_t *rgb; /* cap slots of frame_bytes */
    double *t;
    size_t frame_bytes;
    int cap, head, count;
    int done, stop; /* done: the decoder finished (status says how); stop: the consumer gave up */
    int status;
    char err[512];
    vid_reader *reader;
    double t_decode;
} frame_queue;

static void *decode_thread(void *arg)
{
    frame_queue *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->count == q->cap && !q->stop)
            pthread_cond_wait(&q->not_full, &q->mu);
        const int stop = q->stop, slot = (q->head + q->count) % q->cap;
        pthread_mutex_unlock(&q->mu);
        if (stop) break;
        double t, t0 = now();
        char err[512] = "";
        /* the slot is free until count is raised, and only this thread raises it */
        int rc = vid_read(q->reader, q->rgb + (size_t)slot * q->frame_bytes, &t, err, sizeof(err));
        pthread_mutex_lock(&q->mu);
        q->t_decode += now() - t0;
        if (rc == 1) {
            q->t[slot] = t;
            q->count++;
            pthread_cond_signal(&q->not_empty);
            pthread_mutex_unlock(&q->mu);
            continue;
        }
        q->done = 1;
        q->status = rc < 0 ? rc : 0;
        if (rc < 0) snprintf(q->err, sizeof(q->err), "%s", err);
        pthread_cond_signal(&q->not_empty);
        pthread_mutex_unlock(&q->mu);
        break;
    }
    return NULL;
}

/* ---- the backbone on a batch ---- */

typedef struct batch_job {
    const vc_model *m;
    vc_state **states; /* one per compute thread */
    float **inputs;
    const uint8_t *rgb; /* the batch's frames */
    float *out;         /* the batch's feature rows */
    int side, dim;
} batch_job;

/* RGB bytes -> the model's normalised channels-last input (grey as PIL's convert("L") when in_chans is 1) */
static void frame_input(const img_preprocess *pre, int chans, const uint8_t *rgb, int npix, float *x)
{
    for (int i = 0; i < npix; i++) {
        const uint8_t *p = rgb + 3 * i;
        if (chans == 1) {
            const int l = (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16;
            x[i] = ((float)l / 255.f - pre->mean[0]) / pre->std[0];
        } else {
            for (int c = 0; c < 3; c++)
                x[3 * i + c] = ((float)p[c] / 255.f - pre->mean[c]) / pre->std[c];
        }
    }
}

static void batch_task(void *ctx, int64_t begin, int64_t end, int thread)
{
    const batch_job *j = ctx;
    vc_state *s = j->states[thread];
    const nest_config *c = &j->m->nest.cfg;
    const int L = c->num_levels, G = c->grid[L - 1], C = c->embed_dims[L - 1];
    for (int64_t i = begin; i < end; i++) {
        frame_input(&j->m->pre, c->in_chans, j->rgb + (size_t)i * j->side * j->side * 3, j->side * j->side,
                    j->inputs[thread]);
        vc_classify_tensor(s, j->inputs[thread]);
        float *row = j->out + (size_t)i * j->dim;
        nn_layernorm(NULL, s->nest.maps[L - 1], (int64_t)G * G, C, j->m->nest.norm_w, j->m->nest.norm_b,
                     NEST_LN_EPS, row);
        if (s->keep < 1.f)
            for (int g = 0; g < G * G; g++)
                if (!s->tf_mask[g]) memset(row + (size_t)g * C, 0, (size_t)C * sizeof(float));
    }
}

/* Room for `need` rows. The first call reserves what the container's duration announces (up to
 * FEATURES_RESERVE_MAX rows, so a lying header cannot reserve gigabytes); later growth is by half again,
 * so the slack beyond the rows themselves stays small. */
#define FEATURES_RESERVE_MAX 16384
static int grow(vc_features *f, int need)
{
    if (need <= f->cap) return 0;
    int cap = f->cap ? f->cap + f->cap / 2 : 256;
    if (!f->cap && f->duration > 0 && f->duration * f->fps < FEATURES_RESERVE_MAX)
        cap = (int)(f->duration * f->fps) + 2;
    while (cap < need)
        cap += cap / 2 + 1;
    float *d = realloc(f->data, (size_t)cap * f->dim * sizeof(float));
    if (!d) return VC_ERR_NOMEM;
    f->data = d;
    float *t = realloc(f->times, (size_t)cap * sizeof(float));
    if (!t) return VC_ERR_NOMEM;
    f->times = t;
    f->cap = cap;
    return 0;
}

double vc_model_default_fps(const vc_model *m)
{
    return m->video_fps > 0 ? m->video_fps : 4.0;
}

int vc_video_features(const vc_model *m, const char *path, vc_features_params p, vc_features **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    const double t_start = now();
    const nest_config *c = &m->nest.cfg;
    const int L = c->num_levels, G = c->grid[L - 1], C = c->embed_dims[L - 1], side = c->img_size;
    const int n_threads = vc_default_threads(m->params.n_threads);
    const int batch = p.batch > 0 ? (p.batch < 64 ? p.batch : 64) : 8;
    const int qcap = p.queue > batch ? p.queue : 2 * batch;
    float keep = p.keep > 0.f ? p.keep : m->has_filter && !m->random_filter ? m->filter.keep : 1.f;
    if (!(keep > 0.f && keep <= 1.f)) {
        snprintf(err, errlen, "%s: keep ratio %g is outside (0, 1]", path, keep);
        return VC_ERR_ARG;
    }
    const double fps = p.fps > 0.f ? p.fps : vc_model_default_fps(m);
    if (!(fps <= 1000.0)) {
        snprintf(err, errlen, "%s: sampling rate %g frames per second is out of range", path, fps);
        return VC_ERR_ARG;
    }

    vc_features *f = calloc(1, sizeof(*f));
    frame_queue q = {.cap = qcap, .frame_bytes = (size_t)side * side * 3};
    vc_state **states = calloc((size_t)n_threads, sizeof(*states));
    float **inputs = calloc((size_t)n_threads, sizeof(*inputs));
    uint8_t *brgb = malloc((size_t)batch * q.frame_bytes);
    nn_pool *pool = nn_pool_create(n_threads);
    int rc = VC_ERR_NOMEM, thread_started = 0, sync_made = 0;
    q.rgb = malloc((size_t)qcap * q.frame_bytes);
    q.t = malloc((size_t)qcap * sizeof(double));
    if (!f || !states || !inputs || !brgb || !pool || !q.rgb || !q.t) goto nomem;
    f->dim = G * G * C, f->grid = G, f->channels = C, f->fps = fps, f->keep = keep;
    snprintf(f->source, sizeof(f->source), "%s", path);
    for (int i = 0; i < n_threads; i++) {
        if (!(states[i] = vc_state_create_threads(m, 1))) goto nomem;
        if (!(inputs[i] = malloc((size_t)side * side * c->in_chans * sizeof(float)))) goto nomem;
        char why[256];
        if ((rc = vc_state_set_keep(states[i], keep, why, sizeof(why)))) {
            snprintf(err, errlen, "%s: %s", path, why);
            goto end;
        }
    }

    vid_params vp = vid_default_params();
    vp.width = vp.height = side;
    vp.fps = fps;
    if ((rc = vid_open(path, &vp, &q.reader, err, errlen))) goto end;
    f->duration = vid_duration(q.reader);
    if (pthread_mutex_init(&q.mu, NULL) || pthread_cond_init(&q.not_empty, NULL) ||
        pthread_cond_init(&q.not_full, NULL))
        goto nomem;
    sync_made = 1;
    pthread_t th;
    if (pthread_create(&th, NULL, decode_thread, &q)) goto nomem;
    thread_started = 1;

    batch_job job = {m, states, inputs, brgb, NULL, side, f->dim};
    double next_progress = 0;
    for (;;) {
        /* take up to `batch` frames; wait for the first, then whatever is already there */
        int nb = 0;
        double tb[64];
        pthread_mutex_lock(&q.mu);
        while (q.count == 0 && !q.done)
            pthread_cond_wait(&q.not_empty, &q.mu);
        while (q.count > 0 && nb < batch && nb < 64) {
            memcpy(brgb + (size_t)nb * q.frame_bytes, q.rgb + (size_t)q.head * q.frame_bytes, q.frame_bytes);
            tb[nb++] = q.t[q.head];
            q.head = (q.head + 1) % q.cap;
            q.count--;
        }
        const int finished = q.done && q.count == 0;
        pthread_cond_signal(&q.not_full);
        pthread_mutex_unlock(&q.mu);
        if (nb > 0) {
            if ((rc = grow(f, f->n + nb))) goto nomem;
            const double t0 = now();
            job.out = f->data + (size_t)f->n * f->dim;
            nn_pool_run(pool, nb, 1, batch_task, &job);
            f->t_backbone += now() - t0;
            for (int i = 0; i < nb; i++)
                f->times[f->n + i] = (float)tb[i];
            f->n += nb;
            if (p.on_rows && (rc = p.on_rows(f, 0, p.user_data, err, errlen))) goto end;
            if (p.progress && tb[nb - 1] >= next_progress) {
                p.progress(tb[nb - 1], f->duration, p.user_data);
                next_progress = tb[nb - 1] + 1.0;
            }
        }
        if (finished) break;
    }
    pthread_join(th, NULL);
    thread_started = 0;
    if (q.status < 0) {
        snprintf(err, errlen, "%s", q.err);
        rc = q.status;
        goto end;
    }
    f->n_corrupt = vid_n_corrupt(q.reader);
    if (f->n == 0) {
        snprintf(err, errlen, "%s: no video frame could be decoded", path);
        rc = VC_ERR_FORMAT;
        goto end;
    }
    if (f->duration <= 0) f->duration = f->times[f->n - 1] + 1.0 / fps;
    f->t_decode = q.t_decode;
    if (p.on_rows && (rc = p.on_rows(f, 1, p.user_data, err, errlen))) goto end;
    f->t_total = now() - t_start;
    if (p.progress) p.progress(f->duration, f->duration, p.user_data);
    *out = f;
    f = NULL;
    rc = 0;
    goto end;
nomem:
    snprintf(err, errlen, "%s: out of memory", path);
    rc = VC_ERR_NOMEM;
end:
    if (thread_started) {
        pthread_mutex_lock(&q.mu);
        q.stop = 1;
        pthread_cond_signal(&q.not_full);
        pthread_mutex_unlock(&q.mu);
        pthread_join(th, NULL);
    }
    if (sync_made) {
        pthread_mutex_destroy(&q.mu);
        pthread_cond_destroy(&q.not_empty);
        pthread_cond_destroy(&q.not_full);
    }
    vid_close(q.reader);
    for (int i = 0; states && i < n_threads; i++) {
        vc_state_free(states[i]);
        if (inputs) free(inputs[i]);
    }
    free(states);
    free(inputs);
    free(brgb);
    free(q.rgb);
    free(q.t);
    nn_pool_free(pool);
    vc_features_free(f);
    return rc;
}

void vc_features_free(vc_features *f)
{
    if (!f) return;
    free(f->data);
    free(f->times);
    free(f);
}

int vc_features_n(const vc_features *f)
{
    return f->n;
}
int vc_features_dim(const vc_features *f)
{
    return f->dim;
}
const float *vc_features_data(const vc_features *f)
{
    return f->data;
}
const float *vc_features_times(const vc_features *f)
{
    return f->times;
}
double vc_features_duration(const vc_features *f)
{
    return f->duration;
}
int vc_features_n_corrupt(const vc_features *f)
{
    return f->n_corrupt;
}
void vc_features_timings(const vc_features *f, double *decode, double *backbone, double *total)
{
    *decode = f->t_decode, *backbone = f->t_backbone, *total = f->t_total;
}

int vc_features_save(const vc_features *f, const char *path, char *err, size_t errlen)
{
    st_writer *w = st_writer_create();
    cJSON *o = cJSON_CreateObject();
    char *json = NULL;
    int rc = VC_ERR_NOMEM;
    if (!w || !o) goto end;
    const int64_t shape[2] = {f->n, f->dim}, tshape[1] = {f->n};
    cJSON_AddNumberToObject(o, "fps", f->fps);
    cJSON_AddNumberToObject(o, "duration", f->duration);
    cJSON_AddNumberToObject(o, "keep", f->keep);
    cJSON *grid = cJSON_AddArrayToObject(o, "grid");
    cJSON_AddItemToArray(grid, cJSON_CreateNumber(f->grid));
    cJSON_AddItemToArray(grid, cJSON_CreateNumber(f->grid));
    cJSON_AddNumberToObject(o, "channels", f->channels);
    cJSON_AddStringToObject(o, "source", f->source);
    if (!(json = cJSON_PrintUnformatted(o))) goto end;
    if (st_writer_add_borrowed(w, "features", 2, shape, f->data) ||
        st_writer_add_borrowed(w, "times", 1, tshape, f->times) || st_writer_meta(w, "vidcap.format", "1") ||
        st_writer_meta(w, "vidcap.arch", "features") || st_writer_meta(w, "vidcap.features", json))
        goto end;
    rc = st_writer_save(w, path, err, errlen);
    goto done;
end:
    snprintf(err, errlen, "%s: out of memory", path);
done:
    free(json);
    cJSON_Delete(o);
    st_writer_free(w);
    return rc;
}
