#include "blascore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

char *openblas_get_corename(void);

/* generic or pre-AVX2 cores OpenBLAS falls back to on CPUs it does not recognise */
static int generic_core(const char *name) {
    static const char *const GENERIC[] = {"prescott",  "core2",  "nehalem", "katmai", "coppermine",
                                          "northwood", "banias", "atom",    "unknown"};
    for (size_t i = 0; i < sizeof GENERIC / sizeof GENERIC[0]; i++)
        if (!strcasecmp(name, GENERIC[i])) return 1;
    return 0;
}

void lmd_blas_core_select(char **argv) {
#if defined(__x86_64__) && defined(__GNUC__)
    const char *keep = getenv("LMDISP_BLAS_CORE");
    if (getenv("OPENBLAS_CORETYPE") || (keep && !strcmp(keep, "keep")) ||
        getenv("LMDISP_BLAS_REEXEC"))
        return;
    const char *core = openblas_get_corename();
    if (!core || !generic_core(core)) return;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("LMDISP_BLAS_REEXEC", core, 1); /* once only; also says what was detected */
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the generic kernels */
    unsetenv("OPENBLAS_CORETYPE");
#else
    (void)argv;
#endif
}
