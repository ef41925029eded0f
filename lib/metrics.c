/*
 * The counters in the Prometheus text exposition format (version 0.0.4),
 * for a service's /metrics endpoint.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct out {
  char *buf;
  size_t size;
  size_t len; /* bytes the whole text needs */
} out;

static void put(out *o, const char *fmt, ...) TRAIL__PRINTF(2, 3);
static void put(out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->size ? o->size - o->len : 0;
  int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    o->len += (size_t)n;
}

static void counter(out *o, const char *name, const char *help,
                    const char *service, uint64_t v) {
  put(o, "# HELP %s %s\n# TYPE %s counter\n%s{service=\"%s\"} %" PRIu64 "\n",
      name, help, name, name, service, v);
}

/*
 * Renders every counter into buf (size bytes, NUL-terminated when size > 0)
 * and returns the length the whole text needs, as snprintf does: call again
 * with a larger buffer when the result is >= size. Service names need no
 * escaping in a label value (they hold no quote, backslash or newline).
 */
TRAIL_API size_t trail_metrics_render(char *buf, size_t size) {
  trail_counters c;
  trail_counters_get(&c);
  const char *service = trail_service();
  out o = {.buf = buf, .size = size, .len = 0};
  if (size > 0)
    buf[0] = '\0';
  put(&o, "# HELP trail_log_lines_total Log lines written, by level.\n"
          "# TYPE trail_log_lines_total counter\n");
  for (int l = 0; l < TRAIL_LEVEL_COUNT; l++)
    put(&o, "trail_log_lines_total{service=\"%s\",level=\"%s\"} %" PRIu64 "\n",
        service, trail_level_name((trail_level)l), c.events[l]);
  counter(&o, "trail_log_bytes_total", "Bytes of log lines written.", service,
          c.bytes);
  counter(&o, "trail_log_write_errors_total",
          "Lines a sink failed to write, one per line and sink.", service,
          c.write_errors);
  counter(&o, "trail_log_truncated_total",
          "Lines cut to the maximum line length.", service, c.truncated);
  counter(&o, "trail_log_dropped_total",
          "Events lost before any sink (async queue full with the drop "
          "policy).",
          service, c.dropped);
  counter(&o, "trail_log_suppressed_total",
          "Events held back by sampling (reported in lines of their own).",
          service, c.suppressed);
  counter(&o, "trail_log_buffered_total",
          "Lines below their logger's level kept in their request's buffer.",
          service, c.buffered);
  counter(&o, "trail_log_buffer_flushed_total",
          "Buffered lines written because their request failed.", service,
          c.buffer_flushed);
  counter(&o, "trail_log_buffer_discarded_total",
          "Buffered lines dropped: request succeeded, buffer full, or no "
          "room in the pool.",
          service, c.buffer_discarded);
  put(&o,
      "# HELP trail_log_queue_high_water_bytes Most bytes the async queue "
      "held at once.\n"
      "# TYPE trail_log_queue_high_water_bytes gauge\n"
      "trail_log_queue_high_water_bytes{service=\"%s\"} %" PRIu64 "\n",
      service, c.queue_high_water);
  return o.len;
}
