/* utf8: a strict decoder (no overlongs, no surrogates, nothing above U+10FFFF). */
#include "utf8.h"

#include <string.h>

/* Returns the length of the valid sequence at s (1..4), 0 if invalid, or -(needed) if the
 * sequence is a valid start that runs past the end. */
static int seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail)
            return -n;
        unsigned b = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h)
            return 0;
    }
    return n;
}

size_t utf8_complete_prefix(const unsigned char *buf, size_t len)
{
    /* Only the last three bytes can start an unfinished character. */
    size_t start = len > 3 ? len - 3 : 0;
    for (size_t i = start; i < len; i++) {
        if ((buf[i] & 0xC0) == 0x80)
            continue;
        if (seq_len(buf + i, len - i) < 0)
            return i;
    }
    return len;
}

size_t utf8_sanitize(const unsigned char *buf, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int n = seq_len(buf + i, len - i);
        if (n > 0) {
            memcpy(out + o, buf + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

size_t utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n < max || s[n] == '\0')
        return n;
    return utf8_complete_prefix((const unsigned char *)s, n);
}

size_t utf8_trim(char *s)
{
    size_t n = utf8_complete_prefix((const unsigned char *)s, strlen(s));
    s[n] = '\0';
    return n;
}

size_t utf8_copy(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return 0;
    size_t n = utf8_prefix(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

const char *utf8_tail(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return s;
    const char *p = s + len - max;
    while (p < s + len && ((unsigned char)*p & 0xC0) == 0x80)
        p++; /* the rest of a character that started before the cut */
    return p;
}
