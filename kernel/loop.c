/* loop: sockets, signals and the one zmq_poll loop. Control is served first on every turn,
 * so interrupt, shutdown and kernel_info answer at once while a cell runs. */
#include "debugger.h"
#include "kernel.h"

#include "../driver/http.h"
#include "../driver/spark.h"
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
    const char *allow = getenv("SPARKERNEL_ALLOW_EMPTY_KEY");
    int rc =
        connection_load(connection_file, allow && strcmp(allow, "1") == 0, &k->conn, detail, len);
    if (rc != CONNECTION_OK)
        return rc;
    if (k->conn.insecure_mode)
        log_warn("connection file %s is readable by other users; its key lets them run code "
                 "as you (chmod 600 it)",
                 connection_file);
    if (k->conn.key_len == 0)
        log_warn("empty key: messages are not signed (SPARKERNEL_ALLOW_EMPTY_KEY=1)");
    k->auth = auth_new(k->conn.key, k->conn.key_len, 16384);
    k->history = history_new(10000);
    const char *max_mb = getenv("SPARKERNEL_MAX_MESSAGE_MB");
    k->max_json = max_mb && atoi(max_mb) > 0 ? (size_t)atoi(max_mb) << 20 : WIRE_DEFAULT_MAX_JSON;
    message_uuid(k->session);
    k->ctx = zmq_ctx_new();
    if (k->auth == NULL || k->history == NULL || k->ctx == NULL) {
        snprintf(detail, len, "out of memory");
        return -100;
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
            return -101;
    char hb_endpoint[320];
    connection_endpoint(&k->conn, k->conn.hb_port, hb_endpoint, sizeof hb_endpoint);
    k->hb = heartbeat_new(k->ctx, hb_endpoint);
    if (k->hb == NULL) {
        snprintf(detail, len, "cannot bind heartbeat %s: %s", hb_endpoint, zmq_strerror(errno));
        return -101;
    }
    extern char **environ;
    k->exec = executor_new(&k->exec_cfg);
    k->spark = spark_new(environ, connection_file);
    k->http = http_new();
    if (k->exec == NULL || k->spark == NULL || k->http == NULL) {
        snprintf(detail, len, "out of memory");
        return -100;
    }
    k->running = 1;
    /* Launched by a Jupyter client: follow it out when it dies without shutting us down,
     * so no orphan kernel (and executor, and Spark application) is left behind. */
    if (getenv("JPY_PARENT_PID") != NULL)
        k->parent_pid = getppid();
    log_info("sparkernel %s listening on %s://%s (shell %d, iopub %d, control %d, stdin %d, "
             "hb %d)",
             SPARKERNEL_VERSION, k->conn.transport, k->conn.ip, k->conn.shell_port,
             k->conn.iopub_port, k->conn.control_port, k->conn.stdin_port, k->conn.hb_port);
    return 0;
}

int kernel_recv(struct kernel *k, enum channel ch, struct wire_msg **out)
{
    int rc = wire_recv(k->sock[ch], k->auth, k->max_json, out);
    if (rc == WIRE_OK || rc == 1)
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
        if (rc == 1)
            return;
        if (rc != 0)
            continue;
        if (ch == CHANNEL_STDIN) {
            if (strcmp(msg->msg_type, "input_reply") == 0 && k->awaiting_input) {
                json_t *value = json_object_get(msg->content, "value");
                json_t *cmd =
                    json_pack("{s:s, s:o}", "type", "input_reply", "value",
                              json_is_string(value) ? json_incref(value) : json_string(""));
                k->awaiting_input = 0;
                executor_send(k->exec, cmd);
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

int kernel_run(struct kernel *k)
{
    double next_parent_check = 0;
    executor_start(k->exec); /* warm the executor in the background */
    iopub_status(k, "starting", NULL);
    while (k->running) {
        zmq_pollitem_t items[10 + 16]; /* 5 sockets, 5 executor pipes, libcurl */
        int n = 0;
        int control = n;
        items[n++] = (zmq_pollitem_t){k->sock[CHANNEL_CONTROL], 0, ZMQ_POLLIN, 0};
        int shell = n;
        items[n++] = (zmq_pollitem_t){k->sock[CHANNEL_SHELL], 0, ZMQ_POLLIN, 0};
        int stdin_i = n;
        items[n++] = (zmq_pollitem_t){k->sock[CHANNEL_STDIN], 0, ZMQ_POLLIN, 0};
        int iopub = n;
        items[n++] = (zmq_pollitem_t){k->sock[CHANNEL_IOPUB], 0, ZMQ_POLLIN, 0};
        int sig = n;
        items[n++] = (zmq_pollitem_t){NULL, k->sigfd, ZMQ_POLLIN, 0};
        int ev = -1, out = -1, err = -1;
        if (executor_event_fd(k->exec) >= 0) {
            ev = n;
            items[n++] = (zmq_pollitem_t){NULL, executor_event_fd(k->exec), ZMQ_POLLIN, 0};
        }
        if (executor_stream_fd(k->exec, EXECUTOR_STDOUT) >= 0) {
            out = n;
            items[n++] =
                (zmq_pollitem_t){NULL, executor_stream_fd(k->exec, EXECUTOR_STDOUT), ZMQ_POLLIN, 0};
        }
        if (executor_stream_fd(k->exec, EXECUTOR_STDERR) >= 0) {
            err = n;
            items[n++] =
                (zmq_pollitem_t){NULL, executor_stream_fd(k->exec, EXECUTOR_STDERR), ZMQ_POLLIN, 0};
        }
        int cmd = -1;
        if (executor_write_fd(k->exec) >= 0) {
            cmd = n;
            items[n++] = (zmq_pollitem_t){NULL, executor_write_fd(k->exec), ZMQ_POLLOUT, 0};
        }
        int ctl = -1;
        if (executor_control_write_fd(k->exec) >= 0) {
            ctl = n;
            items[n++] = (zmq_pollitem_t){NULL, executor_control_write_fd(k->exec), ZMQ_POLLOUT, 0};
        }
        /* libcurl's sockets, and the earliest of its and the Spark client's timers. */
        struct http_fd hfds[16];
        int nh = http_fds(k->http, hfds, 16);
        for (int i = 0; i < nh; i++)
            items[n++] = (zmq_pollitem_t){
                NULL, hfds[i].fd,
                (short)((hfds[i].read ? ZMQ_POLLIN : 0) | (hfds[i].write ? ZMQ_POLLOUT : 0)), 0};
        long timeout = 1000;
        long t = http_timeout_ms(k->http);
        if (t >= 0 && t < timeout)
            timeout = t;
        t = spark_next_tick_ms(k);
        if (t >= 0 && t < timeout)
            timeout = t;
        int rc = zmq_poll(items, n, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_error("zmq_poll failed: %s", zmq_strerror(errno));
            break;
        }
        http_perform(k->http);
        spark_tick(k);
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
        if (items[control].revents & ZMQ_POLLIN)
            on_socket(k, CHANNEL_CONTROL);
        if (items[sig].revents & ZMQ_POLLIN)
            on_signals(k);
        if (!k->running)
            break;
        if (items[iopub].revents & ZMQ_POLLIN)
            iopub_handle_subscriptions(k);
        if (out >= 0 && (items[out].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            execution_on_stream(k, EXECUTOR_STDOUT);
        if (err >= 0 && (items[err].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            execution_on_stream(k, EXECUTOR_STDERR);
        if (ev >= 0 && (items[ev].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            execution_on_events(k);
        if ((cmd >= 0 && (items[cmd].revents & (ZMQ_POLLOUT | ZMQ_POLLERR))) ||
            (ctl >= 0 && (items[ctl].revents & (ZMQ_POLLOUT | ZMQ_POLLERR))))
            executor_flush(k->exec); /* an error: the child is gone, its SIGCHLD follows */
        if (items[stdin_i].revents & ZMQ_POLLIN)
            on_socket(k, CHANNEL_STDIN);
        if (items[shell].revents & ZMQ_POLLIN)
            on_socket(k, CHANNEL_SHELL);
    }
    log_info("stopping (%lu bad messages dropped in this session)", k->dropped_total);
    spark_shutdown(k, execution_shutdown(k));
    return 0;
}

void kernel_close(struct kernel *k)
{
    executor_destroy(&k->exec);
    http_destroy(&k->http);
    spark_destroy(&k->spark);
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
