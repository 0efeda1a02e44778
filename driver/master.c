/* master: the standalone master's web UI as the driver sees it: its /json/ state (parsed into
 * a struct that borrows strings from the parsed document), the "can this executor ever run"
 * verdict, a worker table, and the kill form. Field names follow Spark's
 * JsonProtocol.writeMasterState / writeWorkerInfo / writeApplicationInfo. */
#include "master.h"

#include "../kernel/log.h"
#include "../kernel/utf8.h"

#include "http.h"
#include "jfield.h"
#include "render.h"
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *master_strerror(int code)
{
    switch (code) {
    case MASTER_OK:
        return "ok";
    case MASTER_EUNREACHABLE:
        return "the Spark master's web UI cannot be reached (no connection or no answer in time)";
    case MASTER_EHTTP:
        return "the Spark master's web UI gave an unexpected HTTP answer";
    case MASTER_EJSON:
        return "the Spark master's /json/ answer is not the JSON it should be";
    case MASTER_ENOTALIVE:
        return "the Spark master is not ALIVE (a standby or recovering master cannot schedule)";
    case MASTER_ENOWORKER:
        return "the Spark master has no alive worker";
    case MASTER_ETOOBIG:
        return "no alive worker is large enough for one executor of the requested size";
    case MASTER_ENOAPP:
        return "the application is not active on the Spark master";
    case MASTER_EKILLOFF:
        return "the Spark master refuses kill requests (spark.ui.killEnabled is false)";
    case MASTER_EKILL:
        return "the application is still active on the Spark master after the kill request";
    case MASTER_EARG:
        return "invalid argument (URL, timeout or application id)";
    case MASTER_ENOMEM:
        return "out of memory";
    }
    return "unknown master error";
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* The checked getters (jfield.h), with one log line naming where the bad field is. */
static int rejected(const char *where, const char *why)
{
    log_warn("master /json/: %s %s", where, why);
    return MASTER_EJSON;
}

/* A string field. Absent or null: "" unless required. Borrowed from obj. */
static int get_str(json_t *obj, const char *key, int required, const char **dst, const char *where)
{
    char why[160];
    if (jfield_str(obj, key, required, dst, why, sizeof why) != JFIELD_OK)
        return rejected(where, why);
    if (*dst == NULL)
        *dst = "";
    return MASTER_OK;
}

/* An integer field within [min, max]. Absent or null: *present = 0 and *dst untouched,
 * unless required. */
static int get_int(json_t *obj, const char *key, int required, long long min, long long max,
                   long long *dst, int *present, const char *where)
{
    char why[160];
    if (jfield_int(obj, key, required, min, max, dst, present, why, sizeof why) != JFIELD_OK)
        return rejected(where, why);
    return MASTER_OK;
}

/* An array field; absent or null is NULL unless required. */
static int get_array(json_t *obj, const char *key, int required, json_t **dst, const char *where)
{
    char why[160];
    if (jfield_array(obj, key, required, dst, why, sizeof why) != JFIELD_OK)
        return rejected(where, why);
    return MASTER_OK;
}

static long long clamp_nonneg(long long v)
{
    return v < 0 ? 0 : v;
}

static int parse_worker(json_t *w, size_t i, struct master_worker *out)
{
    char where[48];
    snprintf(where, sizeof where, "workers[%zu]", i);
    if (!json_is_object(w)) {
        log_warn("master /json/: %s is not an object", where);
        return MASTER_EJSON;
    }
    long long port = 0, cores = 0, coresused = 0, coresfree = 0;
    long long memory = 0, memoryused = 0, memoryfree = 0;
    int has_coresfree, has_memoryfree;
    int rc;
    if ((rc = get_str(w, "id", 0, &out->id, where)) ||
        (rc = get_str(w, "host", 0, &out->host, where)) ||
        (rc = get_str(w, "webuiaddress", 0, &out->webuiaddress, where)) ||
        (rc = get_str(w, "state", 1, &out->state, where)) ||
        (rc = get_int(w, "port", 0, 0, 65535, &port, NULL, where)) ||
        (rc = get_int(w, "cores", 1, 0, INT_MAX, &cores, NULL, where)) ||
        (rc = get_int(w, "coresused", 0, 0, INT_MAX, &coresused, NULL, where)) ||
        (rc = get_int(w, "coresfree", 0, 0, INT_MAX, &coresfree, &has_coresfree, where)) ||
        (rc = get_int(w, "memory", 1, 0, LLONG_MAX, &memory, NULL, where)) ||
        (rc = get_int(w, "memoryused", 0, 0, LLONG_MAX, &memoryused, NULL, where)) ||
        (rc = get_int(w, "memoryfree", 0, 0, LLONG_MAX, &memoryfree, &has_memoryfree, where)))
        return rc;
    out->port = (int)port;
    out->cores = (int)cores;
    out->coresused = (int)coresused;
    /* Spark before 3.0 sent no *free fields. */
    out->coresfree = has_coresfree ? (int)coresfree : (int)clamp_nonneg(cores - coresused);
    out->memory = memory;
    out->memoryused = memoryused;
    out->memoryfree = has_memoryfree ? memoryfree : clamp_nonneg(memory - memoryused);
    return MASTER_OK;
}

static int parse_app(json_t *a, size_t i, struct master_app *out)
{
    char where[48];
    snprintf(where, sizeof where, "activeapps[%zu]", i);
    if (!json_is_object(a)) {
        log_warn("master /json/: %s is not an object", where);
        return MASTER_EJSON;
    }
    long long cores = 0, mem = 0;
    int has_mem;
    int rc;
    out->starttime = 0;
    out->duration = 0;
    if ((rc = get_str(a, "id", 1, &out->id, where)) ||
        (rc = get_str(a, "name", 0, &out->name, where)) ||
        (rc = get_str(a, "state", 1, &out->state, where)) ||
        (rc = get_str(a, "user", 0, &out->user, where)) ||
        (rc = get_int(a, "cores", 0, 0, INT_MAX, &cores, NULL, where)) ||
        (rc = get_int(a, "memoryperexecutor", 0, 0, LLONG_MAX, &mem, &has_mem, where)) ||
        (!has_mem && (rc = get_int(a, "memoryperslave", 0, 0, LLONG_MAX, &mem, NULL, where))) ||
        (rc = get_int(a, "starttime", 0, LLONG_MIN, LLONG_MAX, &out->starttime, NULL, where)) ||
        (rc = get_int(a, "duration", 0, LLONG_MIN, LLONG_MAX, &out->duration, NULL, where)))
        return rc;
    out->cores = (int)cores;
    out->memoryperexecutor = mem;
    return MASTER_OK;
}

/* a + b for non-negative a and b, saturating at max instead of wrapping. */
static long long add_sat(long long a, long long b, long long max)
{
    return a > max - b ? max : a + b;
}

static int is_alive(const struct master_worker *w)
{
    return strcmp(w->state, "ALIVE") == 0;
}

static int parse_root(json_t *root, struct master_status *st)
{
    const char *where = "the top level";
    json_t *workers, *apps;
    long long cores = 0, coresused = 0, memory = 0, memoryused = 0, alive = 0;
    int has_cores, has_coresused, has_memory, has_memoryused;
    int rc;
    if ((rc = get_str(root, "url", 0, &st->url, where)) ||
        (rc = get_str(root, "status", 1, &st->status, where)) ||
        (rc = get_array(root, "workers", 1, &workers, where)) ||
        (rc = get_array(root, "activeapps", 0, &apps, where)) ||
        (rc = get_int(root, "aliveworkers", 0, 0, INT_MAX, &alive, NULL, where)) ||
        (rc = get_int(root, "cores", 0, 0, INT_MAX, &cores, &has_cores, where)) ||
        (rc = get_int(root, "coresused", 0, 0, INT_MAX, &coresused, &has_coresused, where)) ||
        (rc = get_int(root, "memory", 0, 0, LLONG_MAX, &memory, &has_memory, where)) ||
        (rc = get_int(root, "memoryused", 0, 0, LLONG_MAX, &memoryused, &has_memoryused, where)))
        return rc;

    st->nworkers = json_array_size(workers);
    if (st->nworkers > 0 && (st->workers = calloc(st->nworkers, sizeof *st->workers)) == NULL)
        return MASTER_ENOMEM;
    long long sum_cores = 0, sum_coresused = 0, sum_memory = 0, sum_memoryused = 0;
    for (size_t i = 0; i < st->nworkers; i++) {
        struct master_worker *w = &st->workers[i];
        if ((rc = parse_worker(json_array_get(workers, i), i, w)))
            return rc;
        if (!is_alive(w))
            continue;
        st->aliveworkers++;
        sum_cores = add_sat(sum_cores, w->cores, INT_MAX);
        sum_coresused = add_sat(sum_coresused, w->coresused, INT_MAX);
        sum_memory = add_sat(sum_memory, w->memory, LLONG_MAX);
        sum_memoryused = add_sat(sum_memoryused, w->memoryused, LLONG_MAX);
    }
    st->cores = (int)(has_cores ? cores : sum_cores);
    st->coresused = (int)(has_coresused ? coresused : sum_coresused);
    st->memory = has_memory ? memory : sum_memory;
    st->memoryused = has_memoryused ? memoryused : sum_memoryused;

    st->napps = apps != NULL ? json_array_size(apps) : 0;
    if (st->napps > 0 && (st->apps = calloc(st->napps, sizeof *st->apps)) == NULL)
        return MASTER_ENOMEM;
    for (size_t i = 0; i < st->napps; i++)
        if ((rc = parse_app(json_array_get(apps, i), i, &st->apps[i])))
            return rc;
    return MASTER_OK;
}

int master_parse(const char *json, size_t len, struct master_status **out)
{
    if (out == NULL)
        return MASTER_EARG;
    *out = NULL;
    if (json == NULL)
        return MASTER_EARG;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        log_warn("master /json/: %s", root ? "the top level is not an object" : jerr.text);
        json_decref(root);
        return MASTER_EJSON;
    }
    struct master_status *st = calloc(1, sizeof *st);
    if (st == NULL) {
        json_decref(root);
        return MASTER_ENOMEM;
    }
    st->root_ = root;
    int rc = parse_root(root, st);
    if (rc != MASTER_OK) {
        master_status_destroy(&st);
        return rc;
    }
    *out = st;
    return MASTER_OK;
}

void master_status_destroy(struct master_status **st)
{
    if (st == NULL || *st == NULL)
        return;
    free((*st)->workers);
    free((*st)->apps);
    json_decref((json_t *)(*st)->root_);
    free(*st);
    *st = NULL;
}

/* ---- verdicts --------------------------------------------------------------------------- */

int master_check_request(const struct master_status *st, int executor_cores,
                         long executor_memory_mb, char *verdict, size_t len)
{
    char scratch[2];
    if (verdict == NULL || len == 0) {
        verdict = scratch;
        len = sizeof scratch;
    }
    verdict[0] = '\0';
    if (st == NULL)
        return MASTER_EARG;
    int cores = executor_cores < 1 ? 1 : executor_cores;
    long long mem = executor_memory_mb < 1 ? 1024 : executor_memory_mb;
    const char *url = st->url[0] ? st->url : "(unknown URL)";

    if (strcmp(st->status, "ALIVE") != 0) {
        snprintf(verdict, len,
                 "The Spark master %s is %s, not ALIVE, so it cannot start executors (%d core(s) "
                 "and %lld MB each were requested). Point spark.master at the active master, or "
                 "wait until this one has recovered and try again.",
                 url, st->status[0] ? st->status : "in an unknown state", cores, mem);
        return MASTER_ENOTALIVE;
    }

    int alive = 0, fit = 0, fit_now = 0, max_cores = 0;
    long long max_mem = 0, mem_of_max_cores = 0;
    int cores_of_max_mem = 0;
    for (size_t i = 0; i < st->nworkers; i++) {
        const struct master_worker *w = &st->workers[i];
        if (!is_alive(w))
            continue;
        alive++;
        if (w->cores > max_cores || (w->cores == max_cores && w->memory > mem_of_max_cores)) {
            max_cores = w->cores;
            mem_of_max_cores = w->memory;
        }
        if (w->memory > max_mem || (w->memory == max_mem && w->cores > cores_of_max_mem)) {
            max_mem = w->memory;
            cores_of_max_mem = w->cores;
        }
        if (w->cores >= cores && w->memory >= mem) {
            fit++;
            if (w->coresfree >= cores && w->memoryfree >= mem)
                fit_now++;
        }
    }

    if (alive == 0) {
        snprintf(verdict, len,
                 "The Spark master %s has no alive worker (%zu registered, none ALIVE), so no "
                 "executor of %d core(s) and %lld MB can start. Start workers (workers.replicas "
                 "in the chart) or wait for them to register with the master, then try again.",
                 url, st->nworkers, cores, mem);
        return MASTER_ENOWORKER;
    }

    if (fit == 0) {
        /* "The largest worker" only when one worker has both the most cores and memory. */
        int n = max_mem == mem_of_max_cores
                    ? snprintf(verdict, len,
                               "Executors of %d core(s) and %lld MB each were requested, but the "
                               "largest of the %d alive worker(s) on %s offers %d core(s) and "
                               "%lld MB. ",
                               cores, mem, alive, url, max_cores, max_mem)
                    : snprintf(verdict, len,
                               "Executors of %d core(s) and %lld MB each were requested, but the "
                               "%d alive workers on %s offer at most %d core(s) and at most %lld "
                               "MB, not on the same worker. ",
                               cores, mem, alive, url, max_cores, max_mem);
        size_t off = n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
        if (cores > max_cores && mem > max_mem)
            snprintf(verdict + off, len - off,
                     "Set spark.executor.cores to at most %d and spark.executor.memory to at most "
                     "%lldm, or give workers more cores and memory (workers.cores and "
                     "workers.memory in the chart).",
                     max_cores, max_mem);
        else if (cores > max_cores)
            snprintf(verdict + off, len - off,
                     "Set spark.executor.cores to at most %d, or give workers more cores "
                     "(workers.cores in the chart).",
                     max_cores);
        else if (mem > max_mem)
            snprintf(verdict + off, len - off,
                     "Set spark.executor.memory to at most %lldm, or give workers more memory "
                     "(workers.memory in the chart).",
                     max_mem);
        else
            snprintf(verdict + off, len - off,
                     "No single worker has both: the one with the most cores (%d) has %lld MB, "
                     "the one with the most memory (%lld MB) has %d core(s). Lower "
                     "spark.executor.cores or spark.executor.memory to fit one worker, or give "
                     "all workers the same size (workers.cores and workers.memory in the chart).",
                     max_cores, mem_of_max_cores, max_mem, cores_of_max_mem);
        return MASTER_ETOOBIG;
    }

    int n = snprintf(verdict, len,
                     "Executors of %d core(s) and %lld MB each fit on %d of the %d alive "
                     "worker(s) on %s (which offer up to %d core(s) and %lld MB each). ",
                     cores, mem, fit, alive, url, max_cores, max_mem);
    size_t off = n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
    if (fit_now > 0)
        snprintf(verdict + off, len - off, "%d of them ha%s that much free now.", fit_now,
                 fit_now == 1 ? "s" : "ve");
    else
        snprintf(verdict + off, len - off,
                 "None has that much free now (%d of %d core(s) and %lld of %lld MB in use), so "
                 "the application will wait until other applications release resources.",
                 st->coresused, st->cores, st->memoryused, st->memory);
    return MASTER_OK;
}

char *master_format_workers(const struct master_status *st)
{
    if (st == NULL)
        return NULL;
    int addr_w = (int)strlen("address"), state_w = (int)strlen("state");
    char addr[300];
    for (size_t i = 0; i < st->nworkers; i++) {
        int n = snprintf(addr, sizeof addr, "%s:%d", st->workers[i].host, st->workers[i].port);
        if (n > addr_w)
            addr_w = n < (int)sizeof addr ? n : (int)sizeof addr - 1;
        int s = (int)strlen(st->workers[i].state);
        if (s > state_w)
            state_w = s < 32 ? s : 32;
    }
    struct sb b = {0};
    sb_add(&b, "%-*s  %-*s  %-11s  %s\n", addr_w, "address", state_w, "state", "cores",
           "memory (MB)");
    if (st->nworkers == 0)
        sb_add(&b, "(no worker has registered with the master)\n");
    for (size_t i = 0; i < st->nworkers; i++) {
        const struct master_worker *w = &st->workers[i];
        char cores[32], mem[64];
        snprintf(addr, sizeof addr, "%s:%d", w->host, w->port);
        snprintf(cores, sizeof cores, "%d/%d", w->coresused, w->cores);
        snprintf(mem, sizeof mem, "%lld/%lld", w->memoryused, w->memory);
        sb_add(&b, "%-*s  %-*.*s  %-11s  %s\n", addr_w, addr, state_w,
               (int)utf8_prefix(w->state, 32), w->state, cores, mem);
    }
    return sb_take(&b);
}

/* ---- HTTP (through the driver's one client, http.c) -------------------------------------- */

static int url_ok(const char *ui_url)
{
    return ui_url != NULL &&
           (strncasecmp(ui_url, "http://", 7) == 0 || strncasecmp(ui_url, "https://", 8) == 0);
}

char *master_url(const char *ui_url, const char *path)
{
    size_t n = strlen(ui_url);
    while (n > 0 && ui_url[n - 1] == '/')
        n--;
    char *url = NULL;
    if (asprintf(&url, "%.*s%s", (int)n, ui_url, path) < 0)
        return NULL;
    return url;
}

char *master_kill_form(const char *app_id)
{
    /* The id came from the master or the session: percent-encoded, it cannot add fields. */
    char *id = http_form_escape(app_id);
    char *form = NULL;
    if (id == NULL || asprintf(&form, "id=%s&terminate=true", id) < 0)
        form = NULL;
    free(id);
    return form;
}

/* One blocking request; *code gets the HTTP status, body (may be NULL) the answer. */
static int request_once(const char *url, const char *post, long timeout_ms, long *code, char **body,
                        size_t *len)
{
    char err[256] = "";
    int rc = http_request_blocking(url, post, timeout_ms, code, body, len, err, sizeof err);
    switch (rc) {
    case HTTP_OK:
    case HTTP_ESTATUS:
        return MASTER_OK;
    case HTTP_ENOMEM:
        return MASTER_ENOMEM;
    case HTTP_ETOOBIG:
        log_warn("master: %s: %s", url, err);
        return MASTER_EHTTP;
    default:
        log_warn("master: %s: %s", url, err);
        return MASTER_EUNREACHABLE;
    }
}

int master_fetch(const char *ui_url, long timeout_ms, struct master_status **out)
{
    if (out == NULL)
        return MASTER_EARG;
    *out = NULL;
    if (timeout_ms <= 0 || !url_ok(ui_url))
        return MASTER_EARG;
    char *url = master_url(ui_url, "/json/");
    if (url == NULL)
        return MASTER_ENOMEM;
    char *body = NULL;
    size_t len = 0;
    long code = 0;
    int rc = request_once(url, NULL, timeout_ms, &code, &body, &len);
    if (rc == MASTER_OK && code != 200) {
        log_warn("master: %s answered HTTP %ld", url, code);
        rc = MASTER_EHTTP;
    }
    if (rc == MASTER_OK)
        rc = master_parse(body ? body : "", len, out);
    free(body);
    free(url);
    return rc;
}

const struct master_app *master_find_app(const struct master_status *st, const char *app_id)
{
    for (size_t i = 0; st != NULL && app_id != NULL && i < st->napps; i++)
        if (strcmp(st->apps[i].id, app_id) == 0)
            return &st->apps[i];
    return NULL;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int master_kill_app(const char *ui_url, const char *app_id, long timeout_ms)
{
    if (app_id == NULL || app_id[0] == '\0' || timeout_ms <= 0)
        return MASTER_EARG;
    struct master_status *st = NULL;
    int rc = master_fetch(ui_url, timeout_ms, &st);
    if (rc != MASTER_OK)
        return rc;
    int active = master_find_app(st, app_id) != NULL;
    master_status_destroy(&st);
    if (!active)
        return MASTER_ENOAPP;

    char *url = master_url(ui_url, "/app/kill/");
    char *form = master_kill_form(app_id);
    if (url == NULL || form == NULL)
        rc = MASTER_ENOMEM;
    long code = 0;
    if (rc == MASTER_OK)
        rc = request_once(url, form, timeout_ms, &code, NULL, NULL);
    if (rc == MASTER_OK && code == 405) {
        log_warn("master: %s answered 405: kills are disabled (spark.ui.killEnabled=false)", url);
        rc = MASTER_EKILLOFF;
    } else if (rc == MASTER_OK && (code < 200 || code >= 400)) {
        log_warn("master: %s answered HTTP %ld", url, code);
        rc = MASTER_EHTTP;
    }
    free(form);
    free(url);
    if (rc != MASTER_OK)
        return rc;

    /* The master removes the app inside the request (and sleeps 100 ms before answering), so
     * the first read normally shows it gone; ACLs make the form a silent no-op instead. */
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        rc = master_fetch(ui_url, timeout_ms, &st);
        if (rc != MASTER_OK)
            return rc;
        active = master_find_app(st, app_id) != NULL;
        master_status_destroy(&st);
        if (!active)
            return MASTER_OK;
        if (now_ms() >= deadline)
            break;
        struct timespec pause = {0, 50 * 1000000L};
        nanosleep(&pause, NULL);
    }
    log_warn("master: application %s is still active %ld ms after the kill request", app_id,
             timeout_ms);
    return MASTER_EKILL;
}
