/* spark: session life (negotiate, ports, start, stop), the running cell's jobs and the
 * %spark magics. Runs entirely in the kernel loop; HTTP answers arrive as callbacks. */
#include "spark.h"

#include "../kernel/extension.h"
#include "../kernel/log.h"
#include "../kernel/utf8.h"
#include "curl_lazy.h"
#include "http.h"
#include "magics.h"
#include "master.h"
#include "ports.h"
#include "progress.h"
#include "settings.h"
#include "sharing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum session_state {
    S_IDLE = 0,
    S_NEGOTIATING,
    S_STARTING,
    S_READY,
    S_FAILED,
    S_REFUSED,
    S_STOPPED,
};

static const char *state_names[] = {
    "not started", "negotiating with the master", "starting", "ready", "failed", "refused",
    "stopped"};

struct spark {
    struct kernel *k;  /* the kernel core this extension is plugged into (extension.h) */
    struct http *http; /* asynchronous HTTP, one of the loop's event sources */
    struct settings *settings;
    enum session_state state;
    int generation; /* bumps on every start/stop; stale HTTP answers are ignored */
    char app_id[128], ui_url[512], master_ui[512], kernel_name[160];
    char poll_url[128]; /* the driver UI as this host reaches it (the advertised address may
                         * be one only the workers can use, or a wrong one) */
    char notice[2048];
    char failure[6144];
    struct ports ports;
    /* the running cell */
    int cell_active, cell_count;
    struct progress *progress;
    double next_jobs_poll, next_master_poll;
    int jobs_in_flight, master_in_flight, waiting_reported, holding_reply;
    /* magics of the current cell */
    int magic_waits_for_start; /* a %spark restart waits for the master's answer */
    json_t *magic_lines;
    size_t magic_index;
    char *magic_rest;
    /* sharing the cluster (driver/sharing.c) */
    char sessions_dir[512], kernel_id[64];
    double idle_since;      /* wall clock: the notebook's last cell ended */
    double holding_since;   /* wall clock: this session has held cores since (0: holds none) */
    double contended_since; /* monotonic: another application has waited since (0: none) */
    double next_yield_poll; /* monotonic */
    int yield_in_flight, yielded, release_sent, executors_notice;
    int shrunk;              /* an elastic share gave cores back mid-job (0: grown) */
    double next_share_order; /* monotonic: the next shrink may be sent then */
};

/* The extension's state, as the core hands it back to every hook. */
static struct spark *spark_of(struct kernel *k)
{
    return kernel_extension_self(k);
}

struct call {
    struct kernel *k;
    int generation;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct call *call_new(struct kernel *k)
{
    struct call *c = malloc(sizeof *c);
    if (c) {
        c->k = k;
        c->generation = spark_of(k)->generation;
    }
    return c;
}

/* Takes the call; returns the kernel if the answer still matters (not cancelled by
 * http_destroy, not made stale by a later start or stop). */
static struct kernel *call_take(void *ctx, int status)
{
    struct call *c = ctx;
    struct kernel *k = c->k;
    int fresh = status != HTTP_ECANCELLED && c->generation == spark_of(k)->generation;
    free(c);
    return fresh ? k : NULL;
}

/* A GET whose answer goes to done with a fresh call; HTTP_OK once the request is under way
 * (the call is then done's to free), an error otherwise (nothing to free). */
static int ask(struct kernel *k, const char *url, long timeout_ms, http_done_fn done)
{
    struct call *c = call_new(k);
    if (c == NULL)
        return HTTP_ENOMEM;
    int rc = http_request(spark_of(k)->http, url, NULL, timeout_ms, done, c);
    if (rc != HTTP_OK)
        free(c);
    return rc;
}

/* ---------- a small string builder ---------- */

struct sb {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (ns == NULL)
            return;
        b->s = ns;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The one HTML escaper: everything from outside (the master's /json/, the session, the
 * settings) goes into HTML through it, attribute values included. */
static void sb_escape(struct sb *b, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '<':
            sb_add(b, "&lt;");
            break;
        case '>':
            sb_add(b, "&gt;");
            break;
        case '&':
            sb_add(b, "&amp;");
            break;
        case '"':
            sb_add(b, "&quot;");
            break;
        case '\'':
            sb_add(b, "&#39;");
            break;
        default:
            sb_add(b, "%c", *p);
        }
    }
}

static const char *sb_str(struct sb *b)
{
    return b->s ? b->s : "";
}

/* ---------- output into the current cell ---------- */

static void cell_stream(struct kernel *k, const char *name, const char *text)
{
    kernel_publish_output(k, "stream", json_pack("{s:s, s:s}", "name", name, "text", text));
}

static void cell_display(struct kernel *k, const char *html, const char *plain)
{
    kernel_publish_output(k, "display_data",
                          json_pack("{s:{s:s, s:s}, s:{}, s:{}}", "data", "text/html", html,
                                    "text/plain", plain, "metadata", "transient"));
}

/* ---------- session life ---------- */

static void spark_destroy(void *self);

static struct spark *spark_new(char **env, const char *connection_file)
{
    struct spark *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->settings = settings_new(env);
    s->http = http_new();
    if (s->settings == NULL || s->http == NULL) {
        spark_destroy(s);
        return NULL;
    }
    /* The notebook behind this kernel, when the Jupyter server says (JPY_SESSION_NAME). */
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, "JPY_SESSION_NAME=", 17) == 0 && (*e)[17])
            utf8_copy(s->kernel_name, sizeof s->kernel_name, *e + 17);
    sharing_dir(env, connection_file, s->sessions_dir, sizeof s->sessions_dir);
    sharing_kernel_id(connection_file, s->kernel_id, sizeof s->kernel_id);
    s->idle_since = wall_s();
    return s;
}

static void spark_destroy(void *self)
{
    struct spark *s = self;
    if (s == NULL)
        return;
    http_destroy(&s->http); /* the callbacks run cancelled: they only free their calls */
    settings_destroy(&s->settings);
    progress_destroy(&s->progress);
    json_decref(s->magic_lines);
    free(s->magic_rest);
    free(s);
}

/* Sends cmd (stolen) to the executor, in order with the cells. */
static void send_executor(struct kernel *k, json_t *cmd)
{
    kernel_send_executor(k, cmd);
    json_decref(cmd);
}

static void magic_done(struct kernel *k);
static void follow_cell(struct spark *s);

/* This session's record for the other kernels (driver/sharing.h). */
static void publish_record(struct spark *s)
{
    if (s->state != S_READY || !s->app_id[0] || !settings_is_cluster(s->settings))
        return;
    struct sharing_entry e = {.pid = getpid(),
                              .busy = s->cell_active,
                              .since = s->cell_active ? wall_s() : s->idle_since,
                              .holding = s->holding_since};
    snprintf(e.app_id, sizeof e.app_id, "%s", s->app_id);
    snprintf(e.kernel_id, sizeof e.kernel_id, "%s", s->kernel_id);
    snprintf(e.notebook, sizeof e.notebook, "%s", s->kernel_name);
    int rc = sharing_publish(s->sessions_dir, &e);
    if (rc != 0)
        log_debug("cannot write the session record in %s: %s", s->sessions_dir, strerror(-rc));
}

static void forget_record(struct spark *s)
{
    if (s->app_id[0])
        sharing_remove(s->sessions_dir, s->app_id);
}

/* Negotiation is over (the session was launched or refused): whatever waited goes on. */
static void negotiation_over(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (s->magic_waits_for_start) {
        s->magic_waits_for_start = 0;
        magic_done(k);
    }
    kernel_resume_queue(k);
}

static int holds_queue(struct kernel *k, void *self)
{
    return ((struct spark *)self)->state == S_NEGOTIATING;
}

static void refuse(struct kernel *k, const char *paragraph)
{
    struct spark *s = spark_of(k);
    s->state = S_REFUSED;
    snprintf(s->failure, sizeof s->failure, "%s", paragraph);
    log_warn("Spark session refused: %.300s", paragraph);
    send_executor(k, json_pack("{s:s, s:s}", "type", "spark_refused", "message", paragraph));
    negotiation_over(k);
}

static void master_ui_url(struct spark *s)
{
    const char *ui = settings_get(s->settings, "sparkernel.master.ui");
    char host[256];
    int port;
    if (ui && *ui) {
        snprintf(s->master_ui, sizeof s->master_ui, "%s", ui);
    } else if (settings_master_host(s->settings, host, sizeof host, &port) == 0) {
        snprintf(s->master_ui, sizeof s->master_ui, "http://%s:8080", host);
        settings_derive(s->settings, "sparkernel.master.ui", s->master_ui);
    } else {
        s->master_ui[0] = '\0';
    }
    size_t n = strlen(s->master_ui);
    if (n > 0 && s->master_ui[n - 1] == '/')
        s->master_ui[n - 1] = '\0';
}

static void launch(struct kernel *k)
{
    struct spark *s = spark_of(k);
    struct settings *st = s->settings;
    char host[256], addr[64];
    int mport;
    if (settings_source_of(st, "spark.driver.host") <= SOURCE_DERIVED) {
        if (settings_master_host(st, host, sizeof host, &mport) == 0)
            ports_route_address(host, mport, addr, sizeof addr);
        else
            snprintf(addr, sizeof addr, "127.0.0.1");
        settings_derive(st, "spark.driver.host", addr);
    }
    /* Executors holding cached blocks or live shuffle files go after the same idle time
     * as the others, unless set on their own (Spark's defaults keep them forever). */
    static const char *follow_idle[] = {"spark.dynamicAllocation.cachedExecutorIdleTimeout",
                                        "spark.dynamicAllocation.shuffleTracking.timeout"};
    const char *idle = settings_get(st, "spark.dynamicAllocation.executorIdleTimeout");
    for (size_t i = 0; idle && i < sizeof follow_idle / sizeof follow_idle[0]; i++)
        if (settings_source_of(st, follow_idle[i]) <= SOURCE_DERIVED)
            settings_derive(st, follow_idle[i], idle);
    int explicit_ports =
        settings_source_of(st, "spark.driver.port") == SOURCE_NOTEBOOK ||
        settings_source_of(st, "spark.driver.blockManager.port") == SOURCE_NOTEBOOK ||
        settings_source_of(st, "spark.ui.port") == SOURCE_NOTEBOOK;
    int slots = explicit_ports ? 1 : settings_get_int(st, "sparkernel.port.slots", 8);
    char detail[1024];
    const char *bind = settings_get(st, "spark.driver.bindAddress");
    if (ports_choose(bind, settings_get_int(st, "spark.driver.port", 7078),
                     settings_get_int(st, "spark.driver.blockManager.port", 7079),
                     settings_get_int(st, "spark.ui.port", 4040), slots, &s->ports, detail,
                     sizeof detail) != PORTS_OK) {
        refuse(k, detail);
        return;
    }
    /* Other free slots, in order, for the executor to try if another kernel binds this
     * slot's ports between our probe and the JVM's bind (no round trip needed then). */
    json_t *candidates = json_array();
    for (int i = s->ports.slot; i < slots; i++) {
        int d = settings_get_int(st, "spark.driver.port", 7078) + 2 * i;
        int b = settings_get_int(st, "spark.driver.blockManager.port", 7079) + 2 * i;
        int u = settings_get_int(st, "spark.ui.port", 4040) + i;
        if (i == s->ports.slot ||
            (ports_free(bind, d) && ports_free(bind, b) && ports_free(bind, u)))
            json_array_append_new(candidates, json_pack("{s:i, s:i, s:i, s:i}", "slot", i, "driver",
                                                        d, "block_manager", b, "ui", u));
    }
    json_t *conf = settings_spark_conf(st);
    json_object_set_new(conf, "spark.driver.port", json_sprintf("%d", s->ports.driver));
    json_object_set_new(conf, "spark.driver.blockManager.port",
                        json_sprintf("%d", s->ports.block_manager));
    json_object_set_new(conf, "spark.ui.port", json_sprintf("%d", s->ports.ui));
    /* A taken port fails the start instead of drifting to one no Service exposes. */
    json_object_set_new(conf, "spark.port.maxRetries", json_string("0"));
    json_object_set_new(conf, "spark.ui.showConsoleProgress", json_string("false"));
    if (settings_source_of(st, "spark.app.name") == SOURCE_DEFAULT)
        json_object_set_new(conf, "spark.app.name",
                            json_sprintf("sparkernel %s", s->kernel_name[0] ? s->kernel_name
                                                          : s->kernel_id[0]
                                                              ? s->kernel_id
                                                              : kernel_session_id(k)));
    json_object_set_new(conf, "spark.sparkernel.kernel",
                        json_string(s->kernel_id[0] ? s->kernel_id : kernel_session_id(k)));
    if (s->kernel_name[0])
        json_object_set_new(conf, "spark.sparkernel.notebook", json_string(s->kernel_name));
    s->state = S_STARTING;
    log_info("starting the Spark session (master %s, driver %s ports %d/%d/%d, slot %d)",
             settings_get(st, "spark.master"), settings_get(st, "spark.driver.host"),
             s->ports.driver, s->ports.block_manager, s->ports.ui, s->ports.slot);
    const char *level = settings_get(st, "sparkernel.log.level");
    json_t *msg =
        json_pack("{s:s, s:o, s:s, s:o, s:b, s:s}", "type", "spark_start", "conf", conf, "notice",
                  s->notice, "port_candidates", candidates, "cds",
                  settings_get_bool(st, "sparkernel.cds", 1), "log_level", level ? level : "warn");
    if (msg && settings_get_bool(st, "sparkernel.executor.cds", 1))
        json_object_set_new(msg, "executor_cds",
                            json_pack("{s:s?, s:s?}", "dir",
                                      settings_get(st, "sparkernel.executor.cds.dir"), "spark_home",
                                      settings_get(st, "sparkernel.worker.spark.home")));
    send_executor(k, msg);
    negotiation_over(k);
}

/* Without a cap of its own, a session may take every core of the cluster (the elastic
 * share, sparkernel.share.elastic; see share_rule_of) or, with the elastic share off, at
 * most half of them. Never below one executor nor initialExecutors. It still starts with
 * one executor: starting with every free core when alone was measured (issue 19) to gain
 * nothing clear for a lone notebook and to cost the first waits of notebooks that start
 * together (the first takes the cluster until its idle yield). */
static void cap_executors(struct settings *st, const struct master_status *ms)
{
    const char *key = "spark.dynamicAllocation.maxExecutors";
    if (settings_source_of(st, key) > SOURCE_DERIVED || ms->cores <= 0)
        return;
    int per = settings_get_int(st, "spark.executor.cores", 1);
    int cores = settings_get_bool(st, "sparkernel.share.elastic", 1) ? ms->cores : ms->cores / 2;
    int n = cores / (per > 0 ? per : 1);
    int initial = settings_get_int(st, "spark.dynamicAllocation.initialExecutors", 1);
    if (n < initial)
        n = initial;
    if (n < 1)
        n = 1;
    char value[16];
    snprintf(value, sizeof value, "%d", n);
    settings_derive(st, key, value);
}

static void on_negotiated(void *ctx, int status, long code, const char *body, size_t len,
                          const char *error)
{
    struct kernel *k = call_take(ctx, status);
    if (k == NULL)
        return;
    struct spark *s = spark_of(k);
    const char *master = settings_get(s->settings, "spark.master");
    char para[6144];
    if (status != HTTP_OK) {
        snprintf(para, sizeof para,
                 "The Spark master's web UI at %s did not answer (%s), so no Spark session was "
                 "started. Check that the master is running and that SPARK_MASTER_URL (now %s) "
                 "and SPARKERNEL_MASTER_UI_URL point at it (in the cluster: kubectl get pods; "
                 "here: python tests/support/cluster.py status), then run %%spark restart.",
                 s->master_ui, error ? error : http_strerror(status), master);
        refuse(k, para);
        return;
    }
    struct master_status *ms = NULL;
    int rc = master_parse(body, len, &ms);
    if (rc != MASTER_OK) {
        snprintf(para, sizeof para,
                 "%s answered, but not with a Spark master's status (%s): is "
                 "SPARKERNEL_MASTER_UI_URL the master's web UI (port 8080)? Fix it with "
                 "%%spark config sparkernel.master.ui=http://host:8080, then %%spark restart.",
                 s->master_ui, master_strerror(rc));
        refuse(k, para);
        return;
    }
    char verdict[2048];
    const char *mem = settings_get(s->settings, "spark.executor.memory");
    rc = master_check_request(ms, settings_get_int(s->settings, "spark.executor.cores", 1),
                              settings_memory_mb(mem), verdict, sizeof verdict);
    if (rc != MASTER_OK) {
        char *table = master_format_workers(ms);
        snprintf(para, sizeof para, "%s\n\nWorkers of %s:\n%s", verdict, master,
                 table ? table : "");
        free(table);
        master_status_destroy(&ms);
        refuse(k, para);
        return;
    }
    snprintf(s->notice, sizeof s->notice, "%s", verdict);
    cap_executors(s->settings, ms);
    master_status_destroy(&ms);
    launch(k);
}

static void start_session(struct kernel *k)
{
    struct spark *s = spark_of(k);
    s->generation++;
    s->app_id[0] = s->ui_url[0] = s->failure[0] = s->notice[0] = '\0';
    master_ui_url(s);
    if (!settings_is_cluster(s->settings)) {
        snprintf(s->notice, sizeof s->notice,
                 "No Spark master is configured (SPARK_MASTER_URL): running %s on this machine.",
                 settings_get(s->settings, "spark.master"));
        launch(k);
        return;
    }
    s->state = S_NEGOTIATING;
    char url[600];
    snprintf(url, sizeof url, "%s/json/", s->master_ui);
    if (ask(k, url, settings_get_int(s->settings, "sparkernel.negotiate.timeout.ms", 3000),
            on_negotiated) != HTTP_OK) {
        refuse(k,
               "The kernel could not start an HTTP request to the Spark master (out of memory?).");
    }
}

static int session_alive(const struct spark *s)
{
    return s->state == S_STARTING || s->state == S_READY || s->state == S_NEGOTIATING;
}

static void stop_session(struct kernel *k)
{
    struct spark *s = spark_of(k);
    s->generation++;
    if (s->state == S_STARTING || s->state == S_READY)
        send_executor(k, json_pack("{s:s}", "type", "spark_stop"));
    forget_record(s);
    s->state = S_STOPPED;
    s->app_id[0] = s->ui_url[0] = '\0'; /* %spark ui must not link a stopped session */
}

static void on_executor_ready(struct kernel *k, void *self)
{
    struct spark *s = spark_of(k);
    s->state = S_IDLE;
    if (settings_get_bool(s->settings, "sparkernel.warm", 0))
        start_session(k);
}

static void on_killed(void *ctx, int status, long code, const char *body, size_t len,
                      const char *error)
{
    (void)code, (void)body, (void)len;
    free(ctx);
    /* The kill form answers with a 302 (HTTP_ESTATUS) whatever happened. */
    if (status != HTTP_OK && status != HTTP_ESTATUS && status != HTTP_ECANCELLED)
        log_warn("could not ask the master to kill the dead executor's application: %s",
                 error ? error : "no answer");
}

/* Returns text percent-encoded for a form value (libcurl's escaper) in a malloc'd string
 * (caller frees), or NULL. */
static char *form_encode(const char *text)
{
    const char *why;
    if (!curl_lazy_available(&why))
        return NULL;
    CURL *h = curl_easy_init();
    char *e = h ? curl_easy_escape(h, text, 0) : NULL;
    char *copy = e ? strdup(e) : NULL;
    if (e)
        curl_free(e);
    if (h)
        curl_easy_cleanup(h);
    return copy;
}

static void kill_on_master(struct kernel *k, const char *app_id)
{
    struct spark *s = spark_of(k);
    if (!settings_is_cluster(s->settings) || app_id[0] == '\0' || s->master_ui[0] == '\0')
        return;
    char url[600], form[400];
    snprintf(url, sizeof url, "%s/app/kill/", s->master_ui);
    /* The id came from the master or the session: percent-encoded, it cannot add fields. */
    char *id = form_encode(app_id);
    if (id == NULL)
        return;
    snprintf(form, sizeof form, "id=%s&terminate=true", id);
    free(id);
    log_info("asking the master to kill application %s (its driver is gone)", app_id);
    http_request(spark_of(k)->http, url, form, 3000, on_killed, malloc(1));
}

static void on_executor_died(struct kernel *k, void *self)
{
    struct spark *s = spark_of(k);
    kill_on_master(k, s->app_id);
    forget_record(s);
    /* The answers still on their way belong to the dead session (generation): their
     * callbacks never come back here, so nothing they would have cleared may stay set. The
     * cell it ran is over (the kernel answers it), and the next session starts idle. */
    s->generation++;
    s->state = S_IDLE;
    s->app_id[0] = '\0';
    progress_destroy(&s->progress);
    s->cell_active = s->holding_reply = 0;
    s->jobs_in_flight = s->master_in_flight = s->yield_in_flight = 0;
    s->waiting_reported = s->executors_notice = 0;
    s->idle_since = wall_s();
}

static void on_state(struct kernel *k, json_t *ev)
{
    struct spark *s = spark_of(k);
    const char *state = json_string_value(json_object_get(ev, "state"));
    if (state == NULL)
        return;
    if (strcmp(state, "ready") == 0 && json_is_true(json_object_get(ev, "switch")) &&
        (s->state == S_READY || s->state == S_STOPPED)) {
        /* A cell built its own session (issue 15): the kernel follows that application. */
        forget_record(s);
        s->state = S_READY;
        snprintf(s->app_id, sizeof s->app_id, "%s",
                 json_string_value(json_object_get(ev, "app_id")) ?: "");
        snprintf(s->ui_url, sizeof s->ui_url, "%s",
                 json_string_value(json_object_get(ev, "ui_url")) ?: "");
        json_t *ui = json_object_get(json_object_get(ev, "ports"), "ui");
        if (json_is_integer(ui) && json_integer_value(ui) > 0) {
            s->ports.ui = (int)json_integer_value(ui);
            const char *colon = strrchr(s->poll_url, ':');
            if (colon != NULL)
                snprintf(s->poll_url + (colon - s->poll_url),
                         sizeof s->poll_url - (size_t)(colon - s->poll_url), ":%d", s->ports.ui);
        }
        log_info("following the session a cell built: %s, UI %s", s->app_id, s->ui_url);
        publish_record(s);
        progress_destroy(&s->progress);
        follow_cell(s);
    } else if (strcmp(state, "ready") == 0 && s->state == S_STARTING) {
        s->state = S_READY;
        utf8_copy(s->app_id, sizeof s->app_id,
                  json_string_value(json_object_get(ev, "app_id")) ?: "");
        utf8_copy(s->ui_url, sizeof s->ui_url,
                  json_string_value(json_object_get(ev, "ui_url")) ?: "");
        json_t *ports = json_object_get(ev, "ports"); /* the slot it finally bound */
        if (json_is_object(ports)) {
            s->ports.slot = (int)json_integer_value(json_object_get(ports, "slot"));
            s->ports.driver = (int)json_integer_value(json_object_get(ports, "driver"));
            s->ports.block_manager =
                (int)json_integer_value(json_object_get(ports, "block_manager"));
            s->ports.ui = (int)json_integer_value(json_object_get(ports, "ui"));
        }
        const char *bind = settings_get(s->settings, "spark.driver.bindAddress");
        snprintf(s->poll_url, sizeof s->poll_url, "http://%s:%d",
                 bind == NULL || strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0
                     ? "127.0.0.1"
                     : bind,
                 s->ports.ui);
        log_info("Spark session ready: %s, UI %s", s->app_id, s->ui_url);
        s->yielded = s->yield_in_flight = s->shrunk = 0;
        s->holding_since = s->contended_since = s->next_share_order = 0;
        s->next_yield_poll = now_s() + 0.5;
        publish_record(s);
        follow_cell(s); /* a cell that waited for the session has jobs to show */
    } else if (strcmp(state, "failed") == 0 && s->state == S_STARTING) {
        const char *err = json_string_value(json_object_get(ev, "error")) ?: "unknown error";
        s->state = S_FAILED;
        utf8_copy(s->failure, sizeof s->failure, err);
        log_warn("Spark session failed: %.300s", err);
    } else if (strcmp(state, "starting") == 0 && (s->state == S_READY || s->state == S_FAILED)) {
        /* The executor revives a session whose JVM died: its old application goes. */
        kill_on_master(k, s->app_id);
        forget_record(s);
        s->generation++;
        s->state = S_STARTING;
        s->app_id[0] = s->ui_url[0] = s->failure[0] = '\0';
        log_warn("the Spark driver (JVM) died; the executor starts a new session");
    } else if (strcmp(state, "failed") == 0 && s->state == S_READY) {
        const char *err = json_string_value(json_object_get(ev, "error")) ?: "unknown error";
        kill_on_master(k, s->app_id);
        forget_record(s);
        s->state = S_FAILED;
        s->app_id[0] = s->ui_url[0] = '\0';
        utf8_copy(s->failure, sizeof s->failure, err);
        log_warn("Spark session failed: %.300s", err);
    } else if (strcmp(state, "stopped") == 0) {
        if (s->state != S_NEGOTIATING && s->state != S_STARTING)
            s->state = S_STOPPED;
    }
}

/* ---------- the running cell: progress and the WAITING report ---------- */

static void emit_progress(struct kernel *k, double now)
{
    struct spark *s = spark_of(k);
    struct progress_out out;
    while (s->progress && progress_next(s->progress, now, &out) == 1) {
        json_t *content = json_pack("{s:o, s:{}, s:{s:s}}", "data", out.data, "metadata",
                                    "transient", "display_id", out.display_id);
        kernel_publish_output(k, out.update ? "update_display_data" : "display_data", content);
    }
}

/* The notebook went idle: other kernels see it, and the yield timer starts. */
static void cell_over(struct spark *s)
{
    progress_destroy(&s->progress);
    s->cell_active = 0;
    s->idle_since = wall_s();
    s->yielded = s->release_sent = 0;
    s->next_yield_poll = now_s() + 0.5; /* not between the cells of a "run all" */
    publish_record(s);
}

static void release_reply(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (!s->holding_reply)
        return;
    s->holding_reply = 0;
    if (s->progress) {
        double now = now_s();
        progress_finish(s->progress, now);
        emit_progress(k, now);
    }
    cell_over(s);
    kernel_release_reply(k);
}

static void on_jobs(void *ctx, int status, long code, const char *body, size_t len,
                    const char *error)
{
    (void)code, (void)error;
    struct kernel *k = call_take(ctx, status);
    if (k == NULL)
        return;
    struct spark *s = spark_of(k);
    s->jobs_in_flight = 0;
    if (s->progress && status == HTTP_OK) {
        int rc = progress_update_jobs(s->progress, body, len, now_s());
        if (rc != 0)
            log_debug("driver /jobs answer not understood: %s", progress_strerror(rc));
        emit_progress(k, now_s());
    }
    if (s->holding_reply)
        release_reply(k);
}

static void on_stages(void *ctx, int status, long code, const char *body, size_t len,
                      const char *error)
{
    (void)code, (void)error;
    struct kernel *k = call_take(ctx, status);
    if (k != NULL && spark_of(k)->progress && status == HTTP_OK)
        progress_update_stages(spark_of(k)->progress, body, len);
}

static void poll_jobs(struct kernel *k, long timeout_ms)
{
    struct spark *s = spark_of(k);
    char url[800];
    snprintf(url, sizeof url, "%s/api/v1/applications/%s/jobs", s->poll_url, s->app_id);
    if (ask(k, url, timeout_ms, on_jobs) == HTTP_OK)
        s->jobs_in_flight = 1;
    snprintf(url, sizeof url, "%s/api/v1/applications/%s/stages?status=active", s->poll_url,
             s->app_id);
    ask(k, url, timeout_ms, on_stages);
}

static void report_waiting(struct kernel *k, const struct master_status *ms,
                           const struct master_app *mine, double waited)
{
    struct spark *s = spark_of(k);
    struct sb html = {0}, text = {0};
    int others = 0;
    for (size_t i = 0; i < ms->napps; i++)
        if (strcmp(ms->apps[i].id, s->app_id) != 0 && ms->apps[i].cores > 0)
            others++;
    sb_add(&text,
           "Spark has given this notebook's application (%s) no executors for %.0f s while a "
           "job waits, the endless \"Initial job has not accepted any resources\".\n",
           s->app_id, waited);
    sb_add(&html, "<div style=\"border-left:4px solid #d97706;padding:4px 8px\"><b>Spark has given "
                  "this notebook's application (");
    sb_escape(&html, s->app_id);
    sb_add(&html,
           ") no executors for %.0f s while a job waits</b> "
           "(the endless &ldquo;Initial job has not accepted any resources&rdquo;).<br>",
           waited);
    if (others > 0) {
        sb_add(&text,
               "Likely cause: other applications hold the cluster's cores (%d of %d "
               "in use):\n",
               ms->coresused, ms->cores);
        sb_add(&html,
               "Likely cause: other applications hold the cluster's cores (%d of %d in "
               "use):<ul>",
               ms->coresused, ms->cores);
        for (size_t i = 0; i < ms->napps; i++) {
            const struct master_app *a = &ms->apps[i];
            if (strcmp(a->id, s->app_id) == 0 || a->cores == 0)
                continue;
            char holder[512];
            sharing_holder(a, s->app_id, s->sessions_dir, wall_s(), holder, sizeof holder);
            sb_add(&text, "  %s \"%s\": %d cores, %lld MB per executor, %s%s%s\n", a->id, a->name,
                   a->cores, a->memoryperexecutor, a->state, holder[0] ? "; " : "", holder);
            sb_add(&html, "<li>");
            sb_escape(&html, a->id);
            sb_add(&html, " &ldquo;");
            sb_escape(&html, a->name);
            sb_add(&html, "&rdquo;: %d cores, %lld MB per executor, ", a->cores,
                   a->memoryperexecutor);
            sb_escape(&html, a->state);
            sb_add(&html, "%s", holder[0] ? "; " : "");
            sb_escape(&html, holder);
            sb_add(&html, "</li>");
        }
        sb_add(&text, "Ask their owners to stop idle sessions, or lower this notebook's needs "
                      "(%%spark config spark.executor.cores=1, then %%spark restart).\n");
        sb_add(&html, "</ul>Ask their owners to stop idle sessions, or lower this notebook's "
                      "needs (<code>%%spark config spark.executor.cores=1</code>, then "
                      "<code>%%spark restart</code>).");
    } else if (mine != NULL && mine->cores > 0) {
        sb_add(&text,
               "The master granted it %d cores, but its executors have not run a task: they are "
               "still starting (a busy machine), or they cannot reach this driver at %s:%d "
               "(block manager %d). If this lasts, check spark.driver.host (the pod IP or the "
               "headless Service name) and that those ports are exposed, then %%spark restart.\n",
               mine->cores, settings_get(s->settings, "spark.driver.host"), s->ports.driver,
               s->ports.block_manager);
        sb_add(&html,
               "The master granted it %d cores, but its executors have not run a task: they are "
               "still starting (a busy machine), or <b>they cannot reach this driver</b> at "
               "<code>",
               mine->cores);
        sb_escape(&html, settings_get(s->settings, "spark.driver.host"));
        sb_add(&html,
               ":%d</code> (block manager %d). If this lasts, check "
               "<code>spark.driver.host</code> (the pod IP or the headless Service name) and "
               "that those ports are exposed, then <code>%%spark restart</code>.",
               s->ports.driver, s->ports.block_manager);
    } else {
        sb_add(&text,
               "No other application holds the cores (%d of %d in use), so the likely cause is "
               "that the workers cannot reach this driver at %s:%d (block manager %d): check "
               "spark.driver.host (the pod IP or the headless Service name) and that those ports "
               "are exposed, then %%spark restart.\n",
               ms->coresused, ms->cores, settings_get(s->settings, "spark.driver.host"),
               s->ports.driver, s->ports.block_manager);
        sb_add(&html,
               "No other application holds the cores (%d of %d in use), so the likely cause is "
               "that <b>the workers cannot reach this driver</b> at <code>",
               ms->coresused, ms->cores);
        sb_escape(&html, settings_get(s->settings, "spark.driver.host"));
        sb_add(&html,
               ":%d</code> (block "
               "manager %d): check <code>spark.driver.host</code> (the pod IP or the headless "
               "Service name) and that those ports are exposed, then "
               "<code>%%spark restart</code>.",
               s->ports.driver, s->ports.block_manager);
    }
    sb_add(&html, " The job keeps waiting; interrupt the kernel to cancel it.</div>");
    sb_add(&text, "The job keeps waiting; interrupt the kernel to cancel it.");
    cell_display(k, sb_str(&html), sb_str(&text));
    log_warn("cell %d: application %s has had no executors for %.0f s", s->cell_count, s->app_id,
             waited);
    free(html.s);
    free(text.s);
}

/* This session's application in the master's answer, or NULL. */
static const struct master_app *find_app(const struct master_status *ms, const char *id)
{
    for (size_t i = 0; i < ms->napps; i++)
        if (strcmp(ms->apps[i].id, id) == 0)
            return &ms->apps[i];
    return NULL;
}

/* One line in the cell when a job of a warm session waits for executors, saying why as far
 * as the master's answer tells: no worker registered (a master that has just restarted gets
 * its workers back within seconds), every core held by other applications, or the master
 * still starting this session's executors (said only if that takes a few seconds). */
static void executors_notice(struct kernel *k, const struct master_status *ms, double waited)
{
    struct spark *s = spark_of(k);
    int free_cores = ms->cores - ms->coresused;
    if (ms->aliveworkers > 0 && free_cores > 0 && waited < 3.0)
        return;
    s->executors_notice = 1;
    char line[512];
    if (ms->aliveworkers == 0)
        snprintf(line, sizeof line,
                 "Waiting for executors: no worker is registered with the master right now "
                 "(after a master restart the workers register again within seconds); the job "
                 "starts as soon as one is.\n");
    else if (free_cores <= 0)
        snprintf(line, sizeof line,
                 "Waiting for executors: other applications hold all %d cores of the cluster "
                 "right now (idle sparkernel sessions give theirs back); the job starts as soon "
                 "as cores are free.\n",
                 ms->cores);
    else
        snprintf(line, sizeof line,
                 "Waiting for executors: the master has %d free core(s) and is starting this "
                 "session's executors.\n",
                 free_cores);
    cell_stream(k, "stdout", line);
}

/* What an answer of the master says about sharing: since when this session has held cores
 * (published in its record, so the sessions can tell whose turn it is to give them back)
 * and since when another application has waited for them (its id and name in who).
 * Returns whether one waits while this session holds cores. */
static int track_share(struct spark *s, const struct master_status *ms,
                       const struct master_app *mine, char *who, size_t len)
{
    int holds = mine != NULL && mine->cores > 0;
    if (holds != (s->holding_since > 0)) {
        s->holding_since = holds ? wall_s() : 0;
        publish_record(s);
    }
    who[0] = '\0';
    double since = 0; /* wall clock; 0: the waiter's record does not say */
    if (holds && sharing_contended(ms, s->app_id, s->sessions_dir, who, len, &since)) {
        /* How long the waiter has waited, as its record says (this session may have held
         * its cores through another's turn just before), else as seen from here. */
        double waited = since > 0 ? wall_s() - since : 0;
        if (waited > 0)
            s->contended_since = now_s() - waited;
        else if (s->contended_since == 0)
            s->contended_since = now_s();
        return 1;
    }
    s->contended_since = 0;
    return 0;
}

enum share_rule {
    SHARE_NONE,
    SHARE_STATIC,
    SHARE_CORES_MAX,
    SHARE_MAX_EXECUTORS,
    SHARE_NO_DECOMMISSION,
    SHARE_HALF,
    SHARE_ELASTIC
};

/* Which rule shares the cluster for this session: one decision, for the elastic share
 * (share_cluster) and for %spark status (share_rule_text). */
static enum share_rule share_rule_of(const struct settings *st)
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
static const char *share_rule_text(const struct spark *s, char *buf, size_t len)
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

/* The elastic share, at every answer of the master while the session holds cores: when
 * another application waits and this session holds more than a fair share, the executors
 * above it are decommissioned (they finish their running tasks, take no new one and exit;
 * the master's target for this application drops, so their cores go to the waiter). Sent
 * on the control pipe, which the executor reads while a cell runs; again every 2 s while it
 * lasts (an executor that registered late). When nobody waits any more, the session may
 * grow again. */
static void share_cluster(struct kernel *k, const struct master_status *ms,
                          const struct master_app *mine, int contended)
{
    struct spark *s = spark_of(k);
    if (mine == NULL || share_rule_of(s->settings) != SHARE_ELASTIC)
        return;
    if (!contended) {
        json_t *grow = s->shrunk ? json_pack("{s:s}", "type", "spark_grow") : NULL;
        if (grow && kernel_control_executor(k, grow) == 0)
            s->shrunk = 0;
        json_decref(grow);
        return;
    }
    int fair = sharing_fair_cores(ms, s->app_id, s->sessions_dir);
    if (mine->cores <= fair || now_s() < s->next_share_order)
        return;
    int per = settings_get_int(s->settings, "spark.executor.cores", 1);
    int keep = fair / (per > 0 ? per : 1);
    json_t *cmd = json_pack("{s:s, s:i}", "type", "spark_shrink", "keep", keep > 0 ? keep : 1);
    if (cmd && kernel_control_executor(k, cmd) == 0) {
        if (!s->shrunk)
            log_info("another application waits: giving back %d of %d cores at the next task "
                     "boundary (fair share %d)",
                     mine->cores - fair, mine->cores, fair);
        s->shrunk = 1;
        s->next_share_order = now_s() + 2.0;
    }
    json_decref(cmd);
}

static void on_master_poll(void *ctx, int status, long code, const char *body, size_t len,
                           const char *error)
{
    (void)code, (void)error;
    struct kernel *k = call_take(ctx, status);
    if (k == NULL)
        return;
    struct spark *s = spark_of(k);
    s->master_in_flight = 0;
    struct master_status *ms = NULL;
    if (status != HTTP_OK || master_parse(body, len, &ms) != MASTER_OK)
        return;
    const struct master_app *mine = find_app(ms, s->app_id);
    char who[400];
    share_cluster(k, ms, mine, track_share(s, ms, mine, who, sizeof who));
    if (!s->cell_active || s->progress == NULL) {
        master_status_destroy(&ms);
        return;
    }
    /* A job of this cell running with no task for the whole threshold: either no executor
     * was granted (cores 0: others hold them) or the granted ones never reach the driver
     * (they start, fail to call back, and the worker starts new ones). */
    double since = progress_waiting(s->progress) ? progress_waiting_since(s->progress) : 0;
    double now = now_s();
    if (since > 0 && mine && mine->cores == 0 && !s->executors_notice && now - since >= 1.0)
        executors_notice(k, ms, now - since);
    if (since > 0 && !s->waiting_reported &&
        now - since >= settings_get_int(s->settings, "sparkernel.waiting.report.s", 10)) {
        s->waiting_reported = 1;
        report_waiting(k, ms, mine, now - since);
    }
    master_status_destroy(&ms);
}

/* Follows the running cell's jobs, once there is a session to ask. */
static void follow_cell(struct spark *s)
{
    if (!s->cell_active || s->progress != NULL || s->state != S_READY || !s->app_id[0] ||
        !s->ui_url[0])
        return;
    char group[64];
    snprintf(group, sizeof group, "sparkernel-%d", s->cell_count);
    s->progress = progress_new(group, s->ui_url, s->app_id);
    s->next_jobs_poll = now_s() + 0.25;
    s->next_master_poll = now_s() + 1.0;
}

static void cell_begin(struct kernel *k, void *self, int count)
{
    struct spark *s = spark_of(k);
    s->cell_active = 1;
    s->cell_count = count;
    s->waiting_reported = 0;
    s->executors_notice = 0;
    publish_record(s);
    progress_destroy(&s->progress);
    follow_cell(s); /* or when the session becomes ready, if the cell waits for it */
}

static int cell_end(struct kernel *k, void *self)
{
    struct spark *s = spark_of(k);
    if (s->progress && progress_displayed(s->progress) && s->state == S_READY) {
        /* One last look at the jobs, so the cell keeps their final state. */
        s->holding_reply = 1;
        if (!s->jobs_in_flight)
            poll_jobs(k, 1000);
        return 1;
    }
    cell_over(s);
    return 0;
}

/* While the notebook is idle and its session holds executors, the master is asked every
 * 2 s whether another application waits for cores. If one does, the session gives its
 * executors back now rather than after Spark's idle timeout: when the notebook has been
 * idle for sparkernel.yield.after.s, or, between two cells of a busy notebook, when the
 * other one has waited sparkernel.share.turn.s and this session is the sparkernel session
 * that has held cores longest (so busy notebooks take turns, one release at a time). */
static int yield_armed(const struct spark *s)
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

static void on_yield_poll(void *ctx, int status, long code, const char *body, size_t len,
                          const char *error)
{
    (void)code, (void)error;
    struct kernel *k = call_take(ctx, status);
    if (k == NULL)
        return;
    struct spark *s = spark_of(k);
    s->yield_in_flight = 0;
    struct master_status *ms = NULL;
    if (!yield_armed(s) || status != HTTP_OK || master_parse(body, len, &ms) != MASTER_OK)
        return;
    const struct master_app *mine = find_app(ms, s->app_id);
    char who[400];
    int contended = track_share(s, ms, mine, who, sizeof who);
    share_cluster(k, ms, mine, contended);
    int after = settings_get_int(s->settings, "sparkernel.yield.after.s", 5);
    int turn = settings_get_int(s->settings, "sparkernel.share.turn.s", 1);
    const char *why = NULL;
    int idle = after > 0 && wall_s() - s->idle_since >= after;
    if (mine == NULL || mine->cores == 0)
        s->yielded = 1; /* nothing to give back until the next cell */
    else if (contended && (idle || (turn > 0 && now_s() - s->contended_since >= turn)) &&
             sharing_gives_next(ms, s->app_id, s->holding_since, idle, s->sessions_dir, wall_s(),
                                after))
        why = idle ? "the notebook is idle" : "this session has held its cores longest";
    if (why) {
        /* Asked again at the next poll while cores remain (an executor that registered
         * late); the release of one already going is a no-op in Spark. */
        if (!s->release_sent)
            log_info("%s and %s waits for cores: giving back %d cores", why, who, mine->cores);
        s->release_sent = 1;
        send_executor(k, json_pack("{s:s}", "type", "spark_release"));
    }
    master_status_destroy(&ms);
}

static long next_tick_ms(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (yield_armed(s)) {
        double ms = (s->next_yield_poll - now_s()) * 1000.0;
        return ms < 0 ? 0 : (long)ms + 1;
    }
    if (!s->cell_active || s->progress == NULL)
        return -1;
    double next = s->next_jobs_poll < s->next_master_poll ? s->next_jobs_poll : s->next_master_poll;
    double ms = (next - now_s()) * 1000.0;
    return ms < 0 ? 0 : (long)ms + 1;
}

static void tick(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (yield_armed(s) && now_s() >= s->next_yield_poll) {
        /* Every second while another waits (its turn comes at a poll), else every 2 s. */
        s->next_yield_poll = now_s() + (s->contended_since > 0 ? 1.0 : 2.0);
        if (!s->yield_in_flight) {
            char url[600];
            snprintf(url, sizeof url, "%s/json/", s->master_ui);
            if (ask(k, url, 2000, on_yield_poll) == HTTP_OK)
                s->yield_in_flight = 1;
        }
        return;
    }
    if (!s->cell_active || s->progress == NULL || s->state != S_READY)
        return;
    double now = now_s();
    if (now >= s->next_jobs_poll) {
        s->next_jobs_poll = now + 0.25;
        if (!s->jobs_in_flight)
            poll_jobs(k, 2000);
    }
    if (now >= s->next_master_poll) {
        s->next_master_poll = now + 1.0;
        if (settings_is_cluster(s->settings) && !s->master_in_flight && s->master_ui[0]) {
            char url[600];
            snprintf(url, sizeof url, "%s/json/", s->master_ui);
            if (ask(k, url, 2000, on_master_poll) == HTTP_OK)
                s->master_in_flight = 1;
        }
    }
}

/* ---------- %spark magics ---------- */

static void magics_next(struct kernel *k);

static void magic_done(struct kernel *k)
{
    struct spark *s = spark_of(k);
    s->magic_index++;
    magics_next(k);
}

static void magic_fail(struct kernel *k, const char *ename, const char *text)
{
    struct spark *s = spark_of(k);
    json_decref(s->magic_lines);
    s->magic_lines = NULL;
    free(s->magic_rest);
    s->magic_rest = NULL;
    kernel_fail_cell(k, ename, text);
}

static void settings_html(struct spark *s, struct sb *html, struct sb *text)
{
    json_t *rows = settings_table(s->settings);
    sb_add(html, "<table><tr><th style=\"text-align:left\">setting</th><th "
                 "style=\"text-align:left\">value</th><th style=\"text-align:left\">source</th>"
                 "<th style=\"text-align:left\">why</th></tr>");
    sb_add(text, "%-48s %-28s %-12s %s\n", "setting", "value", "source", "why");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *key = json_string_value(json_object_get(row, "key"));
        const char *value = json_string_value(json_object_get(row, "value"));
        const char *source = json_string_value(json_object_get(row, "source"));
        const char *doc = json_string_value(json_object_get(row, "doc"));
        const char *env = json_string_value(json_object_get(row, "env"));
        sb_add(html, "<tr><td><code>");
        sb_escape(html, key);
        sb_add(html, "</code></td><td><code>");
        sb_escape(html, value);
        sb_add(html, "</code></td><td>%s</td><td>", source);
        sb_escape(html, doc);
        if (env)
            sb_add(html, " (<code>%s</code>)", env);
        sb_add(html, "</td></tr>");
        sb_add(text, "%-48s %-28s %-12s %s%s%s%s\n", key, value, source, doc, env ? " (" : "",
               env ? env : "", env ? ")" : "");
    }
    sb_add(html, "</table>");
    json_decref(rows);
}

static void session_html(struct kernel *k, struct sb *html, struct sb *text)
{
    struct spark *s = spark_of(k);
    sb_add(html, "<p><b>Spark session:</b> %s", state_names[s->state]);
    sb_add(text, "Spark session: %s", state_names[s->state]);
    if (s->app_id[0]) {
        sb_add(html, " &middot; application <code>");
        sb_escape(html, s->app_id);
        sb_add(html, "</code> &middot; <a href=\"");
        sb_escape(html, s->ui_url);
        sb_add(html, "\" target=\"_blank\">Spark UI</a>");
        sb_add(text, ", application %s, Spark UI %s", s->app_id, s->ui_url);
    }
    const char *host = settings_get(s->settings, "spark.driver.host");
    if (s->state == S_READY || s->state == S_STARTING) {
        sb_add(html, " &middot; driver <code>");
        sb_escape(html, host ? host : "?");
        sb_add(html, ":%d</code>, block manager %d, UI %d (port slot %d)", s->ports.driver,
               s->ports.block_manager, s->ports.ui, s->ports.slot);
        sb_add(text, ", driver %s:%d, block manager %d, UI %d (port slot %d)", host ? host : "?",
               s->ports.driver, s->ports.block_manager, s->ports.ui, s->ports.slot);
    }
    sb_add(html, "</p>");
    sb_add(text, "\n");
    if (s->failure[0]) {
        sb_add(html, "<pre>");
        sb_escape(html, s->failure);
        sb_add(html, "</pre>");
        sb_add(text, "%s\n", s->failure);
    } else if (s->notice[0]) {
        sb_add(html, "<p>");
        sb_escape(html, s->notice);
        sb_add(html, "</p>");
        sb_add(text, "%s\n", s->notice);
    }
    char rule[768];
    share_rule_text(s, rule, sizeof rule);
    sb_add(html, "<p>");
    sb_escape(html, rule);
    sb_add(html, "</p>");
    sb_add(text, "%s\n", rule);
}

static void cluster_html(struct kernel *k, const struct master_status *ms, struct sb *html,
                         struct sb *text)
{
    struct spark *s = spark_of(k);
    sb_add(html, "<p><b>Cluster</b> ");
    sb_escape(html, ms->url);
    sb_add(html, " (");
    sb_escape(html, ms->status);
    sb_add(html, "): %d/%d cores, %lld/%lld MB in use</p>", ms->coresused, ms->cores,
           ms->memoryused, ms->memory);
    sb_add(text, "\nCluster %s (%s): %d/%d cores, %lld/%lld MB in use\n", ms->url, ms->status,
           ms->coresused, ms->cores, ms->memoryused, ms->memory);
    char *workers = master_format_workers(ms);
    if (workers) {
        sb_add(html, "<pre>");
        sb_escape(html, workers);
        sb_add(html, "</pre>");
        sb_add(text, "%s", workers);
        free(workers);
    }
    sb_add(html, "<table><tr><th>application</th><th>name</th><th>cores</th><th>MB per "
                 "executor</th><th>state</th><th>running for</th><th>held by</th></tr>");
    sb_add(text, "%-28s %-32s %5s %8s %-8s %-11s %s\n", "application", "name", "cores", "MB/exec",
           "state", "running for", "held by");
    double now = wall_s();
    for (size_t i = 0; i < ms->napps; i++) {
        const struct master_app *a = &ms->apps[i];
        char holder[512];
        sharing_holder(a, s->app_id, s->sessions_dir, now, holder, sizeof holder);
        sb_add(html, "<tr><td><code>");
        sb_escape(html, a->id);
        sb_add(html, "</code></td><td>");
        sb_escape(html, a->name);
        sb_add(html, "</td><td>%d</td><td>%lld</td><td>", a->cores, a->memoryperexecutor);
        sb_escape(html, a->state);
        sb_add(html, "</td><td>%.0f s</td><td>", a->duration / 1000.0);
        sb_escape(html, holder);
        sb_add(html, "</td></tr>");
        const char *name = a->name ? a->name : "";
        int cut = (int)utf8_prefix(name, 32); /* a cut inside a character loses the table */
        sb_add(text, "%-28s %-32.*s %5d %8lld %-8s %9.0f s  %s\n", a->id, cut, name, a->cores,
               a->memoryperexecutor, a->state, a->duration / 1000.0, holder);
    }
    sb_add(html, "</table>");
}

static void publish_status(struct kernel *k, const struct master_status *ms, const char *why)
{
    struct sb html = {0}, text = {0};
    session_html(k, &html, &text);
    if (ms)
        cluster_html(k, ms, &html, &text);
    else if (why) {
        sb_add(&html, "<p>");
        sb_escape(&html, why);
        sb_add(&html, "</p>");
        sb_add(&text, "%s\n", why);
    }
    sb_add(&html, "<p><b>Settings</b> (strongest source first: notebook, environment, "
                  "kernelspec, default)</p>");
    sb_add(&text, "\nSettings (strongest source first: notebook, environment, kernelspec, "
                  "default)\n");
    settings_html(spark_of(k), &html, &text);
    cell_display(k, sb_str(&html), sb_str(&text));
    free(html.s);
    free(text.s);
}

static void on_status_master(void *ctx, int status, long code, const char *body, size_t len,
                             const char *error)
{
    (void)code;
    struct call *c = ctx;
    struct kernel *k = c->k; /* a magic waits for its answer whatever the generation */
    free(c);
    if (status == HTTP_ECANCELLED)
        return;
    struct master_status *ms = NULL;
    char why[512] = "";
    if (status != HTTP_OK)
        snprintf(why, sizeof why, "The master's web UI at %s did not answer (%s).",
                 spark_of(k)->master_ui, error ? error : http_strerror(status));
    else if (master_parse(body, len, &ms) != MASTER_OK)
        snprintf(why, sizeof why, "%s did not answer with a master's status.",
                 spark_of(k)->master_ui);
    publish_status(k, ms, why);
    master_status_destroy(&ms);
    magic_done(k);
}

static void magic_status(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (!settings_is_cluster(s->settings)) {
        publish_status(k, NULL, "Local mode: no cluster to list.");
        magic_done(k);
        return;
    }
    master_ui_url(s);
    char url[600];
    snprintf(url, sizeof url, "%s/json/", s->master_ui);
    if (ask(k, url, 3000, on_status_master) != HTTP_OK) {
        publish_status(k, NULL, "The kernel could not ask the master.");
        magic_done(k);
    }
}

static void magic_config(struct kernel *k, json_t *words)
{
    struct spark *s = spark_of(k);
    if (json_array_size(words) < 2) {
        struct sb html = {0}, text = {0};
        settings_html(s, &html, &text);
        cell_display(k, sb_str(&html), sb_str(&text));
        free(html.s);
        free(text.s);
        magic_done(k);
        return;
    }
    struct sb text = {0};
    for (size_t i = 1; i < json_array_size(words); i++) {
        const char *w = json_string_value(json_array_get(words, i));
        char err[512];
        if (settings_set_pair(s->settings, w, err, sizeof err) != SETTINGS_OK) {
            free(text.s);
            magic_fail(k, "SparkConfigError", err);
            return;
        }
        const char *eq = strchr(w, '=');
        char *key = strndup(w, (size_t)(eq - w));
        sb_add(&text, "%.*s = %s (notebook)\n", (int)(eq - w), w,
               key && settings_is_secret(key) ? "****" : eq + 1);
        free(key);
    }
    sb_add(&text, session_alive(s) ? "Applies to the next session: run %%spark restart.\n"
                                   : "Applies when the session starts.\n");
    cell_stream(k, "stdout", sb_str(&text));
    free(text.s);
    magic_done(k);
}

static void magics_next(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (s->magic_lines == NULL)
        return;
    if (s->magic_index >= json_array_size(s->magic_lines)) {
        char *rest = s->magic_rest;
        s->magic_rest = NULL;
        json_decref(s->magic_lines);
        s->magic_lines = NULL;
        kernel_continue_cell(k, rest ? rest : "");
        free(rest);
        return;
    }
    json_t *words = magics_words(json_string_value(json_array_get(s->magic_lines, s->magic_index)));
    const char *cmd =
        json_array_size(words) ? json_string_value(json_array_get(words, 0)) : "status";
    if (strcmp(cmd, "status") == 0) {
        magic_status(k);
    } else if (strcmp(cmd, "config") == 0) {
        magic_config(k, words);
    } else if (strcmp(cmd, "restart") == 0) {
        stop_session(k);
        cell_stream(k, "stdout",
                    "Restarting the Spark session with the current settings; the next cell "
                    "that uses spark waits for it.\n");
        json_decref(words);
        s->magic_waits_for_start = 1; /* the executor must get spark_start before more code */
        start_session(k);
        return;
    } else if (strcmp(cmd, "stop") == 0) {
        stop_session(k);
        cell_stream(k, "stdout", "Spark session stopped; %spark restart starts a new one.\n");
        magic_done(k);
    } else if (strcmp(cmd, "ui") == 0) {
        struct sb html = {0}, text = {0};
        if (s->ui_url[0]) {
            sb_add(&html, "<a href=\"");
            sb_escape(&html, s->ui_url);
            sb_add(&html, "\" target=\"_blank\">Spark UI</a> (");
            sb_escape(&html, s->app_id);
            sb_add(&html, ")");
            sb_add(&text, "Spark UI: %s (%s)\n", s->ui_url, s->app_id);
        } else {
            sb_add(&html, "No Spark UI: the session is %s.", state_names[s->state]);
            sb_add(&text, "No Spark UI: the session is %s.\n", state_names[s->state]);
        }
        if (s->master_ui[0]) {
            sb_add(&html, " &middot; <a href=\"");
            sb_escape(&html, s->master_ui);
            sb_add(&html, "\" target=\"_blank\">master UI</a>");
            sb_add(&text, "Master UI: %s\n", s->master_ui);
        }
        cell_display(k, sb_str(&html), sb_str(&text));
        free(html.s);
        free(text.s);
        magic_done(k);
    } else {
        char err[300];
        snprintf(err, sizeof err,
                 "Unknown %%spark command \"%s\". Use %%spark status, %%spark config key=value "
                 "..., %%spark restart, %%spark stop or %%spark ui.",
                 cmd);
        json_decref(words);
        magic_fail(k, "SparkMagicError", err);
        return;
    }
    json_decref(words);
}

static void run_magics(struct kernel *k, json_t *lines, const char *rest)
{
    struct spark *s = spark_of(k);
    json_decref(s->magic_lines);
    free(s->magic_rest);
    s->magic_lines = json_incref(lines);
    s->magic_rest = strdup(rest ? rest : "");
    s->magic_index = 0;
    magics_next(k);
}

static void on_shutdown(struct kernel *k, void *self, int executor_detached)
{
    struct spark *s = spark_of(k);
    s->generation++;
    progress_destroy(&s->progress);
    forget_record(s);
    /* A detached executor stops its session on its own; if it had to be killed and its
     * application is still on the master, the master's kill endpoint is the fallback. */
    if (!executor_detached && settings_is_cluster(s->settings) && s->app_id[0] && s->master_ui[0]) {
        int rc = master_kill_app(s->master_ui, s->app_id, 1000);
        if (rc == MASTER_OK)
            log_info("application %s killed on the master at shutdown", s->app_id);
        else if (rc != MASTER_ENOAPP)
            log_warn("application %s: %s", s->app_id, master_strerror(rc));
    }
}

/* ---------- plugged into the kernel core (kernel/extension.h) ---------- */

static int on_event(struct kernel *k, void *self, const char *type, json_t *ev)
{
    if (strcmp(type, "spark_state") != 0)
        return 0;
    on_state(k, ev);
    return 1;
}

/* A cell that starts with %spark lines: they run here, then the rest goes on. */
static int cell_code(struct kernel *k, void *self, const char *code)
{
    char *rest = NULL;
    json_t *lines = magics_split(code, &rest);
    int taken = json_array_size(lines) > 0;
    if (taken)
        run_magics(k, lines, rest); /* calls kernel_continue_cell or kernel_fail_cell */
    json_decref(lines);
    free(rest);
    return taken;
}

static void kernel_info(struct kernel *k, void *self, json_t *content)
{
    const char *pyver =
        json_string_value(json_object_get(json_object_get(content, "language_info"), "version"));
    char banner[512];
    snprintf(banner, sizeof banner,
             "sparkernel %s: PySpark on a Spark standalone cluster (Python %s, IPython)\n"
             "Magics: %%spark status | config | restart | ui",
             json_string_value(json_object_get(content, "implementation_version")),
             pyver ? pyver : "3");
    json_object_set_new(content, "banner", json_string(banner));
    json_t *links = json_object_get(content, "help_links");
    json_array_append_new(links, json_pack("{s:s,s:s}", "text", "PySpark", "url",
                                           "https://spark.apache.org/docs/latest/api/python/"));
    json_array_append_new(
        links, json_pack("{s:s,s:s}", "text", "Spark Programming Guide", "url",
                         "https://spark.apache.org/docs/latest/rdd-programming-guide.html"));
}

static int http_source_fds(void *self, struct kernel_fd *out, int max)
{
    struct http_fd hfds[KERNEL_SOURCE_MAX_FDS];
    int n = http_fds(((struct spark *)self)->http, hfds,
                     max < KERNEL_SOURCE_MAX_FDS ? max : KERNEL_SOURCE_MAX_FDS);
    for (int i = 0; i < n; i++)
        out[i] = (struct kernel_fd){
            hfds[i].fd,
            (short)((hfds[i].read ? KERNEL_FD_READ : 0) | (hfds[i].write ? KERNEL_FD_WRITE : 0)),
            0};
    return n;
}

static long http_source_next_ms(void *self)
{
    return http_timeout_ms(((struct spark *)self)->http);
}

static void http_source_run(void *self, const struct kernel_fd *fds, int n)
{
    http_perform(((struct spark *)self)->http);
}

static long timer_next_ms(void *self)
{
    return next_tick_ms(((struct spark *)self)->k);
}

static void timer_run(void *self, const struct kernel_fd *fds, int n)
{
    tick(((struct spark *)self)->k);
}

int spark_attach(struct kernel *k, char **env, const char *connection_file)
{
    struct spark *s = spark_new(env, connection_file);
    if (s == NULL)
        return -1;
    s->k = k;
    struct kernel_extension ext = {.name = "spark",
                                   .self = s,
                                   .executor_ready = on_executor_ready,
                                   .executor_died = on_executor_died,
                                   .event = on_event,
                                   .holds_queue = holds_queue,
                                   .cell_code = cell_code,
                                   .cell_begin = cell_begin,
                                   .cell_end = cell_end,
                                   .kernel_info = kernel_info,
                                   .shutdown = on_shutdown,
                                   .destroy = spark_destroy};
    struct kernel_source http = {.name = "spark http",
                                 .self = s,
                                 .fds = http_source_fds,
                                 .next_ms = http_source_next_ms,
                                 .run = http_source_run};
    struct kernel_source timer = {
        .name = "spark timers", .self = s, .next_ms = timer_next_ms, .run = timer_run};
    if (kernel_set_extension(k, &ext) != 0) {
        spark_destroy(s);
        return -1;
    }
    /* The extension owns s from here: kernel_close destroys it. */
    if (kernel_add_source(k, &http) != 0 || kernel_add_source(k, &timer) != 0)
        return -1;
    return 0;
}
