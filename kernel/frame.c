/* frame: an incremental reader that survives any split of the byte stream. */
#include "frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct frame_reader {
    unsigned char *buf;
    size_t len, off, cap, max_frame;
};

const char *frame_strerror(int code)
{
    switch (code) {
    case FRAME_OK:
        return "ok";
    case FRAME_AGAIN:
        return "incomplete frame";
    case FRAME_EJSON:
        return "frame is not valid JSON";
    case FRAME_ETYPE:
        return "frame is not a JSON object";
    case FRAME_ETOOBIG:
        return "frame length above the limit";
    case FRAME_ENOMEM:
        return "out of memory";
    }
    return "unknown frame error";
}

struct frame_reader *frame_reader_new(size_t max_frame)
{
    struct frame_reader *r = calloc(1, sizeof *r);
    if (r)
        r->max_frame = max_frame ? max_frame : FRAME_DEFAULT_MAX;
    return r;
}

void frame_reader_destroy(struct frame_reader **self)
{
    if (self == NULL || *self == NULL)
        return;
    free((*self)->buf);
    free(*self);
    *self = NULL;
}

size_t frame_reader_pending(const struct frame_reader *r)
{
    return r->len - r->off;
}

int frame_reader_feed(struct frame_reader *r, const void *data, size_t n)
{
    if (n == 0)
        return FRAME_OK;
    if (r->off > 0 && r->off == r->len)
        r->off = r->len = 0;
    if (r->len + n > r->cap) {
        if (r->off > 0) { /* compact before growing */
            memmove(r->buf, r->buf + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        if (cap != r->cap) {
            unsigned char *nb = realloc(r->buf, cap);
            if (nb == NULL)
                return FRAME_ENOMEM;
            r->buf = nb;
            r->cap = cap;
        }
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return FRAME_OK;
}

int frame_reader_next(struct frame_reader *r, json_t **out)
{
    *out = NULL;
    size_t avail = r->len - r->off;
    if (avail < 4)
        return FRAME_AGAIN;
    const unsigned char *p = r->buf + r->off;
    uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (n > r->max_frame)
        return FRAME_ETOOBIG;
    if (avail - 4 < n)
        return FRAME_AGAIN;
    r->off += 4 + (size_t)n;
    json_error_t err;
    /* The executor writes U+0000 as \u0000 (a NUL in printed text, an error message, a
     * string's repr): carried, never a reason to refuse the frame. Readers take such strings
     * with json_string_length or as objects, never as C strings. */
    json_t *v = json_loadb((const char *)p + 4, n, JSON_ALLOW_NUL, &err);
    if (v == NULL)
        return FRAME_EJSON;
    if (!json_is_object(v)) {
        json_decref(v);
        return FRAME_ETYPE;
    }
    *out = v;
    return FRAME_OK;
}

int frame_encode(json_t *obj, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    if (n == 0 || n > UINT32_MAX)
        return FRAME_ETOOBIG;
    char *b = malloc(n + 4);
    if (b == NULL)
        return FRAME_ENOMEM;
    json_dumpb(obj, b + 4, n, JSON_COMPACT);
    b[0] = (char)(n >> 24);
    b[1] = (char)(n >> 16);
    b[2] = (char)(n >> 8);
    b[3] = (char)n;
    *buf = b;
    *len = n + 4;
    return FRAME_OK;
}
