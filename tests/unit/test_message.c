/* test_message: UUIDs, ISO-8601 dates, headers and the content builders. */
#include <criterion/criterion.h>

#include "../../kernel/message.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UUID_RE "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
#define ISO_RE  "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$"

static int matches(const char *pattern, const char *s)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0, "bad regex %s", pattern);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    return rc == 0;
}

Test(message, regexes_reject_near_misses)
{
    /* The checks below are only as good as these patterns. */
    cr_expect(matches(UUID_RE, "123e4567-e89b-42d3-a456-426614174000"));
    cr_expect(!matches(UUID_RE, "123e4567-e89b-12d3-a456-426614174000"), "version 1");
    cr_expect(!matches(UUID_RE, "123e4567-e89b-42d3-c456-426614174000"), "variant c");
    cr_expect(!matches(UUID_RE, "123E4567-e89b-42d3-a456-426614174000"), "upper case");
    cr_expect(matches(ISO_RE, "2026-11-25T12:00:00.123456Z"));
    cr_expect(!matches(ISO_RE, "2026-11-25T12:00:00.12345Z"));
    cr_expect(!matches(ISO_RE, "2026-11-25T12:00:00.123456"));
    cr_expect(!matches(ISO_RE, "2026-11-25 12:00:00.123456Z"));
}

Test(message, uuid_is_version4_lowercase)
{
    for (int i = 0; i < 200; i++) {
        char id[MESSAGE_UUID_LEN + 1];
        memset(id, 'X', sizeof id);
        message_uuid(id);
        cr_assert_eq(strlen(id), 36, "'%s'", id);
        cr_expect_eq(id[8], '-');
        cr_expect_eq(id[13], '-');
        cr_expect_eq(id[18], '-');
        cr_expect_eq(id[23], '-');
        cr_expect_eq(id[14], '4', "version nibble in '%s'", id);
        cr_expect_neq(strchr("89ab", id[19]), NULL, "variant nibble in '%s'", id);
        for (int k = 0; k < 36; k++)
            if (k != 8 && k != 13 && k != 18 && k != 23)
                cr_expect_neq(strchr("0123456789abcdef", id[k]), NULL, "char %d of '%s'", k, id);
        cr_expect(matches(UUID_RE, id), "'%s'", id);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

Test(message, uuid_thousand_distinct)
{
    enum { N = 1000 };
    static char ids[N][MESSAGE_UUID_LEN + 1];
    for (int i = 0; i < N; i++)
        message_uuid(ids[i]);
    qsort(ids, N, sizeof ids[0], cmp_str);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "duplicate id %s", ids[i]);
    /* The random bits vary in every position that is not fixed by the layout. */
    for (int k = 0; k < 36; k++) {
        if (k == 8 || k == 13 || k == 14 || k == 18 || k == 23)
            continue;
        int varies = 0;
        for (int i = 1; i < N && !varies; i++)
            varies = ids[i][k] != ids[0][k];
        cr_expect(varies, "position %d never changes", k);
    }
}

/* Seconds since the epoch of an ISO date produced by message_now_iso (UTC). */
static time_t parse_iso(const char *s, long *micros)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert_not_null(rest, "'%s'", s);
    cr_assert_eq(*rest, '.');
    *micros = strtol(rest + 1, NULL, 10);
    return timegm(&tm);
}

Test(message, now_iso_format_and_close_to_time)
{
    for (int i = 0; i < 50; i++) {
        char date[64];
        time_t before = time(NULL);
        message_now_iso(date, sizeof date);
        time_t after = time(NULL);
        cr_assert_eq(strlen(date), 27, "'%s'", date);
        cr_expect(matches(ISO_RE, date), "'%s'", date);
        long micros;
        time_t t = parse_iso(date, &micros);
        cr_expect(t >= before - 1 && t <= after + 1, "'%s' is %lld, time() was %lld", date,
                  (long long)t, (long long)before);
        cr_expect(micros >= 0 && micros < 1000000);
    }
}

Test(message, now_iso_moves_forward)
{
    char a[64], b[64];
    message_now_iso(a, sizeof a);
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
    message_now_iso(b, sizeof b);
    cr_expect_lt(strcmp(a, b), 0, "'%s' then '%s'", a, b);
}

Test(message, now_iso_short_buffer_is_terminated)
{
    char buf[11];
    memset(buf, 'X', sizeof buf);
    message_now_iso(buf, sizeof buf);
    cr_expect_eq(strlen(buf), 10, "'%s'", buf);
    cr_expect(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", buf), "'%s'", buf);
}

Test(message, header_new_has_every_field)
{
    time_t before = time(NULL);
    json_t *h = message_header_new("execute_reply", "session-xyz");
    cr_assert_not_null(h);
    cr_assert(json_is_object(h));
    const char *keys[] = {"msg_id", "session", "username", "date", "msg_type", "version"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect(json_is_string(json_object_get(h, keys[i])), "%s is a string", keys[i]);
    const char *id = json_string_value(json_object_get(h, "msg_id"));
    cr_assert_not_null(id);
    cr_expect(matches(UUID_RE, id), "msg_id '%s'", id);
    cr_expect_str_eq(json_string_value(json_object_get(h, "session")), "session-xyz");
    cr_expect_str_eq(json_string_value(json_object_get(h, "msg_type")), "execute_reply");
    cr_expect_str_eq(json_string_value(json_object_get(h, "version")), "5.5");
    cr_expect_str_eq(json_string_value(json_object_get(h, "version")), MESSAGE_PROTOCOL_VERSION);
    const char *user = json_string_value(json_object_get(h, "username"));
    cr_assert_not_null(user);
    cr_expect_gt(strlen(user), 0);
    const char *date = json_string_value(json_object_get(h, "date"));
    cr_assert_not_null(date);
    cr_expect(matches(ISO_RE, date), "date '%s'", date);
    long micros;
    time_t t = parse_iso(date, &micros);
    cr_expect(t >= before - 1 && t <= time(NULL) + 1, "date '%s'", date);

    json_t *h2 = message_header_new("execute_reply", "session-xyz");
    cr_expect_str_neq(json_string_value(json_object_get(h2, "msg_id")), id,
                      "two headers share a msg_id");
    json_decref(h);
    json_decref(h2);
}

Test(message, content_builders)
{
    json_t *s = message_status("busy");
    cr_expect_str_eq(json_string_value(json_object_get(s, "execution_state")), "busy");
    json_decref(s);

    /* The stream text is taken by length: it may hold NULs and need not be terminated. */
    const char raw[] = "out\0put and more";
    json_t *st = message_stream("stdout", raw, 6);
    cr_expect_str_eq(json_string_value(json_object_get(st, "name")), "stdout");
    json_t *text = json_object_get(st, "text");
    cr_expect_eq(json_string_length(text), 6);
    cr_expect_eq(memcmp(json_string_value(text), raw, 6), 0);
    json_decref(st);

    json_t *tb = json_pack("[s, s]", "line 1", "line 2");
    json_t *err = message_error_content("ValueError", "bad", tb);
    cr_expect_str_eq(json_string_value(json_object_get(err, "ename")), "ValueError");
    cr_expect_str_eq(json_string_value(json_object_get(err, "evalue")), "bad");
    cr_expect(json_equal(json_object_get(err, "traceback"), tb));
    cr_expect_eq(tb->refcount, 2, "the builder borrows traceback and keeps its own reference");
    json_decref(err);
    cr_expect_eq(tb->refcount, 1);
    json_decref(tb);

    json_t *err2 = message_error_content("E", "v", NULL);
    cr_expect(json_is_array(json_object_get(err2, "traceback")));
    cr_expect_eq(json_array_size(json_object_get(err2, "traceback")), 0);
    json_decref(err2);
}
