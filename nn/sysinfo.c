/* The system-info line users paste into bug reports: which BLAS really got linked, its threads, CPU features. */
#include <stdio.h>

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
