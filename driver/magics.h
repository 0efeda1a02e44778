/* magics: the %spark line magics, handled by the kernel itself (they need the master client,
 * the settings and the ports, which live here, not in the executor). */
#ifndef SPARKERNEL_MAGICS_H
#define SPARKERNEL_MAGICS_H

#include <jansson.h>

/* Splits a cell into its %spark lines and the rest. Returns a new array of the %spark
 * lines' arguments (text after "%spark", trimmed), empty when there are none, and sets
 * *rest to a malloc'd copy of the other lines (caller frees). Lines inside a %%cell magic
 * body, or after a line continuation, are left alone. */
json_t *magics_split(const char *code, char **rest);

/* Splits one magic's arguments into words (shell-like: whitespace, no quoting needed for
 * key=value). New reference. */
json_t *magics_words(const char *args);

#endif
