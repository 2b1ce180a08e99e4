/* The system-info line users paste into bug reports: which BLAS really got linked, its threads, CPU features. */
#include <stdio.h>
#include <strings.h>

#include <cblas.h>

#include "nn/nn.h"

void nn_sysinfo(char *buf, size_t len, int n_threads)
{
    __builtin_cpu_init();
    snprintf(buf, len,
             "system_info: n_threads = %d | BLAS = %s (core %s) | BLAS threads = %d | "
             "SSE4.2 = %d | AVX = %d | AVX2 = %d | FMA = %d | AVX512F = %d",
             n_threads, openblas_get_config(), openblas_get_corename(), openblas_get_num_threads(),
             __builtin_cpu_supports("sse4.2") ? 1 : 0, __builtin_cpu_supports("avx") ? 1 : 0,
             __builtin_cpu_supports("avx2") ? 1 : 0, __builtin_cpu_supports("fma") ? 1 : 0,
             __builtin_cpu_supports("avx512f") ? 1 : 0);
}

/* Debian 12's OpenBLAS (0.3.21) does not recognise recent CPUs and falls back to one of its generic
 * pre-AVX2 kernels (seen here: "Prescott" on a Sapphire Rapids Xeon, sgemm 5-8x slower than the
 * AVX2/AVX-512 kernels the CPU runs). OpenBLAS picks its kernels once, when it is loaded, from
 * OPENBLAS_CORETYPE; this names the core the CPU supports when the choice fell that low, else NULL. */
const char *nn_blas_preferred_core(void)
{
    static const char *const generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                          "Atom", "Barcelona", "Opteron", "Katmai", "Northwood"};
    const char *core = openblas_get_corename();
    int fallback = 0;
    for (size_t i = 0; core && i < sizeof(generic) / sizeof(generic[0]); i++)
        fallback |= strcasecmp(core, generic[i]) == 0;
    if (!fallback) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}
