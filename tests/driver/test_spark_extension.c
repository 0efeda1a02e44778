/* The Spark extension (driver/) driven through its seam by a fake kernel core: this file
 * implements kernel/extension.h's calls and records them, runs the extension's event sources
 * with poll(2), and a forked HTTP server answers as the master and the driver's REST API
 * with recorded answers (tests/unit/data). No Python, no JVM, no kernel core. Linked with the
 * driver's objects only (make unit builds it as a second criterion binary). */
#include "../../driver/spark.h"
#include "../../kernel/extension.h"
#include "../../kernel/log.h"
#include "../support/fake_http.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the fake core ------------------------------------------------------------------------ */

struct kernel {
    struct kernel_extension ext;
    struct kernel_source sources[4];
    int n_sources;
    int running;           /* a cell is in the executor */
    json_t *published;     /* [[msg_type, content], ...] */
    json_t *sent;          /* commands to the executor */
    json_t *controls;      /* commands on its control pipe */
    json_t *continued;     /* codes given to kernel_continue_cell */
    char failed[64];       /* ename given to kernel_fail_cell */
    int released, resumed; /* kernel_release_reply, kernel_resume_queue calls */
};

int kernel_add_source(struct kernel *k, const struct kernel_source *src)
{
    if (k->n_sources >= 4)
        return -1;
    k->sources[k->n_sources++] = *src;
    return 0;
}

int kernel_set_extension(struct kernel *k, const struct kernel_extension *ext)
{
    if (k->ext.name != NULL)
        return -1;
    k->ext = *ext;
    return 0;
}

void *kernel_extension_self(const struct kernel *k)
{
    return k->ext.self;
}

void kernel_publish_output(struct kernel *k, const char *msg_type, json_t *content)
{
    json_array_append_new(k->published, json_pack("[s, o]", msg_type, content));
}

int kernel_send_executor(struct kernel *k, json_t *cmd)
{
    json_array_append_new(k->sent, json_deep_copy(cmd));
    return 0;
}

int kernel_control_executor(struct kernel *k, json_t *cmd)
{
    json_array_append_new(k->controls, json_deep_copy(cmd));
    return 0;
}

void kernel_continue_cell(struct kernel *k, const char *code)
{
    json_array_append_new(k->continued, json_string(code));
}

void kernel_fail_cell(struct kernel *k, const char *ename, const char *evalue)
{
    snprintf(k->failed, sizeof k->failed, "%s", ename);
    kernel_publish_output(k, "error", json_pack("{s:s, s:s}", "ename", ename, "evalue", evalue));
}

void kernel_release_reply(struct kernel *k)
{
    k->released++;
}

void kernel_resume_queue(struct kernel *k)
{
    k->resumed++;
}

int kernel_cell_running(const struct kernel *k)
{
    return k->running;
}

const char *kernel_session_id(const struct kernel *k)
{
    return "fake-session";
}

/* One turn of the loop: poll the sources' fds until the earliest deadline (at most 50 ms),
 * then run every source. */
static void turn(struct kernel *k)
{
    struct pollfd pfd[64];
    struct kernel_fd fds[4][KERNEL_SOURCE_MAX_FDS];
    int nf[4], n = 0;
    long timeout = 50;
    for (int s = 0; s < k->n_sources; s++) {
        struct kernel_source *src = &k->sources[s];
        nf[s] = src->fds ? src->fds(src->self, fds[s], KERNEL_SOURCE_MAX_FDS) : 0;
        for (int i = 0; i < nf[s]; i++)
            pfd[n++] =
                (struct pollfd){fds[s][i].fd,
                                (short)(((fds[s][i].events & KERNEL_FD_READ) ? POLLIN : 0) |
                                        ((fds[s][i].events & KERNEL_FD_WRITE) ? POLLOUT : 0)),
                                0};
        long t = src->next_ms ? src->next_ms(src->self) : -1;
        if (t >= 0 && t < timeout)
            timeout = t;
    }
    poll(pfd, (nfds_t)n, (int)timeout);
    n = 0;
    for (int s = 0; s < k->n_sources; s++) {
        for (int i = 0; i < nf[s]; i++, n++)
            fds[s][i].revents = (short)(((pfd[n].revents & POLLIN) ? KERNEL_FD_READ : 0) |
                                        ((pfd[n].revents & POLLOUT) ? KERNEL_FD_WRITE : 0) |
                                        ((pfd[n].revents & POLLERR) ? KERNEL_FD_ERROR : 0));
        k->sources[s].run(k->sources[s].self, fds[s], nf[s]);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the loop until pred(k) or seconds pass; returns pred's last answer. */
static int run_until(struct kernel *k, int (*pred)(struct kernel *), double seconds)
{
    double end = now_s() + seconds;
    while (!pred(k) && now_s() < end)
        turn(k);
    return pred(k);
}

/* The first command sent of that type, or NULL. */
static json_t *sent_of(json_t *list, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return c;
    }
    return NULL;
}

/* The plain text of every display published so far, joined. */
static char *displayed(struct kernel *k)
{
    size_t i;
    json_t *m;
    json_t *all = json_array();
    json_array_foreach(k->published, i, m)
    {
        json_t *data = json_object_get(json_array_get(m, 1), "data");
        json_t *text = json_object_get(json_array_get(m, 1), "text");
        if (data)
            json_array_append(all, json_object_get(data, "text/plain"));
        else if (text)
            json_array_append(all, text);
    }
    char *out = json_dumps(all, 0);
    json_decref(all);
    return out;
}

/* ---- a stand-in for the master's UI and the driver's REST API ----------------------------- */

static char *load(const char *dir, const char *name)
{
    char path[512];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*s/../unit/data/%s/%s", (int)(slash - __FILE__), __FILE__, dir,
             name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run the tests from the repo root)", path);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A recorded answer from tests/unit/data, as a whole 200 response (malloc'd). */
static char *recorded(const char *dir, const char *name)
{
    char *body = load(dir, name);
    char *answer = fake_http_answer("200 OK", body);
    free(body);
    return answer;
}

static const char *FOUND = "HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n";

static void free_answers(struct fake_route *routes)
{
    for (struct fake_route *r = routes; r->method; r++)
        if (r->answer != FOUND)
            free((char *)r->answer);
}

/* ---- the extension, attached to a fake core ----------------------------------------------- */

static struct kernel *attach(int master_port, char *sessions_dir, char *extra_env, char *extra_env2)
{
    struct kernel *k = calloc(1, sizeof *k);
    k->published = json_array();
    k->sent = json_array();
    k->controls = json_array();
    k->continued = json_array();
    char master_ui[128], dir_env[600];
    snprintf(master_ui, sizeof master_ui, "SPARKERNEL_MASTER_UI_URL=http://127.0.0.1:%d",
             master_port);
    snprintf(dir_env, sizeof dir_env, "SPARKERNEL_SESSIONS_DIR=%s", sessions_dir);
    char *env[] = {"SPARK_MASTER_URL=spark://127.0.0.1:7077",
                   master_ui,
                   dir_env,
                   "SPARKERNEL_DRIVER_HOST=127.0.0.1",
                   "JPY_SESSION_NAME=notebooks/example.ipynb",
                   extra_env,
                   extra_env2,
                   NULL};
    char conn[700];
    snprintf(conn, sizeof conn, "%s/kernel-1234abcd.json", sessions_dir);
    cr_assert_eq(spark_attach(k, env, conn), 0);
    cr_assert_eq(spark_attach(k, env, conn), -1, "a second extension must be refused");
    return k;
}

static void detach(struct kernel *k)
{
    if (k->ext.shutdown)
        k->ext.shutdown(k, k->ext.self, 1);
    k->ext.destroy(k->ext.self);
    json_decref(k->published);
    json_decref(k->sent);
    json_decref(k->controls);
    json_decref(k->continued);
    free(k);
}

static int started(struct kernel *k)
{
    return sent_of(k->sent, "spark_start") != NULL || sent_of(k->sent, "spark_refused") != NULL;
}

static int reply_released(struct kernel *k)
{
    return k->released > 0;
}

static int published(struct kernel *k)
{
    return json_array_size(k->published) > 0;
}

static int continued(struct kernel *k)
{
    return json_array_size(k->continued) > 0 || k->failed[0];
}

static char sessions[] = "/tmp/sparkernel-driver-test-XXXXXX";

static void setup(void)
{
    log_set_level(LOG_ERROR);
    cr_assert_not_null(mkdtemp(sessions));
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", sessions);
    int rc = system(cmd);
    (void)rc;
}

TestSuite(spark_extension, .init = setup, .fini = teardown, .timeout = 60);

Test(spark_extension, negotiates_then_launches_with_the_notebooks_name_and_fixed_ports)
{
    struct fake_route routes[] = {
        {"GET", "/json/", recorded("master-json", "two-workers-idle.json")}, {NULL, NULL, NULL}};
    struct fake_http sv = fake_http_start(routes);
    struct kernel *k = attach(sv.port, sessions, NULL, NULL);
    k->ext.executor_ready(k, k->ext.self);
    cr_expect(k->ext.holds_queue(k, k->ext.self), "requests wait while the master is asked");
    cr_assert(run_until(k, started, 10), "no spark_start after the master answered");
    cr_expect_not(k->ext.holds_queue(k, k->ext.self));
    cr_expect_gt(k->resumed, 0, "the queue was not resumed after the negotiation");
    json_t *start = sent_of(k->sent, "spark_start");
    cr_assert_not_null(start, "refused: %s", json_dumps(k->sent, 0));
    json_t *conf = json_object_get(start, "conf");
    cr_expect_str_eq(json_string_value(json_object_get(conf, "spark.master")),
                     "spark://127.0.0.1:7077");
    cr_expect_str_eq(json_string_value(json_object_get(conf, "spark.driver.host")), "127.0.0.1");
    cr_expect_not_null(json_object_get(conf, "spark.driver.port"));
    cr_expect_str_eq(json_string_value(json_object_get(conf, "spark.sparkernel.notebook")),
                     "notebooks/example.ipynb");
    cr_expect(json_is_null(json_object_get(start, "cache_dir")), "unset: the executor takes XDG's");
    char *log = fake_http_stop(&sv, NULL);
    cr_expect(strstr(log, "GET /json/") != NULL, "%s", log);
    free(log);
    detach(k);
    free_answers(routes);
}

Test(spark_extension, an_impossible_request_is_refused_with_the_workers_table)
{
    struct fake_route routes[] = {{"GET", "/json/", recorded("master-json", "no-workers.json")},
                                  {NULL, NULL, NULL}};
    struct fake_http sv = fake_http_start(routes);
    struct kernel *k = attach(sv.port, sessions, NULL, NULL);
    k->ext.executor_ready(k, k->ext.self);
    cr_assert(run_until(k, started, 10));
    json_t *refused = sent_of(k->sent, "spark_refused");
    cr_assert_not_null(refused);
    cr_expect(strstr(json_string_value(json_object_get(refused, "message")), "Workers of") != NULL);
    cr_expect_not(k->ext.holds_queue(k, k->ext.self));
    /* %spark status says why, and the cell goes on with nothing left to run. */
    cr_expect(k->ext.cell_code(k, k->ext.self, "%spark status\n"));
    cr_assert(run_until(k, continued, 10));
    cr_expect_str_eq(json_string_value(json_array_get(k->continued, 0)), "");
    char *shown = displayed(k);
    cr_expect(strstr(shown, "refused") != NULL, "%s", shown);
    free(shown);
    free(fake_http_stop(&sv, NULL));
    detach(k);
    free_answers(routes);
}

Test(spark_extension, a_bad_magic_fails_the_cell_and_plain_code_is_left_alone)
{
    struct fake_route routes[] = {{NULL, NULL, NULL}};
    struct fake_http sv = fake_http_start(routes);
    struct kernel *k = attach(sv.port, sessions, NULL, NULL);
    cr_expect_not(k->ext.cell_code(k, k->ext.self, "spark.range(3).count()"));
    cr_expect(k->ext.cell_code(k, k->ext.self, "%spark nonsense"));
    cr_expect_str_eq(k->failed, "SparkMagicError");
    free(fake_http_stop(&sv, NULL));
    detach(k);
}

/* One recorded job (GET .../jobs/<id> answers a JobData, not a list). */
static char *recorded_job(const char *name, int id)
{
    char *body = load("progress", name);
    json_t *jobs = json_loads(body, 0, NULL);
    free(body);
    size_t i;
    json_t *job, *found = NULL;
    json_array_foreach(jobs, i, job)
    {
        if (json_integer_value(json_object_get(job, "jobId")) == id)
            found = job;
    }
    cr_assert_not_null(found, "no job %d in %s", id, name);
    char *one = json_dumps(found, 0);
    char *answer = fake_http_answer("200 OK", one);
    free(one);
    json_decref(jobs);
    return answer;
}

/* The session of app-1 ready, its UI the fake server; cell 7 begins and runs until its jobs
 * are displayed. */
static struct kernel *cell_seven_displayed(struct fake_http *rest)
{
    struct kernel *k = attach(rest->port, sessions, NULL, NULL);
    k->ext.executor_ready(k, k->ext.self);
    cr_assert(run_until(k, started, 10));
    char ui[64];
    snprintf(ui, sizeof ui, "http://127.0.0.1:%d", rest->port);
    json_t *ready = json_pack("{s:s, s:s, s:s, s:s, s:{s:i, s:i, s:i, s:i}}", "type", "spark_state",
                              "state", "ready", "app_id", "app-1", "ui_url", ui, "ports", "slot", 0,
                              "driver", 7078, "block_manager", 7079, "ui", rest->port);
    cr_expect(k->ext.event(k, k->ext.self, "spark_state", ready));
    cr_expect_not(k->ext.event(k, k->ext.self, "no_such_event", ready));
    json_decref(ready);
    k->running = 1;
    k->ext.cell_begin(k, k->ext.self, 7);
    cr_assert(run_until(k, published, 10), "no job displayed");
    return k;
}

static void cell_jobs(struct kernel *k, const char *tag, json_t *ids)
{
    json_t *ev = json_pack("{s:s, s:s, s:o}", "type", "cell_jobs", "tag", tag, "ids", ids);
    cr_expect(k->ext.event(k, k->ext.self, "cell_jobs", ev));
    json_decref(ev);
}

Test(spark_extension, a_cells_jobs_become_displays_and_the_reply_waits_for_their_last_state)
{
    struct fake_route routes[] = {
        {"GET", "/json/", recorded("master-json", "two-workers-idle.json")},
        {"GET", "/api/v1/applications/app-1/jobs", recorded("progress", "jobs-03.json")},
        {"GET", "/api/v1/applications/app-1/stages", recorded("progress", "stages-03.json")},
        {"POST", "/app/kill/", FOUND},
        {NULL, NULL, NULL}};
    struct fake_http rest = fake_http_start(routes);
    /* Cell 7 runs: the recorded answer holds jobs of groups sparkernel-7 and sparkernel-6. */
    struct kernel *k = cell_seven_displayed(&rest);
    char *shown = displayed(k);
    cr_expect(strstr(shown, "[Spark job 1]") != NULL, "%s", shown);
    cr_expect(strstr(shown, "[Spark job 2]") == NULL, "a job of another cell shown: %s", shown);
    free(shown);
    cr_expect(k->ext.cell_end(k, k->ext.self), "the reply must wait for the jobs' last state");
    cr_expect(run_until(k, reply_released, 10));
    json_t *last = json_array_get(k->published, json_array_size(k->published) - 1);
    cr_expect_str_eq(json_string_value(json_array_get(last, 0)), "update_display_data");
    k->running = 0;
    /* The executor dies: its application is killed on the master, its id percent-encoded. */
    k->ext.executor_died(k, k->ext.self);
    for (int i = 0; i < 20; i++)
        turn(k);
    char *log = fake_http_stop(&rest, NULL);
    cr_expect(strstr(log, "GET /api/v1/applications/app-1/jobs") != NULL, "%s", log);
    cr_expect(strstr(log, "POST /app/kill/ id=app-1&terminate=true") != NULL, "%s", log);
    free(log);
    detach(k);
    free_answers(routes);
}

/* Issue 15: a first cell built its own session while the kernel's was starting, which gave
 * way before its context was built; the kernel follows the cell's application (progress
 * from its UI, the kill when the executor dies), though its own session was never ready. */
Test(spark_extension, a_session_that_gave_way_follows_the_one_the_cell_built)
{
    struct fake_route routes[] = {
        {"GET", "/json/", recorded("master-json", "two-workers-idle.json")},
        {"GET", "/api/v1/applications/app-2/jobs", recorded("progress", "jobs-03.json")},
        {"GET", "/api/v1/applications/app-2/stages", recorded("progress", "stages-03.json")},
        {"POST", "/app/kill/", FOUND},
        {NULL, NULL, NULL}};
    struct fake_http rest = fake_http_start(routes);
    struct kernel *k = attach(rest.port, sessions, NULL, NULL);
    k->ext.executor_ready(k, k->ext.self);
    cr_assert(run_until(k, started, 10));
    json_t *gave =
        json_pack("{s:s, s:s, s:b}", "type", "spark_state", "state", "stopped", "gave_way", 1);
    cr_expect(k->ext.event(k, k->ext.self, "spark_state", gave));
    json_decref(gave);
    /* Not left starting: were the cell's own session to fail, %spark status says so. */
    cr_expect(k->ext.cell_code(k, k->ext.self, "%spark status"));
    cr_expect(run_until(k, published, 10), "no status shown");
    char *status = displayed(k);
    cr_expect(strstr(status, "Spark session: stopped") != NULL, "%s", status);
    free(status);
    json_array_clear(k->published);
    char ui[64];
    snprintf(ui, sizeof ui, "http://127.0.0.1:%d", rest.port);
    json_t *built =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:{s:i}}", "type", "spark_state", "state", "ready",
                  "app_id", "app-2", "ui_url", ui, "switch", 1, "ports", "ui", rest.port);
    cr_expect(k->ext.event(k, k->ext.self, "spark_state", built));
    json_decref(built);
    k->running = 1;
    k->ext.cell_begin(k, k->ext.self, 7);
    cr_expect(run_until(k, published, 10), "no job displayed");
    char *shown = displayed(k);
    cr_expect(strstr(shown, "[Spark job 1]") != NULL, "%s", shown);
    free(shown);
    k->ext.cell_end(k, k->ext.self);
    cr_expect(run_until(k, reply_released, 10));
    k->running = 0;
    k->ext.executor_died(k, k->ext.self);
    for (int i = 0; i < 20; i++)
        turn(k);
    char *log = fake_http_stop(&rest, NULL);
    cr_expect(strstr(log, "GET /api/v1/applications/app-2/jobs") != NULL, "%s", log);
    cr_expect(strstr(log, "POST /app/kill/ id=app-2&terminate=true") != NULL, "%s", log);
    free(log);
    detach(k);
    free_answers(routes);
}

Test(spark_extension, the_last_look_asks_only_for_the_jobs_of_the_cell_not_seen_ending)
{
    struct fake_route routes[] = {
        {"GET", "/json/", recorded("master-json", "two-workers-idle.json")},
        {"GET", "/api/v1/applications/app-1/jobs/1", recorded_job("jobs-09.json", 1)},
        {"GET", "/api/v1/applications/app-1/jobs/3", recorded_job("jobs-11.json", 3)},
        {"GET", "/api/v1/applications/app-1/jobs", recorded("progress", "jobs-03.json")},
        {"GET", "/api/v1/applications/app-1/stages", recorded("progress", "stages-03.json")},
        {NULL, NULL, NULL}};
    struct fake_http rest = fake_http_start(routes);
    struct kernel *k = cell_seven_displayed(&rest); /* job 1 shown running */
    /* Another cell's report is not this cell's; then the executor lists jobs 1 and 3 (3 ran
     * after the last poll: never seen). */
    cell_jobs(k, "sparkernel-6", json_pack("[i]", 0));
    cell_jobs(k, "sparkernel-7", json_pack("[i, i]", 1, 3));
    size_t before = json_array_size(k->published);
    cr_expect(k->ext.cell_end(k, k->ext.self), "the reply waits for jobs 1 and 3");
    cr_expect(run_until(k, reply_released, 10));
    char *shown = displayed(k);
    cr_expect(strstr(shown, "[Spark job 3]") != NULL, "the job never polled is shown: %s", shown);
    free(shown);
    cr_expect_gt(json_array_size(k->published), before);
    json_t *m;
    size_t i;
    int job1_final = 0;
    json_array_foreach(k->published, i, m)
    {
        const char *text = json_string_value(
            json_object_get(json_object_get(json_array_get(m, 1), "data"), "text/plain"));
        if (i >= before && text && strstr(text, "[Spark job 1]") && strstr(text, "SUCCEEDED"))
            job1_final = 1;
    }
    cr_expect(job1_final, "job 1's display did not end SUCCEEDED");
    k->running = 0;
    char *log = fake_http_stop(&rest, "GET");
    cr_expect(strstr(log, "/api/v1/applications/app-1/jobs/1 ") != NULL, "%s", log);
    cr_expect(strstr(log, "/api/v1/applications/app-1/jobs/3 ") != NULL, "%s", log);
    cr_expect(strstr(log, "/api/v1/applications/app-1/jobs/0 ") == NULL, "another cell's: %s", log);
    free(log);
    detach(k);
    free_answers(routes);
}

Test(spark_extension, many_jobs_unseen_the_last_look_asks_for_the_list_once)
{
    struct fake_route routes[] = {
        {"GET", "/json/", recorded("master-json", "two-workers-idle.json")},
        {"GET", "/api/v1/applications/app-1/jobs", recorded("progress", "jobs-03.json")},
        {"GET", "/api/v1/applications/app-1/stages", recorded("progress", "stages-03.json")},
        {NULL, NULL, NULL}};
    struct fake_http rest = fake_http_start(routes);
    struct kernel *k = cell_seven_displayed(&rest);
    json_t *ids = json_array();
    for (int i = 1; i <= 40; i++)
        json_array_append_new(ids, json_integer(1000 + i));
    cell_jobs(k, "sparkernel-7", ids);
    cr_expect(k->ext.cell_end(k, k->ext.self));
    cr_expect(run_until(k, reply_released, 10));
    k->running = 0;
    char *log = fake_http_stop(&rest, "GET");
    cr_expect(strstr(log, "/api/v1/applications/app-1/jobs/") == NULL, "one by one: %s", log);
    free(log);
    detach(k);
    free_answers(routes);
}

Test(spark_extension, every_job_seen_ending_the_reply_goes_at_once)
{
    struct fake_route routes[] = {
        {"GET", "/json/", recorded("master-json", "two-workers-idle.json")},
        {"GET", "/api/v1/applications/app-1/jobs", recorded("progress", "jobs-13.json")},
        {"GET", "/api/v1/applications/app-1/stages", recorded("progress", "stages-13.json")},
        {NULL, NULL, NULL}};
    struct fake_http rest = fake_http_start(routes);
    struct kernel *k = cell_seven_displayed(&rest); /* jobs 1 and 3 done, 4 failed */
    cell_jobs(k, "sparkernel-7", json_pack("[i, i, i]", 1, 3, 4));
    size_t polls = 0;
    char *log = NULL;
    cr_expect_not(k->ext.cell_end(k, k->ext.self), "nothing left to ask: no reply held");
    cr_expect_eq(k->released, 0);
    k->running = 0;
    log = fake_http_stop(&rest, "GET");
    for (const char *p = log; (p = strstr(p, "/api/v1/applications/app-1/jobs/")) != NULL; p++)
        polls++;
    cr_expect_eq(polls, 0, "%s", log);
    free(log);
    detach(k);
    free_answers(routes);
}

Test(spark_extension, behind_a_proxy_the_ui_links_and_spark_proxy_base_follow_the_slot)
{
    struct fake_route routes[] = {
        {"GET", "/json/", recorded("master-json", "two-workers-idle.json")}, {NULL, NULL, NULL}};
    struct fake_http sv = fake_http_start(routes);
    struct kernel *k = attach(sv.port, sessions,
                              "SPARKERNEL_UI_PROXY=http://lab.example:8888/user/a/proxy/{port}/",
                              "SPARKERNEL_CACHE_DIR=/var/cache/nb");
    k->ext.executor_ready(k, k->ext.self);
    cr_assert(run_until(k, started, 10));
    json_t *start = sent_of(k->sent, "spark_start");
    cr_assert_not_null(start);
    /* The Python side gets the kernel's settings with the start, never from its environment. */
    cr_expect_str_eq(json_string_value(json_object_get(start, "cache_dir")), "/var/cache/nb");
    int ui =
        atoi(json_string_value(json_object_get(json_object_get(start, "conf"), "spark.ui.port")));
    char base[128];
    snprintf(base, sizeof base, "/user/a/proxy/%d", ui);
    cr_expect_str_eq(
        json_string_value(json_object_get(json_object_get(start, "conf"), "spark.ui.proxyBase")),
        base);
    cr_expect_str_eq(json_string_value(json_object_get(start, "ui_proxy")), "/user/a/proxy/{port}");
    json_t *ready =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:i, s:i, s:i, s:i}}", "type", "spark_state", "state",
                  "ready", "app_id", "app-9", "ui_url", "http://10.0.0.5:4041", "ports", "slot", 1,
                  "driver", 7080, "block_manager", 7081, "ui", 4041);
    k->ext.event(k, k->ext.self, "spark_state", ready);
    json_decref(ready);
    cr_expect(k->ext.cell_code(k, k->ext.self, "%spark ui"));
    char *shown = displayed(k);
    cr_expect(strstr(shown, "Spark UI: http://lab.example:8888/user/a/proxy/4041 (app-9)") != NULL,
              "%s", shown);
    free(shown);
    free(fake_http_stop(&sv, NULL));
    detach(k);
    free_answers(routes);
}

/* ---- issue 19: while another application waits, every session keeps to a fair share ------ */

#define SHARE_MASTER(apps)                                                                         \
    "{\"url\":\"spark://127.0.0.1:7077\",\"status\":\"ALIVE\",\"cores\":2,\"coresused\":2,"        \
    "\"workers\":[{\"id\":\"worker-1\",\"host\":\"127.0.0.1\",\"port\":1,\"cores\":2,"             \
    "\"coresused\":2,\"coresfree\":0,\"memory\":2048,\"memoryused\":2048,\"memoryfree\":0,"        \
    "\"state\":\"ALIVE\"}],\"activeapps\":[" apps "]}"
#define SHARE_ME(cores)                                                                            \
    "{\"id\":\"app-1\",\"name\":\"sparkernel 1234abcd\",\"cores\":" #cores ","                     \
    "\"state\":\"RUNNING\",\"starttime\":1795610740187}"
#define SHARE_HOLDER                                                                               \
    ",{\"id\":\"app-3\",\"name\":\"report\",\"cores\":2,\"state\":\"RUNNING\","                    \
    "\"starttime\":1795610700000}"
#define SHARE_WAITER                                                                               \
    ",{\"id\":\"app-2\",\"name\":\"etl\",\"cores\":0,\"state\":\"WAITING\","                       \
    "\"starttime\":1795610755582}"

/* The smallest `keep` of the spark_shrink commands the kernel sent while cell 7 ran for 3 s,
 * the master answering master_json; -1 when it sent none. */
static int kept_while(const char *master_json)
{
    struct fake_route routes[] = {
        {"GET", "/json/", fake_http_answer("200 OK", master_json)},
        {"GET", "/api/v1/applications/app-1/jobs", recorded("progress", "jobs-03.json")},
        {"GET", "/api/v1/applications/app-1/stages", recorded("progress", "stages-03.json")},
        {"POST", "/app/kill/", FOUND},
        {NULL, NULL, NULL}};
    struct fake_http rest = fake_http_start(routes);
    struct kernel *k = cell_seven_displayed(&rest);
    double until = now_s() + 3.0;
    while (now_s() < until)
        turn(k);
    int least = -1;
    size_t i;
    json_t *cmd;
    json_array_foreach(k->controls, i, cmd)
    {
        json_t *keep = json_object_get(cmd, "keep");
        if (strcmp(json_string_value(json_object_get(cmd, "type")), "spark_shrink") == 0 &&
            json_is_integer(keep) && (least < 0 || json_integer_value(keep) < least))
            least = (int)json_integer_value(keep);
    }
    k->ext.cell_end(k, k->ext.self);
    run_until(k, reply_released, 10);
    k->running = 0;
    free(fake_http_stop(&rest, NULL));
    detach(k);
    free_answers(routes);
    return least;
}

Test(spark_extension, while_another_waits_a_session_without_cores_asks_for_no_more_than_its_share)
{
    /* The master hands freed cores out in registration order: a session with none that
     * wants some is held to its share (2 cores, three applications: 1) so that cores given
     * back reach the one waiting too, not only the oldest. */
    cr_expect_eq(kept_while(SHARE_MASTER(SHARE_ME(0) SHARE_HOLDER SHARE_WAITER)), 1);
    /* Holding its share and more: the rest goes back (as before). */
    cr_expect_eq(kept_while(SHARE_MASTER(SHARE_ME(2) SHARE_WAITER)), 1);
    /* Nobody else waits: no cap. */
    cr_expect_eq(kept_while(SHARE_MASTER(SHARE_ME(0) SHARE_HOLDER)), -1);
}
