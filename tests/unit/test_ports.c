/* test_ports: the port probes and the route-address probe run on the kernel's loop, so an
 * address must never wait for a name server: getaddrinfo is interposed here to count the
 * lookups that could reach DNS (a host given without AI_NUMERICHOST). */
#include <criterion/criterion.h>

#include "../../driver/ports.h"

#include <dlfcn.h>
#include <netdb.h>
#include <string.h>

static int by_name; /* lookups of a host that could go to DNS */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    if (node != NULL && !(hints && (hints->ai_flags & AI_NUMERICHOST)))
        by_name++;
    return real(node, service, hints, res);
}

Test(ports, addresses_are_never_looked_up_by_name)
{
    struct ports p;
    char detail[512], out[64];
    cr_assert_eq(ports_choose("127.0.0.1", 41000, 41001, 46000, 8, &p, detail, sizeof detail),
                 PORTS_OK, "%s", detail);
    cr_assert(ports_free("0.0.0.0", p.driver));
    ports_route_address("127.0.0.1", 7077, out, sizeof out);
    cr_assert_str_eq(out, "127.0.0.1");
    cr_assert_eq(by_name, 0, "%d lookups could have waited for DNS", by_name);
}

Test(ports, names_still_resolve_as_a_last_resort)
{
    char out[64];
    ports_route_address("localhost", 7077, out, sizeof out);
    cr_assert_str_eq(out, "127.0.0.1");
    cr_assert_geq(by_name, 1);
}
