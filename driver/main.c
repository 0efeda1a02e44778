/* main: the sparkernel program: the kernel core (kernel/) with the Spark driver plugged in
 * (spark_attach). Parses the arguments and reads the core's own environment variables
 * (DESIGN.md lists them; the driver's settings read the rest). */
#include "../kernel/kernel.h"
#include "../kernel/log.h"
#include "spark.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: sparkernel -f CONNECTION_FILE [--python PATH] [--pythonpath DIR]\n"
                 "                  [--python-version X.Y.Z]\n"
                 "       sparkernel --version\n\n"
                 "A Jupyter kernel for PySpark on a Spark standalone cluster. Jupyter starts it\n"
                 "from its kernelspec; see README.md for configuration.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connection-file", required_argument, NULL, 'f'},
        {"python", required_argument, NULL, 'p'},
        {"pythonpath", required_argument, NULL, 'P'},
        {"python-version", required_argument, NULL, 'V'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct kernel k;
    memset(&k, 0, sizeof k);
    k.sigfd = -1;
    const char *conn_file = NULL;
    k.sup.cfg.python = getenv("SPARKERNEL_PYTHON") ? getenv("SPARKERNEL_PYTHON") : "python3";
    k.sup.cfg.pythonpath = SPARKERNEL_PYDIR;
    int c;
    while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            conn_file = optarg;
            break;
        case 'p':
            k.sup.cfg.python = optarg;
            break;
        case 'P':
            k.sup.cfg.pythonpath = optarg;
            break;
        case 'V':
            k.python_version = optarg;
            break;
        case 'v':
            printf("sparkernel %s\n", SPARKERNEL_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (conn_file == NULL) {
        usage(stderr);
        return 2;
    }
    k.sup.cfg.connection_file = conn_file;
    log_init();
    const char *allow = getenv("SPARKERNEL_ALLOW_EMPTY_KEY");
    k.allow_empty_key = allow && strcmp(allow, "1") == 0;
    const char *max_mb = getenv("SPARKERNEL_MAX_MESSAGE_MB");
    if (max_mb && atoi(max_mb) > 0)
        k.max_json = (size_t)atoi(max_mb) << 20;
    k.watch_parent = getenv("JPY_PARENT_PID") != NULL;
    char detail[640];
    int rc = kernel_open(&k, conn_file, detail, sizeof detail);
    extern char **environ;
    if (rc == KERNEL_OK && spark_attach(&k, environ, conn_file) != 0) {
        snprintf(detail, sizeof detail, "out of memory");
        rc = KERNEL_ENOMEM;
    }
    if (rc != KERNEL_OK) {
        if (rc == KERNEL_ECONNECTION)
            log_error("%s", detail);
        else
            log_error("the kernel cannot start (%s): %s", kernel_strerror(rc), detail);
        kernel_close(&k);
        return rc == KERNEL_ECONNECTION ? 3 : 4;
    }
    kernel_run(&k);
    kernel_close(&k);
    return 0;
}
