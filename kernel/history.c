/* history: a ring of entries in execution order; queries walk it. */
#include "history.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    int line;
    char *input;
    char *output;
};

struct history {
    struct entry *ring;
    size_t cap, start, count;
};

struct history *history_new(size_t max_entries)
{
    struct history *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->cap = max_entries ? max_entries : 1;
    h->ring = calloc(h->cap, sizeof *h->ring);
    if (h->ring == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

static struct entry *at(const struct history *h, size_t i)
{
    return &h->ring[(h->start + i) % h->cap];
}

void history_destroy(struct history **self)
{
    if (self == NULL || *self == NULL)
        return;
    struct history *h = *self;
    for (size_t i = 0; i < h->count; i++) {
        free(at(h, i)->input);
        free(at(h, i)->output);
    }
    free(h->ring);
    free(h);
    *self = NULL;
}

int history_add(struct history *h, int line, const char *input)
{
    char *copy = strdup(input);
    if (copy == NULL)
        return -1;
    if (h->count == h->cap) {
        struct entry *old = at(h, 0);
        free(old->input);
        free(old->output);
        h->start = (h->start + 1) % h->cap;
        h->count--;
    }
    struct entry *e = at(h, h->count++);
    e->line = line;
    e->input = copy;
    e->output = NULL;
    return 0;
}

void history_set_output(struct history *h, int line, const char *text)
{
    for (size_t i = h->count; i-- > 0;) {
        struct entry *e = at(h, i);
        if (e->line == line) {
            free(e->output);
            e->output = strdup(text);
            return;
        }
    }
}

size_t history_count(const struct history *h)
{
    return h->count;
}

/* session: what the entry says; IPython's range over session 0 (the current) says 0. */
static json_t *entry_json(const struct entry *e, int output, int session)
{
    json_t *payload = output ? json_pack("[s, s?]", e->input, e->output) : json_string(e->input);
    return json_pack("[i, i, o]", session, e->line, payload);
}

static int get_int(json_t *req, const char *key, int fallback)
{
    json_t *v = json_object_get(req, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : fallback;
}

json_t *history_query(const struct history *h, json_t *req)
{
    json_t *out = json_array();
    const char *type = json_string_value(json_object_get(req, "hist_access_type"));
    int output = json_is_true(json_object_get(req, "output"));
    if (type == NULL)
        return out;
    if (strcmp(type, "tail") == 0) {
        int n = get_int(req, "n", 10);
        size_t first = n >= 0 && (size_t)n < h->count ? h->count - (size_t)n : 0;
        for (size_t i = first; i < h->count; i++)
            json_array_append_new(out, entry_json(at(h, i), output, HISTORY_SESSION));
    } else if (strcmp(type, "range") == 0) {
        int session = get_int(req, "session", 0);
        /* 0 is the current session, negative counts back from it; only the current one
         * is kept. */
        if (session != HISTORY_SESSION && session != 0)
            return out;
        int start = get_int(req, "start", 0);
        json_t *stop_v = json_object_get(req, "stop");
        int stop = json_is_integer(stop_v) ? (int)json_integer_value(stop_v) : -1;
        for (size_t i = 0; i < h->count; i++) {
            struct entry *e = at(h, i);
            if (e->line >= start && (stop < 0 || e->line < stop))
                json_array_append_new(out, entry_json(e, output, session));
        }
    } else if (strcmp(type, "search") == 0) {
        const char *pattern = json_string_value(json_object_get(req, "pattern"));
        int n = get_int(req, "n", -1);
        int unique = json_is_true(json_object_get(req, "unique"));
        if (pattern == NULL)
            pattern = "*";
        /* Newest first so that n and unique keep the latest matches; reversed at the end. */
        json_t *rev = json_array();
        for (size_t i = h->count; i-- > 0 && (n < 0 || json_array_size(rev) < (size_t)n);) {
            struct entry *e = at(h, i);
            if (fnmatch(pattern, e->input, 0) != 0)
                continue;
            int dup = 0;
            for (size_t j = 0; unique && !dup && j < json_array_size(rev); j++) {
                json_t *seen = json_array_get(json_array_get(rev, j), 2);
                const char *s = json_is_array(seen) ? json_string_value(json_array_get(seen, 0))
                                                    : json_string_value(seen);
                dup = s != NULL && strcmp(s, e->input) == 0;
            }
            if (!dup)
                json_array_append_new(rev, entry_json(e, output, HISTORY_SESSION));
        }
        for (size_t j = json_array_size(rev); j-- > 0;)
            json_array_append(out, json_array_get(rev, j));
        json_decref(rev);
    }
    return out;
}
