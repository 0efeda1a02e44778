/* fuzz_progress: libFuzzer harness for driver/progress.c. The input is a sequence of answers
 * separated by NUL bytes, read alternately as a /jobs and a /stages?status=active answer of
 * the driver's REST API (the seeds in tests/fuzz/corpus/progress/ are answers recorded from a
 * real Spark 4.0.1 application, joined that way). After each answer the displays due are
 * drained, the clock moving by an amount the input chooses; then the cell ends and the final
 * updates are drained. Checks that every display is well formed and that draining ends.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       $(pkg-config --cflags jansson) tests/fuzz/fuzz_progress.c driver/progress.c \
 *       kernel/log.c $(pkg-config --libs jansson) -o build/fuzz_progress
 *   build/fuzz_progress -max_total_time=60 tests/fuzz/corpus/progress/ */
#include "../../driver/progress.h"
#include "../../kernel/log.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GROUP "sparkernel-7"
#define APP   "local-1795611287331"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

static void check(const struct progress_out *out)
{
    static const char prefix[] = "sparkernel-" APP "-job-";
    if (out->data == NULL || strncmp(out->display_id, prefix, sizeof prefix - 1) != 0 ||
        out->job_id < 0 || (out->update != 0 && out->update != 1))
        __builtin_trap();
    json_t *html = json_object_get(out->data, "text/html");
    json_t *text = json_object_get(out->data, "text/plain");
    if (!json_is_string(html) || !json_is_string(text) || json_object_size(out->data) != 2)
        __builtin_trap();
    if (strchr(json_string_value(text), '\n') != NULL)
        __builtin_trap(); /* text/plain is one line */
}

/* Every display due at now. A job shows at most once per drain at one time. */
static void drain(struct progress *p, double now)
{
    struct progress_out out;
    int rc;
    size_t n = 0;
    while ((rc = progress_next(p, now, &out)) == 1) {
        check(&out);
        json_decref(out.data);
        if (++n > 2 * PROGRESS_MAX_JOBS)
            __builtin_trap();
    }
    if (rc != 0 && rc != PROGRESS_ENOMEM)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct progress *p = progress_new(GROUP, "http://localhost:4077", APP);
    if (p == NULL)
        return 0;
    const char *text = (const char *)data;
    double now = 100;
    size_t start = 0;
    for (int i = 0; start <= size; i++) {
        const char *nul = size > start ? memchr(text + start, '\0', size - start) : NULL;
        size_t len = nul ? (size_t)(nul - (text + start)) : size - start;
        int rc = i % 2 == 0 ? progress_update_jobs(p, text + start, len, now)
                            : progress_update_stages(p, text + start, len);
        if (rc > 0 || rc < PROGRESS_ENOMEM)
            __builtin_trap();
        drain(p, now);
        if (progress_waiting(p) > 1 || progress_displayed(p) > 1)
            __builtin_trap();
        now += 0.05 * (double)(1 + len % 8); /* 50..400 ms: around both thresholds */
        start += len + 1;
    }
    progress_finish(p, now);
    drain(p, now);
    drain(p, now + 1);
    progress_destroy(&p);
    if (p != NULL)
        __builtin_trap();
    return 0;
}
