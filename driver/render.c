/* render: the string builder and the HTML escaper (render.h). */
#include "render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_add(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->failed)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (ns == NULL) {
            b->failed = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The one HTML escaper: everything from outside (the master's /json/, the session, the
 * settings, a job's name) goes into HTML through it. */
void sb_escape(struct sb *b, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '<':
            sb_add(b, "&lt;");
            break;
        case '>':
            sb_add(b, "&gt;");
            break;
        case '&':
            sb_add(b, "&amp;");
            break;
        case '"':
            sb_add(b, "&quot;");
            break;
        case '\'':
            sb_add(b, "&#39;");
            break;
        default:
            sb_add(b, "%c", (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
        }
    }
}

const char *sb_str(const struct sb *b)
{
    return b->s ? b->s : "";
}

void sb_plain(struct sb *b, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++)
        sb_add(b, "%c", (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
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
