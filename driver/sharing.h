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

enum sharing_error {
    SHARING_OK = 0,
    SHARING_EID = -1,  /* an application id that cannot name a file */
    SHARING_EDIR = -2, /* the directory cannot be created (errno says why) */
    SHARING_ENOMEM = -3,
    SHARING_EWRITE = -4, /* the record cannot be written or renamed (errno says why) */
};
const char *sharing_strerror(int code);

/* Writes <dir>/<app_id>.json atomically (creating dir, mode 0700). Returns SHARING_OK or a
 * sharing_error. */
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
 * a cell is running while it holds no core. Writes the id and name of the one waiting
 * longest into who, and into *since (if not NULL) since when it has waited, in seconds
 * since the epoch, as its record says (its cell started then), or 0 when no record says
 * (an application of another client). Returns 1 or 0. dir may be NULL (records are then
 * not consulted). */
int sharing_contended(const struct master_status *ms, const char *my_app, const char *dir,
                      char *who, size_t len, double *since);

/* The cores of a fair share for my_app: the cluster's cores divided among the applications
 * that hold cores or wait for them, mine included, rounded up (a spare core stays with a
 * holder rather than going idle), at least 1. */
int sharing_fair_cores(const struct master_status *ms, const char *my_app, const char *dir);

/* A sparkernel application younger than this without a record is a session starting (it
 * registers with the master, asking for its first executor, before its record is written):
 * its notebook does not wait for cores yet. */
#define SHARING_STARTING_MS 30000

/* Whether my_app, holding cores since my_holding (seconds since the epoch) and idle for at
 * least idle_after seconds or not (my_idle), is the sparkernel session that gives its cores
 * back next, so that one waiter makes one session give: a session whose notebook has been
 * idle that long goes before a busy one, then the one that has held cores longest (ties go
 * to the smaller application id). Takes part: each application holding cores in ms whose
 * record in dir is alive; applications of other clients do not take turns. A record that
 * does not say since when it holds counts as holding since now. */
int sharing_gives_next(const struct master_status *ms, const char *my_app, double my_holding,
                       int my_idle, const char *dir, double now, double idle_after);

/* One short phrase for the holder of app a: "this notebook", "sparkernel: <notebook or
 * kernel id>, idle 42 s" / ", running a cell", or "" for other applications. */
void sharing_holder(const struct master_app *a, const char *my_app, const char *dir, double now,
                    char *out, size_t len);

#endif
