/* heartbeat: the echo socket on its own thread, so a busy loop never looks like a dead
 * kernel to the client. */
#ifndef SPARKERNEL_HEARTBEAT_H
#define SPARKERNEL_HEARTBEAT_H

/* The largest ping echoed (jupyter_client sends a few dozen bytes); a bigger message ends
 * its sender's connection. */
#define HEARTBEAT_MAX_MSG 4096

struct heartbeat;

/* Binds endpoint and starts the thread. Returns a new object or NULL (errno set). */
struct heartbeat *heartbeat_new(void *zmq_ctx, const char *endpoint);
/* Stops the thread and closes the socket. Accepts NULL. */
void heartbeat_destroy(struct heartbeat **self);

#endif
