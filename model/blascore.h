/* blascore.h — picks OpenBLAS's kernels for CPUs that its runtime detection does not know.
 *
 * Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) falls back to its generic "Prescott" kernels on CPUs
 * newer than itself (e.g. model 207, Emerald Rapids): sgemm then runs at ~25 instead of ~120
 * GFLOP/s per core. OpenBLAS reads OPENBLAS_CORETYPE only when the library loads, so a process
 * that finds the generic core on a CPU with AVX-512 (or AVX2+FMA) sets OPENBLAS_CORETYPE to
 * SkylakeX (or Haswell) and executes itself again, once, before doing anything else. Nothing
 * happens when OPENBLAS_CORETYPE is already set, when LMDISP_BLAS_CORE=keep, or when OpenBLAS
 * detected a core it knows. docs/PERFORMANCE.md has the measurements. */
#ifndef LMDISP_BLASCORE_H
#define LMDISP_BLASCORE_H

/* Call first thing in main(); returns only if no re-execution was needed (or it failed). */
void lmd_blas_core_select(char **argv);

#endif
