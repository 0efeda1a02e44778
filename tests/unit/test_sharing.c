/* test_sharing: session records (write, read back, stale, malformed, unsafe ids), the kernel
 * id from a connection file name, and the two decisions made from a master's /json/: does
 * another application wait for cores, and who holds each application. */
#include <criterion/criterion.h>

#include "../../driver/master.h"
#include "../../driver/sharing.h"
#include "../../kernel/log.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

static void setup(void)
{
    log_set_level(LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/sparkernel-test-sharing-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(sharing, .init = setup, .fini = teardown);

static struct sharing_entry entry(const char *app, pid_t pid, int busy, double since)
{
    struct sharing_entry e = {.pid = pid, .busy = busy, .since = since};
    snprintf(e.app_id, sizeof e.app_id, "%s", app);
    snprintf(e.kernel_id, sizeof e.kernel_id, "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab");
    snprintf(e.notebook, sizeof e.notebook, "work/sales.ipynb");
    return e;
}

/* A master with three applications: mine (2 cores), one WAITING, one RUNNING with 0. */
static const char MASTER[] =
    "{\"url\":\"spark://m:7077\",\"status\":\"ALIVE\",\"cores\":2,\"coresused\":2,"
    "\"memory\":2048,\"memoryused\":1024,\"workers\":[{\"id\":\"w\",\"host\":\"h\",\"port\":1,"
    "\"state\":\"ALIVE\",\"cores\":2,\"coresused\":2,\"memory\":2048,\"memoryused\":1024}],"
    "\"activeapps\":[{\"id\":\"app-1\",\"name\":\"sparkernel a\",\"cores\":2,\"state\":"
    "\"RUNNING\",\"memoryperexecutor\":512},{\"id\":\"app-2\",\"name\":\"etl\",\"cores\":0,"
    "\"state\":\"WAITING\",\"memoryperexecutor\":1024},{\"id\":\"app-3\",\"name\":"
    "\"sparkernel c\",\"cores\":0,\"state\":\"RUNNING\",\"memoryperexecutor\":512}]}";

static struct master_status *master(const char *json)
{
    struct master_status *ms = NULL;
    cr_assert_eq(master_parse(json, strlen(json), &ms), MASTER_OK);
    return ms;
}

Test(sharing, record_round_trip_and_removal)
{
    struct sharing_entry e = entry("app-20261125151838-0000", getpid(), 1, 1764000000.5), got;
    cr_assert_eq(sharing_publish(dir, &e), 0);
    cr_assert_eq(sharing_lookup(dir, e.app_id, &got), 1);
    cr_expect_str_eq(got.kernel_id, e.kernel_id);
    cr_expect_str_eq(got.notebook, "work/sales.ipynb");
    cr_expect_eq(got.pid, getpid());
    cr_expect_eq(got.busy, 1);
    cr_expect_float_eq(got.since, 1764000000.5, 1e-6);
    e.busy = 0;
    cr_assert_eq(sharing_publish(dir, &e), 0); /* replaced atomically */
    cr_assert_eq(sharing_lookup(dir, e.app_id, &got), 1);
    cr_expect_eq(got.busy, 0);
    sharing_remove(dir, e.app_id);
    cr_expect_eq(sharing_lookup(dir, e.app_id, &got), 0);
}

Test(sharing, record_of_a_dead_process_is_dropped)
{
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    struct sharing_entry e = entry("app-dead", child, 0, 1), got;
    cr_assert_eq(sharing_publish(dir, &e), 0);
    cr_expect_eq(sharing_lookup(dir, "app-dead", &got), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/app-dead.json", dir);
    cr_expect_neq(access(path, F_OK), 0, "stale record left behind");
}

Test(sharing, unsafe_ids_never_name_files)
{
    struct sharing_entry e = entry("../escape", getpid(), 0, 1), got;
    cr_expect_lt(sharing_publish(dir, &e), 0);
    snprintf(e.app_id, sizeof e.app_id, ".hidden");
    cr_expect_lt(sharing_publish(dir, &e), 0);
    snprintf(e.app_id, sizeof e.app_id, "a/b");
    cr_expect_lt(sharing_publish(dir, &e), 0);
    cr_expect_eq(sharing_lookup(dir, "../etc/passwd", &got), 0);
    cr_expect_eq(sharing_lookup(dir, "", &got), 0);
    cr_expect_eq(sharing_lookup(NULL, "app-1", &got), 0);
}

Test(sharing, malformed_records_are_refused)
{
    struct sharing_entry got;
    const char *bad[] = {
        "",
        "[]",
        "{\"app_id\":\"a\"}",
        "{\"app_id\":\"a\",\"kernel_id\":\"k\",\"notebook\":\"n\",\"pid\":-1,\"busy\":true,"
        "\"since\":1.0}",
        "{\"app_id\":\"../a\",\"kernel_id\":\"k\",\"notebook\":\"n\",\"pid\":5,\"busy\":true,"
        "\"since\":1.0}",
        "{\"app_id\":\"a\",\"kernel_id\":3,\"notebook\":\"n\",\"pid\":5,\"busy\":true,"
        "\"since\":1.0}",
        "{\"app_id\":\"a\",\"kernel_id\":\"k\",\"notebook\":\"n\",\"pid\":5,\"busy\":\"yes\","
        "\"since\":1.0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(sharing_parse(bad[i], strlen(bad[i]), &got), -1, "accepted: %s", bad[i]);
    const char *good = "{\"app_id\":\"a\",\"kernel_id\":\"k\",\"notebook\":\"n\",\"pid\":5,"
                       "\"busy\":false,\"since\":2}";
    cr_expect_eq(sharing_parse(good, strlen(good), &got), 0);
    cr_expect_eq(got.pid, 5);
}

Test(sharing, kernel_id_and_directory_from_the_connection_file)
{
    char id[64], d[512];
    sharing_kernel_id("/run/jupyter/kernel-6f1c2a10-1111-2222-3333-444455556666.json", id,
                      sizeof id);
    cr_expect_str_eq(id, "6f1c2a10-1111-2222-3333-444455556666");
    sharing_kernel_id("/tmp/conn.json", id, sizeof id);
    cr_expect_str_eq(id, "");
    sharing_kernel_id("kernel-.json", id, sizeof id);
    cr_expect_str_eq(id, "");
    char *env1[] = {"HOME=/root", NULL};
    sharing_dir(env1, "/run/jupyter/kernel-x.json", d, sizeof d);
    cr_expect_str_eq(d, "/run/jupyter/sparkernel-sessions");
    char *env2[] = {"SPARKERNEL_SESSIONS_DIR=/shared/s", NULL};
    sharing_dir(env2, "/run/jupyter/kernel-x.json", d, sizeof d);
    cr_expect_str_eq(d, "/shared/s");
}

Test(sharing, a_waiting_application_is_contention)
{
    struct master_status *ms = master(MASTER);
    char who[256] = "";
    cr_expect_eq(sharing_contended(ms, "app-1", dir, who, sizeof who, NULL), 1);
    cr_expect(strstr(who, "app-2") && strstr(who, "etl"), "%s", who);
    /* from app-2's side: the only other app holding nothing is app-3, RUNNING, no record */
    cr_expect_eq(sharing_contended(ms, "app-2", dir, who, sizeof who, NULL), 0);
    master_status_destroy(&ms);
}

Test(sharing, a_sparkernel_record_decides_for_its_application)
{
    struct master_status *ms = master(MASTER);
    char who[256] = "";
    /* app-3 runs a cell with no core: it waits */
    struct sharing_entry busy = entry("app-3", getpid(), 1, 1);
    cr_assert_eq(sharing_publish(dir, &busy), 0);
    cr_expect_eq(sharing_contended(ms, "app-2", dir, who, sizeof who, NULL), 1);
    cr_expect(strstr(who, "app-3") != NULL, "%s", who);
    /* a WAITING sparkernel session whose notebook is idle does not need cores */
    struct sharing_entry idle = entry("app-2", getpid(), 0, 1);
    cr_assert_eq(sharing_publish(dir, &idle), 0);
    busy.busy = 0;
    cr_assert_eq(sharing_publish(dir, &busy), 0);
    cr_expect_eq(sharing_contended(ms, "app-1", dir, who, sizeof who, NULL), 0);
    master_status_destroy(&ms);
}

Test(sharing, holders_are_named)
{
    struct master_status *ms = master(MASTER);
    char out[512];
    sharing_holder(&ms->apps[0], "app-1", dir, 100, out, sizeof out);
    cr_expect_str_eq(out, "this notebook");
    sharing_holder(&ms->apps[1], "app-1", dir, 100, out, sizeof out);
    cr_expect_str_eq(out, ""); /* not a sparkernel session */
    sharing_holder(&ms->apps[2], "app-1", dir, 100, out, sizeof out);
    cr_expect(strstr(out, "sparkernel session") != NULL, "%s", out);
    struct sharing_entry e = entry("app-3", getpid(), 0, 58);
    cr_assert_eq(sharing_publish(dir, &e), 0);
    sharing_holder(&ms->apps[2], "app-1", dir, 100, out, sizeof out);
    cr_expect_str_eq(out, "sparkernel: work/sales.ipynb (kernel 0f1e2d3c), idle 42 s");
    e.busy = 1;
    cr_assert_eq(sharing_publish(dir, &e), 0);
    sharing_holder(&ms->apps[2], "app-1", dir, 100, out, sizeof out);
    cr_expect(strstr(out, "running a cell") != NULL, "%s", out);
    master_status_destroy(&ms);
}

/* Two sparkernel sessions holding one core each and a third waiting. */
static const char TURNS[] =
    "{\"url\":\"spark://m:7077\",\"status\":\"ALIVE\",\"cores\":2,\"coresused\":2,"
    "\"memory\":2048,\"memoryused\":1024,\"workers\":[{\"id\":\"w\",\"host\":\"h\",\"port\":1,"
    "\"state\":\"ALIVE\",\"cores\":2,\"coresused\":2,\"memory\":2048,\"memoryused\":1024}],"
    "\"activeapps\":[{\"id\":\"app-a\",\"name\":\"sparkernel a\",\"cores\":1,\"state\":"
    "\"RUNNING\"},{\"id\":\"app-b\",\"name\":\"sparkernel b\",\"cores\":1,\"state\":"
    "\"RUNNING\"},{\"id\":\"app-c\",\"name\":\"sparkernel c\",\"cores\":0,\"state\":"
    "\"WAITING\"},{\"id\":\"app-x\",\"name\":\"etl\",\"cores\":0,\"state\":\"RUNNING\"}]}";

Test(sharing, one_session_gives_next_idle_first_then_the_longest_holder)
{
    struct master_status *ms = master(TURNS);
    /* both run cells: the one holding cores longest gives */
    struct sharing_entry a = entry("app-a", getpid(), 1, 150), b = entry("app-b", getpid(), 1, 150);
    a.holding = 100;
    b.holding = 90;
    cr_assert_eq(sharing_publish(dir, &a), 0);
    cr_assert_eq(sharing_publish(dir, &b), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-a", 100, 0, dir, 200, 5), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-b", 90, 0, dir, 200, 5), 1);
    /* the same time: the smaller id goes first, and only one of them */
    b.holding = 100;
    cr_assert_eq(sharing_publish(dir, &b), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-a", 100, 0, dir, 200, 5), 1);
    cr_expect_eq(sharing_gives_next(ms, "app-b", 100, 0, dir, 200, 5), 0);
    /* a record that does not say since when counts as holding since now */
    b.holding = 0;
    cr_assert_eq(sharing_publish(dir, &b), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-a", 100, 0, dir, 200, 5), 1);
    cr_expect_eq(sharing_gives_next(ms, "app-b", 0, 0, dir, 200, 5), 0);
    /* a notebook idle for idle_after goes before a busy one that has held longer */
    b.holding = 50;
    b.busy = 0;
    b.since = 190; /* idle 10 s */
    cr_assert_eq(sharing_publish(dir, &b), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-a", 100, 0, dir, 200, 5), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-b", 50, 1, dir, 200, 5), 1);
    b.since = 198; /* idle 2 s: not yet */
    cr_assert_eq(sharing_publish(dir, &b), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-a", 100, 0, dir, 200, 5), 0);
    cr_expect_eq(sharing_gives_next(ms, "app-b", 50, 0, dir, 200, 5), 1);
    /* a session with no record (another client, a dead kernel) takes no turn */
    sharing_remove(dir, "app-b");
    cr_expect_eq(sharing_gives_next(ms, "app-a", 150, 0, dir, 200, 5), 1);
    master_status_destroy(&ms);
}

Test(sharing, a_sparkernel_session_still_starting_does_not_wait_yet)
{
    /* app-n registered 4 s ago and has no record yet; app-o, 60 s ago, has none either */
    struct master_status *ms =
        master("{\"url\":\"spark://m:7077\",\"status\":\"ALIVE\",\"workers\":[],\"activeapps\":["
               "{\"id\":\"app-a\",\"name\":\"sparkernel a\",\"cores\":1,\"state\":\"RUNNING\"},"
               "{\"id\":\"app-n\",\"name\":\"sparkernel n\",\"cores\":0,\"state\":\"WAITING\","
               "\"duration\":4000}]}");
    char who[256] = "";
    cr_expect_eq(sharing_contended(ms, "app-a", dir, who, sizeof who, NULL), 0);
    master_status_destroy(&ms);
    ms = master("{\"url\":\"spark://m:7077\",\"status\":\"ALIVE\",\"workers\":[],"
                "\"activeapps\":[{\"id\":\"app-o\",\"name\":\"sparkernel o\",\"cores\":0,"
                "\"state\":\"WAITING\",\"duration\":60000},{\"id\":\"app-e\",\"name\":"
                "\"etl\",\"cores\":0,\"state\":\"WAITING\",\"duration\":4000}]}");
    cr_expect_eq(sharing_contended(ms, "app-a", dir, who, sizeof who, NULL), 1);
    cr_expect(strstr(who, "app-o") != NULL, "%s", who); /* the first of two without a record */
    master_status_destroy(&ms);
}

Test(sharing, a_record_keeps_since_when_it_holds_cores)
{
    struct sharing_entry e = entry("app-a", getpid(), 0, 1), got;
    e.holding = 1764000000.25;
    cr_assert_eq(sharing_publish(dir, &e), 0);
    cr_assert_eq(sharing_lookup(dir, "app-a", &got), 1);
    cr_expect_float_eq(got.holding, 1764000000.25, 1e-6);
    /* a record of an older kernel, without the field, holds nothing it says */
    const char *old = "{\"app_id\":\"a\",\"kernel_id\":\"k\",\"notebook\":\"n\",\"pid\":5,"
                      "\"busy\":false,\"since\":2}";
    cr_expect_eq(sharing_parse(old, strlen(old), &got), 0);
    cr_expect_float_eq(got.holding, 0, 1e-9);
    const char *bad = "{\"app_id\":\"a\",\"kernel_id\":\"k\",\"notebook\":\"n\",\"pid\":5,"
                      "\"busy\":false,\"since\":2,\"holding\":\"soon\"}";
    cr_expect_eq(sharing_parse(bad, strlen(bad), &got), -1);
}

Test(sharing, the_waiter_waiting_longest_says_since_when)
{
    struct master_status *ms = master(TURNS);
    char who[256] = "";
    double since = -1;
    /* app-c is WAITING with no record: no one says since when */
    cr_expect_eq(sharing_contended(ms, "app-a", dir, who, sizeof who, &since), 1);
    cr_expect(strstr(who, "app-c") != NULL, "%s", who);
    cr_expect_float_eq(since, 0, 1e-9);
    /* its record: a cell running since 500; app-x (RUNNING, no core) runs one since 400 */
    struct sharing_entry c = entry("app-c", getpid(), 1, 500), x = entry("app-x", getpid(), 1, 400);
    cr_assert_eq(sharing_publish(dir, &c), 0);
    cr_assert_eq(sharing_publish(dir, &x), 0);
    cr_expect_eq(sharing_contended(ms, "app-a", dir, who, sizeof who, &since), 1);
    cr_expect(strstr(who, "app-x") != NULL, "%s", who);
    cr_expect_float_eq(since, 400, 1e-9);
    /* neither runs a cell: nobody waits */
    c.busy = x.busy = 0;
    cr_assert_eq(sharing_publish(dir, &c), 0);
    cr_assert_eq(sharing_publish(dir, &x), 0);
    cr_expect_eq(sharing_contended(ms, "app-a", dir, who, sizeof who, &since), 0);
    master_status_destroy(&ms);
}

/* A long non-ASCII notebook name (issue 14): the record is written and read back, and the
 * holder's line, cut to its buffer, stays valid UTF-8 (a cut inside a character made the
 * status table go out empty). */
Test(sharing, long_non_ascii_names_are_cut_on_characters)
{
    struct master_status *ms = master(MASTER);
    struct sharing_entry e = entry("app-3", getpid(), 1, 58);
    size_t n = 0;
    while (n + 2 < sizeof e.notebook) /* 254 bytes of é */
        e.notebook[n++] = '\xC3', e.notebook[n++] = '\xA9';
    e.notebook[n] = '\0';
    cr_assert_eq(sharing_publish(dir, &e), 0);
    struct sharing_entry back;
    cr_assert(sharing_lookup(dir, "app-3", &back));
    cr_expect_str_eq(back.notebook, e.notebook);
    for (size_t len = 20; len < 300; len += 7) {
        char out[300];
        sharing_holder(&ms->apps[2], "app-1", dir, 100, out, len);
        json_t *j = json_string(out);
        cr_expect_not_null(j, "holder cut to %zu bytes is valid UTF-8", len);
        json_decref(j);
    }
    master_status_destroy(&ms);
}

Test(sharing, a_fair_share_counts_holders_and_waiters)
{
    /* 2 cores; app-1 holds them, app-2 (etl) waits, app-3 (sparkernel, no record) runs
     * with none and waits for nothing: two want cores, one each */
    struct master_status *ms = master(MASTER);
    cr_expect_eq(sharing_fair_cores(ms, "app-1", dir), 1);
    /* app-3's notebook runs a cell: three want 2 cores, rounded up to 1 each */
    struct sharing_entry busy = entry("app-3", getpid(), 1, 1);
    cr_assert_eq(sharing_publish(dir, &busy), 0);
    cr_expect_eq(sharing_fair_cores(ms, "app-1", dir), 1);
    master_status_destroy(&ms);
    /* alone on 5 cores: all of them; with one other holder: 3 (rounded up) */
    ms = master("{\"url\":\"spark://m:7077\",\"status\":\"ALIVE\",\"cores\":5,\"workers\":[],"
                "\"activeapps\":[{\"id\":\"app-a\",\"name\":\"x\",\"cores\":5,\"state\":"
                "\"RUNNING\"}]}");
    cr_expect_eq(sharing_fair_cores(ms, "app-a", dir), 5);
    master_status_destroy(&ms);
    ms = master("{\"url\":\"spark://m:7077\",\"status\":\"ALIVE\",\"cores\":5,\"workers\":[],"
                "\"activeapps\":[{\"id\":\"app-a\",\"name\":\"x\",\"cores\":4,\"state\":"
                "\"RUNNING\"},{\"id\":\"app-b\",\"name\":\"y\",\"cores\":1,\"state\":"
                "\"RUNNING\"}]}");
    cr_expect_eq(sharing_fair_cores(ms, "app-a", dir), 3);
    master_status_destroy(&ms);
    cr_expect_eq(sharing_fair_cores(NULL, "app-a", dir), 1);
}
