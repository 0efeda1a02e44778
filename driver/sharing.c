#include "sharing.h"

#include "../kernel/log.h"
#include "../kernel/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Application ids name files: only what Spark puts in them (app-20261125151838-0000). */
static int safe_id(const char *id)
{
    if (id == NULL || id[0] == '\0' || id[0] == '.' || strlen(id) >= 128)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

void sharing_dir(char **env, const char *connection_file, char *dir, size_t len)
{
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, "SPARKERNEL_SESSIONS_DIR=", 24) == 0 && (*e)[24]) {
            snprintf(dir, len, "%s", *e + 24);
            return;
        }
    const char *slash = connection_file ? strrchr(connection_file, '/') : NULL;
    if (slash == NULL)
        snprintf(dir, len, "sparkernel-sessions");
    else
        snprintf(dir, len, "%.*s/sparkernel-sessions", (int)(slash - connection_file),
                 connection_file);
}

void sharing_kernel_id(const char *connection_file, char *id, size_t len)
{
    id[0] = '\0';
    if (connection_file == NULL)
        return;
    const char *base = strrchr(connection_file, '/');
    base = base ? base + 1 : connection_file;
    size_t n = strlen(base);
    if (strncmp(base, "kernel-", 7) == 0 && n > 12 && strcmp(base + n - 5, ".json") == 0)
        snprintf(id, len, "%.*s", (int)(n - 12), base + 7);
}

static void record_path(const char *dir, const char *app_id, char *path, size_t len)
{
    snprintf(path, len, "%s/%s.json", dir, app_id);
}

int sharing_publish(const char *dir, const struct sharing_entry *e)
{
    if (!safe_id(e->app_id))
        return -EINVAL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:b, s:f, s:f}", "app_id", e->app_id, "kernel_id",
                          e->kernel_id, "notebook", e->notebook, "pid", (json_int_t)e->pid, "busy",
                          e->busy, "since", e->since, "holding", e->holding);
    if (o == NULL)
        return -ENOMEM;
    char path[1024], tmp[1100];
    record_path(dir, e->app_id, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", dir, e->app_id, (int)getpid());
    int rc = json_dump_file(o, tmp, JSON_COMPACT) == 0 && rename(tmp, path) == 0 ? 0 : -errno;
    if (rc != 0)
        unlink(tmp);
    json_decref(o);
    return rc;
}

void sharing_remove(const char *dir, const char *app_id)
{
    if (!safe_id(app_id))
        return;
    char path[1024];
    record_path(dir, app_id, path, sizeof path);
    unlink(path);
}

int sharing_parse(const char *json, size_t len, struct sharing_entry *out)
{
    memset(out, 0, sizeof *out);
    json_t *o = json_loadb(json, len, 0, NULL);
    const char *app = NULL, *kid = NULL, *nb = NULL;
    json_int_t pid = 0;
    int busy = 0;
    double since = 0, holding = 0;
    int ok = o && json_unpack(o, "{s:s, s:s, s:s, s:I, s:b, s:F, s?F}", "app_id", &app, "kernel_id",
                              &kid, "notebook", &nb, "pid", &pid, "busy", &busy, "since", &since,
                              "holding", &holding) == 0;
    if (ok && safe_id(app) && pid > 0 && pid < (1 << 30)) {
        utf8_copy(out->app_id, sizeof out->app_id, app);
        utf8_copy(out->kernel_id, sizeof out->kernel_id, kid);
        utf8_copy(out->notebook, sizeof out->notebook, nb);
        out->pid = (pid_t)pid;
        out->busy = busy;
        out->since = since;
        out->holding = holding > 0 ? holding : 0;
    } else
        ok = 0;
    json_decref(o);
    return ok ? 0 : -1;
}

int sharing_lookup(const char *dir, const char *app_id, struct sharing_entry *out)
{
    if (dir == NULL || !safe_id(app_id))
        return 0;
    char path[1024], buf[4096];
    record_path(dir, app_id, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0 || sharing_parse(buf, (size_t)n, out) != 0 || strcmp(out->app_id, app_id) != 0)
        return 0;
    if (kill(out->pid, 0) != 0 && errno == ESRCH) {
        unlink(path); /* its kernel is gone */
        return 0;
    }
    return 1;
}

/* Whether app a (not mine, holding no core) waits for cores; *since as its record says. */
static int waits(const struct master_app *a, const char *dir, double *since)
{
    struct sharing_entry e;
    *since = 0;
    if (sharing_lookup(dir, a->id, &e)) {
        *since = e.since;
        return e.busy; /* a sparkernel session says itself whether it needs cores */
    }
    if (a->name && strncmp(a->name, "sparkernel", 10) == 0 && a->duration > 0 &&
        a->duration < SHARING_STARTING_MS)
        return 0; /* a session still starting: no cell of it waits yet */
    return a->state && strcmp(a->state, "WAITING") == 0;
}

int sharing_contended(const struct master_status *ms, const char *my_app, const char *dir,
                      char *who, size_t len, double *since)
{
    int found = 0;
    double first = 0; /* 0: no record says; such a waiter ranks first */
    for (size_t i = 0; ms && i < ms->napps; i++) {
        const struct master_app *a = &ms->apps[i];
        if (a->id == NULL || (my_app && strcmp(a->id, my_app) == 0) || a->cores > 0)
            continue;
        double t;
        if (!waits(a, dir, &t) || (found && (first == 0 || (t != 0 && t >= first))))
            continue;
        found = 1;
        first = t;
        snprintf(who, len, "%s \"%s\"", a->id, a->name ? a->name : "");
        utf8_trim(who);
    }
    if (since)
        *since = found ? first : 0;
    return found;
}

int sharing_fair_cores(const struct master_status *ms, const char *my_app, const char *dir)
{
    if (ms == NULL || ms->cores <= 0)
        return 1;
    int wanting = 1; /* mine */
    for (size_t i = 0; i < ms->napps; i++) {
        const struct master_app *a = &ms->apps[i];
        double t;
        if (a->id == NULL || (my_app && strcmp(a->id, my_app) == 0))
            continue;
        if (a->cores > 0 || waits(a, dir, &t))
            wanting++;
    }
    int fair = (ms->cores + wanting - 1) / wanting;
    return fair > 0 ? fair : 1;
}

int sharing_gives_next(const struct master_status *ms, const char *my_app, double my_holding,
                       int my_idle, const char *dir, double now, double idle_after)
{
    if (my_holding <= 0)
        my_holding = now;
    for (size_t i = 0; ms && i < ms->napps; i++) {
        const struct master_app *a = &ms->apps[i];
        struct sharing_entry e;
        if (a->id == NULL || a->cores <= 0 || (my_app && strcmp(a->id, my_app) == 0) ||
            !sharing_lookup(dir, a->id, &e))
            continue;
        int idle = !e.busy && idle_after > 0 && now - e.since >= idle_after;
        double theirs = e.holding > 0 ? e.holding : now;
        if (idle != my_idle) {
            if (idle)
                return 0; /* an idle session gives first */
            continue;
        }
        if (theirs < my_holding || (theirs == my_holding && my_app && strcmp(a->id, my_app) < 0))
            return 0;
    }
    return 1;
}

void sharing_holder(const struct master_app *a, const char *my_app, const char *dir, double now,
                    char *out, size_t len)
{
    struct sharing_entry e;
    if (my_app && a->id && strcmp(a->id, my_app) == 0)
        snprintf(out, len, "this notebook");
    else if (sharing_lookup(dir, a->id, &e)) {
        const char *who = e.notebook[0] ? e.notebook : e.kernel_id[0] ? e.kernel_id : "?";
        if (e.busy)
            snprintf(out, len, "sparkernel: %s (kernel %.8s), running a cell", who, e.kernel_id);
        else
            snprintf(out, len, "sparkernel: %s (kernel %.8s), idle %.0f s", who, e.kernel_id,
                     now - e.since > 0 ? now - e.since : 0);
    } else if (a->name && strncmp(a->name, "sparkernel", 10) == 0)
        snprintf(out, len, "sparkernel session (another Jupyter server)");
    else
        out[0] = '\0';
    utf8_trim(out); /* a long notebook name cut inside a character */
}
