/* execution: shell requests that need the Python executor wait here in arrival order; one
 * runs at a time. This file turns executor events into iopub messages and replies, and
 * tells a cell what happened to the executor it ran in (the executor's starts, restarts
 * and failures are supervisor.c's). The extension (extension.h) is called at each moment
 * of a cell's and an executor's life, and acts back through the calls below. */
#include "debugger.h"
#include "kernel.h"

#include "log.h"
#include "message.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static json_t *fallback_language_info(struct kernel *k)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i}, s:s}", "name", "python", "version",
                     k->python_version ? k->python_version : "3", "mimetype", "text/x-python",
                     "file_extension", ".py", "pygments_lexer", "ipython3", "codemirror_mode",
                     "name", "ipython", "version", 3, "nbconvert_exporter", "python");
}

json_t *execution_language_info(struct kernel *k)
{
    return k->language_info ? json_incref(k->language_info) : fallback_language_info(k);
}

/* Appends msg (taken) to the list head/tail. */
static void queue_push(struct pending **head, struct pending **tail, struct wire_msg *msg)
{
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        log_error("out of memory queueing %s; dropped", msg->msg_type);
        wire_msg_destroy(&msg);
        return;
    }
    p->msg = msg;
    if (*tail)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

void execution_enqueue(struct kernel *k, struct wire_msg *msg)
{
    queue_push(&k->queue_head, &k->queue_tail, msg);
    execution_pump(k);
}

static struct wire_msg *dequeue(struct kernel *k)
{
    struct pending *p = k->queue_head;
    if (p == NULL)
        return NULL;
    k->queue_head = p->next;
    if (k->queue_head == NULL)
        k->queue_tail = NULL;
    struct wire_msg *m = p->msg;
    free(p);
    return m;
}

static int bool_field(json_t *content, const char *key, int fallback)
{
    json_t *v = json_object_get(content, key);
    return json_is_boolean(v) ? json_is_true(v) : fallback;
}

static json_t *reply_metadata(struct kernel *k, const char *status)
{
    return json_pack("{s:s, s:b, s:s, s:s}", "started", k->active.started, "dependencies_met", 1,
                     "engine", k->session, "status", status);
}

static void take_waiting_shell(struct kernel *k);

/* Ends the current request: reply (content stolen), idle, next. */
static void finish_current(struct kernel *k, json_t *content)
{
    struct wire_msg *req = k->active.msg;
    char reply_type[64];
    dispatch_reply_type(req->msg_type, reply_type, sizeof reply_type);
    const char *status = json_string_value(json_object_get(content, "status"));
    int is_execute = strcmp(req->msg_type, "execute_request") == 0;
    int failed = status == NULL || strcmp(status, "ok") != 0;
    int abort = is_execute && failed && k->active.stop_on_error;
    /* What the client sent before this reply existed is what stop_on_error aborts: take it
     * in now, before the reply, so a cell sent in answer to the error is never aborted. */
    if (abort)
        take_waiting_shell(k);
    if (is_execute) {
        /* As ipykernel: the count of the last stored cell, which is this one's only when
         * it was stored (not silent, store_history, not blank). */
        json_object_set_new(content, "execution_count", json_integer(k->execution_count));
        if (failed && status != NULL && strcmp(status, "error") == 0)
            json_object_set_new(content, "engine_info",
                                json_pack("{s:s, s:i, s:s}", "engine_uuid", k->session, "engine_id",
                                          -1, "method", "execute"));
    }
    if (dispatch_has_reply(req->msg_type))
        dispatch_reply(k, k->sock[CHANNEL_SHELL], req, reply_type, content,
                       is_execute ? reply_metadata(k, status ? status : "error") : NULL);
    else
        json_decref(content);
    iopub_status(k, "idle", req->header);
    k->active.msg = NULL;
    k->active.awaiting_input = 0;
    supervisor_sync_done(&k->sup);
    wire_msg_destroy(&req);
    if (abort)
        execution_abort_queue(k);
    execution_pump(k);
}

/* Publishes the error of a failed request (an execute's traceback) and returns the content
 * of its reply: a new reference. */
static json_t *error_reply(struct kernel *k, struct wire_msg *req, const char *ename,
                           const char *evalue)
{
    int is_execute = strcmp(req->msg_type, "execute_request") == 0;
    if (is_execute) {
        json_t *tb = json_pack("[s]", evalue);
        iopub_publish(k, "error", req->header, message_error_content(ename, evalue, tb));
        json_decref(tb);
    }
    json_t *content = json_pack("{s:s, s:s, s:s, s:[s]}", "status", "error", "ename", ename,
                                "evalue", evalue, "traceback", evalue);
    if (is_execute) {
        json_object_set_new(content, "user_expressions", json_object());
        json_object_set_new(content, "payload", json_array());
    }
    return content;
}

/* Answers a request without the executor: an error in the cell and the reply. */
static void fail_request(struct kernel *k, struct wire_msg *req, const char *ename,
                         const char *evalue)
{
    k->active.msg = req;
    finish_current(k, error_reply(k, req, ename, evalue));
}

/* The running request's reply (content stolen): an execute reply may wait for the last
 * look at its Spark jobs. */
static void take_reply(struct kernel *k, json_t *content)
{
    supervisor_sync_done(&k->sup);
    if (strcmp(k->active.msg->msg_type, "execute_request") == 0 && k->ext.cell_end &&
        k->ext.cell_end(k, k->ext.self)) {
        json_decref(k->held_reply);
        k->held_reply = content; /* released after the last progress look */
        return;
    }
    finish_current(k, content);
}

static void take_waiting_shell(struct kernel *k)
{
    struct wire_msg *m;
    int rc;
    for (int i = 0; i < 10000 && (rc = kernel_recv(k, CHANNEL_SHELL, &m)) != WIRE_NOTHING; i++) {
        if (rc != WIRE_OK)
            continue; /* dropped and counted */
        if (dispatch_needs_executor(m->msg_type))
            queue_push(&k->queue_head, &k->queue_tail, m);
        else
            dispatch_message(k, CHANNEL_SHELL, m);
    }
}

void execution_abort_queue(struct kernel *k)
{
    struct pending *keep_head = NULL, *keep_tail = NULL;
    struct wire_msg *m;
    while ((m = dequeue(k)) != NULL) {
        if (strcmp(m->msg_type, "execute_request") != 0) {
            queue_push(&keep_head, &keep_tail, m);
            continue;
        }
        log_info("aborting queued execute_request %.8s after an error", m->msg_id);
        iopub_status(k, "busy", m->header);
        message_now_iso(k->active.started, sizeof k->active.started);
        dispatch_reply(k, k->sock[CHANNEL_SHELL], m, "execute_reply",
                       json_pack("{s:s}", "status", "aborted"), reply_metadata(k, "aborted"));
        iopub_status(k, "idle", m->header);
        wire_msg_destroy(&m);
    }
    k->queue_head = keep_head;
    k->queue_tail = keep_tail;
}

static int is_blank(const char *code)
{
    while (*code == ' ' || *code == '\t' || *code == '\n' || *code == '\r')
        code++;
    return *code == '\0';
}

static void send_cell(struct kernel *k, const char *code);

static void send_execute(struct kernel *k, struct wire_msg *req)
{
    json_t *c = req->content;
    json_t *code_v = json_object_get(c, "code");
    if (!json_is_string(code_v)) {
        fail_request(k, req, "BadRequest", "execute_request without a code string");
        return;
    }
    const char *code = json_string_value(code_v);
    int silent = bool_field(c, "silent", 0);
    int store = silent ? 0 : bool_field(c, "store_history", 1);
    k->active.silent = silent;
    k->active.store = store;
    k->active.stop_on_error = bool_field(c, "stop_on_error", 1);
    k->active.allow_stdin = bool_field(c, "allow_stdin", 1);
    /* IPython neither counts nor stores a blank cell, but still evaluates its
     * user_expressions: it goes to the executor as it is. */
    int blank = is_blank(code);
    if (store && !blank) {
        k->execution_count++;
        history_add(k->history, k->execution_count, code);
    }
    k->active.count = store && !blank ? k->execution_count : k->execution_count + 1;
    if (!silent)
        iopub_publish(k, "execute_input", req->header,
                      json_pack("{s:O, s:i}", "code", code_v, "execution_count", k->active.count));
    if (blank) {
        send_cell(k, code);
        return;
    }
    if (k->ext.cell_code && k->ext.cell_code(k, k->ext.self, code))
        return; /* the extension continues or fails the cell (its magics) */
    kernel_continue_cell(k, code);
}

void kernel_continue_cell(struct kernel *k, const char *code)
{
    if (k->active.msg == NULL)
        return;
    if (is_blank(code)) { /* nothing but magics */
        finish_current(
            k, json_pack("{s:s, s:{}, s:[]}", "status", "ok", "user_expressions", "payload"));
        return;
    }
    send_cell(k, code);
}

static void send_cell(struct kernel *k, const char *code)
{
    struct wire_msg *req = k->active.msg;
    json_t *ue = json_object_get(req->content, "user_expressions");
    json_t *cmd =
        json_pack("{s:s, s:s, s:b, s:b, s:b, s:i, s:o}", "type", "execute", "code", code, "silent",
                  k->active.silent, "store_history", k->active.store, "allow_stdin",
                  k->active.allow_stdin, "execution_count", k->active.count, "user_expressions",
                  json_is_object(ue) ? json_incref(ue) : json_object());
    /* The request's own header: get_ipython().get_parent() gives it to ipywidgets' Output,
     * which captures the output of the message with that id. */
    json_object_set(cmd, "parent_header", req->header);
    if (k->ext.cell_begin)
        k->ext.cell_begin(k, k->ext.self, k->active.count);
    if (executor_send(k->sup.exec, cmd) != EXECUTOR_OK)
        log_warn("executor did not take the execute command; waiting for its exit");
    json_decref(cmd);
}

void kernel_fail_cell(struct kernel *k, const char *ename, const char *evalue)
{
    struct wire_msg *req = k->active.msg;
    if (req == NULL)
        return;
    k->active.msg = NULL;
    fail_request(k, req, ename, evalue);
}

void kernel_release_reply(struct kernel *k)
{
    json_t *content = k->held_reply;
    k->held_reply = NULL;
    if (content != NULL && k->active.msg != NULL)
        finish_current(k, content);
    else
        json_decref(content);
}

/* Forwards complete, inspect and is_complete with their content. */
static void send_query(struct kernel *k, struct wire_msg *req)
{
    json_t *cmd = json_deep_copy(req->content);
    char kind[48];
    const char *suffix = strstr(req->msg_type, "_request");
    snprintf(kind, sizeof kind, "%.*s",
             (int)(suffix ? (size_t)(suffix - req->msg_type) : strlen(req->msg_type)),
             req->msg_type);
    json_object_set_new(cmd, "type", json_string(kind));
    if (req->n_buffers > 0) /* a comm message's binary buffers (widgets' images, arrays) */
        json_object_set_new(cmd, "buffers", wire_blobs_to_base64(req->buffers, req->n_buffers));
    if (strncmp(kind, "comm_", 5) == 0 && json_is_object(req->metadata))
        json_object_set(cmd, "metadata", req->metadata); /* ipywidgets' protocol version */
    json_object_set(cmd, "parent_header", req->header);  /* as send_cell's */
    if (executor_send(k->sup.exec, cmd) != EXECUTOR_OK)
        log_warn("executor did not take the %s command; waiting for its exit", kind);
    json_decref(cmd);
}

void execution_pump(struct kernel *k)
{
    while (k->active.msg == NULL && k->queue_head != NULL) {
        enum executor_state st = executor_state(k->sup.exec);
        if (st == EXECUTOR_STOPPED) {
            char failure[2048];
            if (supervisor_take_start_failure(&k->sup, failure, sizeof failure)) {
                /* The last start failed: answer what waited, then try again for the next. */
                char reason[2300];
                snprintf(reason, sizeof reason,
                         "The Python executor could not start: %s. Check the python path in "
                         "the sparkernel kernelspec (kernel.json, --python) and that IPython "
                         "is installed there; the next cell tries again.",
                         failure);
                utf8_trim(reason);
                struct wire_msg *req = dequeue(k);
                k->last_parent = (json_decref(k->last_parent), json_incref(req->header));
                iopub_status(k, "busy", req->header);
                fail_request(k, req, "ExecutorStartError", reason);
                continue;
            }
            supervisor_start(&k->sup);
            return;
        }
        if (st != EXECUTOR_READY || (k->ext.holds_queue && k->ext.holds_queue(k, k->ext.self)))
            return; /* requests wait for the ready event, or for the master's answer */
        if (executor_exited(k->sup.exec)) {
            /* Killed between cells, and its SIGCHLD not handled yet: the request has not
             * reached it, so it waits for the fresh executor instead of failing with it. */
            execution_on_child(k);
            return;
        }
        struct wire_msg *req = dequeue(k);
        k->active.msg = req;
        message_now_iso(k->active.started, sizeof k->active.started);
        json_decref(k->last_parent);
        k->last_parent = json_incref(req->header);
        iopub_status(k, "busy", req->header);
        if (strcmp(req->msg_type, "execute_request") == 0)
            send_execute(k, req);
        else
            send_query(k, req);
    }
}

/* A request answered while a cell runs (kernel_info, interrupt, history...) changes
 * last_parent and must not take the rest of the cell's output with it. */
json_t *execution_output_parent(struct kernel *k)
{
    return k->active.msg ? k->active.msg->header : k->last_parent;
}

static void publish_stream(struct kernel *k, const char *name, const char *text, size_t len)
{
    json_t *content = message_stream(name, text, len);
    if (content != NULL)
        iopub_publish(k, "stream", execution_output_parent(k), content);
}

void execution_on_stream(struct kernel *k, enum executor_stream which)
{
    size_t len;
    int eof;
    char *text = executor_read_stream(k->sup.exec, which, &len, &eof);
    if (text == NULL)
        return;
    if (len > 0) {
        if (executor_state(k->sup.exec) == EXECUTOR_STARTING && k->active.msg == NULL) {
            /* Before the first cell, output is start-up noise or a start failure: log it
             * and keep the tail for the error a waiting cell would get. */
            log_info("executor %s: %.*s", which == EXECUTOR_STDOUT ? "stdout" : "stderr",
                     (int)(len > 400 ? 400 : len), text);
            supervisor_keep_tail(&k->sup, text, len);
        } else {
            publish_stream(k, which == EXECUTOR_STDOUT ? "stdout" : "stderr", text, len);
        }
    }
    free(text);
}

static void drain_streams(struct kernel *k)
{
    for (int which = 0; which < 2; which++)
        for (int i = 0; i < 16 && executor_stream_fd(k->sup.exec, which) >= 0; i++) {
            size_t len;
            int eof;
            char *text = executor_read_stream(k->sup.exec, which, &len, &eof);
            if (text == NULL)
                break;
            if (len > 0)
                publish_stream(k, which == EXECUTOR_STDOUT ? "stdout" : "stderr", text, len);
            free(text);
        }
}

/* A frame the kernel could not read (executor.c counted and logged it). It may have been
 * the running request's reply: a "sync" command queued behind the request tells, since the
 * executor answers commands in order. A stream that cannot be trusted any more ends the
 * executor, and the cell learns why. */
static void on_unreadable(struct kernel *k, json_t *ev)
{
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    if (json_is_true(json_object_get(ev, "fatal"))) {
        char why[160];
        snprintf(why, sizeof why, " after its messages to the kernel became unreadable (%s)",
                 reason);
        supervisor_end(&k->sup, why);
        return;
    }
    if (k->active.msg == NULL)
        return;
    char note[256];
    snprintf(note, sizeof note,
             "sparkernel: a message from the Python executor could not be read (%s) and was "
             "dropped; the kernel's log counts such losses.\n",
             reason);
    publish_stream(k, "stderr", note, strlen(note));
    supervisor_sync(&k->sup);
}

/* The executor has answered every command before the sync: if the running request's reply
 * has not come, it was the frame lost. */
static void on_synced(struct kernel *k, json_t *ev)
{
    json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
    if (k->active.msg == NULL || !supervisor_synced(&k->sup, seq))
        return;
    char evalue[512];
    snprintf(evalue, sizeof evalue,
             "The kernel could not read the Python executor's answer to this request, so the "
             "request ends here without its result (%lu unreadable message(s) from the executor "
             "so far; the kernel's log has the reasons). The executor and its variables are "
             "intact: run the next cell as usual.",
             executor_dropped_frames(k->sup.exec));
    log_error("the reply to %.8s was lost; answering it with an error", k->active.msg->msg_id);
    take_reply(k, error_reply(k, k->active.msg, "ReplyLost", evalue));
}

/* ---------- executor events, one handler each (the table below) ---------- */

static void on_ready(struct kernel *k, json_t *ev)
{
    json_t *li = json_object_get(ev, "language_info");
    if (json_is_object(li)) {
        json_decref(k->language_info);
        k->language_info = json_incref(li);
    }
    k->debugger_missing = json_is_false(json_object_get(ev, "debugger"));
    executor_set_ready(k->sup.exec);
    log_info("executor ready (pid %d)", (int)executor_pid(k->sup.exec));
    supervisor_ready(&k->sup);
    if (k->ext.executor_ready) /* before any cell, so a cell never waits on nothing */
        k->ext.executor_ready(k, k->ext.self);
    execution_pump(k);
}

static void on_stream(struct kernel *k, json_t *ev)
{
    const char *name = json_string_value(json_object_get(ev, "name"));
    json_t *text = json_object_get(ev, "text");
    if (name && json_is_string(text) &&
        (strcmp(name, "stdout") == 0 || strcmp(name, "stderr") == 0))
        publish_stream(k, name, json_string_value(text), json_string_length(text));
}

static void on_display(struct kernel *k, json_t *ev)
{
    int update = json_is_true(json_object_get(ev, "update"));
    json_t *content =
        json_pack("{s:O, s:O, s:O}", "data", json_object_get(ev, "data"), "metadata",
                  json_object_get(ev, "metadata"), "transient", json_object_get(ev, "transient"));
    if (content)
        iopub_publish(k, update ? "update_display_data" : "display_data",
                      execution_output_parent(k), content);
}

static void on_result(struct kernel *k, json_t *ev)
{
    if (k->active.msg == NULL || k->active.silent)
        return;
    json_t *data = json_object_get(ev, "data");
    const char *plain = json_string_value(json_object_get(data, "text/plain"));
    if (plain)
        history_set_output(k->history, k->active.count, plain);
    json_t *content = json_pack("{s:i, s:O, s:O}", "execution_count", k->active.count, "data", data,
                                "metadata", json_object_get(ev, "metadata"));
    if (content)
        iopub_publish(k, "execute_result", execution_output_parent(k), content);
}

static void on_error(struct kernel *k, json_t *ev)
{
    json_t *content =
        json_pack("{s:O, s:O, s:O}", "ename", json_object_get(ev, "ename"), "evalue",
                  json_object_get(ev, "evalue"), "traceback", json_object_get(ev, "traceback"));
    if (content)
        iopub_publish(k, "error", execution_output_parent(k), content);
}

static void on_clear_output(struct kernel *k, json_t *ev)
{
    iopub_publish(k, "clear_output", execution_output_parent(k),
                  json_pack("{s:b}", "wait", json_is_true(json_object_get(ev, "wait"))));
}

static void on_input_request(struct kernel *k, json_t *ev)
{
    if (k->active.msg == NULL || !k->active.allow_stdin) {
        json_t *empty = json_pack("{s:s, s:s}", "type", "input_reply", "value", "");
        executor_send(k->sup.exec, empty);
        json_decref(empty);
        return;
    }
    k->active.awaiting_input = 1;
    json_t *content = json_pack("{s:O, s:b}", "prompt", json_object_get(ev, "prompt"), "password",
                                json_is_true(json_object_get(ev, "password")));
    json_t *header = message_header_new("input_request", k->session);
    wire_send(k->sock[CHANNEL_STDIN], k->auth, k->active.msg->ids, k->active.msg->n_ids, header,
              k->active.msg->header, NULL, content);
    json_decref(header);
    json_decref(content);
}

static void on_reply(struct kernel *k, json_t *ev)
{
    json_t *content = json_object_get(ev, "content");
    if (k->active.msg == NULL || !json_is_object(content)) {
        log_warn("executor reply with no request waiting; dropped");
        return;
    }
    take_reply(k, json_incref(content));
}

static void on_comm(struct kernel *k, json_t *ev)
{
    const char *mt = json_string_value(json_object_get(ev, "msg_type"));
    json_t *content = json_object_get(ev, "content");
    json_t *b64 = json_object_get(ev, "buffers");
    json_t *metadata = json_object_get(ev, "metadata");
    struct wire_blob *buffers = NULL;
    size_t n_buffers = 0;
    if (mt && json_is_object(content) &&
        (strcmp(mt, "comm_open") == 0 || strcmp(mt, "comm_msg") == 0 ||
         strcmp(mt, "comm_close") == 0) &&
        (b64 == NULL || wire_blobs_from_base64(b64, &buffers, &n_buffers) == 0))
        iopub_publish_buffers(k, mt, execution_output_parent(k),
                              json_is_object(metadata) ? json_incref(metadata) : NULL,
                              json_incref(content), buffers, n_buffers);
    else
        log_warn("malformed comm event from the executor dropped");
    wire_blobs_free(buffers, n_buffers);
}

static void on_log(struct kernel *k, json_t *ev)
{
    log_info("executor: %s", json_string_value(json_object_get(ev, "message")));
}

/* What the executor sends (DESIGN.md, "executor -> kernel"); any other type is offered to
 * the extension. */
static const struct {
    const char *type;
    void (*handle)(struct kernel *k, json_t *ev);
} event_handlers[] = {
    {"ready", on_ready},
    {"stream", on_stream},
    {"display", on_display},
    {"result", on_result},
    {"error", on_error},
    {"clear_output", on_clear_output},
    {"input_request", on_input_request},
    {"reply", on_reply},
    {EXECUTOR_EVENT_UNREADABLE, on_unreadable},
    {"synced", on_synced},
    {"comm", on_comm},
    {"debug_reply", debugger_on_reply},
    {"debug_event", debugger_on_event},
    {"log", on_log},
};

static void on_event(struct kernel *k, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (type == NULL) {
        log_warn("executor event without a type dropped");
        return;
    }
    for (size_t i = 0; i < sizeof event_handlers / sizeof event_handlers[0]; i++) {
        if (strcmp(type, event_handlers[i].type) == 0) {
            event_handlers[i].handle(k, ev);
            return;
        }
    }
    if (k->ext.event && k->ext.event(k, k->ext.self, type, ev))
        execution_pump(k);
    else
        log_warn("unknown executor event %.32s dropped", type);
}

static int handle_events(struct kernel *k)
{
    int rc = executor_read_events(k->sup.exec);
    json_t *ev;
    while ((ev = executor_next_event(k->sup.exec)) != NULL) {
        drain_streams(k); /* output written before the event goes out before it */
        on_event(k, ev);
        json_decref(ev);
    }
    return rc;
}

void execution_on_events(struct kernel *k)
{
    if (handle_events(k) != EXECUTOR_OK)
        execution_on_child(k); /* end of the event stream: the executor is going away */
}

void execution_on_child(struct kernel *k)
{
    int status = 0;
    if (executor_state(k->sup.exec) == EXECUTOR_STOPPED)
        return;
    int reaped = executor_reap(k->sup.exec, &status);
    if (!reaped && executor_event_fd(k->sup.exec) >= 0)
        return; /* another child (none expected), or a signal racing the exit */
    /* Its last events (a traceback, a reply) come before the news of its death. */
    for (int i = 0; reaped && i < 64 && executor_event_fd(k->sup.exec) >= 0; i++)
        if (handle_events(k) != EXECUTOR_OK)
            break;
    if (!reaped)
        executor_wait(k->sup.exec, 1000, &status); /* closed its events: it is going away */
    /* Whatever it wrote last belongs to the cell it dies in. */
    drain_streams(k);
    char how[128];
    executor_describe_status(status, how, sizeof how);
    int was_ready = executor_state(k->sup.exec) == EXECUTOR_READY;
    executor_cleanup(k->sup.exec);
    supervisor_sync_done(&k->sup);
    debugger_fail_all(k, "the kernel's Python process ended (its variables and breakpoints are "
                         "gone); start the debugger again");
    if (k->ext.executor_died)
        k->ext.executor_died(k, k->ext.self);
    /* A reply held for the last look at the cell's jobs: the cell ended before the death,
     * and is answered with its own reply. */
    json_t *held = k->held_reply;
    k->held_reply = NULL;
    if (held != NULL && k->active.msg != NULL)
        finish_current(k, held);
    else
        json_decref(held);
    enum supervisor_next next = supervisor_exited(&k->sup, status, was_ready, how);
    if (next == SUPERVISOR_RESTART)
        return;
    if (k->active.msg != NULL) {
        char evalue[768];
        snprintf(evalue, sizeof evalue,
                 "The Python executor %s%s while this request ran. Its variables and imports are "
                 "lost (and any Spark session it held is stopped); the kernel is still up and the "
                 "next cell starts a fresh executor. If this repeats, the cell may need more "
                 "memory than the machine has (look for the OOM killer in the system log).",
                 how, k->sup.death_cause);
        struct wire_msg *req = k->active.msg;
        k->active.msg = NULL;
        fail_request(k, req, "ExecutorDied", evalue);
    }
    if (was_ready)
        supervisor_start(&k->sup); /* a fresh one, warming in the background */
    else
        execution_pump(k);
}

int execution_shutdown(struct kernel *k)
{
    if (k->active.msg != NULL)
        executor_interrupt(k->sup.exec);
    /* A ready executor stops its Spark session after the kernel has exited: the client
     * waits for the kernel's exit (nbconvert, papermill and a restart in JupyterLab all
     * do), not for Spark's seconds of stopping. A starting one does not read its command
     * pipe until its imports are done: SIGTERM at once. */
    int detached = executor_detach(k->sup.exec);
    if (!detached)
        executor_stop(k->sup.exec, 0);
    struct wire_msg *m;
    while ((m = dequeue(k)) != NULL)
        wire_msg_destroy(&m);
    wire_msg_destroy(&k->active.msg);
    return detached;
}

/* ---------- the executor as one of the loop's event sources ---------- */

static int executor_source_fds(void *self, struct kernel_fd *out, int max)
{
    struct kernel *k = self;
    int fds[5] = {executor_event_fd(k->sup.exec), executor_stream_fd(k->sup.exec, EXECUTOR_STDOUT),
                  executor_stream_fd(k->sup.exec, EXECUTOR_STDERR), executor_write_fd(k->sup.exec),
                  executor_control_write_fd(k->sup.exec)};
    int n = 0;
    for (int i = 0; i < 5 && n < max; i++)
        if (fds[i] >= 0)
            out[n++] = (struct kernel_fd){fds[i], i < 3 ? KERNEL_FD_READ : KERNEL_FD_WRITE, 0};
    return n;
}

/* Streams first, then events (output written before an event goes out before it), then
 * what waits to be written. */
static void executor_source_run(void *self, const struct kernel_fd *fds, int n)
{
    struct kernel *k = self;
    int out = 0, err = 0, ev = 0, flush = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i].revents == 0)
            continue;
        if (fds[i].fd == executor_stream_fd(k->sup.exec, EXECUTOR_STDOUT))
            out = 1;
        else if (fds[i].fd == executor_stream_fd(k->sup.exec, EXECUTOR_STDERR))
            err = 1;
        else if (fds[i].fd == executor_event_fd(k->sup.exec))
            ev = 1;
        else if (fds[i].events & KERNEL_FD_WRITE)
            flush = 1; /* an error: the child is gone, its SIGCHLD follows */
    }
    if (out)
        execution_on_stream(k, EXECUTOR_STDOUT);
    if (err)
        execution_on_stream(k, EXECUTOR_STDERR);
    if (ev)
        execution_on_events(k);
    if (flush)
        executor_flush(k->sup.exec);
}

int execution_add_source(struct kernel *k)
{
    struct kernel_source src = {
        .name = "executor", .self = k, .fds = executor_source_fds, .run = executor_source_run};
    return kernel_add_source(k, &src);
}

/* ---------- extension.h: what the core offers an extension ---------- */

void kernel_publish_output(struct kernel *k, const char *msg_type, json_t *content)
{
    iopub_publish(k, msg_type, execution_output_parent(k), content);
}

static int sent(int rc, const char *what)
{
    if (rc == EXECUTOR_OK)
        return 0;
    log_warn("the executor did not take a command on its %s pipe: %s", what, executor_strerror(rc));
    return -1;
}

int kernel_send_executor(struct kernel *k, json_t *cmd)
{
    return sent(executor_send(k->sup.exec, cmd), "command");
}

int kernel_control_executor(struct kernel *k, json_t *cmd)
{
    return sent(executor_control(k->sup.exec, cmd), "control");
}

void kernel_resume_queue(struct kernel *k)
{
    execution_pump(k);
}

int kernel_cell_running(const struct kernel *k)
{
    return k->active.msg != NULL;
}

const char *kernel_session_id(const struct kernel *k)
{
    return k->session;
}
