/* mpicheck.h — checked MPI: return codes turned into messages, agreement on failure across
 * ranks, and start-up that checks the thread level. lmdisp's rule: a failed MPI call is never
 * ignored. Where the caller can recover (the study file) it gets the error back
 * (lmd_mpi_check, lmd_mpi_agree, with the communicator's handler set to MPI_ERRORS_RETURN);
 * elsewhere a failure in the middle of collectives stops the job (LMD_MPI, lmd_mpi_any), since
 * other ranks would wait forever. */
#ifndef LMDISP_MPICHECK_H
#define LMDISP_MPICHECK_H

#include <mpi.h>

#include "util.h"

/* Checks an MPI return code: 0, or -1 with "what: MPI error text" in err. */
int lmd_mpi_check(int rc, const char *what, lmd_err *err);

/* The flag agreement of lmdisp: every rank of comm learns whether any rank set its flag.
 * Returns 1 on every rank when some rank passed a nonzero flag, else 0. With err (not NULL on
 * every rank, or on none), err is then replaced on the other ranks by the lowest flagged rank's
 * message, "(rank R) ...", so whichever rank reports names the real cause. A failed MPI call
 * aborts the job, as LMD_MPI does (the runner cannot recover from it). Collective over comm. */
int lmd_mpi_any(MPI_Comm comm, int flag, lmd_err *err);

/* The same agreement for callers that recover from MPI errors (the study file): returns 0 when
 * no rank set bad, else -1 on every rank with err replaced by the lowest failing rank's
 * message; a failed MPI call is returned as -1 with MPI's text in err. Collective over comm. */
int lmd_mpi_agree(MPI_Comm comm, int bad, lmd_err *err);

/* MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread calls MPI; OpenMP and OpenBLAS
 * threads never do), checking the return code and the level provided, and setting
 * MPI_ERRORS_RETURN on MPI_COMM_WORLD so that LMD_MPI, not the library, reports a failure with
 * the call and its place. cmd names the command in messages. Returns 0, or -1 after printing
 * why (MPI is then not usable; the caller exits). */
int lmd_mpi_init(const char *cmd);

/* MPI_Finalize, checked: returns status, or 1 (after a message) when status was 0 and
 * MPI_Finalize failed. The last MPI call of a command: `return lmd_mpi_finalize(status);`. */
int lmd_mpi_finalize(int status);

/* Runs an MPI call; on failure prints "lmdisp: MPI call failed at FILE:LINE: CALL: MPI's text"
 * and aborts the job (MPI_Abort(MPI_COMM_WORLD, 1)). */
#define LMD_MPI(call) lmd_mpi_must((call), #call, __FILE__, __LINE__)
void lmd_mpi_must(int rc, const char *call, const char *file, int line);

#endif
