/* render: a growing string for what cells display (a paragraph's text and its HTML are built
 * side by side), and the one HTML escaper every outside string goes through. */
#ifndef SPARKERNEL_RENDER_H
#define SPARKERNEL_RENDER_H

#include <stddef.h>

struct sb {
    char *s;
    size_t len, cap;
    int failed; /* an append ran out of memory: the text is cut */
};

/* Appends printf-style; out of memory, the text is cut (never a crash). */
void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends text (NULL: nothing) HTML-escaped: < > & " ' as entities (attribute values
 * included), control characters as spaces. */
void sb_escape(struct sb *b, const char *text);
/* Appends text (NULL: nothing) on one line: control characters (newlines too) as spaces. */
void sb_plain(struct sb *b, const char *text);
/* The text so far (borrowed; "" when empty). */
const char *sb_str(const struct sb *b);
/* Frees the text; b is empty again. */
void sb_free(struct sb *b);
/* Hands the text over (malloc'd, caller frees; "" when empty), or NULL when an append ran
 * out of memory (then the text is freed). b is empty again. */
char *sb_take(struct sb *b);

#endif
