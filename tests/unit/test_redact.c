/* test_redact: every known secret in any string of a message becomes ****; nothing else
 * changes; short values are not secrets to mask. */
#include <criterion/criterion.h>

#include "../../kernel/redact.h"

#include <string.h>

static void fresh(void)
{
    redact_clear();
}

TestSuite(redact, .init = fresh, .fini = fresh);

Test(redact, nested_strings_every_occurrence)
{
    cr_assert_eq(redact_add("s3cret-value"), 1);
    cr_assert_eq(redact_add("s3cret-value"), 0, "known already");
    cr_assert_eq(redact_add("tok123456"), 1);
    json_t *j = json_loads("{\"text\": \"a s3cret-value b s3cret-valuetok123456\","
                           " \"data\": {\"text/plain\": [\"x\", \"tok123456\"]},"
                           " \"n\": 3, \"clean\": \"nothing here\"}",
                           0, NULL);
    cr_assert_not_null(j);
    cr_assert_eq(redact_json(j), 4);
    cr_assert_str_eq(json_string_value(json_object_get(j, "text")), "a **** b ********");
    json_t *plain = json_object_get(json_object_get(j, "data"), "text/plain");
    cr_assert_str_eq(json_string_value(json_array_get(plain, 1)), "****");
    cr_assert_str_eq(json_string_value(json_object_get(j, "clean")), "nothing here");
    cr_assert_eq(json_integer_value(json_object_get(j, "n")), 3);
    json_decref(j);
}

Test(redact, short_or_missing_values_are_not_secrets)
{
    cr_assert_eq(redact_add(NULL), 0);
    cr_assert_eq(redact_add(""), 0);
    cr_assert_eq(redact_add("abc"), 0);
    json_t *j = json_string("abc abc");
    cr_assert_eq(redact_json(j), 0);
    cr_assert_str_eq(json_string_value(j), "abc abc");
    json_decref(j);
}

Test(redact, strings_with_nul_and_utf8_around_the_secret)
{
    cr_assert_eq(redact_add("pässwörd"), 1);
    json_t *j = json_stringn("\xc3\xa9pässwörd\0z", strlen("\xc3\xa9pässwörd") + 2);
    cr_assert_eq(redact_json(j), 1);
    cr_assert_eq(json_string_length(j), 2 + 4 + 2);
    cr_assert(memcmp(json_string_value(j), "\xc3\xa9****\0z", 8) == 0);
    json_decref(j);
}
