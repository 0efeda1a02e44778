/* auth: HMAC-SHA256 and the constant-time comparison from libsodium (already mapped into the
 * process by libzmq; OpenSSL's provider start-up would cost 3.4 MB of resident memory, see
 * DESIGN.md), and a two-generation hash set of recent digests for the replay guard (bounded
 * memory: when the young generation fills, the old one is dropped and the young one becomes
 * old). */
#include "auth.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_KEY 16 /* bytes of each digest kept in the replay set */

struct digest_set {
    unsigned char *slots; /* capacity * DIGEST_KEY bytes; all-zero slot = empty */
    size_t capacity;      /* power of two, twice the generation size */
    size_t count;
};

struct auth {
    crypto_auth_hmacsha256_state proto; /* keyed once; copied per message */
    int enabled;
    size_t generation; /* entries per generation */
    struct digest_set young, old;
};

const char *auth_strerror(int code)
{
    switch (code) {
    case AUTH_OK:
        return "ok";
    case AUTH_EBADSIG:
        return "signature does not match the key";
    case AUTH_EREPLAY:
        return "signature was seen before (replayed message)";
    case AUTH_EFORMAT:
        return "signature is not 64 hex digits";
    case AUTH_ENOMEM:
        return "out of memory";
    }
    return "unknown auth error";
}

static int mac_run(const crypto_auth_hmacsha256_state *proto, const struct auth_part *parts,
                   size_t n, unsigned char out[32])
{
    crypto_auth_hmacsha256_state st = *proto;
    for (size_t i = 0; i < n; i++)
        crypto_auth_hmacsha256_update(&st, parts[i].data, parts[i].len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
    return AUTH_OK;
}

int auth_hmac_sha256(const void *key, size_t key_len, const struct auth_part *parts, size_t n,
                     unsigned char out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    return mac_run(&st, parts, n, out);
}

static int set_init(struct digest_set *s, size_t capacity)
{
    s->slots = calloc(capacity, DIGEST_KEY);
    s->capacity = capacity;
    s->count = 0;
    if (s->slots == NULL)
        return -1;
    /* Touch every page now: the set is bounded, so its memory is resident from the start
     * instead of growing over the first thousand messages (which looked like a leak). */
    for (size_t i = 0; i < capacity * DIGEST_KEY; i += 4096)
        ((volatile unsigned char *)s->slots)[i] = 0;
    return 0;
}

static size_t set_hash(const unsigned char *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof h); /* the digest is already uniformly distributed */
    return (size_t)h;
}

/* Returns 1 if present. With insert, adds it when absent. */
static int set_probe(struct digest_set *s, const unsigned char *d, int insert)
{
    static const unsigned char zero[DIGEST_KEY];
    size_t mask = s->capacity - 1;
    for (size_t i = set_hash(d) & mask;; i = (i + 1) & mask) {
        unsigned char *slot = s->slots + i * DIGEST_KEY;
        if (memcmp(slot, zero, DIGEST_KEY) == 0) {
            if (insert) {
                memcpy(slot, d, DIGEST_KEY);
                s->count++;
            }
            return 0;
        }
        if (memcmp(slot, d, DIGEST_KEY) == 0)
            return 1;
    }
}

struct auth *auth_new(const void *key, size_t key_len, size_t replay_window)
{
    struct auth *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->enabled = key_len > 0;
    /* A generation holds exactly replay_window digests; the table is kept at most half
     * full so that probes stay short. */
    self->generation = replay_window ? replay_window : 1;
    size_t cap = 16;
    while (cap < self->generation * 2)
        cap <<= 1;
    if (sodium_init() < 0 || set_init(&self->young, cap) || set_init(&self->old, cap)) {
        auth_destroy(&self);
        return NULL;
    }
    crypto_auth_hmacsha256_init(&self->proto, key, key_len);
    return self;
}

void auth_destroy(struct auth **self)
{
    if (self == NULL || *self == NULL)
        return;
    struct auth *a = *self;
    sodium_memzero(&a->proto, sizeof a->proto);
    free(a->young.slots);
    free(a->old.slots);
    free(a);
    *self = NULL;
}

int auth_enabled(const struct auth *self)
{
    return self->enabled;
}

static void to_hex(const unsigned char *d, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = '\0';
}

static int from_hex(const char *hex, size_t len, unsigned char *out)
{
    if (len != AUTH_HEX_LEN)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        int v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = hex[i + j];
            int x = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (x < 0)
                return -1;
            v = v * 16 + x;
        }
        out[i / 2] = (unsigned char)v;
    }
    return 0;
}

int auth_sign(const struct auth *self, const struct auth_part *parts, size_t n,
              char hex[AUTH_HEX_LEN + 1])
{
    if (!self->enabled) {
        hex[0] = '\0';
        return AUTH_OK;
    }
    unsigned char d[32];
    int rc = mac_run(&self->proto, parts, n, d);
    if (rc == AUTH_OK)
        to_hex(d, sizeof d, hex);
    return rc;
}

int auth_verify(struct auth *self, const struct auth_part *parts, size_t n, const char *sig,
                size_t sig_len)
{
    if (!self->enabled)
        return AUTH_OK;
    unsigned char given[32], want[32];
    if (from_hex(sig, sig_len, given) != 0)
        return AUTH_EFORMAT;
    int rc = mac_run(&self->proto, parts, n, want);
    if (rc != AUTH_OK)
        return rc;
    if (sodium_memcmp(given, want, sizeof want) != 0)
        return AUTH_EBADSIG;
    if (set_probe(&self->young, want, 0) || set_probe(&self->old, want, 0))
        return AUTH_EREPLAY;
    if (self->young.count >= self->generation) {
        struct digest_set t = self->old;
        self->old = self->young;
        self->young = t;
        memset(self->young.slots, 0, self->young.capacity * DIGEST_KEY);
        self->young.count = 0;
    }
    /* An all-zero digest prefix would read as an empty slot; it has probability 2^-128. */
    set_probe(&self->young, want, 1);
    return AUTH_OK;
}
