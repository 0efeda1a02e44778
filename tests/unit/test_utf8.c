/* test_utf8: keeping unfinished characters for the next read, and replacing what is not
 * UTF-8 with U+FFFD. */
#include <criterion/criterion.h>

#include "../../kernel/utf8.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FFFD "\xEF\xBF\xBD"

/* Sanitises into a buffer of exactly the documented capacity (3 * len + 1), so that ASan
 * sees any write past it. Returns a malloc'd copy; *out_len gets the returned length. */
static char *sanitize(const char *in, size_t len, size_t *out_len)
{
    char *out = malloc(3 * len + 1);
    cr_assert_not_null(out);
    *out_len = utf8_sanitize((const unsigned char *)in, len, out);
    cr_assert_leq(*out_len, 3 * len);
    cr_assert_eq(out[*out_len], '\0', "output is NUL-terminated");
    return out;
}

static void hexdump(const char *s, size_t n, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n && 3 * i + 3 < len; i++)
        snprintf(buf + 3 * i, len - 3 * i, "%02X ", (unsigned char)s[i]);
}

struct char_case {
    const char *name;
    const char *bytes;
};

static const struct char_case chars[] = {
    {"2-byte e-acute U+00E9", "\xC3\xA9"},
    {"2-byte U+07FF", "\xDF\xBF"},
    {"3-byte euro U+20AC", "\xE2\x82\xAC"},
    {"3-byte U+0800", "\xE0\xA0\x80"},
    {"3-byte U+D7FF", "\xED\x9F\xBF"},
    {"3-byte U+FFFD", FFFD},
    {"4-byte emoji U+1F600", "\xF0\x9F\x98\x80"},
    {"4-byte U+10000", "\xF0\x90\x80\x80"},
    {"4-byte U+10FFFF", "\xF4\x8F\xBF\xBF"},
};

Test(utf8, complete_prefix_cut_at_every_position)
{
    const char *prefixes[] = {"", "ab", "\xC3\xA9", "x\xE2\x82\xAC", "\xF0\x9F\x98\x80"};
    for (size_t c = 0; c < sizeof chars / sizeof chars[0]; c++) {
        size_t clen = strlen(chars[c].bytes);
        for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
            size_t plen = strlen(prefixes[p]);
            for (size_t cut = 0; cut <= clen; cut++) {
                unsigned char buf[16];
                memcpy(buf, prefixes[p], plen);
                memcpy(buf + plen, chars[c].bytes, cut);
                size_t want = cut == clen ? plen + clen : plen;
                cr_expect_eq(utf8_complete_prefix(buf, plen + cut), want,
                             "%s after prefix %zu, cut after %zu bytes", chars[c].name, p, cut);
            }
        }
    }
}

Test(utf8, complete_prefix_other_inputs)
{
    struct {
        const char *name;
        const char *bytes;
        size_t len;
        size_t want;
    } cases[] = {
        {"empty", "", 0, 0},
        {"ascii", "hello world", 11, 11},
        {"NUL is a whole character", "a\0", 2, 2},
        /* Bytes that can never become a character are not held back (sanitize handles them). */
        {"lone continuation at end", "ab\x80", 3, 3},
        {"invalid lead C0", "ab\xC0", 3, 3},
        {"invalid lead F5", "ab\xF5", 3, 3},
        {"invalid lead FF", "ab\xFF", 3, 3},
        {"overlong E0 80", "ab\xE0\x80", 4, 4},
        {"surrogate ED A0", "ab\xED\xA0", 4, 4},
        {"above U+10FFFF F4 90", "ab\xF4\x90", 4, 4},
        {"overlong F0 80", "ab\xF0\x80", 4, 4},
        {"two cut characters: only the last is held", "\xC3\xE2\x82", 3, 1},
        {"lead then ascii then lead",
         "\xE2"
         "a\xC3",
         3, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(utf8_complete_prefix((const unsigned char *)cases[i].bytes, cases[i].len),
                     cases[i].want, "%s", cases[i].name);
}

/* Joining what complete_prefix keeps with the next read loses nothing: a stream of mixed
 * characters read in chunks of every size comes out the same. */
Test(utf8, complete_prefix_stream_in_chunks)
{
    const char text[] =
        "plain \xC3\xA9t\xC3\xA9 \xE2\x82\xAC 100 \xF0\x9F\x98\x80!\xF4\x8F\xBF\xBF";
    size_t len = sizeof text - 1;
    for (size_t chunk = 1; chunk <= 7; chunk++) {
        unsigned char pending[16], joined[128];
        size_t np = 0, nj = 0;
        for (size_t off = 0; off < len; off += chunk) {
            size_t take = off + chunk <= len ? chunk : len - off;
            unsigned char buf[32];
            memcpy(buf, pending, np);
            memcpy(buf + np, text + off, take);
            size_t n = np + take;
            size_t ok = utf8_complete_prefix(buf, n);
            cr_assert_leq(n - ok, 3, "at most three bytes are held back");
            memcpy(joined + nj, buf, ok);
            nj += ok;
            memcpy(pending, buf + ok, n - ok);
            np = n - ok;
        }
        cr_expect_eq(np, 0, "chunk %zu: nothing left over", chunk);
        cr_expect_eq(nj, len, "chunk %zu", chunk);
        cr_expect_eq(memcmp(joined, text, len), 0, "chunk %zu", chunk);
    }
}

struct sanitize_case {
    const char *name;
    const char *in;
    size_t in_len;
    const char *want;
};

#define S(x) x, sizeof(x) - 1

static const struct sanitize_case sanitize_cases[] = {
    {"ascii", S("hello"), "hello"},
    {"empty", S(""), ""},
    {"valid mixed", S("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"),
     "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"},
    {"U+FFFD itself", S(FFFD), FFFD},
    {"lone continuation", S("a\x80z"), "a" FFFD "z"},
    {"continuation run", S("\x80\xBF"), FFFD FFFD},
    {"overlong C0 80", S("\xC0\x80"), FFFD FFFD},
    {"overlong C1 BF", S("\xC1\xBF"), FFFD FFFD},
    {"overlong E0 80 80", S("\xE0\x80\x80"), FFFD FFFD FFFD},
    {"overlong F0 80 80 80", S("\xF0\x80\x80\x80"), FFFD FFFD FFFD FFFD},
    {"surrogate ED A0 80", S("\xED\xA0\x80"), FFFD FFFD FFFD},
    {"surrogate ED BF BF", S("x\xED\xBF\xBFy"), "x" FFFD FFFD FFFD "y"},
    {"F5 lead", S("\xF5\x80\x80\x80"), FFFD FFFD FFFD FFFD},
    {"F8 lead", S("\xF8"), FFFD},
    {"FE FF", S("\xFE\xFF"), FFFD FFFD},
    {"above U+10FFFF", S("\xF4\x90\x80\x80"), FFFD FFFD FFFD FFFD},
    {"2-byte truncated at end", S("ab\xC3"), "ab" FFFD},
    {"3-byte truncated at end", S("ab\xE2\x82"), "ab" FFFD FFFD},
    {"4-byte truncated at end", S("ab\xF0\x9F\x98"), "ab" FFFD FFFD FFFD},
    {"truncated before ascii", S("\xE2\x82z"), FFFD FFFD "z"},
    {"truncated before a good character", S("\xC3\xE2\x82\xAC"), FFFD "\xE2\x82\xAC"},
};

/* NUL is U+0000, a character like any other: kept, as print() gives it to ipykernel (the
 * stream's JSON carries it as \u0000). A program's os.write(1, b"a\0b") was "ab". */
Test(utf8, sanitize_keeps_nul)
{
    static const struct {
        const char *in;
        size_t in_len;
        const char *want;
        size_t want_len;
    } cases[] = {
        {"a\0b\0", 4, "a\0b\0", 4},
        {"\0\0\0", 3, "\0\0\0", 3},
        {"\xC3\0\xA9", 3, FFFD "\0" FFFD, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *out = sanitize(cases[i].in, cases[i].in_len, &n);
        cr_expect(n == cases[i].want_len && memcmp(out, cases[i].want, n) == 0, "case %zu", i);
        free(out);
    }
}

Test(utf8, sanitize_table)
{
    for (size_t i = 0; i < sizeof sanitize_cases / sizeof sanitize_cases[0]; i++) {
        const struct sanitize_case *c = &sanitize_cases[i];
        size_t n;
        char *out = sanitize(c->in, c->in_len, &n);
        char got[256], want[256];
        hexdump(out, n, got, sizeof got);
        hexdump(c->want, strlen(c->want), want, sizeof want);
        cr_expect_eq(n, strlen(c->want), "%s: got [%s] want [%s]", c->name, got, want);
        cr_expect(n == strlen(c->want) && memcmp(out, c->want, n) == 0, "%s: got [%s] want [%s]",
                  c->name, got, want);
        free(out);
    }
}

Test(utf8, sanitize_every_single_byte)
{
    for (int b = 0; b < 256; b++) {
        char in = (char)b;
        size_t n;
        char *out = sanitize(&in, 1, &n);
        if (b < 0x80)
            cr_expect(n == 1 && out[0] == in, "byte %02X kept", b);
        else
            cr_expect(n == 3 && memcmp(out, FFFD, 3) == 0, "byte %02X replaced", b);
        free(out);
    }
}

Test(utf8, sanitize_valid_characters_unchanged)
{
    for (size_t c = 0; c < sizeof chars / sizeof chars[0]; c++) {
        size_t len = strlen(chars[c].bytes), n;
        char *out = sanitize(chars[c].bytes, len, &n);
        cr_expect(n == len && memcmp(out, chars[c].bytes, len) == 0, "%s", chars[c].name);
        free(out);
    }
}

/* The worst case fills the documented capacity exactly, and the result is always valid:
 * sanitising it again changes nothing. */
Test(utf8, sanitize_worst_case_and_idempotent)
{
    enum { N = 1000 };
    char in[N];
    memset(in, 0xFF, sizeof in);
    size_t n;
    char *out = sanitize(in, N, &n);
    cr_expect_eq(n, 3 * N);
    free(out);

    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        char noise[64];
        for (size_t i = 0; i < sizeof noise; i++) {
            seed = seed * 1103515245u + 12345u;
            noise[i] = (char)(seed >> 16);
        }
        size_t n1, n2;
        char *once = sanitize(noise, sizeof noise, &n1);
        cr_expect_eq(utf8_complete_prefix((const unsigned char *)once, n1), n1,
                     "nothing unfinished in the output");
        char *twice = sanitize(once, n1, &n2);
        cr_expect(n1 == n2 && memcmp(once, twice, n1) == 0, "round %d not idempotent", round);
        free(once);
        free(twice);
    }
}

/* Cuts at a byte limit land on character boundaries (issue 14): each case is a string, a
 * limit and the length utf8_prefix keeps. */
Test(utf8, prefix_never_splits_a_character)
{
    static const struct {
        const char *s;
        size_t max, want;
    } cases[] = {
        {"abc", 2, 2},
        {"abc", 3, 3},
        {"abc", 10, 3},
        {"\xC3\xA9\xC3\xA9", 3, 2}, /* éé: the second é would be cut */
        {"\xC3\xA9\xC3\xA9", 4, 4},
        {"a\xE2\x82\xAC", 2, 1}, /* a€ */
        {"a\xE2\x82\xAC", 3, 1},
        {"a\xE2\x82\xAC", 4, 4},
        {"\xF0\x9F\x98\x80x", 3, 0}, /* an emoji cut anywhere inside */
        {"\xF0\x9F\x98\x80x", 4, 4},
        {"", 5, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(utf8_prefix(cases[i].s, cases[i].max), cases[i].want, "case %zu", i);
}

Test(utf8, copy_trim_and_tail_keep_valid_text)
{
    char name[200];
    size_t n = 0;
    for (int i = 0; i < 90; i++) /* 180 bytes of é */
        name[n++] = '\xC3', name[n++] = '\xA9';
    name[n] = '\0';
    char small[160]; /* 159 bytes: the 80th é would be cut in half */
    cr_expect_eq(utf8_copy(small, sizeof small, name), 158);
    cr_expect_eq(strlen(small), 158);
    json_t *j = json_string(small);
    cr_expect_not_null(j, "the copy is valid UTF-8");
    json_decref(j);

    char cut[160];
    snprintf(cut, sizeof cut, "%s", name); /* what snprintf alone leaves: half an é */
    cr_expect_null(json_string(cut));
    cr_expect_eq(utf8_trim(cut), 158);
    j = json_string(cut);
    cr_expect_not_null(j);
    json_decref(j);

    const char *tail = utf8_tail(name, n, 101); /* starts inside an é: moved past it */
    cr_expect_eq(strlen(tail), 100);
    j = json_string(tail);
    cr_expect_not_null(j);
    json_decref(j);
    cr_expect_eq(utf8_tail(name, n, 500), name);
    cr_expect_eq(utf8_copy(small, 0, name), 0);
}
