/* fuzz_connection: libFuzzer harness for kernel/connection.c. connection_load reads a path, so
 * the input is written to one in-memory file (memfd, opened as /proc/self/fd/N; a file under
 * $TMPDIR where memfd_create is missing) and loaded, with and without empty keys allowed. The seeds
 * in tests/fuzz/corpus/connection/ are files written by
 * jupyter_client.connect.write_connection_file (tests/fuzz/make_seeds.py). Checks that a loaded
 * file holds what the checks promise and that a refusal comes with a sentence.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       $(pkg-config --cflags jansson) tests/fuzz/fuzz_connection.c kernel/connection.c \
 *       $(pkg-config --libs jansson) -o build/fuzz_connection
 *   build/fuzz_connection -max_total_time=60 tests/fuzz/corpus/connection/ */
#include "../../kernel/connection.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096];
static int fd = -1, on_disk;

static void remove_file(void)
{
    close(fd);
    if (on_disk)
        unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* In memory: a file on disk costs a write-back per input, ten times slower. */
    fd = memfd_create("sparkernel-fuzz-connection", MFD_CLOEXEC);
    if (fd >= 0) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/sparkernel-fuzz-connection-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        fd = mkstemp(path);
        on_disk = 1;
    }
    if (fd < 0)
        __builtin_trap();
    atexit(remove_file);
    return 0;
}

static int port_ok(int p)
{
    return p >= 1 && p <= 65535;
}

static void check(int rc, const struct connection *c, const char *detail, size_t detail_len,
                  int allow_empty_key)
{
    if (strnlen(detail, detail_len) == detail_len || connection_strerror(rc) == NULL)
        __builtin_trap();
    if (rc != CONNECTION_OK) {
        if (rc < CONNECTION_EKEY || rc > CONNECTION_OK || detail[0] == '\0' || c->key != NULL ||
            c->key_len != 0)
            __builtin_trap();
        return;
    }
    if ((strcmp(c->transport, "tcp") != 0 && strcmp(c->transport, "ipc") != 0) ||
        !port_ok(c->shell_port) || !port_ok(c->control_port) || !port_ok(c->stdin_port) ||
        !port_ok(c->iopub_port) || !port_ok(c->hb_port) || c->key == NULL ||
        strlen(c->key) != c->key_len || (c->key_len == 0 && !allow_empty_key) ||
        strnlen(c->ip, sizeof c->ip) == sizeof c->ip)
        __builtin_trap();
    char endpoint[300];
    connection_endpoint(c, c->shell_port, endpoint, sizeof endpoint);
    if (strncmp(endpoint, c->transport, strlen(c->transport)) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        __builtin_trap();
    for (int allow = 0; allow <= 1; allow++) {
        struct connection c;
        char detail[512];
        int rc = connection_load(path, allow, &c, detail, sizeof detail);
        check(rc, &c, detail, sizeof detail, allow);
        connection_clear(&c);
    }
    return 0;
}
