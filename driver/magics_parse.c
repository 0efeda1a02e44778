/* magics_parse: the %spark lines at the top of a cell, split from the rest, and their words. */
#include "magics.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_space(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

json_t *magics_split(const char *code, char **rest)
{
    json_t *out = json_array();
    size_t n = strlen(code);
    char *r = malloc(n + 1);
    size_t rl = 0;
    const char *p = code, *end = code + n;
    /* A cell magic (%%sql, %%bash...) owns the whole cell: nothing to split. */
    const char *first = skip_space(code, end);
    int cell_magic = end - first >= 2 && first[0] == '%' && first[1] == '%';
    int continued = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *s = skip_space(p, line_end);
        int is_magic = !cell_magic && !continued && line_end - s >= 6 &&
                       strncmp(s, "%spark", 6) == 0 &&
                       (line_end - s == 6 || s[6] == ' ' || s[6] == '\t' || s[6] == '\r');
        if (is_magic) {
            const char *a = skip_space(s + 6, line_end);
            const char *b = line_end;
            while (b > a && isspace((unsigned char)b[-1]))
                b--;
            json_array_append_new(out, json_stringn(a, (size_t)(b - a)));
        } else if (r != NULL) {
            memcpy(r + rl, p, (size_t)(line_end - p));
            rl += (size_t)(line_end - p);
            if (nl)
                r[rl++] = '\n';
        }
        continued = line_end > p && line_end[-1] == '\\';
        p = nl ? nl + 1 : end;
    }
    if (r != NULL)
        r[rl] = '\0';
    *rest = r;
    return out;
}

json_t *magics_words(const char *args)
{
    json_t *words = json_array();
    const char *p = args;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (p > start)
            json_array_append_new(words, json_stringn(start, (size_t)(p - start)));
    }
    return words;
}
