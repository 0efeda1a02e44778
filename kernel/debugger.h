/* debugger: debug_request / debug_reply / debug_event, forwarded to and from debugpy in the
 * executor (driver/python/sparkernel_executor/debugger.py) without blocking the loop. */
#ifndef SPARKERNEL_DEBUGGER_H
#define SPARKERNEL_DEBUGGER_H

#include <jansson.h>

struct kernel;
struct wire_msg;

/* Takes ownership of msg (a control debug_request): publishes busy, forwards it, and
 * answers it later (debugger_on_reply) or at once with a DAP failure. */
void debugger_request(struct kernel *k, struct wire_msg *msg);
/* The executor's {"type": "debug_reply", "id", "content"} (borrowed): the waiting request's
 * debug_reply, then its idle. Unknown ids are logged and dropped. */
void debugger_on_reply(struct kernel *k, json_t *ev);
/* The executor's {"type": "debug_event", "content"} (borrowed): a debug_event on iopub. */
void debugger_on_event(struct kernel *k, json_t *ev);
/* Every waiting request gets a DAP failure saying why (the executor is gone). */
void debugger_fail_all(struct kernel *k, const char *why);
/* Frees what waits without answering (the kernel is closing). */
void debugger_clear(struct kernel *k);

#endif
