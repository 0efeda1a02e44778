/* auth: HMAC-SHA256 signing and constant-time verification of Jupyter messages, and the
 * replay guard that rejects a signature seen before. */
#ifndef SPARKERNEL_AUTH_H
#define SPARKERNEL_AUTH_H

#include <stddef.h>

#define AUTH_HEX_LEN 64 /* hex digest length, without NUL */

enum auth_error {
    AUTH_OK = 0,
    AUTH_EBADSIG = -1, /* signature does not match */
    AUTH_EREPLAY = -2, /* signature seen before */
    AUTH_EFORMAT = -3, /* signature is not 64 hex digits */
    AUTH_ENOMEM = -4,
};

struct auth;
struct auth_part {
    const void *data;
    size_t len;
};

/* Copies key. An empty key disables signing (signatures are empty strings and any
 * signature is accepted), which the caller allows only on explicit request.
 * Returns a new object; caller auth_destroy()s. replay_window is how many recent
 * signatures are remembered (at least that many, at most twice). */
struct auth *auth_new(const void *key, size_t key_len, size_t replay_window);
void auth_destroy(struct auth **self);
int auth_enabled(const struct auth *self);
/* Signs the parts in order; writes AUTH_HEX_LEN hex chars and a NUL into hex
 * (an empty string when signing is disabled). */
int auth_sign(const struct auth *self, const struct auth_part *parts, size_t n,
              char hex[AUTH_HEX_LEN + 1]);
/* Verifies sig (sig_len bytes, not NUL-terminated) over parts in constant time; on success
 * remembers it, so the same signature is refused next time (AUTH_EREPLAY). */
int auth_verify(struct auth *self, const struct auth_part *parts, size_t n, const char *sig,
                size_t sig_len);
/* Raw HMAC-SHA256, for the RFC 4231 vectors in the tests. out gets 32 bytes. */
int auth_hmac_sha256(const void *key, size_t key_len, const struct auth_part *parts, size_t n,
                     unsigned char out[32]);
const char *auth_strerror(int code);

#endif
