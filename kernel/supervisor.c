/* supervisor: starts, restarts and failures of the executor (supervisor.h). */
#include "supervisor.h"

#include "log.h"
#include "utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

void supervisor_start(struct supervisor *sv)
{
    sv->stderr_tail[0] = '\0';
    sv->death_cause[0] = '\0';
    if (executor_start(sv->exec) != EXECUTOR_OK) {
        snprintf(sv->start_failure, sizeof sv->start_failure,
                 "the kernel could not create the executor process (out of processes or file "
                 "descriptors?)");
        log_error("%s", sv->start_failure);
    }
}

void supervisor_keep_tail(struct supervisor *sv, const char *text, size_t len)
{
    /* The tail starts on a character: a cut inside one fails the error's JSON. */
    const char *src = utf8_tail(text, len, sizeof sv->stderr_tail - 1);
    utf8_copy(sv->stderr_tail, sizeof sv->stderr_tail, src);
}

void supervisor_ready(struct supervisor *sv)
{
    sv->start_kills = 0;
}

void supervisor_end(struct supervisor *sv, const char *reason)
{
    snprintf(sv->death_cause, sizeof sv->death_cause, "%s", reason);
    executor_kill(sv->exec);
}

enum supervisor_next supervisor_exited(struct supervisor *sv, int status, int was_ready,
                                       const char *how)
{
    sv->sync_awaited = 0;
    if (!was_ready && WIFSIGNALED(status) && sv->start_kills++ < 2) {
        /* Killed while starting (by a user or a supervisor, not a failed import): start
         * another rather than blame the python path. */
        log_error("the Python executor %s while starting; starting another", how);
        supervisor_start(sv);
        return SUPERVISOR_RESTART;
    }
    if (!was_ready) {
        snprintf(sv->start_failure, sizeof sv->start_failure, "the executor %s%s%s", how,
                 sv->stderr_tail[0] ? ": " : "", sv->stderr_tail);
        utf8_trim(sv->start_failure);
        log_error("%s", sv->start_failure);
        return SUPERVISOR_START_FAILED;
    }
    log_error("the Python executor %s%s", how, sv->death_cause);
    return SUPERVISOR_DIED;
}

int supervisor_take_start_failure(struct supervisor *sv, char *buf, size_t len)
{
    if (sv->start_failure[0] == '\0')
        return 0;
    snprintf(buf, len, "%s", sv->start_failure);
    sv->start_failure[0] = '\0';
    return 1;
}

void supervisor_sync(struct supervisor *sv)
{
    if (sv->sync_awaited != 0)
        return; /* the sync already sent comes after this loss too */
    json_t *cmd = json_pack("{s:s, s:I}", "type", "sync", "seq", (json_int_t)++sv->sync_seq);
    if (executor_send(sv->exec, cmd) == EXECUTOR_OK)
        sv->sync_awaited = sv->sync_seq;
    json_decref(cmd);
}

int supervisor_synced(const struct supervisor *sv, long long seq)
{
    return sv->sync_awaited != 0 && seq == (long long)sv->sync_awaited;
}

void supervisor_sync_done(struct supervisor *sv)
{
    sv->sync_awaited = 0;
}
