/* test_progress: live Spark progress, from the driver's REST answers to displays. Real answers
 * recorded from a PySpark 4.0.1 application (tests/unit/data/progress/: local[2], UI port
 * 4077; the cell tagged sparkernel-7 ran a two-stage collect (jobs 1), the same shuffle again
 * with its map stage skipped (job 3) and a job whose task raised (job 4); job 0 is tagged
 * sparkernel-6, job 2 has no tag, job 5 sparkernel-9 whose description is hostile HTML. They
 * were recorded when the kernel named cells by job group: the group of each job was moved
 * into its "jobTags", where the kernel's tag is now, and nothing else changed)
 * are replayed at their recorded times and faster; small hand-written answers pin each rule:
 * the 200 ms rule, the 250 ms throttle, change detection, the final update, errors. */
#include <criterion/criterion.h>

#include "../../driver/progress.h"
#include "../../kernel/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP   "local-1795611287331"
#define UI    "http://localhost:4077"
#define GROUP "sparkernel-7"

static void quiet(void)
{
    log_set_level(LOG_ERROR);
}

TestSuite(progress, .init = quiet);

/* ---- helpers ---------------------------------------------------------------------------- */

/* Reads tests/unit/data/progress/<name>, found next to this file. Returns malloc'd text. */
static char *load(const char *name, size_t *len)
{
    char path[512];
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dir_len = slash ? (int)(slash - file) : 1;
    snprintf(path, sizeof path, "%.*s/data/progress/%s", dir_len, slash ? file : ".", name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run the tests from the repo root)", path);
    char *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void feed_file(struct progress *p, const char *kind, int index, double now)
{
    char name[64];
    size_t len;
    snprintf(name, sizeof name, "%s-%02d.json", kind, index);
    char *text = load(name, &len);
    int rc = strcmp(kind, "jobs") == 0 ? progress_update_jobs(p, text, len, now)
                                       : progress_update_stages(p, text, len);
    cr_assert_eq(rc, PROGRESS_OK, "%s: %s", name, progress_strerror(rc));
    free(text);
}

static int feed(struct progress *p, const char *json, double now)
{
    return progress_update_jobs(p, json, strlen(json), now);
}

static struct progress *tracker(const char *group)
{
    struct progress *p = progress_new(group, UI "/", APP);
    cr_assert_not_null(p);
    return p;
}

#define MAX_OUT 64

/* Every display due at now, in order. Caller release()s. */
static int drain(struct progress *p, double now, struct progress_out *outs)
{
    int n = 0, rc;
    while ((rc = progress_next(p, now, &outs[n])) == 1) {
        cr_assert_not_null(outs[n].data);
        n++;
        cr_assert_lt(n, MAX_OUT, "progress_next() keeps returning displays");
    }
    cr_assert_eq(rc, 0, "progress_next: %s", progress_strerror(rc));
    cr_assert_null(outs[n].data);
    return n;
}

static int drain_count(struct progress *p, double now)
{
    struct progress_out outs[MAX_OUT];
    int n = drain(p, now, outs);
    for (int i = 0; i < n; i++)
        json_decref(outs[i].data);
    return n;
}

static void release(struct progress_out *outs, int n)
{
    for (int i = 0; i < n; i++)
        json_decref(outs[i].data);
}

static const char *html(const struct progress_out *o)
{
    return json_string_value(json_object_get(o->data, "text/html"));
}

static const char *text(const struct progress_out *o)
{
    return json_string_value(json_object_get(o->data, "text/plain"));
}

/* One job tagged "g" as a /jobs answer. */
#define JOB(fields)    "[{\"jobId\":1,\"jobTags\":[\"g\"]," fields "}]"
#define T0             "\"submissionTime\":\"2026-11-25T12:00:00.000GMT\""
#define DONE_AFTER(ms) T0 ",\"completionTime\":\"2026-11-25T12:00:" ms "GMT\""

/* ---- life and errors -------------------------------------------------------------------- */

Test(progress, strerror_names_every_code)
{
    int codes[] = {PROGRESS_OK,     PROGRESS_EJSON, PROGRESS_ETYPE,
                   PROGRESS_EFIELD, PROGRESS_EARG,  PROGRESS_ENOMEM};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        cr_expect_str_neq(progress_strerror(codes[i]), "unknown progress error");
        for (size_t k = 0; k < i; k++)
            cr_expect_str_neq(progress_strerror(codes[i]), progress_strerror(codes[k]));
    }
    cr_expect_str_eq(progress_strerror(-99), "unknown progress error");
}

Test(progress, new_refuses_bad_arguments)
{
    char long_id[PROGRESS_MAX_APP_ID + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    cr_expect_null(progress_new(NULL, UI, APP));
    cr_expect_null(progress_new(GROUP, NULL, APP));
    cr_expect_null(progress_new(GROUP, UI, NULL));
    cr_expect_null(progress_new("", UI, APP));
    cr_expect_null(progress_new(GROUP, "", APP));
    cr_expect_null(progress_new(GROUP, UI, ""));
    cr_expect_null(progress_new(GROUP, UI, long_id));
    long_id[PROGRESS_MAX_APP_ID] = '\0';
    struct progress *p = progress_new(GROUP, UI, long_id);
    cr_expect_not_null(p);
    progress_destroy(&p);
    cr_expect_null(p);
    progress_destroy(&p);
    progress_destroy(NULL);
    progress_finish(NULL, 0);
    cr_expect_eq(progress_errors(NULL), 0);
}

Test(progress, null_arguments)
{
    struct progress *p = tracker("g");
    struct progress_out out;
    cr_expect_eq(progress_update_jobs(NULL, "[]", 2, 0), PROGRESS_EARG);
    cr_expect_eq(progress_update_jobs(p, NULL, 2, 0), PROGRESS_EARG);
    cr_expect_eq(progress_update_stages(NULL, "[]", 2), PROGRESS_EARG);
    cr_expect_eq(progress_update_stages(p, NULL, 2), PROGRESS_EARG);
    cr_expect_eq(progress_update_jobs(p, NULL, 0, 0), PROGRESS_EJSON, "no text is not JSON");
    cr_expect_eq(progress_next(NULL, 0, &out), PROGRESS_EARG);
    cr_expect_null(out.data);
    cr_expect_eq(progress_next(p, 0, NULL), PROGRESS_EARG);
    progress_destroy(&p);
}

struct bad_case {
    const char *json;
    int code;
};

static const struct bad_case bad_jobs[] = {
    {"", PROGRESS_EJSON},
    {"[", PROGRESS_EJSON},
    {"[{\"jobId\":1,}]", PROGRESS_EJSON},
    {"<html>502 Bad Gateway</html>", PROGRESS_EJSON},
    {"[] []", PROGRESS_EJSON},
    {"{}", PROGRESS_ETYPE},
    {"{\"message\":\"no such app\"}", PROGRESS_ETYPE},
    {"42", PROGRESS_ETYPE},
    {"\"jobs\"", PROGRESS_ETYPE},
    {"null", PROGRESS_ETYPE},
    {"[1]", PROGRESS_ETYPE},
    {"[[]]", PROGRESS_ETYPE},
    {"[{\"jobId\":1,\"jobTags\":[\"g\"]}, null]", PROGRESS_ETYPE},
    {"[{}]", PROGRESS_EFIELD},
    {"[{\"name\":\"collect\",\"jobTags\":[\"g\"]}]", PROGRESS_EFIELD},
    {"[{\"jobId\":null}]", PROGRESS_EFIELD},
    {"[{\"jobId\":\"1\"}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1.0}]", PROGRESS_EFIELD},
    {"[{\"jobId\":-1}]", PROGRESS_EFIELD},
    {"[{\"jobId\":2147483648}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"numTasks\":\"24\"}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"numTasks\":-24}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"numFailedTasks\":true}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"numCompletedIndices\":1e3}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"numSkippedStages\":3000000000}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"stageIds\":3}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"stageIds\":[1,\"2\"]}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"stageIds\":[-1]}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"jobTags\":\"g\"}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"jobTags\":[\"g\",7]}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"status\":[\"RUNNING\"]}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"name\":{}}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"description\":false}]", PROGRESS_EFIELD},
    {"[{\"jobId\":1,\"submissionTime\":1764072000000}]", PROGRESS_EFIELD},
    /* A good job of the tag first: the whole answer is refused all the same. */
    {"[{\"jobId\":1,\"jobTags\":[\"g\"],\"status\":\"RUNNING\"},{\"jobId\":2,\"numTasks\":\"x\"}]",
     PROGRESS_EFIELD},
};

Test(progress, jobs_errors_leave_state_unchanged)
{
    struct progress *p = tracker("g");
    for (size_t i = 0; i < sizeof bad_jobs / sizeof bad_jobs[0]; i++) {
        int rc = feed(p, bad_jobs[i].json, 0);
        cr_expect_eq(rc, bad_jobs[i].code, "%s: %d (%s), want %d", bad_jobs[i].json, rc,
                     progress_strerror(rc), bad_jobs[i].code);
        cr_expect_eq(progress_errors(p), i + 1);
    }
    cr_expect_eq(drain_count(p, 10), 0, "no rejected answer left a job behind");
    cr_expect_eq(feed(p, JOB("\"status\":\"RUNNING\""), 20), PROGRESS_OK);
    cr_expect_eq(drain_count(p, 20.2), 1, "a good answer after bad ones still works");
    progress_destroy(&p);
}

static const struct bad_case bad_stages[] = {
    {"", PROGRESS_EJSON},
    {"[{\"stageId\":1", PROGRESS_EJSON},
    {"{}", PROGRESS_ETYPE},
    {"[\"ACTIVE\"]", PROGRESS_ETYPE},
    {"[{}]", PROGRESS_EFIELD},
    {"[{\"name\":\"collect at <cell>:1\"}]", PROGRESS_EFIELD},
    {"[{\"stageId\":\"1\"}]", PROGRESS_EFIELD},
    {"[{\"stageId\":1,\"attemptId\":-1}]", PROGRESS_EFIELD},
    {"[{\"stageId\":1,\"numTasks\":-4}]", PROGRESS_EFIELD},
    {"[{\"stageId\":1,\"numCompleteTasks\":\"2\"}]", PROGRESS_EFIELD},
    {"[{\"stageId\":1,\"name\":3}]", PROGRESS_EFIELD},
    {"[{\"stageId\":1,\"status\":1}]", PROGRESS_EFIELD},
};

Test(progress, stages_errors_leave_state_unchanged)
{
    struct progress *p = tracker("g");
    cr_assert_eq(feed(p, JOB("\"status\":\"RUNNING\",\"stageIds\":[1]"), 0), PROGRESS_OK);
    const char *good = "[{\"stageId\":1,\"name\":\"collect at <cell>:1\",\"numTasks\":4}]";
    cr_assert_eq(progress_update_stages(p, good, strlen(good)), PROGRESS_OK);
    for (size_t i = 0; i < sizeof bad_stages / sizeof bad_stages[0]; i++) {
        int rc = progress_update_stages(p, bad_stages[i].json, strlen(bad_stages[i].json));
        cr_expect_eq(rc, bad_stages[i].code, "%s: %d", bad_stages[i].json, rc);
    }
    cr_expect_eq(progress_errors(p), sizeof bad_stages / sizeof bad_stages[0]);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 0.2, out), 1);
    cr_expect_not_null(strstr(html(&out[0]), "stage 1: collect at &lt;cell&gt;:1"),
                       "the last good stages are kept: %s", html(&out[0]));
    release(out, 1);
    progress_destroy(&p);
}

/* ---- tag filtering ---------------------------------------------------------------------- */

struct group_case {
    const char *group; /* the tag */
    int file;          /* jobs-NN.json, fed at t = 0 */
    int ids[4];        /* the jobs displayed by t = 1 and after finish, -1 terminated */
};

static const struct group_case group_cases[] = {
    {"sparkernel-7", 1, {1, -1}},        /* job 1 running; job 0 (tag 6), 2 (none) are not */
    {"sparkernel-7", 13, {1, 3, 4, -1}}, /* finished jobs that ran long enough */
    {"sparkernel-6", 1, {0, -1}},        /* the earlier cell's job, 1.7 s long */
    {"sparkernel-9", 14, {5, -1}},
    {"sparkernel-8", 15, {-1}},
    {"sparkernel", 15, {-1}}, /* a prefix of a tag is not the tag */
    {"desc", 15, {-1}},       /* a description is not a tag */
};

Test(progress, keeps_only_the_cells_tagged_jobs)
{
    for (size_t c = 0; c < sizeof group_cases / sizeof group_cases[0]; c++) {
        const struct group_case *gc = &group_cases[c];
        struct progress *p = tracker(gc->group);
        feed_file(p, "jobs", gc->file, 0);
        struct progress_out out[MAX_OUT];
        int n = drain(p, 1, out);
        progress_finish(p, 1);
        n += drain(p, 1, out + n);
        int want = 0, first = 0;
        while (gc->ids[want] >= 0)
            want++;
        for (int i = 0; i < n; i++) {
            if (out[i].update) /* the final update of a job still running */
                continue;
            char id[128];
            snprintf(id, sizeof id, "sparkernel-" APP "-job-%d", gc->ids[first]);
            cr_expect_lt(first, want, "%s: job %d shown", gc->group, out[i].job_id);
            if (first >= want)
                break;
            cr_expect_eq(out[i].job_id, gc->ids[first], "%s: display %d", gc->group, first);
            cr_expect_str_eq(out[i].display_id, id);
            first++;
        }
        cr_expect_eq(first, want, "%s in jobs-%02d: %d jobs shown, want %d", gc->group, gc->file,
                     first, want);
        release(out, n);
        progress_destroy(&p);
    }
}

/* The cell's tag is "sparkernel-3": of the jobs in answer, only job_id is displayed. */
static void expect_only_job(const char *answer, int job_id)
{
    struct progress *p = tracker("sparkernel-3");
    cr_assert_eq(feed(p, answer, 0), PROGRESS_OK);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 0.3, out), 1);
    cr_expect_eq(out[0].job_id, job_id);
    release(out, 1);
    progress_destroy(&p);
}

/* A job group the notebook set is its own: the cell's jobs are those carrying the kernel's tag,
 * whatever their group (a group that happens to read like the tag is not followed). */
Test(progress, a_notebooks_own_job_group_does_not_hide_its_cells_jobs)
{
    expect_only_job("[{\"jobId\":2,\"jobGroup\":\"etl\",\"jobTags\":[\"spark-session-1\","
                    "\"sparkernel-3\"],\"status\":\"RUNNING\"},"
                    "{\"jobId\":1,\"jobGroup\":\"sparkernel-3\",\"jobTags\":[],"
                    "\"status\":\"RUNNING\"},"
                    "{\"jobId\":0,\"jobGroup\":\"etl\",\"jobTags\":null,\"status\":\"RUNNING\"}]",
                    2);
}

/* A job the cell started while its output was captured (%%capture) carries the quiet tag as
 * well as the cell's: never displayed; the cell's other jobs are. */
Test(progress, a_job_started_under_capture_is_not_displayed)
{
    expect_only_job("[{\"jobId\":2,\"jobTags\":[\"sparkernel-3\",\"" PROGRESS_QUIET_TAG "\"],"
                    "\"status\":\"RUNNING\"},"
                    "{\"jobId\":1,\"jobTags\":[\"" PROGRESS_QUIET_TAG "\",\"sparkernel-3\"],"
                    "\"status\":\"RUNNING\"},"
                    "{\"jobId\":0,\"jobTags\":[\"sparkernel-3\"],\"status\":\"RUNNING\"}]",
                    0);
}

/* ---- replay of the recorded application ------------------------------------------------- */

static const double recorded_at[] = {0.000,  4.536,  6.395,  8.473,  10.918, 13.183, 13.512, 14.740,
                                     15.386, 19.286, 19.804, 22.892, 23.101, 23.638, 25.393};
#define SNAPSHOTS ((int)(sizeof recorded_at / sizeof recorded_at[0]))

struct emission {
    double t;
    struct progress_out out;
};

struct replay_case {
    const char *what;
    double scale; /* recorded times are multiplied by this (a poll every 0.1 s: fake times) */
    int fast;     /* 1: snapshot k at 0.1 * k instead */
};

static const struct replay_case replays[] = {
    {"at the recorded times", 1, 0},
    {"a poll every 100 ms", 0, 1},
};

/* Feeds every snapshot, drains after each and after finish; returns the emissions. */
static int replay(const struct replay_case *rc, struct emission *em, int max)
{
    struct progress *p = tracker(GROUP);
    int n = 0;
    double t = 0;
    for (int k = 0; k < SNAPSHOTS; k++) {
        t = 500 + (rc->fast ? 0.1 * k : recorded_at[k] * rc->scale);
        feed_file(p, "jobs", k + 1, t);
        feed_file(p, "stages", k + 1, t);
        struct progress_out out[MAX_OUT];
        int got = drain(p, t, out);
        for (int i = 0; i < got; i++) {
            cr_assert_lt(n, max);
            em[n].t = t;
            em[n++].out = out[i];
        }
    }
    progress_finish(p, t + 0.01);
    struct progress_out out[MAX_OUT];
    int got = drain(p, t + 0.01, out);
    for (int i = 0; i < got; i++) {
        cr_assert_lt(n, max);
        em[n].t = t + 0.01;
        em[n++].out = out[i];
    }
    cr_expect_eq(drain_count(p, t + 5), 0, "nothing after the final updates");
    progress_destroy(&p);
    return n;
}

static const struct emission *last_of(const struct emission *em, int n, int job)
{
    const struct emission *last = NULL;
    for (int i = 0; i < n; i++)
        if (em[i].out.job_id == job)
            last = &em[i];
    return last;
}

Test(progress, replay_keeps_every_rule)
{
    for (size_t r = 0; r < sizeof replays / sizeof replays[0]; r++) {
        struct emission em[256];
        int n = replay(&replays[r], em, 256);
        cr_expect_gt(n, 3, "%s: %d displays", replays[r].what, n);
        for (int i = 0; i < n; i++) {
            const struct progress_out *o = &em[i].out;
            cr_expect(o->job_id == 1 || o->job_id == 3 || o->job_id == 4,
                      "%s: job %d is not in " GROUP, replays[r].what, o->job_id);
            int earlier = -1;
            for (int k = 0; k < i; k++)
                if (em[k].out.job_id == o->job_id)
                    earlier = k;
            cr_expect_eq(o->update, earlier >= 0, "%s: job %d: first display_data, then updates",
                         replays[r].what, o->job_id);
            if (earlier >= 0 && !o->final)
                cr_expect_geq(em[i].t - em[earlier].t, PROGRESS_UPDATE_EVERY - 1e-9,
                              "%s: job %d updated %.3f s after the previous display",
                              replays[r].what, o->job_id, em[i].t - em[earlier].t);
            if (earlier >= 0)
                cr_expect(!json_equal(o->data, em[earlier].out.data),
                          "%s: job %d sent twice the same display", replays[r].what, o->job_id);
        }
        /* What nbconvert keeps: the last display of each job is its final state. */
        const struct emission *j1 = last_of(em, n, 1), *j3 = last_of(em, n, 3),
                              *j4 = last_of(em, n, 4);
        cr_assert(j1 && j3 && j4, "%s: jobs 1, 3 and 4 are displayed", replays[r].what);
        cr_expect_str_eq(text(&j1->out), "[Spark job 1] desc \u2014 SUCCEEDED "
                                         "[####################] 24/24 tasks, 2/2 stages, 14.5 s");
        cr_expect_str_eq(text(&j3->out),
                         "[Spark job 3] desc \u2014 SUCCEEDED [####################] "
                         "4/4 tasks, 20 skipped, 1/1 stages, 4.4 s");
        cr_expect_str_eq(text(&j4->out), "[Spark job 4] desc \u2014 FAILED "
                                         "[############........] 5/8 tasks, 1 failed, 0/1 stages, "
                                         "3.3 s");
        for (int i = 0; i < n; i++)
            json_decref(em[i].out.data);
    }
}

Test(progress, replay_shows_the_active_stage)
{
    struct emission em[256];
    int n = replay(&replays[0], em, 256);
    int saw_map = 0, saw_result = 0;
    for (int i = 0; i < n; i++) {
        if (em[i].out.job_id != 1)
            continue;
        const char *h = html(&em[i].out);
        saw_map |= strstr(h, "stage 1: reduceByKey at &lt;cell&gt;:1 &#183; ") != NULL;
        saw_result |= strstr(h, "stage 2: collect at &lt;cell&gt;:1 &#183; ") != NULL;
        cr_expect_null(strstr(h, "<cell>"), "names are escaped: %s", h);
    }
    cr_expect(saw_map, "the shuffle map stage is shown while it runs");
    cr_expect(saw_result, "then the result stage");
    const struct emission *first = &em[0];
    cr_expect_eq(first->out.job_id, 1);
    cr_expect_str_eq(text(&first->out), "[Spark job 1] desc \u2014 "
                                        "[###.................] 4/24 tasks, stage 1/2, 4.5 s");
    cr_expect_not_null(strstr(html(&first->out), "<a href=\"" UI "/jobs/job/?id=1\""),
                       "Spark UI link: %s", html(&first->out));
    cr_expect_not_null(strstr(html(&first->out), "<b>Spark job 1</b> &#183; desc"));
    for (int i = 0; i < n; i++)
        json_decref(em[i].out.data);
}

/* ---- the emission rules, step by step --------------------------------------------------- */

enum op { END, JOBS, STAGES, NEXT, FINISH };

struct step {
    enum op op;
    double t;
    const char *json; /* JOBS, STAGES */
    int expect;       /* NEXT: displays due */
    int update;       /* NEXT with expect 1: the update flag wanted */
    const char *has;  /* NEXT with expect 1: a substring of text/plain, or NULL */
};

struct rule_case {
    const char *what;
    struct step steps[12];
};

#define RUNNING(fields) JOB("\"status\":\"RUNNING\",\"numTasks\":10" fields)
/* Over after ms ("00.300": 300 ms) by Spark's clock. */
#define OVER(status, fields, ms)                                                                   \
    JOB("\"status\":\"" status "\",\"numTasks\":10" fields "," DONE_AFTER(ms))

static const struct rule_case rule_cases[] = {
    {"200 ms rule: shown once seen running for 200 ms",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.0, .expect = 0},
      {.op = NEXT, .t = 10.19, .expect = 0},
      {.op = NEXT, .t = 10.2, .expect = 1, .update = 0, .has = "0/10 tasks"}}},
    {"200 ms rule: a job over within 200 ms never shows, not even after finish",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.1, .expect = 0},
      {.op = JOBS, .t = 10.15, .json = JOB("\"status\":\"SUCCEEDED\"," DONE_AFTER("00.150"))},
      {.op = NEXT, .t = 10.15, .expect = 0},
      {.op = NEXT, .t = 20.0, .expect = 0},
      {.op = FINISH, .t = 20.0},
      {.op = NEXT, .t = 20.0, .expect = 0},
      {.op = NEXT, .t = 30.0, .expect = 0}}},
    {"200 ms rule: first seen already over, 50 ms long",
     {{.op = JOBS, .t = 10.0, .json = JOB("\"status\":\"SUCCEEDED\"," DONE_AFTER("00.050"))},
      {.op = NEXT, .t = 11.0, .expect = 0},
      {.op = FINISH, .t = 11.0},
      {.op = NEXT, .t = 11.0, .expect = 0}}},
    {"200 ms rule: over between two polls but 300 ms long by Spark's clock: final state once",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.0, .expect = 0},
      {.op = JOBS, .t = 10.3, .json = OVER("SUCCEEDED", ",\"numCompletedTasks\":10", "00.300")},
      {.op = NEXT,
       .t = 10.3,
       .expect = 1,
       .update = 0,
       .has = "SUCCEEDED [####################] 10/10"},
      {.op = FINISH, .t = 10.4},
      {.op = NEXT, .t = 10.4, .expect = 0}}},
    {"200 ms rule: no Spark times, judged by the polls that saw it running",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = JOBS, .t = 10.1, .json = RUNNING("")},
      {.op = JOBS, .t = 10.15, .json = JOB("\"status\":\"SUCCEEDED\"")},
      {.op = NEXT, .t = 10.5, .expect = 0},
      {.op = FINISH, .t = 10.5},
      {.op = NEXT, .t = 10.5, .expect = 0}}},
    {"200 ms rule: no Spark times, seen running 250 ms",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = JOBS, .t = 10.25, .json = RUNNING("")},
      {.op = JOBS, .t = 10.5, .json = JOB("\"status\":\"SUCCEEDED\"")},
      {.op = NEXT, .t = 10.5, .expect = 1, .update = 0, .has = "SUCCEEDED"}}},
    {"throttle: at most one update per 250 ms",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.2, .expect = 1, .update = 0},
      {.op = JOBS, .t = 10.3, .json = RUNNING(",\"numCompletedTasks\":1")},
      {.op = NEXT, .t = 10.3, .expect = 0},
      {.op = NEXT, .t = 10.44, .expect = 0},
      {.op = NEXT, .t = 10.45, .expect = 1, .update = 1, .has = "1/10 tasks"},
      {.op = JOBS, .t = 10.5, .json = RUNNING(",\"numCompletedTasks\":2")},
      {.op = JOBS, .t = 10.6, .json = RUNNING(",\"numCompletedTasks\":3")},
      {.op = NEXT, .t = 10.6, .expect = 0},
      {.op = NEXT, .t = 10.7, .expect = 1, .update = 1, .has = "3/10 tasks"},
      {.op = NEXT, .t = 10.7, .expect = 0}}},
    {"change detection: nothing visible changed, nothing sent",
     {{.op = JOBS, .t = 10.0, .json = RUNNING(",\"numActiveTasks\":2")},
      {.op = NEXT, .t = 10.2, .expect = 1, .update = 0},
      {.op = JOBS, .t = 11.0, .json = RUNNING(",\"numActiveTasks\":1")},
      {.op = NEXT, .t = 11.0, .expect = 0},
      {.op = JOBS, .t = 12.0, .json = RUNNING(",\"numActiveTasks\":1,\"name\":\"renamed\"")},
      {.op = NEXT, .t = 12.0, .expect = 1, .update = 1, .has = "renamed"},
      {.op = JOBS, .t = 13.0, .json = RUNNING(",\"numActiveTasks\":1,\"name\":\"renamed\"")},
      {.op = NEXT, .t = 13.0, .expect = 0},
      {.op = NEXT, .t = 60.0, .expect = 0}}},
    {"finish: final update at once, whatever the throttle",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.2, .expect = 1, .update = 0},
      {.op = JOBS, .t = 10.3, .json = OVER("FAILED", ",\"numFailedTasks\":1", "00.300")},
      {.op = FINISH, .t = 10.31},
      {.op = NEXT,
       .t = 10.31,
       .expect = 1,
       .update = 1,
       .has = "FAILED [....................] 0/10 tasks, "
              "1 failed, 0.3 s"},
      {.op = NEXT, .t = 10.31, .expect = 0},
      {.op = JOBS, .t = 11.0, .json = RUNNING(",\"numCompletedTasks\":5")},
      {.op = NEXT, .t = 11.0, .expect = 0}}},
    {"finish: a job still running keeps its state, its time stops at the end of the cell",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.2, .expect = 1, .update = 0, .has = ", 0.2 s"},
      {.op = FINISH, .t = 14.0},
      {.op = NEXT,
       .t = 99.0,
       .expect = 1,
       .update = 1,
       .has = "[....................] 0/10 tasks, 4.0 s"},
      {.op = NEXT, .t = 99.0, .expect = 0}}},
    {"finish: a final state already shown is not sent again",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.2, .expect = 1, .update = 0},
      {.op = JOBS, .t = 11.0, .json = OVER("SUCCEEDED", ",\"numCompletedTasks\":10", "01.000")},
      {.op = NEXT, .t = 11.0, .expect = 1, .update = 1, .has = "SUCCEEDED"},
      {.op = FINISH, .t = 12.0},
      {.op = NEXT, .t = 12.0, .expect = 0}}},
    {"finish: twice is once",
     {{.op = JOBS, .t = 10.0, .json = RUNNING("")},
      {.op = NEXT, .t = 10.2, .expect = 1, .update = 0},
      {.op = FINISH, .t = 11.0},
      {.op = NEXT, .t = 11.0, .expect = 1, .update = 1},
      {.op = FINISH, .t = 12.0},
      {.op = NEXT, .t = 12.0, .expect = 0}}},
};

Test(progress, emission_rules)
{
    for (size_t c = 0; c < sizeof rule_cases / sizeof rule_cases[0]; c++) {
        const struct rule_case *rc = &rule_cases[c];
        struct progress *p = tracker("g");
        for (int s = 0; rc->steps[s].op != END; s++) {
            const struct step *st = &rc->steps[s];
            struct progress_out out[MAX_OUT];
            switch (st->op) {
            case JOBS:
                cr_assert_eq(feed(p, st->json, st->t), PROGRESS_OK, "%s: step %d", rc->what, s);
                break;
            case STAGES:
                cr_assert_eq(progress_update_stages(p, st->json, strlen(st->json)), PROGRESS_OK);
                break;
            case FINISH:
                progress_finish(p, st->t);
                break;
            case NEXT: {
                int n = drain(p, st->t, out);
                cr_expect_eq(n, st->expect, "%s: step %d (t=%.2f): %d displays, want %d", rc->what,
                             s, st->t, n, st->expect);
                if (n == 1 && st->expect == 1) {
                    cr_expect_eq(out[0].update, st->update, "%s: step %d: update flag", rc->what,
                                 s);
                    if (st->has)
                        cr_expect_not_null(strstr(text(&out[0]), st->has),
                                           "%s: step %d: \"%s\" lacks \"%s\"", rc->what, s,
                                           text(&out[0]), st->has);
                }
                release(out, n);
                break;
            }
            case END:
                break;
            }
        }
        progress_destroy(&p);
    }
}

/* One change at a time from BASE, and whether a display shows it. Elapsed time alone, active
 * task and stage counts, tags and times do not make an update. */
#define BASE "\"numTasks\":10,\"stageIds\":[1,2],\"description\":\"d\",\"name\":\"n\""

static const struct {
    const char *json;
    int visible;
} changes[] = {
    {JOB("\"status\":\"RUNNING\"," BASE), 0},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numCompletedTasks\":1"), 1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numCompletedIndices\":1"), 1},
    {JOB("\"status\":\"RUNNING\",\"numTasks\":11,\"stageIds\":[1,2],\"description\":\"d\","
         "\"name\":\"n\""),
     1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numFailedTasks\":1"), 1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numKilledTasks\":1"), 1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numSkippedTasks\":2"), 1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numCompletedStages\":1"), 1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numFailedStages\":1"), 1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numSkippedStages\":1"), 1},
    {JOB("\"status\":\"RUNNING\",\"numTasks\":10,\"stageIds\":[1,2,3],\"description\":\"d\","
         "\"name\":\"n\""),
     1},
    {JOB("\"status\":\"RUNNING\",\"numTasks\":10,\"stageIds\":[1,2],\"description\":\"e\","
         "\"name\":\"n\""),
     1},
    {JOB("\"status\":\"RUNNING\",\"numTasks\":10,\"stageIds\":[1,2],\"name\":\"n\""), 1},
    {JOB("\"status\":\"RUNNING\",\"numTasks\":10,\"stageIds\":[1,2],\"description\":\"d\","
         "\"name\":\"m\""),
     1},
    {JOB("\"status\":\"SUCCEEDED\"," BASE), 1},
    {JOB("\"status\":\"FAILED\"," BASE), 1},
    {JOB("\"status\":\"UNKNOWN\"," BASE), 1},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numActiveTasks\":2"), 0},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"numActiveStages\":2"), 0},
    {JOB("\"status\":\"RUNNING\"," BASE ",\"jobTags\":[\"t\"],\"killedTasksSummary\":{}"), 0},
    {JOB("\"status\":\"RUNNING\"," BASE "," T0), 0},
};

Test(progress, every_visible_change_updates)
{
    for (size_t c = 0; c < sizeof changes / sizeof changes[0]; c++) {
        struct progress *p = tracker("g");
        cr_assert_eq(feed(p, JOB("\"status\":\"RUNNING\"," BASE), 0), PROGRESS_OK);
        cr_assert_eq(drain_count(p, 0.2), 1);
        cr_assert_eq(feed(p, changes[c].json, 2), PROGRESS_OK);
        cr_expect_eq(drain_count(p, 2), changes[c].visible, "%s: %s", changes[c].json,
                     changes[c].visible ? "a visible change" : "nothing visible changed");
        progress_destroy(&p);
    }
}

Test(progress, stage_changes_update)
{
    struct progress *p = tracker("g");
    cr_assert_eq(feed(p, RUNNING(",\"stageIds\":[4,5]"), 0), PROGRESS_OK);
    const char *steps[] = {
        "[]",
        "[{\"stageId\":4,\"name\":\"reduceByKey at <cell>:1\",\"numTasks\":20}]",
        "[{\"stageId\":4,\"name\":\"reduceByKey at <cell>:1\",\"numTasks\":20,"
        "\"numCompleteTasks\":3}]",
        "[{\"stageId\":4,\"attemptId\":1,\"name\":\"reduceByKey at <cell>:1\",\"numTasks\":20,"
        "\"numCompleteTasks\":3}]",
        "[{\"stageId\":4,\"attemptId\":1,\"name\":\"reduceByKey at <cell>:1\",\"numTasks\":20,"
        "\"numCompleteTasks\":3},{\"stageId\":5,\"name\":\"collect at <cell>:1\"}]",
        "[{\"stageId\":5,\"name\":\"collect at <cell>:1\",\"numTasks\":4}]",
    };
    const char *want[] = {
        NULL,
        "stage 4: reduceByKey at &lt;cell&gt;:1 &#183; 0/20 tasks</div>",
        "stage 4: reduceByKey at &lt;cell&gt;:1 &#183; 3/20 tasks</div>",
        "stage 4 (attempt 1): reduceByKey at &lt;cell&gt;:1 &#183; 3/20 tasks</div>",
        "stage 4 (attempt 1): reduceByKey at &lt;cell&gt;:1 &#183; 3/20 tasks &#183; 1 more "
        "active</div>",
        "stage 5: collect at &lt;cell&gt;:1 &#183; 0/4 tasks</div>",
    };
    double t = 0.2;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++, t += 1) {
        cr_assert_eq(progress_update_stages(p, steps[i], strlen(steps[i])), PROGRESS_OK);
        struct progress_out out[MAX_OUT];
        int n = drain(p, t, out);
        cr_expect_eq(n, 1, "stages %zu: %d displays", i, n);
        if (n == 1 && want[i] != NULL)
            cr_expect_not_null(strstr(html(&out[0]), want[i]), "%s\nlacks %s", html(&out[0]),
                               want[i]);
        if (n == 1 && want[i] == NULL)
            cr_expect_null(strstr(html(&out[0]), "stage 4"));
        release(out, n);
        /* The same stages again: no update. */
        cr_assert_eq(progress_update_stages(p, steps[i], strlen(steps[i])), PROGRESS_OK);
        cr_expect_eq(drain_count(p, t + 0.5), 0, "stages %zu repeated", i);
    }
    progress_destroy(&p);
}

Test(progress, stages_of_other_status_are_not_active)
{
    struct progress *p = tracker("g");
    cr_assert_eq(feed(p, RUNNING(",\"stageIds\":[1,2,3]"), 0), PROGRESS_OK);
    const char *all =
        "[{\"stageId\":3,\"status\":\"PENDING\",\"name\":\"pending\"},"
        "{\"stageId\":2,\"attemptId\":1,\"status\":\"ACTIVE\",\"name\":\"the active one\"},"
        "{\"stageId\":2,\"attemptId\":0,\"status\":\"ACTIVE\",\"name\":\"old attempt\"},"
        "{\"stageId\":1,\"status\":\"COMPLETE\",\"name\":\"complete\"},"
        "{\"stageId\":9,\"status\":\"ACTIVE\",\"name\":\"another job's\"}]";
    cr_assert_eq(progress_update_stages(p, all, strlen(all)), PROGRESS_OK);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 0.2, out), 1);
    cr_expect_not_null(strstr(html(&out[0]), "stage 2 (attempt 1): the active one"), "%s",
                       html(&out[0]));
    cr_expect_null(strstr(html(&out[0]), "old attempt"), "the latest attempt of a stage");
    cr_expect_null(strstr(html(&out[0]), "pending"));
    cr_expect_null(strstr(html(&out[0]), "complete"));
    cr_expect_null(strstr(html(&out[0]), "another job"));
    cr_expect_null(strstr(html(&out[0]), "more active"));
    release(out, 1);
    progress_destroy(&p);
}

/* ---- rendering -------------------------------------------------------------------------- */

Test(progress, text_plain_line)
{
    struct progress *p = tracker("g");
    const char *job = "[{\"jobId\":3,\"jobTags\":[\"g\"],\"name\":\"collect at <cell>:1\","
                      "\"status\":\"RUNNING\",\"numTasks\":200,\"numCompletedTasks\":37,"
                      "\"stageIds\":[4,5,6],\"numCompletedStages\":1}]";
    cr_assert_eq(feed(p, job, 100), PROGRESS_OK);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 104.1, out), 1);
    cr_expect_str_eq(text(&out[0]), "[Spark job 3] collect at <cell>:1 \u2014 "
                                    "[###.................] 37/200 tasks, stage 2/3, 4.1 s");
    cr_expect_str_eq(out[0].display_id, "sparkernel-" APP "-job-3");
    cr_expect_eq(out[0].job_id, 3);
    cr_expect_eq(out[0].update, 0);
    cr_expect_eq(out[0].final, 0);
    cr_expect_eq(json_object_size(out[0].data), 2, "text/html and text/plain only");
    cr_expect_not_null(strstr(html(&out[0]), "width:18.5%"), "the bar: %s", html(&out[0]));
    release(out, 1);
    progress_destroy(&p);
}

Test(progress, html_escapes_the_description)
{
    /* The recorded job 5: sc.setJobGroup("sparkernel-9", "<script>alert('x')</script> & \"q\""). */
    struct progress *p = tracker("sparkernel-9");
    feed_file(p, "jobs", 14, 0);
    feed_file(p, "stages", 14, 0);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 0.3, out), 1);
    const char *h = html(&out[0]);
    cr_expect_null(strstr(h, "<script"), "%s", h);
    cr_expect_not_null(
        strstr(h, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot; <span "
                  "style=\"opacity:0.7\">(count at &lt;cell&gt;:1)</span>"),
        "%s", h);
    cr_expect_not_null(strstr(h, "stage 7: count at &lt;cell&gt;:1"), "%s", h);
    release(out, 1);
    progress_destroy(&p);

    /* Markup and line breaks in names and descriptions, and a hostile UI URL. */
    p = progress_new("g", "http://x/\"><script>", APP);
    cr_assert_not_null(p);
    cr_assert_eq(feed(p,
                      RUNNING(",\"name\":\"a\\nb</div><img src=x onerror=alert(1)>\","
                              "\"description\":\"line 1\\r\\nline 2\\t<b>&amp;\""),
                      0),
                 PROGRESS_OK);
    cr_assert_eq(drain(p, 0.2, out), 1);
    h = html(&out[0]);
    cr_expect_null(strstr(h, "<img"), "%s", h);
    cr_expect_null(strstr(h, "<b>&amp;"), "%s", h);
    cr_expect_null(strstr(h, "<script"), "%s", h);
    /* HTML keeps newlines and tabs (its own white space, shown as spaces outside a <pre>). */
    cr_expect_not_null(strstr(h, "line 1 \nline 2\t&lt;b&gt;&amp;amp;"), "%s", h);
    cr_expect_not_null(strstr(h, "href=\"http://x/&quot;&gt;&lt;script&gt;/jobs/job/?id=1\""), "%s",
                       h);
    cr_expect_null(strchr(text(&out[0]), '\n'), "text/plain is one line: %s", text(&out[0]));
    cr_expect_not_null(strstr(text(&out[0]), "] line 1  line 2 <b>&amp; \u2014"), "%s",
                       text(&out[0])); /* the description, as the HTML's title */
    release(out, 1);
    progress_destroy(&p);
}

Test(progress, failure_counts)
{
    /* The recorded job 4: one task raised ZeroDivisionError, the job failed. */
    struct progress *p = tracker(GROUP);
    feed_file(p, "jobs", 12, 0);
    feed_file(p, "stages", 12, 0);
    struct progress_out out[MAX_OUT];
    int n = drain(p, 0, out);
    cr_assert_eq(n, 2, "jobs 1 and 3 are over and long enough: %d", n);
    release(out, n);
    cr_assert_eq(drain_count(p, 0.2), 1, "job 4, running");
    feed_file(p, "jobs", 13, 0.5);
    feed_file(p, "stages", 13, 0.5);
    cr_assert_eq(drain(p, 0.5, out), 1);
    const char *h = html(&out[0]);
    cr_expect_eq(out[0].job_id, 4);
    cr_expect_not_null(strstr(h, "<span style=\"color:#c62828\">(1 failed)</span>"), "%s", h);
    cr_expect_not_null(strstr(h, "<span style=\"font-weight:bold;color:#c62828\">FAILED</span>"),
                       "%s", h);
    cr_expect_not_null(strstr(h, "stages 0/1 <span style=\"color:#c62828\">(1 failed)</span>"),
                       "%s", h);
    cr_expect_not_null(strstr(text(&out[0]), "FAILED [##########..........] 4/8 tasks, 1 failed"),
                       "%s", text(&out[0]));
    release(out, 1);
    /* Killed and skipped tasks are shown as Spark's UI shows them. */
    cr_assert_eq(feed(p,
                      "[{\"jobId\":4,\"jobTags\":[\"" GROUP "\"],\"status\":\"FAILED\","
                      "\"numTasks\":8,\"numCompletedTasks\":5,\"numFailedTasks\":1,"
                      "\"numKilledTasks\":2,\"numSkippedTasks\":0}]",
                      1),
                 PROGRESS_OK);
    cr_assert_eq(drain(p, 1, out), 1);
    cr_expect_not_null(strstr(html(&out[0]), "5/8 tasks <span style=\"color:#c62828\">(1 "
                                             "failed)</span> (2 killed)"),
                       "%s", html(&out[0]));
    release(out, 1);
    progress_destroy(&p);
}

/* Every optional field of a real JobData, removed in turn (and all at once): accepted, and
 * the job is still displayed. */
static const char *const optional_fields[] = {
    "name",
    "description",
    "submissionTime",
    "completionTime",
    "stageIds",
    "jobGroup", /* the notebook's own, if any: the cell's jobs are known by their tag */
    "numTasks",
    "numActiveTasks",
    "numCompletedTasks",
    "numSkippedTasks",
    "numFailedTasks",
    "numKilledTasks",
    "numCompletedIndices",
    "numActiveStages",
    "numCompletedStages",
    "numSkippedStages",
    "numFailedStages",
    "killedTasksSummary",
};

static char *without(const char *file, const char *field, int all)
{
    size_t len;
    char *src = load(file, &len);
    json_error_t err;
    json_t *root = json_loadb(src, len, 0, &err);
    cr_assert_not_null(root, "%s: %s", file, err.text);
    free(src);
    size_t i;
    json_t *job;
    json_array_foreach(root, i, job)
    {
        if (all)
            for (size_t k = 0; k < sizeof optional_fields / sizeof optional_fields[0]; k++)
                json_object_del(job, optional_fields[k]);
        else
            json_object_set_new(job, field, json_null()); /* null counts as absent too */
        if (!all && strcmp(field, "name") == 0)
            json_object_del(job, field);
    }
    char *out = json_dumps(root, 0);
    json_decref(root);
    return out;
}

Test(progress, missing_optional_fields)
{
    for (size_t k = 0; k <= sizeof optional_fields / sizeof optional_fields[0]; k++) {
        int all = k == sizeof optional_fields / sizeof optional_fields[0];
        const char *field = all ? "(all)" : optional_fields[k];
        struct progress *p = tracker(GROUP);
        char *doc = without("jobs-03.json", field, all);
        cr_assert_eq(feed(p, doc, 0), PROGRESS_OK, "without %s", field);
        free(doc);
        struct progress_out out[MAX_OUT];
        int n = drain(p, 0.2, out);
        cr_expect_eq(n, 1, "without %s: %d displays", field, n);
        if (n == 1)
            cr_expect_not_null(strstr(text(&out[0]), "[Spark job 1] "), "%s", text(&out[0]));
        release(out, n);
        progress_destroy(&p);
    }
    /* Only the id and the tag: no status, so not known to run, never shown. */
    struct progress *p = tracker("g");
    cr_expect_eq(feed(p, "[{\"jobId\":1,\"jobTags\":[\"g\"]}]", 0), PROGRESS_OK);
    cr_expect_eq(drain_count(p, 5), 0);
    /* Once it reports RUNNING with nothing else, it shows with zero counts. */
    cr_expect_eq(feed(p, "[{\"jobId\":1,\"jobTags\":[\"g\"],\"status\":\"RUNNING\"}]", 6),
                 PROGRESS_OK);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 6.2, out), 1);
    cr_expect_str_eq(text(&out[0]), "[Spark job 1]  \u2014 [....................] 0/0 tasks, 6.2 s",
                     "elapsed counts from the first sight of the job");
    release(out, 1);
    /* Fields Spark may add later are ignored; an unknown status is UNKNOWN. */
    cr_expect_eq(feed(p,
                      "[{\"jobId\":1,\"jobTags\":[\"g\"],\"status\":\"PAUSED\",\"newField\":{"
                      "\"a\":[1]}}]",
                      7),
                 PROGRESS_OK);
    cr_assert_eq(drain(p, 7, out), 1);
    cr_expect_not_null(strstr(text(&out[0]), "UNKNOWN"), "%s", text(&out[0]));
    release(out, 1);
    progress_destroy(&p);
}

/* ---- time ------------------------------------------------------------------------------- */

struct elapsed_case {
    const char *submitted, *completed;
    const char *want;
};

static const struct elapsed_case elapsed_cases[] = {
    {"2026-11-25T12:00:00.000GMT", "2026-11-25T12:00:04.140GMT", ", 4.1 s"},
    {"2026-11-25T12:00:00.900GMT", "2026-11-25T12:00:01.000GMT", ", 0.1 s"},
    {"2026-11-25T12:00:00GMT", "2026-11-25T12:02:05GMT", ", 2 min 05 s"},
    {"2026-11-25T23:59:00.000GMT", "2026-11-26T01:02:03.000GMT", ", 1 h 03 min"},
    {"2026-11-25T12:00:00.000GMT", "9999-01-01T00:00:00.000GMT", ", a long time"},
    {"2026-11-25T12:00:00.000Z", "2026-11-25T12:00:30.500Z", ", 30.5 s"},
    {"2026-11-25T12:00:00.000", "2026-11-25T12:00:30.5", ", 30.5 s"},
    /* Completion before submission (never seen; clocks are one JVM): zero, not negative. */
    {"2026-11-25T12:00:05.000GMT", "2026-11-25T12:00:00.000GMT", ", 0.0 s"},
    /* Not dates: elapsed from the polls instead (first seen at 10, over at 13). */
    {"yesterday", "2026-11-25T12:00:00.000GMT", ", 3.0 s"},
    {"2026-11-25T12:00:00.000GMT", "2026-11-25T12:00:00.000PST", ", 3.0 s"},
    {"2026-11-25T12:00:00.GMT", "2026-11-25T12:00:01.000GMT", ", 3.0 s"},
    {"2026-13-25T12:00:00.000GMT", "2026-11-25T12:00:01.000GMT", ", 3.0 s"},
    {"", "", ", 3.0 s"},
};

Test(progress, elapsed_from_spark_times)
{
    for (size_t c = 0; c < sizeof elapsed_cases / sizeof elapsed_cases[0]; c++) {
        const struct elapsed_case *ec = &elapsed_cases[c];
        struct progress *p = tracker("g");
        cr_assert_eq(feed(p, RUNNING(""), 10), PROGRESS_OK);
        cr_assert_eq(drain_count(p, 10.5), 1);
        json_t *doc = json_pack("[{s:i, s:[s], s:s, s:s, s:s}]", "jobId", 1, "jobTags", "g",
                                "status", "SUCCEEDED", "submissionTime", ec->submitted,
                                "completionTime", ec->completed);
        char *s = json_dumps(doc, 0);
        json_decref(doc);
        cr_assert_eq(feed(p, s, 13), PROGRESS_OK);
        free(s);
        struct progress_out out[MAX_OUT];
        cr_assert_eq(drain(p, 13, out), 1);
        const char *t = text(&out[0]);
        size_t tl = strlen(t), wl = strlen(ec->want);
        cr_expect(tl >= wl && strcmp(t + tl - wl, ec->want) == 0, "%s .. %s: \"%s\", want \"%s\"",
                  ec->submitted, ec->completed, t, ec->want);
        release(out, 1);
        progress_destroy(&p);
    }
}

/* ---- bounds ----------------------------------------------------------------------------- */

Test(progress, long_descriptions_are_cut_on_a_character)
{
    /* "x" and 600 two-byte characters: byte 512 is inside a character, so the cut backs off. */
    char desc[1300] = "x";
    for (int i = 0; i < 600; i++)
        memcpy(desc + 1 + 2 * i, "\xc3\xa9", 2);
    desc[1201] = '\0';
    json_t *doc = json_pack("[{s:i, s:[s], s:s, s:s}]", "jobId", 1, "jobTags", "g", "status",
                            "RUNNING", "description", desc);
    char *s = json_dumps(doc, 0);
    json_decref(doc);
    struct progress *p = tracker("g");
    cr_assert_eq(feed(p, s, 0), PROGRESS_OK);
    free(s);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 0.2, out), 1, "the display is valid UTF-8 (jansson accepted it)");
    cr_expect_not_null(strstr(html(&out[0]), "\xc3\xa9\xc3\xa9\u2026"), "ends in an ellipsis");
    cr_expect_lt(strlen(html(&out[0])), 2000);
    release(out, 1);
    progress_destroy(&p);
}

Test(progress, job_count_is_bounded)
{
    /* More jobs than PROGRESS_MAX_JOBS with one tag: the first ones are tracked. */
    int n = PROGRESS_MAX_JOBS + 10;
    json_t *doc = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(doc, json_pack("{s:i, s:[s], s:s}", "jobId", n - i, "jobTags", "g",
                                             "status", "RUNNING"));
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct progress *p = tracker("g");
    cr_assert_eq(feed(p, s, 0), PROGRESS_OK);
    cr_assert_eq(feed(p, s, 0.1), PROGRESS_OK, "the same answer again: no growth, no error");
    free(s);
    int shown = 0, rc;
    struct progress_out out;
    while ((rc = progress_next(p, 0.2, &out)) == 1) {
        cr_assert_eq(out.update, 0);
        json_decref(out.data);
        shown++;
        cr_assert_leq(shown, PROGRESS_MAX_JOBS);
    }
    cr_expect_eq(rc, 0);
    cr_expect_eq(shown, PROGRESS_MAX_JOBS);
    progress_destroy(&p);
}

Test(progress, stage_ids_per_job_are_bounded)
{
    json_t *ids = json_array();
    for (int i = 0; i < 70000; i++)
        json_array_append_new(ids, json_integer(i));
    json_t *doc = json_pack("[{s:i, s:[s], s:s, s:o}]", "jobId", 1, "jobTags", "g", "status",
                            "RUNNING", "stageIds", ids);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct progress *p = tracker("g");
    cr_assert_eq(feed(p, s, 0), PROGRESS_OK);
    free(s);
    struct progress_out out[MAX_OUT];
    cr_assert_eq(drain(p, 0.2, out), 1);
    cr_expect_not_null(strstr(text(&out[0]), "stage 1/65536"), "%s", text(&out[0]));
    release(out, 1);
    progress_destroy(&p);
}

/* ---- what the kernel asks between polls ------------------------------------------------- */

/* How often the kernel looks: often while the newest running job is young, then less. */
Test(progress, look_every_slows_as_a_job_runs_on)
{
    cr_expect_float_eq(progress_look_every(NULL, 0.0), 0.5, 1e-9);
    struct progress *p = tracker("g");
    cr_expect_float_eq(progress_look_every(p, 1.0), 0.5, 1e-9, "no job: every 0.5 s");
    cr_assert_eq(feed(p, RUNNING(",\"numActiveTasks\":2"), 10.0), PROGRESS_OK);
    cr_expect_float_eq(progress_look_every(p, 10.0), 0.25, 1e-9, "just started");
    cr_expect_float_eq(progress_look_every(p, 11.9), 0.25, 1e-9);
    cr_assert_eq(feed(p, RUNNING(",\"numActiveTasks\":2"), 12.5), PROGRESS_OK);
    cr_expect_float_eq(progress_look_every(p, 12.5), 0.5, 1e-9, "counted from the first look");
    cr_expect_float_eq(progress_look_every(p, 19.9), 0.5, 1e-9);
    cr_expect_float_eq(progress_look_every(p, 20.0), 1.0, 1e-9, "a long job: every second");
    cr_assert_eq(feed(p, OVER("SUCCEEDED", "", "00.300"), 21.0), PROGRESS_OK);
    cr_expect_float_eq(progress_look_every(p, 21.0), 0.5, 1e-9, "over: back to 0.5 s");
    progress_destroy(&p);
}

Test(progress, displayed_and_waiting)
{
    cr_expect_eq(progress_displayed(NULL), 0);
    cr_expect_eq(progress_waiting(NULL), 0);
    cr_expect_eq(progress_running(NULL), 0);
    struct progress *p = tracker(GROUP);
    cr_expect_eq(progress_displayed(p), 0);
    cr_expect_eq(progress_waiting(p), 0, "no job yet");
    cr_expect_eq(progress_running(p), 0, "no job yet: the kernel looks less often");
    /* The recorded job 1 with three tasks running: not waiting; shown after 200 ms. */
    feed_file(p, "jobs", 1, 0);
    cr_expect_eq(progress_waiting(p), 0);
    cr_expect_eq(progress_running(p), 1, "a job runs: its active stage is worth asking for");
    cr_expect_eq(drain_count(p, 0.1), 0);
    cr_expect_eq(progress_displayed(p), 0, "nothing handed out yet");
    cr_expect_eq(drain_count(p, 0.2), 1);
    cr_expect_eq(progress_displayed(p), 1);
    /* Between the stages of job 1 (jobs-07: the result stage has no task running yet). */
    feed_file(p, "jobs", 7, 1);
    cr_expect_eq(progress_waiting(p), 1);
    feed_file(p, "jobs", 8, 2);
    cr_expect_eq(progress_waiting(p), 0);
    /* Over: nothing runs, nothing waits. */
    feed_file(p, "jobs", 13, 3);
    cr_expect_eq(progress_waiting(p), 0);
    cr_expect_eq(progress_running(p), 0);
    progress_destroy(&p);
    /* A job submitted to an application without executors: RUNNING, no task active. */
    p = tracker("g");
    cr_assert_eq(feed(p, RUNNING(",\"numActiveTasks\":0"), 0), PROGRESS_OK);
    cr_expect_eq(progress_waiting(p), 1);
    cr_expect_eq(progress_displayed(p), 0);
    progress_destroy(&p);
}
