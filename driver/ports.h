/* ports: the fixed driver ports for pod networking. A kernel takes the first free "slot"
 * (slot i: driver port + 2i, block manager port + 2i, UI port + i), so that several kernels
 * share an edgenode and every port they use is one the chart's headless Service exposes.
 * Never a random port: a port no Service exposes is a job that hangs. */
#ifndef SPARKERNEL_PORTS_H
#define SPARKERNEL_PORTS_H

#include <stddef.h>

struct ports {
    int driver, block_manager, ui;
    int slot;
};

enum ports_error { PORTS_OK = 0, PORTS_ETAKEN = -1 };
const char *ports_strerror(int code);

/* 1 if a TCP listener can bind addr:port now (SO_REUSEADDR, like the JVM). */
int ports_free(const char *bind_addr, int port);
/* Picks the first slot whose three ports are free. With slots == 1 the given ports are the
 * only choice. On PORTS_ETAKEN, detail says which ports were taken and what to do. */
int ports_choose(const char *bind_addr, int driver, int block_manager, int ui, int slots,
                 struct ports *out, char *detail, size_t len);
/* The address of this host that packets to host:port leave from (no packet is sent), into
 * out; falls back to 127.0.0.1. */
void ports_route_address(const char *host, int port, char *out, size_t len);

#endif
