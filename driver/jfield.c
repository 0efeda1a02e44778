/* jfield: checked JSON field getters (jfield.h). */
#include "jfield.h"

#include <stdio.h>

/* The field, or NULL when absent or null (then JFIELD_EMISSING in *rc if required). */
static json_t *field(json_t *obj, const char *key, int required, int *rc, char *why, size_t len)
{
    json_t *v = json_object_get(obj, key);
    *rc = JFIELD_OK;
    if (v != NULL && !json_is_null(v))
        return v;
    if (required) {
        snprintf(why, len, "lacks the field \"%s\"", key);
        *rc = JFIELD_EMISSING;
    }
    return NULL;
}

int jfield_str(json_t *obj, const char *key, int required, const char **dst, char *why, size_t len)
{
    int rc;
    json_t *v = field(obj, key, required, &rc, why, len);
    *dst = NULL;
    if (v == NULL)
        return rc;
    if (!json_is_string(v)) {
        snprintf(why, len, "field \"%s\" is not a string", key);
        return JFIELD_ETYPE;
    }
    *dst = json_string_value(v);
    return JFIELD_OK;
}

int jfield_int(json_t *obj, const char *key, int required, long long min, long long max,
               long long *dst, int *present, char *why, size_t len)
{
    int rc;
    json_t *v = field(obj, key, required, &rc, why, len);
    if (present != NULL)
        *present = 0;
    if (v == NULL)
        return rc;
    if (!json_is_integer(v)) {
        snprintf(why, len, "field \"%s\" is not an integer", key);
        return JFIELD_ETYPE;
    }
    long long n = (long long)json_integer_value(v);
    if (n < min || n > max) {
        snprintf(why, len, "field \"%s\" is %lld, outside %lld..%lld", key, n, min, max);
        return JFIELD_ERANGE;
    }
    *dst = n;
    if (present != NULL)
        *present = 1;
    return JFIELD_OK;
}

int jfield_array(json_t *obj, const char *key, int required, json_t **dst, char *why, size_t len)
{
    int rc;
    json_t *v = field(obj, key, required, &rc, why, len);
    *dst = NULL;
    if (v == NULL)
        return rc;
    if (!json_is_array(v)) {
        snprintf(why, len, "field \"%s\" is not an array", key);
        return JFIELD_ETYPE;
    }
    *dst = v;
    return JFIELD_OK;
}
