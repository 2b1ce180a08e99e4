/* Small helpers shared by the C tests: checks that report file:line, seeded random data, and
 * comparison of float buffers relative to their scale. */
#pragma once
#include <stdint.h>
#include <stdio.h>

extern int tu_failures;

#define TU_CHECK(cond, ...)                                                                                  \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
            tu_failures++;                                                                                   \
        }                                                                                                    \
    } while (0)

/* xorshift-based uniform floats in [lo, hi), reproducible from the seed */
void tu_seed(uint64_t seed);
float tu_uniform(float lo, float hi);
void tu_fill(float *x, int64_t n, float lo, float hi);
/* max |a-b| / max(max|b|, floor); prints name and values when above tol; returns 1 if within */
int tu_close(const char *name, const float *a, const float *b, int64_t n, float tol, float floor_scale);
/* prints "N passed, M failed" style summary for the file and returns the exit code */
int tu_finish(const char *test_name);
