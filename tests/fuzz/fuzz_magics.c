/* fuzz_magics: libFuzzer harness for the %spark magics' parsing: driver/magics.c splits a cell
 * into its %spark lines and the rest and a line into words; driver/settings.c takes each
 * key=value word of %spark config (settings_set_pair) and reads memory sizes
 * (settings_memory_mb). The input is the cell's code (up to its first NUL byte: code arrives as
 * a JSON string, which cannot hold one). The seeds in tests/fuzz/corpus/magics/ are cells
 * written by tests/fuzz/make_seeds.py. Checks that a cell without magics passes through
 * untouched, that words are what the line holds minus its whitespace, and that an accepted
 * setting reads back as given.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       $(pkg-config --cflags jansson) tests/fuzz/fuzz_magics.c driver/magics.c \
 *       driver/settings.c $(pkg-config --libs jansson) -o build/fuzz_magics
 *   build/fuzz_magics -max_total_time=60 tests/fuzz/corpus/magics/ */
#include "../../driver/magics.h"
#include "../../driver/settings.h"

#include <ctype.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The environment the kernel would have started with: a cluster, a kernelspec value, extras. */
static char *env[] = {
    "SPARK_MASTER_URL=spark://spark-master:7077", "SPARKERNEL_SPEC_EXECUTOR_MEMORY=2g",
    "SPARKERNEL_SPARK_CONF=spark.sql.shuffle.partitions=8;spark.ui.enabled=true", NULL};

/* words joined must be args with its whitespace taken out; no word is empty or has any. */
static void check_words(const char *args, json_t *words)
{
    size_t k = 0, n = strlen(args);
    char *bare = malloc(n + 1), *joined = malloc(n + 1);
    if (bare == NULL || joined == NULL)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)args[i]))
            bare[k++] = args[i];
    bare[k] = '\0';
    size_t j = 0;
    for (size_t i = 0; i < json_array_size(words); i++) {
        const char *w = json_string_value(json_array_get(words, i));
        size_t wl = strlen(w);
        if (wl == 0 || j + wl > n)
            __builtin_trap();
        for (size_t c = 0; c < wl; c++)
            if (isspace((unsigned char)w[c]))
                __builtin_trap();
        memcpy(joined + j, w, wl);
        j += wl;
    }
    joined[j] = '\0';
    if (strcmp(bare, joined) != 0)
        __builtin_trap();
    free(bare);
    free(joined);
}

/* %spark config key=value ...: each word through settings_set_pair, as the kernel does. */
static void run_config(struct settings *s, json_t *words)
{
    for (size_t i = 1; i < json_array_size(words); i++) {
        const char *w = json_string_value(json_array_get(words, i));
        char err[512];
        err[0] = '\0';
        int rc = settings_set_pair(s, w, err, sizeof err);
        if (rc != SETTINGS_OK) {
            if ((rc != SETTINGS_ESYNTAX && rc != SETTINGS_EVALUE && rc != SETTINGS_ENOMEM) ||
                err[0] == '\0' || strnlen(err, sizeof err) == sizeof err)
                __builtin_trap();
            continue;
        }
        const char *eq = strchr(w, '=');
        char *key = strndup(w, (size_t)(eq - w));
        if (key == NULL)
            __builtin_trap();
        const char *got = settings_get(s, key);
        if (got == NULL || strcmp(got, eq + 1) != 0 ||
            settings_source_of(s, key) != SOURCE_NOTEBOOK)
            __builtin_trap(); /* accepted, so it must read back as given */
        /* Spark reads a size as digits and a unit (JavaUtils.byteStringAs): no sign, no
         * space, no fraction; what the kernel accepts it must accept too. */
        if (strcmp(key, "spark.executor.memory") == 0 &&
            (!isdigit((unsigned char)got[0]) || settings_memory_mb(got) < 0))
            __builtin_trap();
        if (settings_memory_mb(got) < 0)
            __builtin_trap();
        free(key);
    }
    (void)settings_memory_mb(settings_get(s, "spark.executor.memory"));
    (void)settings_get_int(s, "spark.executor.cores", 1);
    char host[256];
    int port;
    if (settings_master_host(s, host, sizeof host, &port) == 0 &&
        strnlen(host, sizeof host) == sizeof host)
        __builtin_trap();
    json_decref(settings_spark_conf(s));
    json_decref(settings_table(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *code = strndup((const char *)data, size);
    if (code == NULL)
        return 0;
    /* Code reaches the kernel as a JSON string: valid UTF-8. Other bytes must not crash the
     * splitter either, but only valid code is held to the read-back checks. */
    json_t *as_json = json_string(code);
    int valid = as_json != NULL;
    json_decref(as_json);

    char *rest = NULL;
    json_t *lines = magics_split(code, &rest);
    if (lines == NULL || rest == NULL || strlen(rest) > strlen(code))
        __builtin_trap();
    if (strstr(code, "%spark") == NULL && (json_array_size(lines) != 0 || strcmp(rest, code) != 0))
        __builtin_trap();
    struct settings *s = NULL;
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const char *args = json_string_value(json_array_get(lines, i));
        if (args == NULL || strchr(args, '\n') != NULL)
            __builtin_trap();
        json_t *words = magics_words(args);
        if (words == NULL)
            __builtin_trap();
        if (valid)
            check_words(args, words);
        const char *cmd = json_string_value(json_array_get(words, 0));
        if (valid && cmd != NULL && strcmp(cmd, "config") == 0) {
            if (s == NULL && (s = settings_new(env)) == NULL)
                __builtin_trap();
            run_config(s, words);
        }
        json_decref(words);
    }
    if (settings_memory_mb(code) < 0)
        __builtin_trap();
    settings_destroy(&s);
    json_decref(lines);
    free(rest);
    free(code);
    return 0;
}
