/* dispatch: a table of msg_type -> route and handler. Requests that need the Python
 * executor go to the execution queue; everything else is answered here at once, even while
 * a cell runs or the executor is still starting. Every request gets busy/idle on iopub. */
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
    return json_pack("[{s:s,s:s},{s:s,s:s}]", "text", "Python Reference", "url",
                     "https://docs.python.org/3/", "text", "IPython Reference", "url",
                     "https://ipython.readthedocs.io/en/stable/");
}

static void on_kernel_info(struct kernel *k, void *sock, struct wire_msg *req)
{
    json_t *li = execution_language_info(k);
    const char *pyver = json_string_value(json_object_get(li, "version"));
    char banner[512];
    snprintf(banner, sizeof banner, "sparkernel %s (Python %s, IPython)", SPARKERNEL_VERSION,
             pyver ? pyver : "3");
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
    if (k->ext.kernel_info)
        k->ext.kernel_info(k, k->ext.self, content);
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
    if (k->active.msg != NULL && executor_state(k->sup.exec) == EXECUTOR_READY) {
        log_info("interrupting the running request (%s)", k->active.msg->msg_type);
        executor_interrupt(k->sup.exec);
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

static void on_interrupt(struct kernel *k, void *sock, struct wire_msg *req)
{
    dispatch_interrupt(k);
    dispatch_reply(k, sock, req, "interrupt_reply", json_pack("{s:s}", "status", "ok"), NULL);
}

/* Control requests this kernel does not implement (subshells): an error reply, so a client
 * never waits for an answer that will not come. */
static void on_unsupported(struct kernel *k, void *sock, struct wire_msg *req)
{
    char reply_type[96];
    dispatch_reply(k, sock, req, dispatch_reply_type(req->msg_type, reply_type, sizeof reply_type),
                   json_pack("{s:s, s:s, s:s, s:[]}", "status", "error", "ename", "NotImplemented",
                             "evalue", "not supported by sparkernel", "traceback"),
                   NULL);
}

#define ON_SHELL   (1u << CHANNEL_SHELL)
#define ON_CONTROL (1u << CHANNEL_CONTROL)

enum route {
    ROUTE_HERE,     /* answered by handler, between busy and idle */
    ROUTE_EXECUTOR, /* queued for the executor (shell only); comms live there, as in
                     * ipykernel's shell, and wait in the queue like a cell */
    ROUTE_DEBUGGER, /* busy now, reply and idle when debugpy answers */
};

struct route_entry {
    const char *msg_type;
    unsigned channels;
    enum route route;
    int has_reply; /* a comm message is one-way */
    void (*handler)(struct kernel *k, void *sock, struct wire_msg *req);
};

static const struct route_entry routes[] = {
    {"kernel_info_request", ON_SHELL | ON_CONTROL, ROUTE_HERE, 1, on_kernel_info},
    {"shutdown_request", ON_SHELL | ON_CONTROL, ROUTE_HERE, 1, on_shutdown},
    {"interrupt_request", ON_SHELL | ON_CONTROL, ROUTE_HERE, 1, on_interrupt},
    {"history_request", ON_SHELL, ROUTE_HERE, 1, on_history},
    {"debug_request", ON_CONTROL, ROUTE_DEBUGGER, 1, NULL},
    {"execute_request", ON_SHELL, ROUTE_EXECUTOR, 1, NULL},
    {"complete_request", ON_SHELL, ROUTE_EXECUTOR, 1, NULL},
    {"inspect_request", ON_SHELL, ROUTE_EXECUTOR, 1, NULL},
    {"is_complete_request", ON_SHELL, ROUTE_EXECUTOR, 1, NULL},
    {"comm_info_request", ON_SHELL, ROUTE_EXECUTOR, 1, NULL},
    {"comm_open", ON_SHELL, ROUTE_EXECUTOR, 0, NULL},
    {"comm_msg", ON_SHELL, ROUTE_EXECUTOR, 0, NULL},
    {"comm_close", ON_SHELL, ROUTE_EXECUTOR, 0, NULL},
};

static const struct route_entry *route_of(const char *t, enum channel ch)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if ((routes[i].channels & (1u << ch)) && strcmp(routes[i].msg_type, t) == 0)
            return &routes[i];
    return NULL;
}

int dispatch_needs_executor(const char *t)
{
    const struct route_entry *r = route_of(t, CHANNEL_SHELL);
    return r != NULL && r->route == ROUTE_EXECUTOR;
}

int dispatch_has_reply(const char *t)
{
    const struct route_entry *r = route_of(t, CHANNEL_SHELL);
    return r == NULL || r->has_reply;
}

void dispatch_message(struct kernel *k, enum channel ch, struct wire_msg *msg)
{
    const char *t = msg->msg_type;
    const struct route_entry *r = route_of(t, ch);
    if (r != NULL && r->route == ROUTE_EXECUTOR) {
        execution_enqueue(k, msg); /* takes ownership */
        return;
    }
    json_decref(k->last_parent);
    k->last_parent = json_incref(msg->header);
    if (r != NULL && r->route == ROUTE_DEBUGGER) {
        debugger_request(k, msg);
        return;
    }
    iopub_status(k, "busy", msg->header);
    if (r != NULL)
        r->handler(k, k->sock[ch], msg);
    else if (ch == CHANNEL_CONTROL && strstr(t, "_request") != NULL)
        on_unsupported(k, k->sock[ch], msg);
    else
        log_warn("unknown message type %.64s on %s ignored", t,
                 ch == CHANNEL_SHELL ? "shell" : "control");
    iopub_status(k, "idle", msg->header);
    wire_msg_destroy(&msg);
}
