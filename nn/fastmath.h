/* Branch-free float exp and erf that compilers vectorise (glibc's expf/erff are scalar calls). Used by
 * softmax and GELU, which otherwise cost as much as the GEMMs around them.
 * nn_fast_expf: Cephes-style range reduction + degree-6 polynomial, max relative error ~1e-7 on
 * [-87, 88]. nn_fast_erff: odd rational approximation on [-4, 4] (erf is +-1 in float beyond), max
 * absolute error ~5e-7. Both are checked against libm in tests/test_ops.c. */
#pragma once
#include <stdint.h>
#include <string.h>

/* Elementwise hot loops are compiled three times (AVX-512, AVX2+FMA, baseline SSE2) and the CPU picks one
 * at load time, so a portable build still runs them at full vector width. Their files are also built
 * with -ffast-math (see CMakeLists.txt): it lets max/sum reductions vectorise; inputs are finite, and the
 * clamps below keep -inf (attention masks) working. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NN_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NN_VECTOR_CLONES
#endif

static inline float nn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x > 88.7f ? 88.7f : x;
    float y = x * 1.44269504088896341f + 0.5f;
    float t = (float)(int32_t)y; /* floor without a libm call, so the loop vectorises on plain SSE2 */
    float n = t > y ? t - 1.f : t;
    float r = x - n * 0.693359375f; /* ln 2 split in two for an exact first product */
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof(scale));
    return p * scale;
}

static inline float nn_fast_erff(float x)
{
    x = x < -4.f ? -4.f : x > 4.f ? 4.f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}
