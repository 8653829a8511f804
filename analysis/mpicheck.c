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

int lmd_mpi_agree(MPI_Comm comm, int bad, lmd_err *err) {
    int rank, size;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return lmd_errf(err, "cannot query the MPI communicator");
    /* lowest failing rank, or size when none failed */
    int mine = bad ? rank : size, first = size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (lmd_mpi_check(rc, "agreeing on an error flag (MPI_Allreduce)", err)) return -1;
    if (first == size) return 0;
    char buf[LMD_ERR_LEN];
    memcpy(buf, err ? err->msg : "", err ? sizeof buf : 1);
    if (!err) buf[0] = '\0';
    buf[LMD_ERR_LEN - 1] = '\0';
    rc = MPI_Bcast(buf, LMD_ERR_LEN, MPI_CHAR, first, comm);
    if (lmd_mpi_check(rc, "sharing an error message (MPI_Bcast)", err)) return -1;
    if (err && rank != first) lmd_errf(err, "(rank %d) %s", first, buf);
    return -1;
}

int lmd_mpi_any(MPI_Comm comm, int flag) {
    int any = flag != 0;
    LMD_MPI(MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_LOR, comm));
    return any;
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
