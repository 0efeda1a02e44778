/* redact: no output shows a secret. The kernel knows the secrets it was given (the Jupyter
 * server's token and the Spark RPC secret from its environment, a secret setting of
 * %spark config); whatever a cell prints, displays, raises or returns that contains one
 * goes out with **** in its place, on iopub and in replies. A cell can always read what
 * its own session knows (spark.conf, os.environ): the promise is about what reaches the
 * notebook, which is saved and shared. */
#ifndef SPARKERNEL_REDACT_H
#define SPARKERNEL_REDACT_H

#include <jansson.h>

#define REDACT_MIN_LEN 6 /* shorter values would mask ordinary words: not redacted */
#define REDACT_MAX     16

/* Remembers a secret (copied). Returns 1 when added, 0 when NULL, too short, already
 * known or the table is full. */
int redact_add(const char *secret);
/* Replaces every known secret in every string of j (object values, array items, nested)
 * with "****", in place. Returns the number of replacements. */
size_t redact_json(json_t *j);
void redact_clear(void);

#endif
