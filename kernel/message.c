/* message: headers and content builders. */
#include "message.h"

#include <sys/random.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void message_uuid(char out[MESSAGE_UUID_LEN + 1])
{
    unsigned char b[16];
    /* The kernel's CSPRNG directly (what /proc/sys/kernel/random/uuid uses): OpenSSL's
     * RAND_bytes would start a userspace DRBG that costs 2 MB of resident memory. */
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        static unsigned long long counter; /* only before the pool is seeded at boot */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long v[2] = {(unsigned long long)ts.tv_nsec ^ ++counter,
                                   (unsigned long long)ts.tv_sec};
        memcpy(b, v, sizeof b);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, MESSAGE_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

void message_now_iso(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

json_t *message_header_new(const char *msg_type, const char *session)
{
    char id[MESSAGE_UUID_LEN + 1], date[48];
    message_uuid(id);
    message_now_iso(date, sizeof date);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "msg_id", id, "session", session, "username",
                     "sparkernel", "date", date, "msg_type", msg_type, "version",
                     MESSAGE_PROTOCOL_VERSION);
}

json_t *message_status(const char *state)
{
    return json_pack("{s:s}", "execution_state", state);
}

json_t *message_stream(const char *name, const char *text, size_t len)
{
    return json_pack("{s:s, s:s%}", "name", name, "text", text, len);
}

json_t *message_error_content(const char *ename, const char *evalue, json_t *traceback)
{
    json_t *tb = traceback ? json_incref(traceback) : json_array();
    return json_pack("{s:s, s:s, s:o}", "ename", ename, "evalue", evalue, "traceback", tb);
}
