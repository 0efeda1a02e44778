/* render: the string builder and the HTML escaper (render.h). */
#include "render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL; 0, or -1 once out of memory (the text is cut). */
static int reserve(struct sb *b, size_t n)
{
    if (b->failed)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *ns = realloc(b->s, cap);
    if (ns == NULL) {
        b->failed = 1;
        return -1;
    }
    b->s = ns;
    b->cap = cap;
    return 0;
}

static void put(struct sb *b, const char *text, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sb_add(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A character of outside text on one line: control characters (newlines too) as spaces. */
static char one_line(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f ? ' ' : c;
}

/* The one HTML escaper: everything from outside (the master's /json/, the session, the
 * settings, a job's name) goes into HTML through it. */
void sb_escape(struct sb *b, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        const char *entity = *p == '<'    ? "&lt;"
                             : *p == '>'  ? "&gt;"
                             : *p == '&'  ? "&amp;"
                             : *p == '"'  ? "&quot;"
                             : *p == '\'' ? "&#39;"
                                          : NULL;
        char c = one_line(*p);
        if (entity != NULL)
            put(b, entity, strlen(entity));
        else
            put(b, &c, 1);
    }
}

void sb_plain(struct sb *b, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        char c = one_line(*p);
        put(b, &c, 1);
    }
}

const char *sb_str(const struct sb *b)
{
    return b->s ? b->s : "";
}

char *sb_take(struct sb *b)
{
    char *text = b->failed ? NULL : b->s ? b->s : strdup("");
    if (b->failed)
        free(b->s);
    *b = (struct sb){0};
    return text;
}

void sb_free(struct sb *b)
{
    free(b->s);
    *b = (struct sb){0};
}
