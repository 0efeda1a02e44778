/* spark: the Spark driver plugged into the kernel core (kernel/extension.h): its hooks, its
 * HTTP client and timers as event sources of the loop, and the helpers every file of the
 * driver uses (calls and their generations, output into the cell). */
#include "spark.h"

#include "driver.h"
#include "magics.h"

#include "../kernel/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The extension's state, as the core hands it back to every hook. */
struct spark *spark_of(struct kernel *k)
{
    return kernel_extension_self(k);
}

double spark_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double spark_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct call *spark_call_new(struct kernel *k)
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
struct kernel *spark_call_take(void *ctx, int status)
{
    struct call *c = ctx;
    struct kernel *k = c->k;
    int fresh = status != HTTP_ECANCELLED && c->generation == spark_of(k)->generation;
    free(c);
    return fresh ? k : NULL;
}

/* A GET whose answer goes to done with a fresh call; HTTP_OK once the request is under way
 * (the call is then done's to free), an error otherwise (nothing to free). */
int spark_ask(struct kernel *k, const char *url, long timeout_ms, http_done_fn done)
{
    struct call *c = spark_call_new(k);
    if (c == NULL)
        return HTTP_ENOMEM;
    int rc = http_request(spark_of(k)->http, url, NULL, timeout_ms, done, c);
    if (rc != HTTP_OK)
        free(c);
    return rc;
}

int spark_ask_master(struct kernel *k, long timeout_ms, http_done_fn done)
{
    char *url = master_url(spark_of(k)->master_ui, "/json/");
    int rc = url ? spark_ask(k, url, timeout_ms, done) : HTTP_ENOMEM;
    free(url);
    return rc;
}

int spark_ui_proxy(const struct spark *s, int port, int path_only, char *out, size_t len)
{
    const char *tmpl = settings_get(s->settings, "sparkernel.ui.proxy");
    if (tmpl == NULL || tmpl[0] == '\0' || len == 0)
        return -1;
    if (path_only) {
        const char *scheme = strstr(tmpl, "://");
        if (scheme != NULL) {
            const char *path = strchr(scheme + 3, '/');
            tmpl = path ? path : "/";
        }
    }
    struct sb b = {0};
    for (const char *p = tmpl; *p; p++) {
        if (strncmp(p, "{port}", 6) == 0 && port >= 0) {
            sb_add(&b, "%d", port);
            p += 5;
        } else {
            sb_add(&b, "%c", *p);
        }
    }
    snprintf(out, len, "%s", sb_str(&b));
    sb_free(&b);
    /* Spark's proxyBase and our links: no trailing slash (links add "/jobs/..."). */
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

void spark_stream(struct kernel *k, const char *name, const char *text)
{
    kernel_publish_output(k, "stream", json_pack("{s:s, s:s}", "name", name, "text", text));
}

void spark_display(struct kernel *k, const char *html, const char *plain)
{
    kernel_publish_output(k, "display_data",
                          json_pack("{s:{s:s, s:s}, s:{}, s:{}}", "data", "text/html", html,
                                    "text/plain", plain, "metadata", "transient"));
}

void spark_show(struct kernel *k, struct doc *d)
{
    spark_display(k, sb_str(&d->html), sb_str(&d->text));
    doc_free(d);
}

/* Sends cmd (stolen) to the executor, in order with the cells. */
void spark_send(struct kernel *k, json_t *cmd)
{
    kernel_send_executor(k, cmd);
    json_decref(cmd);
}

/* ---------- plugged into the kernel core (kernel/extension.h) ---------- */

static int on_event(struct kernel *k, void *self, const char *type, json_t *ev)
{
    if (strcmp(type, "spark_state") == 0)
        session_on_state(k, ev);
    else if (strcmp(type, "cell_jobs") == 0)
        cell_on_jobs(k, ev);
    else
        return 0;
    return 1;
}

/* A cell that starts with %spark lines: they run here, then the rest goes on. */
static int cell_code(struct kernel *k, void *self, const char *code)
{
    char *rest = NULL;
    json_t *lines = magics_split(code, &rest);
    int taken = json_array_size(lines) > 0;
    if (taken)
        magics_run(k, lines, rest); /* calls kernel_continue_cell or kernel_fail_cell */
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
    return cell_next_tick_ms(((struct spark *)self)->k);
}

static void timer_run(void *self, const struct kernel_fd *fds, int n)
{
    cell_tick(((struct spark *)self)->k);
}

int spark_attach(struct kernel *k, char **env, const char *connection_file)
{
    struct spark *s = spark_new(env, connection_file);
    if (s == NULL)
        return -1;
    s->k = k;
    struct kernel_extension ext = {.name = "spark",
                                   .self = s,
                                   .executor_ready = session_on_executor_ready,
                                   .executor_died = session_on_executor_died,
                                   .event = on_event,
                                   .holds_queue = session_holds_queue,
                                   .cell_code = cell_code,
                                   .cell_begin = cell_begin,
                                   .cell_end = cell_end,
                                   .kernel_info = kernel_info,
                                   .shutdown = session_on_shutdown,
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
