/* main: argument parsing and wiring. Everything else hangs off one struct kernel. */
#include "kernel.h"
#include "log.h"

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
    k.exec_cfg.python = getenv("SPARKERNEL_PYTHON") ? getenv("SPARKERNEL_PYTHON") : "python3";
    k.exec_cfg.pythonpath = SPARKERNEL_PYDIR;
    int c;
    while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            conn_file = optarg;
            break;
        case 'p':
            k.exec_cfg.python = optarg;
            break;
        case 'P':
            k.exec_cfg.pythonpath = optarg;
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
    log_init();
    char detail[512];
    int rc = kernel_open(&k, conn_file, detail, sizeof detail);
    if (rc != 0) {
        const char *what =
            rc >= CONNECTION_EKEY && rc < 0 ? connection_strerror(rc) : "the kernel cannot start";
        log_error("%s: %s", what, detail);
        kernel_close(&k);
        return rc >= CONNECTION_EKEY && rc < 0 ? 3 : 4;
    }
    kernel_run(&k);
    kernel_close(&k);
    return 0;
}
