/* mpicheck.c — checked MPI calls and start-up (mpicheck.h). */
#include "mpicheck.h"

#include <stdio.h>
#include <string.h>

int lmd_mpi_check(int rc, const char *what, lmd_err *err) {
    if (rc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return lmd_errf(err, "%s: MPI error: %s", what, msg);
}

/* The agreement of lmd_mpi_any and lmd_mpi_agree: *found = some rank of comm has flag set; with
 * err, the lowest such rank's message replaces err on the others. Returns MPI's code, *what the
 * call that failed. */
static int agree_core(MPI_Comm comm, int flag, lmd_err *err, int *found, const char **what) {
    int rank, size;
    *found = 0;
    *what = "querying the communicator (MPI_Comm_rank, MPI_Comm_size)";
    int rc = MPI_Comm_rank(comm, &rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(comm, &size);
    if (rc != MPI_SUCCESS) return rc;
    /* lowest flagged rank, or size when none is */
    int mine = flag ? rank : size, first = size;
    *what = "agreeing on an error flag (MPI_Allreduce)";
    rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (rc != MPI_SUCCESS) return rc;
    *found = first < size;
    if (!*found || !err) return MPI_SUCCESS;
    char buf[LMD_ERR_LEN];
    memcpy(buf, err->msg, sizeof buf);
    buf[LMD_ERR_LEN - 1] = '\0';
    *what = "sharing an error message (MPI_Bcast)";
    rc = MPI_Bcast(buf, LMD_ERR_LEN, MPI_CHAR, first, comm);
    if (rc != MPI_SUCCESS) return rc;
    if (rank != first) lmd_errf(err, "(rank %d) %s", first, buf);
    return MPI_SUCCESS;
}

int lmd_mpi_any(MPI_Comm comm, int flag, lmd_err *err) {
    int found;
    const char *what;
    int rc = agree_core(comm, flag, err, &found, &what); /* before `what` is read */
    lmd_mpi_must(rc, what, __FILE__, __LINE__);
    return found;
}

int lmd_mpi_agree(MPI_Comm comm, int bad, lmd_err *err) {
    int found;
    const char *what;
    int rc = agree_core(comm, bad, err, &found, &what);
    if (lmd_mpi_check(rc, what, err)) return -1;
    return found ? -1 : 0;
}

int lmd_mpi_init(const char *cmd) {
    int provided = MPI_THREAD_SINGLE;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
        fprintf(stderr, "lmdisp %s: MPI_Init_thread failed (code %d)\n", cmd, rc);
        return -1;
    }
    if (provided < MPI_THREAD_FUNNELED) {
        fprintf(stderr,
                "lmdisp %s: the MPI library gives thread level %d, below MPI_THREAD_FUNNELED "
                "(%d) which lmdisp needs (its OpenMP threads run between MPI calls)\n",
                cmd, provided, MPI_THREAD_FUNNELED);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return -1;
    }
    LMD_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    return 0;
}

int lmd_mpi_finalize(int status) {
    int rc = MPI_Finalize();
    if (rc == MPI_SUCCESS) return status;
    /* MPI is finalized (or broken): no MPI_Error_string, no MPI_Abort */
    fprintf(stderr, "lmdisp: MPI_Finalize failed (MPI error code %d)\n", rc);
    return status ? status : 1;
}

void lmd_mpi_must(int rc, const char *call, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    const char *base = strrchr(file, '/');
    fprintf(stderr, "lmdisp: MPI call failed at %s:%d: %s: %s\n", base ? base + 1 : file, line,
            call, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}
