/*
 * The orders service (examples/orders.h) on libmicrohttpd, with trail's
 * adapter: every line a request logs carries its request_id and trace_id,
 * every response carries X-Request-ID, every request ends with one access
 * line.
 *
 *   orders_mhd [--port N] [--mode thread|poll]
 *   orders_mhd --help
 *
 * --mode thread (the default): MHD's thread per connection. --mode poll:
 * one internal thread (epoll where available) serving every connection, so
 * the calls of many requests interleave on it (and a handler that sleeps,
 * as ?sleep_ms= asks, holds up every connection meanwhile). --port 0: the
 * kernel picks the port, which the "listening" line says. It listens on
 * 127.0.0.1.
 *
 * On SIGINT or SIGTERM it stops accepting, lets the requests in flight
 * finish (at most ORDERS_DRAIN_SECONDS), stops MHD, logs "stopped" and exits 0.
 *
 * What trail adds to an MHD server is marked "trail:"; the rest is what the
 * server would be without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <trail.h>
#include <trail/mhd.h>

#include "drain.h"
#include "orders.h"

#define SLEEP_MAX_MS 10000 /* the most ?sleep_ms= may ask for */

static const char USAGE[] =
    "usage: orders_mhd [--port N] [--mode thread|poll]\n"
    "\n"
    "The orders service (GET /api/orders/{id}, POST /api/orders,\n"
    "GET /healthz, GET /metrics) on libmicrohttpd, with trail's adapter.\n"
    "It writes trail's JSON lines on stdout; SIGINT or SIGTERM stops it\n"
    "after the requests in flight (10 s at most).\n"
    "\n"
    "  --port N             listen on 127.0.0.1, port N (default 8080; 0:\n"
    "                       the kernel chooses, and the \"listening\" line\n"
    "                       says which)\n"
    "  --mode thread|poll   thread (the default): a thread per connection;\n"
    "                       poll: one thread serving every connection\n"
    "  -h, --help           print this help and exit\n";

/* What the handler keeps per request: the body, as MHD hands it over. */
typedef struct order_req {
  char *body;
  size_t len, cap;
  int too_large;
} order_req;

static int stopping; /* set once the service stops; read by the handler */

static int body_append(order_req *o, const char *data, size_t n) {
  if (o->too_large || n > ORDERS_BODY_MAX - o->len) {
    o->too_large = 1;
    return 0;
  }
  if (o->len + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 1024;
    while (cap < o->len + n + 1)
      cap *= 2;
    char *p = realloc(o->body, cap);
    if (p == NULL)
      return -1;
    o->body = p;
    o->cap = cap;
  }
  memcpy(o->body + o->len, data, n);
  o->len += n;
  o->body[o->len] = '\0';
  return 0;
}

/*
 * The path orders_handle() expects: MHD gives the path without its query
 * (the query's arguments are parsed apart), and the routes read sleep_ms
 * from it. Only a sane sleep_ms is passed on.
 */
static const char *route_path(struct MHD_Connection *conn, const char *url,
                              char *buf, size_t size) {
  const char *s =
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sleep_ms");
  if (s == NULL)
    return url;
  char *end;
  errno = 0;
  long ms = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || ms < 0 || ms > SLEEP_MAX_MS)
    return url;
  int n = snprintf(buf, size, "%s?sleep_ms=%ld", url, ms);
  return n > 0 && (size_t)n < size ? buf : url;
}

/*
 * The application's access handler, as MHD calls it: first with the
 * headers (*con_cls NULL), then once per piece of body, then once more to
 * answer. trail has entered the request's context around each call.
 */
static enum MHD_Result orders_access(void *cls, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     const char *version,
                                     const char *upload_data,
                                     size_t *upload_data_size, void **con_cls) {
  order_req *o = *con_cls;
  (void)cls;
  (void)version;
  if (o == NULL) {
    o = calloc(1, sizeof *o);
    if (o == NULL)
      return MHD_NO;
    *con_cls = o;
    drain_enter(); /* until its completion */
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (body_append(o, upload_data, *upload_data_size) != 0)
      return MHD_NO;
    *upload_data_size = 0;
    return MHD_YES;
  }

  orders_reply rep;
  if (o->too_large) {
    orders_too_large(&rep);
  } else {
    char path[4096];
    orders_handle(method, route_path(conn, url, path, sizeof path), o->body,
                  o->len, &rep);
  }
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(rep.len, rep.body, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep.content_type);
  if (__atomic_load_n(&stopping, __ATOMIC_RELAXED))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  /* trail: instead of MHD_queue_response(), so that the response carries
   * X-Request-ID and the access line knows the body's length. */
  enum MHD_Result ret =
      trail_mhd_queue_response(conn, (unsigned int)rep.status, resp, rep.len);
  MHD_destroy_response(resp);
  return ret;
}

/* The application's completion callback: frees what the handler kept. */
static void orders_completed(void *cls, struct MHD_Connection *conn,
                             void **con_cls,
                             enum MHD_RequestTerminationCode toe) {
  order_req *o = *con_cls;
  (void)cls;
  (void)conn;
  (void)toe;
  if (o == NULL)
    return;
  *con_cls = NULL;
  free(o->body);
  free(o);
  drain_leave();
}

/*
 * Connection events, at debug. They happen outside any request, so their
 * lines carry no request id: a line here with one would be a context left
 * current on MHD's thread (the tests check it in both modes).
 */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  (void)cls;
  (void)conn;
  (void)socket_context;
  trail_debug(trail_logger_get("mhd.conn"),
              code == MHD_CONNECTION_NOTIFY_STARTED ? "connection opened"
                                                    : "connection closed");
}

int main(int argc, char **argv) {
  int port = 8080;
  int threaded = 1;
  cli cl;
  cli_init(&cl, "orders_mhd", USAGE, argc, argv);
  while (cli_next(&cl)) {
    if (!cli_port(&cl, &port) && !cli_mode(&cl, &threaded))
      cli_unknown(&cl);
  }
  trail_init("orders-mhd");

  drain_init();

  /* SIGINT and SIGTERM: see orders_stop_pipe(). */
  int pfd[2];
  sigset_t old_mask;
  if (orders_stop_pipe(pfd, &old_mask) != 0) {
    trail_shutdown();
    return 1;
  }

  /* trail: the middleware configuration and the adapter's state. */
  trail_http_config cfg;
  orders_http_config(&cfg);
  static trail_mhd tm;
  trail_mhd_init(&tm, &cfg, orders_access, NULL);
  trail_mhd_set_completed(&tm, orders_completed, NULL);

  unsigned int flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (threaded)
    flags |= MHD_USE_THREAD_PER_CONNECTION;
  else if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
    flags |= MHD_USE_EPOLL;
  else
    flags |= MHD_USE_POLL;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  struct MHD_Daemon *d = MHD_start_daemon(
      flags, (uint16_t)port, NULL, NULL,
      /* trail: its handler in place of orders_access */
      trail_mhd_access_handler, &tm,
      /* trail: MHD's own messages as JSON lines (MHD wants this option
       * first, or it prints what comes before it on stderr) */
      MHD_OPTION_EXTERNAL_LOGGER, trail_mhd_error_log, NULL,
      /* trail: the request start and completion hooks */
      TRAIL_MHD_OPTIONS(&tm), MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      /* room for large request headers (MHD answers 431 beyond it) */
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  if (d == NULL) {
    trail_error(NULL, "cannot start libmicrohttpd", TRAIL_INT("port", port),
                TRAIL_STR("mode", threaded ? "thread" : "poll"));
    trail_shutdown();
    return 1;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  trail_info(NULL, "listening", TRAIL_INT("port", info ? info->port : port),
             TRAIL_STR("mode", threaded ? "thread" : "poll"),
             TRAIL_STR("server", "libmicrohttpd"),
             TRAIL_STR("server_version", MHD_get_version()));

  char c;
  while (read(pfd[0], &c, 1) < 0 && errno == EINTR) {
  }

  /* Stop accepting. The listening socket stays open until MHD has stopped
   * (one of its threads may still hold it), but shut down: connection
   * attempts are refused now rather than left waiting in the backlog. */
  __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
  MHD_socket lsock = MHD_quiesce_daemon(d);
  if (lsock != MHD_INVALID_SOCKET)
    shutdown(lsock, SHUT_RDWR);
  drain_wait();
  /* Closes the idle kept-alive connections; a request still in flight
   * ends with status 503 in its access line. */
  MHD_stop_daemon(d);
  if (lsock != MHD_INVALID_SOCKET)
    close(lsock);
  orders_stop_fd = -1; /* a late signal finds no descriptor to write to */
  close(pfd[0]);
  close(pfd[1]);
  trail_info(NULL, "stopped");
  trail_shutdown();
  return 0;
}
