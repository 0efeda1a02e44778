/* test_key_secrecy: the connection file's key never reaches an error sentence (which the
 * kernel logs), however the file is damaged. Regression: jansson's error text quotes the
 * token at the error ("invalid token near 'SECRETKEY'"), and with the key's quotes lost
 * that token was the key. */
#include <criterion/criterion.h>

#include "../../kernel/connection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "SECRETKEY7f3a9c2e41"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/sparkernel-key-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(key_secrecy, .init = make_dir, .fini = remove_dir);

/* Whether any 6-character piece of KEY appears in text. */
static int shows_key(const char *text)
{
    const char *key = KEY;
    for (size_t i = 0; i + 6 <= strlen(key); i++) {
        char piece[7];
        memcpy(piece, key + i, 6);
        piece[6] = '\0';
        if (strstr(text, piece) != NULL)
            return 1;
    }
    return 0;
}

Test(key_secrecy, damaged_files_never_show_the_key)
{
    const char *texts[] = {
        "{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"key\":" KEY ",\"shell_port\":1}",
        "{\"key\":" KEY "}",
        "{\"key\" \"" KEY "\", \"ip\":\"127.0.0.1\"}",
        "{\"key\":\"" KEY "\" \"ip\":\"127.0.0.1\"}",
        "{\"key\":\"" KEY "\",,}",
        "{\"key\":\"" KEY "\\q\"}",
        "{\"key\":\"" KEY "\x01\"}",
        "{\"key\":\"" KEY "\xff\"}",
        "{\"key\":\"" KEY,
        "{\"key\":\"" KEY "\"} trailing",
        "{\"key\":\"" KEY "\", \"key\":\"" KEY "\"}",
        "{\"" KEY "\": 1,}",
        "[\"" KEY "\"",
        KEY,
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char path[128], detail[512] = "";
        snprintf(path, sizeof path, "%s/kernel-%zu.json", dir, i);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(texts[i], f);
        fclose(f);
        cr_assert_eq(chmod(path, 0600), 0);
        struct connection c;
        int rc = connection_load(path, 0, &c, detail, sizeof detail);
        cr_expect_neq(rc, CONNECTION_OK, "text %zu loaded", i);
        cr_expect_neq(detail[0], '\0', "text %zu has no detail", i);
        cr_expect_not(shows_key(detail), "text %zu: the detail shows the key: %s", i, detail);
        cr_expect_not(shows_key(connection_strerror(rc)), "text %zu", i);
        cr_expect_null(c.key);
    }
}

Test(key_secrecy, wrong_field_types_never_show_the_key)
{
    /* Well-formed JSON with the key where another field belongs, or the key too long. */
    char long_key[5000];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    memcpy(long_key, KEY, strlen(KEY));
    char texts[3][6000];
    snprintf(texts[0], sizeof texts[0],
             "{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"key\":\"%s\"}", long_key);
    snprintf(texts[1], sizeof texts[1],
             "{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"key\":\"%s\",\"shell_port\":\"%s\"}",
             KEY, KEY);
    snprintf(texts[2], sizeof texts[2],
             "{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"key\":\"%s\",\"shell_port\":1,"
             "\"control_port\":2,\"stdin_port\":3,\"iopub_port\":4,\"hb_port\":5,"
             "\"signature_scheme\":\"hmac-md5\"}",
             KEY);
    for (size_t i = 0; i < 3; i++) {
        char path[128], detail[512] = "";
        snprintf(path, sizeof path, "%s/typed-%zu.json", dir, i);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(texts[i], f);
        fclose(f);
        struct connection c;
        cr_expect_neq(connection_load(path, 0, &c, detail, sizeof detail), CONNECTION_OK);
        cr_expect_not(shows_key(detail), "text %zu: the detail shows the key: %s", i, detail);
        cr_expect_null(c.key);
    }
}
