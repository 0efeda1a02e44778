/* curl_lazy: dlopen of libcurl and the symbol table. */
#define SPARKERNEL_CURL_LAZY_IMPL
#include "curl_lazy.h"

#include <dlfcn.h>
#include <stddef.h>

static struct curl_api api;
static int state; /* 0: not tried, 1: loaded, -1: failed */
static const char *failure = "";

static int load(void)
{
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        failure = "libcurl.so.4 cannot be loaded (install libcurl4)";
        return -1;
    }
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&api.global_init, "curl_global_init"},
        {(void **)&api.global_cleanup, "curl_global_cleanup"},
        {(void **)&api.easy_init, "curl_easy_init"},
        {(void **)&api.easy_setopt, "curl_easy_setopt"},
        {(void **)&api.easy_getinfo, "curl_easy_getinfo"},
        {(void **)&api.easy_perform, "curl_easy_perform"},
        {(void **)&api.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&api.easy_strerror, "curl_easy_strerror"},
        {(void **)&api.easy_escape, "curl_easy_escape"},
        {(void **)&api.free_, "curl_free"},
        {(void **)&api.multi_init, "curl_multi_init"},
        {(void **)&api.multi_add_handle, "curl_multi_add_handle"},
        {(void **)&api.multi_remove_handle, "curl_multi_remove_handle"},
        {(void **)&api.multi_perform, "curl_multi_perform"},
        {(void **)&api.multi_fdset, "curl_multi_fdset"},
        {(void **)&api.multi_timeout, "curl_multi_timeout"},
        {(void **)&api.multi_info_read, "curl_multi_info_read"},
        {(void **)&api.multi_cleanup, "curl_multi_cleanup"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(lib, syms[i].name);
        if (*syms[i].slot == NULL) {
            failure = "libcurl.so.4 lacks a function sparkernel needs (too old?)";
            return -1;
        }
    }
    /* Once, before any handle; the kernel loop is the only thread that uses libcurl. */
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        failure = "libcurl failed to initialise";
        return -1;
    }
    return 1;
}

const struct curl_api *curl_lazy(void)
{
    if (state == 0)
        state = load();
    return state == 1 ? &api : NULL;
}

int curl_lazy_available(const char **why)
{
    if (curl_lazy() != NULL)
        return 1;
    if (why)
        *why = failure;
    return 0;
}
