/* progress: the Spark jobs of one running cell, from the driver UI's REST answers to Jupyter
 * displays. Parsing keeps the jobs tagged with the cell's tag in a jobId-sorted array and the
 * active stages in a stageId-sorted one; progress_next() applies the emission policy of
 * progress.h and renders each display as inline-styled HTML (no CSS or JS, so JupyterLab, the
 * classic notebook and nbconvert all show it) with a one-line text/plain fallback. Field names
 * follow Spark's status.api.v1 JobData and StageData. */
#include "progress.h"
#include "jfield.h"
#include "render.h"

#include "../kernel/log.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_BYTES 256        /* job and stage names kept (Spark's call sites are short) */
#define DESC_MAX_BYTES 512        /* descriptions kept: the title of a display, not the cell */
#define MAX_STAGE_IDS  65536      /* stageIds kept per job */
#define BAR_WIDTH      20         /* characters in the text/plain bar */
#define EPSILON        1e-9       /* 10.2 - 10.0 < 0.2 in doubles: thresholds allow for it */
#define ELLIPSIS       "\u2026"   /* appended to a cut string */
#define DASH           " \u2014 " /* between the title and the counts in text/plain */

enum job_status { JOB_UNKNOWN, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED };

static const char *const status_names[] = {"UNKNOWN", "RUNNING", "SUCCEEDED", "FAILED"};

/* Counters of a JobData, all optional in the answer (0 when absent). */
struct job_counts {
    int tasks, active_tasks, completed_tasks, skipped_tasks, failed_tasks, killed_tasks;
    int completed_indices, active_stages, completed_stages, skipped_stages, failed_stages;
    int has_completed_indices;
};

static const struct {
    const char *key;
    size_t off;
} job_count_fields[] = {
    {"numTasks", offsetof(struct job_counts, tasks)},
    {"numActiveTasks", offsetof(struct job_counts, active_tasks)},
    {"numCompletedTasks", offsetof(struct job_counts, completed_tasks)},
    {"numSkippedTasks", offsetof(struct job_counts, skipped_tasks)},
    {"numFailedTasks", offsetof(struct job_counts, failed_tasks)},
    {"numKilledTasks", offsetof(struct job_counts, killed_tasks)},
    {"numCompletedIndices", offsetof(struct job_counts, completed_indices)},
    {"numActiveStages", offsetof(struct job_counts, active_stages)},
    {"numCompletedStages", offsetof(struct job_counts, completed_stages)},
    {"numSkippedStages", offsetof(struct job_counts, skipped_stages)},
    {"numFailedStages", offsetof(struct job_counts, failed_stages)},
};

/* What a display shows, minus elapsed time: two equal views need no update. */
struct view {
    unsigned labels; /* bumped when the name or the description changes */
    enum job_status status;
    int done, total, failed, killed, skipped;
    int stages_done, stages_total, stages_failed, stages_skipped;
    int stage_id, stage_attempt, stage_done, stage_total, stage_more; /* stage_id -1: none */
};

struct job {
    int id;
    char *name;        /* never NULL */
    char *description; /* NULL when absent or empty */
    unsigned labels;   /* changes of name or description */
    enum job_status status;
    struct job_counts n;
    int *stage_ids;
    size_t nstage_ids;
    int has_duration;
    double duration; /* completionTime - submissionTime, seconds */
    /* Times on the caller's clock. */
    double first_seen, first_running, last_running, ended_at;
    int seen_running, seen_ended;
    /* Emission state. */
    int displayed, final_pending, closed;
    double last_emit;
    struct view shown;
};

struct stage {
    int id, attempt;
    char *name; /* never NULL */
    int tasks, active_tasks, complete_tasks, failed_tasks;
};

struct progress {
    char *job_tag, *ui_url, *app_id;
    struct job **jobs; /* sorted by id; pointers, so an insertion moves little */
    size_t njobs, cap;
    struct stage *stages; /* active stages, sorted by (id, attempt) */
    size_t nstages;
    int finished;
    double finish_time;
    unsigned errors;
    int last_error;
    int warned_full;
};

const char *progress_strerror(int code)
{
    switch (code) {
    case PROGRESS_OK:
        return "ok";
    case PROGRESS_EJSON:
        return "the Spark driver's REST answer is not JSON";
    case PROGRESS_ETYPE:
        return "the Spark driver's REST answer is not a JSON array of objects";
    case PROGRESS_EFIELD:
        return "the Spark driver's REST answer has an entry without its id or a field of the "
               "wrong type";
    case PROGRESS_EARG:
        return "invalid argument (NULL progress or text)";
    case PROGRESS_ENOMEM:
        return "out of memory";
    }
    return "unknown progress error";
}

/* ---- small helpers ---------------------------------------------------------------------- */

static int is_done(enum job_status s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED;
}

static double max0(double x)
{
    return x > 0 ? x : 0;
}

/* A malloc'd copy of s cut to at most max bytes on a UTF-8 character boundary, with an
 * ellipsis when cut, so jansson (which takes only valid UTF-8) accepts it. */
static char *copy_text(const char *s, size_t max)
{
    size_t len = strlen(s);
    int cut = len > max;
    if (cut) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char *out = malloc(len + (cut ? sizeof ELLIPSIS : 1));
    if (out == NULL)
        return NULL;
    memcpy(out, s, len);
    if (cut)
        memcpy(out + len, ELLIPSIS, sizeof ELLIPSIS);
    else
        out[len] = '\0';
    return out;
}

/* Replaces *dst with a copy of s unless equal. Returns 1 when replaced, 0 when equal, -1 out of
 * memory (*dst kept). */
static int set_text(char **dst, const char *s, size_t max)
{
    char *copy = copy_text(s, max);
    if (copy == NULL)
        return -1;
    if (*dst != NULL && strcmp(*dst, copy) == 0) {
        free(copy);
        return 0;
    }
    free(*dst);
    *dst = copy;
    return 1;
}

/* Spark's dates, "2026-11-25T12:53:52.120GMT" (JacksonMessageWriter), to seconds since the
 * epoch. Also takes "Z" or no zone. Returns 0, or -1 when s is not such a date. */
static int parse_time(const char *s, double *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return -1;
    double frac = 0, scale = 0.1;
    if (*rest == '.') {
        rest++;
        if (*rest < '0' || *rest > '9')
            return -1;
        for (; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            frac += (*rest - '0') * scale;
    }
    if (*rest != '\0' && strcmp(rest, "GMT") != 0 && strcmp(rest, "Z") != 0)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (double)t + frac;
    return 0;
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* Records a rejected answer: counted always, logged once per run of the same error. */
static int reject(struct progress *p, int code, const char *what, const char *detail)
{
    p->errors++;
    if (code != p->last_error)
        log_warn("progress: %s answer rejected: %s (%s)", what, progress_strerror(code), detail);
    else
        log_debug("progress: %s answer rejected again: %s", what, detail);
    p->last_error = code;
    return code;
}

/* A string field: absent or null leave *dst NULL. Borrowed from obj. */
static int get_str(json_t *obj, const char *key, const char **dst, char *detail, size_t dlen,
                   size_t index)
{
    char why[160];
    if (jfield_str(obj, key, 0, dst, why, sizeof why) == JFIELD_OK)
        return PROGRESS_OK;
    snprintf(detail, dlen, "entry %zu: %s", index, why);
    return PROGRESS_EFIELD;
}

/* An integer field in min..INT_MAX. Absent or null: *present 0, *dst kept. */
static int get_int(json_t *obj, const char *key, int min, int *dst, int *present, char *detail,
                   size_t dlen, size_t index)
{
    char why[160];
    long long n = 0;
    int found = 0;
    if (jfield_int(obj, key, 0, min, INT_MAX, &n, &found, why, sizeof why) != JFIELD_OK) {
        snprintf(detail, dlen, "entry %zu: %s", index, why);
        return PROGRESS_EFIELD;
    }
    if (found)
        *dst = (int)n;
    if (present != NULL)
        *present = found;
    return PROGRESS_OK;
}

/* One JobData, checked; strings and stage_ids borrowed from the parsed answer. */
struct job_in {
    int id;
    const char *name, *description, *status, *submitted, *completed;
    int tagged;        /* its jobTags hold the cell's tag */
    json_t *stage_ids; /* an array of integers in 0..INT_MAX, or NULL */
    struct job_counts n;
};

/* obj's array field key: *out is the array, or NULL when absent or null. */
static int get_array(json_t *obj, const char *key, json_t **out, char *detail, size_t dlen,
                     size_t i)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return PROGRESS_OK;
    if (!json_is_array(v)) {
        snprintf(detail, dlen, "entry %zu: \"%s\" is not an array", i, key);
        return PROGRESS_EFIELD;
    }
    *out = v;
    return PROGRESS_OK;
}

/* Whether the job's "jobTags" hold tag and not PROGRESS_QUIET_TAG: an array of strings,
 * absent or null for none. */
static int get_tagged(json_t *obj, const char *tag, int *tagged, char *detail, size_t dlen,
                      size_t i)
{
    json_t *tags, *v;
    size_t k;
    int quiet = 0;
    int rc = get_array(obj, "jobTags", &tags, detail, dlen, i);
    *tagged = 0;
    if (rc != PROGRESS_OK)
        return rc;
    json_array_foreach(tags, k, v)
    {
        if (!json_is_string(v)) {
            snprintf(detail, dlen, "entry %zu: \"jobTags\" holds a non-string", i);
            return PROGRESS_EFIELD;
        }
        if (strcmp(json_string_value(v), tag) == 0)
            *tagged = 1;
        else if (strcmp(json_string_value(v), PROGRESS_QUIET_TAG) == 0)
            quiet = 1;
    }
    if (quiet)
        *tagged = 0;
    return PROGRESS_OK;
}

static int parse_job(json_t *obj, size_t i, const char *tag, struct job_in *in, char *detail,
                     size_t dlen)
{
    int rc, present;
    memset(in, 0, sizeof *in);
    if (!json_is_object(obj)) {
        snprintf(detail, dlen, "entry %zu is not an object", i);
        return PROGRESS_ETYPE;
    }
    if ((rc = get_int(obj, "jobId", 0, &in->id, &present, detail, dlen, i)))
        return rc;
    if (!present) {
        snprintf(detail, dlen, "entry %zu has no \"jobId\"", i);
        return PROGRESS_EFIELD;
    }
    if ((rc = get_str(obj, "name", &in->name, detail, dlen, i)) ||
        (rc = get_str(obj, "description", &in->description, detail, dlen, i)) ||
        (rc = get_tagged(obj, tag, &in->tagged, detail, dlen, i)) ||
        (rc = get_str(obj, "status", &in->status, detail, dlen, i)) ||
        (rc = get_str(obj, "submissionTime", &in->submitted, detail, dlen, i)) ||
        (rc = get_str(obj, "completionTime", &in->completed, detail, dlen, i)))
        return rc;
    for (size_t k = 0; k < sizeof job_count_fields / sizeof job_count_fields[0]; k++) {
        int *dst = (int *)((char *)&in->n + job_count_fields[k].off);
        if ((rc = get_int(obj, job_count_fields[k].key, 0, dst, &present, detail, dlen, i)))
            return rc;
        if (dst == &in->n.completed_indices)
            in->n.has_completed_indices = present;
    }
    json_t *ids, *v;
    size_t k;
    if ((rc = get_array(obj, "stageIds", &ids, detail, dlen, i)))
        return rc;
    json_array_foreach(ids, k, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX) {
            snprintf(detail, dlen, "entry %zu: \"stageIds\" holds a non-id", i);
            return PROGRESS_EFIELD;
        }
    }
    in->stage_ids = ids;
    return PROGRESS_OK;
}

static enum job_status status_of(const char *s)
{
    if (s == NULL)
        return JOB_UNKNOWN;
    for (int k = JOB_RUNNING; k <= JOB_FAILED; k++)
        if (strcmp(s, status_names[k]) == 0)
            return (enum job_status)k;
    return JOB_UNKNOWN;
}

/* The job with this id, or where it would go (*at) when absent. */
static struct job *find_job(struct progress *p, int id, size_t *at)
{
    size_t lo = 0, hi = p->njobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->jobs[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at != NULL)
        *at = lo;
    return lo < p->njobs && p->jobs[lo]->id == id ? p->jobs[lo] : NULL;
}

static struct job *insert_job(struct progress *p, int id, double now)
{
    size_t at;
    find_job(p, id, &at);
    if (p->njobs == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct job **jobs = realloc(p->jobs, cap * sizeof *jobs);
        if (jobs == NULL)
            return NULL;
        p->jobs = jobs;
        p->cap = cap;
    }
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL || (j->name = copy_text("", 0)) == NULL) {
        free(j);
        return NULL;
    }
    j->id = id;
    j->first_seen = now;
    memmove(&p->jobs[at + 1], &p->jobs[at], (p->njobs - at) * sizeof *p->jobs);
    p->jobs[at] = j;
    p->njobs++;
    return j;
}

static int merge_job(struct progress *p, const struct job_in *in, double now)
{
    struct job *j = find_job(p, in->id, NULL);
    if (j == NULL) {
        if (p->njobs >= PROGRESS_MAX_JOBS) {
            if (!p->warned_full)
                log_warn("progress: more than %d jobs tagged %s; later ones not shown",
                         PROGRESS_MAX_JOBS, p->job_tag);
            p->warned_full = 1;
            return PROGRESS_OK;
        }
        if ((j = insert_job(p, in->id, now)) == NULL)
            return PROGRESS_ENOMEM;
    }
    int changed = set_text(&j->name, in->name ? in->name : "", NAME_MAX_BYTES);
    if (changed < 0)
        return PROGRESS_ENOMEM;
    j->labels += (unsigned)changed;
    if (in->description == NULL || in->description[0] == '\0') {
        j->labels += j->description != NULL;
        free(j->description);
        j->description = NULL;
    } else if ((changed = set_text(&j->description, in->description, DESC_MAX_BYTES)) < 0) {
        return PROGRESS_ENOMEM;
    } else {
        j->labels += (unsigned)changed;
    }
    size_t nids = in->stage_ids ? json_array_size(in->stage_ids) : 0;
    if (nids > MAX_STAGE_IDS)
        nids = MAX_STAGE_IDS;
    if (nids != j->nstage_ids) {
        int *ids = realloc(j->stage_ids, (nids ? nids : 1) * sizeof *ids);
        if (ids == NULL)
            return PROGRESS_ENOMEM;
        j->stage_ids = ids;
        j->nstage_ids = nids;
    }
    for (size_t k = 0; k < nids; k++)
        j->stage_ids[k] = (int)json_integer_value(json_array_get(in->stage_ids, k));
    j->n = in->n;
    j->status = status_of(in->status);
    double t0, t1;
    j->has_duration = in->submitted && in->completed && parse_time(in->submitted, &t0) == 0 &&
                      parse_time(in->completed, &t1) == 0;
    j->duration = j->has_duration ? max0(t1 - t0) : 0;
    if (j->status == JOB_RUNNING) {
        if (!j->seen_running)
            j->first_running = now;
        j->seen_running = 1;
        j->last_running = now;
    }
    if (is_done(j->status) && !j->seen_ended) {
        j->seen_ended = 1;
        j->ended_at = now;
    }
    return PROGRESS_OK;
}

int progress_update_jobs(struct progress *p, const char *json, size_t len, double now)
{
    if (p == NULL || (json == NULL && len > 0))
        return PROGRESS_EARG;
    char detail[160] = "";
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", len, JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        snprintf(detail, sizeof detail, "%.120s at byte %d", jerr.text, jerr.position);
        return reject(p, PROGRESS_EJSON, "/jobs", detail);
    }
    int rc = PROGRESS_OK;
    struct job_in *in = NULL;
    if (!json_is_array(root)) {
        snprintf(detail, sizeof detail, "the top level is not an array");
        rc = PROGRESS_ETYPE;
        goto done;
    }
    size_t n = json_array_size(root);
    if ((in = calloc(n ? n : 1, sizeof *in)) == NULL) {
        rc = PROGRESS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = parse_job(json_array_get(root, i), i, p->job_tag, &in[i], detail, sizeof detail)))
            goto done;
    for (size_t i = 0; i < n; i++)
        if (in[i].tagged && (rc = merge_job(p, &in[i], now)))
            goto done;
    p->last_error = PROGRESS_OK;
done:
    free(in);
    json_decref(root);
    if (rc == PROGRESS_ENOMEM)
        log_error("progress: out of memory while reading /jobs");
    else if (rc != PROGRESS_OK)
        return reject(p, rc, "/jobs", detail);
    return rc;
}

static int stage_cmp(const void *a, const void *b)
{
    const struct stage *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

static void free_stages(struct stage *stages, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(stages[i].name);
    free(stages);
}

static int parse_stage(json_t *obj, size_t i, struct stage *st, int *active, char *detail,
                       size_t dlen)
{
    int rc, present;
    const char *name, *status;
    memset(st, 0, sizeof *st);
    *active = 0;
    if (!json_is_object(obj)) {
        snprintf(detail, dlen, "entry %zu is not an object", i);
        return PROGRESS_ETYPE;
    }
    if ((rc = get_int(obj, "stageId", 0, &st->id, &present, detail, dlen, i)))
        return rc;
    if (!present) {
        snprintf(detail, dlen, "entry %zu has no \"stageId\"", i);
        return PROGRESS_EFIELD;
    }
    if ((rc = get_int(obj, "attemptId", 0, &st->attempt, NULL, detail, dlen, i)) ||
        (rc = get_int(obj, "numTasks", 0, &st->tasks, NULL, detail, dlen, i)) ||
        (rc = get_int(obj, "numActiveTasks", 0, &st->active_tasks, NULL, detail, dlen, i)) ||
        (rc = get_int(obj, "numCompleteTasks", 0, &st->complete_tasks, NULL, detail, dlen, i)) ||
        (rc = get_int(obj, "numFailedTasks", 0, &st->failed_tasks, NULL, detail, dlen, i)) ||
        (rc = get_str(obj, "name", &name, detail, dlen, i)) ||
        (rc = get_str(obj, "status", &status, detail, dlen, i)))
        return rc;
    *active = status == NULL || strcmp(status, "ACTIVE") == 0;
    if (*active && (st->name = copy_text(name ? name : "", NAME_MAX_BYTES)) == NULL)
        return PROGRESS_ENOMEM;
    return PROGRESS_OK;
}

int progress_update_stages(struct progress *p, const char *json, size_t len)
{
    if (p == NULL || (json == NULL && len > 0))
        return PROGRESS_EARG;
    char detail[160] = "";
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", len, JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        snprintf(detail, sizeof detail, "%.120s at byte %d", jerr.text, jerr.position);
        return reject(p, PROGRESS_EJSON, "/stages", detail);
    }
    int rc = PROGRESS_OK;
    struct stage *stages = NULL;
    size_t nstages = 0;
    if (!json_is_array(root)) {
        snprintf(detail, sizeof detail, "the top level is not an array");
        rc = PROGRESS_ETYPE;
        goto done;
    }
    size_t n = json_array_size(root);
    size_t cap = n < PROGRESS_MAX_STAGES ? n : PROGRESS_MAX_STAGES;
    if ((stages = calloc(cap ? cap : 1, sizeof *stages)) == NULL) {
        rc = PROGRESS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        struct stage st;
        int active;
        if ((rc = parse_stage(json_array_get(root, i), i, &st, &active, detail, sizeof detail)))
            goto done;
        if (active && nstages < cap)
            stages[nstages++] = st;
        else
            free(st.name);
    }
    qsort(stages, nstages, sizeof *stages, stage_cmp);
    free_stages(p->stages, p->nstages);
    p->stages = stages;
    p->nstages = nstages;
    stages = NULL;
    nstages = 0;
    p->last_error = PROGRESS_OK;
done:
    free_stages(stages, nstages);
    json_decref(root);
    if (rc == PROGRESS_ENOMEM)
        log_error("progress: out of memory while reading /stages");
    else if (rc != PROGRESS_OK)
        return reject(p, rc, "/stages", detail);
    return rc;
}

/* ---- what a display shows --------------------------------------------------------------- */

/* The latest attempt of an active stage with this id, or NULL. */
static const struct stage *find_stage(const struct progress *p, int id)
{
    size_t lo = 0, hi = p->nstages;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->stages[mid].id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && p->stages[lo - 1].id == id ? &p->stages[lo - 1] : NULL;
}

/* The first of the job's stageIds that is active (only while the job runs), and how many
 * more are active. */
static const struct stage *active_stage(const struct progress *p, const struct job *j, int *more)
{
    const struct stage *first = NULL;
    *more = 0;
    if (j->status != JOB_RUNNING)
        return NULL;
    for (size_t k = 0; k < j->nstage_ids; k++) {
        const struct stage *st = find_stage(p, j->stage_ids[k]);
        if (st == NULL)
            continue;
        if (first == NULL)
            first = st;
        else if (st != first)
            (*more)++;
    }
    return first;
}

static int clamp(int x, int lo, int hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Counts as Spark's own UI shows them: skipped tasks and stages leave the totals, completed
 * task indices (not attempts, so speculative copies do not count twice) make "done". */
static void view_of(const struct progress *p, const struct job *j, struct view *v)
{
    memset(v, 0, sizeof *v);
    v->labels = j->labels;
    v->status = j->status;
    v->total = clamp(j->n.tasks - j->n.skipped_tasks, 0, INT_MAX);
    v->done = clamp(j->n.has_completed_indices ? j->n.completed_indices : j->n.completed_tasks, 0,
                    v->total);
    v->failed = j->n.failed_tasks;
    v->killed = j->n.killed_tasks;
    v->skipped = j->n.skipped_tasks;
    v->stages_skipped = j->n.skipped_stages;
    v->stages_total =
        (int)j->nstage_ids > j->n.skipped_stages ? (int)j->nstage_ids - j->n.skipped_stages : 0;
    v->stages_done = clamp(j->n.completed_stages, 0, v->stages_total);
    v->stages_failed = j->n.failed_stages;
    const struct stage *st = active_stage(p, j, &v->stage_more);
    v->stage_id = st ? st->id : -1;
    if (st != NULL) {
        v->stage_attempt = st->attempt;
        v->stage_total = st->tasks;
        v->stage_done = clamp(st->complete_tasks, 0, st->tasks);
    }
}

static int view_equal(const struct view *a, const struct view *b)
{
    return a->labels == b->labels && a->status == b->status && a->done == b->done &&
           a->total == b->total && a->failed == b->failed && a->killed == b->killed &&
           a->skipped == b->skipped && a->stages_done == b->stages_done &&
           a->stages_total == b->stages_total && a->stages_failed == b->stages_failed &&
           a->stages_skipped == b->stages_skipped && a->stage_id == b->stage_id &&
           a->stage_attempt == b->stage_attempt && a->stage_done == b->stage_done &&
           a->stage_total == b->stage_total && a->stage_more == b->stage_more;
}

/* The caller's time, stopped at the end of the cell. */
static double effective_now(const struct progress *p, double now)
{
    return p->finished && now > p->finish_time ? p->finish_time : now;
}

/* How long the job is known to have run: the first display waits for PROGRESS_SHOW_AFTER. */
static double known_runtime(const struct job *j, double now)
{
    if (j->status == JOB_RUNNING)
        return now - j->first_running;
    if (is_done(j->status) && j->has_duration)
        return j->duration;
    return j->seen_running ? j->last_running - j->first_running : 0;
}

static double elapsed_of(const struct job *j, double now)
{
    if (is_done(j->status) && j->has_duration)
        return j->duration;
    if (is_done(j->status) && j->seen_ended)
        return max0(j->ended_at - j->first_seen);
    return max0(now - j->first_seen);
}

/* ---- rendering -------------------------------------------------------------------------- */

static void format_elapsed(double s, char *buf, size_t len)
{
    if (s < 60)
        snprintf(buf, len, "%.1f s", s);
    else if (s < 3600)
        snprintf(buf, len, "%d min %02d s", (int)(s / 60), (int)s % 60);
    else if (s < 1e8)
        snprintf(buf, len, "%d h %02d min", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "a long time");
}

static const char *const status_colors[] = {"#757575", "#1565c0", "#2e7d32", "#c62828"};

static char *render_html(const struct progress *p, const struct job *j, const struct view *v,
                         const struct stage *st, const char *elapsed)
{
    struct sb b = {0};
    double pct = v->total > 0 ? 100.0 * v->done / v->total : (is_done(v->status) ? 100 : 0);
    const char *fill = v->status == JOB_FAILED ? "#e57373" : "#43a047";

    /* mathjax_ignore: JupyterLab would typeset Spark's "$anonfun$..." job names as TeX. */
    sb_add(
        &b, "%s",
        "<div class=\"mathjax_ignore\" style=\"margin:2px 0;font-size:13px;line-height:1.5\">\n");
    sb_add(&b, "<div><b>Spark job %d</b>", j->id);
    const char *title = j->description ? j->description : j->name;
    if (title[0] != '\0') {
        sb_add(&b, "%s", " &#183; ");
        sb_escape(&b, title);
    }
    if (j->description != NULL && j->name[0] != '\0') {
        sb_add(&b, "%s", " <span style=\"opacity:0.7\">(");
        sb_escape(&b, j->name);
        sb_add(&b, "%s", ")</span>");
    }
    sb_add(&b, "%s", "</div>\n<div>");
    sb_add(&b,
           "<span style=\"display:inline-block;vertical-align:middle;width:240px;height:10px;"
           "background:#e0e0e0;border-radius:3px;overflow:hidden\"><span style=\"display:block;"
           "height:100%%;width:%.1f%%;background:%s\"></span></span> ",
           pct, fill);
    sb_add(&b, "<span style=\"font-weight:bold;color:%s\">%s</span>", status_colors[v->status],
           status_names[v->status]);
    sb_add(&b, " &#183; %d/%d tasks", v->done, v->total);
    if (v->failed > 0)
        sb_add(&b, " <span style=\"color:#c62828\">(%d failed)</span>", v->failed);
    if (v->killed > 0)
        sb_add(&b, " (%d killed)", v->killed);
    if (v->skipped > 0)
        sb_add(&b, " (%d skipped)", v->skipped);
    sb_add(&b, " &#183; stages %d/%d", v->stages_done, v->stages_total);
    if (v->stages_failed > 0)
        sb_add(&b, " <span style=\"color:#c62828\">(%d failed)</span>", v->stages_failed);
    if (v->stages_skipped > 0)
        sb_add(&b, " (%d skipped)", v->stages_skipped);
    sb_add(&b, " &#183; %s &#183; <a href=\"", elapsed);
    sb_escape(&b, p->ui_url);
    sb_add(&b,
           "/jobs/job/?id=%d\" target=\"_blank\" rel=\"noopener noreferrer\">Spark UI</a>"
           "</div>\n",
           j->id);
    if (st != NULL) {
        sb_add(&b, "<div style=\"opacity:0.7\">stage %d", st->id);
        if (st->attempt > 0)
            sb_add(&b, " (attempt %d)", st->attempt);
        sb_add(&b, "%s", ": ");
        sb_escape(&b, st->name);
        sb_add(&b, " &#183; %d/%d tasks", v->stage_done, v->stage_total);
        if (v->stage_more > 0)
            sb_add(&b, " &#183; %d more active", v->stage_more);
        sb_add(&b, "%s", "</div>\n");
    }
    sb_add(&b, "%s", "</div>");
    return sb_take(&b);
}

/* [Spark job 3] count at cell [4] line 2: n = df.count() — [#######.............] 37/200
 * tasks, stage 2/3, 4.1 s. The title is the HTML's: the description (the cell's line the
 * kernel names a job by, or the notebook's own), else Spark's name (for a DataFrame's
 * job often a JVM frame, $anonfun$withThreadLocalCaptured$2 at CompletableFuture.java). */
static char *render_text(const struct job *j, const struct view *v, const char *elapsed)
{
    struct sb b = {0};
    sb_add(&b, "[Spark job %d] ", j->id);
    sb_plain(&b, j->description ? j->description : j->name);
    sb_add(&b, "%s", DASH);
    if (v->status != JOB_RUNNING)
        sb_add(&b, "%s ", status_names[v->status]);
    int filled = v->total > 0 ? (int)((long long)BAR_WIDTH * v->done / v->total)
                              : (is_done(v->status) ? BAR_WIDTH : 0);
    char bar[BAR_WIDTH + 1];
    for (int k = 0; k < BAR_WIDTH; k++)
        bar[k] = k < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    sb_add(&b, "[%s", bar);
    sb_add(&b, "] %d/%d tasks", v->done, v->total);
    if (v->failed > 0)
        sb_add(&b, ", %d failed", v->failed);
    if (v->skipped > 0)
        sb_add(&b, ", %d skipped", v->skipped);
    if (v->stages_total > 0) {
        if (v->status == JOB_RUNNING)
            sb_add(&b, ", stage %d/%d",
                   v->stages_done < v->stages_total ? v->stages_done + 1 : v->stages_total,
                   v->stages_total);
        else
            sb_add(&b, ", %d/%d stages", v->stages_done, v->stages_total);
    }
    sb_add(&b, ", %s", elapsed);
    return sb_take(&b);
}

static int emit(struct progress *p, struct job *j, double now, int update, int final,
                struct progress_out *out)
{
    struct view v;
    view_of(p, j, &v);
    int more;
    const struct stage *st = active_stage(p, j, &more);
    char elapsed[48];
    format_elapsed(elapsed_of(j, effective_now(p, now)), elapsed, sizeof elapsed);
    char *html = render_html(p, j, &v, st, elapsed);
    char *text = render_text(j, &v, elapsed);
    json_t *data =
        html && text ? json_pack("{s:s, s:s}", "text/html", html, "text/plain", text) : NULL;
    free(html);
    free(text);
    if (data == NULL) {
        log_error("progress: out of memory while rendering job %d", j->id);
        return PROGRESS_ENOMEM;
    }
    snprintf(out->display_id, sizeof out->display_id, "sparkernel-%s-job-%d", p->app_id, j->id);
    out->job_id = j->id;
    out->update = update;
    out->final = final;
    out->data = data;
    j->displayed = 1;
    j->last_emit = now;
    j->shown = v;
    if (final) {
        j->closed = 1;
        j->final_pending = 0;
    }
    return 1;
}

/* ---- life and emission ------------------------------------------------------------------ */

struct progress *progress_new(const char *job_tag, const char *ui_url, const char *app_id)
{
    if (job_tag == NULL || ui_url == NULL || app_id == NULL || job_tag[0] == '\0' ||
        ui_url[0] == '\0' || app_id[0] == '\0' || strlen(app_id) > PROGRESS_MAX_APP_ID)
        return NULL;
    struct progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->job_tag = strdup(job_tag);
    p->ui_url = strdup(ui_url);
    p->app_id = strdup(app_id);
    if (p->job_tag == NULL || p->ui_url == NULL || p->app_id == NULL) {
        progress_destroy(&p);
        return NULL;
    }
    size_t n = strlen(p->ui_url);
    while (n > 0 && p->ui_url[n - 1] == '/')
        p->ui_url[--n] = '\0';
    return p;
}

void progress_destroy(struct progress **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    struct progress *p = *pp;
    for (size_t i = 0; i < p->njobs; i++) {
        free(p->jobs[i]->name);
        free(p->jobs[i]->description);
        free(p->jobs[i]->stage_ids);
        free(p->jobs[i]);
    }
    free(p->jobs);
    free_stages(p->stages, p->nstages);
    free(p->job_tag);
    free(p->ui_url);
    free(p->app_id);
    free(p);
    *pp = NULL;
}

int progress_next(struct progress *p, double now, struct progress_out *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (p == NULL || out == NULL)
        return PROGRESS_EARG;
    double t = effective_now(p, now);
    for (size_t i = 0; i < p->njobs; i++) {
        struct job *j = p->jobs[i];
        if (j->closed)
            continue;
        if (!j->displayed) {
            if (known_runtime(j, t) + EPSILON >= PROGRESS_SHOW_AFTER)
                return emit(p, j, now, 0, p->finished, out);
            continue;
        }
        struct view v;
        view_of(p, j, &v);
        if (j->final_pending) {
            /* The last display already shows this finished state: nothing to correct. */
            if (is_done(v.status) && view_equal(&v, &j->shown)) {
                j->final_pending = 0;
                j->closed = 1;
                continue;
            }
            return emit(p, j, now, 1, 1, out);
        }
        if (now - j->last_emit + EPSILON >= PROGRESS_UPDATE_EVERY && !view_equal(&v, &j->shown))
            return emit(p, j, now, 1, 0, out);
    }
    return 0;
}

void progress_finish(struct progress *p, double now)
{
    if (p == NULL || p->finished)
        return;
    p->finished = 1;
    p->finish_time = now;
    for (size_t i = 0; i < p->njobs; i++)
        if (p->jobs[i]->displayed && !p->jobs[i]->closed)
            p->jobs[i]->final_pending = 1;
}

int progress_displayed(const struct progress *p)
{
    for (size_t i = 0; p != NULL && i < p->njobs; i++)
        if (p->jobs[i]->displayed)
            return 1;
    return 0;
}

int progress_job_settled(const struct progress *p, int id)
{
    const struct job *j = p ? find_job((struct progress *)p, id, NULL) : NULL;
    return j != NULL && is_done(j->status);
}

int progress_waiting(const struct progress *p)
{
    for (size_t i = 0; p != NULL && i < p->njobs; i++)
        if (p->jobs[i]->status == JOB_RUNNING && p->jobs[i]->n.active_tasks == 0)
            return 1;
    return 0;
}

double progress_waiting_since(const struct progress *p)
{
    double since = 0;
    for (size_t i = 0; p != NULL && i < p->njobs; i++) {
        const struct job *j = p->jobs[i];
        if (j->status == JOB_RUNNING && j->n.active_tasks == 0 && j->seen_running &&
            (since == 0 || j->first_running < since))
            since = j->first_running;
    }
    return since;
}

int progress_running(const struct progress *p)
{
    for (size_t i = 0; p != NULL && i < p->njobs; i++)
        if (p->jobs[i]->status == JOB_RUNNING)
            return 1;
    return 0;
}

double progress_look_every(const struct progress *p, double now)
{
    double newest = -1.0;
    for (size_t i = 0; p != NULL && i < p->njobs; i++)
        if (p->jobs[i]->status == JOB_RUNNING && p->jobs[i]->first_running > newest)
            newest = p->jobs[i]->first_running;
    if (newest < 0)
        return 0.5;
    double ran = now - newest;
    return ran < 2.0 ? 0.25 : ran < 10.0 ? 0.5 : 1.0;
}

unsigned progress_errors(const struct progress *p)
{
    return p ? p->errors : 0;
}
