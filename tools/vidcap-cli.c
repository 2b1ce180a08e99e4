/* vidcap: the command-line front end. Flags follow whisper-cli (-m, -t, -np, -h); results go to stdout,
 * everything else (system info, progress, errors) to stderr. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vidcap.h"

enum { EXIT_ARGS = 1, EXIT_MODEL = 3, EXIT_INPUT = 10 };

typedef struct classify_opts {
    const char *model;
    int top_k, n_threads, json, no_prints;
    const char *idx_images, *idx_labels;
} classify_opts;

static void usage_main(FILE *f)
{
    fprintf(f, "usage: vidcap <command> [options] FILE...\n\n"
               "commands:\n"
               "  classify   label images with a NesT classifier (top-k classes)\n"
               "  version    print the version and the system-info line\n\n"
               "Dense captioning (vidcap VIDEO) and heatmaps (vidcap explain) are not in this build yet.\n"
               "Run 'vidcap classify -h' for the classify options.\n");
}

static void usage_classify(FILE *f, const classify_opts *d)
{
    fprintf(f,
            "usage: vidcap classify [options] IMAGE...\n\n"
            "  -h,        --help              show this help\n"
            "  -m FNAME,  --model FNAME       [%s] NesT model (.safetensors; a timm nest_*_jx file works too)\n"
            "  -k N,      --top-k N           [%d] classes printed per image\n"
            "  -t N,      --threads N         [%d] compute threads (0 = min(4, cores))\n"
            "  -oj,       --json              one JSON object per line instead of text\n"
            "  -np,       --no-prints         print only results (no system info, notices)\n"
            "             --eval-idx IMAGES LABELS\n"
            "                                 top-1 accuracy over uncompressed IDX files (MNIST format)\n",
            d->model, d->top_k, d->n_threads);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void print_result(const vc_state *st, const vc_model *m, const char *path, const classify_opts *o)
{
    int idx[64];
    float prob[64];
    int k = vc_top_k(st, o->top_k, idx, prob);
    if (o->json) {
        printf("{\"file\":");
        json_string(stdout, path);
        printf(",\"top\":[");
        for (int i = 0; i < k; i++) {
            printf("%s{\"index\":%d,\"label\":", i ? "," : "", idx[i]);
            json_string(stdout, vc_model_label(m, idx[i]));
            printf(",\"prob\":%.6f}", prob[i]);
        }
        printf("]}\n");
    } else {
        printf("%s:", path);
        for (int i = 0; i < k; i++) printf("%s %s %.2f", i ? "," : "", vc_model_label(m, idx[i]), prob[i]);
        printf("\n");
    }
    fflush(stdout);
}

/* Reads an uncompressed IDX file (big-endian dims after a 0x0000 08 NN magic) into memory. */
static uint8_t *read_idx(const char *path, int want_dims, uint32_t dims[3], size_t *count, char *err, size_t len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL, hdr[4];
    if (!f) {
        snprintf(err, len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fread(hdr, 1, 4, f) != 4 || hdr[0] || hdr[1] || hdr[2] != 0x08 || hdr[3] != want_dims) {
        snprintf(err, len, "%s: not an IDX file of unsigned bytes with %d dimensions", path, want_dims);
        goto end;
    }
    size_t n = 1;
    for (int i = 0; i < want_dims; i++) {
        uint8_t b[4];
        if (fread(b, 1, 4, f) != 4) {
            snprintf(err, len, "%s: truncated IDX header", path);
            goto end;
        }
        dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (dims[i] == 0 || dims[i] > 100000000u || n > SIZE_MAX / dims[i] || n * dims[i] > (1u << 30)) {
            snprintf(err, len, "%s: IDX dimension %u out of range", path, dims[i]);
            goto end;
        }
        n *= dims[i];
    }
    data = malloc(n);
    if (!data || fread(data, 1, n, f) != n) {
        snprintf(err, len, "%s: truncated IDX data (want %zu bytes)", path, n);
        free(data);
        data = NULL;
        goto end;
    }
    *count = n;
end:
    fclose(f);
    return data;
}

static int eval_idx(vc_state *st, const classify_opts *o)
{
    char err[512];
    uint32_t idims[3], ldims[3];
    size_t ni = 0, nl = 0;
    int rc = EXIT_INPUT;
    uint8_t *rgb = NULL, *labels = NULL, *images = read_idx(o->idx_images, 3, idims, &ni, err, sizeof(err));
    if (!images || !(labels = read_idx(o->idx_labels, 1, ldims, &nl, err, sizeof(err)))) {
        fprintf(stderr, "vidcap: %s\n", err);
        goto end;
    }
    if (ldims[0] != idims[0]) {
        fprintf(stderr, "vidcap: %s: %u labels for %u images\n", o->idx_labels, ldims[0], idims[0]);
        goto end;
    }
    const uint32_t n = idims[0], h = idims[1], w = idims[2];
    rgb = malloc((size_t)w * h * 3);
    if (!rgb) goto end;
    uint32_t correct = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *g = images + (size_t)i * w * h;
        for (size_t p = 0; p < (size_t)w * h; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = g[p];
        if (vc_classify_rgb(st, rgb, (int)w, (int)h, err, sizeof(err))) {
            fprintf(stderr, "vidcap: %s[%u]: %s\n", o->idx_images, i, err);
            goto end;
        }
        int top;
        float p;
        vc_top_k(st, 1, &top, &p);
        correct += top == labels[i];
        if (!o->no_prints && (i + 1) % 1000 == 0)
            fprintf(stderr, "eval: progress = %3u%%\n", (unsigned)((uint64_t)(i + 1) * 100 / n));
    }
    printf("top-1 accuracy: %.2f%% (%u / %u)\n", 100.0 * correct / n, correct, n);
    rc = 0;
end:
    free(images);
    free(labels);
    free(rgb);
    return rc;
}

static int cmd_classify(int argc, char **argv)
{
    classify_opts o = {.model = vc_default_classifier_path(), .top_k = 5, .n_threads = 0};
    const classify_opts defaults = o;
    const char **inputs = calloc((size_t)argc + 1, sizeof(char *));
    int n_inputs = 0, rc = 0;
    if (!inputs) return EXIT_ARGS;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage_classify(stdout, &defaults);
            goto done;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_next) {
            o.model = argv[++i];
        } else if ((!strcmp(a, "-k") || !strcmp(a, "--top-k")) && has_next) {
            if (parse_int(argv[++i], 1, 64, &o.top_k)) goto bad_value;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_next) {
            if (parse_int(argv[++i], 0, 256, &o.n_threads)) goto bad_value;
        } else if (!strcmp(a, "-oj") || !strcmp(a, "--json")) {
            o.json = 1;
        } else if (!strcmp(a, "-np") || !strcmp(a, "--no-prints")) {
            o.no_prints = 1;
        } else if (!strcmp(a, "--eval-idx") && i + 2 < argc) {
            o.idx_images = argv[++i];
            o.idx_labels = argv[++i];
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!has_next) goto missing_value;
            inputs[n_inputs++] = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-k") || !strcmp(a, "--top-k") ||
                !strcmp(a, "-t") || !strcmp(a, "--threads") || !strcmp(a, "--eval-idx"))
                goto missing_value;
            fprintf(stderr, "vidcap classify: unknown option '%s' (see vidcap classify -h)\n", a);
            rc = EXIT_ARGS;
            goto done;
        } else {
            inputs[n_inputs++] = a;
        }
        continue;
    bad_value:
        fprintf(stderr, "vidcap classify: invalid value '%s' for %s\n", argv[i], argv[i - 1]);
        rc = EXIT_ARGS;
        goto done;
    missing_value:
        fprintf(stderr, "vidcap classify: %s needs a value\n", a);
        rc = EXIT_ARGS;
        goto done;
    }
    if (n_inputs == 0 && !o.idx_images) {
        fprintf(stderr, "vidcap classify: no input images (see vidcap classify -h)\n");
        rc = 2;
        goto done;
    }

    char err[1024];
    vc_model_params mp = vc_model_default_params();
    mp.n_threads = o.n_threads;
    vc_model *model = NULL;
    if (vc_model_load(o.model, mp, &model, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        rc = EXIT_MODEL;
        goto done;
    }
    if (!o.no_prints) {
        fprintf(stderr, "vidcap %s\n%s\n", vc_version(), vc_system_info(mp.n_threads > 0 ? mp.n_threads : 0));
        fprintf(stderr, "vidcap: model %s: %s\n", o.model, vc_model_description(model));
        if (!strcmp(o.model, defaults.model))
            fprintf(stderr, "vidcap: this is the shipped demo model: it knows only the 10 Fashion-MNIST "
                            "classes of small grey clothing items; use -m with a real checkpoint (for example "
                            "timm's nest_tiny_jx model.safetensors) for photos\n");
    }
    vc_state *st = vc_state_create(model);
    if (!st) {
        fprintf(stderr, "vidcap: out of memory creating the inference state\n");
        vc_model_free(model);
        rc = EXIT_MODEL;
        goto done;
    }
    if (o.idx_images) rc = eval_idx(st, &o);
    for (int i = 0; i < n_inputs; i++) {
        if (vc_classify_file(st, inputs[i], err, sizeof(err))) {
            fprintf(stderr, "vidcap: %s\n", err);
            rc = EXIT_INPUT;
            continue;
        }
        print_result(st, model, inputs[i], &o);
    }
    vc_state_free(st);
    vc_model_free(model);
done:
    free(inputs);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage_main(argc < 2 ? stderr : stdout);
        if (argc < 2) fprintf(stderr, "\nvidcap %s\n%s\n", vc_version(), vc_system_info(0));
        return argc < 2 ? EXIT_ARGS : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("vidcap %s\n", vc_version());
        fprintf(stderr, "%s\n", vc_system_info(0));
        return 0;
    }
    if (!strcmp(argv[1], "classify")) return cmd_classify(argc - 2, argv + 2);
    fprintf(stderr, "vidcap: '%s': dense captioning of videos is not in this build yet; "
                    "available commands: classify, version (see vidcap -h)\n", argv[1]);
    return EXIT_ARGS;
}
