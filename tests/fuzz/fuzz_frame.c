/* fuzz_frame: libFuzzer harness for kernel/frame.c, the reader of the executor's event pipe.
 * The input is a 5-byte header, then the byte stream. Header byte 0 picks the frame size
 * limit (bits 0-1: the default, 16, 256 or 4096 bytes); bytes 1-4 are the chunk sizes the
 * stream is fed in (each plus one, used in turn), as the pipe's reads would split it. The
 * seeds in tests/fuzz/corpus/frame/ are event streams recorded from the real executor
 * (tests/fuzz/make_seeds.py). Checks that a stream fed in chunks yields exactly what the same
 * stream fed at once yields, and that every frame read encodes back to a frame that reads the
 * same. And the rule the kernel's "every request gets exactly one reply" rests on (issue 14):
 * every complete frame in the stream (counted here by walking the lengths, apart from the
 * reader) gives exactly one result, read or refused, in its place, so the kernel sees every
 * loss; and a stream still in step afterwards delivers the executor's next frame (the answer
 * to the kernel's "sync", appended here) exactly once. The seeds hold NULs (\u0000, raw NUL
 * bytes), invalid UTF-8 and huge lengths (make_seeds.py).
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       $(pkg-config --cflags jansson) tests/fuzz/fuzz_frame.c kernel/frame.c \
 *       $(pkg-config --libs jansson) -o build/fuzz_frame
 *   build/fuzz_frame -max_total_time=60 tests/fuzz/corpus/frame/ */
#include "../../kernel/frame.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
    int rc;
    json_t *obj; /* owned, when rc == FRAME_OK */
};

struct results {
    struct result *r;
    size_t n, cap;
};

static void push(struct results *rs, int rc, json_t *obj)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 16;
        struct result *r = realloc(rs->r, cap * sizeof *r);
        if (r == NULL)
            __builtin_trap();
        rs->r = r;
        rs->cap = cap;
    }
    rs->r[rs->n++] = (struct result){rc, obj};
}

static void results_free(struct results *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        json_decref(rs->r[i].obj);
    free(rs->r);
}

/* Takes every frame the reader can give now. Returns 1 once the stream is broken
 * (FRAME_ETOOBIG), after which the reader must say so again and again. */
static int drain(struct frame_reader *r, struct results *rs)
{
    for (;;) {
        json_t *obj = NULL;
        int rc = frame_reader_next(r, &obj);
        if ((rc == FRAME_OK) != (obj != NULL) || rc > FRAME_AGAIN || rc < FRAME_ENOMEM ||
            frame_strerror(rc) == NULL)
            __builtin_trap();
        if (rc == FRAME_AGAIN)
            return 0;
        push(rs, rc, obj);
        if (rc == FRAME_ETOOBIG) {
            if (frame_reader_next(r, &obj) != FRAME_ETOOBIG || obj != NULL)
                __builtin_trap();
            return 1;
        }
    }
}

/* An object read encodes to one frame that reads back equal. */
static void round_trip(json_t *obj)
{
    char *buf;
    size_t len;
    if (frame_encode(obj, &buf, &len) != FRAME_OK || len < 4)
        __builtin_trap();
    size_t n = (size_t)(unsigned char)buf[0] << 24 | (size_t)(unsigned char)buf[1] << 16 |
               (size_t)(unsigned char)buf[2] << 8 | (unsigned char)buf[3];
    if (n != len - 4)
        __builtin_trap();
    struct frame_reader *r = frame_reader_new(0);
    json_t *back = NULL;
    if (r == NULL || frame_reader_feed(r, buf, len) != FRAME_OK ||
        frame_reader_next(r, &back) != FRAME_OK || !json_equal(back, obj) ||
        frame_reader_pending(r) != 0)
        __builtin_trap();
    json_decref(back);
    frame_reader_destroy(&r);
    free(buf);
}

/* Complete frames in the stream before the first length above max_frame (*broken then) or the
 * first incomplete one. */
static size_t count_frames(const uint8_t *s, size_t len, size_t max_frame, int *broken)
{
    size_t n = 0, off = 0;
    *broken = 0;
    if (max_frame == 0)
        max_frame = FRAME_DEFAULT_MAX;
    while (len - off >= 4) {
        size_t body =
            (size_t)s[off] << 24 | (size_t)s[off + 1] << 16 | (size_t)s[off + 2] << 8 | s[off + 3];
        if (body > max_frame) {
            *broken = 1;
            return n;
        }
        if (len - off - 4 < body)
            return n;
        off += 4 + body;
        n++;
    }
    return n;
}

/* After the stream, the executor's answer to the kernel's sync: read once, exactly, when the
 * stream is in step; never when it is broken. */
static void check_sync(struct frame_reader *r, int broken)
{
    static const char synced[] = "\0\0\0\x09{\"seq\":7}"; /* within the 16-byte limit */
    size_t pending = frame_reader_pending(r);
    if (frame_reader_feed(r, synced, sizeof synced - 1) != FRAME_OK)
        __builtin_trap();
    json_t *obj = NULL;
    int rc = frame_reader_next(r, &obj);
    if (broken) {
        if (rc != FRAME_ETOOBIG || obj != NULL)
            __builtin_trap();
        return;
    }
    if (pending != 0) { /* an unfinished frame swallows it: the kernel's pipe read goes on */
        json_decref(obj);
        return;
    }
    if (rc != FRAME_OK || json_integer_value(json_object_get(obj, "seq")) != 7)
        __builtin_trap();
    json_decref(obj);
    if (frame_reader_next(r, &obj) != FRAME_AGAIN || frame_reader_pending(r) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[4] = {0, 16, 256, 4096};
    if (size < HEADER)
        return 0;
    size_t max_frame = limits[data[0] & 3];
    const uint8_t *stream = data + HEADER;
    size_t len = size - HEADER;

    /* The whole stream at once. */
    struct results whole = {0};
    struct frame_reader *a = frame_reader_new(max_frame);
    if (a == NULL || frame_reader_feed(a, stream, len) != FRAME_OK)
        __builtin_trap();
    int broken = drain(a, &whole);

    /* The same stream in chunks. */
    struct results chunked = {0};
    struct frame_reader *b = frame_reader_new(max_frame);
    if (b == NULL)
        __builtin_trap();
    int b_broken = 0;
    for (size_t off = 0, i = 0; off < len && !b_broken; i++) {
        size_t n = (size_t)data[1 + i % 4] + 1;
        if (n > len - off)
            n = len - off;
        if (frame_reader_feed(b, stream + off, n) != FRAME_OK)
            __builtin_trap();
        off += n;
        b_broken = drain(b, &chunked);
    }

    if (broken != b_broken || whole.n != chunked.n ||
        (!broken && frame_reader_pending(a) != frame_reader_pending(b)))
        __builtin_trap();
    for (size_t i = 0; i < whole.n; i++) {
        if (whole.r[i].rc != chunked.r[i].rc)
            __builtin_trap();
        if (whole.r[i].rc == FRAME_OK) {
            if (!json_equal(whole.r[i].obj, chunked.r[i].obj))
                __builtin_trap();
            round_trip(whole.r[i].obj);
        }
    }
    int walked_broken;
    size_t frames = count_frames(stream, len, max_frame, &walked_broken);
    if (walked_broken != broken || whole.n != frames + (size_t)broken)
        __builtin_trap();
    check_sync(a, broken);
    check_sync(b, b_broken);
    results_free(&whole);
    results_free(&chunked);
    frame_reader_destroy(&a);
    frame_reader_destroy(&b);
    return 0;
}
