/* history: the inputs (and text outputs) of this kernel session, answering history_request
 * (tail, range, search) without a round trip to the executor. */
#ifndef SPARKERNEL_HISTORY_H
#define SPARKERNEL_HISTORY_H

#include <jansson.h>
#include <stddef.h>

#define HISTORY_SESSION 1 /* this kernel process's session number */

struct history;

/* Keeps at most max_entries (oldest dropped). Returns a new object; history_destroy()s. */
struct history *history_new(size_t max_entries);
void history_destroy(struct history **self);
/* Copies input. line is the execution count. */
int history_add(struct history *self, int line, const char *input);
/* Copies text as the output of line (the text/plain of its execute_result). */
void history_set_output(struct history *self, int line, const char *text);
size_t history_count(const struct history *self);
/* Answers a history_request content (borrowed). Returns a new array of
 * [session, line, input] or [session, line, [input, output]] entries. */
json_t *history_query(const struct history *self, json_t *request);

#endif
