/* sharing: many notebooks on one standalone cluster. Every sparkernel session publishes a
 * small record (which kernel, which notebook, busy or idle since when) in a directory the
 * kernels of one Jupyter server share (next to their connection files), so that a kernel
 * can say who holds the cluster's cores (%spark status, the WAITING report) and can tell
 * whether another application waits for cores while its own notebook is idle (then it
 * gives its executors back at once instead of after the idle timeout). */
#ifndef SPARKERNEL_SHARING_H
#define SPARKERNEL_SHARING_H

#include "master.h"

#include <stddef.h>
#include <sys/types.h>

struct sharing_entry {
    char app_id[128];
    char kernel_id[64];
    char notebook[256];
    pid_t pid;
    int busy;       /* a cell is running */
    double since;   /* busy or idle since (seconds since the epoch) */
    double holding; /* has held cores since (seconds since the epoch); 0: holds none */
};

/* The directory for records: $SPARKERNEL_SESSIONS_DIR if set (env, borrowed), else
 * "<directory of the connection file>/sparkernel-sessions". Writes into dir (len). */
void sharing_dir(char **env, const char *connection_file, char *dir, size_t len);

/* The kernel id Jupyter put in the connection file name ("kernel-<id>.json"), else "". */
void sharing_kernel_id(const char *connection_file, char *id, size_t len);

/* Writes <dir>/<app_id>.json atomically (creating dir, mode 0700). Returns 0 or -errno. */
int sharing_publish(const char *dir, const struct sharing_entry *e);
/* Removes the record of app_id (missing is fine). */
void sharing_remove(const char *dir, const char *app_id);
/* Reads the record of app_id whose process is alive. Returns 1 when found, 0 when not
 * (a record of a dead process is removed). */
int sharing_lookup(const char *dir, const char *app_id, struct sharing_entry *out);
/* Parses one record (len bytes); 0 on success, -1 on anything malformed. Pure. */
int sharing_parse(const char *json, size_t len, struct sharing_entry *out);

/* Whether another active application than mine waits for cores: one the master shows
 * WAITING (registered, no executor granted yet), or a sparkernel session whose record says
 * a cell is running while it holds no core. Writes its id and name into who. Returns 1 or
 * 0. dir may be NULL (records are then not consulted). */
int sharing_contended(const struct master_status *ms, const char *my_app, const char *dir,
                      char *who, size_t len);

/* Whether my_app, holding cores since my_holding (seconds since the epoch), is the
 * sparkernel session that has held cores the longest: of the applications holding cores in
 * ms whose record in dir is alive, none has an earlier "holding" (ties go to the smaller
 * application id). Applications of other clients do not take part: only sparkernel sessions
 * take turns. A record that does not say (yet) counts as holding since now. */
int sharing_longest_holder(const struct master_status *ms, const char *my_app, double my_holding,
                           const char *dir, double now);

/* One short phrase for the holder of app a: "this notebook", "sparkernel: <notebook or
 * kernel id>, idle 42 s" / ", running a cell", or "" for other applications. */
void sharing_holder(const struct master_app *a, const char *my_app, const char *dir, double now,
                    char *out, size_t len);

#endif
