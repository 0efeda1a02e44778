/* supervisor: the executor's life as the kernel core sees it. It starts one, keeps what a
 * starting executor writes (the tail a failed start is explained with), starts another when
 * one is killed while starting (twice in a row at most: a third kill is a failure, so an
 * executor the OOM killer always takes does not loop), remembers why the kernel ended one,
 * and keeps the sequence of "sync" commands that tell a lost reply from a late one. The
 * process itself, its pipes and their frames are executor.c's; the queue and the replies
 * are execution.c's. */
#ifndef SPARKERNEL_SUPERVISOR_H
#define SPARKERNEL_SUPERVISOR_H

#include "executor.h"

#include <stddef.h>

struct supervisor {
    struct executor *exec;      /* owned by the kernel (executor_new in kernel_open) */
    struct executor_config cfg; /* the python and its path, set before kernel_open */
    char start_failure[2048];   /* why the last start failed, for the cells that waited */
    char stderr_tail[2048];     /* what a starting executor wrote to stderr */
    int start_kills;            /* starts in a row ended by a signal (killed, not failed) */
    char death_cause[160];      /* why the kernel ended the executor, for the cell it ran */
    unsigned sync_seq;          /* the last "sync" command sent to the executor */
    unsigned sync_awaited;      /* its seq while the running request's reply may be lost */
};

/* What to do once the executor has exited (supervisor_exited). */
enum supervisor_next {
    SUPERVISOR_RESTART,      /* killed while starting: another was started */
    SUPERVISOR_START_FAILED, /* the start failed: start_failure says why */
    SUPERVISOR_DIED,         /* a ready executor died: death_cause says why, if the kernel knows */
};

/* Starts an executor; a start that cannot even fork leaves start_failure set. */
void supervisor_start(struct supervisor *sv);
/* Keeps the last of what a starting executor wrote (cut on a character). */
void supervisor_keep_tail(struct supervisor *sv, const char *text, size_t len);
/* The executor is ready: its start counts as a success. */
void supervisor_ready(struct supervisor *sv);
/* Ends the executor for a reason the kernel knows; the reason (" after ...") goes into the
 * error of the cell it ran. */
void supervisor_end(struct supervisor *sv, const char *reason);
/* The executor has exited with status (how: executor_describe_status's words); was_ready:
 * it had reported ready. Decides what comes next and logs it. */
enum supervisor_next supervisor_exited(struct supervisor *sv, int status, int was_ready,
                                       const char *how);
/* Takes the last start's failure into buf (cleared after); 0 when there is none. */
int supervisor_take_start_failure(struct supervisor *sv, char *buf, size_t len);
/* Sends a "sync" command behind whatever was sent, unless one is already awaited. */
void supervisor_sync(struct supervisor *sv);
/* 1 when seq answers the sync awaited (and a reply was lost before it). */
int supervisor_synced(const struct supervisor *sv, long long seq);
/* The running request has its reply: no sync is awaited any more. */
void supervisor_sync_done(struct supervisor *sv);

#endif
