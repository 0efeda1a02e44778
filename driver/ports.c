/* ports: bind probes and the advertised-address probe. */
#include "ports.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* getaddrinfo without a name server when the host is an address (the usual case: the
 * bind address is 0.0.0.0 or POD_IP, the master is often given by address): the kernel's
 * loop must not wait for DNS. A name is resolved as a last resort (one lookup per probe
 * of a configured bind name; the master's name once per session start). */
static int lookup(const char *host, const char *service, struct addrinfo *hints,
                  struct addrinfo **res)
{
    int flags = hints->ai_flags;
    hints->ai_flags = flags | AI_NUMERICHOST;
    int rc = getaddrinfo(host, service, hints, res);
    hints->ai_flags = flags;
    if (rc == EAI_NONAME && host)
        rc = getaddrinfo(host, service, hints, res);
    return rc;
}

const char *ports_strerror(int code)
{
    switch (code) {
    case PORTS_OK:
        return "ok";
    case PORTS_ETAKEN:
        return "the driver's ports are taken in every slot";
    }
    return "unknown ports error";
}

int ports_free(const char *bind_addr, int port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (lookup(bind_addr && *bind_addr ? bind_addr : NULL, service, &hints, &res) != 0)
        return 0;
    int ok = 0;
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ok = bind(fd, res->ai_addr, res->ai_addrlen) == 0 && listen(fd, 1) == 0;
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

int ports_choose(const char *bind_addr, int driver, int block_manager, int ui, int slots,
                 struct ports *out, char *detail, size_t len)
{
    if (slots < 1)
        slots = 1;
    for (int i = 0; i < slots; i++) {
        int d = driver + 2 * i, b = block_manager + 2 * i, u = ui + i;
        if (d > 65535 || b > 65535 || u > 65535)
            break; /* the slots above the last port do not exist */
        if (ports_free(bind_addr, d) && ports_free(bind_addr, b) && ports_free(bind_addr, u)) {
            *out = (struct ports){d, b, u, i};
            return PORTS_OK;
        }
    }
    if (slots == 1)
        snprintf(
            detail, len,
            "The fixed Spark ports of this kernel are taken on %s (driver %d, block manager "
            "%d, UI %d): another kernel or program holds one of them. Stop the other "
            "session, or choose free ports with %%spark config spark.driver.port=… "
            "spark.driver.blockManager.port=… spark.ui.port=… (the ports must be reachable from "
            "the workers), then %%spark restart.",
            bind_addr, driver, block_manager, ui);
    else
        snprintf(detail, len,
                 "All %d Spark port slots of this host are taken (driver ports %d-%d, block "
                 "manager %d-%d, UI %d-%d): as many kernels already hold a Spark session here. "
                 "Shut down a notebook you no longer use (its session frees a slot), or deploy "
                 "with more slots (SPARKERNEL_PORT_SLOTS; the chart's "
                 "edgenode.portSlots), then %%spark restart.",
                 slots, driver, driver + 2 * (slots - 1), block_manager,
                 block_manager + 2 * (slots - 1), ui, ui + slots - 1);
    return PORTS_ETAKEN;
}

void ports_route_address(const char *host, int port, char *out, size_t len)
{
    snprintf(out, len, "127.0.0.1");
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    char service[16];
    snprintf(service, sizeof service, "%d", port > 0 ? port : 7077);
    if (lookup(host, service, &hints, &res) != 0)
        return;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd >= 0) {
        struct sockaddr_in local;
        socklen_t sl = sizeof local;
        /* connect() on UDP only picks a route and a source address. */
        if (connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
            getsockname(fd, (struct sockaddr *)&local, &sl) == 0)
            inet_ntop(AF_INET, &local.sin_addr, out, (socklen_t)len);
        close(fd);
    }
    freeaddrinfo(res);
}
