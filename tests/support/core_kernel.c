/* core_kernel: the kernel core (kernel/) alone, linked without the Spark driver, with a fake
 * extension that records every hook the core calls (one JSON line each, in the file named
 * by CORE_HOOK_LOG) and uses the calls the core offers back, driven by directives at the
 * top of a cell:
 *   %%later CODE   takes the cell and lets CODE run 1 s later (kernel_continue_cell from
 *                  a timer, one of the loop's event sources)
 *   %%fail         fails the cell (kernel_fail_cell: FakeError)
 *   %%hold CODE    runs CODE now, holds its reply, publishes a display 300 ms later and
 *                  then releases the reply (cell_end, kernel_publish_output,
 *                  kernel_release_reply)
 *   %%gate MS      ends the cell at once and holds the queue for MS ms (holds_queue, then
 *                  kernel_resume_queue)
 * tests/integration/test_core_seam.py runs it as a kernel through jupyter_client. */
#include "../../kernel/extension.h"
#include "../../kernel/kernel.h"
#include "../../kernel/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum fake_pending { NOTHING = 0, CONTINUE, RELEASE, RESUME };

struct fake {
    struct kernel *k;
    FILE *log;
    enum fake_pending pending;
    double due; /* monotonic seconds */
    char *later_code;
    int hold_next, gated;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One line per hook: {"hook": name, ...fields (stolen)}. */
static void record(struct fake *f, const char *hook, json_t *fields)
{
    json_t *line = fields ? fields : json_object();
    json_object_set_new(line, "hook", json_string(hook));
    if (f->log) {
        json_dumpf(line, f->log, JSON_COMPACT | JSON_SORT_KEYS);
        fputc('\n', f->log);
        fflush(f->log);
    }
    json_decref(line);
}

static void later(struct fake *f, enum fake_pending what, double seconds)
{
    f->pending = what;
    f->due = now_s() + seconds;
}

static void on_ready(struct kernel *k, void *self)
{
    record(self, "executor_ready", json_pack("{s:b}", "cell_running", kernel_cell_running(k)));
}

static void on_died(struct kernel *k, void *self)
{
    record(self, "executor_died", NULL);
}

static int on_event(struct kernel *k, void *self, const char *type, json_t *ev)
{
    record(self, "event", json_pack("{s:s}", "type", type));
    return 0;
}

static int holds_queue(struct kernel *k, void *self)
{
    return ((struct fake *)self)->gated;
}

static int cell_code(struct kernel *k, void *self, const char *code)
{
    struct fake *f = self;
    record(f, "cell_code", json_pack("{s:s}", "code", code));
    if (strncmp(code, "%%later ", 8) == 0) {
        free(f->later_code);
        f->later_code = strdup(code + 8);
        later(f, CONTINUE, 1.0);
        return 1;
    }
    if (strncmp(code, "%%fail", 6) == 0) {
        kernel_fail_cell(k, "FakeError", "the fake extension failed this cell");
        return 1;
    }
    if (strncmp(code, "%%hold ", 7) == 0) {
        f->hold_next = 1;
        kernel_continue_cell(k, code + 7);
        return 1;
    }
    if (strncmp(code, "%%gate ", 7) == 0) {
        f->gated = 1;
        later(f, RESUME, atoi(code + 7) / 1000.0);
        kernel_continue_cell(k, "");
        return 1;
    }
    return 0;
}

static void cell_begin(struct kernel *k, void *self, int count)
{
    record(self, "cell_begin",
           json_pack("{s:i, s:b}", "count", count, "cell_running", kernel_cell_running(k)));
}

static int cell_end(struct kernel *k, void *self)
{
    struct fake *f = self;
    int hold = f->hold_next;
    f->hold_next = 0;
    record(f, "cell_end", json_pack("{s:b}", "held", hold));
    if (hold)
        later(f, RELEASE, 0.3);
    return hold;
}

static void kernel_info(struct kernel *k, void *self, json_t *content)
{
    record(self, "kernel_info", NULL);
    json_array_append_new(json_object_get(content, "help_links"),
                          json_pack("{s:s, s:s}", "text", "Fake", "url", "https://example.org/"));
}

static void on_shutdown(struct kernel *k, void *self, int executor_detached)
{
    record(self, "shutdown", json_pack("{s:b}", "executor_detached", executor_detached));
}

static void destroy(void *self)
{
    struct fake *f = self;
    record(f, "destroy", NULL);
    if (f->log)
        fclose(f->log);
    free(f->later_code);
    free(f);
}

static long timer_next_ms(void *self)
{
    struct fake *f = self;
    if (f->pending == NOTHING)
        return -1;
    double ms = (f->due - now_s()) * 1000.0;
    return ms < 0 ? 0 : (long)ms + 1;
}

static void timer_run(void *self, const struct kernel_fd *fds, int n)
{
    struct fake *f = self;
    if (f->pending == NOTHING || now_s() < f->due)
        return;
    enum fake_pending what = f->pending;
    f->pending = NOTHING;
    record(f, "timer", json_pack("{s:i}", "what", (int)what));
    if (what == CONTINUE) {
        kernel_continue_cell(f->k, f->later_code ? f->later_code : "");
    } else if (what == RELEASE) {
        kernel_publish_output(f->k, "display_data",
                              json_pack("{s:{s:s}, s:{}, s:{}}", "data", "text/plain",
                                        "released by the extension", "metadata", "transient"));
        kernel_release_reply(f->k);
    } else if (what == RESUME) {
        f->gated = 0;
        kernel_resume_queue(f->k);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"python", required_argument, NULL, 'p'},
        {"pythonpath", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    struct kernel k;
    memset(&k, 0, sizeof k);
    k.sigfd = -1;
    k.sup.cfg.python = "python3";
    k.sup.cfg.pythonpath = ".";
    const char *conn_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
        if (c == 'f')
            conn_file = optarg;
        else if (c == 'p')
            k.sup.cfg.python = optarg;
        else if (c == 'P')
            k.sup.cfg.pythonpath = optarg;
        else
            return 2;
    }
    if (conn_file == NULL)
        return 2;
    log_init();
    k.watch_parent = getenv("JPY_PARENT_PID") != NULL;
    char detail[640];
    if (kernel_open(&k, conn_file, detail, sizeof detail) != KERNEL_OK) {
        log_error("%s", detail);
        kernel_close(&k);
        return 3;
    }
    struct fake *f = calloc(1, sizeof *f);
    const char *path = getenv("CORE_HOOK_LOG");
    f->k = &k;
    f->log = path ? fopen(path, "a") : NULL;
    struct kernel_extension ext = {.name = "fake",
                                   .self = f,
                                   .executor_ready = on_ready,
                                   .executor_died = on_died,
                                   .event = on_event,
                                   .holds_queue = holds_queue,
                                   .cell_code = cell_code,
                                   .cell_begin = cell_begin,
                                   .cell_end = cell_end,
                                   .kernel_info = kernel_info,
                                   .shutdown = on_shutdown,
                                   .destroy = destroy};
    struct kernel_source timer = {
        .name = "fake timer", .self = f, .next_ms = timer_next_ms, .run = timer_run};
    if (kernel_set_extension(&k, &ext) != 0 || kernel_add_source(&k, &timer) != 0 ||
        kernel_set_extension(&k, &ext) != -1) /* a second extension is refused */
        return 4;
    kernel_run(&k);
    kernel_close(&k);
    return 0;
}
