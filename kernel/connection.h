/* connection: reads and checks a Jupyter connection file. */
#ifndef SPARKERNEL_CONNECTION_H
#define SPARKERNEL_CONNECTION_H

#include <stddef.h>

enum connection_error {
    CONNECTION_OK = 0,
    CONNECTION_EREAD = -1,      /* file missing or unreadable */
    CONNECTION_EJSON = -2,      /* not valid JSON / not an object */
    CONNECTION_EFIELD = -3,     /* a required field is missing or has the wrong type */
    CONNECTION_EPORT = -4,      /* a port outside 1..65535 */
    CONNECTION_ESCHEME = -5,    /* a signature scheme other than hmac-sha256 */
    CONNECTION_ETRANSPORT = -6, /* a transport other than tcp or ipc */
    CONNECTION_EKEY = -7,       /* empty key while empty keys are not allowed */
};

struct connection {
    char transport[8];
    char ip[256];
    int shell_port, control_port, stdin_port, iopub_port, hb_port;
    char *key; /* owned; may be "" only when allowed */
    size_t key_len;
    int insecure_mode; /* file readable by group or others */
};

/* Parses the file at path into *out (zeroed first). On error, detail receives a sentence
 * naming the file and the field. Caller frees with connection_clear(). */
int connection_load(const char *path, int allow_empty_key, struct connection *out, char *detail,
                    size_t detail_len);
void connection_clear(struct connection *c);
/* Writes "tcp://ip:port" (or "ipc://ip-port") for one channel into buf. */
void connection_endpoint(const struct connection *c, int port, char *buf, size_t len);
const char *connection_strerror(int code);

#endif
