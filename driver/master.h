/* master: the client of a Spark standalone master's web UI. Reads its state from
 * GET <ui_url>/json/ (MasterPage.renderJson, written by JsonProtocol.writeMasterState), judges
 * whether an executor request can ever be met, and kills an application through the UI's
 * POST <ui_url>/app/kill/. Parsing (master_parse) is pure, so it can be fuzzed on its own.
 *
 * libcurl: call curl_global_init() once at program start; curl_easy_init() does it lazily
 * otherwise, which is not thread-safe. Every network call is bounded by timeout_ms. */
#ifndef SPARKERNEL_MASTER_H
#define SPARKERNEL_MASTER_H

#include <stddef.h>

enum master_error {
    MASTER_OK = 0,
    MASTER_EUNREACHABLE = -1, /* no connection or no answer within the timeout */
    MASTER_EHTTP = -2,        /* an HTTP status other than expected, or an oversized answer */
    MASTER_EJSON = -3,        /* not JSON, not an object, a field of the wrong type */
    MASTER_ENOTALIVE = -4,    /* the master's status is not ALIVE (STANDBY, RECOVERING...) */
    MASTER_ENOWORKER = -5,    /* no worker is ALIVE */
    MASTER_ETOOBIG = -6,      /* no alive worker is big enough for one executor */
    MASTER_ENOAPP = -7,       /* kill: the application is not active on the master */
    MASTER_EKILLOFF = -8,     /* kill: the master refuses kills (spark.ui.killEnabled=false) */
    MASTER_EKILL = -9,        /* kill: the application is still active after the request */
    MASTER_EARG = -10,        /* a NULL or malformed argument (URL, timeout, app id) */
    MASTER_ENOMEM = -11,
};

/* The largest /json/ answer accepted. The master keeps at most spark.deploy.retainedApplications
 * (200) completed apps, so a real answer is a few hundred KB at most. */

/* Strings below are borrowed from the status that holds them: valid until
 * master_status_destroy(), never NULL ("" when the master did not send the field). Memory is
 * in MB, as the master reports it. */
struct master_worker {
    const char *id;
    const char *host;
    int port;
    const char *webuiaddress;
    const char *state; /* ALIVE, DEAD, DECOMMISSIONED, UNKNOWN */
    int cores, coresused, coresfree;
    long long memory, memoryused, memoryfree; /* MB */
};

struct master_app {
    const char *id;
    const char *name;
    int cores;                   /* granted so far (Spark 3+); 0 while WAITING */
    long long memoryperexecutor; /* MB; "memoryperexecutor", or the older "memoryperslave" */
    const char *state;           /* WAITING, RUNNING, ... */
    long long starttime;         /* ms since the epoch */
    long long duration;          /* ms */
    const char *user;
};

struct master_status {
    const char *url;    /* spark://host:port */
    const char *status; /* ALIVE, STANDBY, RECOVERING, COMPLETING_RECOVERY */
    /* Totals over ALIVE workers (as the master computes them; computed here when absent). */
    int cores, coresused;
    long long memory, memoryused; /* MB */
    int aliveworkers;             /* counted here from workers[] */
    size_t nworkers;
    struct master_worker *workers;
    size_t napps; /* active applications ("activeapps") */
    struct master_app *apps;
    void *root_; /* private: the parsed document the strings point into */
};

/* GETs <ui_url>/json/ (ui_url like "http://host:8080", a trailing slash is fine) and parses
 * it. timeout_ms (> 0) bounds the connection and the whole transfer. Borrows ui_url. On
 * MASTER_OK *out is a new status; caller master_status_destroy()s it. On error *out is NULL
 * and one log line says why. */
int master_fetch(const char *ui_url, long timeout_ms, struct master_status **out);

/* "<ui_url without trailing slashes><path>", malloc'd (caller frees; NULL out of memory). */
char *master_url(const char *ui_url, const char *path);
/* The master's kill form for app_id, "id=<percent-encoded>&terminate=true", malloc'd
 * (caller frees), or NULL. */
char *master_kill_form(const char *app_id);

/* The application app_id among the master's active ones (borrowed from st), or NULL. */
const struct master_app *master_find_app(const struct master_status *st, const char *app_id);

/* Parses len bytes of /json/ text (need not be NUL-terminated). Pure: no I/O, no globals.
 * Required: a top-level object with "status" (string) and "workers" (array); per worker
 * "state" (string), "cores" and "memory" (integers); per active app "id" and "state"
 * (strings). Other fields may be absent or null; present with a wrong type (or a negative
 * count) they make the whole document MASTER_EJSON. Borrows json. On MASTER_OK *out is a
 * new status; caller master_status_destroy()s it. */
int master_parse(const char *json, size_t len, struct master_status **out);

/* Frees the status and nulls *st. Accepts NULL and *st == NULL. */
void master_status_destroy(struct master_status **st);

/* Whether executors of executor_cores cores and executor_memory_mb MB can ever run: the
 * master is ALIVE and at least one ALIVE worker has that many cores and that much memory in
 * total (what is free now only decides how long the application waits). executor_cores < 1
 * counts as 1 and executor_memory_mb < 1 as Spark's default 1024. Returns MASTER_OK,
 * MASTER_ENOTALIVE, MASTER_ENOWORKER or MASTER_ETOOBIG (MASTER_EARG for a NULL st). Writes
 * one paragraph for the user into verdict (truncated to len, always NUL-terminated when
 * len > 0): what was asked, what the cluster offers, and on refusal what to change.
 * Borrows st. */
int master_check_request(const struct master_status *st, int executor_cores,
                         long executor_memory_mb, char *verdict, size_t len);

/* A plain-text table of the workers (address, state, cores used/total, memory used/total),
 * one line each after a header, ending in a newline. Borrows st. Returns a malloc'd string
 * the caller frees, or NULL when out of memory. */
char *master_format_workers(const struct master_status *st);

/* Kills an active application: POST <ui_url>/app/kill/ with id=<app_id>&terminate=true (the
 * master UI's kill form). The endpoint answers 302 whatever happened, so the result is read
 * back from /json/: MASTER_OK once the app has left "activeapps" (the master moved it to
 * completedapps as KILLED and told its executors to stop), MASTER_ENOAPP if it was not active
 * to begin with, MASTER_EKILLOFF if the master refuses kill requests, MASTER_EKILL if it is
 * still active when timeout_ms has passed. timeout_ms bounds each request and the wait.
 * Borrows both strings. */
int master_kill_app(const char *ui_url, const char *app_id, long timeout_ms);

/* A sentence for a code of enum master_error; static storage. */
const char *master_strerror(int code);

#endif
