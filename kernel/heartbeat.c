/* heartbeat: a ROUTER socket proxied onto itself echoes every ping back to its sender;
 * zmq_proxy_steerable's control socket stops it. */
#include "heartbeat.h"

#include <stdint.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

struct heartbeat {
    void *ctx;
    void *sock;
    void *ctl_back; /* proxy's end of the control pair */
    void *ctl_front;
    pthread_t thread;
    char inproc[64];
};

static void *heartbeat_run(void *arg)
{
    struct heartbeat *hb = arg;
    zmq_proxy_steerable(hb->sock, hb->sock, NULL, hb->ctl_back);
    return NULL;
}

struct heartbeat *heartbeat_new(void *zmq_ctx, const char *endpoint)
{
    static int seq;
    struct heartbeat *hb = calloc(1, sizeof *hb);
    if (hb == NULL)
        return NULL;
    hb->ctx = zmq_ctx;

    snprintf(hb->inproc, sizeof hb->inproc, "inproc://sparkernel-hb-%d", seq++);
    int linger = 0;
    hb->sock = zmq_socket(zmq_ctx, ZMQ_ROUTER);
    hb->ctl_back = zmq_socket(zmq_ctx, ZMQ_PAIR);
    hb->ctl_front = zmq_socket(zmq_ctx, ZMQ_PAIR);
    if (hb->sock == NULL || hb->ctl_back == NULL || hb->ctl_front == NULL)
        goto fail;
    zmq_setsockopt(hb->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* A ping is a few dozen bytes; anyone may connect, and a peer sending more is cut off
     * rather than have its message held in memory and echoed back. */
    int64_t max_msg = HEARTBEAT_MAX_MSG;
    zmq_setsockopt(hb->sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
    zmq_setsockopt(hb->ctl_front, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(hb->ctl_back, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(hb->sock, endpoint) != 0 || zmq_bind(hb->ctl_back, hb->inproc) != 0 ||
        zmq_connect(hb->ctl_front, hb->inproc) != 0)
        goto fail;
    if (pthread_create(&hb->thread, NULL, heartbeat_run, hb) != 0)
        goto fail;
    return hb;
fail:
    if (hb->sock)
        zmq_close(hb->sock);
    if (hb->ctl_back)
        zmq_close(hb->ctl_back);
    if (hb->ctl_front)
        zmq_close(hb->ctl_front);
    free(hb);
    return NULL;
}

void heartbeat_destroy(struct heartbeat **self)
{
    if (self == NULL || *self == NULL)
        return;
    struct heartbeat *hb = *self;
    zmq_send(hb->ctl_front, "TERMINATE", 9, 0);
    pthread_join(hb->thread, NULL);
    zmq_close(hb->sock);
    zmq_close(hb->ctl_back);
    zmq_close(hb->ctl_front);
    free(hb);
    *self = NULL;
}
