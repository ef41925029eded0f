/*
 * The orders service (examples/orders.h) on ulfius, with trail's adapter:
 * every line a request logs carries its request_id and trace_id, every
 * response carries X-Request-ID, every request ends with one access line.
 *
 *   orders_ulfius [--port N] [--mode thread|poll]
 *   orders_ulfius --help
 *
 * --mode thread (the default, ulfius's own): a thread per connection.
 * --mode poll: one internal thread serving every connection, so the
 * callbacks of many requests take turns on it. --port 0: the kernel picks
 * the port, which the "listening" line says. It listens on 127.0.0.1.
 *
 * On SIGINT or SIGTERM it stops accepting, lets the requests in flight
 * finish (at most ORDERS_DRAIN_SECONDS), stops ulfius, logs "stopped" and exits
 * 0.
 *
 * What trail adds to an ulfius service is marked "trail:"; the rest is
 * what the service would be without it.
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
#include <unistd.h>

#include <trail.h>
#include <trail/ulfius.h> /* trail: the adapter */
#include <ulfius.h>

#include "orders.h"

static int stopping; /* set once the service stops; read by the callback */

static const char USAGE[] =
    "usage: orders_ulfius [--port N] [--mode thread|poll]\n"
    "\n"
    "The orders service (GET /api/orders/{id}, POST /api/orders,\n"
    "GET /healthz, GET /metrics) on ulfius, with trail's adapter.\n"
    "It writes trail's JSON lines on stdout; SIGINT or SIGTERM stops it\n"
    "after the requests in flight (10 s at most).\n"
    "\n"
    "  --port N             listen on 127.0.0.1, port N (default 8080; 0:\n"
    "                       the kernel chooses, and the \"listening\" line\n"
    "                       says which)\n"
    "  --mode thread|poll   thread (the default): a thread per connection;\n"
    "                       poll: one thread serving every connection\n"
    "  -h, --help           print this help and exit\n";

/*
 * Every route: ulfius matched the endpoint, orders_handle() does the rest
 * (the routes' table is shared by the examples). The target as sent, with
 * its query (orders_handle() reads sleep_ms from it). trail has entered
 * the request's context around this call.
 */
static int orders_cb(const struct _u_request *req, struct _u_response *resp,
                     void *data) {
  orders_reply rep;
  (void)data;
  /* ulfius keeps max_post_body_size bytes and drops the rest silently:
   * a body kept whole at ORDERS_BODY_MAX + 1 bytes is too large */
  if (req->binary_body_length > ORDERS_BODY_MAX)
    orders_too_large(&rep);
  else
    orders_handle(req->http_verb, req->http_url ? req->http_url : "",
                  req->binary_body, req->binary_body_length, &rep);
  ulfius_set_binary_body_response(resp, (unsigned int)rep.status, rep.body,
                                  rep.len);
  u_map_put(resp->map_header, "Content-Type", rep.content_type);
  if (__atomic_load_n(&stopping, __ATOMIC_RELAXED))
    u_map_put(resp->map_header, "Connection", "close");
  return U_CALLBACK_COMPLETE;
}

/*
 * Connection events, at debug. They happen outside any request, so their
 * lines carry no request id: a line here with one would be a context left
 * current on MHD's thread.
 */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  (void)cls;
  (void)conn;
  (void)socket_context;
  trail_debug(trail_logger_get("ulfius.conn"),
              code == MHD_CONNECTION_NOTIFY_STARTED ? "connection opened"
                                                    : "connection closed");
}

int main(int argc, char **argv) {
  int port = 8080;
  int threaded = 1;
  cli cl;
  cli_init(&cl, "orders_ulfius", USAGE, argc, argv);
  while (cli_next(&cl)) {
    if (!cli_port(&cl, &port) && !cli_mode(&cl, &threaded))
      cli_unknown(&cl);
  }
  trail_init("orders-ulfius");

  /* SIGINT and SIGTERM: see orders_stop_pipe(). */
  int pfd[2];
  sigset_t old_mask;
  if (orders_stop_pipe(pfd, &old_mask) != 0) {
    trail_shutdown();
    return 1;
  }

  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct _u_instance inst;
  /* ulfius_init_instance() refuses port 0, which MHD takes for "the
   * kernel picks" (and then says which): it is set after. */
  if (ulfius_init_instance(&inst, port ? (unsigned int)port : 8080, &addr,
                           NULL) != U_OK) {
    trail_error(NULL, "cannot set up ulfius");
    trail_shutdown();
    return 1;
  }
  inst.port = (unsigned int)port;
  inst.max_post_body_size = ORDERS_BODY_MAX + 1; /* see orders_cb() */
  inst.timeout = 60;

  ulfius_add_endpoint_by_val(&inst, "GET", "/api/orders", "/:id", 0, orders_cb,
                             NULL);
  ulfius_add_endpoint_by_val(&inst, "POST", "/api/orders", NULL, 0, orders_cb,
                             NULL);
  ulfius_add_endpoint_by_val(&inst, "GET", "/healthz", NULL, 0, orders_cb,
                             NULL);
  ulfius_add_endpoint_by_val(&inst, "GET", "/metrics", NULL, 0, orders_cb,
                             NULL);
  /* Anything else: orders_handle()'s 404, logged by the handler. */
  ulfius_set_default_endpoint(&inst, orders_cb, NULL);

  /* trail: the middleware configuration and the adapter's state. */
  trail_http_config cfg;
  orders_http_config(&cfg);
  static trail_ulfius tu;
  trail_ulfius_init(&tu, &inst, &cfg);

  unsigned int flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (threaded)
    flags |= MHD_USE_THREAD_PER_CONNECTION;
  else if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
    flags |= MHD_USE_EPOLL;
  else
    flags |= MHD_USE_POLL;
  const struct MHD_OptionItem options[] = {
      /* room for large request headers (MHD answers 431 beyond it) */
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)256 * 1024, NULL},
      {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, NULL},
      {MHD_OPTION_END, 0, NULL}};
  /* trail: in place of ulfius_start_framework_with_mhd_options() */
  int rc = trail_ulfius_start(&tu, flags, options);
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  if (rc != U_OK) {
    trail_error(NULL, "cannot start ulfius", TRAIL_INT("port", port),
                TRAIL_INT("ulfius_error", rc));
    trail_ulfius_clean(&tu);
    ulfius_clean_instance(&inst);
    trail_shutdown();
    return 1;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(inst.mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
  trail_info(NULL, "listening", TRAIL_INT("port", info ? info->port : port),
             TRAIL_STR("mode", threaded ? "thread" : "poll"),
             TRAIL_STR("server", "ulfius"),
             TRAIL_STR("server_version", ULFIUS_VERSION_STR));

  char c;
  while (read(pfd[0], &c, 1) < 0 && errno == EINTR) {
  }

  /* Stop accepting. The listening socket stays open until MHD has stopped
   * (one of its threads may still hold it), but shut down: connection
   * attempts are refused now rather than left waiting in the backlog. */
  __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
  MHD_socket lsock = MHD_quiesce_daemon(inst.mhd_daemon);
  if (lsock != MHD_INVALID_SOCKET)
    shutdown(lsock, SHUT_RDWR);
  /* trail: the adapter counts the requests in flight, which ulfius does
   * not tell its callbacks */
  trail_info(NULL, "stopping",
             TRAIL_INT("in_flight", trail_ulfius_in_flight(&tu)));
  int left = trail_ulfius_wait_idle(&tu, ORDERS_DRAIN_SECONDS * 1000);
  if (left > 0)
    trail_warn(NULL, "requests still in flight at the drain deadline",
               TRAIL_INT("in_flight", left),
               TRAIL_INT("deadline_s", ORDERS_DRAIN_SECONDS));
  /* Closes the idle kept-alive connections; a request still in flight
   * ends with status 503 in its access line. */
  ulfius_stop_framework(&inst);
  if (lsock != MHD_INVALID_SOCKET)
    close(lsock);
  /* trail: after the daemon, before the instance */
  trail_ulfius_clean(&tu);
  ulfius_clean_instance(&inst);
  orders_stop_fd = -1; /* a late signal finds no descriptor to write to */
  close(pfd[0]);
  close(pfd[1]);
  trail_info(NULL, "stopped");
  trail_shutdown();
  return 0;
}
