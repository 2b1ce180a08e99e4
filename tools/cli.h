/* What the vidcap command-line front end's files share: exit codes and small argument helpers. */
#pragma once
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vidcap.h"

enum { EXIT_ARGS = 1, EXIT_NO_INPUT = 2, EXIT_MODEL = 3, EXIT_INPUT = 10 };

static inline int cli_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static inline int cli_parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* Loads the model for a command; unless quiet, prints the version and system-info lines, what the model
 * is, and `demo_notice` when the path is the shipped default. Returns NULL after printing the error. */
static inline vc_model *cli_load_model(const char *path, const char *default_path, int n_threads, int quiet,
                                       const char *demo_notice)
{
    char err[1024];
    vc_model *model = NULL;
    vc_model_params mp = vc_model_default_params();
    mp.n_threads = n_threads;
    if (vc_model_load(path, mp, &model, err, sizeof(err))) {
        fprintf(stderr, "vidcap: %s\n", err);
        return NULL;
    }
    if (!quiet) {
        fprintf(stderr, "vidcap %s\n%s\n", vc_version(), vc_system_info(n_threads));
        fprintf(stderr, "vidcap: model %s: %s\n", path, vc_model_description(model));
        if (!strcmp(path, default_path)) fprintf(stderr, "vidcap: %s\n", demo_notice);
    }
    return model;
}

/* `vidcap features|caption ...`: the video commands (tools/vidcap-video.c) */
int cli_video_command(const char *cmd, int argc, char **argv);
