/* http: the driver's one HTTP client: libcurl multi handles driven by the kernel's loop,
 * and the same requests blocking where no loop runs (shutdown, command-line tools). */
#include "http.h"

#include "curl_lazy.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

struct request {
    CURL *easy;
    char *buf;
    size_t len, cap;
    int too_big;
    char *post;
    http_done_fn done;
    void *ctx;
    char error[CURL_ERROR_SIZE];
    struct request *next;
};

struct http {
    CURLM *multi;
    struct request *requests;
    int in_flight;
};

const char *http_strerror(int code)
{
    switch (code) {
    case HTTP_OK:
        return "ok";
    case HTTP_EUNREACHABLE:
        return "no answer (refused, unknown host or timed out)";
    case HTTP_ESTATUS:
        return "an HTTP error status";
    case HTTP_ETOOBIG:
        return "response too large";
    case HTTP_ENOMEM:
        return "out of memory";
    case HTTP_ECANCELLED:
        return "cancelled (the kernel is stopping)";
    }
    return "unknown http error";
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct request *r = userdata;
    size_t n = size * nmemb;
    if (r->len + n + 1 > HTTP_MAX_BODY) {
        r->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 8192;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (nb == NULL)
            return 0;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, ptr, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return n;
}

static CURL *easy_new(const char *url, long timeout_ms, struct request *r)
{
    const char *why;
    if (!curl_lazy_available(&why)) {
        snprintf(r->error, sizeof r->error, "%s", why);
        return NULL;
    }
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sparkernel");
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    return e;
}

struct http *http_new(void)
{
    /* libcurl (and the TLS library under it) starts on the first request: a kernel that
     * never talks to a master or a driver UI does not pay its memory. */
    return calloc(1, sizeof(struct http));
}

static void request_free(struct http *h, struct request *r)
{
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    free(r->buf);
    free(r->post);
    free(r);
}

void http_destroy(struct http **self)
{
    if (self == NULL || *self == NULL)
        return;
    struct http *h = *self;
    while (h->requests) {
        struct request *r = h->requests;
        h->requests = r->next;
        if (r->done)
            r->done(r->ctx, HTTP_ECANCELLED, 0, "", 0, http_strerror(HTTP_ECANCELLED));
        request_free(h, r);
    }
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h);
    *self = NULL;
}

int http_request(struct http *h, const char *url, const char *post_form, long timeout_ms,
                 http_done_fn done, void *ctx)
{
    if (h->multi == NULL) {
        if (!curl_lazy_available(NULL) || (h->multi = curl_multi_init()) == NULL)
            return HTTP_ENOMEM;
    }
    struct request *r = calloc(1, sizeof *r);
    if (r == NULL)
        return HTTP_ENOMEM;
    r->done = done;
    r->ctx = ctx;
    r->easy = easy_new(url, timeout_ms, r);
    if (r->easy == NULL) {
        free(r);
        return HTTP_ENOMEM;
    }
    if (post_form != NULL) {
        r->post = strdup(post_form);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->post);
    }
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        curl_easy_cleanup(r->easy);
        free(r->post);
        free(r);
        return HTTP_ENOMEM;
    }
    r->next = h->requests;
    h->requests = r;
    h->in_flight++;
    int running;
    curl_multi_perform(h->multi, &running);
    return HTTP_OK;
}

int http_fds(struct http *h, struct http_fd *fds, int max)
{
    fd_set r, w, x;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    int maxfd = -1;
    if (h->in_flight == 0 || curl_multi_fdset(h->multi, &r, &w, &x, &maxfd) != CURLM_OK)
        return 0;
    int n = 0;
    for (int fd = 0; fd <= maxfd && n < max; fd++) {
        if (FD_ISSET(fd, &r) || FD_ISSET(fd, &w)) {
            fds[n].fd = fd;
            fds[n].read = FD_ISSET(fd, &r) != 0;
            fds[n].write = FD_ISSET(fd, &w) != 0;
            n++;
        }
    }
    return n;
}

long http_timeout_ms(struct http *h)
{
    if (h->in_flight == 0)
        return -1;
    long t = -1;
    curl_multi_timeout(h->multi, &t);
    /* No socket yet (name resolution runs on curl's thread): look again soon. */
    return t < 0 ? 20 : t;
}

void http_perform(struct http *h)
{
    if (h->in_flight == 0)
        return;
    int running;
    curl_multi_perform(h->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct request *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode result = m->data.result;
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        /* unlink before the callback, which may start new requests */
        for (struct request **p = &h->requests; *p; p = &(*p)->next)
            if (*p == r) {
                *p = r->next;
                break;
            }
        h->in_flight--;
        int status = r->too_big                 ? HTTP_ETOOBIG
                     : result != CURLE_OK       ? HTTP_EUNREACHABLE
                     : code < 200 || code > 299 ? HTTP_ESTATUS
                                                : HTTP_OK;
        const char *err = status == HTTP_OK ? NULL
                          : r->error[0]     ? r->error
                                            : curl_easy_strerror(result);
        if (r->done)
            r->done(r->ctx, status, code, r->buf ? r->buf : "", r->len, err);
        request_free(h, r);
    }
}

int http_request_blocking(const char *url, const char *post_form, long timeout_ms, long *code,
                          char **body, size_t *len, char *error, size_t error_len)
{
    struct request r;
    memset(&r, 0, sizeof r);
    *code = 0;
    if (body)
        *body = NULL;
    if (len)
        *len = 0;
    CURL *e = easy_new(url, timeout_ms, &r);
    if (e == NULL) {
        snprintf(error, error_len, "%s", r.error[0] ? r.error : "out of memory");
        return r.error[0] ? HTTP_EUNREACHABLE : HTTP_ENOMEM;
    }
    if (post_form != NULL)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, post_form);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, code);
    curl_easy_cleanup(e);
    int status = r.too_big                    ? HTTP_ETOOBIG
                 : rc == CURLE_OUT_OF_MEMORY  ? HTTP_ENOMEM
                 : rc != CURLE_OK             ? HTTP_EUNREACHABLE
                 : *code < 200 || *code > 299 ? HTTP_ESTATUS
                                              : HTTP_OK;
    if (status != HTTP_OK && status != HTTP_ESTATUS)
        snprintf(error, error_len, "%s",
                 r.too_big    ? "the answer is too large"
                 : r.error[0] ? r.error
                              : curl_easy_strerror(rc));
    if (body != NULL && (status == HTTP_OK || status == HTTP_ESTATUS)) {
        *body = r.buf ? r.buf : strdup("");
        r.buf = NULL;
        if (len)
            *len = *body ? r.len : 0;
    }
    free(r.buf);
    return status;
}

char *http_form_escape(const char *text)
{
    if (!curl_lazy_available(NULL))
        return NULL;
    CURL *e = curl_easy_init();
    char *escaped = e ? curl_easy_escape(e, text, 0) : NULL;
    char *copy = escaped ? strdup(escaped) : NULL;
    curl_free(escaped);
    if (e)
        curl_easy_cleanup(e);
    return copy;
}
