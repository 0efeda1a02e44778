/* session: the Spark session's life as the kernel sees it: negotiate with the master, pick
 * the ports, ask the executor to start or stop its SparkSession, follow the session a cell
 * builds, kill a dead driver's application on the master, and the record other kernels see.
 * Runs entirely in the kernel loop; HTTP answers arrive as callbacks. */
#include "driver.h"

#include "../kernel/log.h"
#include "../kernel/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct spark *spark_new(char **env, const char *connection_file)
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
    s->idle_since = spark_wall();
    return s;
}

void spark_destroy(void *self)
{
    struct spark *s = self;
    if (s == NULL)
        return;
    http_destroy(&s->http); /* the callbacks run cancelled: they only free their calls */
    settings_destroy(&s->settings);
    progress_destroy(&s->progress);
    json_decref(s->magic_lines);
    json_decref(s->cell_jobs);
    free(s->magic_rest);
    free(s);
}

/* This session's record for the other kernels (driver/sharing.h). */
void session_publish_record(struct spark *s)
{
    if (s->state != S_READY || !s->app_id[0] || !settings_is_cluster(s->settings))
        return;
    struct sharing_entry e = {.pid = getpid(),
                              .busy = s->cell_active,
                              .since = s->cell_active ? spark_wall() : s->idle_since,
                              .holding = s->holding_since};
    snprintf(e.app_id, sizeof e.app_id, "%s", s->app_id);
    snprintf(e.kernel_id, sizeof e.kernel_id, "%s", s->kernel_id);
    snprintf(e.notebook, sizeof e.notebook, "%s", s->kernel_name);
    int rc = sharing_publish(s->sessions_dir, &e);
    if (rc != SHARING_OK)
        log_debug("cannot write the session record in %s: %s (%s)", s->sessions_dir,
                  sharing_strerror(rc), strerror(errno));
}

void session_forget_record(struct spark *s)
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
        magics_done(k);
    }
    kernel_resume_queue(k);
}

int session_holds_queue(struct kernel *k, void *self)
{
    return ((struct spark *)self)->state == S_NEGOTIATING;
}

static void refuse(struct kernel *k, const char *paragraph)
{
    struct spark *s = spark_of(k);
    s->state = S_REFUSED;
    snprintf(s->failure, sizeof s->failure, "%s", paragraph);
    log_warn("Spark session refused: %.300s", paragraph);
    spark_send(k, json_pack("{s:s, s:s}", "type", "spark_refused", "message", paragraph));
    negotiation_over(k);
}

void session_master_ui(struct spark *s)
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
    int rc = ports_choose(bind, settings_get_int(st, "spark.driver.port", 7078),
                          settings_get_int(st, "spark.driver.blockManager.port", 7079),
                          settings_get_int(st, "spark.ui.port", 4040), slots, &s->ports, detail,
                          sizeof detail);
    if (rc != PORTS_OK) {
        log_warn("no driver ports for the session: %s", ports_strerror(rc));
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
    /* The UI behind a proxy (JupyterLab's jupyter-server-proxy in the chart): its pages link
     * under that path; the executor redoes it for another slot's port. */
    char proxy_base[512];
    if (spark_ui_proxy(s, s->ports.ui, 1, proxy_base, sizeof proxy_base) == 0)
        json_object_set_new(conf, "spark.ui.proxyBase", json_string(proxy_base));
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
    json_t *msg = json_pack(
        "{s:s, s:o, s:s, s:o, s:b, s:s, s:s?}", "type", "spark_start", "conf", conf, "notice",
        s->notice, "port_candidates", candidates, "cds", settings_get_bool(st, "sparkernel.cds", 1),
        "log_level", level ? level : "warn", "cache_dir", settings_get(st, "sparkernel.cache.dir"));
    if (msg && spark_ui_proxy(s, -1, 1, proxy_base, sizeof proxy_base) == 0)
        json_object_set_new(msg, "ui_proxy", json_string(proxy_base)); /* {port} kept */
    if (msg && settings_get_bool(st, "sparkernel.executor.cds", 1))
        json_object_set_new(msg, "executor_cds",
                            json_pack("{s:s?, s:s?}", "dir",
                                      settings_get(st, "sparkernel.executor.cds.dir"), "spark_home",
                                      settings_get(st, "sparkernel.worker.spark.home")));
    spark_send(k, msg);
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
    struct kernel *k = spark_call_take(ctx, status);
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

void session_start(struct kernel *k)
{
    struct spark *s = spark_of(k);
    s->generation++;
    s->app_id[0] = s->ui_url[0] = s->failure[0] = s->notice[0] = '\0';
    session_master_ui(s);
    if (!settings_is_cluster(s->settings)) {
        snprintf(s->notice, sizeof s->notice,
                 "No Spark master is configured (SPARK_MASTER_URL): running %s on this machine.",
                 settings_get(s->settings, "spark.master"));
        launch(k);
        return;
    }
    s->state = S_NEGOTIATING;
    if (spark_ask_master(k, settings_get_int(s->settings, "sparkernel.negotiate.timeout.ms", 3000),
                         on_negotiated) != HTTP_OK) {
        refuse(k,
               "The kernel could not start an HTTP request to the Spark master (out of memory?).");
    }
}

int session_alive(const struct spark *s)
{
    return s->state == S_STARTING || s->state == S_READY || s->state == S_NEGOTIATING;
}

void session_stop(struct kernel *k)
{
    struct spark *s = spark_of(k);
    s->generation++;
    if (s->state == S_STARTING || s->state == S_READY)
        spark_send(k, json_pack("{s:s}", "type", "spark_stop"));
    session_forget_record(s);
    s->state = S_STOPPED;
    s->app_id[0] = s->ui_url[0] = '\0'; /* %spark ui must not link a stopped session */
}

void session_on_executor_ready(struct kernel *k, void *self)
{
    struct spark *s = spark_of(k);
    s->state = S_NOT_STARTED;
    if (settings_get_bool(s->settings, "sparkernel.warm", 0))
        session_start(k);
}

static void on_killed(void *ctx, int status, long code, const char *body, size_t len,
                      const char *error)
{
    (void)ctx, (void)code, (void)body, (void)len;
    /* The kill form answers with a 302 (HTTP_ESTATUS) whatever happened. */
    if (status != HTTP_OK && status != HTTP_ESTATUS && status != HTTP_ECANCELLED)
        log_warn("could not ask the master to kill the dead executor's application: %s",
                 error ? error : "no answer");
}

static void kill_on_master(struct kernel *k, const char *app_id)
{
    struct spark *s = spark_of(k);
    if (!settings_is_cluster(s->settings) || app_id[0] == '\0' || s->master_ui[0] == '\0')
        return;
    char *url = master_url(s->master_ui, "/app/kill/");
    char *form = master_kill_form(app_id);
    if (url != NULL && form != NULL) {
        log_info("asking the master to kill application %s (its driver is gone)", app_id);
        http_request(s->http, url, form, 3000, on_killed, NULL);
    }
    free(url);
    free(form);
}

void session_on_executor_died(struct kernel *k, void *self)
{
    struct spark *s = spark_of(k);
    kill_on_master(k, s->app_id);
    session_forget_record(s);
    /* The answers still on their way belong to the dead session (generation): their
     * callbacks never come back here, so nothing they would have cleared may stay set. The
     * cell it ran is over (the kernel answers it), and the next session starts idle. */
    s->generation++;
    s->state = S_NOT_STARTED;
    s->app_id[0] = '\0';
    progress_destroy(&s->progress);
    s->cell_active = s->holding_reply = 0;
    s->final_fetches = 0;
    s->jobs_in_flight = s->master_in_flight = s->yield_in_flight = 0;
    s->waiting_reported = s->executors_noticed = 0;
    s->idle_since = spark_wall();
}

/* Behind a proxy, the links in cells (progress, %spark ui) go through it. */
static void proxied_ui_url(struct spark *s)
{
    char url[sizeof s->ui_url];
    if (s->ui_url[0] && spark_ui_proxy(s, s->ports.ui, 0, url, sizeof url) == 0)
        snprintf(s->ui_url, sizeof s->ui_url, "%s", url);
}

/* The UI the kernel polls for progress: the driver's bind address, loopback when it binds
 * every interface. */
static void set_poll_url(struct spark *s)
{
    const char *bind = settings_get(s->settings, "spark.driver.bindAddress");
    snprintf(s->poll_url, sizeof s->poll_url, "http://%s:%d",
             bind == NULL || strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0 ? "127.0.0.1"
                                                                                     : bind,
             s->ports.ui);
}

/* A new application is followed: nothing of the sharing state of the one before holds. */
static void reset_share(struct spark *s)
{
    s->yielded = s->yield_in_flight = s->shrunk = 0;
    s->holding_since = s->contended_since = s->next_share_order = 0;
    s->next_yield_poll = spark_now() + 0.5;
}

void session_on_state(struct kernel *k, json_t *ev)
{
    struct spark *s = spark_of(k);
    const char *state = json_string_value(json_object_get(ev, "state"));
    if (state == NULL)
        return;
    if (strcmp(state, "ready") == 0 && json_is_true(json_object_get(ev, "switch")) &&
        (s->state == S_READY || s->state == S_STOPPED)) {
        /* A cell built its own session (issue 15): the kernel follows that application. */
        session_forget_record(s);
        s->state = S_READY;
        snprintf(s->app_id, sizeof s->app_id, "%s",
                 json_string_value(json_object_get(ev, "app_id")) ?: "");
        snprintf(s->ui_url, sizeof s->ui_url, "%s",
                 json_string_value(json_object_get(ev, "ui_url")) ?: "");
        json_t *ui = json_object_get(json_object_get(ev, "ports"), "ui");
        if (json_is_integer(ui) && json_integer_value(ui) > 0)
            s->ports.ui = (int)json_integer_value(ui);
        json_t *cores = json_object_get(ev, "executor_cores");
        s->executor_cores = json_is_integer(cores) && json_integer_value(cores) > 0 &&
                                    json_integer_value(cores) < 1 << 20
                                ? (int)json_integer_value(cores)
                                : 0;
        set_poll_url(s);
        proxied_ui_url(s);
        reset_share(s);
        log_info("following the session a cell built: %s, UI %s", s->app_id, s->ui_url);
        session_publish_record(s);
        progress_destroy(&s->progress);
        cell_follow(s);
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
        set_poll_url(s);
        proxied_ui_url(s);
        s->executor_cores = settings_get_int(s->settings, "spark.executor.cores", 0);
        log_info("Spark session ready: %s, UI %s", s->app_id, s->ui_url);
        reset_share(s);
        session_publish_record(s);
        cell_follow(s); /* a cell that waited for the session has jobs to show */
    } else if (strcmp(state, "failed") == 0 && s->state == S_STARTING) {
        const char *err = json_string_value(json_object_get(ev, "error")) ?: "unknown error";
        s->state = S_FAILED;
        utf8_copy(s->failure, sizeof s->failure, err);
        log_warn("Spark session failed: %.300s", err);
    } else if (strcmp(state, "starting") == 0 && (s->state == S_READY || s->state == S_FAILED)) {
        /* The executor revives a session whose JVM died: its old application goes. */
        kill_on_master(k, s->app_id);
        session_forget_record(s);
        s->generation++;
        s->state = S_STARTING;
        s->app_id[0] = s->ui_url[0] = s->failure[0] = '\0';
        log_warn("the Spark driver (JVM) died; the executor starts a new session");
    } else if (strcmp(state, "failed") == 0 && s->state == S_READY) {
        const char *err = json_string_value(json_object_get(ev, "error")) ?: "unknown error";
        kill_on_master(k, s->app_id);
        session_forget_record(s);
        s->state = S_FAILED;
        s->app_id[0] = s->ui_url[0] = '\0';
        utf8_copy(s->failure, sizeof s->failure, err);
        log_warn("Spark session failed: %.300s", err);
    } else if (strcmp(state, "stopped") == 0) {
        /* gave_way: the session never started, a cell's own takes its JVM (issue 15). */
        int gave_way = s->state == S_STARTING && json_is_true(json_object_get(ev, "gave_way"));
        if ((s->state != S_NEGOTIATING && s->state != S_STARTING) || gave_way)
            s->state = S_STOPPED;
        if (gave_way)
            log_info("the Spark session gave way to the one a cell builds");
    }
}

void session_on_shutdown(struct kernel *k, void *self, int executor_detached)
{
    struct spark *s = spark_of(k);
    s->generation++;
    progress_destroy(&s->progress);
    session_forget_record(s);
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
