/* executor: the supervised Python executor (an IPython shell, later holding the
 * SparkSession). A child process in its own session, talking frames over two pipes
 * (commands on its fd 3, events on its fd 4) with its fd 1 and 2 captured. */
#ifndef SPARKERNEL_EXECUTOR_H
#define SPARKERNEL_EXECUTOR_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

enum executor_state { EXECUTOR_STOPPED = 0, EXECUTOR_STARTING, EXECUTOR_READY };

enum executor_error {
    EXECUTOR_EOF = 1, /* executor_read_events: the event stream has ended (not an error) */
    EXECUTOR_OK = 0,
    EXECUTOR_ESPAWN = -1, /* pipe/fork failed */
    EXECUTOR_ENOTRUNNING = -2,
    EXECUTOR_EPIPE = -3,     /* the executor closed its command pipe */
    EXECUTOR_EPROTOCOL = -4, /* an event stream that cannot be read any more */
};

/* Names an executor_error for a log line. */
const char *executor_strerror(int code);

enum executor_stream { EXECUTOR_STDOUT = 0, EXECUTOR_STDERR = 1 };

struct executor_config {
    const char *python;     /* interpreter to run */
    const char *pythonpath; /* directory holding the sparkernel_executor package */
    /* The kernel's connection file, or NULL: the child's sys.argv ends in `-f <file>`, as
     * ipykernel's does (notebooks' argparse calls and libraries read it). */
    const char *connection_file;
    size_t max_frame;
};

struct executor;

/* Borrows cfg strings for the executor's lifetime. Returns a new object; destroy()s. */
struct executor *executor_new(const struct executor_config *cfg);
/* Stops the child (see executor_stop) and frees. Accepts NULL. */
void executor_destroy(struct executor **self);

/* Forks and execs the child; returns at once (state STARTING until its "ready" event). */
int executor_start(struct executor *self);
enum executor_state executor_state(const struct executor *self);
void executor_set_ready(struct executor *self);
pid_t executor_pid(const struct executor *self);
/* The fds to poll: events, stdout, stderr; -1 where closed. */
int executor_event_fd(const struct executor *self);
int executor_stream_fd(const struct executor *self, enum executor_stream which);

/* Command bytes held for a child that does not read (each frame whole, in order). */
#define EXECUTOR_MAX_PENDING (512u << 20)
/* Sends one command frame (obj borrowed) without blocking: what the pipe does not take now
 * is kept and written by executor_flush when the loop sees the pipe writable. */
int executor_send(struct executor *self, json_t *obj);
/* Control bytes held for a child whose control thread does not read. */
#define EXECUTOR_MAX_CONTROL (64u << 20)
/* Sends one command (obj borrowed) on the control pipe, which a thread of the executor
 * reads at any time, a cell running or not (the debugger's requests, a share given back).
 * Never blocks: kept whole and in order like executor_send's, written as the pipe takes it
 * (poll executor_control_write_fd). */
int executor_control(struct executor *self, json_t *obj);
/* The command pipe while bytes wait for it (poll it for writing), else -1. */
int executor_write_fd(const struct executor *self);
/* The same for the control pipe. */
int executor_control_write_fd(const struct executor *self);
/* Writes what waits on both pipes, as much as they take now. */
int executor_flush(struct executor *self);
/* Sends SIGINT to the executor process only (never its children: the JVM). */
int executor_interrupt(struct executor *self);
/* SIGKILLs the executor's whole process group; its death is then noticed as any other. */
int executor_kill(struct executor *self);

/* Reads what is waiting on the event pipe. Returns EXECUTOR_EOF at end of stream,
 * EXECUTOR_OK otherwise, or EXECUTOR_EPROTOCOL. Then call executor_next_event until it returns
 * NULL. */
int executor_read_events(struct executor *self);
/* The type of the event executor_next_event makes up for a frame it could not read:
 * {"type": "unreadable", "reason": "...", "fatal": bool}; fatal when the stream is lost
 * (a length above the limit: the event pipe is closed, the child must be ended). */
#define EXECUTOR_EVENT_UNREADABLE "unreadable"
/* Returns the next complete event (new reference) or NULL. Every frame that cannot be read
 * becomes an EXECUTOR_EVENT_UNREADABLE event, counted and logged. */
json_t *executor_next_event(struct executor *self);
/* Event frames dropped so far (unreadable ones), over this object's life. */
unsigned long executor_dropped_frames(const struct executor *self);

/* Reads what is waiting on stdout or stderr (non-blocking) and returns it as valid UTF-8
 * in a malloc'd buffer (caller frees) with *len, or NULL when nothing was read (*eof set
 * when the stream has ended). */
char *executor_read_stream(struct executor *self, enum executor_stream which, size_t *len,
                           int *eof);

/* Reaps the child if it has exited (non-blocking). Returns 1 and fills *status when it has. */
int executor_reap(struct executor *self, int *status);
/* Whether the child has exited, without reaping it (executor_reap still sees it). */
int executor_exited(struct executor *self);
/* Waits up to ms for the child to exit, then SIGKILLs its process group and waits. Fills
 * *status. */
void executor_wait(struct executor *self, int ms, int *status);
/* Closes the command pipe, waits up to grace_ms for a clean exit, then SIGTERM, then
 * SIGKILL to the child's whole process group. Leaves the state STOPPED. */
void executor_stop(struct executor *self, int grace_ms);
/* At the kernel's exit: lets a ready child stop on its own. Closes the command pipe (EOF:
 * the executor stops its Spark session, which takes seconds, and exits; it ignores the
 * SIGTERM that PR_SET_PDEATHSIG sends when the kernel is gone, and gives up after a
 * deadline of its own) and forgets the child without waiting. Returns 1 when detached, 0
 * when there was no ready child (then nothing is done). */
int executor_detach(struct executor *self);
/* After a death: kills what is left of its process group and closes every fd. */
void executor_cleanup(struct executor *self);
/* Describes a wait status for a cell: "was killed by signal 9 (SIGKILL)". */
void executor_describe_status(int status, char *buf, size_t len);

#endif
