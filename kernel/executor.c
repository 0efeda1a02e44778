/* executor: fork/exec, pipes, output capture and the end of the child's life. */
#include "executor.h"

#include "log.h"
#include "utf8.h"
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536

/* Frames for a non-blocking pipe, kept whole and in order until it takes them. */
struct outbox {
    char *buf;
    size_t len, off;
};

static void outbox_clear(struct outbox *o)
{
    free(o->buf);
    o->buf = NULL;
    o->len = o->off = 0;
}

const char *executor_strerror(int code)
{
    switch (code) {
    case EXECUTOR_EOF:
        return "the executor's event stream has ended";
    case EXECUTOR_OK:
        return "ok";
    case EXECUTOR_ESPAWN:
        return "the executor process could not be created";
    case EXECUTOR_ENOTRUNNING:
        return "no executor is running";
    case EXECUTOR_EPIPE:
        return "the executor does not read its commands (pipe closed or too much waiting)";
    case EXECUTOR_EPROTOCOL:
        return "the executor's event stream cannot be read any more";
    }
    return "unknown executor error";
}

/* Appends one encoded frame (borrowed); EXECUTOR_EPIPE past limit bytes waiting. */
static int outbox_put(struct outbox *o, const char *data, size_t n, size_t limit)
{
    size_t have = o->len - o->off;
    if (have + n > limit)
        return EXECUTOR_EPIPE; /* a child that has not read this much is not coming back */
    if (o->off > 0) {          /* compact what is left */
        memmove(o->buf, o->buf + o->off, have);
        o->off = 0;
        o->len = have;
    }
    char *grown = realloc(o->buf, have + n);
    if (grown == NULL)
        return EXECUTOR_EPROTOCOL;
    o->buf = grown;
    memcpy(o->buf + have, data, n);
    o->len = have + n;
    return EXECUTOR_OK;
}

/* Writes what waits, as much as fd takes now. */
static int outbox_flush(struct outbox *o, int fd)
{
    while (fd >= 0 && o->off < o->len) {
        ssize_t w = write(fd, o->buf + o->off, o->len - o->off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return EXECUTOR_OK; /* the rest when the pipe has room */
        if (w <= 0)
            return EXECUTOR_EPIPE;
        o->off += (size_t)w;
    }
    o->len = o->off = 0;
    return fd >= 0 ? EXECUTOR_OK : EXECUTOR_ENOTRUNNING;
}

/* Encodes obj (borrowed) as one frame into o, then writes what the pipe takes. */
static int outbox_send(struct outbox *o, int fd, json_t *obj, size_t limit)
{
    if (fd < 0)
        return EXECUTOR_ENOTRUNNING;
    char *buf;
    size_t len;
    if (frame_encode(obj, &buf, &len) != FRAME_OK)
        return EXECUTOR_EPROTOCOL;
    int rc = outbox_put(o, buf, len, limit);
    free(buf);
    return rc == EXECUTOR_OK ? outbox_flush(o, fd) : rc;
}

struct executor {
    struct executor_config cfg;
    enum executor_state state;
    pid_t pid;
    int cmd_fd;                /* we write commands */
    int event_fd;              /* we read events */
    int ctl_fd;                /* we write control commands, read by a thread at any time */
    int out_fd[2];             /* stdout, stderr */
    unsigned char carry[2][4]; /* an unfinished UTF-8 character per stream */
    size_t carry_len[2];
    struct frame_reader *events;
    struct outbox cmd_out, ctl_out; /* bytes each pipe did not take yet (non-blocking) */
    unsigned long dropped; /* event frames that could not be read, over the kernel's life */
};

struct executor *executor_new(const struct executor_config *cfg)
{
    struct executor *ex = calloc(1, sizeof *ex);
    if (ex == NULL)
        return NULL;
    ex->cfg = *cfg;
    ex->pid = -1;
    ex->cmd_fd = ex->event_fd = ex->ctl_fd = ex->out_fd[0] = ex->out_fd[1] = -1;
    return ex;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void executor_cleanup(struct executor *ex)
{
    if (ex->pid > 0) {
        kill(-ex->pid, SIGKILL); /* whatever the child left behind (a JVM) */
        ex->pid = -1;
    }
    close_fd(&ex->cmd_fd);
    close_fd(&ex->event_fd);
    close_fd(&ex->ctl_fd);
    close_fd(&ex->out_fd[0]);
    close_fd(&ex->out_fd[1]);
    ex->carry_len[0] = ex->carry_len[1] = 0;
    outbox_clear(&ex->cmd_out);
    outbox_clear(&ex->ctl_out);
    frame_reader_destroy(&ex->events);
    ex->state = EXECUTOR_STOPPED;
}

void executor_destroy(struct executor **self)
{
    if (self == NULL || *self == NULL)
        return;
    executor_stop(*self, 2000);
    free(*self);
    *self = NULL;
}

/* Moves fd to a number above the ones the child will use. The copy is close-on-exec: only
 * its dup2() onto 0-5 (which clears the flag) reaches Python. */
static int lift(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return high;
}

static void close_pair(int p[2])
{
    close_fd(&p[0]);
    close_fd(&p[1]);
}

int executor_start(struct executor *ex)
{
    if (ex->state != EXECUTOR_STOPPED)
        return EXECUTOR_OK;
    /* commands, events, stdout, stderr, control */
    int pipes[5][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
    for (int i = 0; i < 5; i++)
        if (pipe2(pipes[i], O_CLOEXEC) != 0) {
            for (int j = 0; j < i; j++)
                close_pair(pipes[j]);
            return EXECUTOR_ESPAWN;
        }
    int *cmd = pipes[0], *ev = pipes[1], *out = pipes[2], *err = pipes[3], *ctl = pipes[4];
    char pythonpath[8192];
    const char *old = getenv("PYTHONPATH");
    snprintf(pythonpath, sizeof pythonpath, "%s%s%s", ex->cfg.pythonpath, old && *old ? ":" : "",
             old && *old ? old : "");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        for (int i = 0; i < 5; i++)
            close_pair(pipes[i]);
        return EXECUTOR_ESPAWN;
    }
    if (pid == 0) {
        /* Child: own session (a terminal's or client's SIGINT to the kernel's group never
         * reaches it or its JVM), default signal dispositions, unblocked mask. */
        setsid();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        int c = lift(cmd[0]), e = lift(ev[1]), o = lift(out[1]), r = lift(err[1]);
        int t = lift(ctl[0]);
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (c < 0 || e < 0 || o < 0 || r < 0 || t < 0 || devnull < 0 || dup2(devnull, 0) < 0 ||
            dup2(o, 1) < 0 || dup2(r, 2) < 0 || dup2(c, 3) < 0 || dup2(e, 4) < 0 || dup2(t, 5) < 0)
            _exit(127);
        /* Every cell can print its environment (%env, os.environ) into a notebook: the
         * server's token and the Spark secret stay with the kernel, which passes the secret
         * to the session itself. */
        static const char *secrets[] = {"JUPYTER_TOKEN", "SPARK_AUTHENTICATE_SECRET",
                                        "SPARKERNEL_SPEC_SPARK_AUTHENTICATE_SECRET",
                                        "SPARKERNEL_SPARK_CONF", "SPARKERNEL_SPEC_SPARK_CONF"};
        for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
            unsetenv(secrets[i]);
        /* The package first, so that `python -m sparkernel_executor` finds it; main.py
         * takes it off again (sys.path and os.environ), leaving the user's entries. */
        setenv("PYTHONPATH", pythonpath, 1);
        setenv("SPARKERNEL_CMD_FD", "3", 1);
        setenv("SPARKERNEL_EVENT_FD", "4", 1);
        setenv("SPARKERNEL_CTL_FD", "5", 1);
        /* The executor's own streams in UTF-8 whatever the locale; a value of the user's
         * stays, and ours leaves the cells' environment once the executor runs (main.py). */
        if (getenv("PYTHONIOENCODING") == NULL) {
            setenv("PYTHONIOENCODING", "utf-8", 1);
            setenv("SPARKERNEL_OWN_IOENCODING", "1", 1);
        }
        if (getenv("MPLBACKEND") == NULL)
            setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline", 1);
        if (ex->cfg.connection_file != NULL)
            execlp(ex->cfg.python, ex->cfg.python, "-m", "sparkernel_executor", "-f",
                   ex->cfg.connection_file, (char *)NULL);
        else
            execlp(ex->cfg.python, ex->cfg.python, "-m", "sparkernel_executor", (char *)NULL);
        dprintf(2, "sparkernel: cannot run the Python executor with %s: %s\n", ex->cfg.python,
                strerror(errno));
        _exit(127);
    }
    close(cmd[0]), close(ev[1]), close(out[1]), close(err[1]), close(ctl[0]);
    ex->pid = pid;
    ex->cmd_fd = cmd[1];
    ex->event_fd = ev[0];
    ex->ctl_fd = ctl[1];
    ex->out_fd[0] = out[0];
    ex->out_fd[1] = err[0];
    fcntl(ex->cmd_fd, F_SETFL, O_NONBLOCK); /* a child that does not read never stalls us */
    fcntl(ex->event_fd, F_SETFL, O_NONBLOCK);
    fcntl(ex->ctl_fd, F_SETFL, O_NONBLOCK);
    fcntl(ex->out_fd[0], F_SETFL, O_NONBLOCK);
    fcntl(ex->out_fd[1], F_SETFL, O_NONBLOCK);
    ex->events = frame_reader_new(ex->cfg.max_frame);
    ex->state = EXECUTOR_STARTING;
    log_info("executor started (pid %d, %s)", (int)pid, ex->cfg.python);
    return EXECUTOR_OK;
}

enum executor_state executor_state(const struct executor *ex)
{
    return ex->state;
}

void executor_set_ready(struct executor *ex)
{
    if (ex->state == EXECUTOR_STARTING)
        ex->state = EXECUTOR_READY;
}

pid_t executor_pid(const struct executor *ex)
{
    return ex->pid;
}

int executor_event_fd(const struct executor *ex)
{
    return ex->event_fd;
}

int executor_stream_fd(const struct executor *ex, enum executor_stream which)
{
    return ex->out_fd[which];
}

int executor_flush(struct executor *ex)
{
    int rc = outbox_flush(&ex->ctl_out, ex->ctl_fd);
    int cmd = outbox_flush(&ex->cmd_out, ex->cmd_fd);
    return cmd != EXECUTOR_OK ? cmd : rc;
}

int executor_control(struct executor *ex, json_t *obj)
{
    return outbox_send(&ex->ctl_out, ex->ctl_fd, obj, EXECUTOR_MAX_CONTROL);
}

int executor_write_fd(const struct executor *ex)
{
    return ex->cmd_out.off < ex->cmd_out.len ? ex->cmd_fd : -1;
}

int executor_control_write_fd(const struct executor *ex)
{
    return ex->ctl_out.off < ex->ctl_out.len ? ex->ctl_fd : -1;
}

int executor_send(struct executor *ex, json_t *obj)
{
    return outbox_send(&ex->cmd_out, ex->cmd_fd, obj, EXECUTOR_MAX_PENDING);
}

int executor_interrupt(struct executor *ex)
{
    if (ex->pid <= 0)
        return EXECUTOR_ENOTRUNNING;
    return kill(ex->pid, SIGINT) == 0 ? EXECUTOR_OK : EXECUTOR_ENOTRUNNING;
}

int executor_kill(struct executor *ex)
{
    if (ex->pid <= 0)
        return EXECUTOR_ENOTRUNNING;
    return kill(-ex->pid, SIGKILL) == 0 ? EXECUTOR_OK : EXECUTOR_ENOTRUNNING;
}

int executor_read_events(struct executor *ex)
{
    if (ex->event_fd < 0)
        return EXECUTOR_EOF;
    char buf[READ_CHUNK];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = read(ex->event_fd, buf, sizeof buf);
        if (n > 0) {
            if (frame_reader_feed(ex->events, buf, (size_t)n) != FRAME_OK)
                return EXECUTOR_EPROTOCOL;
            continue;
        }
        if (n == 0) {
            close_fd(&ex->event_fd);
            return EXECUTOR_EOF;
        }
        if (errno == EINTR)
            continue;
        return EXECUTOR_OK; /* EAGAIN: all read */
    }
    return 0;
}

/* Stands in for a frame that could not be read, so the kernel learns of every loss. */
static json_t *unreadable(struct executor *ex, int rc, int fatal)
{
    ex->dropped++;
    log_warn("executor event frame dropped (%lu so far): %s%s", ex->dropped, frame_strerror(rc),
             fatal ? "; the event stream cannot be trusted any more" : "");
    return json_pack("{s:s, s:s, s:b}", "type", EXECUTOR_EVENT_UNREADABLE, "reason",
                     frame_strerror(rc), "fatal", fatal);
}

json_t *executor_next_event(struct executor *ex)
{
    if (ex->events == NULL)
        return NULL;
    json_t *ev;
    int rc = frame_reader_next(ex->events, &ev);
    if (rc == FRAME_OK)
        return ev;
    if (rc == FRAME_AGAIN)
        return NULL;
    if (rc == FRAME_ETOOBIG || rc == FRAME_ENOMEM) {
        close_fd(&ex->event_fd);
        frame_reader_destroy(&ex->events);
        return unreadable(ex, rc, 1);
    }
    return unreadable(ex, rc, 0); /* one frame skipped, the stream still in step */
}

unsigned long executor_dropped_frames(const struct executor *ex)
{
    return ex->dropped;
}

char *executor_read_stream(struct executor *ex, enum executor_stream which, size_t *len, int *eof)
{
    *len = 0;
    *eof = 0;
    int fd = ex->out_fd[which];
    if (fd < 0) {
        *eof = 1;
        return NULL;
    }
    unsigned char *raw = malloc(READ_CHUNK + 4);
    if (raw == NULL)
        return NULL;
    size_t have = ex->carry_len[which];
    memcpy(raw, ex->carry[which], have);
    ssize_t n;
    do
        n = read(fd, raw + have, READ_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        *eof = 1;
        close_fd(&ex->out_fd[which]);
    }
    if (n > 0)
        have += (size_t)n;
    /* At end of stream an unfinished character is flushed (as U+FFFD). */
    size_t keep = *eof ? have : utf8_complete_prefix(raw, have);
    ex->carry_len[which] = have - keep;
    memcpy(ex->carry[which], raw + keep, have - keep);
    if (keep == 0) {
        free(raw);
        return NULL;
    }
    char *text = malloc(3 * keep + 1);
    if (text != NULL)
        *len = utf8_sanitize(raw, keep, text);
    free(raw);
    return text;
}

int executor_reap(struct executor *ex, int *status)
{
    if (ex->pid <= 0)
        return 0;
    pid_t r = waitpid(ex->pid, status, WNOHANG);
    return r == ex->pid;
}

int executor_exited(struct executor *ex)
{
    if (ex->pid <= 0)
        return 0;
    siginfo_t info = {0};
    return waitid(P_PID, (id_t)ex->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == ex->pid;
}

static int wait_exit(struct executor *ex, int ms, int *status)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        if (waitpid(ex->pid, status, WNOHANG) == ex->pid)
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* SIGKILL to the executor's process group, then a bounded wait: a process stuck in the
 * kernel (uninterruptible I/O on a dead NFS mount, say) ignores even SIGKILL, and the loop
 * must not wait for it. Left unreaped, it becomes init's when the kernel exits. */
static void kill_and_reap(struct executor *ex, int *status)
{
    kill(-ex->pid, SIGKILL);
    if (!wait_exit(ex, 2000, status))
        log_warn("executor (pid %d) still there 2 s after SIGKILL: left behind", (int)ex->pid);
}

void executor_wait(struct executor *ex, int ms, int *status)
{
    if (ex->pid <= 0 || wait_exit(ex, ms, status))
        return;
    kill_and_reap(ex, status);
}

void executor_stop(struct executor *ex, int grace_ms)
{
    if (ex->pid > 0) {
        int status;
        close_fd(&ex->cmd_fd); /* EOF on its command pipe: the executor exits cleanly */
        close_fd(&ex->ctl_fd);
        if (!wait_exit(ex, grace_ms, &status)) {
            kill(ex->pid, SIGTERM);
            if (!wait_exit(ex, 1000, &status))
                kill_and_reap(ex, &status);
        }
        log_info("executor stopped (pid %d)", (int)ex->pid);
    }
    executor_cleanup(ex);
}

int executor_detach(struct executor *ex)
{
    if (ex->pid <= 0 || ex->state != EXECUTOR_READY)
        return 0;
    log_info("executor (pid %d) stops its Spark session on its own", (int)ex->pid);
    ex->pid = -1;         /* neither waited for nor killed */
    executor_cleanup(ex); /* closes the command pipe: EOF */
    return 1;
}

void executor_describe_status(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(buf, len, "was killed by signal %d (SIG%s)", sig, abbrev ? abbrev : "?");
    } else if (WIFEXITED(status)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else {
        snprintf(buf, len, "stopped (status 0x%x)", status);
    }
}
