/* fake_http: a forked stand-in for an HTTP server in the C tests (the master's UI, the
 * driver's REST API): whole recorded answers by method and path prefix, and a log of what
 * was asked. */
#ifndef SPARKERNEL_FAKE_HTTP_H
#define SPARKERNEL_FAKE_HTTP_H

#include <sys/types.h>

struct fake_route {
    const char *method; /* "GET", "POST" */
    const char *path;   /* a prefix of the request's path */
    const char *answer; /* a whole HTTP response */
};

struct fake_http {
    pid_t pid;
    int port;
    int log_fd; /* read end of the log: "METHOD path body" per request */
};

/* A socket listening on 127.0.0.1 (an unused port, in *port) that nobody answers yet. */
int fake_http_listener(int *port);
/* Serves routes (borrowed; the first match wins, 404 otherwise) on 127.0.0.1 until
 * fake_http_stop; the child never outlives the test. */
struct fake_http fake_http_start(const struct fake_route *routes);
/* Stops it; returns its log (malloc'd): every request as "METHOD path body\n", or with
 * method given, that method's requests only, as "path body\n". */
char *fake_http_stop(struct fake_http *sv, const char *method);
/* A whole response with that status line ("200 OK") and JSON body (malloc'd). */
char *fake_http_answer(const char *status, const char *body);

#endif
