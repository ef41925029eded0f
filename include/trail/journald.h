/*
 * trail's journald sink: every line also goes to the systemd journal, each
 * of its keys as a journal field (MESSAGE, PRIORITY, TRACE_ID, ...), for
 * hosts that run services under systemd and collect with Promtail's
 * journal scrape. Its own library: libtrail-journald, pkg-config
 * trail-journald, built when libsystemd is found.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_JOURNALD_H
#define TRAIL_JOURNALD_H

#include <trail.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Adds the journald sink for lines at min and above. Returns the sink id
 * (for trail_sink_remove()) or a negative code. The sink is a callback
 * sink: in async mode it runs on the writer thread.
 */
TRAIL_API int trail_journald_sink_add(trail_level min);

/* Entries the journal refused (sd_journal_sendv() failed), since start. */
TRAIL_API uint64_t trail_journald_errors(void);

/*
 * The journal field name for a line's key: uppercase, every byte outside
 * [A-Z0-9_] as '_', a leading digit or '_' prefixed with "F", at most 64
 * bytes. "message" is MESSAGE; writes a NUL-terminated name into out (at
 * least 65 bytes) and returns its length.
 */
TRAIL_API size_t trail_journald_field_name(const char *key, size_t len,
                                           char *out);

/* The journal PRIORITY of a level: fatal 2, error 3, warn 4, info 6,
 * debug and trace 7. */
TRAIL_API int trail_journald_priority(trail_level level);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_JOURNALD_H */
