/* extension: the one seam between the Jupyter kernel core (kernel/) and what plugs into it
 * (the Spark driver, driver/). The core runs requests in the Python executor and knows
 * nothing of Spark; an extension registers hooks that the core calls at the moments of a
 * cell's and an executor's life, event sources for the loop, and uses the few calls below
 * to act on the kernel. It never reads struct kernel's fields.
 *
 * Ownership follows jansson's words: a "borrowed" reference stays the caller's (incref it
 * to keep it past the call); a "stolen" one becomes the callee's, which releases it even
 * when the call fails; "new" means the caller owns what is returned. Strings are borrowed
 * and copied by whoever keeps them. */
#ifndef SPARKERNEL_EXTENSION_H
#define SPARKERNEL_EXTENSION_H

#include <jansson.h>

struct kernel;

/* ---------- the loop's event sources (in the spirit of redis's ae.c) ---------- */

struct kernel_fd {
    int fd;
    short events;  /* KERNEL_FD_READ | KERNEL_FD_WRITE */
    short revents; /* set by the loop for run(): what happened (KERNEL_FD_ERROR too) */
};

#define KERNEL_FD_READ        1
#define KERNEL_FD_WRITE       2
#define KERNEL_FD_ERROR       4
#define KERNEL_SOURCE_MAX_FDS 16

/* A source of events polled by the kernel's loop: each turn the loop asks for its fds and
 * its next deadline, polls them with the kernel's sockets, and calls run() after every
 * poll (a timeout included) with the fds and what happened on them. self is borrowed for
 * the source's life (until kernel_close). Sources run in the order they were added, after
 * the control channel and signals and before stdin and shell. */
struct kernel_source {
    const char *name;
    void *self;
    /* Fills at most max fds to poll this turn; returns how many. NULL: none. */
    int (*fds)(void *self, struct kernel_fd *out, int max);
    /* Milliseconds until run() must be called again, or -1 for no deadline. NULL: none. */
    long (*next_ms)(void *self);
    /* Called after every poll with this source's fds (borrowed) and their revents. */
    void (*run)(void *self, const struct kernel_fd *fds, int n);
};

/* Adds a source (copied; self borrowed). Returns 0, or -1 when the loop is full. */
int kernel_add_source(struct kernel *k, const struct kernel_source *src);

/* ---------- hooks an extension registers ---------- */

/* Every hook may be NULL. self is the extension's own state, borrowed by the kernel from
 * kernel_set_extension until kernel_close, which calls destroy(self). */
struct kernel_extension {
    const char *name;
    void *self;
    /* The executor said it is ready, before any request goes to it. */
    void (*executor_ready)(struct kernel *k, void *self);
    /* The executor died (its cell, if any, is answered by the core right after). */
    void (*executor_died)(struct kernel *k, void *self);
    /* An executor event of a type the core does not know (ev borrowed). Returns 1 when the
     * extension took it, 0 to have it logged and dropped. The queue is pumped after. */
    int (*event)(struct kernel *k, void *self, const char *type, json_t *ev);
    /* Whether requests must stay queued for now (a session being negotiated). */
    int (*holds_queue)(struct kernel *k, void *self);
    /* The code of an execute request, before it goes to the executor (code borrowed).
     * Returns 0 to let it go as it is, 1 when the extension took the cell: it then calls
     * kernel_continue_cell or kernel_fail_cell, now or later, exactly once. */
    int (*cell_code)(struct kernel *k, void *self, const char *code);
    /* A cell (its execution count) is sent to the executor / has its reply. cell_end
     * returns 1 to hold the reply back (a last look at the cell's work); it then calls
     * kernel_release_reply, now or later. */
    void (*cell_begin)(struct kernel *k, void *self, int count);
    int (*cell_end)(struct kernel *k, void *self);
    /* Adds to a kernel_info_reply's content (borrowed): its banner, help_links. */
    void (*kernel_info)(struct kernel *k, void *self, json_t *content);
    /* The kernel is stopping; executor_detached is 1 when the executor was left to end its
     * work on its own (a ready one), 0 when it was stopped or was not running. */
    void (*shutdown)(struct kernel *k, void *self, int executor_detached);
    void (*destroy)(void *self);
};

/* Registers the one extension (copied; its self borrowed until kernel_close). Returns 0,
 * or -1 when one is registered already. */
int kernel_set_extension(struct kernel *k, const struct kernel_extension *ext);

/* ---------- what the core offers an extension ---------- */

/* The self the extension registered (borrowed), or NULL. */
void *kernel_extension_self(const struct kernel *k);

/* Publishes content (stolen) on iopub as output of the running cell, or of the last
 * request between cells. */
void kernel_publish_output(struct kernel *k, const char *msg_type, json_t *content);
/* Sends a command (borrowed) to the executor in order with the cells / on its control
 * pipe, read at any time (see executor_send and executor_control). Returns 0, or -1 when
 * the executor did not take it (then logged). */
int kernel_send_executor(struct kernel *k, json_t *cmd);
int kernel_control_executor(struct kernel *k, json_t *cmd);
/* The cell taken by cell_code goes on: code (borrowed) runs in the executor, or the cell
 * ends ok when code is blank. Or it ends with one error (strings borrowed). */
void kernel_continue_cell(struct kernel *k, const char *code);
void kernel_fail_cell(struct kernel *k, const char *ename, const char *evalue);
/* Sends the reply that cell_end held back. */
void kernel_release_reply(struct kernel *k);
/* Requests held by holds_queue may go on now. */
void kernel_resume_queue(struct kernel *k);
/* Whether a request is running in the executor. */
int kernel_cell_running(const struct kernel *k);
/* The kernel's session id (the protocol's session; borrowed, lives with the kernel). */
const char *kernel_session_id(const struct kernel *k);

#endif
