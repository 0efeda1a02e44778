/* connection: the connection file the Jupyter client writes for a kernel. Every field is
 * checked so that a broken file fails at start with a sentence, not later with a socket error. */
#include "connection.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *connection_strerror(int code)
{
    switch (code) {
    case CONNECTION_OK:
        return "ok";
    case CONNECTION_EREAD:
        return "the connection file cannot be read";
    case CONNECTION_EJSON:
        return "the connection file is not a JSON object";
    case CONNECTION_EFIELD:
        return "the connection file lacks a required field";
    case CONNECTION_EPORT:
        return "the connection file has a port outside 1..65535";
    case CONNECTION_ESCHEME:
        return "the connection file asks for an unsupported signature scheme";
    case CONNECTION_ETRANSPORT:
        return "the connection file asks for an unsupported transport";
    case CONNECTION_EKEY:
        return "the connection file has an empty key (messages would not be signed)";
    }
    return "unknown connection error";
}

static int get_string(json_t *root, const char *name, char *dst, size_t len, char *detail,
                      size_t detail_len)
{
    json_t *v = json_object_get(root, name);
    if (!json_is_string(v) || json_string_length(v) >= len) {
        snprintf(detail, detail_len, "field \"%s\" is missing or not a short string", name);
        return CONNECTION_EFIELD;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return CONNECTION_OK;
}

static int get_port(json_t *root, const char *name, int *dst, char *detail, size_t detail_len)
{
    json_t *v = json_object_get(root, name);
    if (!json_is_integer(v)) {
        snprintf(detail, detail_len, "field \"%s\" is missing or not an integer", name);
        return CONNECTION_EFIELD;
    }
    json_int_t p = json_integer_value(v);
    if (p < 1 || p > 65535) {
        snprintf(detail, detail_len, "field \"%s\" is %lld, not a port in 1..65535", name,
                 (long long)p);
        return CONNECTION_EPORT;
    }
    *dst = (int)p;
    return CONNECTION_OK;
}

int connection_load(const char *path, int allow_empty_key, struct connection *out, char *detail,
                    size_t detail_len)
{
    memset(out, 0, sizeof *out);
    detail[0] = '\0';
    json_error_t jerr;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(detail, detail_len, "cannot open %s", path);
        return CONNECTION_EREAD;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        out->insecure_mode = 1;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (root == NULL || !json_is_object(root)) {
        /* jansson quotes the token at the error ("invalid token near 'abc'"), which in a
         * damaged file can be the key itself: the reason and the line only. */
        char *near = root ? NULL : strstr(jerr.text, " near ");
        if (near != NULL)
            *near = '\0';
        snprintf(detail, detail_len, "%s: %s (line %d)", path,
                 root ? "top level is not an object" : jerr.text, jerr.line);
        json_decref(root);
        return CONNECTION_EJSON;
    }
    int rc = CONNECTION_OK;
    char scheme[64] = "hmac-sha256";
    char key[4096] = "";
    if ((rc = get_string(root, "transport", out->transport, sizeof out->transport, detail,
                         detail_len)) ||
        (rc = get_string(root, "ip", out->ip, sizeof out->ip, detail, detail_len)) ||
        (rc = get_string(root, "key", key, sizeof key, detail, detail_len)) ||
        (rc = get_port(root, "shell_port", &out->shell_port, detail, detail_len)) ||
        (rc = get_port(root, "control_port", &out->control_port, detail, detail_len)) ||
        (rc = get_port(root, "stdin_port", &out->stdin_port, detail, detail_len)) ||
        (rc = get_port(root, "iopub_port", &out->iopub_port, detail, detail_len)) ||
        (rc = get_port(root, "hb_port", &out->hb_port, detail, detail_len)))
        goto done;
    if (json_object_get(root, "signature_scheme") &&
        (rc = get_string(root, "signature_scheme", scheme, sizeof scheme, detail, detail_len)))
        goto done;
    if (strcmp(scheme, "hmac-sha256") != 0) {
        snprintf(detail, detail_len, "signature_scheme \"%s\" is not hmac-sha256", scheme);
        rc = CONNECTION_ESCHEME;
        goto done;
    }
    if (strcmp(out->transport, "tcp") != 0 && strcmp(out->transport, "ipc") != 0) {
        snprintf(detail, detail_len, "transport \"%s\" is neither tcp nor ipc", out->transport);
        rc = CONNECTION_ETRANSPORT;
        goto done;
    }
    if (key[0] == '\0' && !allow_empty_key) {
        snprintf(detail, detail_len,
                 "key is empty; set SPARKERNEL_ALLOW_EMPTY_KEY=1 to accept unsigned messages");
        rc = CONNECTION_EKEY;
        goto done;
    }
    out->key_len = strlen(key);
    out->key = strdup(key);
done:
    memset(key, 0, sizeof key);
    json_decref(root);
    if (rc != CONNECTION_OK)
        connection_clear(out);
    return rc;
}

void connection_clear(struct connection *c)
{
    if (c->key != NULL) {
        memset(c->key, 0, c->key_len);
        free(c->key);
    }
    c->key = NULL;
    c->key_len = 0;
}

void connection_endpoint(const struct connection *c, int port, char *buf, size_t len)
{
    if (strcmp(c->transport, "ipc") == 0)
        snprintf(buf, len, "ipc://%s-%d", c->ip, port);
    else
        snprintf(buf, len, "tcp://%s:%d", c->ip, port);
}
