/* debugger: the JupyterLab debugger's messages, carried between the control channel and
 * debugpy inside the executor. A debug_request goes to the executor's control pipe, which
 * a thread of its own reads at any time (a cell may be stopped at a breakpoint); the loop
 * never waits for the answer. The request is remembered by a number, and its debug_reply is
 * sent when the executor's answer with that number comes back: other control requests are
 * answered meanwhile, and every debug_request gets exactly one reply, a DAP failure when
 * the executor cannot answer (not started, gone). debug_event goes to iopub. */
#include "debugger.h"

#include "kernel.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

struct debug_wait {
    unsigned id;
    struct wire_msg *req; /* owned */
    struct debug_wait *next;
};

/* A DAP response saying the request failed, as debugpy words its own failures. */
static json_t *dap_failure(const struct wire_msg *req, const char *why)
{
    json_t *seq = json_object_get(req->content, "seq");
    const char *command = json_string_value(json_object_get(req->content, "command"));
    return json_pack("{s:s, s:i, s:O, s:b, s:s, s:s}", "type", "response", "seq", 0, "request_seq",
                     seq ? seq : json_null(), "success", 0, "command", command ? command : "",
                     "message", why);
}

static void answer(struct kernel *k, struct wire_msg *req, json_t *content)
{
    dispatch_reply(k, k->sock[CHANNEL_CONTROL], req, "debug_reply", content, NULL);
    iopub_status(k, "idle", req->header);
    wire_msg_destroy(&req);
}

void debugger_request(struct kernel *k, struct wire_msg *msg)
{
    iopub_status(k, "busy", msg->header);
    json_decref(k->debug_parent);
    k->debug_parent = json_incref(msg->header);
    if (!json_is_object(msg->content) ||
        !json_is_string(json_object_get(msg->content, "command"))) {
        answer(k, msg, dap_failure(msg, "a debug_request's content must be a DAP request"));
        return;
    }
    if (executor_state(k->sup.exec) == EXECUTOR_STOPPED) {
        answer(k, msg,
               dap_failure(msg, "the kernel's Python process is not running (it failed to "
                                "start: run a cell to see why)"));
        return;
    }
    struct debug_wait *w = calloc(1, sizeof *w);
    json_t *cmd = NULL;
    if (w != NULL) {
        w->id = ++k->debug_seq;
        cmd = json_pack("{s:s, s:I, s:O}", "type", "debug_request", "id", (json_int_t)w->id,
                        "content", msg->content);
    }
    if (cmd == NULL || executor_control(k->sup.exec, cmd) != EXECUTOR_OK) {
        json_decref(cmd);
        free(w);
        answer(k, msg, dap_failure(msg, "the kernel could not reach its Python process"));
        return;
    }
    json_decref(cmd);
    w->req = msg;
    w->next = k->debug_waits;
    k->debug_waits = w;
}

static struct wire_msg *take_wait(struct kernel *k, unsigned id)
{
    for (struct debug_wait **p = &k->debug_waits; *p != NULL; p = &(*p)->next) {
        if ((*p)->id != id)
            continue;
        struct debug_wait *w = *p;
        struct wire_msg *req = w->req;
        *p = w->next;
        free(w);
        return req;
    }
    return NULL;
}

void debugger_on_reply(struct kernel *k, json_t *ev)
{
    json_t *id = json_object_get(ev, "id");
    struct wire_msg *req =
        json_is_integer(id) ? take_wait(k, (unsigned)json_integer_value(id)) : NULL;
    if (req == NULL) {
        log_warn("a debug reply for no waiting request dropped");
        return;
    }
    json_t *content = json_object_get(ev, "content");
    answer(k, req,
           json_is_object(content) ? json_incref(content)
                                   : dap_failure(req, "the debugger sent an unreadable answer"));
}

void debugger_on_event(struct kernel *k, json_t *ev)
{
    json_t *content = json_object_get(ev, "content");
    if (!json_is_object(content)) {
        log_warn("a malformed debug event from the executor dropped");
        return;
    }
    iopub_publish(k, "debug_event", k->debug_parent, json_incref(content));
}

void debugger_fail_all(struct kernel *k, const char *why)
{
    while (k->debug_waits != NULL) {
        struct debug_wait *w = k->debug_waits;
        k->debug_waits = w->next;
        struct wire_msg *req = w->req;
        free(w);
        answer(k, req, dap_failure(req, why));
    }
}

void debugger_clear(struct kernel *k)
{
    while (k->debug_waits != NULL) {
        struct debug_wait *w = k->debug_waits;
        k->debug_waits = w->next;
        wire_msg_destroy(&w->req);
        free(w);
    }
    json_decref(k->debug_parent);
    k->debug_parent = NULL;
}
