/* message: header fields (UUID ids, ISO-8601 dates, protocol version) and the builders for
 * the messages the kernel sends. Message types and JSON keys live here and in dispatch.c. */
#ifndef SPARKERNEL_MESSAGE_H
#define SPARKERNEL_MESSAGE_H

#include <jansson.h>

#define MESSAGE_PROTOCOL_VERSION "5.5"
#define MESSAGE_UUID_LEN         36

/* Writes a random (version 4) UUID from the kernel's CSPRNG (getrandom), 36 chars and a NUL. */
void message_uuid(char out[MESSAGE_UUID_LEN + 1]);
/* Writes the current UTC time as ISO-8601 with microseconds and a Z, e.g.
 * 2026-11-25T12:00:00.123456Z. */
void message_now_iso(char *out, size_t len);
/* Returns a new header object; caller json_decref()s. */
json_t *message_header_new(const char *msg_type, const char *session);

/* Content builders: each returns a new reference; arguments are borrowed (the traceback
 * array too: message_error_content takes its own reference). */
json_t *message_status(const char *state);
json_t *message_stream(const char *name, const char *text, size_t len);
json_t *message_error_content(const char *ename, const char *evalue, json_t *traceback);

#endif
