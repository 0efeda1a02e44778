/* iopub: the XPUB broadcast socket. XPUB (not PUB) so the kernel sees each subscription
 * and can send the iopub_welcome of protocol 5.5: a client that gets it knows it will not
 * miss the replies to the requests it sends next. */
#include "kernel.h"
#include "log.h"
#include "message.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

void iopub_publish(struct kernel *k, const char *msg_type, json_t *parent, json_t *content)
{
    char topic[128];
    snprintf(topic, sizeof topic, "kernel.%s.%s", k->session, msg_type);
    struct wire_blob id = {topic, strlen(topic)};
    json_t *header = message_header_new(msg_type, k->session);
    if (wire_send(k->sock[CHANNEL_IOPUB], k->auth, &id, 1, header, parent, NULL, content) !=
        WIRE_OK)
        log_debug("iopub %s not sent (no subscriber or high-water mark)", msg_type);
    json_decref(header);
    json_decref(content);
}

void iopub_status(struct kernel *k, const char *state, json_t *parent)
{
    iopub_publish(k, "status", parent, message_status(state));
}

void iopub_handle_subscriptions(struct kernel *k)
{
    for (int i = 0; i < 64; i++) {
        char buf[256];
        int n = zmq_recv(k->sock[CHANNEL_IOPUB], buf, sizeof buf, ZMQ_DONTWAIT);
        if (n < 0)
            return;
        if (n == 0 || n > (int)sizeof buf)
            continue;
        if (buf[0] != 1) /* unsubscribe */
            continue;
        json_t *content = json_pack("{s:s%}", "subscription", buf + 1, (size_t)(n - 1));
        if (content == NULL) /* a topic that is not UTF-8: greet with the empty topic */
            content = json_pack("{s:s}", "subscription", "");
        log_debug("iopub subscription (%d bytes): sending iopub_welcome", n - 1);
        iopub_publish(k, "iopub_welcome", NULL, content);
    }
}
