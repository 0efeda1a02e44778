/* curl_lazy: libcurl loaded on first use. Linking libcurl (and the TLS, HTTP/2, SSH, LDAP
 * and IDN libraries it brings) costs the kernel 4-5 MB of resident memory from the moment it
 * starts; a kernel that never talks to a master or a driver UI should not pay that. Files
 * that call libcurl include this header instead of <curl/curl.h>; the curl_* names below
 * then go through a table filled by dlopen("libcurl.so.4") the first time one is used.
 * curl_lazy_available() says whether that worked (and why not, in *why). */
#ifndef SPARKERNEL_CURL_LAZY_H
#define SPARKERNEL_CURL_LAZY_H

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

struct curl_api {
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    CURLcode (*easy_perform)(CURL *);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    void (*free_)(void *);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_fdset)(CURLM *, fd_set *, fd_set *, fd_set *, int *);
    CURLMcode (*multi_timeout)(CURLM *, long *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURLMcode (*multi_cleanup)(CURLM *);
};

/* The table (loaded on the first call) or NULL when libcurl cannot be loaded. */
const struct curl_api *curl_lazy(void);
/* 1 if libcurl is there; else 0 and *why (static text) says what is missing. */
int curl_lazy_available(const char **why);

/* curl.h defines these two as macros of its own. */
#undef curl_easy_setopt
#undef curl_easy_getinfo

/* Calls through the table. Only call these after curl_lazy_available() said yes. */
#define curl_global_init(f)              (curl_lazy()->global_init(f))
#define curl_global_cleanup()            (curl_lazy()->global_cleanup())
#define curl_easy_init()                 (curl_lazy()->easy_init())
#define curl_easy_setopt(h, o, ...)      (curl_lazy()->easy_setopt((h), (o), __VA_ARGS__))
#define curl_easy_getinfo(h, i, ...)     (curl_lazy()->easy_getinfo((h), (i), __VA_ARGS__))
#define curl_easy_perform(h)             (curl_lazy()->easy_perform(h))
#define curl_easy_cleanup(h)             (curl_lazy()->easy_cleanup(h))
#define curl_easy_strerror(c)            (curl_lazy()->easy_strerror(c))
#define curl_easy_escape(h, s, n)        (curl_lazy()->easy_escape((h), (s), (n)))
#define curl_free(p)                     (curl_lazy()->free_(p))
#define curl_multi_init()                (curl_lazy()->multi_init())
#define curl_multi_add_handle(m, e)      (curl_lazy()->multi_add_handle((m), (e)))
#define curl_multi_remove_handle(m, e)   (curl_lazy()->multi_remove_handle((m), (e)))
#define curl_multi_perform(m, r)         (curl_lazy()->multi_perform((m), (r)))
#define curl_multi_fdset(m, r, w, x, mx) (curl_lazy()->multi_fdset((m), (r), (w), (x), (mx)))
#define curl_multi_timeout(m, t)         (curl_lazy()->multi_timeout((m), (t)))
#define curl_multi_info_read(m, n)       (curl_lazy()->multi_info_read((m), (n)))
#define curl_multi_cleanup(m)            (curl_lazy()->multi_cleanup(m))

#endif
