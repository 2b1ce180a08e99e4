/* What the vidcap command-line front end's files share: exit codes and small argument helpers. */
#pragma once
#include <errno.h>
#include <stdlib.h>

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

/* `vidcap features|caption ...`: the video commands (tools/vidcap-video.c) */
int cli_video_command(const char *cmd, int argc, char **argv);
