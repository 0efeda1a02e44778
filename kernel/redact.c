/* redact: see redact.h. A handful of secrets and a scan per outgoing string: memmem per
 * secret; strings without one are left untouched (no copy). */
#include "redact.h"

#include <stdlib.h>
#include <string.h>

static char *secrets[REDACT_MAX];
static size_t lens[REDACT_MAX];
static size_t count;

int redact_add(const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n < REDACT_MIN_LEN || count == REDACT_MAX)
        return 0;
    for (size_t i = 0; i < count; i++)
        if (lens[i] == n && memcmp(secrets[i], secret, n) == 0)
            return 0;
    char *copy = strdup(secret);
    if (copy == NULL)
        return 0;
    secrets[count] = copy;
    lens[count++] = n;
    return 1;
}

void redact_clear(void)
{
    for (size_t i = 0; i < count; i++) {
        memset(secrets[i], 0, lens[i]);
        free(secrets[i]);
    }
    count = 0;
}

/* The first known secret in s[0..n) at or after from: its offset and index, or -1. */
static long next_secret(const char *s, size_t n, size_t from, size_t *which)
{
    long best = -1;
    for (size_t i = 0; i < count; i++) {
        const char *hit = memmem(s + from, n - from, secrets[i], lens[i]);
        if (hit != NULL && (best < 0 || hit - s < best)) {
            best = hit - s;
            *which = i;
        }
    }
    return best;
}

static size_t redact_string(json_t *str)
{
    const char *s = json_string_value(str);
    size_t n = json_string_length(str), which = 0;
    long at = next_secret(s, n, 0, &which);
    if (at < 0)
        return 0;
    /* Each secret is at least REDACT_MIN_LEN > 4 bytes: the result is never longer. */
    char *out = malloc(n + 1);
    if (out == NULL)
        return 0;
    size_t o = 0, from = 0, hits = 0;
    while (at >= 0) {
        memcpy(out + o, s + from, (size_t)at - from);
        o += (size_t)at - from;
        memcpy(out + o, "****", 4);
        o += 4;
        from = (size_t)at + lens[which];
        hits++;
        at = next_secret(s, n, from, &which);
    }
    memcpy(out + o, s + from, n - from);
    o += n - from;
    if (json_string_setn(str, out, o) != 0) /* a secret that is not UTF-8 cut a character */
        json_string_set(str, "****");
    free(out);
    return hits;
}

size_t redact_json(json_t *j)
{
    if (count == 0 || j == NULL)
        return 0;
    size_t hits = 0;
    if (json_is_string(j)) {
        hits = redact_string(j);
    } else if (json_is_object(j)) {
        const char *key;
        json_t *value;
        json_object_foreach(j, key, value) hits += redact_json(value);
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            hits += redact_json(json_array_get(j, i));
    }
    return hits;
}
