/* fake_http: see fake_http.h. */
#include "fake_http.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *NOT_FOUND = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/* Reads one request (headers, then Content-Length bytes of body) into req. */
static int read_request(int c, char *req, size_t cap, char **body, size_t *body_len)
{
    size_t n = 0;
    char *end = NULL;
    while (n < cap - 1 && end == NULL) {
        ssize_t r = read(c, req + n, cap - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        req[n] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    if (end == NULL)
        return -1;
    const char *cl = strcasestr(req, "Content-Length:");
    size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0, have = n - (size_t)(end + 4 - req);
    while (have < want && n < cap - 1) {
        ssize_t r = read(c, req + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        have += (size_t)r;
    }
    req[n] = '\0';
    *body = end + 4;
    *body_len = have;
    return 0;
}

static void serve(int fd, const struct fake_route *routes, int log_fd)
{
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[16384], method[8] = "", path[1024] = "", *body;
        size_t body_len;
        if (read_request(c, req, sizeof req, &body, &body_len) == 0 &&
            sscanf(req, "%7s %1023s", method, path) == 2) {
            dprintf(log_fd, "%s %s %.*s\n", method, path, (int)body_len, body);
            const char *answer = NOT_FOUND;
            for (const struct fake_route *r = routes; r->method; r++)
                if (strcmp(r->method, method) == 0 &&
                    strncmp(path, r->path, strlen(r->path)) == 0) {
                    answer = r->answer;
                    break;
                }
            ssize_t w = write(c, answer, strlen(answer));
            (void)w;
        }
        close(c);
    }
}

int fake_http_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t alen = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

struct fake_http fake_http_start(const struct fake_route *routes)
{
    struct fake_http sv;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int fd = fake_http_listener(&sv.port);
    sv.pid = fork();
    cr_assert_geq(sv.pid, 0);
    if (sv.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test that failed before stop */
        alarm(60);
        close(fds[0]);
        serve(fd, routes, fds[1]);
        _exit(0);
    }
    close(fd);
    close(fds[1]);
    sv.log_fd = fds[0];
    return sv;
}

char *fake_http_stop(struct fake_http *sv, const char *method)
{
    kill(sv->pid, SIGKILL);
    waitpid(sv->pid, NULL, 0);
    char *all = calloc(1, 65536), *out = calloc(1, 65536);
    size_t n = 0, m = 0;
    ssize_t r;
    while (n < 65535 && (r = read(sv->log_fd, all + n, 65535 - n)) > 0)
        n += (size_t)r;
    close(sv->log_fd);
    for (char *line = all, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t ml = method ? strlen(method) : 0;
        if (method && (strncmp(line, method, ml) != 0 || line[ml] != ' '))
            continue;
        m += (size_t)snprintf(out + m, 65536 - m, "%s\n", line + (method ? ml + 1 : 0));
    }
    free(all);
    return out;
}

char *fake_http_answer(const char *status, const char *body)
{
    char *s = NULL;
    cr_assert_geq(asprintf(&s,
                           "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
                           "%zu\r\nConnection: close\r\n\r\n%s",
                           status, strlen(body), body),
                  0);
    return s;
}
