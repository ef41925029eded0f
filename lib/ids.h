/*
 * Id helpers shared by the id generators and the request context.
 *
 * Internal to trail (names trail__*, hidden from the shared library's
 * exports). Everything here is allocation-free, thread-safe and
 * async-signal-safe.
 */
#ifndef TRAIL_IDS_H
#define TRAIL_IDS_H

#include <stddef.h>

/*
 * 1 when the len bytes at s are exactly want lowercase hex digits and not all
 * of them '0' (the W3C trace-id and parent-id rule), else 0. s is read only
 * when len == want; NULL s gives 0.
 */
int trail__hex_id_valid(const char *s, size_t len, size_t want);
int trail__ids_new(char *request_id, char *trace_id, char *span_id);

#endif /* TRAIL_IDS_H */
