/* test_master: the standalone master's /json/ parsed from answers recorded on a real Spark
 * 4.0.1 master (tests/unit/data/master-json/) and from variants of them, the verdicts on
 * executor requests, the worker table, and the HTTP side against a closed port, a silent
 * listener and a small forked HTTP server standing in for the master UI. */
#include <criterion/criterion.h>

#include "../../driver/master.h"
#include "../support/fake_http.h"
#include "../../kernel/log.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void quiet(void)
{
    log_set_level(LOG_ERROR);
}

TestSuite(master, .init = quiet);

/* ---- helpers ---------------------------------------------------------------------------- */

/* Reads tests/unit/data/master-json/<name>, found next to this file (the Makefile compiles it
 * by its path from the repo root). Returns malloc'd text; *len its length. */
static char *load(const char *name, size_t *len)
{
    char path[512];
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dir_len = slash ? (int)(slash - file) : 1;
    snprintf(path, sizeof path, "%.*s/data/master-json/%s", dir_len, slash ? file : ".", name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run the tests from the repo root)", path);
    char *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static struct master_status *parse_file(const char *name)
{
    size_t len;
    char *text = load(name, &len);
    struct master_status *st = NULL;
    int rc = master_parse(text, len, &st);
    free(text);
    cr_assert_eq(rc, MASTER_OK, "%s: %s", name, master_strerror(rc));
    cr_assert_not_null(st);
    return st;
}

/* Parses a JSON value built in the test; root is stolen. */
static int parse_json(json_t *root, struct master_status **st)
{
    char *text = json_dumps(root, JSON_ENCODE_ANY);
    json_decref(root);
    cr_assert_not_null(text);
    int rc = master_parse(text, strlen(text), st);
    free(text);
    return rc;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- parsing recorded answers ----------------------------------------------------------- */

Test(master, parses_a_recorded_answer_with_a_running_and_a_waiting_app)
{
    struct master_status *st = parse_file("running-and-waiting.json");
    cr_expect_str_eq(st->url, "spark://127.0.0.1:17077");
    cr_expect_str_eq(st->status, "ALIVE");
    cr_expect_eq(st->aliveworkers, 1);
    cr_expect_eq(st->cores, 2);
    cr_expect_eq(st->coresused, 2);
    cr_expect_eq(st->memory, 2048);
    cr_expect_eq(st->memoryused, 1024);

    cr_assert_eq(st->nworkers, 1);
    const struct master_worker *w = &st->workers[0];
    cr_expect_str_eq(w->id, "worker-20261125124458-127.0.0.1-45437");
    cr_expect_str_eq(w->host, "127.0.0.1");
    cr_expect_eq(w->port, 45437);
    cr_expect_str_eq(w->webuiaddress, "http://127.0.0.1:38209");
    cr_expect_str_eq(w->state, "ALIVE");
    cr_expect_eq(w->cores, 2);
    cr_expect_eq(w->coresused, 2);
    cr_expect_eq(w->coresfree, 0);
    cr_expect_eq(w->memory, 2048);
    cr_expect_eq(w->memoryused, 1024);
    cr_expect_eq(w->memoryfree, 1024);

    /* completedapps are not read: only the active ones hold executors. */
    cr_assert_eq(st->napps, 2);
    const struct master_app *run = &st->apps[0], *wait = &st->apps[1];
    cr_expect_str_eq(run->id, "app-20261125124540-0001");
    cr_expect_str_eq(run->name, "notebook-running");
    cr_expect_str_eq(run->state, "RUNNING");
    cr_expect_str_eq(run->user, "root");
    cr_expect_eq(run->cores, 2);
    cr_expect_eq(run->memoryperexecutor, 1024);
    cr_expect_eq(run->starttime, 1795610740187LL);
    cr_expect_eq(run->duration, 19364);
    cr_expect_str_eq(wait->state, "WAITING");
    cr_expect_eq(wait->cores, 0, "a WAITING app has no cores granted");
    cr_expect_eq(wait->memoryperexecutor, 4096);
    master_status_destroy(&st);
    cr_expect_null(st);
    master_status_destroy(&st); /* NULL is fine */
    master_status_destroy(NULL);
}

Test(master, parses_a_master_without_workers)
{
    struct master_status *st = parse_file("no-workers.json");
    cr_expect_eq(st->nworkers, 0);
    cr_expect_null(st->workers);
    cr_expect_eq(st->aliveworkers, 0);
    cr_expect_eq(st->cores, 0);
    cr_expect_eq(st->napps, 0);
    master_status_destroy(&st);
}

Test(master, a_dead_worker_is_listed_but_not_counted)
{
    struct master_status *st = parse_file("dead-worker.json");
    cr_assert_eq(st->nworkers, 2);
    cr_expect_str_eq(st->workers[0].state, "ALIVE");
    cr_expect_str_eq(st->workers[1].state, "DEAD");
    cr_expect_eq(st->aliveworkers, 1);
    cr_expect_eq(st->cores, 1, "the master's totals count alive workers only");
    cr_expect_eq(st->memory, 1024);
    master_status_destroy(&st);
}

Test(master, parses_two_idle_workers)
{
    struct master_status *st = parse_file("two-workers-idle.json");
    cr_expect_eq(st->aliveworkers, 2);
    cr_expect_eq(st->cores, 2);
    cr_expect_eq(st->memory, 2048);
    for (size_t i = 0; i < st->nworkers; i++)
        cr_expect_eq(st->workers[i].memoryfree, 1024);
    master_status_destroy(&st);
}

/* ---- variants of the recorded answer ---------------------------------------------------- */

/* Walks "a/0/b" in root; returns the parent container and the last key or index. */
static json_t *walk(json_t *root, const char *path, char *last, size_t last_len)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    char *save = NULL, *tok = strtok_r(buf, "/", &save), *next;
    while ((next = strtok_r(NULL, "/", &save)) != NULL) {
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
                                 : json_object_get(cur, tok);
        cr_assert_not_null(cur, "path %s", path);
        tok = next;
    }
    snprintf(last, last_len, "%s", tok);
    return cur;
}

/* Sets path to value (stolen), or deletes it when value is NULL. */
static void mutate(json_t *root, const char *path, json_t *value)
{
    char key[64];
    json_t *parent = walk(root, path, key, sizeof key);
    if (json_is_array(parent)) {
        size_t i = strtoul(key, NULL, 10);
        if (value == NULL)
            json_array_remove(parent, i);
        else
            json_array_set_new(parent, i, value);
    } else if (value == NULL) {
        cr_assert_eq(json_object_del(parent, key), 0, "no field %s", path);
    } else {
        json_object_set_new(parent, key, value);
    }
}

struct variant {
    const char *name;
    const char *path;  /* in running-and-waiting.json */
    const char *value; /* JSON text; NULL deletes */
    const char *path2; /* a second change, or NULL */
    const char *value2;
    int rc;
};

static const struct variant variants[] = {
    /* optional fields may go missing or be null */
    {"no url", "url", NULL, NULL, NULL, MASTER_OK},
    {"no activeapps", "activeapps", NULL, NULL, NULL, MASTER_OK},
    {"null activeapps", "activeapps", "null", NULL, NULL, MASTER_OK},
    {"no totals", "cores", NULL, "memory", NULL, MASTER_OK},
    {"no free fields", "workers/0/coresfree", NULL, "workers/0/memoryfree", NULL, MASTER_OK},
    {"no worker id", "workers/0/id", NULL, "workers/0/port", NULL, MASTER_OK},
    {"null webuiaddress", "workers/0/webuiaddress", "null", NULL, NULL, MASTER_OK},
    {"old memoryperslave only", "activeapps/0/memoryperexecutor", NULL, NULL, NULL, MASTER_OK},
    {"no app memory at all", "activeapps/0/memoryperexecutor", NULL, "activeapps/0/memoryperslave",
     NULL, MASTER_OK},
    {"unknown extra field", "sparkernel", "{\"x\": [1, 2]}", NULL, NULL, MASTER_OK},
    {"no aliveworkers", "aliveworkers", NULL, NULL, NULL, MASTER_OK},
    /* required fields */
    {"no status", "status", NULL, NULL, NULL, MASTER_EJSON},
    {"no workers", "workers", NULL, NULL, NULL, MASTER_EJSON},
    {"no worker cores", "workers/0/cores", NULL, NULL, NULL, MASTER_EJSON},
    {"no worker memory", "workers/0/memory", NULL, NULL, NULL, MASTER_EJSON},
    {"no worker state", "workers/0/state", NULL, NULL, NULL, MASTER_EJSON},
    {"null worker state", "workers/0/state", "null", NULL, NULL, MASTER_EJSON},
    {"no app id", "activeapps/1/id", NULL, NULL, NULL, MASTER_EJSON},
    {"no app state", "activeapps/0/state", NULL, NULL, NULL, MASTER_EJSON},
    /* wrong types */
    {"status a bool", "status", "true", NULL, NULL, MASTER_EJSON},
    {"workers an object", "workers", "{}", NULL, NULL, MASTER_EJSON},
    {"worker a string", "workers/0", "\"worker\"", NULL, NULL, MASTER_EJSON},
    {"cores a string", "workers/0/cores", "\"2\"", NULL, NULL, MASTER_EJSON},
    {"memory a real", "workers/0/memory", "2048.0", NULL, NULL, MASTER_EJSON},
    {"state a number", "workers/0/state", "1", NULL, NULL, MASTER_EJSON},
    {"host an array", "workers/0/host", "[]", NULL, NULL, MASTER_EJSON},
    {"total cores a string", "cores", "\"2\"", NULL, NULL, MASTER_EJSON},
    {"activeapps a string", "activeapps", "\"none\"", NULL, NULL, MASTER_EJSON},
    {"app an array", "activeapps/0", "[]", NULL, NULL, MASTER_EJSON},
    {"app id a number", "activeapps/0/id", "5", NULL, NULL, MASTER_EJSON},
    {"app memory a string", "activeapps/0/memoryperexecutor", "\"1g\"", NULL, NULL, MASTER_EJSON},
    {"starttime a string", "activeapps/0/starttime", "\"yesterday\"", NULL, NULL, MASTER_EJSON},
    /* out of range */
    {"negative cores", "workers/0/cores", "-1", NULL, NULL, MASTER_EJSON},
    {"cores above INT_MAX", "workers/0/cores", "4294967296", NULL, NULL, MASTER_EJSON},
    {"port above 65535", "workers/0/port", "70000", NULL, NULL, MASTER_EJSON},
    {"negative memoryused", "memoryused", "-5", NULL, NULL, MASTER_EJSON},
};

Test(master, variants_of_the_recorded_answer)
{
    size_t len;
    char *text = load("running-and-waiting.json", &len);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        const struct variant *v = &variants[i];
        json_t *root = json_loads(text, 0, NULL);
        cr_assert_not_null(root);
        mutate(root, v->path, v->value ? json_loads(v->value, JSON_DECODE_ANY, NULL) : NULL);
        if (v->path2 != NULL)
            mutate(root, v->path2, v->value2 ? json_loads(v->value2, JSON_DECODE_ANY, NULL) : NULL);
        struct master_status *st = (struct master_status *)&st;
        int rc = parse_json(root, &st);
        cr_expect_eq(rc, v->rc, "%s: got %d (%s), expected %d", v->name, rc, master_strerror(rc),
                     v->rc);
        if (v->rc == MASTER_OK)
            cr_expect_not_null(st, "%s", v->name);
        else
            cr_expect_null(st, "%s: *out must be NULL on error", v->name);
        master_status_destroy(&st);
    }
    free(text);
}

Test(master, missing_fields_take_their_documented_defaults)
{
    size_t len;
    char *text = load("running-and-waiting.json", &len);
    json_t *root = json_loads(text, 0, NULL);
    free(text);
    mutate(root, "url", NULL);
    mutate(root, "cores", NULL);
    mutate(root, "memoryused", NULL);
    mutate(root, "workers/0/coresfree", NULL);
    mutate(root, "workers/0/memoryfree", NULL);
    mutate(root, "workers/0/webuiaddress", json_null());
    mutate(root, "activeapps/0/memoryperexecutor", NULL);
    mutate(root, "activeapps/1/name", NULL);
    struct master_status *st = NULL;
    cr_assert_eq(parse_json(root, &st), MASTER_OK);
    cr_expect_str_eq(st->url, "");
    cr_expect_eq(st->cores, 2, "computed from the alive workers");
    cr_expect_eq(st->memoryused, 1024, "computed from the alive workers");
    cr_expect_eq(st->workers[0].coresfree, 0, "cores - coresused");
    cr_expect_eq(st->workers[0].memoryfree, 1024, "memory - memoryused");
    cr_expect_str_eq(st->workers[0].webuiaddress, "");
    cr_expect_eq(st->apps[0].memoryperexecutor, 1024, "from memoryperslave");
    cr_expect_str_eq(st->apps[1].name, "");
    master_status_destroy(&st);
}

struct raw {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
    int rc;
};

static const struct raw raws[] = {
    {"empty", "", 0, MASTER_EJSON},
    {"whitespace", "  \n", 0, MASTER_EJSON},
    {"truncated", "{\"status\": \"ALIVE\", \"workers\": [", 0, MASTER_EJSON},
    {"html", "<html><body>Spark Master</body></html>", 0, MASTER_EJSON},
    {"an array", "[]", 0, MASTER_EJSON},
    {"null", "null", 0, MASTER_EJSON},
    {"a string", "\"ALIVE\"", 0, MASTER_EJSON},
    {"trailing garbage", "{\"status\": \"ALIVE\", \"workers\": []} x", 0, MASTER_EJSON},
    {"cut by len", "{\"status\": \"ALIVE\", \"workers\": []}", 20, MASTER_EJSON},
    {"minimal", "{\"status\": \"ALIVE\", \"workers\": []}", 0, MASTER_OK},
    {"minimal worker",
     "{\"status\":\"STANDBY\",\"workers\":[{\"state\":\"ALIVE\",\"cores\":1,"
     "\"memory\":1}]}",
     0, MASTER_OK},
    {"not UTF-8", "{\"status\": \"AL\xff\", \"workers\": []}", 0, MASTER_EJSON},
};

Test(master, raw_inputs)
{
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        const struct raw *r = &raws[i];
        struct master_status *st = NULL;
        int rc = master_parse(r->text, r->len ? r->len : strlen(r->text), &st);
        cr_expect_eq(rc, r->rc, "%s: got %d, expected %d", r->name, rc, r->rc);
        master_status_destroy(&st);
    }
    struct master_status *st = NULL;
    cr_expect_eq(master_parse(NULL, 0, &st), MASTER_EARG);
    cr_expect_eq(master_parse("{}", 2, NULL), MASTER_EARG);
}

/* ---- verdicts --------------------------------------------------------------------------- */

/* A status with one worker per (cores, memory, state) triple and the given master status. */
static struct master_status *cluster(const char *status, int n, const int *cores, const long *mem,
                                     const char *const *states)
{
    json_t *workers = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(workers, json_pack("{s:s, s:i, s:s, s:i, s:i, s:I, s:I}", "host",
                                                 "10.0.0.1", "port", 40000 + i, "state", states[i],
                                                 "cores", cores[i], "coresused", 0, "memory",
                                                 (json_int_t)mem[i], "memoryused", (json_int_t)0));
    struct master_status *st = NULL;
    cr_assert_eq(parse_json(json_pack("{s:s, s:s, s:o}", "url", "spark://master:7077", "status",
                                      status, "workers", workers),
                            &st),
                 MASTER_OK);
    return st;
}

struct verdict_case {
    const char *name;
    const char *status;
    int n;
    int cores[3];
    long mem[3];
    const char *states[3];
    int want_cores;
    long want_mem;
    int rc;
    const char *says[5]; /* substrings the verdict must contain */
};

static const struct verdict_case verdicts[] = {
    {"fits",
     "ALIVE",
     1,
     {2},
     {2048},
     {"ALIVE"},
     2,
     1024,
     MASTER_OK,
     {"2 core(s) and 1024 MB", "fit on 1 of the 1 alive", "up to 2 core(s) and 2048 MB",
      "free now"}},
    {"fits exactly", "ALIVE", 1, {2}, {1024}, {"ALIVE"}, 2, 1024, MASTER_OK, {"fit on 1 of the 1"}},
    {"defaults count as 1 core and 1024 MB",
     "ALIVE",
     1,
     {1},
     {1024},
     {"ALIVE"},
     0,
     0,
     MASTER_OK,
     {"1 core(s) and 1024 MB"}},
    {"memory too big",
     "ALIVE",
     1,
     {2},
     {1024},
     {"ALIVE"},
     1,
     4096,
     MASTER_ETOOBIG,
     {"1 core(s) and 4096 MB each were requested", "offers 2 core(s) and 1024 MB",
      "spark.executor.memory to at most 1024m", "workers.memory in the chart"}},
    {"cores too big",
     "ALIVE",
     2,
     {2, 1},
     {4096, 8192},
     {"ALIVE", "ALIVE"},
     4,
     1024,
     MASTER_ETOOBIG,
     {"4 core(s) and 1024 MB", "offer at most 2 core(s) and at most 8192 MB",
      "spark.executor.cores to at most 2", "workers.cores in the chart"}},
    {"both too big",
     "ALIVE",
     1,
     {2},
     {2048},
     {"ALIVE"},
     8,
     16384,
     MASTER_ETOOBIG,
     {"8 core(s) and 16384 MB", "spark.executor.cores to at most 2",
      "spark.executor.memory to at most 2048m"}},
    {"no single worker has both",
     "ALIVE",
     2,
     {4, 1},
     {1024, 8192},
     {"ALIVE", "ALIVE"},
     2,
     2048,
     MASTER_ETOOBIG,
     {"2 core(s) and 2048 MB", "No single worker has both", "most cores (4) has 1024 MB",
      "most memory (8192 MB) has 1 core(s)"}},
    {"a big dead worker does not count",
     "ALIVE",
     2,
     {8, 1},
     {16384, 1024},
     {"DEAD", "ALIVE"},
     2,
     2048,
     MASTER_ETOOBIG,
     {"largest of the 1 alive worker(s)", "offers 1 core(s) and 1024 MB"}},
    {"no alive worker",
     "ALIVE",
     1,
     {2},
     {2048},
     {"DEAD"},
     1,
     1024,
     MASTER_ENOWORKER,
     {"no alive worker", "1 registered", "1 core(s) and 1024 MB", "workers.replicas"}},
    {"no worker at all",
     "ALIVE",
     0,
     {0},
     {0},
     {NULL},
     1,
     512,
     MASTER_ENOWORKER,
     {"0 registered", "512 MB"}},
    {"master standby",
     "STANDBY",
     1,
     {2},
     {2048},
     {"ALIVE"},
     1,
     1024,
     MASTER_ENOTALIVE,
     {"spark://master:7077 is STANDBY, not ALIVE", "1 core(s) and 1024 MB"}},
};

Test(master, check_request_verdicts)
{
    for (size_t i = 0; i < sizeof verdicts / sizeof verdicts[0]; i++) {
        const struct verdict_case *c = &verdicts[i];
        struct master_status *st = cluster(c->status, c->n, c->cores, c->mem, c->states);
        char verdict[1024];
        int rc = master_check_request(st, c->want_cores, c->want_mem, verdict, sizeof verdict);
        cr_expect_eq(rc, c->rc, "%s: got %d, expected %d: %s", c->name, rc, c->rc, verdict);
        for (int k = 0; k < 5 && c->says[k] != NULL; k++)
            cr_expect(strstr(verdict, c->says[k]) != NULL, "%s: verdict lacks \"%s\": %s", c->name,
                      c->says[k], verdict);
        cr_expect(strchr(verdict, '\n') == NULL, "%s: one paragraph", c->name);
        master_status_destroy(&st);
    }
}

Test(master, a_busy_cluster_fits_but_says_it_will_wait)
{
    struct master_status *st = parse_file("running-and-waiting.json");
    char verdict[1024];
    cr_expect_eq(master_check_request(st, 1, 512, verdict, sizeof verdict), MASTER_OK);
    cr_expect(strstr(verdict, "None has that much free now (2 of 2 core(s)") != NULL, "%s",
              verdict);
    cr_expect(strstr(verdict, "will wait") != NULL, "%s", verdict);
    master_status_destroy(&st);
}

Test(master, check_request_truncates_and_accepts_no_buffer)
{
    struct master_status *st = parse_file("running-and-waiting.json");
    char small[16];
    memset(small, 'x', sizeof small);
    cr_expect_eq(master_check_request(st, 64, 1 << 20, small, sizeof small), MASTER_ETOOBIG);
    cr_expect_eq(strlen(small), sizeof small - 1);
    cr_expect_eq(master_check_request(st, 1, 1024, NULL, 0), MASTER_OK);
    cr_expect_eq(master_check_request(NULL, 1, 1024, small, sizeof small), MASTER_EARG);
    cr_expect_str_eq(small, "");
    master_status_destroy(&st);
}

/* ---- worker table ----------------------------------------------------------------------- */

Test(master, worker_table)
{
    struct master_status *st = parse_file("dead-worker.json");
    char *t = master_format_workers(st);
    cr_assert_not_null(t);
    cr_expect(strncmp(t, "address", 7) == 0, "%s", t);
    cr_expect(strstr(t, "127.0.0.1:43037  ALIVE") != NULL, "%s", t);
    cr_expect(strstr(t, "127.0.0.1:32959  DEAD") != NULL, "%s", t);
    cr_expect(strstr(t, "0/1 ") != NULL, "%s", t);
    cr_expect(strstr(t, "0/1024\n") != NULL, "%s", t);
    int lines = 0;
    for (const char *p = t; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 3);
    free(t);
    master_status_destroy(&st);

    st = parse_file("no-workers.json");
    t = master_format_workers(st);
    cr_assert_not_null(t);
    cr_expect(strstr(t, "no worker has registered") != NULL, "%s", t);
    free(t);
    master_status_destroy(&st);
    cr_expect_null(master_format_workers(NULL));
}

/* ---- HTTP ------------------------------------------------------------------------------- */

Test(master, fetch_from_a_closed_port_is_unreachable_at_once)
{
    int port;
    close(fake_http_listener(&port)); /* nothing listens there now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct master_status *st = (struct master_status *)&st;
    long long t0 = now_ms();
    cr_expect_eq(master_fetch(url, 300, &st), MASTER_EUNREACHABLE);
    cr_expect_lt(now_ms() - t0, 600);
    cr_expect_null(st);
}

Test(master, fetch_from_a_silent_listener_times_out_within_bound)
{
    /* The kernel completes the handshake (backlog) but nobody ever answers. */
    int port, fd = fake_http_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct master_status *st = NULL;
    long long t0 = now_ms();
    cr_expect_eq(master_fetch(url, 300, &st), MASTER_EUNREACHABLE);
    long long took = now_ms() - t0;
    cr_expect_geq(took, 250, "took %lld ms: did it wait at all?", took);
    cr_expect_lt(took, 600, "took %lld ms for a 300 ms timeout", took);
    close(fd);
}

Test(master, fetch_rejects_bad_arguments)
{
    struct master_status *st = NULL;
    cr_expect_eq(master_fetch(NULL, 100, &st), MASTER_EARG);
    cr_expect_eq(master_fetch("spark://127.0.0.1:7077", 100, &st), MASTER_EARG);
    cr_expect_eq(master_fetch("ftp://127.0.0.1/", 100, &st), MASTER_EARG);
    cr_expect_eq(master_fetch("httpx://127.0.0.1/", 100, &st), MASTER_EARG);
    cr_expect_eq(master_fetch("http://127.0.0.1:1", 0, &st), MASTER_EARG);
    cr_expect_eq(master_fetch("http://127.0.0.1:1", 100, NULL), MASTER_EARG);
    cr_expect_eq(master_kill_app("http://127.0.0.1:1", "", 100), MASTER_EARG);
    cr_expect_eq(master_kill_app("http://127.0.0.1:1", NULL, 100), MASTER_EARG);
}

/* A stand-in for the master UI: every GET answered with get_answer, every POST with
 * post_answer; its log lists the POSTs as "path body". */
static struct fake_http fake_start(const char *get_answer, const char *post_answer)
{
    static struct fake_route routes[3];
    routes[0] = (struct fake_route){"GET", "/", get_answer};
    routes[1] = (struct fake_route){"POST", "/", post_answer};
    routes[2] = (struct fake_route){NULL, NULL, NULL};
    return fake_http_start(routes);
}

static const char *ONE_APP = "{\"status\":\"ALIVE\",\"workers\":[],\"activeapps\":[{\"id\":"
                             "\"app-1 &x\",\"state\":\"RUNNING\"}]}";
static const char *NO_APP = "{\"status\":\"ALIVE\",\"workers\":[],\"activeapps\":[]}";
static const char *FOUND = "HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n";

Test(master, fetch_maps_http_answers)
{
    struct {
        const char *status, *body;
        int rc;
    } cases[] = {
        {"200 OK", NO_APP, MASTER_OK},
        {"200 OK", "<html>Spark Master at spark://x</html>", MASTER_EJSON},
        {"200 OK", "", MASTER_EJSON},
        {"404 Not Found", NO_APP, MASTER_EHTTP},
        {"503 Service Unavailable", "", MASTER_EHTTP},
        {"302 Found", "", MASTER_EHTTP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *answer = fake_http_answer(cases[i].status, cases[i].body);
        struct fake_http ui = fake_start(answer, FOUND);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", ui.port);
        struct master_status *st = NULL;
        int rc = master_fetch(url, 2000, &st);
        cr_expect_eq(rc, cases[i].rc, "%s / %.20s: got %d", cases[i].status, cases[i].body, rc);
        master_status_destroy(&st);
        free(fake_http_stop(&ui, "POST"));
        free(answer);
    }
}

Test(master, kill_posts_the_form_and_confirms_from_json)
{
    /* The stand-in keeps listing the app: the form is sent once, then MASTER_EKILL. */
    char *active = fake_http_answer("200 OK", ONE_APP);
    struct fake_http ui = fake_start(active, FOUND);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ui.port);
    long long t0 = now_ms();
    cr_expect_eq(master_kill_app(url, "app-1 &x", 300), MASTER_EKILL);
    cr_expect_lt(now_ms() - t0, 2000);
    char *posts = fake_http_stop(&ui, "POST");
    cr_expect_str_eq(posts, "/app/kill/ id=app-1%20%26x&terminate=true\n");
    free(posts);
    free(active);
}

Test(master, kill_of_an_app_that_is_not_active)
{
    char *none = fake_http_answer("200 OK", NO_APP);
    struct fake_http ui = fake_start(none, FOUND);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ui.port);
    cr_expect_eq(master_kill_app(url, "app-1 &x", 1000), MASTER_ENOAPP);
    char *posts = fake_http_stop(&ui, "POST");
    cr_expect_str_eq(posts, "", "no POST for an app that is not active");
    free(posts);
    free(none);
}

Test(master, kill_when_the_master_disables_kills)
{
    char *active = fake_http_answer("200 OK", ONE_APP);
    char *refused = fake_http_answer("405 Method Not Allowed", "");
    struct fake_http ui = fake_start(active, refused);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ui.port);
    cr_expect_eq(master_kill_app(url, "app-1 &x", 1000), MASTER_EKILLOFF);
    free(fake_http_stop(&ui, "POST"));
    free(active);
    free(refused);
}

Test(master, strerror_names_every_code)
{
    for (int rc = MASTER_OK; rc >= MASTER_ENOMEM; rc--)
        cr_expect(strncmp(master_strerror(rc), "unknown", 7) != 0, "code %d", rc);
    cr_expect_str_eq(master_strerror(1), "unknown master error");
}
