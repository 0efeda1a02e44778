/* wire: ZeroMQ multipart frames <-> Jupyter messages (identities, <IDS|MSG>, signature,
 * header, parent_header, metadata, content, buffers), checked by auth. */
#ifndef SPARKERNEL_WIRE_H
#define SPARKERNEL_WIRE_H

#include "auth.h"

#include <jansson.h>
#include <stddef.h>

#define WIRE_DELIM            "<IDS|MSG>"
#define WIRE_MAX_IDENTITIES   32
#define WIRE_MAX_FRAMES       1024
#define WIRE_DEFAULT_MAX_JSON (64u << 20) /* bytes per JSON frame */

enum wire_error {
    WIRE_NOTHING = 1, /* wire_recv: nothing was waiting (not an error) */
    WIRE_OK = 0,
    WIRE_ENODELIM = -1, /* no <IDS|MSG> delimiter */
    WIRE_ETOOFEW = -2,  /* fewer than the five frames after the delimiter */
    WIRE_ESIG = -3,     /* bad signature (auth_strerror of the detail says which) */
    WIRE_EREPLAY = -4,  /* replayed signature */
    WIRE_EJSON = -5,    /* a JSON frame does not parse */
    WIRE_ETYPE = -6,    /* a frame is not an object, or msg_type / msg_id missing */
    WIRE_ETOOBIG = -7,  /* a frame above the size limit, or too many frames */
    WIRE_ENOMEM = -8,
    WIRE_ESEND = -9, /* the socket refused the message */
};
#define WIRE_NERRORS 10

struct wire_blob {
    void *data;
    size_t len;
};

struct wire_msg {
    struct wire_blob *ids; /* owned copies */
    size_t n_ids;
    json_t *header, *parent, *metadata, *content; /* owned references */
    struct wire_blob *buffers;                    /* owned copies */
    size_t n_buffers;
    const char *msg_type; /* borrowed from header */
    const char *msg_id;   /* borrowed from header */
};

/* Parses frames (borrowed). On success *out is a new message; caller wire_msg_destroy()s. */
int wire_parse(struct auth *auth, const struct auth_part *frames, size_t n, size_t max_json,
               struct wire_msg **out);
void wire_msg_destroy(struct wire_msg **self);

/* Serialises and signs; fills frames (pointing into *bufs, which the caller frees with
 * wire_frames_free) in wire order: ids, delimiter, signature, 4 JSON frames. Borrows all
 * arguments. parent/metadata may be NULL (sent as {}). Returns the frame count or < 0. */
struct wire_out {
    struct auth_part frames[WIRE_MAX_IDENTITIES + 6];
    size_t n;
    char *json[4];
    char sig[AUTH_HEX_LEN + 1];
};
int wire_serialize(const struct auth *auth, const struct wire_blob *ids, size_t n_ids,
                   json_t *header, json_t *parent, json_t *metadata, json_t *content,
                   struct wire_out *out);
void wire_out_clear(struct wire_out *out);

/* Receives one multipart message from a ZeroMQ socket without blocking and parses it.
 * Returns WIRE_OK with *out set, WIRE_NOTHING when nothing was waiting, or a wire_error (the frames
 * were consumed and dropped). */
int wire_recv(void *sock, struct auth *auth, size_t max_json, struct wire_msg **out);
/* Sends a message built from the arguments (borrowed). */
int wire_send(void *sock, const struct auth *auth, const struct wire_blob *ids, size_t n_ids,
              json_t *header, json_t *parent, json_t *metadata, json_t *content);
/* The same with binary buffers after the content (not signed, as the protocol says). */
int wire_send_buffers(void *sock, const struct auth *auth, const struct wire_blob *ids,
                      size_t n_ids, json_t *header, json_t *parent, json_t *metadata,
                      json_t *content, const struct wire_blob *buffers, size_t n_buffers);

/* Binary buffers inside the executor's JSON frames travel as base64 strings. To: a new
 * array, NULL when out of memory. From: every element must be a base64 string; returns 0
 * with *out (free with wire_blobs_free) and *n set, or -1 (nothing allocated). */
json_t *wire_blobs_to_base64(const struct wire_blob *blobs, size_t n);
int wire_blobs_from_base64(json_t *array, struct wire_blob **out, size_t *n);
void wire_blobs_free(struct wire_blob *blobs, size_t n);

const char *wire_strerror(int code);

#endif
