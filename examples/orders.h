/*
 * The orders service's routes, shared by the example servers so that each
 * example shows only its server's glue. Header-only: each example is one
 * program.
 *
 *   GET  /api/orders/{id}   200 {"id":..,"state":"shipped"}; 404 for id 999;
 *                           503 for id 7 (a pretend database timeout,
 *                           whose debug "query" line is written before
 *                           its error, marked "buffered":true);
 *                           ?sleep_ms=N waits N ms first (for tests;
 *                           its debug line "sleeping" says it began)
 *   POST /api/orders        JSON body read by jansson: 201 {"id":1001};
 *                           400 on a body that is not a JSON object
 *   GET  /healthz           200 "ok" (its access line is skipped)
 *   GET  /metrics           200 trail's counters, Prometheus text format
 *                           (its access line is skipped too)
 *   anything else           404
 *
 * The handlers log through the "orders" and "db" loggers without passing
 * any id around: the middleware has entered the request's context.
 */
#ifndef TRAIL_EXAMPLE_ORDERS_H
#define TRAIL_EXAMPLE_ORDERS_H

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <trail.h>
#include <trail/http.h>

#include "cli.h"
#include "orders_config.h"

typedef struct orders_reply {
  int status;
  char body[4096];
  size_t len;
  const char *content_type;
} orders_reply;

static const char *const orders_skip_paths[] = {"/healthz", "/metrics", NULL};

/* The middleware configuration every example uses. */
static inline void orders_http_config(trail_http_config *cfg) {
  trail_http_config_init(cfg);
  cfg->user_id_header = "X-User-ID";
  cfg->skip_paths = orders_skip_paths;
  cfg->slow_ms = ORDERS_SLOW_MS;
  cfg->buffer_bytes = ORDERS_BUFFER_BYTES; /* debug lines of failed requests */
  cfg->buffer_level = TRAIL_LEVEL_DEBUG;
}

static inline void orders_set(orders_reply *r, int status, const char *body) {
  r->status = status;
  r->content_type = "application/json";
  r->len = (size_t)snprintf(r->body, sizeof r->body, "%s", body);
}

/* A request body over ORDERS_BODY_MAX bytes: 413, and a line that says so. */
static inline void orders_too_large(orders_reply *r) {
  trail_warn(trail_logger_get("orders"), "request body too large",
             TRAIL_UINT("limit", ORDERS_BODY_MAX));
  orders_set(r, 413, "{\"error\":\"body too large\"}");
}

/* Waits ms milliseconds, 0 to 10000 (anything else is clamped). */
static inline void orders_sleep_ms(long ms) {
  if (ms < 0)
    ms = 0;
  if (ms > 10000)
    ms = 10000;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/*
 * Handles one request. path may carry a query. body/body_len: the request
 * body (POST). Runs with the request's context entered.
 */
static inline void orders_handle(const char *method, const char *path,
                                 const char *body, size_t body_len,
                                 orders_reply *out) {
  trail_logger *log = trail_logger_get("orders");
  trail_logger *db = trail_logger_get("db");
  const char *q = strchr(path, '?');
  size_t plen = q ? (size_t)(q - path) : strlen(path);
  long id = 0;
  char tail = 0;

  if (strcmp(method, "GET") == 0 && plen == 8 &&
      strncmp(path, "/metrics", 8) == 0) {
    size_t n = trail_metrics_render(out->body, sizeof out->body);
    out->status = 200;
    out->content_type = "text/plain; version=0.0.4";
    out->len = n < sizeof out->body ? n : sizeof out->body - 1;
    return;
  }
  if (strcmp(method, "GET") == 0 && plen == 8 &&
      strncmp(path, "/healthz", 8) == 0) {
    out->status = 200;
    out->content_type = "text/plain";
    out->len = (size_t)snprintf(out->body, sizeof out->body, "ok\n");
    return;
  }
  if (strcmp(method, "GET") == 0 && plen > 12 &&
      strncmp(path, "/api/orders/", 12) == 0 &&
      sscanf(path + 12, "%ld%c", &id, &tail) >= 1 &&
      (tail == 0 || tail == '?')) {
    const char *s = q ? strstr(q, "sleep_ms=") : NULL;
    if (s != NULL) {
      long ms = strtol(s + 9, NULL, 10);
      /* at debug: a test sees the request in its handler */
      trail_debug(log, "sleeping", TRAIL_INT("ms", ms));
      orders_sleep_ms(ms);
    }
    trail_debug(db, "query", TRAIL_STR("table", "orders"), TRAIL_INT("id", id));
    if (id == 7) {
      trail_error(db, "query timed out", TRAIL_INT("timeout_ms", 250));
      orders_set(out, 503, "{\"error\":\"database timeout\"}");
      return;
    }
    if (id == 999) {
      trail_warn(log, "order not found", TRAIL_INT("order_id", id));
      orders_set(out, 404, "{\"error\":\"not found\"}");
      return;
    }
    trail_info(log, "order loaded", TRAIL_INT("order_id", id),
               TRAIL_STR("state", "shipped"));
    out->status = 200;
    out->content_type = "application/json";
    out->len = (size_t)snprintf(out->body, sizeof out->body,
                                "{\"id\":%ld,\"state\":\"shipped\"}", id);
    return;
  }
  if (strcmp(method, "POST") == 0 && plen == 11 &&
      strncmp(path, "/api/orders", 11) == 0) {
    json_error_t err;
    json_t *doc = json_loadb(body ? body : "", body_len, 0, &err);
    if (doc == NULL || !json_is_object(doc)) {
      trail_warn(log, "invalid order body", TRAIL_STR("error", err.text));
      json_decref(doc);
      orders_set(out, 400, "{\"error\":\"body must be a JSON object\"}");
      return;
    }
    trail_info(log, "order created", TRAIL_INT("order_id", 1001),
               TRAIL_JSON("order", doc));
    json_decref(doc);
    orders_set(out, 201, "{\"id\":1001}");
    return;
  }
  trail_info(log, "no such route", TRAIL_STR("method", method));
  orders_set(out, 404, "{\"error\":\"no such route\"}");
}

/*
 * The command line of a server that takes --port N only (cli.h): the
 * port, 8080 by default (0: the kernel chooses; the "listening" line says
 * which). --help prints usage and exits 0; anything else exits 2.
 */
static inline int orders_port(const char *prog, const char *usage, int argc,
                              char **argv) {
  int port = 8080;
  cli cl;
  cli_init(&cl, prog, usage, argc, argv);
  while (cli_next(&cl))
    if (!cli_port(&cl, &port))
      cli_unknown(&cl);
  return port;
}

/*
 * SIGINT and SIGTERM set a flag that the example's loop checks (or, for an
 * event loop, a self-pipe the loop watches). stop_fd: -1 if unused.
 */
static volatile sig_atomic_t orders_stop;
static int orders_stop_fd = -1;

static inline void orders_on_signal(int sig) {
  (void)sig;
  orders_stop = 1;
  if (orders_stop_fd >= 0) {
    char c = 1;
    ssize_t r = write(orders_stop_fd, &c, 1);
    (void)r;
  }
}

static inline void orders_install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = orders_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/*
 * SIGINT and SIGTERM write a byte to pfd[1], which the main thread reads
 * from pfd[0]. They are blocked here, before the server starts its threads
 * (which inherit the mask), so that the handler always runs on the main
 * thread; *old_mask is the mask to restore there once the threads run.
 * Returns 0, or -1 (logged) when no pipe could be made.
 */
static inline int orders_stop_pipe(int pfd[2], sigset_t *old_mask) {
  if (pipe(pfd) != 0) {
    trail_errorf(NULL, "pipe: %s", strerror(errno));
    return -1;
  }
  fcntl(pfd[1], F_SETFL, O_NONBLOCK);
  orders_stop_fd = pfd[1];
  orders_install_signals();
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, old_mask);
  return 0;
}

#endif /* TRAIL_EXAMPLE_ORDERS_H */
