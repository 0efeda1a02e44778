/* wire: the Jupyter wire format. Signature check happens before any JSON is parsed, so a
 * forged message costs one HMAC and never reaches the JSON parser. */
#include "wire.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

const char *wire_strerror(int code)
{
    switch (code) {
    case WIRE_NOTHING:
        return "nothing waiting";
    case WIRE_OK:
        return "ok";
    case WIRE_ENODELIM:
        return "no <IDS|MSG> delimiter";
    case WIRE_ETOOFEW:
        return "too few frames after the delimiter";
    case WIRE_ESIG:
        return "bad signature";
    case WIRE_EREPLAY:
        return "replayed signature";
    case WIRE_EJSON:
        return "invalid JSON in a frame";
    case WIRE_ETYPE:
        return "wrong JSON types (header, parent, metadata and content must be objects; "
               "header needs msg_type and msg_id strings)";
    case WIRE_ETOOBIG:
        return "message too large or with too many frames";
    case WIRE_ENOMEM:
        return "out of memory";
    case WIRE_ESEND:
        return "socket send failed";
    }
    return "unknown wire error";
}

static int blob_copy(struct wire_blob *dst, const struct auth_part *src)
{
    dst->len = src->len;
    dst->data = malloc(src->len ? src->len : 1);
    if (dst->data == NULL)
        return -1;
    memcpy(dst->data, src->data, src->len);
    return 0;
}

void wire_msg_destroy(struct wire_msg **self)
{
    if (self == NULL || *self == NULL)
        return;
    struct wire_msg *m = *self;
    for (size_t i = 0; i < m->n_ids; i++)
        free(m->ids[i].data);
    for (size_t i = 0; i < m->n_buffers; i++)
        free(m->buffers[i].data);
    free(m->ids);
    free(m->buffers);
    json_decref(m->header);
    json_decref(m->parent);
    json_decref(m->metadata);
    json_decref(m->content);
    free(m);
    *self = NULL;
}

int wire_parse(struct auth *auth, const struct auth_part *frames, size_t n, size_t max_json,
               struct wire_msg **out)
{
    *out = NULL;
    if (n > WIRE_MAX_FRAMES)
        return WIRE_ETOOBIG;
    size_t delim = n;
    for (size_t i = 0; i < n && i <= WIRE_MAX_IDENTITIES; i++) {
        if (frames[i].len == sizeof WIRE_DELIM - 1 &&
            memcmp(frames[i].data, WIRE_DELIM, frames[i].len) == 0) {
            delim = i;
            break;
        }
    }
    if (delim == n)
        return WIRE_ENODELIM;
    if (n - delim - 1 < 5)
        return WIRE_ETOOFEW;
    const struct auth_part *sig = &frames[delim + 1];
    const struct auth_part *json_frames = &frames[delim + 2];
    for (int i = 0; i < 4; i++)
        if (json_frames[i].len > max_json)
            return WIRE_ETOOBIG;
    int rc = auth_verify(auth, json_frames, 4, sig->data, sig->len);
    if (rc == AUTH_EREPLAY)
        return WIRE_EREPLAY;
    if (rc != AUTH_OK)
        return WIRE_ESIG;

    struct wire_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        return WIRE_ENOMEM;
    json_t **slots[4] = {&m->header, &m->parent, &m->metadata, &m->content};
    for (int i = 0; i < 4; i++) {
        json_error_t err;
        *slots[i] = json_loadb(json_frames[i].data, json_frames[i].len, 0, &err);
        if (*slots[i] == NULL) {
            wire_msg_destroy(&m);
            return WIRE_EJSON;
        }
        if (!json_is_object(*slots[i])) {
            wire_msg_destroy(&m);
            return WIRE_ETYPE;
        }
    }
    m->msg_type = json_string_value(json_object_get(m->header, "msg_type"));
    m->msg_id = json_string_value(json_object_get(m->header, "msg_id"));
    if (m->msg_type == NULL || m->msg_id == NULL || m->msg_type[0] == '\0') {
        wire_msg_destroy(&m);
        return WIRE_ETYPE;
    }
    m->n_ids = delim;
    m->n_buffers = n - delim - 6;
    m->ids = calloc(m->n_ids ? m->n_ids : 1, sizeof *m->ids);
    m->buffers = calloc(m->n_buffers ? m->n_buffers : 1, sizeof *m->buffers);
    if (m->ids == NULL || m->buffers == NULL) {
        wire_msg_destroy(&m);
        return WIRE_ENOMEM;
    }
    for (size_t i = 0; i < m->n_ids; i++)
        if (blob_copy(&m->ids[i], &frames[i]) != 0) {
            m->n_ids = i;
            wire_msg_destroy(&m);
            return WIRE_ENOMEM;
        }
    for (size_t i = 0; i < m->n_buffers; i++)
        if (blob_copy(&m->buffers[i], &frames[delim + 6 + i]) != 0) {
            m->n_buffers = i;
            wire_msg_destroy(&m);
            return WIRE_ENOMEM;
        }
    *out = m;
    return WIRE_OK;
}

void wire_out_clear(struct wire_out *out)
{
    for (int i = 0; i < 4; i++) {
        free(out->json[i]);
        out->json[i] = NULL;
    }
    out->n = 0;
}

int wire_serialize(const struct auth *auth, const struct wire_blob *ids, size_t n_ids,
                   json_t *header, json_t *parent, json_t *metadata, json_t *content,
                   struct wire_out *out)
{
    memset(out, 0, sizeof *out);
    if (n_ids > WIRE_MAX_IDENTITIES)
        return WIRE_ETOOBIG;
    json_t *parts[4] = {header, parent, metadata, content};
    for (int i = 0; i < 4; i++) {
        out->json[i] = parts[i] ? json_dumps(parts[i], JSON_COMPACT) : strdup("{}");
        if (out->json[i] == NULL) {
            wire_out_clear(out);
            return WIRE_ENOMEM;
        }
    }
    struct auth_part signed_parts[4];
    for (int i = 0; i < 4; i++) {
        signed_parts[i].data = out->json[i];
        signed_parts[i].len = strlen(out->json[i]);
    }
    if (auth_sign(auth, signed_parts, 4, out->sig) != AUTH_OK) {
        wire_out_clear(out);
        return WIRE_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++)
        out->frames[k++] = (struct auth_part){ids[i].data, ids[i].len};
    out->frames[k++] = (struct auth_part){WIRE_DELIM, sizeof WIRE_DELIM - 1};
    out->frames[k++] = (struct auth_part){out->sig, strlen(out->sig)};
    for (int i = 0; i < 4; i++)
        out->frames[k++] = signed_parts[i];
    out->n = k;
    return (int)k;
}

int wire_send(void *sock, const struct auth *auth, const struct wire_blob *ids, size_t n_ids,
              json_t *header, json_t *parent, json_t *metadata, json_t *content)
{
    return wire_send_buffers(sock, auth, ids, n_ids, header, parent, metadata, content, NULL, 0);
}

int wire_send_buffers(void *sock, const struct auth *auth, const struct wire_blob *ids,
                      size_t n_ids, json_t *header, json_t *parent, json_t *metadata,
                      json_t *content, const struct wire_blob *buffers, size_t n_buffers)
{
    struct wire_out out;
    int rc = wire_serialize(auth, ids, n_ids, header, parent, metadata, content, &out);
    if (rc < 0)
        return rc;
    rc = WIRE_OK;
    size_t total = out.n + n_buffers;
    for (size_t i = 0; i < total; i++) {
        int flags = (i + 1 < total ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT;
        const void *data = i < out.n ? out.frames[i].data : buffers[i - out.n].data;
        size_t len = i < out.n ? out.frames[i].len : buffers[i - out.n].len;
        if (zmq_send(sock, data, len, flags) < 0) {
            /* ROUTER to a departed peer, or iopub at its high-water mark: the message is
             * dropped by policy (documented); never block the loop on one client. */
            rc = WIRE_ESEND;
            break;
        }
    }
    wire_out_clear(&out);
    return rc;
}

int wire_recv(void *sock, struct auth *auth, size_t max_json, struct wire_msg **out)
{
    *out = NULL;
    zmq_msg_t inline_frames[64];
    zmq_msg_t *frames = inline_frames;
    size_t cap = 64, n = 0;
    int more = 1, rc = WIRE_OK, overflow = 0;
    while (more) {
        if (n == cap && !overflow) {
            zmq_msg_t *bigger =
                cap * 2 <= WIRE_MAX_FRAMES ? malloc(2 * cap * sizeof *bigger) : NULL;
            if (bigger == NULL) {
                overflow = 1;
            } else {
                for (size_t i = 0; i < n; i++) {
                    zmq_msg_init(&bigger[i]);
                    zmq_msg_move(&bigger[i], &frames[i]);
                    zmq_msg_close(&frames[i]);
                }
                if (frames != inline_frames)
                    free(frames);
                frames = bigger;
                cap *= 2;
            }
        }
        zmq_msg_t spill;
        zmq_msg_t *slot = overflow ? &spill : &frames[n];
        zmq_msg_init(slot);
        if (zmq_msg_recv(slot, sock, n == 0 && !overflow ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(slot);
            if (n == 0 && !overflow && errno == EAGAIN)
                return WIRE_NOTHING;
            rc = WIRE_ETOOFEW;
            break;
        }
        more = zmq_msg_more(slot);
        if (overflow)
            zmq_msg_close(slot); /* keep draining the rest of this message */
        else
            n++;
    }
    if (overflow)
        rc = WIRE_ETOOBIG;
    if (rc == WIRE_OK) {
        struct auth_part *views = malloc(n * sizeof *views);
        if (views == NULL) {
            rc = WIRE_ENOMEM;
        } else {
            for (size_t i = 0; i < n; i++)
                views[i] = (struct auth_part){zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i])};
            rc = wire_parse(auth, views, n, max_json, out);
            free(views);
        }
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    if (frames != inline_frames)
        free(frames);
    return rc;
}

json_t *wire_blobs_to_base64(const struct wire_blob *blobs, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        size_t cap = sodium_base64_encoded_len(blobs[i].len, sodium_base64_VARIANT_ORIGINAL);
        char *text = malloc(cap);
        if (text == NULL ||
            json_array_append_new(
                arr, json_stringn(sodium_bin2base64(text, cap, blobs[i].data, blobs[i].len,
                                                    sodium_base64_VARIANT_ORIGINAL),
                                  cap - 1)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
        free(text);
    }
    return arr;
}

void wire_blobs_free(struct wire_blob *blobs, size_t n)
{
    for (size_t i = 0; blobs != NULL && i < n; i++)
        free(blobs[i].data);
    free(blobs);
}

int wire_blobs_from_base64(json_t *array, struct wire_blob **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(array))
        return -1;
    size_t count = json_array_size(array);
    struct wire_blob *blobs = calloc(count ? count : 1, sizeof *blobs);
    if (blobs == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get(array, i);
        const char *text = json_string_value(item);
        size_t len = json_string_length(item), got = 0;
        /* base64 holds at most 3 bytes per 4 characters; +1 so an empty buffer mallocs. */
        blobs[i].data = text ? malloc(len / 4 * 3 + 3 + 1) : NULL;
        if (blobs[i].data == NULL ||
            sodium_base642bin(blobs[i].data, len / 4 * 3 + 3, text, len, NULL, &got, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
            wire_blobs_free(blobs, i + 1);
            return -1;
        }
        blobs[i].len = got;
    }
    *out = blobs;
    *n = count;
    return 0;
}
