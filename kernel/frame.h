/* frame: the length-prefixed JSON frames spoken with the Python executor over pipes: a
 * 4-byte big-endian length, then that many bytes of UTF-8 JSON (an object). */
#ifndef SPARKERNEL_FRAME_H
#define SPARKERNEL_FRAME_H

#include <jansson.h>
#include <stddef.h>

#define FRAME_DEFAULT_MAX (256u << 20)

enum frame_result {
    FRAME_OK = 0,       /* *out holds a frame */
    FRAME_AGAIN = 1,    /* need more bytes */
    FRAME_EJSON = -1,   /* one frame was not JSON; skipped, stream still in step */
    FRAME_ETYPE = -2,   /* one frame was JSON but not an object; skipped */
    FRAME_ETOOBIG = -3, /* a length above the limit: the stream cannot be trusted any more */
    FRAME_ENOMEM = -4,
};

struct frame_reader;

/* Returns a new reader accepting frames up to max_frame bytes; frame_reader_destroy()s. */
struct frame_reader *frame_reader_new(size_t max_frame);
void frame_reader_destroy(struct frame_reader **self);
/* Copies n bytes from data into the reader. */
int frame_reader_feed(struct frame_reader *self, const void *data, size_t n);
/* Takes the next complete frame. On FRAME_OK, *out is a new reference (json_decref it). */
int frame_reader_next(struct frame_reader *self, json_t **out);
/* Bytes buffered and not yet consumed. */
size_t frame_reader_pending(const struct frame_reader *self);
/* Encodes obj (borrowed) as one frame. *buf is malloc'd; caller frees. */
int frame_encode(json_t *obj, char **buf, size_t *len);
const char *frame_strerror(int code);

#endif
