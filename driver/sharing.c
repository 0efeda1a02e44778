#include "sharing.h"
#include "driver.h"

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

const char *sharing_strerror(int code)
{
    switch (code) {
    case SHARING_OK:
        return "ok";
    case SHARING_EID:
        return "the application id cannot name a file";
    case SHARING_EDIR:
        return "the sessions directory cannot be created";
    case SHARING_ENOMEM:
        return "out of memory";
    case SHARING_EWRITE:
        return "the record cannot be written";
    }
    return "unknown sharing error";
}

int sharing_publish(const char *dir, const struct sharing_entry *e)
{
    if (!safe_id(e->app_id))
        return SHARING_EID;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return SHARING_EDIR;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:b, s:f, s:f}", "app_id", e->app_id, "kernel_id",
                          e->kernel_id, "notebook", e->notebook, "pid", (json_int_t)e->pid, "busy",
                          e->busy, "since", e->since, "holding", e->holding);
    if (o == NULL)
        return SHARING_ENOMEM;
    char path[1024], tmp[1100];
    record_path(dir, e->app_id, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", dir, e->app_id, (int)getpid());
    int rc = json_dump_file(o, tmp, JSON_COMPACT) == 0 && rename(tmp, path) == 0 ? SHARING_OK
                                                                                 : SHARING_EWRITE;
    if (rc != SHARING_OK) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    }
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

/* ---------- the session's side: holding, waiting, yielding, the elastic share ---------- */

/* What an answer of the master says about sharing: since when this session has held cores
 * (published in its record, so the sessions can tell whose turn it is to give them back)
 * and since when another application has waited for them (waiting: one does; since: its
 * record's wall clock, 0 when it does not say). Returns whether one waits while this
 * session holds cores. */
static int share_track(struct spark *s, const struct master_app *mine, int waiting, double since)
{
    int holds = mine != NULL && mine->cores > 0;
    if (holds != (s->holding_since > 0)) {
        s->holding_since = holds ? spark_wall() : 0;
        session_publish_record(s);
    }
    if (holds && waiting) {
        /* How long the waiter has waited, as its record says (this session may have held
         * its cores through another's turn just before), else as seen from here. */
        double waited = since > 0 ? spark_wall() - since : 0;
        if (waited > 0)
            s->contended_since = spark_now() - waited;
        else if (s->contended_since == 0)
            s->contended_since = spark_now();
        return 1;
    }
    s->contended_since = 0;
    return 0;
}

/* Which rule shares the cluster for this session: one decision, for the elastic share
 * (share_cluster) and for %spark status (share_rule_text). */
enum share_rule share_rule_of(const struct settings *st)
{
    if (!settings_is_cluster(st))
        return SHARE_NONE;
    if (!settings_get_bool(st, "spark.dynamicAllocation.enabled", 1))
        return SHARE_STATIC;
    if (settings_get(st, "spark.cores.max"))
        return SHARE_CORES_MAX;
    if (settings_source_of(st, "spark.dynamicAllocation.maxExecutors") > SOURCE_DERIVED)
        return SHARE_MAX_EXECUTORS;
    if (!settings_get_bool(st, "sparkernel.share.elastic", 1))
        return SHARE_HALF;
    if (!settings_get_bool(st, "spark.decommission.enabled", 1))
        return SHARE_NO_DECOMMISSION;
    return SHARE_ELASTIC;
}

/* The rule in one sentence, with why (for %spark status). */
const char *share_rule_text(const struct spark *s, char *buf, size_t len)
{
    const struct settings *st = s->settings;
    const char *key = NULL;
    switch (share_rule_of(st)) {
    case SHARE_NONE:
        snprintf(buf, len, "Share: none (master %s is not a cluster).",
                 settings_get(st, "spark.master") ?: "?");
        break;
    case SHARE_STATIC:
        snprintf(buf, len,
                 "Share: fixed (spark.dynamicAllocation.enabled=false): the session keeps "
                 "the executors it was given until it stops.");
        break;
    case SHARE_CORES_MAX:
        key = "spark.cores.max";
        /* fall through */
    case SHARE_MAX_EXECUTORS:
        key = key ? key : "spark.dynamicAllocation.maxExecutors";
        snprintf(buf, len,
                 "Share: fixed at %s=%s (%s); idle executors still go back when another "
                 "application waits.",
                 key, settings_get(st, key), settings_source_name(settings_source_of(st, key)));
        break;
    case SHARE_HALF:
        snprintf(buf, len,
                 "Share: half of the cluster (sparkernel.share.elastic=false), "
                 "spark.dynamicAllocation.maxExecutors=%s.",
                 settings_get(st, "spark.dynamicAllocation.maxExecutors") ?: "?");
        break;
    case SHARE_NO_DECOMMISSION:
        snprintf(buf, len,
                 "Share: up to every core, given back only between cells "
                 "(spark.decommission.enabled=false: a running executor cannot finish its "
                 "tasks and leave).");
        break;
    case SHARE_ELASTIC:
        snprintf(buf, len,
                 "Share: elastic: up to every core of the cluster while no other "
                 "application waits; down to a fair share (the cluster's cores divided among "
                 "the applications that hold or want cores) at the next task boundary when "
                 "one does%s.",
                 s->shrunk ? " (now: shrunk, another application waits)" : "");
        break;
    }
    return buf;
}

/* The elastic share, at every answer of the master: while another application waits for
 * cores, this session is held to a fair share (the cluster's cores divided among the
 * applications that hold or want cores). Executors above it are decommissioned (they finish
 * their running tasks, take no new one and exit); a session at or under it asks the master
 * for no more than that, so the cores another one gives back go to the waiter and not to
 * whichever application registered first (the master serves those wanting cores in the
 * order they registered: without the cap, two busy notebooks passed their cores to each
 * other while a third, registered last, waited for ever). Sent on the control pipe, which
 * the executor reads while a cell runs; again every 2 s while it lasts (dynamic allocation
 * raises its request as a backlog lasts). When nobody waits any more, the session may grow
 * again. */
static void share_cluster(struct kernel *k, const struct master_status *ms,
                          const struct master_app *mine, int waiting, const char *who)
{
    struct spark *s = spark_of(k);
    if (mine == NULL || share_rule_of(s->settings) != SHARE_ELASTIC)
        return;
    if (!waiting) {
        json_t *grow = s->shrunk ? json_pack("{s:s}", "type", "spark_grow") : NULL;
        if (grow && kernel_control_executor(k, grow) == 0)
            s->shrunk = 0;
        json_decref(grow);
        return;
    }
    if (spark_now() < s->next_share_order)
        return;
    int fair = sharing_fair_cores(ms, s->app_id, s->sessions_dir);
    int per = settings_get_int(s->settings, "spark.executor.cores", 1);
    int keep = fair / (per > 0 ? per : 1);
    json_t *cmd = json_pack("{s:s, s:i}", "type", "spark_shrink", "keep", keep > 0 ? keep : 1);
    if (cmd && kernel_control_executor(k, cmd) == 0) {
        if (mine->cores > fair && !s->shrunk)
            log_info("%s waits: giving back %d of %d cores at the next task boundary (fair "
                     "share %d)",
                     who, mine->cores - fair, mine->cores, fair);
        s->shrunk = 1;
        s->next_share_order = spark_now() + 2.0;
    }
    json_decref(cmd);
}

/* While the notebook is idle and its session holds executors, the master is asked every
 * 2 s whether another application waits for cores. If one does, the session gives its
 * executors back now rather than after Spark's idle timeout: when the notebook has been
 * idle for sparkernel.yield.after.s, or, between two cells of a busy notebook, when the
 * other one has waited sparkernel.share.turn.s and this session is the sparkernel session
 * that has held cores longest (so busy notebooks take turns, one release at a time). */
int share_yield_armed(const struct spark *s)
{
    /* Without dynamic allocation an application's demand is fixed: an executor given back
     * is launched again for it by the master (first registered, first served), so a release
     * would only churn executors, every poll, while the waiting application gets nothing. */
    return !s->cell_active && s->state == S_READY && !s->yielded && s->next_yield_poll > 0 &&
           s->master_ui[0] && settings_is_cluster(s->settings) &&
           settings_get_bool(s->settings, "spark.dynamicAllocation.enabled", 1) &&
           (settings_get_int(s->settings, "sparkernel.yield.after.s", 5) > 0 ||
            settings_get_int(s->settings, "sparkernel.share.turn.s", 1) > 0);
}

int share_observe(struct kernel *k, const struct master_status *ms, const struct master_app **mine,
                  char *who, size_t len)
{
    struct spark *s = spark_of(k);
    *mine = master_find_app(ms, s->app_id);
    /* Whether another application waits, read once (the records are files) for both the
     * turns and the elastic share. */
    double since = 0;
    who[0] = '\0';
    int waiting = sharing_contended(ms, s->app_id, s->sessions_dir, who, len, &since);
    int contended = share_track(s, *mine, waiting, since);
    share_cluster(k, ms, *mine, waiting, who);
    return contended;
}

void share_on_yield_poll(void *ctx, int status, long code, const char *body, size_t len,
                         const char *error)
{
    (void)code, (void)error;
    struct kernel *k = spark_call_take(ctx, status);
    if (k == NULL)
        return;
    struct spark *s = spark_of(k);
    s->yield_in_flight = 0;
    struct master_status *ms = NULL;
    if (!share_yield_armed(s) || status != HTTP_OK || master_parse(body, len, &ms) != MASTER_OK)
        return;
    const struct master_app *mine;
    char who[400];
    int contended = share_observe(k, ms, &mine, who, sizeof who);
    int after = settings_get_int(s->settings, "sparkernel.yield.after.s", 5);
    int turn = settings_get_int(s->settings, "sparkernel.share.turn.s", 1);
    const char *why = NULL;
    int idle = after > 0 && spark_wall() - s->idle_since >= after;
    if (mine == NULL || mine->cores == 0)
        s->yielded = 1; /* nothing to give back until the next cell */
    else if (contended && (idle || (turn > 0 && spark_now() - s->contended_since >= turn)) &&
             sharing_gives_next(ms, s->app_id, s->holding_since, idle, s->sessions_dir,
                                spark_wall(), after))
        why = idle ? "the notebook is idle" : "this session has held its cores longest";
    if (why) {
        /* Asked again at the next poll while cores remain (an executor that registered
         * late); the release of one already going is a no-op in Spark. */
        if (!s->give_back_sent)
            log_info("%s and %s waits for cores: giving back %d cores", why, who, mine->cores);
        s->give_back_sent = 1;
        spark_send(k, json_pack("{s:s}", "type", "spark_give_back"));
    }
    master_status_destroy(&ms);
}
