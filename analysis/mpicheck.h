/* mpicheck.h — checked MPI: return codes turned into messages, agreement on failure across
 * ranks, and start-up that checks the thread level. lmdisp's rule: a failed MPI call is never
 * ignored. Where the caller can recover (the study file) it gets the error back
 * (lmd_mpi_check, with the communicator's handler set to MPI_ERRORS_RETURN); elsewhere a failure
 * in the middle of collectives stops the job (LMD_MPI), since other ranks would wait forever. */
#ifndef LMDISP_MPICHECK_H
#define LMDISP_MPICHECK_H

#include <mpi.h>

#include "util.h"

/* Checks an MPI return code: 0, or -1 with "what: MPI error text" in err. */
int lmd_mpi_check(int rc, const char *what, lmd_err *err);

/* Every rank of comm learns whether the flag is set on any rank: returns 1 on every rank when
 * some rank passed a nonzero flag, else 0 (one MPI_Allreduce; a failed MPI call aborts the job,
 * as LMD_MPI). The flag agreement of the runner (a failure, a stop request); lmd_mpi_agree
 * below also carries the message. Collective over comm. */
int lmd_mpi_any(MPI_Comm comm, int flag);

/* Every rank learns whether any rank failed (bad != 0): returns 0 when none did, else -1 on
 * every rank with err replaced by the lowest failing rank's message. Collective over comm. */
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
