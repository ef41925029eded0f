/*
 * orders-evhttp: the orders service (examples/orders.h) on libevent's
 * evhttp, one thread, one event loop, with trail's evhttp adapter.
 *
 *   orders_evhttp --port 8080        (--port 0: the kernel picks a port;
 *                                     the "listening" line says which)
 *   orders_evhttp --help
 *
 * What evhttp changes for logging, and what this example shows:
 * - Many requests interleave on the loop's thread, so a request's context
 *   is entered only around the code that works for it: the adapter does it
 *   around on_request(), and on_timer() does it for the deferred reply.
 * - GET /api/orders/{id}?sleep_ms=N (N at most 10000) is answered N ms
 *   later from a timer instead of blocking the loop: the request outlives
 *   its callback, other requests run meanwhile, and the timer logs both
 *   ways, with the context passed explicitly and with it entered.
 * - The access line is written when evhttp has sent the reply, or with
 *   status 499 when the client left first; replies go through
 *   trail_evhttp_send_reply() so that the line has the body bytes.
 * - SIGINT or SIGTERM (an evsignal event on the loop): stop accepting,
 *   let the requests in flight finish (the deferred ones too: the
 *   handler's done hook says when the last one is written), then free
 *   everything, log "stopped", trail_shutdown() and exit 0.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <trail.h>
#include <trail/evhttp.h>

#include "orders.h"

#define MAX_SLEEP_MS 10000
#define MAX_HEADERS_SIZE (1024 * 1024)

static const char USAGE[] =
    "usage: orders_evhttp [--port N]\n"
    "\n"
    "The orders service (GET /api/orders/{id}, POST /api/orders,\n"
    "GET /healthz, GET /metrics) on libevent's evhttp, one thread, with\n"
    "trail's evhttp adapter; GET /api/orders/{id}?sleep_ms=N is answered\n"
    "N ms later (N at most 10000) without blocking the loop. It writes\n"
    "trail's JSON lines on stdout; SIGINT or SIGTERM stops it.\n"
    "\n"
    "  --port N     listen on 127.0.0.1, port N (default 8080; 0: the\n"
    "               kernel chooses, and the \"listening\" line says which)\n"
    "  -h, --help   print this help and exit\n";

struct server;

/* A reply the loop sends later. */
typedef struct deferred {
  struct server *srv;
  struct evhttp_request *req;
  struct event *timer;
  const char *method;
  char *path; /* without the query */
  long sleep_ms;
  struct deferred *prev, *next;
} deferred;

typedef struct server {
  struct event_base *base;
  struct evhttp *http;
  struct evhttp_bound_socket *bound;
  deferred *pending; /* replies still to send */
  int stopping;
} server;

static const char *method_of(struct evhttp_request *req) {
  switch (evhttp_request_get_command(req)) {
  case EVHTTP_REQ_GET:
    return "GET";
  case EVHTTP_REQ_POST:
    return "POST";
  case EVHTTP_REQ_HEAD:
    return "HEAD";
  case EVHTTP_REQ_PUT:
    return "PUT";
  case EVHTTP_REQ_DELETE:
    return "DELETE";
  case EVHTTP_REQ_OPTIONS:
    return "OPTIONS";
  case EVHTTP_REQ_PATCH:
    return "PATCH";
  default:
    return "OTHER";
  }
}

/* sleep_ms=N from a query string: 0 when absent or not a number. */
static long sleep_ms_of(const char *query) {
  for (const char *p = query; p != NULL && *p != '\0';) {
    if (strncmp(p, "sleep_ms=", 9) == 0) {
      char *end;
      long ms = strtol(p + 9, &end, 10);
      if (end == p + 9 || ms < 0)
        return 0;
      return ms > MAX_SLEEP_MS ? MAX_SLEEP_MS : ms;
    }
    p = strchr(p, '&');
    if (p != NULL)
      p++;
  }
  return 0;
}

static void send_orders_reply(struct evhttp_request *req,
                              const orders_reply *out) {
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    out->content_type);
  struct evbuffer *body = evbuffer_new();
  if (body == NULL) {
    trail_evhttp_send_reply(req, 503, NULL, NULL);
    return;
  }
  evbuffer_add(body, out->body, out->len);
  trail_evhttp_send_reply(req, out->status, NULL, body);
  evbuffer_free(body);
}

static void deferred_unlink(deferred *d) {
  server *srv = d->srv;
  if (d->prev != NULL)
    d->prev->next = d->next;
  else
    srv->pending = d->next;
  if (d->next != NULL)
    d->next->prev = d->prev;
}

static void deferred_free(deferred *d) {
  event_free(d->timer);
  free(d->path);
  free(d);
}

/*
 * A deferred reply is due. This runs from the event loop, outside any
 * request callback, so no context is current: the first line passes the
 * request's context explicitly; the handler then runs with it entered, and
 * the context is left before the reply is handed over.
 */
static void on_timer(evutil_socket_t fd, short what, void *arg) {
  deferred *d = arg;
  (void)fd;
  (void)what;
  trail_ctx_info(trail_http_ctx(trail_evhttp_request(d->req)),
                 trail_logger_get("orders"), "deferred reply due",
                 TRAIL_INT("sleep_ms", d->sleep_ms),
                 TRAIL_BOOL("client_gone", trail_evhttp_client_gone(d->req)));
  orders_reply out;
  memset(&out, 0, sizeof out);
  trail_ctx *prev = trail_evhttp_enter(d->req);
  orders_handle(d->method, d->path, NULL, 0, &out);
  trail_ctx_leave(prev);
  send_orders_reply(d->req, &out);
  deferred_unlink(d);
  deferred_free(d);
}

static int defer_reply(server *srv, struct evhttp_request *req,
                       const char *method, const char *path, long ms) {
  deferred *d = calloc(1, sizeof *d);
  if (d == NULL)
    return -1;
  d->srv = srv;
  d->req = req;
  d->method = method;
  d->sleep_ms = ms;
  d->path = strdup(path);
  d->timer = evtimer_new(srv->base, on_timer, d);
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  if (d->path == NULL || d->timer == NULL || evtimer_add(d->timer, &tv) != 0) {
    if (d->timer != NULL)
      event_free(d->timer);
    free(d->path);
    free(d);
    return -1;
  }
  d->next = srv->pending;
  if (srv->pending != NULL)
    srv->pending->prev = d;
  srv->pending = d;
  trail_info(trail_logger_get("orders"), "reply deferred",
             TRAIL_INT("sleep_ms", ms));
  return 0;
}

/*
 * Every request, through trail_evhttp_handle(): the request's context is
 * current here, so the routes log without passing ids around. The routes
 * get the path without its query: sleep_ms is this server's business.
 */
static void on_request(struct evhttp_request *req, void *arg) {
  server *srv = arg;
  const char *method = method_of(req);
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
  const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
  if (path == NULL || path[0] == '\0')
    path = "/";

  long ms = sleep_ms_of(query);
  if (ms > 0 && strcmp(method, "GET") == 0) {
    if (defer_reply(srv, req, method, path, ms) == 0)
      return;
    trail_evhttp_send_error(req, 503, NULL);
    return;
  }

  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t len = in != NULL ? evbuffer_get_length(in) : 0;
  const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : NULL;
  orders_reply out;
  memset(&out, 0, sizeof out);
  orders_handle(method, path, body, body != NULL ? len : 0, &out);
  send_orders_reply(req, &out);
}

/* The adapter is done with a request (its reply is written, or its client
 * left): when stopping, the last one lets the loop end. */
static void on_done(void *arg, int status) {
  server *srv = arg;
  (void)status;
  if (srv->stopping && trail_evhttp_pending() == 0)
    event_base_loopexit(srv->base, NULL);
}

/* SIGINT, SIGTERM: stop accepting; leave the loop once every request in
 * flight is answered (deferred ones included). A second signal leaves at
 * once. */
static void on_signal(evutil_socket_t sig, short what, void *arg) {
  server *srv = arg;
  (void)what;
  if (srv->stopping) {
    event_base_loopbreak(srv->base);
    return;
  }
  srv->stopping = 1;
  trail_info(NULL, "stopping",
             TRAIL_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
  if (srv->bound != NULL) {
    evhttp_del_accept_socket(srv->http, srv->bound);
    srv->bound = NULL;
  }
  if (trail_evhttp_pending() == 0)
    event_base_loopexit(srv->base, NULL);
}

static int bound_port(struct evhttp_bound_socket *bound) {
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  evutil_socket_t fd = evhttp_bound_socket_get_fd(bound);
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return -1;
  if (sa.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&sa)->sin_port);
  if (sa.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
  return -1;
}

int main(int argc, char **argv) {
  int port = orders_port("orders_evhttp", USAGE, argc, argv);
  trail_init("orders-evhttp");
  /* trail: libevent's diagnostics become warn lines of logger "http" */
  event_set_log_callback(trail_evhttp_log);
  /* A client that resets its connection must not kill the service. */
  signal(SIGPIPE, SIG_IGN);

  server srv;
  memset(&srv, 0, sizeof srv);
  srv.base = event_base_new();
  srv.http = srv.base != NULL ? evhttp_new(srv.base) : NULL;
  if (srv.http == NULL) {
    trail_error(NULL, "cannot create the event loop");
    trail_shutdown();
    return 1;
  }
  evhttp_set_max_headers_size(srv.http, MAX_HEADERS_SIZE);
  evhttp_set_max_body_size(srv.http, ORDERS_BODY_MAX);
  evhttp_set_timeout(srv.http, 30);
  evhttp_set_allowed_methods(
      srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                    EVHTTP_REQ_PATCH);

  /* The adapter: a handler that wraps on_request, as the general callback
   * so that every request, routed or not, gets its context. */
  static trail_http_config cfg;
  static trail_evhttp_handler handler;
  orders_http_config(&cfg);
  trail_evhttp_handler_init(&handler, &cfg, on_request, &srv);
  handler.done = on_done;
  evhttp_set_gencb(srv.http, trail_evhttp_handle, &handler);

  /* Freeing an evsignal event puts back the disposition it replaced: make
   * that "ignore", so that a signal arriving during the cleanup after the
   * loop (a second SIGTERM) cannot end the process before it exits 0. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  struct event *sigint = evsignal_new(srv.base, SIGINT, on_signal, &srv);
  struct event *sigterm = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
  if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
      evsignal_add(sigterm, NULL) != 0) {
    trail_error(NULL, "cannot watch signals");
    trail_shutdown();
    return 1;
  }

  srv.bound =
      evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", (ev_uint16_t)port);
  if (srv.bound == NULL) {
    trail_error(NULL, "cannot listen", TRAIL_INT("port", port),
                TRAIL_STR("error", strerror(errno)));
    trail_shutdown();
    return 1;
  }
  trail_info(NULL, "listening", TRAIL_INT("port", bound_port(srv.bound)),
             TRAIL_STR("address", "127.0.0.1"),
             TRAIL_STR("libevent", event_get_version()));

  event_base_dispatch(srv.base);

  /* Only a second signal leaves replies unsent: their connections close
   * with evhttp_free(), and the adapter logs each request with status 499. */
  while (srv.pending != NULL) {
    deferred *d = srv.pending;
    deferred_unlink(d);
    deferred_free(d);
  }
  evhttp_free(srv.http);
  event_free(sigint);
  event_free(sigterm);
  event_base_free(srv.base);
  trail_info(NULL, "stopped");
  trail_shutdown();
  return 0;
}
