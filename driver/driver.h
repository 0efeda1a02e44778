/* driver: the Spark extension's shared state and what its files call in each other. Not a
 * public header: the kernel core sees only spark_attach (spark.h). One file per job:
 *   spark.c    plugged into the core: the hooks, the HTTP and timer sources, helpers
 *   session.c  session life: negotiate, ports, start, stop, follow, kill, shutdown
 *   cell.c     the running cell: its jobs' progress and the endless-WAITING report
 *   sharing.c  sharing the cluster: records, fair share, yield, elastic shrink and grow
 *   magics.c   the %spark magics (magics_parse.c parses their lines)
 *   render.c   the string builder and the one HTML escaper for what cells display */
#ifndef SPARKERNEL_DRIVER_H
#define SPARKERNEL_DRIVER_H

#include "../kernel/extension.h"
#include "http.h"
#include "master.h"
#include "ports.h"
#include "progress.h"
#include "render.h"
#include "settings.h"
#include "sharing.h"

#include <jansson.h>
#include <stddef.h>

enum session_state {
    S_NOT_STARTED = 0, /* no session yet, or the executor that held one died */
    S_NEGOTIATING,
    S_STARTING,
    S_READY,
    S_FAILED,
    S_REFUSED,
    S_STOPPED,
};

struct spark {
    struct kernel *k;  /* the kernel core this extension is plugged into (extension.h) */
    struct http *http; /* asynchronous HTTP, one of the loop's event sources */
    struct settings *settings;
    enum session_state state;
    int generation; /* bumps on every start/stop; stale HTTP answers are ignored */
    char app_id[128], ui_url[512], master_ui[512], kernel_name[160];
    char poll_url[128]; /* the driver UI as this host reaches it (the advertised address may
                         * be one only the workers can use, or a wrong one) */
    char notice[2048];
    char failure[6144];
    struct ports ports;
    /* the running cell */
    int cell_active, cell_count;
    struct progress *progress;
    double next_jobs_poll, next_master_poll;
    int jobs_in_flight, master_in_flight, waiting_reported, holding_reply;
    json_t *cell_jobs; /* the cell's job ids as the executor reported them at its end (owned;
                        * NULL: no report, the last look asks for every job) */
    int final_fetches; /* answers of that last look, one job each, still awaited */
    /* magics of the current cell */
    int magic_waits_for_start; /* a %spark restart waits for the master's answer */
    json_t *magic_lines;
    size_t magic_index;
    char *magic_rest;
    /* sharing the cluster (driver/sharing.c) */
    char sessions_dir[512], kernel_id[64];
    double idle_since;      /* wall clock: the notebook's last cell ended */
    double holding_since;   /* wall clock: this session has held cores since (0: holds none) */
    double contended_since; /* monotonic: another application has waited since (0: none) */
    double next_yield_poll; /* monotonic */
    int yield_in_flight, yielded, give_back_sent, executors_noticed;
    int shrunk;              /* an elastic share gave cores back mid-job (0: grown) */
    int executor_cores;      /* spark.executor.cores of the session followed (0: not set) */
    double next_share_order; /* monotonic: the next shrink may be sent then */
};

/* An HTTP request's context: its answer matters only to the session of its generation. */
struct call {
    struct kernel *k;
    int generation;
};

/* Which rule bounds this session's share of the cluster (%spark status says it). */
enum share_rule {
    SHARE_NONE,
    SHARE_STATIC,
    SHARE_CORES_MAX,
    SHARE_MAX_EXECUTORS,
    SHARE_NO_DECOMMISSION,
    SHARE_HALF,
    SHARE_ELASTIC
};

/* spark.c */
/* The extension's state, as the core hands it back to every hook. */
struct spark *spark_of(struct kernel *k);
double spark_now(void);  /* monotonic seconds */
double spark_wall(void); /* seconds since the epoch */
/* A call of the current generation (NULL out of memory); spark_call_take frees it and
 * returns the kernel when its answer still matters (not cancelled, not stale). */
struct call *spark_call_new(struct kernel *k);
struct kernel *spark_call_take(void *ctx, int status);
/* A GET whose answer goes to done with a fresh call; HTTP_OK once under way. */
int spark_ask(struct kernel *k, const char *url, long timeout_ms, http_done_fn done);
/* The same for the master's state (GET <master UI>/json/). */
int spark_ask_master(struct kernel *k, long timeout_ms, http_done_fn done);
/* Output into the current cell: a stream, or a display of html and its plain text. */
void spark_stream(struct kernel *k, const char *name, const char *text);
void spark_display(struct kernel *k, const char *html, const char *plain);
/* Displays a doc in the cell (its HTML and its text) and frees it. */
void spark_show(struct kernel *k, struct doc *d);
/* Sends cmd (stolen) to the executor, in order with the cells. */
void spark_send(struct kernel *k, json_t *cmd);
/* sparkernel.ui.proxy with {port} filled in (kept when port < 0; and path_only: from its first "/"
 * after any scheme and host) into out; 0, or -1 when the setting is unset. */
int spark_ui_proxy(const struct spark *s, int port, int path_only, char *out, size_t len);

/* session.c */
struct spark *spark_new(char **env, const char *connection_file);
void spark_destroy(void *self);
/* This session's record for the other kernels (sharing.h), and its removal. */
void session_publish_record(struct spark *s);
void session_forget_record(struct spark *s);
int session_holds_queue(struct kernel *k, void *self);
/* Resolves the master's web UI URL into s->master_ui ("" when there is no master). */
void session_master_ui(struct spark *s);
void session_start(struct kernel *k);
int session_alive(const struct spark *s);
void session_stop(struct kernel *k);
void session_on_executor_ready(struct kernel *k, void *self);
void session_on_executor_died(struct kernel *k, void *self);
/* A spark_state event from the executor (borrowed). */
void session_on_state(struct kernel *k, json_t *ev);
void session_on_shutdown(struct kernel *k, void *self, int executor_detached);

/* cell.c */
/* Follows the running cell's jobs once the session is ready. */
void cell_follow(struct spark *s);
void cell_begin(struct kernel *k, void *self, int count);
int cell_end(struct kernel *k, void *self);
/* The executor's list of the cell's jobs (a cell_jobs event, before the reply). */
void cell_on_jobs(struct kernel *k, json_t *ev);
/* The driver's timers: milliseconds until cell_tick wants to run (-1: none), the tick. */
long cell_next_tick_ms(struct kernel *k);
void cell_tick(struct kernel *k);

/* sharing.c: the session's side (the records and the policy are in sharing.h) */
/* What every answer of the master tells the session's share, whoever asked: finds this
 * session's application (*mine, borrowed from ms; NULL when not listed), notes since when it
 * holds cores while another application waits (who waits, in who), and applies the elastic
 * share (shrink to a fair share while another waits, grow when none does). Returns whether
 * another application waits while this session holds cores. */
int share_observe(struct kernel *k, const struct master_status *ms, const struct master_app **mine,
                  char *who, size_t len);
enum share_rule share_rule_of(const struct settings *st);
const char *share_rule_text(const struct spark *s, char *buf, size_t len);
/* Whether the idle session's yield poll is on, and its answer's handler. */
int share_yield_armed(const struct spark *s);
void share_on_yield_poll(void *ctx, int status, long code, const char *body, size_t len,
                         const char *error);

/* magics.c */
/* Runs the %spark lines of the current cell (borrowed), then the rest (borrowed). */
void magics_run(struct kernel *k, json_t *lines, const char *rest);
/* The current magic is done: the next one runs. */
void magics_done(struct kernel *k);

#endif
