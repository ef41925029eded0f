/*
 * The orders service on civetweb: the routes of orders.h served by a
 * civetweb worker pool, with trail's civetweb adapter giving every request
 * its context and its access line.
 *
 *   orders_civetweb [--port N]      (0: the kernel picks; see "listening")
 *   orders_civetweb --help
 *
 * The lines trail adds to a civetweb server are marked "trail:". The rest
 * is the server as it would be without trail. SIGINT or SIGTERM stops it:
 * the requests in flight finish (at most ORDERS_DRAIN_SECONDS,
 * examples/drain.h), civetweb stops, the program logs "stopped" and exits 0.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>
#include <trail.h>
#include <trail/civetweb.h> /* trail: the adapter */

#include "drain.h"
#include "orders.h"

static const char USAGE[] =
    "usage: orders_civetweb [--port N]\n"
    "\n"
    "The orders service (GET /api/orders/{id}, POST /api/orders,\n"
    "GET /healthz, GET /metrics) on civetweb, with trail's civetweb\n"
    "adapter. It writes trail's JSON lines on stdout; SIGINT or SIGTERM\n"
    "stops it.\n"
    "\n"
    "  --port N     listen on 127.0.0.1, port N (default 8080; 0: the\n"
    "               kernel chooses, and the \"listening\" line says which)\n"
    "  -h, --help   print this help and exit\n";

/*
 * Built with ThreadSanitizer: civetweb 1.15, as Debian builds it (without
 * REENTRANT_TIME), formats every response's Date header with gmtime(),
 * whose static result two workers may write at once. The race is
 * civetweb's, not this program's; this tells ThreadSanitizer so.
 */
#if defined(__SANITIZE_THREAD__)
#define ORDERS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ORDERS_TSAN 1
#endif
#endif
#ifdef ORDERS_TSAN
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) { return "race:gmtime\n"; }
#endif

/*
 * Reads the whole request body (Content-Length or chunked) into a new
 * buffer. Returns 0, or 413 when it is larger than ORDERS_BODY_MAX, or 400
 * when the client stopped sending before the end.
 */
static int read_body(struct mg_connection *conn, char **out, size_t *len) {
  const struct mg_request_info *ri = mg_get_request_info(conn);
  size_t cap = ri->content_length > 0 ? (size_t)ri->content_length : 4096;
  size_t n = 0;
  char *buf;

  *out = NULL;
  *len = 0;
  if (ri->content_length > (long long)ORDERS_BODY_MAX)
    return 413;
  buf = malloc(cap + 1);
  if (buf == NULL)
    return 503;
  for (;;) {
    if (n == cap) {
      char *bigger;
      if (cap >= ORDERS_BODY_MAX) {
        /* full: too large, unless the body ends here (a chunked body of
         * exactly ORDERS_BODY_MAX bytes) */
        char more;
        int r = mg_read(conn, &more, 1);
        if (r == 0)
          break;
        free(buf);
        return r < 0 ? 400 : 413;
      }
      cap = cap > ORDERS_BODY_MAX / 2 ? ORDERS_BODY_MAX : cap * 2;
      bigger = realloc(buf, cap + 1);
      if (bigger == NULL) {
        free(buf);
        return 503;
      }
      buf = bigger;
    }
    int r = mg_read(conn, buf + n, cap - n);
    if (r < 0) {
      free(buf);
      return 400;
    }
    if (r == 0)
      break;
    n += (size_t)r;
    if (ri->content_length >= 0 && n == (size_t)ri->content_length)
      break;
  }
  if (ri->content_length > 0 && n != (size_t)ri->content_length) {
    free(buf);
    return 400;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

/* Every route: orders.h does the work, this only moves bytes. */
static int serve(struct mg_connection *conn) {
  const struct mg_request_info *ri = mg_get_request_info(conn);
  char path[4096];
  char *body = NULL;
  size_t body_len = 0;
  orders_reply reply;

  /* civetweb splits the query off; orders.h wants it back. */
  snprintf(path, sizeof path, "%s%s%s", ri->local_uri ? ri->local_uri : "/",
           ri->query_string ? "?" : "",
           ri->query_string ? ri->query_string : "");
  memset(&reply, 0, sizeof reply);
  if (strcmp(ri->request_method, "POST") == 0) {
    int err = read_body(conn, &body, &body_len);
    if (err != 0) {
      if (err == 413) {
        orders_too_large(&reply);
      } else {
        trail_warn(trail_logger_get("orders"), "cannot read the body",
                   TRAIL_INT("status", err));
        orders_set(&reply, err, "{\"error\":\"cannot read the body\"}");
      }
      /* what is left of the body is not read: the connection cannot carry
       * another request */
      mg_disable_connection_keep_alive(conn);
      return trail_civetweb_send(conn, reply.status, reply.content_type,
                                 reply.body, reply.len); /* trail: send */
    }
  }
  orders_handle(ri->request_method, path, body, body_len, &reply);
  free(body);
  /* trail: sends X-Request-ID too, and counts the body for the access line */
  return trail_civetweb_send(conn, reply.status, reply.content_type, reply.body,
                             reply.len);
}

/* The handler, counted for the drain: mg_stop() writes nothing more of a
 * response, so the service waits for these before it calls it. */
static int on_request(struct mg_connection *conn, void *cbdata) {
  (void)cbdata;
  drain_enter();
  int rc = serve(conn);
  drain_leave();
  return rc;
}

int main(int argc, char **argv) {
  char ports[32];
  int stop_pipe[2];
  sigset_t stop_signals, old_mask;
  struct mg_callbacks callbacks;
  trail_http_config http_cfg;
  struct mg_context *ctx;
  struct mg_server_port bound[4];

  int port = orders_port("orders_civetweb", USAGE, argc, argv);
  trail_init("orders-civetweb");
  drain_init();
  snprintf(ports, sizeof ports, "127.0.0.1:%d", port);

  /* SIGINT and SIGTERM go to this thread only: they are blocked before
   * mg_start() creates civetweb's threads, which inherit the mask, and the
   * handler wakes the loop below through a pipe. */
  if (pipe(stop_pipe) != 0) {
    trail_errorf(NULL, "pipe: %s", strerror(errno));
    trail_shutdown();
    return 1;
  }
  orders_stop_fd = stop_pipe[1];
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  orders_install_signals();

  orders_http_config(&http_cfg);
  memset(&callbacks, 0, sizeof callbacks);
  trail_civetweb_callbacks(&callbacks, &http_cfg); /* trail: the hooks */

  /* One option and its value a line. */
  /* clang-format off */
  const char *options[] = {
      "listening_ports", ports,
      /* civetweb serves a connection on one worker thread: a client
       * with more connections than workers waits for one to free. */
      "num_threads", "128",
      "listen_backlog", "1024",
      "enable_keep_alive", "yes",
      "keep_alive_timeout_ms", "1000",
      /* civetweb writes a response in many small send()s: the status
       * line, each header line, the blank line, the body. With Nagle's
       * algorithm on, all but the first wait for the client's ACK, which
       * on a kept-alive connection comes delayed: about 40 ms for every
       * request after the first. Off, each goes out at once. See
       * docs/middleware-civetweb.md. */
      "tcp_nodelay", "1",
      /* Room for hostile headers (a 64 KiB X-Request-ID) to reach the
       * middleware, which replaces them; larger requests civetweb refuses
       * itself, and trail's http_error hook still answers with an id. */
      "max_request_size", "262144",
      "request_timeout_ms", "30000",
      NULL};
  /* clang-format on */
  mg_init_library(0);
  ctx = mg_start(&callbacks, NULL, options);
  if (ctx == NULL) {
    trail_error(NULL, "cannot start the server", TRAIL_STR("ports", ports));
    mg_exit_library();
    trail_shutdown();
    return 1;
  }
  /* "/" matches every path: orders.h answers them all, its 404 included */
  mg_set_request_handler(ctx, "/", on_request, NULL);

  port = 0;
  if (mg_get_server_ports(ctx, 4, bound) > 0)
    port = bound[0].port;
  trail_info(NULL, "listening", TRAIL_INT("port", port),
             TRAIL_STR("server", "civetweb"),
             TRAIL_STR("civetweb_version", mg_version()));

  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  while (!orders_stop) {
    char c;
    if (read(stop_pipe[0], &c, 1) < 0 && errno != EINTR)
      break;
  }

  /* civetweb cannot stop accepting without stopping: requests that come
   * during the drain are answered too. mg_stop() then writes nothing
   * more: a response it cuts off says 503 in its access line. */
  drain_wait();
  mg_stop(ctx);
  mg_exit_library();
  trail_info(NULL, "stopped");
  close(stop_pipe[0]);
  close(stop_pipe[1]);
  trail_shutdown();
  return 0;
}
