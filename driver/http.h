/* http: asynchronous HTTP for the kernel loop (libcurl's multi interface). The loop polls
 * the sockets libcurl asks for alongside ZeroMQ, so a slow master or driver UI never
 * blocks shell or control. Every request has a timeout. */
#ifndef SPARKERNEL_HTTP_H
#define SPARKERNEL_HTTP_H

#include <stddef.h>

enum http_error {
    HTTP_OK = 0,
    HTTP_EUNREACHABLE = -1, /* connection refused, DNS failure, timeout */
    HTTP_ESTATUS = -2,      /* an answer, but not 2xx */
    HTTP_ETOOBIG = -3,      /* response above the size limit */
    HTTP_ENOMEM = -4,
    HTTP_ECANCELLED = -5, /* http_destroy() with the request in flight: free ctx, nothing else */
};

#define HTTP_MAX_BODY (16u << 20)

/* Called once per request. body is borrowed (NUL-terminated, len bytes) and valid only
 * during the call; error is a sentence from libcurl or NULL. */
typedef void (*http_done_fn)(void *ctx, int status, long http_code, const char *body, size_t len,
                             const char *error);

struct http;
struct http_fd {
    int fd;
    int read, write;
};

/* Returns a new object (libcurl starts on the first request); http_destroy()s it,
 * cancelling what is in flight: each callback then runs once with HTTP_ECANCELLED, so that
 * its owner can free ctx. */
struct http *http_new(void);
void http_destroy(struct http **self);
/* Starts a GET (post_form NULL) or a form POST. Borrows strings (copied). */
int http_request(struct http *self, const char *url, const char *post_form, long timeout_ms,
                 http_done_fn done, void *ctx);
/* The sockets to poll now (at most max); returns how many. */
int http_fds(struct http *self, struct http_fd *fds, int max);
/* Milliseconds until libcurl wants to be called again (-1: nothing pending). */
long http_timeout_ms(struct http *self);
/* Lets libcurl progress and runs the callbacks of finished requests. */
void http_perform(struct http *self);
const char *http_strerror(int code);

/* The same request, blocking (for the kernel's last seconds and command-line tools): a GET
 * (post_form NULL) or a form POST, never following a redirect. Returns HTTP_OK (2xx) or
 * HTTP_ESTATUS (another status) with *code and, when body is not NULL, the answer in *body
 * (malloc'd, NUL-terminated, *len bytes; caller frees); another http_error with a sentence
 * in error otherwise. Borrows the strings. */
int http_request_blocking(const char *url, const char *post_form, long timeout_ms, long *code,
                          char **body, size_t *len, char *error, size_t error_len);
/* text percent-encoded for a form value (libcurl's escaper), malloc'd (caller frees), or
 * NULL (out of memory, or no libcurl). */
char *http_form_escape(const char *text);

#endif
