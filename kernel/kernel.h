/* kernel: the Jupyter kernel core's one struct kernel, passed down explicitly, and the
 * seams between the loop, dispatch (a table of msg_type -> handler), iopub and the
 * execution queue that drives the supervised executor. What plugs into the core (the Spark
 * driver) sees only extension.h. */
#ifndef SPARKERNEL_KERNEL_H
#define SPARKERNEL_KERNEL_H

#include "auth.h"
#include "connection.h"
#include "executor.h"
#include "extension.h"
#include "heartbeat.h"
#include "history.h"
#include "supervisor.h"
#include "wire.h"

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define SPARKERNEL_VERSION "0.1.0"

enum channel { CHANNEL_SHELL = 0, CHANNEL_CONTROL, CHANNEL_STDIN, CHANNEL_IOPUB };

struct debug_wait;

/* kernel_open's errors; kernel_strerror names them. */
enum kernel_error {
    KERNEL_OK = 0,
    KERNEL_ECONNECTION = -1, /* the connection file (the detail says what) */
    KERNEL_ENOMEM = -2,
    KERNEL_EBIND = -3, /* a socket could not bind its port */
};
const char *kernel_strerror(int code);

/* The request running in the executor, and what its execute_request asked for. */
struct active_request {
    struct wire_msg *msg; /* owned; NULL between requests */
    int count;            /* its execution count (N+1 for a cell not stored) */
    int silent, store, stop_on_error, allow_stdin;
    int awaiting_input; /* an input_request is out on stdin */
    char started[48];   /* ISO time it began, for the reply's metadata */
};

#define KERNEL_MAX_SOURCES 8

struct pending {
    struct wire_msg *msg; /* owned */
    struct pending *next;
};

struct kernel {
    void *ctx;
    void *sock[4];      /* shell, control, stdin (ROUTER), iopub (XPUB) */
    int iopub_greeting; /* iopub.c is applying subscriptions (no nested drain) */
    struct heartbeat *hb;
    struct auth *auth;
    struct connection conn;
    char session[40];
    size_t max_json;     /* per frame; set before kernel_open (0: the default) */
    int allow_empty_key; /* accept a connection file without a key (unsigned messages) */
    int watch_parent;    /* follow the launching client out when it dies */

    struct history *history;
    int execution_count;

    struct supervisor sup;      /* the executor (supervisor.h) */
    const char *python_version; /* from the kernelspec, until the executor reports */
    json_t *language_info;      /* from the executor's ready event; owned */
    int sigfd;                  /* the loop's signals (SIGCHLD, SIGINT, SIGTERM) */

    struct pending *queue_head, *queue_tail; /* shell requests waiting for the executor */
    struct active_request active;            /* the request the executor is working on */
    json_t *last_parent; /* header of the last request, for output between cells; owned */
    json_t *held_reply;  /* an execute reply the extension's cell_end held back; owned */

    struct debug_wait *debug_waits; /* debug_requests the executor has not answered yet */
    unsigned debug_seq;             /* the number of the last one forwarded */
    json_t *debug_parent;           /* header of the last debug_request, for debug_events */
    int debugger_missing;           /* the executor said debugpy cannot be imported */

    struct kernel_extension ext; /* what plugs in (the Spark driver); zeroed: none */
    struct kernel_source sources[KERNEL_MAX_SOURCES];
    int n_sources;

    int running;
    pid_t parent_pid; /* the launching client (JPY_PARENT_PID); 0 when not watched */
    unsigned long dropped[WIRE_NERRORS]; /* bad messages by wire_error */
    unsigned long dropped_total;
};

/* loop.c: returns KERNEL_OK or an enum kernel_error, with detail filled. */
int kernel_open(struct kernel *k, const char *connection_file, char *detail, size_t len);
int kernel_run(struct kernel *k);
void kernel_close(struct kernel *k);
/* Receives one message from a channel. Returns WIRE_OK with *out set, WIRE_NOTHING when
 * nothing waits, or a wire_error when a bad message was dropped (logged and counted). */
int kernel_recv(struct kernel *k, enum channel ch, struct wire_msg **out);

/* iopub.c: publish content (stolen) with parent (borrowed, may be NULL). */
void iopub_publish(struct kernel *k, const char *msg_type, json_t *parent, json_t *content);
/* The same with the message's metadata (stolen, may be NULL: {}) and binary buffers (a comm
 * message's: ipywidgets puts its protocol version in the metadata), sent after the content. */
void iopub_publish_buffers(struct kernel *k, const char *msg_type, json_t *parent, json_t *metadata,
                           json_t *content, const struct wire_blob *buffers, size_t n_buffers);
void iopub_status(struct kernel *k, const char *state, json_t *parent);
/* Reads subscription events and greets each subscriber with iopub_welcome. */
void iopub_handle_subscriptions(struct kernel *k);

/* dispatch.c */
int dispatch_needs_executor(const char *msg_type);
int dispatch_has_reply(const char *msg_type);
void dispatch_message(struct kernel *k, enum channel ch, struct wire_msg *msg);
/* Replies on the request's channel socket; content and metadata stolen. */
void dispatch_reply(struct kernel *k, void *sock, const struct wire_msg *req,
                    const char *reply_type, json_t *content, json_t *metadata);
void dispatch_interrupt(struct kernel *k);
const char *dispatch_reply_type(const char *request_type, char *buf, size_t len);

/* execution.c: the queue of shell requests that need the executor. */
void execution_enqueue(struct kernel *k, struct wire_msg *msg);
void execution_pump(struct kernel *k);
void execution_on_events(struct kernel *k);
void execution_on_stream(struct kernel *k, enum executor_stream which);
void execution_on_child(struct kernel *k);
void execution_abort_queue(struct kernel *k);
/* Returns 1 when the executor was left to stop its Spark session on its own. */
int execution_shutdown(struct kernel *k);
json_t *execution_language_info(struct kernel *k);
/* Registers the executor's pipes with the loop (kernel_open). */
int execution_add_source(struct kernel *k);
/* Output belongs to the running request; between requests, to the last one (borrowed). */
json_t *execution_output_parent(struct kernel *k);

#endif
