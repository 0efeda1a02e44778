/* test_connection: loading and checking Jupyter connection files, written under a fresh
 * mkdtemp directory per test. */
#include <criterion/criterion.h>

#include "../../kernel/connection.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/sparkernel-conn-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(connection, .init = make_dir, .fini = remove_dir);

/* Writes text to dir/name with the given mode; the file's path goes into path. */
static void write_file(const char *name, const char *text, mode_t mode, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}

static json_t *good_json(void)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:s}", "shell_port", 50001,
                     "iopub_port", 50002, "stdin_port", 50003, "control_port", 50004, "hb_port",
                     50005, "ip", "127.0.0.1", "key", "a0436f6c-1916-498b-8eb9-e81ab9368e84",
                     "transport", "tcp", "signature_scheme", "hmac-sha256", "kernel_name",
                     "sparkernel");
}

static void write_json(const char *name, json_t *root, mode_t mode, char *path, size_t len)
{
    char *text = json_dumps(root, 0);
    cr_assert_not_null(text);
    write_file(name, text, mode, path, len);
    free(text);
}

/* Loads root (stolen) from a 0600 file. */
static int load_json(json_t *root, int allow_empty_key, struct connection *c, char *detail,
                     size_t detail_len)
{
    char path[256];
    write_json("kernel.json", root, 0600, path, sizeof path);
    json_decref(root);
    return connection_load(path, allow_empty_key, c, detail, detail_len);
}

Test(connection, good_file_loads_every_field)
{
    struct connection c;
    char detail[512] = "untouched";
    cr_assert_eq(load_json(good_json(), 0, &c, detail, sizeof detail), CONNECTION_OK, "%s", detail);
    cr_expect_str_eq(c.transport, "tcp");
    cr_expect_str_eq(c.ip, "127.0.0.1");
    cr_expect_eq(c.shell_port, 50001);
    cr_expect_eq(c.iopub_port, 50002);
    cr_expect_eq(c.stdin_port, 50003);
    cr_expect_eq(c.control_port, 50004);
    cr_expect_eq(c.hb_port, 50005);
    cr_assert_not_null(c.key);
    cr_expect_str_eq(c.key, "a0436f6c-1916-498b-8eb9-e81ab9368e84");
    cr_expect_eq(c.key_len, 36);
    cr_expect_eq(c.insecure_mode, 0);
    connection_clear(&c);
    cr_expect_null(c.key);
    cr_expect_eq(c.key_len, 0);
    connection_clear(&c); /* twice is harmless */
}

Test(connection, signature_scheme_is_optional)
{
    json_t *root = good_json();
    json_object_del(root, "signature_scheme");
    struct connection c;
    char detail[512];
    cr_expect_eq(load_json(root, 0, &c, detail, sizeof detail), CONNECTION_OK, "%s", detail);
    connection_clear(&c);
}

Test(connection, ipc_transport_loads)
{
    json_t *root = good_json();
    json_object_set_new(root, "transport", json_string("ipc"));
    json_object_set_new(root, "ip", json_string("/tmp/kernel-abc"));
    struct connection c;
    char detail[512];
    cr_assert_eq(load_json(root, 0, &c, detail, sizeof detail), CONNECTION_OK, "%s", detail);
    cr_expect_str_eq(c.transport, "ipc");
    cr_expect_str_eq(c.ip, "/tmp/kernel-abc");
    connection_clear(&c);
}

Test(connection, each_missing_field_is_efield_and_named)
{
    const char *fields[] = {"transport",    "ip",         "key",        "shell_port",
                            "control_port", "stdin_port", "iopub_port", "hb_port"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *root = good_json();
        cr_assert_eq(json_object_del(root, fields[i]), 0);
        struct connection c;
        char detail[512];
        int rc = load_json(root, 0, &c, detail, sizeof detail);
        cr_expect_eq(rc, CONNECTION_EFIELD, "missing %s gave %d", fields[i], rc);
        cr_expect_not_null(strstr(detail, fields[i]), "detail \"%s\" does not name %s", detail,
                           fields[i]);
        cr_expect_null(c.key, "missing %s: no key is left behind", fields[i]);
        connection_clear(&c);
    }
}

Test(connection, wrong_types_are_efield)
{
    struct {
        const char *field;
        json_t *(*value)(void);
    } cases[] = {
        {"transport", json_null}, {"ip", json_object}, {"key", json_true},
        {"hb_port", json_null},   {"ip", json_array},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *root = good_json();
        json_object_set_new(root, cases[i].field, cases[i].value());
        struct connection c;
        char detail[512];
        cr_expect_eq(load_json(root, 0, &c, detail, sizeof detail), CONNECTION_EFIELD, "%s",
                     cases[i].field);
        cr_expect_not_null(strstr(detail, cases[i].field), "detail \"%s\"", detail);
        connection_clear(&c);
    }
}

Test(connection, bad_ports)
{
    const char *ports[] = {"shell_port", "control_port", "stdin_port", "iopub_port", "hb_port"};
    struct {
        const char *name;
        const char *json_value;
        int expect;
    } values[] = {
        {"0", "0", CONNECTION_EPORT},
        {"70000", "70000", CONNECTION_EPORT},
        {"65536", "65536", CONNECTION_EPORT},
        {"-1", "-1", CONNECTION_EPORT},
        {"huge", "9223372036854775807", CONNECTION_EPORT},
        {"string", "\"50001\"", CONNECTION_EFIELD},
        {"real", "50001.0", CONNECTION_EFIELD},
        {"null", "null", CONNECTION_EFIELD},
        {"1", "1", CONNECTION_OK},
        {"65535", "65535", CONNECTION_OK},
    };
    for (size_t p = 0; p < sizeof ports / sizeof ports[0]; p++)
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            json_t *root = good_json();
            json_error_t err;
            json_t *val = json_loads(values[v].json_value, JSON_DECODE_ANY, &err);
            cr_assert_not_null(val);
            json_object_set_new(root, ports[p], val);
            struct connection c;
            char detail[512] = "";
            int rc = load_json(root, 0, &c, detail, sizeof detail);
            cr_expect_eq(rc, values[v].expect, "%s = %s gave %d (%s)", ports[p], values[v].name, rc,
                         detail);
            if (values[v].expect != CONNECTION_OK)
                cr_expect_not_null(strstr(detail, ports[p]), "%s = %s: detail \"%s\"", ports[p],
                                   values[v].name, detail);
            connection_clear(&c);
        }
}

Test(connection, missing_or_unreadable_file_is_eread)
{
    char path[256], detail[512];
    struct connection c;
    snprintf(path, sizeof path, "%s/does-not-exist.json", dir);
    cr_expect_eq(connection_load(path, 0, &c, detail, sizeof detail), CONNECTION_EREAD);
    cr_expect_not_null(strstr(detail, path), "detail \"%s\" names the path", detail);
    cr_expect_null(c.key);

    /* A path through a regular file (ENOTDIR). */
    char file[256], through[300];
    write_file("plain", "{}", 0600, file, sizeof file);
    snprintf(through, sizeof through, "%s/kernel.json", file);
    cr_expect_eq(connection_load(through, 0, &c, detail, sizeof detail), CONNECTION_EREAD);

    /* A file without read permission, read by an unprivileged user (root reads anything). */
    char good[256];
    json_t *root = good_json();
    write_json("locked.json", root, 0000, good, sizeof good);
    json_decref(root);
    cr_assert_eq(chmod(dir, 0711), 0); /* the directory is not what stops the reader */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(100);
        struct connection cc;
        char d[512];
        int rc = connection_load(good, 0, &cc, d, sizeof d);
        connection_clear(&cc);
        _exit(rc == CONNECTION_EREAD ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_expect_eq(WEXITSTATUS(status), 0, "an unreadable file did not give CONNECTION_EREAD");
}

Test(connection, invalid_json_is_ejson)
{
    const char *texts[] = {"",          "{",       "not json",          "{\"shell_port\": 1,}",
                           "[1, 2, 3]", "\"str\"", "{\"a\":1} trailing"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char path[256], detail[512] = "";
        write_file("bad.json", texts[i], 0600, path, sizeof path);
        struct connection c;
        cr_expect_eq(connection_load(path, 0, &c, detail, sizeof detail), CONNECTION_EJSON,
                     "text '%s'", texts[i]);
        cr_expect_neq(detail[0], '\0', "text '%s' has a detail", texts[i]);
        cr_expect_null(c.key);
    }
}

Test(connection, hmac_md5_is_escheme)
{
    json_t *root = good_json();
    json_object_set_new(root, "signature_scheme", json_string("hmac-md5"));
    struct connection c;
    char detail[512];
    cr_expect_eq(load_json(root, 0, &c, detail, sizeof detail), CONNECTION_ESCHEME);
    cr_expect_not_null(strstr(detail, "hmac-md5"), "detail \"%s\"", detail);
    cr_expect_null(c.key);
}

Test(connection, udp_transport_is_etransport)
{
    json_t *root = good_json();
    json_object_set_new(root, "transport", json_string("udp"));
    struct connection c;
    char detail[512];
    cr_expect_eq(load_json(root, 0, &c, detail, sizeof detail), CONNECTION_ETRANSPORT);
    cr_expect_not_null(strstr(detail, "udp"), "detail \"%s\"", detail);
    cr_expect_null(c.key);
}

Test(connection, empty_key_refused_unless_allowed)
{
    json_t *root = good_json();
    json_object_set_new(root, "key", json_string(""));
    char path[256], detail[512];
    write_json("empty-key.json", root, 0600, path, sizeof path);
    json_decref(root);
    struct connection c;
    cr_expect_eq(connection_load(path, 0, &c, detail, sizeof detail), CONNECTION_EKEY);
    cr_expect_not_null(strstr(detail, "key"), "detail \"%s\"", detail);
    cr_expect_null(c.key);
    cr_assert_eq(connection_load(path, 1, &c, detail, sizeof detail), CONNECTION_OK, "%s", detail);
    cr_assert_not_null(c.key);
    cr_expect_str_eq(c.key, "");
    cr_expect_eq(c.key_len, 0);
    cr_expect_eq(c.hb_port, 50005);
    connection_clear(&c);
}

Test(connection, insecure_mode_follows_permissions)
{
    struct {
        mode_t mode;
        int insecure;
    } cases[] = {{0600, 0}, {0400, 0}, {0644, 1}, {0640, 1}, {0604, 1}, {0660, 1}, {0606, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *root = good_json();
        char path[256], detail[512];
        write_json("perm.json", root, cases[i].mode, path, sizeof path);
        json_decref(root);
        struct connection c;
        cr_assert_eq(connection_load(path, 0, &c, detail, sizeof detail), CONNECTION_OK, "%s",
                     detail);
        cr_expect_eq(c.insecure_mode, cases[i].insecure, "mode %04o", (unsigned)cases[i].mode);
        connection_clear(&c);
    }
}

Test(connection, endpoint_tcp_and_ipc)
{
    struct connection c;
    memset(&c, 0, sizeof c);
    char buf[300];
    strcpy(c.transport, "tcp");
    strcpy(c.ip, "127.0.0.1");
    connection_endpoint(&c, 50001, buf, sizeof buf);
    cr_expect_str_eq(buf, "tcp://127.0.0.1:50001");
    strcpy(c.ip, "0.0.0.0");
    connection_endpoint(&c, 1, buf, sizeof buf);
    cr_expect_str_eq(buf, "tcp://0.0.0.0:1");
    strcpy(c.transport, "ipc");
    strcpy(c.ip, "/tmp/kernel-abc");
    connection_endpoint(&c, 50002, buf, sizeof buf);
    cr_expect_str_eq(buf, "ipc:///tmp/kernel-abc-50002");
    /* A short buffer is truncated and terminated. */
    char small[8];
    connection_endpoint(&c, 50002, small, sizeof small);
    cr_expect_str_eq(small, "ipc:///");
}

Test(connection, strerror_has_a_sentence_for_every_code)
{
    const int codes[] = {CONNECTION_OK,         CONNECTION_EREAD, CONNECTION_EJSON,
                         CONNECTION_EFIELD,     CONNECTION_EPORT, CONNECTION_ESCHEME,
                         CONNECTION_ETRANSPORT, CONNECTION_EKEY};
    const char *unknown = connection_strerror(-1000);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = connection_strerror(codes[i]);
        cr_assert_not_null(s);
        cr_expect_str_neq(s, unknown, "code %d", codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_expect_str_neq(s, connection_strerror(codes[j]), "codes %d and %d", codes[i],
                              codes[j]);
    }
}
