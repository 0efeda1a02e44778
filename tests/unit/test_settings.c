/* test_settings: %spark config words (settings_set_pair), the checks on memory sizes, and
 * reading a memory size in MB (settings_memory_mb). The failing inputs come from
 * tests/fuzz/fuzz_magics.c. */
#include <criterion/criterion.h>

#include "../../driver/settings.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct settings *fresh(void)
{
    static char *env[] = {"SPARK_MASTER_URL=spark://spark-master:7077", NULL};
    struct settings *s = settings_new(env);
    cr_assert_not_null(s);
    return s;
}

struct mb_case {
    const char *value;
    long mb;
};

/* Found by fuzz_magics: strtod reads "inf", "nan" and huge exponents, and converting them to
 * long was undefined behaviour (x86 gave LONG_MIN, which the master check took as "no size"). */
Test(settings, memory_mb_reads_sizes_and_saturates)
{
    static const struct mb_case cases[] = {
        {NULL, 1024},
        {"", 1024},
        {"2g", 2048},
        {"2G", 2048},
        {"512m", 512},
        {"512mb", 512},
        {"1t", 1024 * 1024},
        {"1024k", 1},
        {"1073741824", 1024},
        {"lots", 0},
        {"-2g", 0},
        {"nan", 0},
        {"-inf", 0},
        {"inf", LONG_MAX},
        {"1E7179869184", LONG_MAX},
        {"1e300t", LONG_MAX},
        {"99999999999999999999999t", LONG_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(settings_memory_mb(cases[i].value), cases[i].mb, "%s: %ld, want %ld",
                     cases[i].value ? cases[i].value : "(null)", settings_memory_mb(cases[i].value),
                     cases[i].mb);
}

struct set_case {
    const char *value;
    int rc;
};

/* Found by fuzz_magics: "+0t" passed the check (strtol takes a sign and leading spaces), so
 * Spark would get a size it refuses at session start. */
Test(settings, executor_memory_takes_digits_and_a_unit)
{
    static const struct set_case cases[] = {
        {"2g", SETTINGS_OK},
        {"512m", SETTINGS_OK},
        {"4gb", SETTINGS_OK},
        {"1024", SETTINGS_OK},
        {"1t", SETTINGS_OK},
        {"+0t", SETTINGS_EVALUE},
        {"-1g", SETTINGS_EVALUE},
        {" 1g", SETTINGS_EVALUE},
        {"1.5g", SETTINGS_EVALUE},
        {"g", SETTINGS_EVALUE},
        {"", SETTINGS_EVALUE},
        {"2x", SETTINGS_EVALUE},
        {"99999999999999999999999t", SETTINGS_EVALUE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct settings *s = fresh();
        char err[256] = "";
        int rc = settings_set(s, "spark.executor.memory", cases[i].value, err, sizeof err);
        cr_expect_eq(rc, cases[i].rc, "\"%s\": %d, want %d", cases[i].value, rc, cases[i].rc);
        if (rc == SETTINGS_OK)
            cr_expect_str_eq(settings_get(s, "spark.executor.memory"), cases[i].value);
        else
            cr_expect(strstr(err, "expected a size") != NULL, "%s", err);
        settings_destroy(&s);
    }
}

Test(settings, set_pair_splits_at_the_first_equals_sign)
{
    struct settings *s = fresh();
    char err[512] = "";
    cr_assert_eq(settings_set_pair(s, "spark.sql.conf=a=b", err, sizeof err), SETTINGS_OK);
    cr_expect_str_eq(settings_get(s, "spark.sql.conf"), "a=b");
    cr_expect_eq(settings_source_of(s, "spark.sql.conf"), SOURCE_NOTEBOOK);
    cr_assert_eq(settings_set_pair(s, "spark.executor.cores=", err, sizeof err), SETTINGS_EVALUE);
    cr_expect_eq(settings_set_pair(s, "nokey", err, sizeof err), SETTINGS_ESYNTAX);
    cr_expect(strstr(err, "expects key=value pairs") != NULL, "%s", err);
    cr_expect_eq(settings_set_pair(s, "=x", err, sizeof err), SETTINGS_ESYNTAX);
    cr_expect_eq(settings_set_pair(s, "unknown.key=1", err, sizeof err), SETTINGS_ESYNTAX);
    settings_destroy(&s);
}

/* Found by fuzz_magics: keys were copied into 256 bytes, so a longer spark.* key was cut and a
 * different key set. */
Test(settings, set_pair_keeps_a_long_key_whole)
{
    char key[301], pair[320];
    memset(key, 'x', sizeof key - 1);
    memcpy(key, "spark.", 6);
    key[sizeof key - 1] = '\0';
    snprintf(pair, sizeof pair, "%s=42", key);
    struct settings *s = fresh();
    char err[512] = "";
    cr_assert_eq(settings_set_pair(s, pair, err, sizeof err), SETTINGS_OK, "%s", err);
    cr_expect_str_eq(settings_get(s, key), "42");
    key[255] = '\0';
    cr_expect_null(settings_get(s, key), "the key was cut at 255 bytes");
    json_t *conf = settings_spark_conf(s);
    cr_expect_eq(json_object_size(conf) > 0, 1);
    key[255] = 'x';
    cr_expect_str_eq(json_string_value(json_object_get(conf, key)), "42");
    json_decref(conf);
    settings_destroy(&s);
}

/* Every number setting has bounds (issue 14): a million port slots were probed on the loop,
 * a negotiation timeout of 1,000 s held the queue. Each case: key, value, accepted. */
Test(settings, numbers_are_bounded)
{
    static const struct {
        const char *key, *value;
        int ok;
    } cases[] = {
        {"sparkernel.port.slots", "1", 1},
        {"sparkernel.port.slots", "64", 1},
        {"sparkernel.port.slots", "0", 0},
        {"sparkernel.port.slots", "65", 0},
        {"sparkernel.port.slots", "1000000", 0},
        {"sparkernel.negotiate.timeout.ms", "3000", 1},
        {"sparkernel.negotiate.timeout.ms", "30000", 1},
        {"sparkernel.negotiate.timeout.ms", "1000000", 0},
        {"sparkernel.negotiate.timeout.ms", "99", 0},
        {"sparkernel.waiting.report.s", "0", 0},
        {"sparkernel.waiting.report.s", "3601", 0},
        {"sparkernel.yield.after.s", "0", 1},
        {"sparkernel.yield.after.s", "86401", 0},
        {"sparkernel.share.turn.s", "3601", 0},
        {"spark.executor.cores", "0", 0},
        {"spark.executor.cores", "1025", 0},
        {"spark.dynamicAllocation.maxExecutors", "0", 0},
        {"spark.dynamicAllocation.minExecutors", "0", 1},
        {"spark.driver.port", "65535", 1},
        {"spark.driver.port", "65536", 0},
        {"spark.driver.port", "0", 0},
        {"spark.ui.port", "99999999999999999999", 0},
        {"sparkernel.port.slots", "-1", 0},
        {"sparkernel.port.slots", "8x", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct settings *s = fresh();
        char err[256] = "";
        int rc = settings_set(s, cases[i].key, cases[i].value, err, sizeof err);
        cr_expect_eq(rc == SETTINGS_OK, cases[i].ok, "%s=%s: %s", cases[i].key, cases[i].value,
                     err);
        if (!cases[i].ok) {
            cr_expect(strstr(err, " from ") != NULL && strstr(err, " to ") != NULL,
                      "the error says the bounds: %s", err);
            cr_expect_str_neq(settings_source_name(settings_source_of(s, cases[i].key)),
                              "notebook");
        }
        settings_destroy(&s);
    }
    struct settings *s = fresh();
    char err[256] = "";
    settings_set(s, "sparkernel.port.slots", "1000000", err, sizeof err);
    cr_expect_str_eq(err, "sparkernel.port.slots=1000000: expected a whole number from 1 to 64");
    settings_destroy(&s);
}

/* Out-of-bounds values from the environment or the kernelspec are left out: the default (or
 * the next source) applies. */
Test(settings, environment_values_out_of_bounds_are_ignored)
{
    char *env[] = {"SPARKERNEL_PORT_SLOTS=1000000", "SPARKERNEL_SPEC_PORT_SLOTS=16",
                   "SPARKERNEL_NEGOTIATE_TIMEOUT_MS=1000000", "SPARKERNEL_WAITING_REPORT_S=20",
                   NULL};
    struct settings *s = settings_new(env);
    cr_assert_not_null(s);
    cr_expect_eq(settings_get_int(s, "sparkernel.port.slots", 8), 16);
    cr_expect_eq(settings_source_of(s, "sparkernel.port.slots"), SOURCE_KERNELSPEC);
    cr_expect_eq(settings_get_int(s, "sparkernel.negotiate.timeout.ms", 3000), 3000);
    cr_expect_eq(settings_source_of(s, "sparkernel.negotiate.timeout.ms"), SOURCE_DEFAULT);
    cr_expect_eq(settings_get_int(s, "sparkernel.waiting.report.s", 10), 20);
    settings_derive(s, "spark.dynamicAllocation.maxExecutors", "0");
    cr_expect_eq(settings_get_int(s, "spark.dynamicAllocation.maxExecutors", 2), 2);
    settings_destroy(&s);
}

Test(settings, booleans_read_true_false_or_the_fallback)
{
    char *env[] = {"SPARKERNEL_DYNAMIC_ALLOCATION=false", "SPARKERNEL_WARM=true", NULL};
    struct settings *s = settings_new(env);
    cr_assert_not_null(s);
    cr_expect_eq(settings_get_bool(s, "spark.dynamicAllocation.enabled", 1), 0);
    cr_expect_eq(settings_get_bool(s, "sparkernel.warm", 0), 1);
    cr_expect_eq(settings_get_bool(s, "sparkernel.cds", 0), 1); /* its default, "true" */
    cr_expect_eq(settings_get_bool(s, "spark.no.such.key", 1), 1);
    cr_expect_eq(settings_get_bool(s, "spark.no.such.key", 0), 0);
    settings_destroy(&s);
}
