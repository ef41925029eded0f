/*
 * trail's program in the benchmark: "trail_bench MODE N PATH [THREADS]".
 *
 * trail_init("orders-api"), output PATH, logger "orders", one request context
 * per thread with the workload's fixed ids, entered once before the loop, and
 * per event the one trail_info() call of the workload; then trail_shutdown().
 *
 * MODE sync:  trail's default, one write(2) per line.
 * MODE async: sets TRAIL_ASYNC=1 before trail_init(), which is how the async
 *             writer is switched on. A library without the async writer
 *             ignores the variable and writes synchronously.
 */
#include <stdio.h>
#include <stdlib.h>
#include <trail.h>

#include "workload.h"

static trail_logger *logger;

static void must(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "trail_bench: %s: %s\n", what, trail_strerror(rc));
    exit(1);
  }
}

static void log_events(wl_thread *t) {
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  must(trail_ctx_set_request_id(&ctx, WL_REQUEST_ID), "request_id");
  must(trail_ctx_set_user_id(&ctx, WL_USER_ID), "user_id");
  must(trail_ctx_set_trace_id(&ctx, WL_TRACE_ID), "trace_id");
  must(trail_ctx_set_span_id(&ctx, WL_SPAN_ID), "span_id");
  trail_ctx *prev = trail_ctx_enter(&ctx);

  trail_logger *log = logger;
  for (uint64_t i = 0; i < t->count; i++) {
    trail_info(log, "request completed", TRAIL_STR("method", "GET"),
               TRAIL_STR("path", "/api/orders/42"), TRAIL_INT("status", 200),
               TRAIL_DOUBLE("duration_ms", 12.5 + (i % 100) / 100.0));
  }

  trail_ctx_leave(prev);
}

int main(int argc, char **argv) {
  wl_args a;
  wl_parse_args(argc, argv, "sync|async", &a);
  if (strcmp(a.mode, "async") == 0)
    setenv("TRAIL_ASYNC", "1", 1);
  else
    unsetenv("TRAIL_ASYNC");

  /* trail opens O_WRONLY|O_CREAT|O_APPEND; the workload wants O_TRUNC too. */
  wl_truncate(&a);
  must(trail_init(WL_SERVICE), "trail_init");
  trail_config_error err;
  if (trail_output_set(a.path, &err) != 0) {
    fprintf(stderr, "trail_bench: %s: %s\n", err.source, err.text);
    return 1;
  }
  logger = trail_logger_get(WL_LOGGER);
  if (logger == NULL) {
    fprintf(stderr, "trail_bench: trail_logger_get failed\n");
    return 1;
  }

  wl_run(&a, log_events, NULL);

  trail_shutdown();
  /* After the shutdown: an async writer's last writes are counted too. */
  trail_counters c;
  trail_counters_get(&c);
  if (c.write_errors != 0 || c.dropped != 0)
    fprintf(stderr,
            "trail_bench: %" PRIu64 " write errors, dropped %" PRIu64
            " of %" PRIu64 " events\n",
            c.write_errors, c.dropped, a.n);
  return c.write_errors != 0 ? 1 : 0;
}
