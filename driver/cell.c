/* cell: the running cell's Spark jobs: live progress from the driver's REST API, a last look
 * before the reply, the line about executors a job waits for and the endless-WAITING report
 * from the master's answer; the driver's timers. */
#include "driver.h"

#include "../kernel/log.h"
#include "../kernel/utf8.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    json_decref(s->cell_jobs);
    s->cell_jobs = NULL;
    s->cell_active = 0;
    s->idle_since = spark_wall();
    s->yielded = s->give_back_sent = 0;
    s->next_yield_poll = spark_now() + 0.5; /* not between the cells of a "run all" */
    session_publish_record(s);
}

/* The cell's last displays, with its jobs' final states; then the cell is over. */
static void finish_cell(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (s->progress) {
        double now = spark_now();
        progress_finish(s->progress, now);
        emit_progress(k, now);
    }
    cell_over(s);
}

static void release_reply(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (!s->holding_reply)
        return;
    s->holding_reply = 0;
    finish_cell(k);
    kernel_release_reply(k);
}

static void on_stages(void *ctx, int status, long code, const char *body, size_t len,
                      const char *error)
{
    (void)code, (void)error;
    struct kernel *k = spark_call_take(ctx, status);
    if (k != NULL && spark_of(k)->progress && status == HTTP_OK)
        progress_update_stages(spark_of(k)->progress, body, len);
}

static void ask_stages(struct kernel *k, long timeout_ms)
{
    struct spark *s = spark_of(k);
    char url[800];
    snprintf(url, sizeof url, "%s/api/v1/applications/%s/stages?status=active", s->poll_url,
             s->app_id);
    spark_ask(k, url, timeout_ms, on_stages);
}

static void on_jobs(void *ctx, int status, long code, const char *body, size_t len,
                    const char *error)
{
    (void)code, (void)error;
    struct kernel *k = spark_call_take(ctx, status);
    if (k == NULL)
        return;
    struct spark *s = spark_of(k);
    s->jobs_in_flight = 0;
    if (s->progress && status == HTTP_OK) {
        int rc = progress_update_jobs(s->progress, body, len, spark_now());
        if (rc != 0)
            log_debug("driver /jobs answer not understood: %s", progress_strerror(rc));
        emit_progress(k, spark_now());
        /* The active stage only while a job of the cell runs: no second request per look
         * in a cell that runs none (Python, or between its jobs). */
        if (!s->holding_reply && progress_running(s->progress))
            ask_stages(k, 2000);
    }
    if (s->holding_reply && s->final_fetches == 0) /* else the last look's answers release */
        release_reply(k);
}

/* One job of the last look (GET .../jobs/<id>: one JobData): fed as a list of one. */
static void on_final_job(void *ctx, int status, long code, const char *body, size_t len,
                         const char *error)
{
    (void)code, (void)error;
    struct kernel *k = spark_call_take(ctx, status);
    if (k == NULL)
        return; /* the session went: it cleared the count and released the reply */
    struct spark *s = spark_of(k);
    if (status == HTTP_OK && s->progress) {
        struct sb list = {0};
        sb_add(&list, "[%.*s]", (int)len, body);
        int rc = list.failed ? PROGRESS_ENOMEM
                             : progress_update_jobs(s->progress, list.s, list.len, spark_now());
        if (rc != 0)
            log_debug("driver /jobs/<id> answer not understood: %s", progress_strerror(rc));
        sb_free(&list);
    }
    if (s->final_fetches > 0 && --s->final_fetches == 0)
        release_reply(k);
}

static void poll_jobs(struct kernel *k, long timeout_ms)
{
    struct spark *s = spark_of(k);
    char url[800];
    snprintf(url, sizeof url, "%s/api/v1/applications/%s/jobs", s->poll_url, s->app_id);
    if (spark_ask(k, url, timeout_ms, on_jobs) == HTTP_OK)
        s->jobs_in_flight = 1;
}

/* Whether no alive worker can ever run one of this application's executors: its memory
 * per executor as the master lists it, its cores as the session was built with (a session
 * a cell builds itself with spark.executor.memory=100g waits forever on PySpark too). The
 * verdict says what was asked, what the workers offer and what to set instead. */
static int cannot_fit(const struct spark *s, const struct master_status *ms,
                      const struct master_app *mine, char *verdict, size_t len)
{
    return mine != NULL && mine->memoryperexecutor > 0 &&
           master_check_request(ms, s->executor_cores, (long)mine->memoryperexecutor, verdict,
                                len) == MASTER_ETOOBIG;
}

/* Says why the master still gives this notebook's application no executors while a job
 * waits: its executors fit no worker (what to set instead), other applications hold the
 * cores (named, with who holds them), or the executors granted cannot reach this driver. */
static void report_waiting(struct kernel *k, const struct master_status *ms,
                           const struct master_app *mine, double waited)
{
    struct spark *s = spark_of(k);
    const char *host = settings_get(s->settings, "spark.driver.host");
    struct doc d = {0};
    int others = 0;
    for (size_t i = 0; i < ms->napps; i++)
        if (strcmp(ms->apps[i].id, s->app_id) != 0 && ms->apps[i].cores > 0)
            others++;
    doc_mark(&d, "<div style=\"border-left:4px solid #d97706;padding:4px 8px\">", "");
    doc_in(&d, "b",
           "Spark has given this notebook's application (%s) no executors for %.0f s while a "
           "job waits",
           s->app_id, waited);
    doc_say(&d, ", the endless \"Initial job has not accepted any resources\".");
    doc_mark(&d, "<br>", "\n");
    char verdict[1024];
    if (cannot_fit(s, ms, mine, verdict, sizeof verdict)) {
        doc_in(&d, "b", "No worker can ever run its executors");
        doc_say(&d, ": %s Then stop this session (", verdict);
        doc_in(&d, "code", "spark.stop()");
        doc_say(&d, ") and build it again with the smaller setting, or ");
        doc_in(&d, "code", "%%spark restart");
        doc_say(&d, " for the kernel's own.");
    } else if (others > 0) {
        doc_say(&d, "Likely cause: other applications hold the cluster's cores (%d of %d in use):",
                ms->coresused, ms->cores);
        doc_mark(&d, "<ul>", "\n");
        for (size_t i = 0; i < ms->napps; i++) {
            const struct master_app *a = &ms->apps[i];
            if (strcmp(a->id, s->app_id) == 0 || a->cores == 0)
                continue;
            char holder[512];
            sharing_holder(a, s->app_id, s->sessions_dir, spark_wall(), holder, sizeof holder);
            doc_mark(&d, "<li>", "  ");
            doc_say(&d, "%s \"%s\": %d cores, %lld MB per executor, %s%s%s", a->id, a->name,
                    a->cores, a->memoryperexecutor, a->state, holder[0] ? "; " : "", holder);
            doc_mark(&d, "</li>", "\n");
        }
        doc_mark(&d, "</ul>", "");
        doc_say(&d, "Ask their owners to stop idle sessions, or lower this notebook's needs (");
        doc_in(&d, "code", "%%spark config spark.executor.cores=1");
        doc_say(&d, ", then ");
        doc_in(&d, "code", "%%spark restart");
        doc_say(&d, ").");
    } else {
        if (mine != NULL && mine->cores > 0) {
            doc_say(&d,
                    "The master granted it %d cores, but its executors have not run a task: "
                    "they are still starting (a busy machine), or ",
                    mine->cores);
            doc_in(&d, "b", "they cannot reach this driver");
        } else {
            doc_say(&d,
                    "No other application holds the cores (%d of %d in use), so the likely "
                    "cause is that ",
                    ms->coresused, ms->cores);
            doc_in(&d, "b", "the workers cannot reach this driver");
        }
        doc_say(&d, " at ");
        doc_in(&d, "code", "%s:%d", host ? host : "?", s->ports.driver);
        doc_say(&d, " (block manager %d). If this lasts, check ", s->ports.block_manager);
        doc_in(&d, "code", "spark.driver.host");
        doc_say(&d, " (the pod IP or the headless Service name) and that those ports are "
                    "exposed, then ");
        doc_in(&d, "code", "%%spark restart");
        doc_say(&d, ".");
    }
    doc_mark(&d, " ", "\n");
    doc_say(&d, "The job keeps waiting; interrupt the kernel to cancel it.");
    doc_mark(&d, "</div>", "");
    spark_show(k, &d);
    log_warn("cell %d: application %s has had no executors for %.0f s", s->cell_count, s->app_id,
             waited);
}

/* One line in the cell when a job of a warm session waits for executors, saying why as far
 * as the master's answer tells: no worker registered (a master that has just restarted gets
 * its workers back within seconds), every core held by other applications, or the master
 * still starting this session's executors (said only if that takes a few seconds). */
static void executors_notice(struct kernel *k, const struct master_status *ms, double waited)
{
    struct spark *s = spark_of(k);
    int free_cores = ms->cores - ms->coresused;
    char verdict[2];
    if (cannot_fit(s, ms, master_find_app(ms, s->app_id), verdict, sizeof verdict))
        return; /* the report says why at once */
    if (ms->aliveworkers > 0 && free_cores > 0 && waited < 3.0)
        return;
    s->executors_noticed = 1;
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
    spark_stream(k, "stdout", line);
}

static void on_master_poll(void *ctx, int status, long code, const char *body, size_t len,
                           const char *error)
{
    (void)code, (void)error;
    struct kernel *k = spark_call_take(ctx, status);
    if (k == NULL)
        return;
    struct spark *s = spark_of(k);
    s->master_in_flight = 0;
    struct master_status *ms = NULL;
    if (status != HTTP_OK || master_parse(body, len, &ms) != MASTER_OK)
        return;
    const struct master_app *mine;
    char who[400];
    share_observe(k, ms, &mine, who, sizeof who);
    if (!s->cell_active || s->progress == NULL) {
        master_status_destroy(&ms);
        return;
    }
    /* A job of this cell running with no task for the whole threshold: either no executor
     * was granted (cores 0: others hold them) or the granted ones never reach the driver
     * (they start, fail to call back, and the worker starts new ones). */
    double since = progress_waiting(s->progress) ? progress_waiting_since(s->progress) : 0;
    double now = spark_now();
    if (since > 0 && mine && mine->cores == 0 && !s->executors_noticed && now - since >= 1.0)
        executors_notice(k, ms, now - since);
    /* Executors no worker can run: said at once, not after the report's threshold. */
    char verdict[2];
    int never = since > 0 && mine && mine->cores == 0 && now - since >= 1.0 &&
                cannot_fit(s, ms, mine, verdict, sizeof verdict);
    if (since > 0 && !s->waiting_reported &&
        (never ||
         now - since >= settings_get_int(s->settings, "sparkernel.waiting.report.s", 10))) {
        s->waiting_reported = 1;
        report_waiting(k, ms, mine, now - since);
    }
    master_status_destroy(&ms);
}

/* The Spark job tag the executor puts on the running cell's jobs (the Python side builds
 * the same name: sparkernel_executor/cell.py, Cell.join_tag). */
#define CELL_TAG_LEN 32
static void cell_tag(const struct spark *s, char tag[CELL_TAG_LEN])
{
    snprintf(tag, CELL_TAG_LEN, "sparkernel-%d", s->cell_count);
}

/* Follows the running cell's jobs, once there is a session to ask. */
void cell_follow(struct spark *s)
{
    if (!s->cell_active || s->progress != NULL || s->state != S_READY || !s->app_id[0] ||
        !s->ui_url[0])
        return;
    char tag[CELL_TAG_LEN];
    cell_tag(s, tag);
    s->progress = progress_new(tag, s->ui_url, s->app_id);
    s->next_jobs_poll = spark_now() + 0.25;
    s->next_master_poll = spark_now() + 1.0;
}

void cell_begin(struct kernel *k, void *self, int count)
{
    struct spark *s = spark_of(k);
    s->cell_active = 1;
    s->cell_count = count;
    s->waiting_reported = 0;
    s->executors_noticed = 0;
    session_publish_record(s);
    progress_destroy(&s->progress);
    cell_follow(s); /* or when the session becomes ready, if the cell waits for it */
}

void cell_on_jobs(struct kernel *k, json_t *ev)
{
    struct spark *s = spark_of(k);
    json_t *ids = json_object_get(ev, "ids");
    char tag[CELL_TAG_LEN];
    cell_tag(s, tag);
    const char *of = json_string_value(json_object_get(ev, "tag"));
    if (!s->cell_active || !json_is_array(ids) || of == NULL || strcmp(of, tag) != 0)
        return; /* another cell's, or not understood: the last look asks for every job */
    json_decref(s->cell_jobs);
    s->cell_jobs = json_incref(ids);
    log_debug("cell %d: the executor lists %zu job(s)", s->cell_count, json_array_size(ids));
}

/* Past this many jobs to ask for one by one, the last look asks for /jobs once. */
#define LAST_LOOK_MAX_JOBS 16

/* The last look when the executor listed the cell's jobs: only those not seen ending, one
 * small answer each, instead of every job the application still lists (a thousand by
 * default, about 1 KB each). Returns the requests under way. */
static int ask_unsettled(struct kernel *k)
{
    struct spark *s = spark_of(k);
    size_t i, unsettled = 0;
    json_t *id;
    json_array_foreach(s->cell_jobs, i, id)
    {
        json_int_t n = json_integer_value(id);
        unsettled += !(json_is_integer(id) && n >= 0 && n <= INT_MAX &&
                       progress_job_settled(s->progress, (int)n));
    }
    if (unsettled > LAST_LOOK_MAX_JOBS) { /* many jobs unseen (or a list not to trust): */
        if (!s->jobs_in_flight)           /* one answer with all of them costs less */
            poll_jobs(k, 1000);
        return s->jobs_in_flight;
    }
    json_array_foreach(s->cell_jobs, i, id)
    {
        json_int_t n = json_integer_value(id);
        if (!json_is_integer(id) || n < 0 || n > INT_MAX ||
            progress_job_settled(s->progress, (int)n))
            continue;
        char url[800];
        snprintf(url, sizeof url, "%s/api/v1/applications/%s/jobs/%d", s->poll_url, s->app_id,
                 (int)n);
        if (spark_ask(k, url, 1000, on_final_job) == HTTP_OK)
            s->final_fetches++;
    }
    log_debug("cell %d: last look at %d job(s) not seen ending", s->cell_count, s->final_fetches);
    return s->final_fetches;
}

int cell_end(struct kernel *k, void *self)
{
    struct spark *s = spark_of(k);
    if (s->progress && progress_displayed(s->progress) && s->state == S_READY) {
        /* One last look at the jobs, so the cell keeps their final state. */
        s->holding_reply = 1;
        if (s->cell_jobs != NULL) {
            if (ask_unsettled(k) > 0)
                return 1;
            s->holding_reply = 0; /* every job's end already seen: nothing to wait for */
            finish_cell(k);
            return 0;
        }
        if (!s->jobs_in_flight)
            poll_jobs(k, 1000);
        return 1;
    }
    cell_over(s);
    return 0;
}

long cell_next_tick_ms(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (share_yield_armed(s)) {
        double ms = (s->next_yield_poll - spark_now()) * 1000.0;
        return ms < 0 ? 0 : (long)ms + 1;
    }
    if (!s->cell_active || s->progress == NULL)
        return -1;
    double next = s->next_jobs_poll < s->next_master_poll ? s->next_jobs_poll : s->next_master_poll;
    double ms = (next - spark_now()) * 1000.0;
    return ms < 0 ? 0 : (long)ms + 1;
}

void cell_tick(struct kernel *k)
{
    struct spark *s = spark_of(k);
    if (share_yield_armed(s) && spark_now() >= s->next_yield_poll) {
        /* Every second while another waits (its turn comes at a poll), else every 2 s. */
        s->next_yield_poll = spark_now() + (s->contended_since > 0 ? 1.0 : 2.0);
        if (!s->yield_in_flight) {
            if (spark_ask_master(k, 2000, share_on_yield_poll) == HTTP_OK)
                s->yield_in_flight = 1;
        }
        return;
    }
    if (!s->cell_active || s->progress == NULL || s->state != S_READY)
        return;
    double now = spark_now();
    if (now >= s->next_jobs_poll) {
        /* Often while a job has just started, less as it goes on, every 0.5 s while none
         * runs: each look costs the driver JVM 4-18 ms of CPU (DESIGN.md, "The live look
         * costs the driver JVM"); a job is displayed after 0.2 s anyway. */
        s->next_jobs_poll = now + progress_look_every(s->progress, now);
        if (!s->jobs_in_flight)
            poll_jobs(k, 2000);
    }
    if (now >= s->next_master_poll) {
        s->next_master_poll = now + 1.0;
        if (settings_is_cluster(s->settings) && !s->master_in_flight && s->master_ui[0]) {
            if (spark_ask_master(k, 2000, on_master_poll) == HTTP_OK)
                s->master_in_flight = 1;
        }
    }
}
