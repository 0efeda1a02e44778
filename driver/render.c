/* render: the string builder, the HTML escaper and the two-sided doc (render.h). */
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

/* The same in HTML, which has white space of its own: newlines and tabs stay. */
static char html_char(char c)
{
    return c == '\n' || c == '\t' ? c : one_line(c);
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
        char c = html_char(*p);
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

/* Characters (not bytes) in s[0..n): UTF-8 continuation bytes do not count. */
static size_t chars(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

static void doc_vsay(struct doc *d, const char *fmt, va_list ap)
{
    char *words = NULL;
    if (vasprintf(&words, fmt, ap) < 0) {
        d->text.failed = d->html.failed = 1;
        return;
    }
    if (d->cols != NULL && d->col > 0)
        sb_plain(&d->text, words); /* a table's row stays one line of the text */
    else
        put(&d->text, words, strlen(words));
    sb_escape(&d->html, words);
    free(words);
}

void doc_say(struct doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    doc_vsay(d, fmt, ap);
    va_end(ap);
}

void doc_in(struct doc *d, const char *tag, const char *fmt, ...)
{
    sb_add(&d->html, "<%s>", tag);
    va_list ap;
    va_start(ap, fmt);
    doc_vsay(d, fmt, ap);
    va_end(ap);
    sb_add(&d->html, "</%s>", tag);
}

void doc_link(struct doc *d, const char *label, const char *url)
{
    sb_add(&d->html, "<a href=\"");
    sb_escape(&d->html, url);
    sb_add(&d->html, "\" target=\"_blank\">");
    sb_escape(&d->html, label);
    sb_add(&d->html, "</a>");
    sb_add(&d->text, "%s: %s", label ? label : "", url ? url : "");
}

void doc_mark(struct doc *d, const char *html, const char *text)
{
    put(&d->html, html ? html : "", html ? strlen(html) : 0);
    put(&d->text, text ? text : "", text ? strlen(text) : 0);
}

/* Ends the open cell: pads (or cuts) its text to the column's width, closes it in the HTML. */
static void cell_end(struct doc *d)
{
    const struct doc_column *c = &d->cols[d->col - 1];
    struct sb *t = &d->text;
    size_t n = t->failed ? 0 : t->len - d->cell_at;
    size_t have = t->failed ? 0 : chars(t->s + d->cell_at, n);
    size_t width = c->width > 0 ? (size_t)c->width : 0;
    if (c->align == DOC_CUT && have > width) {
        size_t keep = 0; /* bytes of the first width characters */
        for (size_t seen = 0; keep < n; keep++)
            if (((unsigned char)t->s[d->cell_at + keep] & 0xC0) != 0x80 && seen++ == width)
                break;
        t->len = d->cell_at + keep;
        t->s[t->len] = '\0';
        have = width;
    }
    size_t pad = have < width ? width - have : 0;
    if (pad > 0 && c->align == DOC_RIGHT && reserve(t, pad) == 0) {
        memmove(t->s + d->cell_at + pad, t->s + d->cell_at, n + 1);
        memset(t->s + d->cell_at, ' ', pad);
        t->len += pad;
    } else {
        for (size_t i = 0; i < pad; i++)
            put(t, " ", 1);
    }
    put(t, d->col < d->ncols ? " " : "\n", 1);
    sb_add(&d->html, "</td>");
    if (d->col == d->ncols) {
        sb_add(&d->html, "</tr>");
        d->col = 0;
    }
}

void doc_table(struct doc *d, const struct doc_column *cols, size_t ncols)
{
    d->cols = cols;
    d->ncols = ncols;
    d->col = 0;
    sb_add(&d->html, "<table><tr>");
    for (size_t i = 0; i < ncols; i++) {
        sb_add(&d->html, "<th style=\"text-align:left\">");
        sb_escape(&d->html, cols[i].head);
        sb_add(&d->html, "</th>");
        size_t at = d->text.len;
        sb_plain(&d->text, cols[i].head);
        size_t have = d->text.failed ? 0 : chars(d->text.s + at, d->text.len - at);
        for (size_t w = (size_t)(cols[i].width > 0 ? cols[i].width : 0); have < w; have++)
            put(&d->text, " ", 1);
        put(&d->text, i + 1 < ncols ? " " : "\n", 1);
    }
    sb_add(&d->html, "</tr>");
}

void doc_cell(struct doc *d)
{
    if (d->cols == NULL)
        return;
    if (d->col > 0)
        cell_end(d);
    if (d->col == 0)
        sb_add(&d->html, "<tr>");
    d->col++;
    sb_add(&d->html, "<td>");
    d->cell_at = d->text.len;
}

void doc_table_end(struct doc *d)
{
    if (d->cols == NULL)
        return;
    while (d->col > 0 && d->col < d->ncols) /* a short row: the rest empty */
        doc_cell(d);
    if (d->col > 0)
        cell_end(d);
    sb_add(&d->html, "</table>");
    d->cols = NULL;
}

void doc_free(struct doc *d)
{
    sb_free(&d->text);
    sb_free(&d->html);
    *d = (struct doc){0};
}
