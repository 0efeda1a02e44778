/* test_history: history_request answers (tail, range, search) from the in-memory ring. */
#include <criterion/criterion.h>

#include "../../kernel/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lines 1..6 of a session. */
static const char *const inputs[] = {"a = 1", "b = 2", "print(a)", "a = 1", "x", "a = 3"};
#define N_INPUTS 6

static struct history *filled(size_t cap)
{
    struct history *h = history_new(cap);
    cr_assert_not_null(h);
    for (int i = 0; i < N_INPUTS; i++)
        cr_assert_eq(history_add(h, i + 1, inputs[i]), 0);
    return h;
}

/* Runs a request given as JSON text. */
static json_t *query(const struct history *h, const char *request_json)
{
    json_error_t err;
    json_t *req = json_loads(request_json, 0, &err);
    cr_assert_not_null(req, "bad request JSON in the test: %s", err.text);
    json_t *out = history_query(h, req);
    json_decref(req);
    cr_assert_not_null(out);
    cr_assert(json_is_array(out));
    return out;
}

/* The line numbers of a reply, as "1,2,3", after checking each entry's shape. A range
 * over session 0 (the current one) says session 0 in its entries, as IPython's does. */
static void lines_of(json_t *reply, int output, int session, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t i;
    json_t *e;
    json_array_foreach(reply, i, e)
    {
        cr_assert(json_is_array(e) && json_array_size(e) == 3, "entry %zu is [s, l, x]", i);
        cr_expect_eq(json_integer_value(json_array_get(e, 0)), session);
        int line = (int)json_integer_value(json_array_get(e, 1));
        json_t *payload = json_array_get(e, 2);
        const char *input =
            output ? json_string_value(json_array_get(payload, 0)) : json_string_value(payload);
        if (output)
            cr_expect(json_is_array(payload) && json_array_size(payload) == 2,
                      "line %d: output=True gives [input, output]", line);
        cr_assert_not_null(input, "line %d has no input", line);
        if (line >= 1 && line <= N_INPUTS)
            cr_expect_str_eq(input, inputs[line - 1], "line %d", line);
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%d", used ? "," : "", line);
    }
}

static void expect_lines(const struct history *h, const char *request, int output, const char *want)
{
    json_t *reply = query(h, request);
    char got[256];
    lines_of(reply, output,
             strstr(request, "\"range\"") && !strstr(request, "\"session\":1") ? 0
                                                                               : HISTORY_SESSION,
             got, sizeof got);
    cr_expect_str_eq(got, want, "%s", request);
    json_decref(reply);
}

Test(history, tail)
{
    struct history *h = filled(100);
    cr_expect_eq(history_count(h), N_INPUTS);
    struct {
        const char *req;
        const char *want;
    } cases[] = {
        {"{\"hist_access_type\":\"tail\",\"n\":3}", "4,5,6"},
        {"{\"hist_access_type\":\"tail\",\"n\":1}", "6"},
        {"{\"hist_access_type\":\"tail\",\"n\":6}", "1,2,3,4,5,6"},
        {"{\"hist_access_type\":\"tail\",\"n\":1000}", "1,2,3,4,5,6"},
        {"{\"hist_access_type\":\"tail\",\"n\":0}", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_lines(h, cases[i].req, 0, cases[i].want);
    history_destroy(&h);
    cr_expect_null(h);
    history_destroy(&h);
    history_destroy(NULL);
}

Test(history, range)
{
    struct history *h = filled(100);
    struct {
        const char *req;
        const char *want;
    } cases[] = {
        {"{\"hist_access_type\":\"range\",\"session\":0,\"start\":2,\"stop\":4}", "2,3"},
        {"{\"hist_access_type\":\"range\",\"session\":0,\"start\":1,\"stop\":7}", "1,2,3,4,5,6"},
        {"{\"hist_access_type\":\"range\",\"session\":0,\"start\":5}", "5,6"},
        {"{\"hist_access_type\":\"range\",\"session\":0,\"start\":4,\"stop\":5}", "4"},
        {"{\"hist_access_type\":\"range\",\"session\":0,\"start\":4,\"stop\":4}", ""},
        {"{\"hist_access_type\":\"range\",\"session\":1,\"start\":2,\"stop\":3}", "2"},
        {"{\"hist_access_type\":\"range\",\"start\":6}", "6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_lines(h, cases[i].req, 0, cases[i].want);
    history_destroy(&h);
}

Test(history, range_unknown_session_is_empty)
{
    struct history *h = filled(100);
    expect_lines(h, "{\"hist_access_type\":\"range\",\"session\":2,\"start\":1,\"stop\":7}", 0, "");
    expect_lines(h, "{\"hist_access_type\":\"range\",\"session\":99,\"start\":1}", 0, "");
    history_destroy(&h);
}

/* Regression: in the protocol a session of 0 is the current one and a negative session
 * counts back from it (-1 is the previous session, as in IPython's
 * HistoryManager.get_range). Earlier sessions are not kept, so -1 must give an empty reply;
 * history_query once filtered only session > 0 and answered -1 with this session's lines. */
Test(history, range_previous_session_is_empty)
{
    struct history *h = filled(100);
    expect_lines(h, "{\"hist_access_type\":\"range\",\"session\":-1,\"start\":1,\"stop\":7}", 0,
                 "");
    expect_lines(h, "{\"hist_access_type\":\"range\",\"session\":-3,\"start\":1}", 0, "");
    history_destroy(&h);
}

Test(history, search)
{
    struct history *h = filled(100);
    struct {
        const char *req;
        const char *want;
    } cases[] = {
        {"{\"hist_access_type\":\"search\",\"pattern\":\"a*\"}", "1,4,6"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"a = 1\"}", "1,4"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"*a*\"}", "1,3,4,6"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"?\"}", "5"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"print(*)\"}", "3"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"zzz*\"}", ""},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"*\"}", "1,2,3,4,5,6"},
        /* n keeps the latest matches, still in execution order. */
        {"{\"hist_access_type\":\"search\",\"pattern\":\"a*\",\"n\":2}", "4,6"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"*\",\"n\":1}", "6"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"*\",\"n\":100}", "1,2,3,4,5,6"},
        /* unique keeps the latest of equal inputs. */
        {"{\"hist_access_type\":\"search\",\"pattern\":\"a = 1\",\"unique\":true}", "4"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"*\",\"unique\":true}", "2,3,4,5,6"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"a*\",\"unique\":true}", "4,6"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"a*\",\"unique\":false}", "1,4,6"},
        /* n counts unique hits. */
        {"{\"hist_access_type\":\"search\",\"pattern\":\"*\",\"unique\":true,\"n\":4}", "3,4,5,6"},
        {"{\"hist_access_type\":\"search\",\"pattern\":\"*\",\"unique\":true,\"n\":5}",
         "2,3,4,5,6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_lines(h, cases[i].req, 0, cases[i].want);
    history_destroy(&h);
}

Test(history, output_true_gives_input_and_output)
{
    struct history *h = filled(100);
    history_set_output(h, 3, "1");
    history_set_output(h, 6, "first");
    history_set_output(h, 6, "3"); /* replaced */
    json_t *reply = query(h, "{\"hist_access_type\":\"tail\",\"n\":4,\"output\":true}");
    char got[64];
    lines_of(reply, 1, HISTORY_SESSION, got, sizeof got);
    cr_expect_str_eq(got, "3,4,5,6");
    json_t *p3 = json_array_get(json_array_get(reply, 0), 2);
    cr_expect_str_eq(json_string_value(json_array_get(p3, 0)), "print(a)");
    cr_expect_str_eq(json_string_value(json_array_get(p3, 1)), "1");
    json_t *p4 = json_array_get(json_array_get(reply, 1), 2);
    cr_expect(json_is_null(json_array_get(p4, 1)), "no output is null");
    json_t *p6 = json_array_get(json_array_get(reply, 3), 2);
    cr_expect_str_eq(json_string_value(json_array_get(p6, 1)), "3");
    json_decref(reply);

    /* Without output=True the payload is the input string alone. */
    reply = query(h, "{\"hist_access_type\":\"tail\",\"n\":1,\"output\":false}");
    cr_expect(json_is_string(json_array_get(json_array_get(reply, 0), 2)));
    json_decref(reply);

    /* range and search honour output too; unique still compares inputs. */
    expect_lines(h, "{\"hist_access_type\":\"range\",\"start\":3,\"stop\":4,\"output\":true}", 1,
                 "3");
    expect_lines(h,
                 "{\"hist_access_type\":\"search\",\"pattern\":\"a = 1\",\"unique\":true,"
                 "\"output\":true}",
                 1, "4");
    history_destroy(&h);
}

Test(history, ring_drops_the_oldest)
{
    struct history *h = filled(4);
    cr_expect_eq(history_count(h), 4);
    expect_lines(h, "{\"hist_access_type\":\"tail\",\"n\":10}", 0, "3,4,5,6");
    expect_lines(h, "{\"hist_access_type\":\"range\",\"start\":1}", 0, "3,4,5,6");
    expect_lines(h, "{\"hist_access_type\":\"search\",\"pattern\":\"a = 1\"}", 0, "4");
    /* Output for a dropped line goes nowhere; for a kept line it sticks. */
    history_set_output(h, 1, "gone");
    history_set_output(h, 5, "kept");
    json_t *reply = query(h, "{\"hist_access_type\":\"range\",\"start\":5,\"stop\":6,"
                             "\"output\":true}");
    cr_expect_str_eq(
        json_string_value(json_array_get(json_array_get(json_array_get(reply, 0), 2), 1)), "kept");
    json_decref(reply);
    /* Wrap around many times. */
    for (int i = 7; i <= 1000; i++) {
        char in[32];
        snprintf(in, sizeof in, "cell %d", i);
        cr_assert_eq(history_add(h, i, in), 0);
    }
    cr_expect_eq(history_count(h), 4);
    reply = query(h, "{\"hist_access_type\":\"tail\",\"n\":10}");
    cr_assert_eq(json_array_size(reply), 4);
    for (int i = 0; i < 4; i++) {
        json_t *e = json_array_get(reply, (size_t)i);
        char want[32];
        snprintf(want, sizeof want, "cell %d", 997 + i);
        cr_expect_eq(json_integer_value(json_array_get(e, 1)), 997 + i);
        cr_expect_str_eq(json_string_value(json_array_get(e, 2)), want);
    }
    json_decref(reply);
    history_destroy(&h);
}

Test(history, capacity_one_and_zero)
{
    struct history *h = history_new(1);
    history_add(h, 1, inputs[0]);
    history_add(h, 2, inputs[1]);
    expect_lines(h, "{\"hist_access_type\":\"tail\",\"n\":5}", 0, "2");
    history_destroy(&h);
    h = history_new(0); /* treated as one */
    cr_assert_not_null(h);
    history_add(h, 1, "x");
    cr_expect_eq(history_count(h), 1);
    history_destroy(&h);
}

Test(history, empty_and_unknown_requests)
{
    struct history *empty = history_new(10);
    expect_lines(empty, "{\"hist_access_type\":\"tail\",\"n\":10}", 0, "");
    expect_lines(empty, "{\"hist_access_type\":\"search\",\"pattern\":\"*\"}", 0, "");
    history_destroy(&empty);
    struct history *h = filled(100);
    expect_lines(h, "{\"hist_access_type\":\"sideways\"}", 0, "");
    expect_lines(h, "{}", 0, "");
    expect_lines(h, "{\"hist_access_type\":5}", 0, "");
    history_destroy(&h);
}

Test(history, inputs_are_copied)
{
    struct history *h = history_new(10);
    char buf[16];
    strcpy(buf, "original");
    history_add(h, 1, buf);
    strcpy(buf, "changed!");
    json_t *reply = query(h, "{\"hist_access_type\":\"tail\",\"n\":1}");
    cr_expect_str_eq(json_string_value(json_array_get(json_array_get(reply, 0), 2)), "original");
    json_decref(reply);
    history_destroy(&h);
}
