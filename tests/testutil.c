/* Shared helpers for the C tests (see testutil.h). */
#include "testutil.h"

#include <math.h>

int tu_failures = 0;
static uint64_t tu_state = 0x9E3779B97F4A7C15ull;

void tu_seed(uint64_t seed)
{
    tu_state = seed * 0x9E3779B97F4A7C15ull + 1;
}

float tu_uniform(float lo, float hi)
{
    tu_state ^= tu_state << 13;
    tu_state ^= tu_state >> 7;
    tu_state ^= tu_state << 17;
    return lo + (hi - lo) * (float)((tu_state >> 40) * (1.0 / 16777216.0));
}

void tu_fill(float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = tu_uniform(lo, hi);
}

int tu_close(const char *name, const float *a, const float *b, int64_t n, float tol, float floor_scale)
{
    double scale = floor_scale, err = 0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= err)) { /* also catches NaN */
            err = isnan(d) ? INFINITY : d;
            worst = i;
        }
    }
    double rel = err / scale;
    if (!(rel <= tol)) {
        fprintf(stderr, "%s: max error %.3g relative to scale %.3g (tol %.1g) at %lld: got %.7g want %.7g\n",
                name, err, scale, tol, (long long)worst, n ? a[worst] : 0.f, n ? b[worst] : 0.f);
        tu_failures++;
        return 0;
    }
    return 1;
}

int tu_finish(const char *test_name)
{
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", test_name, tu_failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", test_name);
    return 0;
}
