/* hfcache.c — the offline Hugging Face hub cache (HF.md "HF hub cache layout"): hf:ORG/NAME[@REV]
 * to a snapshot directory, and every revision of a cached repo in training order. Nothing is
 * downloaded; a missing piece names its path and the command that would fetch it. */
#include "hfmodel.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int hub_is_model_form(const char *s) {
    if (!s) return 0;
    if (strncmp(s, "hf:", 3) == 0) return 1;
    char p[4200];
    if ((size_t)snprintf(p, sizeof p, "%s/config.json", s) >= sizeof p) return 0;
    return is_dir(s) && is_file(p);
}

/* The cache root, as huggingface_hub computes it: $HF_HUB_CACHE (or its old name
 * $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub. */
static int cache_root(char *out, size_t n, lmd_err *err) {
    const char *v;
    int w;
    if ((v = getenv("HF_HUB_CACHE")) && *v)
        w = snprintf(out, n, "%s", v);
    else if ((v = getenv("HUGGINGFACE_HUB_CACHE")) && *v)
        w = snprintf(out, n, "%s", v);
    else if ((v = getenv("HF_HOME")) && *v)
        w = snprintf(out, n, "%s/hub", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v)
        w = snprintf(out, n, "%s/huggingface/hub", v);
    else if ((v = getenv("HOME")) && *v)
        w = snprintf(out, n, "%s/.cache/huggingface/hub", v);
    else
        return lmd_errf(
            err, "cannot locate the HF hub cache: none of HF_HUB_CACHE, HF_HOME, HOME is set");
    if (w < 0 || (size_t)w >= n) return lmd_errf(err, "HF hub cache path too long");
    return 0;
}

typedef struct {
    char repo[512]; /* ORG/NAME */
    char rev[512];  /* REV ("main" when not given) */
    char dir[4096]; /* <cache>/models--ORG--NAME */
} hf_spec;

/* A name safe to join under a directory: no empty, "." or ".." component, no leading '/'. */
static int safe_relpath(const char *s) {
    if (!*s || *s == '/') return 0;
    const char *p = s;
    while (*p) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += len;
        if (*p == '/') p++;
    }
    return s[strlen(s) - 1] != '/';
}

static int parse_spec(const char *spec, hf_spec *h, lmd_err *err) {
    memset(h, 0, sizeof *h);
    if (strncmp(spec, "hf:", 3) != 0)
        return lmd_errf(err, "%s: not an hf:ORG/NAME[@REVISION] spec", spec);
    const char *r = spec + 3, *at = strchr(r, '@');
    size_t rl = at ? (size_t)(at - r) : strlen(r);
    if (rl == 0 || rl >= sizeof h->repo)
        return lmd_errf(err, "%s: expected hf:ORG/NAME[@REVISION]", spec);
    memcpy(h->repo, r, rl);
    const char *slash = strchr(h->repo, '/');
    if ((slash && strchr(slash + 1, '/')) || h->repo[0] == '/' || h->repo[rl - 1] == '/' ||
        strstr(h->repo, "..") || strstr(h->repo, "--"))
        return lmd_errf(err, "%s: \"%s\" is not a repository name ORG/NAME", spec, h->repo);
    snprintf(h->rev, sizeof h->rev, "%s", at ? at + 1 : "main");
    if (!*h->rev) return lmd_errf(err, "%s: empty revision after '@'", spec);
    char root[4096];
    if (cache_root(root, sizeof root, err)) return -1;
    char flat[1100];
    size_t fl = 0;
    for (const char *p = h->repo; *p; p++) {
        if (*p == '/')
            flat[fl++] = '-', flat[fl++] = '-';
        else
            flat[fl++] = *p;
    }
    flat[fl] = '\0';
    if ((size_t)snprintf(h->dir, sizeof h->dir, "%s/models--%s", root, flat) >= sizeof h->dir)
        return lmd_errf(err, "%s: cache path too long", spec);
    return 0;
}

static int is_sha(const char *s) {
    if (strlen(s) != 40) return 0;
    for (int i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return 1;
}

/* Reads refs/<rev> into sha (41 bytes). */
static int read_ref(const hf_spec *h, const char *rev, char *sha, lmd_err *err) {
    char p[5000];
    if (lmd_path(p, sizeof p, err, "%s/refs/%s", h->dir, rev)) return -1;
    char *buf = NULL;
    size_t n = 0;
    int rc = lmd_file_read(p, 127, &buf, &n, err);
    if (rc == LMD_FILE_MISSING)
        return lmd_errf(err,
                        "hf:%s@%s: revision not in the HF cache (no %s); fetch it with: "
                        "huggingface-cli download %s --revision %s",
                        h->repo, rev, p, h->repo, rev);
    if (rc) return lmd_err_prefix(err, "hf:%s@%s: reading the ref", h->repo, rev);
    while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
    rc = is_sha(buf) ? 0 : lmd_errf(err, "%s: does not hold a 40-hex commit (\"%.60s\")", p, buf);
    if (rc == 0) memcpy(sha, buf, 41);
    free(buf);
    return rc;
}

int hub_resolve(const char *spec, char *dir, size_t n, lmd_err *err) {
    return hub_resolve_file(spec, "config.json", dir, n, err);
}

int hub_resolve_file(const char *spec, const char *need, char *dir, size_t n, lmd_err *err) {
    if (strncmp(spec, "hf:", 3) != 0) {
        if (!is_dir(spec))
            return lmd_errf(err, "%s: not a directory (an HF model directory holds %s)", spec,
                            need);
        char cfg[4200];
        snprintf(cfg, sizeof cfg, "%s/%s", spec, need);
        if (!is_file(cfg))
            return lmd_errf(err, "%s: no %s (not an HF model directory)", spec, need);
        char real[4096];
        if (!realpath(spec, real)) return lmd_errf(err, "%s: %s", spec, strerror(errno));
        if ((size_t)snprintf(dir, n, "%s", real) >= n)
            return lmd_errf(err, "%s: path too long", spec);
        return 0;
    }
    hf_spec h;
    if (parse_spec(spec, &h, err)) return -1;
    if (strcmp(h.rev, "*") == 0)
        return lmd_errf(
            err, "%s: names a series of revisions, not one model (lmdisp track takes it)", spec);
    if (!safe_relpath(h.rev))
        return lmd_errf(err, "%s: \"%s\" is not a revision name", spec, h.rev);
    if (!is_dir(h.dir))
        return lmd_errf(err,
                        "%s: %s is not in the HF cache (no %s); fetch it with: huggingface-cli "
                        "download %s --revision %s",
                        spec, h.repo, h.dir, h.repo, h.rev);
    char sha[41];
    if (is_sha(h.rev))
        memcpy(sha, h.rev, 41);
    else if (read_ref(&h, h.rev, sha, err))
        return -1;
    char snap[5000];
    snprintf(snap, sizeof snap, "%s/snapshots/%s", h.dir, sha);
    if (!is_dir(snap))
        return lmd_errf(err,
                        "%s: snapshot %s is not in the HF cache (no %s); fetch it with: "
                        "huggingface-cli download %s --revision %s",
                        spec, sha, snap, h.repo, h.rev);
    char cfg[5100];
    snprintf(cfg, sizeof cfg, "%s/%s", snap, need);
    if (!is_file(cfg))
        return lmd_errf(err,
                        "%s: %s is not in the HF cache (a partial download?); fetch it with: "
                        "huggingface-cli download %s --revision %s",
                        spec, cfg, h.repo, h.rev);
    if ((size_t)snprintf(dir, n, "%s", snap) >= n) return lmd_errf(err, "%s: path too long", spec);
    return 0;
}

int hub_fetch_hint(const char *spec, char *out, size_t n) {
    if (strncmp(spec, "hf:", 3) != 0) return -1;
    hf_spec h;
    if (parse_spec(spec, &h, NULL)) return -1;
    snprintf(out, n, "huggingface-cli download %s --revision %s", h.repo, h.rev);
    return 0;
}

/* ---- series ---------------------------------------------------------------------------- */

/* stageN / ingredientN / stepN as whole components of the name (split at - _ /). */
static void parse_revision(hub_revision *r) {
    r->stage = 0;
    r->ingredient = 0;
    r->step = -1;
    r->is_main = strcmp(r->name, "main") == 0;
    const char *p = r->name;
    while (*p) {
        size_t len = strcspn(p, "-_/");
        char comp[256];
        snprintf(comp, sizeof comp, "%.*s", (int)len, p);
        static const char *keys[] = {"stage", "ingredient", "step"};
        for (int k = 0; k < 3; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(comp, keys[k], kl) != 0 || !comp[kl]) continue;
            const char *d = comp + kl;
            while (isdigit((unsigned char)*d)) d++;
            if (*d || d - (comp + kl) > 15) continue;
            long long v = atoll(comp + kl);
            if (k == 0)
                r->stage = (int)(v > 1000000 ? 1000000 : v);
            else if (k == 1)
                r->ingredient = (int)(v > 1000000 ? 1000000 : v);
            else
                r->step = v;
        }
        p += len;
        if (*p) p++;
    }
}

static int cmp_rev(const void *a, const void *b) {
    const hub_revision *x = a, *y = b;
    if (x->is_main != y->is_main) return x->is_main - y->is_main;
    if (x->stage != y->stage) return x->stage < y->stage ? -1 : 1;
    if (x->ingredient != y->ingredient) return x->ingredient < y->ingredient ? -1 : 1;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
    char **names;
    int n, cap;
} namelist;

/* Every regular file under refs/ (ref names may hold '/'), as paths relative to refs/. */
static int walk_refs(const char *base, const char *rel, namelist *l, lmd_err *err) {
    char p[5000];
    snprintf(p, sizeof p, "%s%s%s", base, *rel ? "/" : "", rel);
    DIR *d = opendir(p);
    if (!d) return lmd_errf(err, "%s: cannot list: %s", p, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[1024], full[6100];
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
            sizeof sub)
            continue;
        snprintf(full, sizeof full, "%s/%s", base, sub);
        if (is_dir(full)) {
            rc = walk_refs(base, sub, l, err);
        } else if (is_file(full)) {
            if (l->n == l->cap) {
                l->cap = l->cap ? 2 * l->cap : 32;
                char **nn = realloc(l->names, (size_t)l->cap * sizeof *nn);
                if (!nn) lmd_die("out of memory");
                l->names = nn;
            }
            l->names[l->n] = lmd_strdup(sub);
            if (!l->names[l->n]) lmd_die("out of memory");
            l->n++;
        }
    }
    closedir(d);
    return rc;
}

int hub_list_series(const char *spec_star, hub_revision **revs, int *n, char **skipped,
                    lmd_err *err) {
    *revs = NULL;
    *n = 0;
    if (skipped) *skipped = NULL;
    hf_spec h;
    if (parse_spec(spec_star, &h, err)) return -1;
    if (strcmp(h.rev, "*") != 0)
        return lmd_errf(err, "%s: a series is written hf:ORG/NAME@* (every cached revision)",
                        spec_star);
    char refs[4200];
    snprintf(refs, sizeof refs, "%s/refs", h.dir);
    if (!is_dir(refs))
        return lmd_errf(err,
                        "%s: %s has no cached revisions (no %s); fetch one with: huggingface-cli "
                        "download %s --revision REVISION",
                        spec_star, h.repo, refs, h.repo);
    namelist l = {0};
    if (walk_refs(refs, "", &l, err)) {
        for (int i = 0; i < l.n; i++) free(l.names[i]);
        free(l.names);
        return -1;
    }
    qsort(l.names, (size_t)l.n, sizeof *l.names, cmp_str);
    hub_revision *r = lmd_calloc((size_t)l.n + 1, sizeof *r);
    int m = 0;
    size_t sk_len = 0, sk_cap = 1;
    char *sk = lmd_calloc(1, 1);
    for (int i = 0; i < l.n; i++) {
        hub_revision x;
        memset(&x, 0, sizeof x);
        snprintf(x.name, sizeof x.name, "%s", l.names[i]);
        parse_revision(&x);
        if (x.step < 0 && !x.is_main) {
            size_t len = strlen(x.name);
            if (sk_len + len + 2 > sk_cap) {
                sk_cap = 2 * (sk_len + len + 2);
                char *ns = realloc(sk, sk_cap);
                if (!ns) lmd_die("out of memory");
                sk = ns;
            }
            memcpy(sk + sk_len, x.name, len);
            sk_len += len;
            sk[sk_len++] = '\n';
            sk[sk_len] = '\0';
        } else {
            snprintf(x.spec, sizeof x.spec, "hf:%s@%s", h.repo, x.name);
            r[m++] = x;
        }
        free(l.names[i]);
    }
    free(l.names);
    qsort(r, (size_t)m, sizeof *r, cmp_rev);
    if (skipped)
        *skipped = sk;
    else
        free(sk);
    if (m == 0) {
        free(r);
        if (skipped) {
            free(*skipped);
            *skipped = NULL;
        }
        return lmd_errf(err, "%s: no revision under %s names a training step (nor main)", spec_star,
                        refs);
    }
    *revs = r;
    *n = m;
    return 0;
}
