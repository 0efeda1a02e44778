/* test_auth: HMAC-SHA256 (RFC 4231), signing and verifying, the replay guard and its window,
 * signature format checks, and the empty key that disables signing. */
#include <criterion/criterion.h>

#include "../../kernel/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex_decode(const char *hex, unsigned char *out, size_t *len)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    *len = n;
}

static void hex_encode(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    out[2 * n] = '\0';
}

/* RFC 4231 section 4: key and data in hex, the HMAC-SHA-256 result in hex. Case 5 gives only
 * the first 128 bits (truncation), so only that many bytes are compared. */
struct rfc4231_case {
    int number;
    const char *key_hex;
    const char *data_hex;
    const char *mac_hex;
};

#define AA20  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define AA131 AA20 AA20 AA20 AA20 AA20 AA20 "aaaaaaaaaaaaaaaaaaaaaa" /* 131 bytes of 0xaa */

static const struct rfc4231_case rfc4231[] = {
    {1, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {2, "4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {3, AA20,
     "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
     "dddddddddddddddd",
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {4, "0102030405060708090a0b0c0d0e0f10111213141516171819",
     "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
     "cdcdcdcdcdcdcdcd",
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {5, "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
     "a3b6167473100ee06e0c796c2955552b"},
    {6, AA131,
     "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
     "617368204b6579204669727374",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {7, AA131,
     "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d"
     "73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174"
     "612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e"
     "6720757365642062792074686520484d414320616c676f726974686d2e",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};
#define N_RFC4231 (sizeof rfc4231 / sizeof rfc4231[0])

Test(auth, rfc4231_all_vectors)
{
    cr_assert_eq(N_RFC4231, 7);
    for (size_t c = 0; c < N_RFC4231; c++) {
        unsigned char key[256], data[256], want[32], got[32];
        size_t key_len, data_len, want_len;
        hex_decode(rfc4231[c].key_hex, key, &key_len);
        hex_decode(rfc4231[c].data_hex, data, &data_len);
        hex_decode(rfc4231[c].mac_hex, want, &want_len);
        struct auth_part part = {data, data_len};
        memset(got, 0, sizeof got);
        cr_assert_eq(auth_hmac_sha256(key, key_len, &part, 1, got), AUTH_OK, "case %d",
                     rfc4231[c].number);
        cr_expect_eq(want_len, rfc4231[c].number == 5 ? 16u : 32u, "case %d", rfc4231[c].number);
        char got_hex[65];
        hex_encode(got, want_len, got_hex);
        cr_expect_str_eq(got_hex, rfc4231[c].mac_hex, "RFC 4231 case %d", rfc4231[c].number);
    }
}

/* The MAC covers the concatenation of the parts: every split gives the same digest. */
Test(auth, rfc4231_case7_split_into_parts_at_every_position)
{
    const struct rfc4231_case *c = &rfc4231[6];
    unsigned char key[256], data[256], want[32], got[32];
    size_t key_len, data_len, want_len;
    hex_decode(c->key_hex, key, &key_len);
    hex_decode(c->data_hex, data, &data_len);
    hex_decode(c->mac_hex, want, &want_len);
    for (size_t cut = 0; cut <= data_len; cut++) {
        struct auth_part parts[3] = {{data, cut}, {"", 0}, {data + cut, data_len - cut}};
        cr_assert_eq(auth_hmac_sha256(key, key_len, parts, 3, got), AUTH_OK);
        cr_assert_arr_eq(got, want, 32, "split at %zu", cut);
    }
}

Test(auth, strerror_has_a_sentence_for_every_code)
{
    const int codes[] = {AUTH_OK, AUTH_EBADSIG, AUTH_EREPLAY, AUTH_EFORMAT, AUTH_ENOMEM};
    const char *unknown = auth_strerror(-1000);
    cr_assert_not_null(unknown);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = auth_strerror(codes[i]);
        cr_assert_not_null(s);
        cr_expect_gt(strlen(s), 1, "code %d", codes[i]);
        cr_expect_str_neq(s, unknown, "code %d has no sentence", codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_expect_str_neq(s, auth_strerror(codes[j]), "codes %d and %d share a sentence",
                              codes[i], codes[j]);
    }
}

/* A Jupyter-like message: the four JSON frames that get signed. */
static void message_parts(struct auth_part parts[4], const char *content)
{
    static const char header[] = "{\"msg_id\":\"1\",\"msg_type\":\"execute_request\"}";
    parts[0] = (struct auth_part){header, sizeof header - 1};
    parts[1] = (struct auth_part){"{}", 2};
    parts[2] = (struct auth_part){"{}", 2};
    parts[3] = (struct auth_part){content, strlen(content)};
}

Test(auth, sign_matches_raw_hmac_and_verifies)
{
    const char key[] = "a0436f6c-1916-498b-8eb9-e81ab9368e84";
    struct auth *a = auth_new(key, strlen(key), 64);
    cr_assert_not_null(a);
    cr_expect_eq(auth_enabled(a), 1);
    struct auth_part parts[4];
    message_parts(parts, "{\"code\":\"1+1\"}");
    char hex[AUTH_HEX_LEN + 1];
    memset(hex, 'X', sizeof hex);
    cr_assert_eq(auth_sign(a, parts, 4, hex), AUTH_OK);
    cr_assert_eq(strlen(hex), AUTH_HEX_LEN);
    cr_expect_eq(strspn(hex, "0123456789abcdef"), AUTH_HEX_LEN, "lowercase hex: %s", hex);

    /* Same digest as HMAC over the concatenation of the four frames. */
    unsigned char raw[32];
    cr_assert_eq(auth_hmac_sha256(key, strlen(key), parts, 4, raw), AUTH_OK);
    char raw_hex[65];
    hex_encode(raw, 32, raw_hex);
    cr_expect_str_eq(hex, raw_hex);

    cr_expect_eq(auth_verify(a, parts, 4, hex, AUTH_HEX_LEN), AUTH_OK);
    auth_destroy(&a);
    cr_expect_null(a, "auth_destroy nulls the pointer");
    auth_destroy(&a); /* NULL is accepted */
    auth_destroy(NULL);
}

Test(auth, sign_is_deterministic_and_depends_on_content)
{
    struct auth *a = auth_new("k", 1, 16);
    struct auth_part p1[4], p2[4];
    message_parts(p1, "{\"a\":1}");
    message_parts(p2, "{\"a\":2}");
    char h1[65], h1b[65], h2[65];
    auth_sign(a, p1, 4, h1);
    auth_sign(a, p1, 4, h1b);
    auth_sign(a, p2, 4, h2);
    cr_expect_str_eq(h1, h1b);
    cr_expect_str_neq(h1, h2);
    auth_destroy(&a);
}

Test(auth, verify_with_wrong_key_is_ebadsig)
{
    struct auth *sender = auth_new("right-key", 9, 16);
    struct auth *receiver = auth_new("wrong-key", 9, 16);
    struct auth_part parts[4];
    message_parts(parts, "{}");
    char hex[65];
    cr_assert_eq(auth_sign(sender, parts, 4, hex), AUTH_OK);
    cr_expect_eq(auth_verify(receiver, parts, 4, hex, AUTH_HEX_LEN), AUTH_EBADSIG);
    /* A rejected signature is not remembered: the right key still accepts it once. */
    cr_expect_eq(auth_verify(sender, parts, 4, hex, AUTH_HEX_LEN), AUTH_OK);
    auth_destroy(&sender);
    auth_destroy(&receiver);
}

Test(auth, verify_with_tampered_content_or_signature_is_ebadsig)
{
    struct auth *a = auth_new("key", 3, 16);
    struct auth_part parts[4], other[4];
    message_parts(parts, "{\"code\":\"ls\"}");
    message_parts(other, "{\"code\":\"rm\"}");
    char hex[65];
    auth_sign(a, parts, 4, hex);
    cr_expect_eq(auth_verify(a, other, 4, hex, AUTH_HEX_LEN), AUTH_EBADSIG);
    /* Flip each hex digit in turn: every one matters. */
    for (size_t i = 0; i < AUTH_HEX_LEN; i++) {
        char bad[65];
        memcpy(bad, hex, sizeof bad);
        bad[i] = bad[i] == '0' ? '1' : '0';
        cr_expect_eq(auth_verify(a, parts, 4, bad, AUTH_HEX_LEN), AUTH_EBADSIG, "digit %zu", i);
    }
    cr_expect_eq(auth_verify(a, parts, 4, hex, AUTH_HEX_LEN), AUTH_OK);
    auth_destroy(&a);
}

Test(auth, signature_seen_twice_is_replay)
{
    struct auth *a = auth_new("key", 3, 16);
    struct auth_part parts[4];
    message_parts(parts, "{}");
    char hex[65];
    auth_sign(a, parts, 4, hex);
    cr_expect_eq(auth_verify(a, parts, 4, hex, AUTH_HEX_LEN), AUTH_OK);
    cr_expect_eq(auth_verify(a, parts, 4, hex, AUTH_HEX_LEN), AUTH_EREPLAY);
    cr_expect_eq(auth_verify(a, parts, 4, hex, AUTH_HEX_LEN), AUTH_EREPLAY);
    /* Upper-case hex of the same digest is the same signature, not a way around the guard. */
    char upper[65];
    for (size_t i = 0; i <= AUTH_HEX_LEN; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 'A' : hex[i]);
    int rc = auth_verify(a, parts, 4, upper, AUTH_HEX_LEN);
    cr_expect(rc == AUTH_EREPLAY || rc == AUTH_EFORMAT, "upper-case replay gave %d", rc);
    auth_destroy(&a);
}

Test(auth, bad_format_is_eformat)
{
    struct auth *a = auth_new("key", 3, 16);
    struct auth_part parts[4];
    message_parts(parts, "{}");
    char hex[65];
    auth_sign(a, parts, 4, hex);
    char long_sig[66];
    memcpy(long_sig, hex, 64);
    long_sig[64] = '0';
    long_sig[65] = '\0';
    struct {
        const char *name;
        const char *sig;
        size_t len;
    } cases[] = {
        {"empty", "", 0},
        {"63 chars", hex, 63},
        {"65 chars", long_sig, 65},
        {"1 char", hex, 1},
        {"non-hex g", "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 64},
        {"spaces", "                                                                ", 64},
        {"0x prefix", "0x23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 64},
        {"non-hex at end", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde-", 64},
        {"NUL inside",
         "0123456789abcdef0123456789abcdef\0"
         "123456789abcdef0123456789abcdef",
         64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(auth_verify(a, parts, 4, cases[i].sig, cases[i].len), AUTH_EFORMAT, "%s",
                     cases[i].name);
    /* Non-hex at every position of an otherwise good signature. */
    for (size_t i = 0; i < AUTH_HEX_LEN; i++) {
        char bad[65];
        memcpy(bad, hex, sizeof bad);
        bad[i] = 'z';
        cr_expect_eq(auth_verify(a, parts, 4, bad, AUTH_HEX_LEN), AUTH_EFORMAT, "position %zu", i);
    }
    /* None of this spent the real signature. */
    cr_expect_eq(auth_verify(a, parts, 4, hex, AUTH_HEX_LEN), AUTH_OK);
    auth_destroy(&a);
}

/* Signs message number i (distinct content per i) and verifies it. */
static int sign_and_verify(struct auth *a, int i, char hex[65])
{
    char content[64];
    snprintf(content, sizeof content, "{\"i\":%d}", i);
    struct auth_part parts[4];
    message_parts(parts, content);
    auth_sign(a, parts, 4, hex);
    return auth_verify(a, parts, 4, hex, AUTH_HEX_LEN);
}

static int verify_again(struct auth *a, int i)
{
    char content[64], hex[65];
    snprintf(content, sizeof content, "{\"i\":%d}", i);
    struct auth_part parts[4];
    message_parts(parts, content);
    auth_sign(a, parts, 4, hex);
    return auth_verify(a, parts, 4, hex, AUTH_HEX_LEN);
}

/* The last `window` signatures are always remembered, whatever the count so far. */
static void check_last_window_remembered(size_t window)
{
    for (int total = 1; total <= (int)(5 * window + 3); total++) {
        struct auth *a = auth_new("key", 3, window);
        cr_assert_not_null(a);
        char hex[65];
        for (int i = 0; i < total; i++)
            cr_assert_eq(sign_and_verify(a, i, hex), AUTH_OK, "window %zu msg %d", window, i);
        int first = total > (int)window ? total - (int)window : 0;
        for (int i = total - 1; i >= first; i--)
            cr_assert_eq(verify_again(a, i), AUTH_EREPLAY,
                         "window %zu: message %d of %d forgotten too early", window, i, total);
        auth_destroy(&a);
    }
}

/* More than twice `window` distinct signatures later, the first one is forgotten (the set is
 * bounded): it verifies again. */
static void check_old_forgotten(size_t window)
{
    struct auth *a = auth_new("key", 3, window);
    cr_assert_not_null(a);
    char hex[65];
    int total = (int)(2 * window) + 1;
    for (int i = 0; i < total; i++)
        cr_assert_eq(sign_and_verify(a, i, hex), AUTH_OK);
    cr_expect_eq(verify_again(a, 0), AUTH_OK,
                 "window %zu: message 0 still remembered after %d distinct signatures "
                 "(auth.h promises at most twice the window)",
                 window, total);
    auth_destroy(&a);
}

Test(auth, replay_window_keeps_the_last_window)
{
    const size_t windows[] = {1, 3, 5, 8, 16, 64, 100};
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++)
        check_last_window_remembered(windows[i]);
}

/* Regression: auth_new once rounded the window up to a power of two (and to at least 8)
 * before using it as the generation size, so a window of 100 remembered up to 256
 * signatures, not "at most twice" as auth.h says. */
Test(auth, replay_window_forgets_after_twice_the_window)
{
    const size_t windows[] = {1, 5, 8, 16, 64, 100, 1000, 1024};
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++)
        check_old_forgotten(windows[i]);
}

Test(auth, empty_key_disables_signing)
{
    struct auth *a = auth_new("", 0, 16);
    cr_assert_not_null(a);
    cr_expect_eq(auth_enabled(a), 0);
    struct auth_part parts[4];
    message_parts(parts, "{}");
    char hex[65];
    memset(hex, 'X', sizeof hex);
    cr_expect_eq(auth_sign(a, parts, 4, hex), AUTH_OK);
    cr_expect_str_eq(hex, "");
    const char *sigs[] = {"", "garbage",
                          "0000000000000000000000000000000000000000000000000000000"
                          "000000000"};
    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(auth_verify(a, parts, 4, sigs[i], strlen(sigs[i])), AUTH_OK, "sig '%s'",
                     sigs[i]);
        cr_expect_eq(auth_verify(a, parts, 4, sigs[i], strlen(sigs[i])), AUTH_OK,
                     "sig '%s' the second time", sigs[i]);
    }
    auth_destroy(&a);
}

Test(auth, one_byte_key_enables_signing)
{
    struct auth *a = auth_new("k", 1, 16);
    cr_expect_eq(auth_enabled(a), 1);
    struct auth_part parts[4];
    message_parts(parts, "{}");
    cr_expect_eq(auth_verify(a, parts, 4, "", 0), AUTH_EFORMAT);
    auth_destroy(&a);
}
