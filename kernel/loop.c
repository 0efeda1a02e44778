/* loop: sockets, signals and the one zmq_poll loop over the kernel's sockets and the event
 * sources registered with it (the executor's pipes, an extension's HTTP and timers).
 * Control is served first on every turn, so interrupt, shutdown and kernel_info answer at
 * once while a cell runs. */
#include "debugger.h"
#include "kernel.h"

#include "log.h"
#include "message.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char *channel_names[] = {"shell", "control", "stdin", "iopub"};

static void *bind_socket(struct kernel *k, int type, int port, char *detail, size_t len)
{
    char endpoint[320];
    connection_endpoint(&k->conn, port, endpoint, sizeof endpoint);
    void *s = zmq_socket(k->ctx, type);
    if (s == NULL)
        return NULL;
    int linger = 1000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (type == ZMQ_ROUTER) {
        int mandatory = 0; /* a reply to a departed client is dropped, not an error */
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    }
    if (type == ZMQ_XPUB) {
        /* Manual mode: a subscription reaches the topic tree only when iopub.c applies it,
         * right before that subscriber's iopub_welcome, so the welcome is always the first
         * message it gets (in automatic mode libzmq can apply it inside any zmq_send, and a
         * status published before the loop reads the subscription arrives first). */
        int manual = 1, hwm = 100000;
        zmq_setsockopt(s, ZMQ_XPUB_MANUAL, &manual, sizeof manual);
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    }
    int64_t maxmsg = 256LL << 20; /* hard cap; wire.c drops above k->max_json per frame */
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(s, endpoint) != 0) {
        snprintf(detail, len, "cannot bind %s: %s (another process holds the port?)", endpoint,
                 zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

int kernel_open(struct kernel *k, const char *connection_file, char *detail, size_t len)
{
    char why[512];
    int rc = connection_load(connection_file, k->allow_empty_key, &k->conn, why, sizeof why);
    if (rc != CONNECTION_OK) {
        snprintf(detail, len, "%s: %s", connection_strerror(rc), why);
        return KERNEL_ECONNECTION;
    }
    if (k->conn.insecure_mode)
        log_warn("connection file %s is readable by other users; its key lets them run code "
                 "as you (chmod 600 it)",
                 connection_file);
    if (k->conn.key_len == 0)
        log_warn("empty key: messages are not signed (SPARKERNEL_ALLOW_EMPTY_KEY=1)");
    k->auth = auth_new(k->conn.key, k->conn.key_len, 16384);
    k->history = history_new(10000);
    if (k->max_json == 0)
        k->max_json = WIRE_DEFAULT_MAX_JSON;
    message_uuid(k->session);
    k->ctx = zmq_ctx_new();
    if (k->auth == NULL || k->history == NULL || k->ctx == NULL) {
        snprintf(detail, len, "out of memory");
        return KERNEL_ENOMEM;
    }
    /* Signals go through a signalfd in the loop; block them before any thread starts. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    k->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    int types[4] = {ZMQ_ROUTER, ZMQ_ROUTER, ZMQ_ROUTER, ZMQ_XPUB};
    int ports[4] = {k->conn.shell_port, k->conn.control_port, k->conn.stdin_port,
                    k->conn.iopub_port};
    for (int i = 0; i < 4; i++)
        if ((k->sock[i] = bind_socket(k, types[i], ports[i], detail, len)) == NULL)
            return KERNEL_EBIND;
    char hb_endpoint[320];
    connection_endpoint(&k->conn, k->conn.hb_port, hb_endpoint, sizeof hb_endpoint);
    k->hb = heartbeat_new(k->ctx, hb_endpoint);
    if (k->hb == NULL) {
        snprintf(detail, len, "cannot bind heartbeat %s: %s", hb_endpoint, zmq_strerror(errno));
        return KERNEL_EBIND;
    }
    k->sup.exec = executor_new(&k->sup.cfg);
    if (k->sup.exec == NULL || execution_add_source(k) != 0) {
        snprintf(detail, len, "out of memory");
        return KERNEL_ENOMEM;
    }
    k->running = 1;
    /* Launched by a Jupyter client: follow it out when it dies without shutting us down,
     * so no orphan kernel (and executor, and Spark application) is left behind. */
    if (k->watch_parent)
        k->parent_pid = getppid();
    log_info("sparkernel %s listening on %s://%s (shell %d, iopub %d, control %d, stdin %d, "
             "hb %d)",
             SPARKERNEL_VERSION, k->conn.transport, k->conn.ip, k->conn.shell_port,
             k->conn.iopub_port, k->conn.control_port, k->conn.stdin_port, k->conn.hb_port);
    return KERNEL_OK;
}

const char *kernel_strerror(int code)
{
    switch (code) {
    case KERNEL_OK:
        return "ok";
    case KERNEL_ECONNECTION:
        return "the connection file cannot be used";
    case KERNEL_ENOMEM:
        return "out of memory";
    case KERNEL_EBIND:
        return "a port of the connection file cannot be bound";
    }
    return "unknown kernel error";
}

int kernel_add_source(struct kernel *k, const struct kernel_source *src)
{
    if (k->n_sources >= KERNEL_MAX_SOURCES)
        return -1;
    k->sources[k->n_sources++] = *src;
    return 0;
}

int kernel_set_extension(struct kernel *k, const struct kernel_extension *ext)
{
    if (k->ext.name != NULL)
        return -1;
    k->ext = *ext;
    return 0;
}

void *kernel_extension_self(const struct kernel *k)
{
    return k->ext.self;
}

int kernel_recv(struct kernel *k, enum channel ch, struct wire_msg **out)
{
    int rc = wire_recv(k->sock[ch], k->auth, k->max_json, out);
    if (rc == WIRE_OK || rc == WIRE_NOTHING)
        return rc;
    k->dropped[-rc]++;
    k->dropped_total++;
    log_warn("dropped message on %s: %s (%lu dropped so far)", channel_names[ch], wire_strerror(rc),
             k->dropped_total);
    return -1;
}

static void on_socket(struct kernel *k, enum channel ch)
{
    /* Bounded per turn so one flooding client cannot starve the others. */
    for (int i = 0; i < 64 && k->running; i++) {
        struct wire_msg *msg = NULL;
        int rc = kernel_recv(k, ch, &msg);
        if (rc == WIRE_NOTHING)
            return;
        if (rc != WIRE_OK)
            continue;
        if (ch == CHANNEL_STDIN) {
            if (strcmp(msg->msg_type, "input_reply") == 0 && k->active.awaiting_input) {
                json_t *value = json_object_get(msg->content, "value");
                json_t *cmd =
                    json_pack("{s:s, s:o}", "type", "input_reply", "value",
                              json_is_string(value) ? json_incref(value) : json_string(""));
                k->active.awaiting_input = 0;
                executor_send(k->sup.exec, cmd);
                json_decref(cmd);
            } else {
                log_warn("unexpected %.64s on stdin ignored", msg->msg_type);
            }
            wire_msg_destroy(&msg);
            continue;
        }
        dispatch_message(k, ch, msg);
    }
}

static void on_signals(struct kernel *k)
{
    struct signalfd_siginfo si;
    while (read(k->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGINT:
            dispatch_interrupt(k); /* interrupt_mode "signal" */
            break;
        case SIGTERM:
        case SIGHUP:
            log_info("signal %d: shutting down", (int)si.ssi_signo);
            k->running = 0;
            break;
        case SIGCHLD:
            execution_on_child(k);
            break;
        }
    }
}

static double loop_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static short fd_events_to_zmq(short events)
{
    return (short)(((events & KERNEL_FD_READ) ? ZMQ_POLLIN : 0) |
                   ((events & KERNEL_FD_WRITE) ? ZMQ_POLLOUT : 0));
}

static short zmq_to_fd_events(short revents)
{
    return (short)(((revents & ZMQ_POLLIN) ? KERNEL_FD_READ : 0) |
                   ((revents & ZMQ_POLLOUT) ? KERNEL_FD_WRITE : 0) |
                   ((revents & ZMQ_POLLERR) ? KERNEL_FD_ERROR : 0));
}

/* Each turn's fds of one source, and where they sit among the poll items. */
struct source_turn {
    struct kernel_fd fds[KERNEL_SOURCE_MAX_FDS];
    int n, first;
};

int kernel_run(struct kernel *k)
{
    double next_parent_check = 0;
    executor_start(k->sup.exec); /* warm the executor in the background */
    iopub_status(k, "starting", NULL);
    while (k->running) {
        enum { CONTROL, SHELL, STDIN, IOPUB, SIGNALS, FIXED };
        zmq_pollitem_t items[FIXED + KERNEL_MAX_SOURCES * KERNEL_SOURCE_MAX_FDS];
        items[CONTROL] = (zmq_pollitem_t){k->sock[CHANNEL_CONTROL], 0, ZMQ_POLLIN, 0};
        items[SHELL] = (zmq_pollitem_t){k->sock[CHANNEL_SHELL], 0, ZMQ_POLLIN, 0};
        items[STDIN] = (zmq_pollitem_t){k->sock[CHANNEL_STDIN], 0, ZMQ_POLLIN, 0};
        items[IOPUB] = (zmq_pollitem_t){k->sock[CHANNEL_IOPUB], 0, ZMQ_POLLIN, 0};
        items[SIGNALS] = (zmq_pollitem_t){NULL, k->sigfd, ZMQ_POLLIN, 0};
        int n = FIXED;
        long timeout = 1000;
        struct source_turn turn[KERNEL_MAX_SOURCES];
        for (int s = 0; s < k->n_sources; s++) {
            const struct kernel_source *src = &k->sources[s];
            turn[s].n = src->fds ? src->fds(src->self, turn[s].fds, KERNEL_SOURCE_MAX_FDS) : 0;
            turn[s].first = n;
            for (int i = 0; i < turn[s].n; i++)
                items[n++] = (zmq_pollitem_t){NULL, turn[s].fds[i].fd,
                                              fd_events_to_zmq(turn[s].fds[i].events), 0};
            long t = src->next_ms ? src->next_ms(src->self) : -1;
            if (t >= 0 && t < timeout)
                timeout = t;
        }
        int rc = zmq_poll(items, n, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_error("zmq_poll failed: %s", zmq_strerror(errno));
            break;
        }
        /* By time, on every turn: a cell that prints without a pause keeps the poll from
         * ever timing out, and its kernel must still notice its client is gone. */
        double now = loop_now_s();
        if (k->parent_pid > 0 && now >= next_parent_check) {
            next_parent_check = now + 1.0;
            if (getppid() != k->parent_pid) {
                log_warn("the client that started this kernel (pid %d) is gone: shutting down",
                         (int)k->parent_pid);
                break;
            }
        }
        if (items[CONTROL].revents & ZMQ_POLLIN)
            on_socket(k, CHANNEL_CONTROL);
        if (items[SIGNALS].revents & ZMQ_POLLIN)
            on_signals(k);
        if (!k->running)
            break;
        if (items[IOPUB].revents & ZMQ_POLLIN)
            iopub_handle_subscriptions(k);
        for (int s = 0; s < k->n_sources; s++) {
            for (int i = 0; i < turn[s].n; i++)
                turn[s].fds[i].revents = zmq_to_fd_events(items[turn[s].first + i].revents);
            if (k->sources[s].run)
                k->sources[s].run(k->sources[s].self, turn[s].fds, turn[s].n);
        }
        if (items[STDIN].revents & ZMQ_POLLIN)
            on_socket(k, CHANNEL_STDIN);
        if (items[SHELL].revents & ZMQ_POLLIN)
            on_socket(k, CHANNEL_SHELL);
    }
    log_info("stopping (%lu bad messages dropped in this session)", k->dropped_total);
    int detached = execution_shutdown(k);
    if (k->ext.shutdown)
        k->ext.shutdown(k, k->ext.self, detached);
    return 0;
}

void kernel_close(struct kernel *k)
{
    executor_destroy(&k->sup.exec);
    if (k->ext.destroy)
        k->ext.destroy(k->ext.self);
    memset(&k->ext, 0, sizeof k->ext);
    k->n_sources = 0;
    json_decref(k->held_reply);
    heartbeat_destroy(&k->hb);
    for (int i = 0; i < 4; i++)
        if (k->sock[i])
            zmq_close(k->sock[i]);
    if (k->ctx)
        zmq_ctx_term(k->ctx);
    auth_destroy(&k->auth);
    history_destroy(&k->history);
    connection_clear(&k->conn);
    json_decref(k->language_info);
    json_decref(k->last_parent);
    debugger_clear(k);
    if (k->sigfd > 0)
        close(k->sigfd);
}
