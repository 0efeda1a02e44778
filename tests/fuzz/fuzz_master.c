/* fuzz_master: libFuzzer harness for the pure half of driver/master.c. The input is a master's
 * GET /json/ answer (the seeds in tests/fuzz/corpus/master/ are the fixtures of
 * tests/unit/data/master-json/, recorded from a Spark standalone master). What parses is judged
 * for executor requests of several sizes, with verdict buffers from roomy to one byte, and
 * formatted as the worker table. Checks the parsed invariants the header promises, that a
 * verdict is always a NUL-terminated string within its buffer, and that the table has one line
 * per worker after its header.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       $(pkg-config --cflags jansson libcurl) tests/fuzz/fuzz_master.c driver/master.c \
 *       driver/curl_lazy.c kernel/log.c $(pkg-config --libs jansson) -ldl \
 *       -o build/fuzz_master
 *   build/fuzz_master -max_total_time=60 tests/fuzz/corpus/master/ */
#include "../../driver/master.h"
#include "../../kernel/log.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

static void check_status(const struct master_status *st)
{
    if (st->url == NULL || st->status == NULL || st->cores < 0 || st->coresused < 0 ||
        st->memory < 0 || st->memoryused < 0 || st->aliveworkers < 0 ||
        (size_t)st->aliveworkers > st->nworkers || (st->nworkers > 0 && st->workers == NULL) ||
        (st->napps > 0 && st->apps == NULL))
        __builtin_trap();
    for (size_t i = 0; i < st->nworkers; i++) {
        const struct master_worker *w = &st->workers[i];
        if (w->id == NULL || w->host == NULL || w->webuiaddress == NULL || w->state == NULL ||
            w->port < 0 || w->port > 65535 || w->cores < 0 || w->coresused < 0 ||
            w->coresfree < 0 || w->memory < 0 || w->memoryused < 0 || w->memoryfree < 0)
            __builtin_trap();
    }
    for (size_t i = 0; i < st->napps; i++) {
        const struct master_app *a = &st->apps[i];
        if (a->id == NULL || a->name == NULL || a->state == NULL || a->user == NULL ||
            a->cores < 0 || a->memoryperexecutor < 0)
            __builtin_trap();
    }
}

static void check_verdicts(const struct master_status *st)
{
    static const struct {
        int cores;
        long memory_mb;
    } asks[] = {{1, 1024}, {0, 0}, {2, 512}, {4, 8192}, {64, 1}, {INT_MAX, LONG_MAX}, {-3, -5}};
    static const size_t lens[] = {2048, 97, 1};
    char verdict[2048 + 1];
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        int first = 0;
        for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
            memset(verdict, 'x', sizeof verdict);
            int rc = master_check_request(st, asks[i].cores, asks[i].memory_mb, verdict, lens[j]);
            if (strnlen(verdict, lens[j]) == lens[j] || verdict[lens[j]] != 'x')
                __builtin_trap(); /* not terminated, or written past its end */
            if (rc != MASTER_OK && rc != MASTER_ENOTALIVE && rc != MASTER_ENOWORKER &&
                rc != MASTER_ETOOBIG)
                __builtin_trap();
            if (j == 0)
                first = rc;
            else if (rc != first)
                __builtin_trap(); /* the verdict does not depend on the room for its text */
            if (lens[j] > 1 && verdict[0] == '\0')
                __builtin_trap();
        }
    }
    if (master_check_request(st, 1, 1024, NULL, 0) == MASTER_EARG)
        __builtin_trap();
}

static void check_table(const struct master_status *st)
{
    char *table = master_format_workers(st);
    if (table == NULL)
        return; /* out of memory */
    size_t lines = 0, len = strlen(table);
    for (const char *p = table; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    /* Worker fields may hold newlines of their own, so only a lower bound. */
    if (len == 0 || table[len - 1] != '\n' || lines < 1 + (st->nworkers ? st->nworkers : 1))
        __builtin_trap();
    free(table);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct master_status *st = NULL;
    int rc = master_parse(size ? (const char *)data : "", size, &st);
    if ((rc == MASTER_OK) != (st != NULL) ||
        (rc != MASTER_OK && rc != MASTER_EJSON && rc != MASTER_ENOMEM))
        __builtin_trap();
    if (st == NULL)
        return 0;
    check_status(st);
    check_verdicts(st);
    check_table(st);
    master_status_destroy(&st);
    if (st != NULL)
        __builtin_trap();
    return 0;
}
