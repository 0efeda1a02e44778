/* jfield: the checked getters for fields of JSON answers from outside (the master's /json/,
 * the driver's REST API). Each says in why what is wrong with the field, for its caller's
 * error. Absent and null are the same; strings and arrays are borrowed from obj. */
#ifndef SPARKERNEL_JFIELD_H
#define SPARKERNEL_JFIELD_H

#include <jansson.h>
#include <stddef.h>

enum jfield_error {
    JFIELD_OK = 0,
    JFIELD_EMISSING = -1, /* absent or null, and required */
    JFIELD_ETYPE = -2,    /* not the type asked for */
    JFIELD_ERANGE = -3,   /* an integer outside min..max */
};

/* A string: absent (not required) leaves *dst NULL. */
int jfield_str(json_t *obj, const char *key, int required, const char **dst, char *why, size_t len);
/* An integer within [min, max]: absent (not required) leaves *dst untouched and *present
 * (may be NULL) 0. */
int jfield_int(json_t *obj, const char *key, int required, long long min, long long max,
               long long *dst, int *present, char *why, size_t len);
/* An array: absent (not required) leaves *dst NULL. */
int jfield_array(json_t *obj, const char *key, int required, json_t **dst, char *why, size_t len);

#endif
