/*
 * What the HTTP benchmark servers (bench/http_<server>.c) share: the
 * command line, the one handler, trail's set-up and the stop signal.
 *
 *   http_<server> --plain|--trail [--handler-line] [--sync] --port N
 *                 [--log PATH] [--threads N]
 *
 * --plain: the server and the handler alone, trail not initialised.
 * --trail: trail_init() with the async writer on (TRAIL_ASYNC=1, its
 * defaults) writing to PATH and the server's trail adapter hooked in: each
 * request costs what the adapter adds, its access line included. The
 * handler is the same code in every mode and logs nothing, so the
 * difference is the adapter's alone. --trail --handler-line: the handler
 * also logs one line per request, as a service's handler would (what that
 * line adds is the logger's cost, not the adapter's). --trail --sync: the
 * same with trail's default writer instead (one write(2) per line, from the
 * request's thread), to tell the writer's cost from the rest. Everything
 * else (the server's options, threads, the response) is the same in every
 * mode.
 *
 * The server listens on 127.0.0.1:N only, prints "ready" on stdout once it
 * accepts connections, and stops on SIGTERM or SIGINT (trail_shutdown()
 * flushes the log then). Header-only (static functions): each server is
 * one program.
 */
#ifndef TRAIL_BENCH_HTTP_BENCH_H
#define TRAIL_BENCH_HTTP_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trail.h>
#include <trail/http.h>

#define HB_ROUTE "/api/orders/42"
#define HB_BODY "{\"id\":42,\"status\":\"shipped\",\"items\":3,\"total\":59.9}"

typedef struct hb_args {
  int trail;       /* 1: --trail, 0: --plain */
  int port;        /* 127.0.0.1:port */
  const char *log; /* trail's output in --trail mode */
  int threads;     /* worker threads, where the server takes a number */
  int sync;        /* --sync: trail without the async writer */
  int line;        /* --handler-line: the handler logs a line per request */
} hb_args;

/* The reply of the one route, and a 404 for anything else. */
typedef struct hb_reply {
  int status;
  const char *body;
  size_t len;
} hb_reply;

static int hb_trail_on;     /* the mode, for the adapters' calls */
static int hb_handler_line; /* --trail --handler-line, for the handler */

static inline void hb_usage(const char *prog, int status) {
  fprintf(status ? stderr : stdout,
          "usage: %s --plain|--trail [--handler-line] [--sync] --port N\n"
          "          [--log PATH] [--threads N]\n"
          "  Serves GET " HB_ROUTE " on 127.0.0.1:N; --trail with trail's\n"
          "  adapter and the async writer into PATH (default /dev/null);\n"
          "  --handler-line: the handler also logs a line per request.\n",
          prog);
  exit(status);
}

static inline void hb_parse(hb_args *a, int argc, char **argv,
                            int default_threads) {
  memset(a, 0, sizeof *a);
  a->trail = -1;
  a->log = "/dev/null";
  a->threads = default_threads;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--plain") == 0 || strcmp(s, "--trail") == 0) {
      a->trail = s[2] == 't';
    } else if (strcmp(s, "--sync") == 0) {
      a->sync = 1;
    } else if (strcmp(s, "--handler-line") == 0) {
      a->line = 1;
    } else if (strcmp(s, "--port") == 0 && i + 1 < argc) {
      a->port = atoi(argv[++i]);
    } else if (strcmp(s, "--log") == 0 && i + 1 < argc) {
      a->log = argv[++i];
    } else if (strcmp(s, "--threads") == 0 && i + 1 < argc) {
      a->threads = atoi(argv[++i]);
    } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
      hb_usage(argv[0], 0);
    } else {
      fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], s);
      hb_usage(argv[0], 2);
    }
  }
  if (a->trail < 0 || a->port <= 0 || a->port > 65535 || a->threads < 1 ||
      a->threads > 256 || ((a->line || a->sync) && !a->trail))
    hb_usage(argv[0], 2);
  hb_trail_on = a->trail;
  hb_handler_line = a->line;
}

/* --trail: the async writer into a->log, as a production service would. */
static inline void hb_trail_init(const hb_args *a, const char *service) {
  if (!a->trail)
    return;
  if (!a->sync)
    setenv("TRAIL_ASYNC", "1", 1);
  setenv("TRAIL_OUTPUT", a->log, 1);
  int rc = trail_init(service);
  if (rc != 0) {
    fprintf(stderr, "%s: trail_init: %s\n", service, trail_strerror(rc));
    exit(1);
  }
}

static inline void hb_trail_shutdown(const hb_args *a) {
  if (a->trail)
    trail_shutdown();
}

/* The middleware configuration of --trail: trail's defaults. */
static inline void hb_http_config(trail_http_config *cfg) {
  trail_http_config_init(cfg);
}

/*
 * The handler, the same code in every mode: with --handler-line it logs one
 * line in the request's context (current on this thread, entered by the
 * adapter).
 */
static inline void hb_handle(const char *method, const char *path,
                             hb_reply *r) {
  if (method != NULL && strcmp(method, "GET") == 0 && path != NULL &&
      strcmp(path, HB_ROUTE) == 0) {
    r->status = 200;
    r->body = HB_BODY;
    r->len = sizeof HB_BODY - 1;
    if (hb_handler_line)
      trail_info(trail_logger_get("orders"), "order loaded",
                 TRAIL_INT("order_id", 42), TRAIL_INT("items", 3));
  } else {
    r->status = 404;
    r->body = "{\"error\":\"not found\"}";
    r->len = strlen(r->body);
  }
}

/* Blocks SIGTERM and SIGINT in this thread and those it starts after. */
static inline void hb_block_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  pthread_sigmask(SIG_BLOCK, set, NULL);
}

static inline void hb_ready(void) {
  fputs("ready\n", stdout);
  fflush(stdout);
}

/* Waits for SIGTERM or SIGINT (blocked by hb_block_signals()). */
static inline void hb_wait_stop(const sigset_t *set) {
  int sig;
  while (sigwait(set, &sig) != 0) {
  }
}

#endif /* TRAIL_BENCH_HTTP_BENCH_H */
