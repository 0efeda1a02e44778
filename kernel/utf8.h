/* utf8: makes captured bytes safe for JSON strings. Output read from a pipe may end in the
 * middle of a character, and programs may write bytes that are not UTF-8 at all. */
#ifndef SPARKERNEL_UTF8_H
#define SPARKERNEL_UTF8_H

#include <stddef.h>

/* Length of the longest prefix of buf (len bytes) that does not end inside a character that
 * could still be completed by more bytes. The rest should be kept for the next read. */
size_t utf8_complete_prefix(const unsigned char *buf, size_t len);
/* Copies buf into out (capacity at least 3 * len + 1), replacing each invalid byte with
 * U+FFFD; NUL bytes are kept (U+0000), so use the returned length, not strlen (out is
 * NUL-terminated too). */
size_t utf8_sanitize(const unsigned char *buf, size_t len, char *out);

/* Cutting text at a byte limit must not split a character: jansson refuses the string, and
 * the message it was for goes out empty or not at all. */
/* Bytes of the longest prefix of s, at most max, that does not end inside a character. */
size_t utf8_prefix(const char *s, size_t max);
/* Drops what an earlier cut (snprintf into a fixed buffer) left of an unfinished character
 * at the end of s. Returns the new length. */
size_t utf8_trim(char *s);
/* Copies src into dst (cap bytes), cut at a character boundary; returns the length. */
size_t utf8_copy(char *dst, size_t cap, const char *src);
/* The start of the last at most max bytes of s (len bytes), on a character boundary. */
const char *utf8_tail(const char *s, size_t len, size_t max);

#endif
