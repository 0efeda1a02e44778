/* fuzz_wire: libFuzzer harness for kernel/wire.c and kernel/auth.c, the parser every message
 * arriving on the shell, control and stdin sockets goes through. The input is one option
 * byte, then the multipart frames separated by FUZZ_SEP (0xff "SEP", never in UTF-8 JSON).
 * The seeds in tests/fuzz/corpus/wire/ are real messages that jupyter_client's Session signed
 * with FUZZ_KEY (tests/fuzz/make_seeds.py). Option bits:
 *   1  re-sign: the signature frame is replaced by the HMAC of the four JSON frames, so the
 *      JSON checks past the signature are reached whatever the fuzzer did to them
 *   2  unsigned: an empty key (signing disabled, any signature accepted)
 *   4  a 256-byte limit per JSON frame instead of the default
 * Each input is parsed twice on one auth: a message whose signature was accepted the first
 * time must be refused as a replay the second. An accepted message is serialised again and
 * must parse back to the same JSON on a fresh auth.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       $(pkg-config --cflags jansson libzmq libsodium) tests/fuzz/fuzz_wire.c kernel/wire.c \
 *       kernel/auth.c $(pkg-config --libs jansson libzmq libsodium) -o build/fuzz_wire
 *   build/fuzz_wire -max_total_time=60 tests/fuzz/corpus/wire/ */
#include "../../kernel/auth.h"
#include "../../kernel/wire.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_KEY "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
#define FUZZ_SEP                                                                                   \
    "\xff"                                                                                         \
    "SEP"
#define FUZZ_SEP_LEN 4
#define OPT_RESIGN   1
#define OPT_UNSIGNED 2
#define OPT_SMALL    4
#define MAX_PARTS    (WIRE_MAX_FRAMES + 2)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits data at FUZZ_SEP into at most cap frames (borrowed views); returns the count. */
static size_t split(const uint8_t *data, size_t size, struct auth_part *parts, size_t cap)
{
    size_t n = 0, start = 0;
    while (n < cap) {
        const uint8_t *hit = memmem(data + start, size - start, FUZZ_SEP, FUZZ_SEP_LEN);
        size_t len = hit ? (size_t)(hit - (data + start)) : size - start;
        parts[n++] = (struct auth_part){data + start, len};
        if (hit == NULL)
            break;
        start += len + FUZZ_SEP_LEN;
    }
    return n;
}

/* The delimiter's index as wire_parse looks for it, or n. */
static size_t find_delim(const struct auth_part *parts, size_t n)
{
    for (size_t i = 0; i < n && i <= WIRE_MAX_IDENTITIES; i++)
        if (parts[i].len == sizeof WIRE_DELIM - 1 &&
            memcmp(parts[i].data, WIRE_DELIM, parts[i].len) == 0)
            return i;
    return n;
}

static int same_bytes(const struct wire_blob *b, const struct auth_part *p)
{
    return b->len == p->len && (p->len == 0 || memcmp(b->data, p->data, p->len) == 0);
}

/* What an accepted message must satisfy: every frame accounted for, identities and buffers
 * copied exactly, four objects, a non-empty msg_type; and it survives serialise -> parse. */
static void check_message(const struct wire_msg *m, const struct auth_part *parts, size_t n,
                          size_t delim)
{
    if (m == NULL || m->n_ids != delim || m->n_ids + 6 + m->n_buffers != n)
        __builtin_trap();
    for (size_t i = 0; i < m->n_ids; i++)
        if (!same_bytes(&m->ids[i], &parts[i]))
            __builtin_trap();
    for (size_t i = 0; i < m->n_buffers; i++)
        if (!same_bytes(&m->buffers[i], &parts[delim + 6 + i]))
            __builtin_trap();
    if (!json_is_object(m->header) || !json_is_object(m->parent) || !json_is_object(m->metadata) ||
        !json_is_object(m->content) || m->msg_type == NULL || m->msg_type[0] == '\0' ||
        m->msg_id == NULL)
        __builtin_trap();

    struct auth *sender = auth_new(FUZZ_KEY, strlen(FUZZ_KEY), 1);
    struct auth *receiver = auth_new(FUZZ_KEY, strlen(FUZZ_KEY), 1);
    struct wire_out out;
    if (sender == NULL || receiver == NULL)
        __builtin_trap();
    int k = wire_serialize(sender, m->ids, m->n_ids, m->header, m->parent, m->metadata, m->content,
                           &out);
    if (k != (int)m->n_ids + 6)
        __builtin_trap();
    struct wire_msg *back = NULL;
    int rc = wire_parse(receiver, out.frames, out.n, WIRE_DEFAULT_MAX_JSON, &back);
    if (rc != WIRE_OK || !json_equal(back->header, m->header) ||
        !json_equal(back->parent, m->parent) || !json_equal(back->metadata, m->metadata) ||
        !json_equal(back->content, m->content) || strcmp(back->msg_type, m->msg_type) != 0 ||
        strcmp(back->msg_id, m->msg_id) != 0 || back->n_ids != m->n_ids)
        __builtin_trap();
    wire_msg_destroy(&back);
    wire_out_clear(&out);
    auth_destroy(&sender);
    auth_destroy(&receiver);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static struct auth_part parts[MAX_PARTS];
    unsigned opt = data[0];
    size_t n = split(data + 1, size - 1, parts, MAX_PARTS);
    size_t delim = find_delim(parts, n);
    const char *key = opt & OPT_UNSIGNED ? "" : FUZZ_KEY;
    struct auth *auth = auth_new(key, strlen(key), 1);
    if (auth == NULL)
        __builtin_trap();

    char sig[AUTH_HEX_LEN + 1];
    if ((opt & OPT_RESIGN) && delim < n && n - delim - 1 >= 5) {
        if (auth_sign(auth, &parts[delim + 2], 4, sig) != AUTH_OK)
            __builtin_trap();
        parts[delim + 1] = (struct auth_part){sig, strlen(sig)};
    }

    size_t max_json = opt & OPT_SMALL ? 256 : WIRE_DEFAULT_MAX_JSON;
    struct wire_msg *m = NULL;
    int rc = wire_parse(auth, parts, n, max_json, &m);
    if (rc > WIRE_OK || rc < WIRE_ENOMEM || (rc == WIRE_OK) != (m != NULL) ||
        wire_strerror(rc) == NULL)
        __builtin_trap();
    if (rc == WIRE_OK)
        check_message(m, parts, n, delim);
    wire_msg_destroy(&m);

    /* The same frames again: a signature accepted once (even if the JSON then failed) is a
     * replay now; anything refused before the signature check is refused the same way. */
    int again = wire_parse(auth, parts, n, max_json, &m);
    int verified = rc == WIRE_OK || rc == WIRE_EJSON || rc == WIRE_ETYPE;
    int want = verified && auth_enabled(auth) ? WIRE_EREPLAY : rc;
    if (again != want)
        __builtin_trap();
    wire_msg_destroy(&m);
    auth_destroy(&auth);
    return 0;
}
