/* vidcap's video commands: `caption` (also plain `vidcap VIDEO...`: dense captions on stdout as events
 * become final, and SRT / WebVTT / ActivityNet JSON / text files) and `features` (the frame encoder's
 * feature sequence of each video, the input format of the captioner's training tools). Flags follow
 * whisper-cli: results go to stdout, everything else to stderr, progress and timings with -pp. */
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/stat.h>

#include "cli.h"
#include "vidcap.h"

typedef struct video_opts {
    const char *cmd, *model, *out;
    const char **inputs, **out_bases;
    int n_inputs, n_out_bases, n_threads, no_prints, print_progress;
    float keep, fps;
    /* caption */
    int out_txt, out_srt, out_vtt, out_json, max_events, beam;
    float min_score, nms_tiou;
    const char *heatmaps;
} video_opts;

static void usage(FILE *f, const video_opts *d)
{
    if (!strcmp(d->cmd, "caption")) {
        fprintf(
            f,
            "usage: vidcap [caption] [options] VIDEO...\n\n"
            "  -h,        --help              show this help\n"
            "  -m FNAME,  --model FNAME       [%s] bundle: frame encoder, token filter, captioner\n"
            "  -t N,      --threads N         [%d] compute threads (0 = min(4, cores))\n"
            "             --fps F             [the captioner's] frames sampled per second of video\n"
            "             --keep R            [the filter's] token filter keep ratio, 0 < R <= 1 (1 = off)\n"
            "             --min-score S       [the model's] event score threshold, 0..1\n"
            "             --max-events N      [the model's] events kept per window after NMS\n"
            "             --nms-tiou T        [the model's] NMS drops a proposal that overlaps a kept one\n"
            "                                 by more than this tIoU\n"
            "             --beam N            [1] caption beam width (1 = greedy)\n"
            "  -otxt,     --output-txt        write <base>.txt (one sentence per line)\n"
            "  -osrt,     --output-srt        write <base>.srt\n"
            "  -ovtt,     --output-vtt        write <base>.vtt\n"
            "  -oj,       --output-json       write <base>.json (ActivityNet dense-captioning results)\n"
            "  -of BASE,  --output-file BASE  output base name without extension; repeat once per input\n"
            "                                 [default: the input path without its extension]\n"
            "             --heatmaps DIR      per event, a keyframe PNG with the encoder's GradCAT map\n"
            "  -pp,       --print-progress    progress and the time split (decode, backbone, captioner)\n"
            "  -np,       --no-prints         print only results\n"
            "  -f FNAME,  --file FNAME        an input (same as a positional argument)\n",
            d->model, d->n_threads);
        return;
    }
    fprintf(f,
            "usage: vidcap features [options] VIDEO...\n\n"
            "  -h,        --help              show this help\n"
            "  -m FNAME,  --model FNAME       [%s] frame encoder: a bundle or a NesT file\n"
            "  -t N,      --threads N         [%d] compute threads (0 = min(4, cores))\n"
            "             --fps F             [the model's] frames sampled per second of video\n"
            "             --keep R            [the filter's] token filter keep ratio, 0 < R <= 1 (1 = off)\n"
            "  -o PATH,   --output PATH       output file (one input), or an existing directory that gets\n"
            "                                 <video stem>.safetensors per input\n"
            "  -of BASE,  --output-file BASE  write BASE.safetensors; repeat once per input\n"
            "                                 [default: <video stem>.features.safetensors beside the video]\n"
            "  -pp,       --print-progress    progress and the time split (decode, backbone) on stderr\n"
            "  -np,       --no-prints         print only errors\n"
            "  -f FNAME,  --file FNAME        an input (same as a positional argument)\n",
            d->model, d->n_threads);
}

/* "dir/clip.v1.mp4" -> "clip.v1" */
static void stem(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), base);
}

static void output_path(const video_opts *o, int i, char *out, size_t len)
{
    char s[512];
    stem(o->inputs[i], s, sizeof(s));
    struct stat st;
    if (o->n_out_bases) {
        snprintf(out, len, "%s.safetensors", o->out_bases[i]);
    } else if (o->out && stat(o->out, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(out, len, "%s/%s.safetensors", o->out, s);
    } else if (o->out) {
        snprintf(out, len, "%s", o->out);
    } else {
        const char *slash = strrchr(o->inputs[i], '/');
        snprintf(out, len, "%.*s%s.features.safetensors", slash ? (int)(slash - o->inputs[i] + 1) : 0,
                 o->inputs[i], s);
    }
}

static int parse(int argc, char **argv, video_opts *o, const video_opts *d)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
#define IS(s, l) (!strcmp(a, s) || !strcmp(a, l))
        if (IS("-h", "--help")) {
            usage(stdout, d);
            return 0;
        }
        if (a[0] != '-' || !a[1]) {
            o->inputs[o->n_inputs++] = a;
            continue;
        }
        const int cap = !strcmp(o->cmd, "caption");
        const int takes_value =
            IS("-m", "--model") || IS("-t", "--threads") || !strcmp(a, "--fps") || !strcmp(a, "--keep") ||
            (!cap && IS("-o", "--output")) || IS("-of", "--output-file") || IS("-f", "--file") ||
            (cap && (!strcmp(a, "--min-score") || !strcmp(a, "--max-events") || !strcmp(a, "--nms-tiou") ||
                     !strcmp(a, "--beam") || !strcmp(a, "--heatmaps")));
        if (takes_value && i + 1 >= argc) {
            fprintf(stderr, "vidcap %s: %s needs a value\n", o->cmd, a);
            return EXIT_ARGS;
        }
        const char *v = takes_value ? argv[++i] : NULL;
        if (IS("-m", "--model")) {
            o->model = v;
        } else if (IS("-t", "--threads")) {
            if (cli_parse_int(v, 0, 256, &o->n_threads)) goto bad;
        } else if (!strcmp(a, "--fps")) {
            if (cli_parse_float(v, 1e-3f, 1000.f, &o->fps)) goto bad;
        } else if (!strcmp(a, "--keep")) {
            if (cli_parse_float(v, 0.f, 1.f, &o->keep) || o->keep <= 0.f) {
                fprintf(stderr, "vidcap %s: --keep %s: the keep ratio must be in (0, 1]\n", o->cmd, v);
                return EXIT_ARGS;
            }
        } else if (cap && !strcmp(a, "--min-score")) {
            if (cli_parse_float(v, 0.f, 1.f, &o->min_score)) goto bad;
        } else if (cap && !strcmp(a, "--nms-tiou")) {
            if (cli_parse_float(v, 0.f, 1.f, &o->nms_tiou)) goto bad;
        } else if (cap && !strcmp(a, "--max-events")) {
            if (cli_parse_int(v, 0, 10000, &o->max_events)) goto bad;
        } else if (cap && !strcmp(a, "--beam")) {
            if (cli_parse_int(v, 1, 16, &o->beam)) goto bad;
        } else if (cap && !strcmp(a, "--heatmaps")) {
            o->heatmaps = v;
        } else if (cap && IS("-otxt", "--output-txt")) {
            o->out_txt = 1;
        } else if (cap && IS("-osrt", "--output-srt")) {
            o->out_srt = 1;
        } else if (cap && IS("-ovtt", "--output-vtt")) {
            o->out_vtt = 1;
        } else if (cap && IS("-oj", "--output-json")) {
            o->out_json = 1;
        } else if (!cap && IS("-o", "--output")) {
            o->out = v;
        } else if (IS("-of", "--output-file")) {
            o->out_bases[o->n_out_bases++] = v;
        } else if (IS("-f", "--file")) {
            o->inputs[o->n_inputs++] = v;
        } else if (IS("-pp", "--print-progress")) {
            o->print_progress = 1;
        } else if (IS("-np", "--no-prints")) {
            o->no_prints = 1;
        } else {
            fprintf(stderr, "vidcap %s: unknown option '%s' (see vidcap %s -h)\n", o->cmd, a, o->cmd);
            return EXIT_ARGS;
        }
        continue;
    bad:
        fprintf(stderr, "vidcap %s: invalid value '%s' for %s\n", o->cmd, v, a);
        return EXIT_ARGS;
#undef IS
    }
    if (o->n_inputs == 0) {
        fprintf(stderr, "vidcap %s: no input videos (see vidcap %s -h)\n", o->cmd, o->cmd);
        return EXIT_NO_INPUT;
    }
    struct stat st;
    if (o->out && o->n_inputs > 1 && !(stat(o->out, &st) == 0 && S_ISDIR(st.st_mode))) {
        fprintf(stderr,
                "vidcap %s: -o %s names one file, but %d videos were given (give a directory, or -of)\n",
                o->cmd, o->out, o->n_inputs);
        return EXIT_ARGS;
    }
    if (o->n_out_bases && o->n_out_bases != o->n_inputs) {
        fprintf(stderr, "vidcap %s: %d -of names for %d videos\n", o->cmd, o->n_out_bases, o->n_inputs);
        return EXIT_ARGS;
    }
    return -1;
}

static void progress(double t, double duration, void *user_data)
{
    const char *path = user_data;
    if (duration > 0)
        fprintf(stderr, "vidcap: %s: %.0f s of %.0f s (%d%%)\n", path, t, duration,
                (int)(100.0 * (t < duration ? t : duration) / duration));
    else
        fprintf(stderr, "vidcap: %s: %.0f s\n", path, t);
}

static int features_one(const vc_model *m, const video_opts *o, int i)
{
    const char *in = o->inputs[i];
    vc_features_params p = vc_features_default_params();
    p.fps = o->fps;
    p.keep = o->keep;
    if (o->print_progress) p.progress = progress, p.user_data = (void *)in;
    vc_features *f = NULL;
    char err[1024], out[4096];
    if (vc_video_features(m, in, p, &f, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        return EXIT_INPUT;
    }
    if (vc_features_n_corrupt(f))
        fprintf(stderr, "vidcap: %s: warning: %d packets could not be decoded; features of the rest\n", in,
                vc_features_n_corrupt(f));
    output_path(o, i, out, sizeof(out));
    int rc = 0;
    if (vc_features_save(f, out, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        rc = EXIT_INPUT;
    } else {
        double dec, bb, total;
        vc_features_timings(f, &dec, &bb, &total);
        if (!o->no_prints)
            fprintf(stderr, "vidcap: %s: %d frames x %d features -> %s\n", in, vc_features_n(f),
                    vc_features_dim(f), out);
        if (o->print_progress)
            fprintf(stderr,
                    "vidcap: timings: decode %.3f s (own thread), backbone %.3f s, total %.3f s; "
                    "%.1f frames/s, %.1fx real time\n",
                    dec, bb, total, vc_features_n(f) / total, vc_features_duration(f) / total);
    }
    vc_features_free(f);
    return rc;
}

static void print_event(double t0, double t1, float score, const char *sentence, void *user_data)
{
    (void)score, (void)user_data;
    const long long a = (long long)(t0 * 1000.0 + 0.5), b = (long long)(t1 * 1000.0 + 0.5);
    printf("[%02lld:%02lld:%02lld.%03lld --> %02lld:%02lld:%02lld.%03lld]  %s\n", a / 3600000, a / 60000 % 60,
           a / 1000 % 60, a % 1000, b / 3600000, b / 60000 % 60, b / 1000 % 60, b % 1000, sentence);
    fflush(stdout);
}

/* BASE.ext for input i: -of BASE, else the input path without its extension */
static void caption_output(const video_opts *o, int i, const char *ext, char *out, size_t len)
{
    if (o->n_out_bases) {
        snprintf(out, len, "%s.%s", o->out_bases[i], ext);
        return;
    }
    const char *in = o->inputs[i], *slash = strrchr(in, '/'), *dot = strrchr(in, '.');
    const size_t n = dot && dot > (slash ? slash + 1 : in) ? (size_t)(dot - in) : strlen(in);
    snprintf(out, len, "%.*s.%s", (int)n, in, ext);
}

static int caption_one(const vc_model *m, const video_opts *o, int i)
{
    const char *in = o->inputs[i];
    vc_caption_params p = vc_caption_default_params();
    p.keep = o->keep;
    p.fps = o->fps;
    p.min_score = o->min_score;
    p.nms_tiou = o->nms_tiou;
    p.max_events = o->max_events;
    p.beam = o->beam;
    p.new_event = print_event;
    if (o->print_progress) p.progress = progress;
    p.user_data = (void *)in;
    if (!o->no_prints) fprintf(stderr, "vidcap: processing '%s' ...\n", in);
    vc_captions *c = NULL;
    char err[1024], out[4096];
    if (vc_caption_file(m, in, p, &c, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        return EXIT_INPUT;
    }
    if (vc_captions_n_corrupt(c))
        fprintf(stderr, "vidcap: %s: warning: %d packets could not be decoded; captions of the rest\n", in,
                vc_captions_n_corrupt(c));
    int rc = 0;
    const struct {
        int on;
        const char *ext;
        enum vc_caption_format fmt;
    } outs[] = {{o->out_txt, "txt", VC_CAPTIONS_TXT},
                {o->out_srt, "srt", VC_CAPTIONS_SRT},
                {o->out_vtt, "vtt", VC_CAPTIONS_VTT},
                {o->out_json, "json", VC_CAPTIONS_JSON}};
    char id[512];
    stem(in, id, sizeof(id));
    for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++) {
        if (!outs[k].on) continue;
        caption_output(o, i, outs[k].ext, out, sizeof(out));
        if (vc_captions_save(c, out, outs[k].fmt, id, err, sizeof(err))) {
            fprintf(stderr, "vidcap: %s\n", err);
            rc = EXIT_INPUT;
        } else if (!o->no_prints) {
            fprintf(stderr, "vidcap: saving output to '%s'\n", out);
        }
    }
    if (o->heatmaps && vc_captions_heatmaps(m, c, in, o->heatmaps, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        rc = EXIT_INPUT;
    }
    if (o->print_progress) {
        double dec, bb, capt, total;
        vc_captions_timings(c, &dec, &bb, &capt, &total);
        const double dur = vc_captions_duration(c);
        fprintf(stderr,
                "vidcap: timings: decode %.3f s (own thread, overlapped), backbone %.3f s, captioner %.3f s, "
                "total %.3f s for %.1f s of video: %.1fx real time\n",
                dec, bb, capt, total, dur, total > 0 ? dur / total : 0.0);
    }
    vc_captions_free(c);
    return rc;
}

int cli_video_command(const char *cmd, int argc, char **argv)
{
    video_opts o = {.cmd = cmd,
                    .model = vc_default_video_model_path(),
                    .min_score = -1.f,
                    .nms_tiou = -1.f,
                    .max_events = -1};
    const video_opts defaults = o;
    o.inputs = calloc((size_t)argc + 1, sizeof(char *));
    o.out_bases = calloc((size_t)argc + 1, sizeof(char *));
    vc_model *model = NULL;
    int rc = EXIT_ARGS;
    if (!o.inputs || !o.out_bases) goto done;
    if ((rc = parse(argc, argv, &o, &defaults)) >= 0) goto done;
    vc_quiet_ffmpeg_logs();
    if (!(model = cli_load_model(o.model, defaults.model, o.n_threads, o.no_prints,
                                 "this is the shipped demo model: it knows only the Moving Fashion world "
                                 "(Fashion-MNIST items moving on a dark canvas); use -m with your own bundle "
                                 "for real videos"))) {
        rc = EXIT_MODEL;
        goto done;
    }
    rc = 0;
    if (!strcmp(cmd, "caption") && strcmp(vc_model_arch(model), "bundle")) {
        fprintf(stderr,
                "vidcap: %s: this is a %s model; captioning needs a bundle (frame encoder, token "
                "filter and captioner, see tools/make_bundle.py)\n",
                o.model, vc_model_arch(model));
        rc = EXIT_MODEL;
        goto done;
    }
    for (int i = 0; i < o.n_inputs; i++)
        if ((!strcmp(cmd, "caption") ? caption_one : features_one)(model, &o, i)) rc = EXIT_INPUT;
done:
    vc_model_free(model);
    free(o.inputs);
    free(o.out_bases);
    return rc;
}
