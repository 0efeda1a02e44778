/* master_probe: driver/master.c from the command line, so integration tests can hold it
 * against a real standalone master.
 *
 *   master_probe [-t TIMEOUT_MS] fetch   UI_URL              the parsed status, as JSON
 *   master_probe [-t TIMEOUT_MS] parse   FILE                the same, from a saved /json/
 *   master_probe [-t TIMEOUT_MS] check   UI_URL CORES MEM_MB the verdict paragraph
 *   master_probe [-t TIMEOUT_MS] workers UI_URL              the worker table
 *   master_probe [-t TIMEOUT_MS] kill    UI_URL APP_ID       kill, confirmed from /json/
 *
 * Exit status: 0 on MASTER_OK, else the negated enum master_error (1 = MASTER_EUNREACHABLE,
 * ... 6 = MASTER_ETOOBIG ...), and 64 for a usage error. A failure prints
 * "master_probe: <CODE>: <sentence>" on stderr. */
#include "../../driver/http.h"
#include "../../driver/master.h"
#include "../../kernel/log.h"

#include "../../driver/curl_lazy.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *code_name(int rc)
{
    static const char *names[] = {
        "MASTER_OK",        "MASTER_EUNREACHABLE", "MASTER_EHTTP",   "MASTER_EJSON",
        "MASTER_ENOTALIVE", "MASTER_ENOWORKER",    "MASTER_ETOOBIG", "MASTER_ENOAPP",
        "MASTER_EKILLOFF",  "MASTER_EKILL",        "MASTER_EARG",    "MASTER_ENOMEM",
    };
    return rc <= 0 && -rc < (int)(sizeof names / sizeof names[0]) ? names[-rc] : "UNKNOWN";
}

static int fail(int rc)
{
    fprintf(stderr, "master_probe: %s: %s\n", code_name(rc), master_strerror(rc));
    return -rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: master_probe [-t TIMEOUT_MS] fetch|workers UI_URL\n"
                    "       master_probe [-t TIMEOUT_MS] parse FILE\n"
                    "       master_probe [-t TIMEOUT_MS] check UI_URL CORES MEM_MB\n"
                    "       master_probe [-t TIMEOUT_MS] kill UI_URL APP_ID\n");
    return 64;
}

/* Returns a new reference; caller json_decref()s. */
static json_t *status_json(const struct master_status *st)
{
    json_t *workers = json_array();
    for (size_t i = 0; i < st->nworkers; i++) {
        const struct master_worker *w = &st->workers[i];
        json_array_append_new(
            workers,
            json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I}", "id", w->id,
                      "host", w->host, "port", w->port, "webuiaddress", w->webuiaddress, "state",
                      w->state, "cores", w->cores, "coresused", w->coresused, "coresfree",
                      w->coresfree, "memory", (json_int_t)w->memory, "memoryused",
                      (json_int_t)w->memoryused, "memoryfree", (json_int_t)w->memoryfree));
    }
    json_t *apps = json_array();
    for (size_t i = 0; i < st->napps; i++) {
        const struct master_app *a = &st->apps[i];
        json_array_append_new(apps,
                              json_pack("{s:s, s:s, s:i, s:I, s:s, s:I, s:I, s:s}", "id", a->id,
                                        "name", a->name, "cores", a->cores, "memoryperexecutor",
                                        (json_int_t)a->memoryperexecutor, "state", a->state,
                                        "starttime", (json_int_t)a->starttime, "duration",
                                        (json_int_t)a->duration, "user", a->user));
    }
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:o, s:o}", "url", st->url, "status",
                     st->status, "aliveworkers", st->aliveworkers, "cores", st->cores, "coresused",
                     st->coresused, "memory", (json_int_t)st->memory, "memoryused",
                     (json_int_t)st->memoryused, "workers", workers, "activeapps", apps);
}

static int print_status(const struct master_status *st)
{
    json_t *j = status_json(st);
    if (j == NULL || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
        json_decref(j);
        return fail(MASTER_ENOMEM);
    }
    json_decref(j);
    fputc('\n', stdout);
    return 0;
}

static int parse_file(const char *path, struct master_status **st)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return MASTER_EARG;
    }
    char *buf = malloc(HTTP_MAX_BODY);
    size_t n = buf ? fread(buf, 1, HTTP_MAX_BODY, f) : 0;
    fclose(f);
    if (buf == NULL)
        return MASTER_ENOMEM;
    int rc = master_parse(buf, n, st);
    free(buf);
    return rc;
}

static int run(int argc, char **argv, long timeout_ms)
{
    const char *cmd = argv[0];
    struct master_status *st = NULL;
    int rc;
    if ((strcmp(cmd, "fetch") == 0 || strcmp(cmd, "parse") == 0) && argc == 2) {
        rc = cmd[0] == 'f' ? master_fetch(argv[1], timeout_ms, &st) : parse_file(argv[1], &st);
        if (rc != MASTER_OK)
            return fail(rc);
        rc = print_status(st);
        master_status_destroy(&st);
        return rc;
    }
    if (strcmp(cmd, "workers") == 0 && argc == 2) {
        if ((rc = master_fetch(argv[1], timeout_ms, &st)) != MASTER_OK)
            return fail(rc);
        char *table = master_format_workers(st);
        master_status_destroy(&st);
        if (table == NULL)
            return fail(MASTER_ENOMEM);
        fputs(table, stdout);
        free(table);
        return 0;
    }
    if (strcmp(cmd, "check") == 0 && argc == 4) {
        char *end1, *end2;
        long cores = strtol(argv[2], &end1, 10), mem = strtol(argv[3], &end2, 10);
        if (*end1 != '\0' || *end2 != '\0' || cores > 100000)
            return usage();
        if ((rc = master_fetch(argv[1], timeout_ms, &st)) != MASTER_OK)
            return fail(rc);
        char verdict[1024];
        rc = master_check_request(st, (int)cores, mem, verdict, sizeof verdict);
        master_status_destroy(&st);
        puts(verdict);
        return rc == MASTER_OK ? 0 : fail(rc);
    }
    if (strcmp(cmd, "kill") == 0 && argc == 3) {
        rc = master_kill_app(argv[1], argv[2], timeout_ms);
        if (rc != MASTER_OK)
            return fail(rc);
        printf("killed %s\n", argv[2]);
        return 0;
    }
    return usage();
}

int main(int argc, char **argv)
{
    log_init();
    long timeout_ms = 5000;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
        char *end;
        timeout_ms = strtol(argv[i + 1], &end, 10);
        if (*end != '\0' || timeout_ms <= 0)
            return usage();
        i += 2;
    }
    if (i >= argc)
        return usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = run(argc - i, argv + i, timeout_ms);
    curl_global_cleanup();
    return rc;
}
