/* utf8: makes captured bytes safe for JSON strings. Output read from a pipe may end in the
 * middle of a character, and programs may write bytes that are not UTF-8 at all. */
#ifndef SPARKERNEL_UTF8_H
#define SPARKERNEL_UTF8_H

#include <stddef.h>

/* Length of the longest prefix of buf (len bytes) that does not end inside a character that
 * could still be completed by more bytes. The rest should be kept for the next read. */
size_t utf8_complete_prefix(const unsigned char *buf, size_t len);
/* Copies buf into out (capacity at least 3 * len + 1), replacing each invalid byte with
 * U+FFFD and NUL bytes with nothing; returns the output length (out is NUL-terminated). */
size_t utf8_sanitize(const unsigned char *buf, size_t len, char *out);

#endif
