/* spark: the edgenode's Spark driver client, as the kernel sees it. It resolves the
 * settings, negotiates with the standalone master before a session starts, picks the fixed
 * ports, asks the executor to start or stop its SparkSession, follows the running cell's
 * jobs (live progress, the endless-WAITING report) and runs the %spark magics. Everything
 * it does over HTTP goes through the loop's asynchronous client, never blocking it. */
#ifndef SPARKERNEL_SPARK_H
#define SPARKERNEL_SPARK_H

#include <jansson.h>

struct kernel;
struct spark;

/* Reads the settings from env (borrowed); connection_file names the kernel (its id) and the
 * directory where sessions publish their records (driver/sharing.h). Returns a new object;
 * spark_destroy()s. */
struct spark *spark_new(char **env, const char *connection_file);
void spark_destroy(struct spark **self);

/* The executor is ready: start the warm session if the settings ask for it. */
void spark_on_executor_ready(struct kernel *k);
/* The executor died: forget its session; the master is asked to kill its application so
 * its executors are freed at once. */
void spark_on_executor_death(struct kernel *k);
/* A spark_state event from the executor (borrowed). */
void spark_on_state(struct kernel *k, json_t *ev);

/* A cell (execution count) is about to run in the executor / has produced its reply.
 * spark_cell_end returns 1 when it holds the reply back for a last progress update; it
 * then calls execution_release_reply(k) itself. */
void spark_cell_begin(struct kernel *k, int count);
int spark_cell_end(struct kernel *k);

/* Runs the %spark lines of the current cell (array of argument strings, borrowed), then
 * calls execution_continue(k, rest) (rest borrowed) or fails the cell. */
void spark_run_magics(struct kernel *k, json_t *lines, const char *rest);

/* Timers: milliseconds until spark_tick wants to run (-1: none), and the tick itself. */
long spark_next_tick_ms(struct kernel *k);
void spark_tick(struct kernel *k);

/* At kernel shutdown: forgets the session record; if the executor could not be left to
 * stop its session (executor_detached 0: it was starting, or had died) and the application
 * is still on the master, kills it there (bounded wait). */
void spark_shutdown(struct kernel *k, int executor_detached);

#endif
