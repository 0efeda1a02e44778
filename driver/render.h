/* render: what cells display. A growing string (struct sb), the one HTML escaper every
 * outside string goes through, and a paragraph written once and kept both ways (struct doc:
 * its text/plain and its text/html, words escaped in the HTML, tables aligned in the text). */
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
 * included), control characters as spaces except newlines and tabs (HTML's own white space:
 * a <pre> keeps its lines, anywhere else they show as spaces). */
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

/* A column of a doc table: its heading, its width in the text (characters; the text pads
 * shorter cells, left-aligned or right-aligned, and a cut column cuts longer ones at a
 * character boundary; width 0 for the last column: no padding). */
struct doc_column {
    const char *head;
    int width;
    enum { DOC_LEFT, DOC_RIGHT, DOC_CUT } align;
};

/* A paragraph for a cell, written once: words go into both the text and the HTML (escaped
 * there), markup into the HTML only. Start from {0}; doc_free when done. Every call takes
 * borrowed strings (NULL: nothing). Out of memory, the doc is cut (never a crash). */
struct doc {
    struct sb text, html;
    const struct doc_column *cols; /* the table being written (borrowed), or NULL */
    size_t ncols, col;             /* its width; the next cell's column (0: no row open) */
    size_t cell_at;                /* where the open cell's text starts */
};

/* Words, printf-style: as they are in the text (on one line inside a table's cell), escaped
 * in the HTML. */
void doc_say(struct doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Words inside an HTML element (tag: "b", "code", "pre", "li"...; no attributes): the text
 * gets the words alone. */
void doc_in(struct doc *d, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A link: <a href=url target=_blank>label</a> in the HTML, "label: url" in the text. */
void doc_link(struct doc *d, const char *label, const char *url);
/* Markup, each side its own, literally (no format, no escaping): doc_mark(d, "<ul>", "\n"). */
void doc_mark(struct doc *d, const char *html, const char *text);
/* Starts a table (cols borrowed until doc_table_end) and writes its heading row. */
void doc_table(struct doc *d, const struct doc_column *cols, size_t ncols);
/* Starts the next cell (the first starts a row; after the last column, a new row): what
 * follows until the next doc_cell or doc_table_end is that cell. */
void doc_cell(struct doc *d);
/* Ends the open row and the table. */
void doc_table_end(struct doc *d);
void doc_free(struct doc *d);

#endif
