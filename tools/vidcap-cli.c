/* vidcap: the command-line front end. Flags follow whisper-cli (-m, -t, -np, -h); results go to stdout,
 * everything else (system info, progress, errors) to stderr. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vidcap.h"

typedef struct cli_opts {
    const char *cmd;
    const char *model;
    int top_k, n_threads, json, no_prints;
    const char *idx_images, *idx_labels; /* classify --eval-idx */
    const char *target;                  /* explain --class NAME|INDEX */
    const char *out_png;                 /* explain -o */
    const char **out_bases;              /* explain -of, one per input */
    int n_out_bases, flip_sign;
    const char **inputs;
    int n_inputs;
    float keep;             /* token filter keep ratio (classify), 1 = off */
    const char *filter;     /* --filter FILE */
    const char *out_filter; /* filter-fit -o */
    int epochs, labels;     /* filter-fit */
} cli_opts;

static void usage_main(FILE *f)
{
    fprintf(f, "usage: vidcap [options] VIDEO...      dense captions of videos (same as vidcap caption)\n"
               "       vidcap <command> [options] FILE...\n\n"
               "commands:\n"
               "  caption    dense video captioning: events with start, end and a sentence\n"
               "  classify   label images with a NesT classifier (top-k classes)\n"
               "  explain    GradCAT: the path down NesT's block tree and a heatmap PNG per image\n"
               "  filter-fit fit a token filter for a NesT model from a folder of labelled images\n"
               "  features   the frame encoder's feature sequence of videos (.safetensors per video)\n"
               "  version    print the version and the system-info line\n\n"
               "Run 'vidcap <command> -h' for its options.\n");
}

static void usage_cmd(FILE *f, const cli_opts *d)
{
    int explain = !strcmp(d->cmd, "explain");
    fprintf(f, "usage: vidcap %s [options] %s\n\n", d->cmd,
            strcmp(d->cmd, "filter-fit") ? "IMAGE..." : "DIR");
    fprintf(
        f,
        "  -h,        --help              show this help\n"
        "  -m FNAME,  --model FNAME       [%s] NesT model (.safetensors; a timm nest_*_jx file works too)\n"
        "  -k N,      --top-k N           [%d] classes printed per image\n"
        "  -t N,      --threads N         [%d] compute threads (0 = min(4, cores))\n"
        "  -oj,       --json              one JSON object per line instead of text\n"
        "  -np,       --no-prints         print only results (no system info, notices)\n"
        "  -f FNAME,  --file FNAME        an input (same as a positional argument)\n",
        d->model, d->top_k, d->n_threads);
    if (!strcmp(d->cmd, "filter-fit")) {
        fprintf(
            f,
            "  -o FNAME,  --output FNAME      [<model stem>.filter.safetensors] the filter file to write\n"
            "             --keep R            [%.2f] default keep ratio stored in the filter\n"
            "             --epochs N          [%d] passes over the token labels\n"
            "             --labels loo|grad   [auto] token impact by leave-one-out (exact; default up to 64\n"
            "                                 top-level tokens) or gradient x input (one backward)\n",
            d->keep, d->epochs);
        return;
    }
    fprintf(
        f,
        "             --keep R            [1] keep ratio of the token filter, 0 < R <= 1 (1 = no filter)\n"
        "             --filter FNAME      token filter file (vidcap filter-fit) for --keep, or 'random'\n"
        "                                 for the random-keep baseline [the model's own, if it has one]\n");
    if (explain)
        fprintf(f,
                "  -c C,      --class C           [predicted] class to explain, by label or index\n"
                "  -o FNAME,  --output FNAME      heatmap PNG path (one input only)\n"
                "  -of BASE,  --output-file BASE  heatmap written to BASE.png; repeat once per input\n"
                "                                 [default: <image stem>.gradcat.png in the current folder]\n"
                "             --flip-sign         score nodes by -A*dlog p/dA instead of A*dlog p/dA\n");
    else
        fprintf(
            f,
            "             --eval-idx IMAGES LABELS\n"
            "                                 top-1 accuracy over uncompressed IDX files (MNIST format)\n");
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

static void print_top_json(const vc_state *st, const vc_model *m, int k)
{
    int idx[64];
    float prob[64];
    k = vc_top_k(st, k, idx, prob);
    printf("[");
    for (int i = 0; i < k; i++) {
        printf("%s{\"index\":%d,\"label\":", i ? "," : "", idx[i]);
        json_string(stdout, vc_model_label(m, idx[i]));
        printf(",\"prob\":%.6f}", prob[i]);
    }
    printf("]");
}

static void print_result(const vc_state *st, const vc_model *m, const char *path, const cli_opts *o)
{
    int idx[64];
    float prob[64];
    int k = vc_top_k(st, o->top_k, idx, prob);
    if (o->json) {
        printf("{\"file\":");
        json_string(stdout, path);
        printf(",\"top\":");
        print_top_json(st, m, o->top_k);
        printf("}\n");
    } else {
        printf("%s:", path);
        for (int i = 0; i < k; i++)
            printf("%s %s %.2f", i ? "," : "", vc_model_label(m, idx[i]), prob[i]);
        printf("\n");
    }
    fflush(stdout);
}

/* Reads an uncompressed IDX file (big-endian dims after a 0x0000 08 NN magic) into memory. */
static uint8_t *read_idx(const char *path, int want_dims, uint32_t dims[3], size_t *count, char *err,
                         size_t len)
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

static int eval_idx(vc_state *st, const cli_opts *o)
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
        for (size_t p = 0; p < (size_t)w * h; p++)
            rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = g[p];
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

/* Parses the options shared by classify and explain, plus each one's own. Returns -1 to go on, or an
 * exit code (0 after -h). */
static int parse_args(int argc, char **argv, cli_opts *o, const cli_opts *defaults)
{
    const int explain = !strcmp(o->cmd, "explain");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const int has_next = i + 1 < argc;
#define IS(s, l) (!strcmp(a, s) || !strcmp(a, l))
        if (IS("-h", "--help")) {
            usage_cmd(stdout, defaults);
            return 0;
        } else if (a[0] != '-' || !a[1]) {
            o->inputs[o->n_inputs++] = a;
            continue;
        }
        const int fit = !strcmp(o->cmd, "filter-fit");
        int takes_value =
            IS("-m", "--model") || IS("-k", "--top-k") || IS("-t", "--threads") || IS("-f", "--file") ||
            !strcmp(a, "--keep") || !strcmp(a, "--filter") ||
            (explain && (IS("-c", "--class") || IS("-o", "--output") || IS("-of", "--output-file"))) ||
            (fit && (IS("-o", "--output") || !strcmp(a, "--epochs") || !strcmp(a, "--labels")));
        if (takes_value && !has_next) {
            fprintf(stderr, "vidcap %s: %s needs a value\n", o->cmd, a);
            return EXIT_ARGS;
        }
        const char *v = takes_value ? argv[++i] : NULL;
        if (IS("-m", "--model")) {
            o->model = v;
        } else if (IS("-k", "--top-k") || IS("-t", "--threads")) {
            int *dst = IS("-k", "--top-k") ? &o->top_k : &o->n_threads;
            if (cli_parse_int(v, IS("-k", "--top-k") ? 1 : 0, IS("-k", "--top-k") ? 64 : 256, dst)) {
                fprintf(stderr, "vidcap %s: invalid value '%s' for %s\n", o->cmd, v, a);
                return EXIT_ARGS;
            }
        } else if (IS("-f", "--file")) {
            o->inputs[o->n_inputs++] = v;
        } else if (IS("-oj", "--json")) {
            o->json = 1;
        } else if (IS("-np", "--no-prints")) {
            o->no_prints = 1;
        } else if (!strcmp(a, "--keep")) {
            char *end;
            o->keep = strtof(v, &end);
            if (*end || end == v || !(o->keep > 0.f && o->keep <= 1.f)) {
                fprintf(stderr, "vidcap %s: --keep %s: the keep ratio must be in (0, 1]\n", o->cmd, v);
                return EXIT_ARGS;
            }
        } else if (!strcmp(a, "--filter") && !fit) {
            o->filter = v;
        } else if (fit && IS("-o", "--output")) {
            o->out_filter = v;
        } else if (fit && !strcmp(a, "--epochs")) {
            if (cli_parse_int(v, 1, 10000, &o->epochs)) {
                fprintf(stderr, "vidcap %s: invalid value '%s' for %s\n", o->cmd, v, a);
                return EXIT_ARGS;
            }
        } else if (fit && !strcmp(a, "--labels")) {
            if (strcmp(v, "loo") && strcmp(v, "grad")) {
                fprintf(stderr, "vidcap %s: --labels takes loo or grad\n", o->cmd);
                return EXIT_ARGS;
            }
            o->labels = !strcmp(v, "loo") ? VC_LABELS_LOO : VC_LABELS_GRAD;
        } else if (explain && IS("-c", "--class")) {
            o->target = v;
        } else if (explain && IS("-o", "--output")) {
            o->out_png = v;
        } else if (explain && IS("-of", "--output-file")) {
            o->out_bases[o->n_out_bases++] = v;
        } else if (explain && !strcmp(a, "--flip-sign")) {
            o->flip_sign = 1;
        } else if (!explain && !strcmp(a, "--eval-idx")) {
            if (i + 2 >= argc) {
                fprintf(stderr, "vidcap %s: --eval-idx needs IMAGES and LABELS\n", o->cmd);
                return EXIT_ARGS;
            }
            o->idx_images = argv[++i];
            o->idx_labels = argv[++i];
        } else {
            fprintf(stderr, "vidcap %s: unknown option '%s' (see vidcap %s -h)\n", o->cmd, a, o->cmd);
            return EXIT_ARGS;
        }
#undef IS
    }
    if (o->n_inputs == 0 && !o->idx_images) {
        fprintf(stderr, "vidcap %s: no input %s (see vidcap %s -h)\n", o->cmd,
                strcmp(o->cmd, "filter-fit") ? "images" : "folder", o->cmd);
        return 2;
    }
    if (o->out_png && o->n_inputs != 1) {
        fprintf(stderr, "vidcap explain: -o names one file, but %d images were given (use -of per image)\n",
                o->n_inputs);
        return EXIT_ARGS;
    }
    if (o->n_out_bases && o->n_out_bases != o->n_inputs) {
        fprintf(stderr, "vidcap explain: %d -of names for %d images\n", o->n_out_bases, o->n_inputs);
        return EXIT_ARGS;
    }
    return -1;
}

/* "dir/photo.jpg" -> "photo.gradcat.png" in the current folder */
static void default_png_name(const char *input, char *out, size_t len)
{
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    const char *dot = strrchr(base, '.');
    int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(out, len, "%.*s.gradcat.png", stem, base);
}

static int resolve_target(const vc_model *m, const char *spec, int *target)
{
    *target = -1;
    if (!spec) return 0;
    if ((*target = vc_model_find_label(m, spec)) >= 0) return 0;
    if (!cli_parse_int(spec, 0, vc_model_n_labels(m) - 1, target)) return 0;
    fprintf(stderr, "vidcap explain: unknown class '%s': give a label of the model or an index 0..%d\n", spec,
            vc_model_n_labels(m) - 1);
    return -1;
}

static int explain_one(vc_state *st, const vc_model *m, const cli_opts *o, int i, int target)
{
    char err[1024], png[4096];
    if (o->out_png)
        snprintf(png, sizeof(png), "%s", o->out_png);
    else if (o->n_out_bases)
        snprintf(png, sizeof(png), "%s.png", o->out_bases[i]);
    else
        default_png_name(o->inputs[i], png, sizeof(png));
    vc_explain_params p = vc_explain_default_params();
    p.target = target;
    p.flip_sign = o->flip_sign;
    p.png = png;
    if (vc_explain_file(st, o->inputs[i], p, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        return EXIT_INPUT;
    }
    const int t = vc_explain_target(st);
    if (o->json) {
        printf("{\"file\":");
        json_string(stdout, o->inputs[i]);
        printf(",\"target\":{\"index\":%d,\"label\":", t);
        json_string(stdout, vc_model_label(m, t));
        printf(",\"prob\":%.6f},\"top\":", vc_probs(st)[t]);
        print_top_json(st, m, o->top_k);
        printf(",\"path\":[");
    } else {
        printf("%s: %s %.2f, path", o->inputs[i], vc_model_label(m, t), vc_probs(st)[t]);
    }
    for (int k = 0; k < vc_explain_path_len(st); k++) {
        int level, box[4];
        float score;
        vc_explain_path_node(st, k, &level, box, &score);
        if (o->json)
            printf("%s{\"level\":%d,\"box\":[%d,%d,%d,%d],\"score\":%.6g}", k ? "," : "", level, box[0],
                   box[1], box[2], box[3], score);
        else
            printf("%s [%d,%d,%d,%d]", k ? " >" : "", box[0], box[1], box[2], box[3]);
    }
    if (o->json) {
        printf("],\"png\":");
        json_string(stdout, png);
        printf("}\n");
    } else {
        printf(" -> %s\n", png);
    }
    fflush(stdout);
    return 0;
}

static void fit_progress(const char *stage, int done, int total, void *user_data)
{
    const cli_opts *o = user_data;
    if (o->no_prints) return;
    if (total > 0)
        fprintf(stderr, "filter-fit: %s: progress = %3d%%\n", stage, done * 100 / total);
    else if (done % 100 == 0)
        fprintf(stderr, "filter-fit: %s: %d images\n", stage, done);
}

/* "dir/model.safetensors" -> "model.filter.safetensors" in the current folder */
static int filter_fit(vc_state *st, const cli_opts *o)
{
    char out[4096], err[1024];
    if (o->out_filter) {
        snprintf(out, sizeof(out), "%s", o->out_filter);
    } else {
        const char *base = strrchr(o->model, '/');
        base = base ? base + 1 : o->model;
        const char *dot = strstr(base, ".safetensors");
        snprintf(out, sizeof(out), "%.*s.filter.safetensors", dot ? (int)(dot - base) : (int)strlen(base),
                 base);
    }
    vc_filter_fit_params p = vc_filter_fit_default_params();
    p.epochs = o->epochs;
    p.keep = o->keep;
    p.labels = o->labels;
    p.progress = fit_progress;
    p.user_data = (void *)o;
    int n = 0, skipped = 0;
    if (vc_filter_fit(st, o->inputs[0], p, out, &n, &skipped, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        return EXIT_INPUT;
    }
    printf("%s: token filter fitted on %d images (%d skipped), default keep %.2f\n", out, n, skipped, p.keep);
    return 0; /* skipped images were reported one by one and counted; the filter stands on the rest */
}

static int run_command(const char *cmd, int argc, char **argv)
{
    const vc_filter_fit_params fit_defaults = vc_filter_fit_default_params();
    cli_opts o = {.cmd = cmd,
                  .model = vc_default_classifier_path(),
                  .top_k = 5,
                  .n_threads = 0,
                  .keep = 1.f,
                  .epochs = fit_defaults.epochs,
                  .labels = fit_defaults.labels};
    if (!strcmp(cmd, "filter-fit")) o.keep = fit_defaults.keep;
    const cli_opts defaults = o;
    o.inputs = calloc((size_t)argc + 1, sizeof(char *));
    o.out_bases = calloc((size_t)argc + 1, sizeof(char *));
    vc_model *model = NULL;
    vc_state *st = NULL;
    int rc = EXIT_ARGS, target = -1;
    if (!o.inputs || !o.out_bases) goto done;
    if ((rc = parse_args(argc, argv, &o, &defaults)) >= 0) goto done;
    rc = 0;

    char err[1024];
    if (!(model = cli_load_model(o.model, defaults.model, o.n_threads, o.no_prints,
                                 "this is the shipped demo model: it knows only the 10 Fashion-MNIST classes "
                                 "of small grey clothing items; use -m with a real checkpoint (for example "
                                 "timm's nest_tiny_jx model.safetensors) for photos"))) {
        rc = EXIT_MODEL;
        goto done;
    }
    if (resolve_target(model, o.target, &target)) {
        rc = EXIT_ARGS;
        goto done;
    }
    if (o.filter && !strcmp(o.filter, "random")) {
        vc_model_use_random_filter(model);
    } else if (o.filter && vc_model_load_filter(model, o.filter, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        rc = EXIT_MODEL;
        goto done;
    }
    if (!(st = vc_state_create(model))) {
        fprintf(stderr, "vidcap: out of memory creating the inference state\n");
        rc = EXIT_MODEL;
        goto done;
    }
    if (!strcmp(cmd, "filter-fit")) {
        rc = filter_fit(st, &o);
        goto done;
    }
    if (vc_state_set_keep(st, o.keep, err, sizeof(err))) {
        fprintf(stderr, "vidcap %s: %s\n", cmd, err);
        rc = EXIT_ARGS;
        goto done;
    }
    if (o.idx_images) rc = eval_idx(st, &o);
    for (int i = 0; i < o.n_inputs; i++) {
        if (!strcmp(cmd, "explain")) {
            if (explain_one(st, model, &o, i, target)) rc = EXIT_INPUT;
            continue;
        }
        if (vc_classify_file(st, o.inputs[i], err, sizeof(err))) {
            fprintf(stderr, "vidcap: %s\n", err);
            rc = EXIT_INPUT;
            continue;
        }
        print_result(st, model, o.inputs[i], &o);
    }
done:
    vc_state_free(st);
    vc_model_free(model);
    free(o.inputs);
    free(o.out_bases);
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
    if (!strcmp(argv[1], "classify") || !strcmp(argv[1], "explain") || !strcmp(argv[1], "filter-fit"))
        return run_command(argv[1], argc - 2, argv + 2);
    if (!strcmp(argv[1], "features") || !strcmp(argv[1], "caption"))
        return cli_video_command(argv[1], argc - 2, argv + 2);
    return cli_video_command("caption", argc - 1, argv + 1); /* vidcap VIDEO... */
}
