/* iopub: the XPUB broadcast socket. XPUB (not PUB) so the kernel sees each subscription
 * and can send the iopub_welcome of protocol 5.5: a client that gets it knows it will not
 * miss the replies to the requests it sends next. */
#include "kernel.h"
#include "log.h"
#include "message.h"
#include "redact.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

void iopub_publish(struct kernel *k, const char *msg_type, json_t *parent, json_t *content)
{
    iopub_publish_buffers(k, msg_type, parent, NULL, content, NULL, 0);
}

void iopub_publish_buffers(struct kernel *k, const char *msg_type, json_t *parent, json_t *metadata,
                           json_t *content, const struct wire_blob *buffers, size_t n_buffers)
{
    /* Subscriptions that came in since the loop last looked are applied (and greeted) first:
     * in manual mode nothing else would, and a client that subscribed before sending its
     * request must get that request's busy/idle, as libzmq's automatic mode gave it. */
    if (!k->iopub_greeting)
        iopub_handle_subscriptions(k);
    redact_json(content); /* no output shows a secret */
    redact_json(metadata);
    char topic[128];
    snprintf(topic, sizeof topic, "kernel.%s.%s", k->session, msg_type);
    struct wire_blob id = {topic, strlen(topic)};
    json_t *header = message_header_new(msg_type, k->session);
    if (wire_send_buffers(k->sock[CHANNEL_IOPUB], k->auth, &id, 1, header, parent, metadata,
                          content, buffers, n_buffers) != WIRE_OK)
        log_debug("iopub %s not sent (no subscriber or high-water mark)", msg_type);
    json_decref(header);
    json_decref(metadata);
    json_decref(content);
}

void iopub_status(struct kernel *k, const char *state, json_t *parent)
{
    iopub_publish(k, "status", parent, message_status(state));
}

/* The socket is in ZMQ_XPUB_MANUAL mode (loop.c): each (un)subscription read here is applied
 * to the pipe it came from with ZMQ_SUBSCRIBE / ZMQ_UNSUBSCRIBE, which libzmq binds to the
 * last message received. Until then that subscriber matches nothing, so nothing published
 * before its welcome can overtake it. */
void iopub_handle_subscriptions(struct kernel *k)
{
    void *sock = k->sock[CHANNEL_IOPUB];
    k->iopub_greeting = 1;
    for (int i = 0; i < 64; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        const unsigned char *data = zmq_msg_data(&msg);
        size_t n = zmq_msg_size(&msg);
        if (n == 0 || (data[0] != 0 && data[0] != 1)) { /* not a subscription event */
            zmq_msg_close(&msg);
            continue;
        }
        const char *topic = (const char *)data + 1;
        size_t topic_len = n - 1;
        if (data[0] == 0) {
            zmq_setsockopt(sock, ZMQ_UNSUBSCRIBE, topic, topic_len);
            zmq_msg_close(&msg);
            continue;
        }
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, topic_len);
        json_t *content = json_pack("{s:s%}", "subscription", topic, topic_len);
        if (content == NULL) /* a topic that is not UTF-8: greet with the empty topic */
            content = json_pack("{s:s}", "subscription", "");
        log_debug("iopub subscription (%zu bytes): sending iopub_welcome", topic_len);
        zmq_msg_close(&msg);
        iopub_publish(k, "iopub_welcome", NULL, content);
    }
    k->iopub_greeting = 0;
}
