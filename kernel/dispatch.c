/* dispatch: one handler per msg_type. Requests that need the Python executor go to the
 * execution queue; everything else is answered here at once, even while a cell runs or the
 * executor is still starting. Every request gets busy/idle on iopub. */
#include "debugger.h"
#include "kernel.h"
#include "log.h"
#include "message.h"
#include "redact.h"

#include <stdio.h>
#include <string.h>

const char *dispatch_reply_type(const char *request_type, char *buf, size_t len)
{
    size_t n = strlen(request_type);
    const char *suffix = "_request";
    size_t s = strlen(suffix);
    if (n > s && strcmp(request_type + n - s, suffix) == 0)
        snprintf(buf, len, "%.*s_reply", (int)(n - s), request_type);
    else
        snprintf(buf, len, "%s_reply", request_type);
    return buf;
}

void dispatch_reply(struct kernel *k, void *sock, const struct wire_msg *req,
                    const char *reply_type, json_t *content, json_t *metadata)
{
    json_t *header = message_header_new(reply_type, k->session);
    redact_json(content); /* user_expressions, inspect and completion data: a cell's values */
    if (wire_send(sock, k->auth, req->ids, req->n_ids, header, req->header, metadata, content) !=
        WIRE_OK)
        log_warn("%s for %.8s not delivered (client gone?)", reply_type, req->msg_id);
    json_decref(header);
    json_decref(content);
    json_decref(metadata);
}

static json_t *help_links(void)
{
    return json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "text", "Python Reference", "url",
                     "https://docs.python.org/3/", "text", "IPython Reference", "url",
                     "https://ipython.readthedocs.io/en/stable/", "text", "PySpark", "url",
                     "https://spark.apache.org/docs/latest/api/python/", "text",
                     "Spark Programming Guide", "url",
                     "https://spark.apache.org/docs/latest/rdd-programming-guide.html");
}

static void on_kernel_info(struct kernel *k, void *sock, struct wire_msg *req)
{
    json_t *li = execution_language_info(k);
    const char *pyver = json_string_value(json_object_get(li, "version"));
    char banner[512];
    snprintf(banner, sizeof banner,
             "sparkernel %s: PySpark on a Spark standalone cluster (Python %s, IPython)\n"
             "Magics: %%spark status | config | restart | ui",
             SPARKERNEL_VERSION, pyver ? pyver : "3");
    /* The debugger through debugpy in the executor, unless it said debugpy is missing;
     * "debugger" is protocol 5.3's flag, supported_features 5.4's (ipykernel 7 sends the
     * latter, JupyterLab reads either). No kernel subshells. */
    int debugger = !k->debugger_missing;
    json_t *content =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:b, s:o}", "status", "ok",
                  "protocol_version", MESSAGE_PROTOCOL_VERSION, "implementation", "sparkernel",
                  "implementation_version", SPARKERNEL_VERSION, "language_info", li, "banner",
                  banner, "help_links", help_links(), "debugger", debugger, "supported_features",
                  debugger ? json_pack("[s]", "debugger") : json_array());
    dispatch_reply(k, sock, req, "kernel_info_reply", content, NULL);
}

static void on_history(struct kernel *k, void *sock, struct wire_msg *req)
{
    json_t *hist = history_query(k->history, req->content);
    dispatch_reply(k, sock, req, "history_reply",
                   json_pack("{s:s, s:o}", "status", "ok", "history", hist), NULL);
}

void dispatch_interrupt(struct kernel *k)
{
    if (k->current != NULL && executor_state(k->exec) == EXECUTOR_READY) {
        log_info("interrupting the running request (%s)", k->current->msg_type);
        executor_interrupt(k->exec);
    } else {
        log_info("interrupt with nothing running");
    }
}

static void on_shutdown(struct kernel *k, void *sock, struct wire_msg *req)
{
    int restart = json_is_true(json_object_get(req->content, "restart"));
    log_info("shutdown requested (restart=%s)", restart ? "true" : "false");
    json_t *content = json_pack("{s:s, s:b}", "status", "ok", "restart", restart);
    iopub_publish(k, "shutdown_reply", req->header, json_incref(content));
    dispatch_reply(k, sock, req, "shutdown_reply", content, NULL);
    k->running = 0;
}

/* Comms live in the executor (its CommManager, as ipykernel's): their messages and
 * comm_info wait in the queue like a cell, as in ipykernel's shell. */
int dispatch_needs_executor(const char *t)
{
    return strcmp(t, "execute_request") == 0 || strcmp(t, "complete_request") == 0 ||
           strcmp(t, "inspect_request") == 0 || strcmp(t, "is_complete_request") == 0 ||
           strcmp(t, "comm_info_request") == 0 || strcmp(t, "comm_open") == 0 ||
           strcmp(t, "comm_msg") == 0 || strcmp(t, "comm_close") == 0;
}

/* A comm message is a one-way message: no reply. */
int dispatch_has_reply(const char *t)
{
    return strncmp(t, "comm_", 5) != 0 || strcmp(t, "comm_info_request") == 0;
}

void dispatch_message(struct kernel *k, enum channel ch, struct wire_msg *msg)
{
    const char *t = msg->msg_type;
    void *sock = k->sock[ch];
    if (ch == CHANNEL_SHELL && dispatch_needs_executor(t)) {
        execution_enqueue(k, msg); /* takes ownership */
        return;
    }
    json_decref(k->last_parent);
    k->last_parent = json_incref(msg->header);
    if (ch == CHANNEL_CONTROL && strcmp(t, "debug_request") == 0) {
        debugger_request(k, msg); /* busy now, its reply and idle when debugpy answers */
        return;
    }
    iopub_status(k, "busy", msg->header);
    if (strcmp(t, "kernel_info_request") == 0) {
        on_kernel_info(k, sock, msg);
    } else if (strcmp(t, "shutdown_request") == 0) {
        on_shutdown(k, sock, msg);
    } else if (strcmp(t, "interrupt_request") == 0) {
        dispatch_interrupt(k);
        dispatch_reply(k, sock, msg, "interrupt_reply", json_pack("{s:s}", "status", "ok"), NULL);
    } else if (ch == CHANNEL_SHELL && strcmp(t, "history_request") == 0) {
        on_history(k, sock, msg);
    } else if (ch == CHANNEL_CONTROL && strstr(t, "_request") != NULL) {
        /* Control requests this kernel does not implement (subshells): an error reply, so
         * a client never waits for an answer that will not come. */
        char reply_type[96];
        dispatch_reply(k, sock, msg, dispatch_reply_type(t, reply_type, sizeof reply_type),
                       json_pack("{s:s, s:s, s:s, s:[]}", "status", "error", "ename",
                                 "NotImplemented", "evalue", "not supported by sparkernel",
                                 "traceback"),
                       NULL);
    } else {
        log_warn("unknown message type %.64s on %s ignored", t,
                 ch == CHANNEL_SHELL ? "shell" : "control");
    }
    iopub_status(k, "idle", msg->header);
    wire_msg_destroy(&msg);
}
