/* spark: the edgenode's Spark driver client, plugged into the kernel core through
 * kernel/extension.h. It resolves the settings, negotiates with the standalone master before
 * a session starts, picks the fixed ports, asks the executor to start or stop its
 * SparkSession, follows the running cell's jobs (live progress, the endless-WAITING report),
 * shares the cluster and runs the %spark magics. Everything it does over HTTP goes through
 * its asynchronous client, one of the loop's event sources, never blocking the loop. */
#ifndef SPARKERNEL_SPARK_H
#define SPARKERNEL_SPARK_H

struct kernel;

/* Plugs the Spark driver into k (after kernel_open): its hooks, its HTTP client and its
 * timers. Reads the settings from env (borrowed); connection_file names the kernel (its id)
 * and the directory where sessions publish their records (driver/sharing.h). The kernel
 * owns what this creates from then on (kernel_close frees it). Returns 0, or -1 out of
 * memory or when k has an extension already. */
int spark_attach(struct kernel *k, char **env, const char *connection_file);

#endif
