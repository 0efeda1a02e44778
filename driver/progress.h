/* progress: live progress of the Spark jobs of one running cell, as Jupyter displays. Pure: the
 * caller fetches the driver UI's REST answers (GET <ui_url>/api/v1/applications/<app_id>/jobs
 * and .../stages?status=active, field names of Spark's status.api.v1 JobData and StageData),
 * feeds them here with a monotonic time, and sends what progress_next() hands back as
 * display_data / update_display_data on iopub. No I/O, no globals, no clock of its own.
 *
 * Emission policy, per Spark job tagged with the cell's tag (one display each):
 * - a job is first displayed once it has run for at least PROGRESS_SHOW_AFTER seconds: seen
 *   RUNNING that long, or finished with a Spark-reported duration (completionTime -
 *   submissionTime) that long. A job that ends sooner is never displayed;
 * - then an update at most every PROGRESS_UPDATE_EVERY seconds, and only when something
 *   visible changed (status, tasks done/total, failed or skipped counts, stages, the active
 *   stage and its tasks). Elapsed time alone does not count as a change;
 * - after progress_finish(), each displayed job gets one last update with its final state,
 *   whatever the throttle, unless its last display already showed that finished state.
 * Elapsed time shown: completionTime - submissionTime once a job is over, else now minus the
 * time of the first update that listed the job. */
#ifndef SPARKERNEL_PROGRESS_H
#define SPARKERNEL_PROGRESS_H

#include <jansson.h>
#include <stddef.h>

#define PROGRESS_SHOW_AFTER   0.2  /* seconds a job must run before its first display */
#define PROGRESS_UPDATE_EVERY 0.25 /* seconds between two updates of one display */
#define PROGRESS_MAX_JOBS     4096 /* jobs tracked per cell; later ones are ignored (logged) */
#define PROGRESS_MAX_STAGES   4096 /* active stages kept from one /stages answer */
#define PROGRESS_MAX_APP_ID   200  /* longest app_id accepted by progress_new() */
/* A job that also carries this tag is never displayed: the cell started it while its output
 * was captured (%%capture, IPython's capture_output), which plain PySpark's cell shows nothing
 * of. The executor adds and removes it (hooks.py); an interrupt still cancels the job. */
#define PROGRESS_QUIET_TAG "sparkernel-quiet"
/* A sane cap for the HTTP side: a driver keeps spark.ui.retainedJobs (1000) jobs, about
 * 1 KB each in /jobs; /stages?status=active carries a stack trace per stage. */
#define PROGRESS_MAX_BODY (16u << 20)

enum progress_error {
    PROGRESS_OK = 0,
    PROGRESS_EJSON = -1,  /* not JSON text */
    PROGRESS_ETYPE = -2,  /* JSON, but not an array of objects */
    PROGRESS_EFIELD = -3, /* an entry lacks its id, or a field has the wrong type or range */
    PROGRESS_EARG = -4,   /* NULL progress, or NULL text with a non-zero length */
    PROGRESS_ENOMEM = -5,
};

/* One display to send. */
struct progress_out {
    char display_id[PROGRESS_MAX_APP_ID + 48]; /* "sparkernel-<app_id>-job-<jobId>" */
    int job_id;
    int update;   /* 0: first time, send display_data; 1: send update_display_data */
    int final;    /* 1: the cell has ended and this display will not be sent again */
    json_t *data; /* {"text/html": ..., "text/plain": ...}: a new reference; caller
                   * json_decref()s. transient.display_id is display_id. */
};

struct progress;

/* Returns a new tracker for the jobs whose jobTags hold job_tag (the cell's: a Spark job tag,
 * so that a job group the notebook sets stays its own), or NULL when an
 * argument is NULL or empty, app_id is longer than PROGRESS_MAX_APP_ID, or memory runs out.
 * ui_url is the driver UI ("http://host:4040", a trailing slash is fine), used for the
 * "Spark UI" links. Copies all three strings. Caller progress_destroy()s. */
struct progress *progress_new(const char *job_tag, const char *ui_url, const char *app_id);

/* Frees the tracker and nulls *p. Accepts NULL and *p == NULL. */
void progress_destroy(struct progress **p);

/* Takes len bytes (need not be NUL-terminated) of a /jobs answer: a JSON array of JobData.
 * Keeps the jobs of p's tag, adds new ones, and refreshes known ones; a job that left
 * the answer (Spark drops old jobs past spark.ui.retainedJobs) keeps its last state. Only
 * jobId is required; any other field may be absent or null (counts read 0, status UNKNOWN).
 * Present with a wrong type or a negative count, it rejects the whole answer and p is left
 * as it was. now is a monotonic time in seconds (the caller's clock, the same for every
 * call on p). Borrows json. Returns PROGRESS_OK or a negative enum progress_error (one log
 * line says why; see progress_errors()). */
int progress_update_jobs(struct progress *p, const char *json, size_t len, double now);

/* Takes len bytes of a /stages?status=active answer: a JSON array of StageData (stageId
 * required; attemptId, name, numTasks, numActiveTasks, numCompleteTasks, numFailedTasks,
 * status optional). Replaces the set of active stages; a stage whose status is present and
 * not ACTIVE is skipped, so a full /stages answer works too. A job shows the first of its
 * stageIds that is active, as "stage 3: collect at <cell>:1". Same errors as above; on error
 * p keeps its previous stages. Borrows json. */
int progress_update_stages(struct progress *p, const char *json, size_t len);

/* The next display to send at time now, if any. Returns 1 and fills *out (out->data is a new
 * reference the caller json_decref()s), 0 when nothing is due (out->data is NULL), or
 * PROGRESS_EARG / PROGRESS_ENOMEM. Call repeatedly until it returns 0: at most one display
 * per job per call sequence at a given now. Jobs come in jobId order. */
int progress_next(struct progress *p, double now, struct progress_out *out);

/* Marks the cell as ended at time now: from here on progress_next() returns the final
 * update of each displayed job regardless of the throttle, then nothing more for it.
 * Call it after a last progress_update_jobs(), so the final states are known; elapsed time of
 * a job still RUNNING then stops at now. A second call does nothing. Accepts NULL. */
void progress_finish(struct progress *p, double now);

/* 1 when at least one display has been handed out for this cell (so a last
 * progress_update_jobs() and progress_finish() are worth waiting for at the end of the cell),
 * else 0. Accepts NULL (0). */
int progress_displayed(const struct progress *p);

/* 1 when the job with this id is known and over (SUCCEEDED or FAILED): its final state is
 * here, no need to ask for it again. Accepts NULL (0). */
int progress_job_settled(const struct progress *p, int id);

/* 1 when a job of the cell is RUNNING with no task running (numActiveTasks 0): its tasks wait
 * for an executor, or it is between two stages. With an application that holds no cores on
 * the master, that means the cell waits for resources. Else 0. Accepts NULL (0). */
int progress_waiting(const struct progress *p);

/* The earliest time (the caller's clock, as passed to progress_update_jobs) at which a job
 * that is now RUNNING with no task active was first seen running; 0 when there is none. */
double progress_waiting_since(const struct progress *p);

/* 1 when the last answers show a job of the cell RUNNING (then its active stage is worth
 * asking for, and the next look soon), else 0. Accepts NULL (0). */
int progress_running(const struct progress *p);

/* Seconds until the kernel's next look at the jobs, on the caller's clock: 0.25 while a job
 * of the cell has run for less than 2 s (the newest running job counts), 0.5 up to 10 s,
 * then 1 s; 0.5 when none runs. Each look costs the driver JVM a few ms of CPU, which a long
 * job over every core pays in wall time; a bar that has moved for 10 s moves each second.
 * Accepts NULL (0.5). */
double progress_look_every(const struct progress *p, double now);

/* Answers rejected so far by progress_update_jobs() and progress_update_stages(). */
unsigned progress_errors(const struct progress *p);

/* A sentence for a code of enum progress_error; static storage. */
const char *progress_strerror(int code);

#endif
