/* slurmquery.c — talking to Slurm for a study (slurm.h): running its commands without a shell,
 * MaxArraySize, the job table DIR/slurm/jobs.tsv, and one batched squeue/sacct query of the
 * study's array tasks (`status`, resubmission). */
#include "slurm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"

/* ------------------------------------------------------------------ commands */

int lmd_run_capture(char *const argv[], char **out, int quiet) {
    if (out) *out = NULL;
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (quiet == 2) {
            dup2(1, 2);
        } else if (quiet) {
            int dn = open("/dev/null", O_WRONLY);
            if (dn >= 0) dup2(dn, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 1 << 20, n = 0;
    char *buf = lmd_calloc(cap + 1, 1);
    for (;;) {
        ssize_t r = read(fd[0], buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == cap) { /* drain the rest so the child is not blocked */
            char sink[4096];
            while (read(fd[0], sink, sizeof sink) > 0) {}
            break;
        }
    }
    close(fd[0]);
    buf[n] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    int rc = WIFEXITED(status) ? WEXITSTATUS(status)
                               : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (rc == 127) {
        free(buf);
        return -1;
    }
    if (out)
        *out = buf;
    else
        free(buf);
    return rc;
}

int lmd_slurm_max_array_size(void) {
    const char *env = getenv("LMDISP_MAX_ARRAY_SIZE");
    if (env && atoi(env) > 0) return atoi(env);
    char *argv[] = {"scontrol", "show", "config", NULL};
    char *out = NULL;
    int rc = lmd_run_capture(argv, &out, 1);
    int v = 1001;
    if (rc == 0 && out) {
        const char *p = strstr(out, "MaxArraySize");
        int x;
        if (p && sscanf(p, "MaxArraySize = %d", &x) == 1 && x > 0) v = x;
    }
    free(out);
    return v;
}

/* ------------------------------------------------------------------ job table */

int lmd_slurm_jobs_read(const char *dir, lmd_slurm_job **jobs, size_t *n) {
    *jobs = NULL;
    *n = 0;
    char path[4300];
    lmd_pathf(path, "%s/slurm/jobs.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || !strncmp(line, "round\t", 6)) continue;
        lmd_slurm_job j;
        memset(&j, 0, sizeof j);
        if (sscanf(line, "%d\t%15s\t%31s\t%d\t%d", &j.round, j.kind, j.job_id, &j.first_task,
                   &j.n_tasks) != 5)
            continue;
        if (strspn(j.job_id, "0123456789") != strlen(j.job_id)) continue; /* only digits */
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            lmd_slurm_job *nj = realloc(*jobs, cap * sizeof *nj);
            if (!nj) break;
            *jobs = nj;
        }
        (*jobs)[(*n)++] = j;
    }
    fclose(f);
    return 0;
}

int lmd_slurm_jobs_append(const char *dir, const lmd_slurm_job *j, lmd_err *err) {
    char path[4300];
    lmd_pathf(path, "%s/slurm/jobs.tsv", dir);
    int fresh = access(path, F_OK) != 0;
    FILE *f = fopen(path, "a");
    if (!f) return lmd_errf(err, "cannot append to %s: %s", path, strerror(errno));
    if (fresh) fprintf(f, "round\tkind\tjob_id\tfirst_task\tn_tasks\n");
    fprintf(f, "%d\t%s\t%s\t%d\t%d\n", j->round, j->kind, j->job_id, j->first_task, j->n_tasks);
    int ok = fclose(f) == 0;
    return ok ? 0 : lmd_errf(err, "cannot write %s: %s", path, strerror(errno));
}

/* "123_4" -> job 123 task 4; plain "123" or "123_[1-3%2]" -> task -1 */
static int split_id(const char *s, char *job, size_t nj, int *task) {
    size_t d = strspn(s, "0123456789");
    if (d == 0 || d >= nj) return -1;
    memcpy(job, s, d);
    job[d] = '\0';
    *task = -1;
    if (s[d] == '_' && isdigit((unsigned char)s[d + 1])) {
        char *end;
        long t = strtol(s + d + 1, &end, 10);
        if (*end == '\0' || *end == '|' || *end == '.') *task = (int)t;
        if (*end == '.') return -1; /* a job step, e.g. 123_4.batch */
    } else if (s[d] == '.') {
        return -1;
    }
    return 0;
}

static void set_state(lmd_slurm_task_state *st, size_t n_st, const lmd_slurm_job *jobs,
                      size_t n_jobs, const char *job, int task, const char *state,
                      const char *reason, int overwrite) {
    for (size_t j = 0; j < n_jobs; j++) {
        if (strcmp(jobs[j].job_id, job) != 0 || strcmp(jobs[j].kind, "array") != 0) continue;
        for (size_t i = 0; i < n_st; i++) {
            if (st[i].round != jobs[j].round) continue;
            int t = st[i].task - jobs[j].first_task;
            if (t < 0 || t >= jobs[j].n_tasks) continue;
            if (task >= 0 && t != task) continue;
            if (st[i].state[0] && !overwrite) continue;
            snprintf(st[i].state, sizeof st[i].state, "%s", state);
            snprintf(st[i].reason, sizeof st[i].reason, "%s", reason ? reason : "");
        }
    }
}

size_t lmd_slurm_query(const char *dir, lmd_slurm_task_state **out, char *source, size_t n_source) {
    *out = NULL;
    if (source && n_source) source[0] = '\0';
    lmd_slurm_job *jobs;
    size_t n_jobs;
    if (lmd_slurm_jobs_read(dir, &jobs, &n_jobs) || n_jobs == 0) {
        free(jobs);
        return 0;
    }
    /* one state slot per (round, task) of every array job */
    size_t n_st = 0;
    for (size_t j = 0; j < n_jobs; j++)
        if (!strcmp(jobs[j].kind, "array")) n_st += (size_t)jobs[j].n_tasks;
    lmd_slurm_task_state *st = lmd_calloc(n_st ? n_st : 1, sizeof *st);
    size_t k = 0;
    for (size_t j = 0; j < n_jobs; j++)
        if (!strcmp(jobs[j].kind, "array"))
            for (int t = 0; t < jobs[j].n_tasks; t++) {
                st[k].round = jobs[j].round;
                st[k].task = jobs[j].first_task + t;
                k++;
            }
    char ids[8192] = "";
    for (size_t j = 0; j < n_jobs; j++)
        if (!strcmp(jobs[j].kind, "array")) {
            size_t o = strlen(ids);
            snprintf(ids + o, sizeof ids - o, "%s%s", ids[0] ? "," : "", jobs[j].job_id);
        }
    int answered = 0;
    /* finished tasks: sacct (needs accounting; silently absent otherwise) */
    char *argv_sacct[] = {"sacct", "-n", "-P", "-X", "-j", ids, "--format=JobID,State,Reason",
                          NULL};
    char *txt = NULL;
    int have_sacct = 0;
    /* sacct exits 0 and says so on stderr when accounting is disabled: look at both */
    if (lmd_run_capture(argv_sacct, &txt, 2) == 0 && txt && !strstr(txt, "disabled") &&
        !strstr(txt, "rror")) {
        have_sacct = 1;
        for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
            char job[32], state[64] = "", reason[128] = "";
            int task;
            char *bar = strchr(line, '|');
            if (!bar || split_id(line, job, sizeof job, &task) || task < 0) continue;
            sscanf(bar + 1, "%63[^|]|%127[^\n]", state, reason);
            state[strcspn(state, " ")] = '\0'; /* "CANCELLED by 0" */
            set_state(st, n_st, jobs, n_jobs, job, task, state, reason, 1);
        }
    }
    free(txt);
    /* live tasks: squeue, one line per array element (-r) */
    /* -t all: finished tasks too, for as long as slurmctld remembers them (MinJobAge) */
    char *argv_sq[] = {"squeue", "-h", "-r", "-t", "all", "-j", ids, "-o", "%i|%T|%r", NULL};
    txt = NULL;
    /* squeue exits 1 with "Invalid job id specified" when every id has been purged */
    int sq = lmd_run_capture(argv_sq, &txt, 2);
    if (txt && (sq == 0 || strstr(txt, "Invalid job id"))) {
        answered = 1;
        for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
            char job[32], state[64] = "", reason[128] = "";
            int task;
            char *bar = strchr(line, '|');
            if (!bar || split_id(line, job, sizeof job, &task)) continue;
            sscanf(bar + 1, "%63[^|]|%127[^\n]", state, reason);
            set_state(st, n_st, jobs, n_jobs, job, task, state, reason, 1);
        }
    }
    free(txt);
    free(jobs);
    if (!answered && !have_sacct) {
        free(st);
        return 0;
    }
    if (source) snprintf(source, n_source, "%s", have_sacct ? "squeue+sacct" : "squeue");
    *out = st;
    return n_st;
}

static int live_state(const char *st) {
    static const char *const LIVE[] = {"PENDING",     "RUNNING",     "REQUEUED",   "REQUEUE_HOLD",
                                       "REQUEUE_FED", "CONFIGURING", "COMPLETING", "SUSPENDED",
                                       "RESIZING",    "SIGNALING",   "STAGE_OUT",  "RESV_DEL_HOLD"};
    for (size_t i = 0; i < sizeof LIVE / sizeof LIVE[0]; i++)
        if (!strcmp(st, LIVE[i])) return 1;
    return 0;
}

int lmd_slurm_live_tasks(const char *dir) {
    lmd_slurm_task_state *st = NULL;
    char source[32];
    size_t n = lmd_slurm_query(dir, &st, source, sizeof source);
    int live = 0;
    for (size_t i = 0; i < n; i++) live += live_state(st[i].state);
    free(st);
    return live;
}

int lmd_slurm_refuse_live(const char *dir, int force) {
    int n_live = lmd_slurm_live_tasks(dir);
    if (!n_live || force) return 0;
    fprintf(stderr,
            "lmdisp resubmit: %d task(s) of %s are still queued or running in Slurm "
            "(see lmdisp status %s); wait, scancel them, or use --force\n",
            n_live, dir, dir);
    return 2;
}
