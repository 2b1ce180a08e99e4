/* OpenBLAS set-up, once per process: which kernels, how many threads; and the system-info line users paste
 * into bug reports (which BLAS really got linked, its core, its threads, the CPU's features). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <cblas.h>

#include "nn/nn.h"

/* OpenBLAS's DYNAMIC_ARCH dispatch: exported by Debian's libopenblas, not declared in cblas.h. Weak, so a
 * BLAS without them still links and simply keeps its kernels. */
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));

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
    static const char *const generic[] = {"Prescott", "Core2",     "Penryn",  "Dunnington", "Nehalem",
                                          "Atom",     "Barcelona", "Opteron", "Katmai",     "Northwood"};
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

/* When OpenBLAS fell back to generic kernels on a CPU it does not know, re-run its dispatch with the core the
 * CPU supports (OPENBLAS_CORETYPE is set for that only if the user has not set it: theirs always wins). Runs
 * before vidcap's first GEMM, while OpenBLAS's own threads are idle. */
static void select_kernels_once(void)
{
    const char *core = getenv("OPENBLAS_CORETYPE") ? NULL : nn_blas_preferred_core();
    if (core && gotoblas_dynamic_init && gotoblas_dynamic_quit && setenv("OPENBLAS_CORETYPE", core, 0) == 0) {
        gotoblas_dynamic_quit();
        gotoblas_dynamic_init();
    }
    openblas_set_num_threads(1); /* vidcap's own -t threads each run single-threaded GEMMs */
}

void nn_blas_single_threaded(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, select_kernels_once);
}
