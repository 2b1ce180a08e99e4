/* vidcap: C inference for video and image understanding (NesT, GradCAT, token filter, Masked Transformer).
 *
 * Shape of the API (after whisper.h): a vc_model holds read-only weights and may be shared by threads;
 * every run takes params structs returned by vc_*_default_params(); results are read through accessors;
 * every call that can fail on input returns 0 or a negative VC_ERR_* and writes one line
 * "file: what is wrong" into the caller's error buffer. The library never exits or aborts on bad input. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vc_status {
    VC_OK = 0,
    VC_ERR_IO = -1,          /* cannot open / read / write a file */
    VC_ERR_FORMAT = -2,      /* malformed file: bad header, truncated data, corrupt image */
    VC_ERR_UNSUPPORTED = -3, /* well-formed but not something vidcap handles */
    VC_ERR_MODEL = -4,       /* weights do not form the model the metadata or the command asks for */
    VC_ERR_NOMEM = -5,
    VC_ERR_ARG = -6, /* invalid parameter from the caller */
};

const char *vc_version(void);
/* One line for stderr: BLAS, its core and threads, CPU features. When Debian 12's OpenBLAS falls back to
 * generic pre-AVX2 kernels on a CPU it does not know, vidcap re-selects the ones the CPU supports before
 * its first product (unless OPENBLAS_CORETYPE is set); the line names the core in use. */
const char *vc_system_info(int n_threads);

/* ---- models ---- */
typedef struct vc_model vc_model;

typedef struct vc_model_params {
    int n_threads; /* compute threads; 0 = min(4, cores) */
} vc_model_params;

vc_model_params vc_model_default_params(void);
/* Loads a safetensors model (vidcap metadata, or a timm NesT file recognised from its keys). */
int vc_model_load(const char *path, vc_model_params params, vc_model **out, char *err, size_t errlen);
void vc_model_free(vc_model *m);
const char *vc_model_arch(const vc_model *m);        /* "nest", ... */
const char *vc_model_description(const vc_model *m); /* one line: what it is and was trained on */
int vc_model_n_labels(const vc_model *m);
const char *vc_model_label(const vc_model *m, int i);
/* The model shipped in models/ (absolute path baked in at build time, VIDCAP_MODEL_DIR overrides). */
const char *vc_default_classifier_path(void);
/* The shipped video bundle (frame encoder, token filter, captioner): models/moving-fashion.safetensors. */
const char *vc_default_video_model_path(void);

/* ---- classification ---- */
typedef struct vc_state vc_state;

vc_state *vc_state_create(const vc_model *m); /* NULL when out of memory */
void vc_state_free(vc_state *s);

/* Decodes an image file (JPEG, PNG, BMP, GIF, TGA, PNM), preprocesses it as the model's metadata says and
 * runs the model. Results stay in the state until the next call. */
int vc_classify_file(vc_state *s, const char *path, char *err, size_t errlen);
/* Same, on an already decoded RGB image (rows of w*3 bytes). */
int vc_classify_rgb(vc_state *s, const uint8_t *rgb, int w, int h, char *err, size_t errlen);
/* Runs the network on an input the caller already preprocessed: channels-last floats
 * [vc_input_size, vc_input_size, vc_input_channels]. */
int vc_input_size(const vc_model *m);
int vc_input_channels(const vc_model *m);
int vc_classify_tensor(vc_state *s, const float *input);
int vc_n_classes(const vc_state *s);
const float *vc_probs(const vc_state *s); /* softmax of the logits */
const float *vc_logits(const vc_state *s);
/* The k best classes, most probable first; returns how many were written (min(k, classes)). */
int vc_top_k(const vc_state *s, int k, int *idx, float *prob);

/* ---- token filter ---- */
/* Loads a token filter (vidcap.arch = token_filter) for m's backbone; a model file that carries one under
 * "filter." has it loaded already. */
int vc_model_load_filter(vc_model *m, const char *path, char *err, size_t errlen);
/* The random-keep baseline instead of a learned filter: each image keeps a random set of top-level tokens
 * (seeded per state, so runs repeat). CLI: --filter random. */
void vc_model_use_random_filter(vc_model *m);
int vc_model_has_filter(const vc_model *m);
/* Keep ratio for the state's later classifications: 1 = no filtering (the default); 0 < keep < 1 needs a
 * filter. Returns VC_ERR_ARG for a ratio outside (0, 1] or when no filter is loaded. */
int vc_state_set_keep(vc_state *s, float keep, char *err, size_t errlen);

enum vc_impact_labels { VC_LABELS_AUTO = 0, VC_LABELS_LOO = 1, VC_LABELS_GRAD = 2 };
typedef struct vc_filter_fit_params {
    int epochs;
    float keep; /* default keep ratio written into the filter */
    int labels; /* enum vc_impact_labels: AUTO = leave-one-out up to 64 tokens, else gradient x input */
    void (*progress)(const char *stage, int done, int total, void *user_data);
    void *user_data;
} vc_filter_fit_params;

vc_filter_fit_params vc_filter_fit_default_params(void);
/* Token impact of an already decoded RGB image for class `label`, per top-level token (n = grid_top^2,
 * returned): leave-one-out loss changes into loo (may be NULL) and the gradient x input estimate into grad
 * (may be NULL). A negative return is an error. */
int vc_token_impact(vc_state *s, const uint8_t *rgb, int w, int h, int label, float *loo, float *grad,
                    char *err, size_t errlen);
/* Fits a token filter for the state's model from DIR/<class>/<image> (class = a label of the model, or
 * its index); unreadable images and unknown class folders are reported through err_cb-free counting:
 * *skipped receives how many images were left out. Writes OUT atomically. */
int vc_filter_fit(vc_state *s, const char *dir, vc_filter_fit_params p, const char *out, int *n_images,
                  int *skipped, char *err, size_t errlen);

/* ---- explanation (GradCAT) ---- */
typedef struct vc_explain_params {
    int target;      /* class to explain; -1 = the predicted class */
    int flip_sign;   /* score with -A * d log p / dA instead (the paper's sign is ambiguous) */
    const char *png; /* when not NULL, write the heatmap picture here (temp file + rename) */
} vc_explain_params;

vc_explain_params vc_explain_default_params(void);
/* Classifies the image (vc_probs etc. are filled as by vc_classify_file), then explains `target` with
 * GradCAT: one backward pass, then the walk down NesT's block tree. */
int vc_explain_file(vc_state *s, const char *path, vc_explain_params p, char *err, size_t errlen);
/* Same on an already decoded RGB image (rows of w*3 bytes); name is what messages call it. */
int vc_explain_rgb(vc_state *s, const uint8_t *rgb, int w, int h, const char *name, vc_explain_params p,
                   char *err, size_t errlen);
int vc_explain_target(const vc_state *s);
/* The GradCAT path, root first: level, box in original-image pixels (x0, y0, x1, y1), node score. */
int vc_explain_path_len(const vc_state *s);
void vc_explain_path_node(const vc_state *s, int i, int *level, int box[4], float *score);
/* Class index for a label (exact match) or -1. */
int vc_model_find_label(const vc_model *m, const char *name);

/* ---- video frame features ---- */
/* The frame encoder's feature sequence of a video: frames sampled by presentation time at `fps`, each
 * through the (filtered) NesT; one row per sample, the top level's token grid after the final norm,
 * flattened channels-last (G*G*C values; tokens the filter dropped are zeros), with its time in seconds.
 * Decoding runs on its own thread ahead of the backbone; memory does not grow with the video's length
 * beyond the rows themselves. */
typedef struct vc_features vc_features;
typedef struct vc_features_params {
    float fps;  /* samples per second of video; <= 0: the model's default (vc_model_default_fps) */
    float keep; /* token filter keep ratio; <= 0: the filter's default, or 1 without a filter */
    int batch;  /* frames per backbone batch (<= 64) */
    int queue;  /* decoded frames buffered ahead of the backbone */
    void (*progress)(double t_done, double duration, void *user_data); /* about once per video second */
    /* after every batch of new rows (last = 0) and once at the end (last = 1, duration known): a
     * consumer such as the captioner works on the rows while decoding goes on; non-zero stops the run
     * and is returned, with err filled by the callback */
    int (*on_rows)(const vc_features *f, int last, void *user_data, char *err, size_t errlen);
    void *user_data;
} vc_features_params;

vc_features_params vc_features_default_params(void);
/* Process-wide, once: FFmpeg's own diagnostics off, so a bad video gives vidcap's one line only. */
void vc_quiet_ffmpeg_logs(void);
double vc_model_default_fps(const vc_model *m); /* the model's vidcap.video fps, else 4 */
int vc_video_features(const vc_model *m, const char *path, vc_features_params p, vc_features **out, char *err,
                      size_t errlen);
void vc_features_free(vc_features *f);
int vc_features_n(const vc_features *f);
int vc_features_dim(const vc_features *f);
const float *vc_features_data(const vc_features *f);  /* [n, dim] */
const float *vc_features_times(const vc_features *f); /* [n], seconds */
double vc_features_duration(const vc_features *f);
int vc_features_n_corrupt(const vc_features *f); /* packets or frames that failed to decode */
/* wall-clock seconds spent decoding (on the decode thread), in the backbone, and in all */
void vc_features_timings(const vc_features *f, double *decode, double *backbone, double *total);
/* safetensors: "features" [n, dim], "times" [n]; vidcap.arch = features, vidcap.features = JSON
 * {fps, duration, keep, grid, channels, source}. Written to a temporary file and renamed. */
int vc_features_save(const vc_features *f, const char *path, char *err, size_t errlen);

/* ---- dense captioning ---- */
/* Events {t0, t1, score, sentence} of a video: frame features stream into the Masked Transformer, which
 * runs on overlapping windows (so any length works); events are final, and announced through new_event
 * in order of start time, while decoding goes on. Needs a bundle (vidcap.arch = bundle). */
typedef struct vc_captions vc_captions;
typedef struct vc_caption_params {
    float fps;       /* samples per second; <= 0: the captioner's own rate (what it was trained on) */
    float keep;      /* token filter keep ratio; <= 0: the filter's default */
    float min_score; /* proposals need this event score; < 0: the model's default */
    float nms_tiou;  /* NMS overlap; < 0: the model's default */
    int max_events;  /* cap per window (after NMS); < 0: the model's default */
    int beam;        /* caption beam width; <= 0: the model's default (1 = greedy) */
    void (*new_event)(double t0, double t1, float score, const char *sentence, void *user_data);
    void (*progress)(double t_done, double duration, void *user_data);
    void *user_data;
} vc_caption_params;
enum vc_caption_format { VC_CAPTIONS_TXT, VC_CAPTIONS_SRT, VC_CAPTIONS_VTT, VC_CAPTIONS_JSON };

vc_caption_params vc_caption_default_params(void);
int vc_caption_file(const vc_model *m, const char *path, vc_caption_params p, vc_captions **out, char *err,
                    size_t errlen);
void vc_captions_free(vc_captions *c);
int vc_captions_n(const vc_captions *c);
void vc_captions_event(const vc_captions *c, int i, double *t0, double *t1, float *score,
                       const char **sentence);
double vc_captions_duration(const vc_captions *c);
int vc_captions_n_corrupt(const vc_captions *c);
/* wall-clock seconds: decoding (own thread, overlapped), backbone, captioner, and the whole run */
void vc_captions_timings(const vc_captions *c, double *decode, double *backbone, double *captioner,
                         double *total);
/* --heatmaps: for each event, the frame at its midpoint with the frame encoder's GradCAT map for the item
 * class its sentence names (else the predicted one), as DIR/<video stem>.event<NN>.png (time order). */
int vc_captions_heatmaps(const vc_model *m, const vc_captions *c, const char *path, const char *dir,
                         char *err, size_t errlen);
/* One file, written to a temporary name and renamed. JSON is ActivityNet's result format with this one
 * video under video_id. */
int vc_captions_save(const vc_captions *c, const char *path, enum vc_caption_format fmt, const char *video_id,
                     char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
