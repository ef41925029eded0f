/*
 * The libmicrohttpd adapter end to end: examples/orders_mhd runs on a
 * loopback port the kernel picks, in thread-per-connection mode and in
 * internal-polling mode (one thread interleaving every request), and gets
 * real HTTP requests, from libcurl and, where exact bytes matter (CR, NUL,
 * obs-fold, Expect: 100-continue, a client that resets), from a plain
 * socket.
 *
 * The rules every server follows (request id, traceparent, user, the
 * access line's fields, HEAD, skipped paths, absolute-form targets,
 * keep-alive) are tested for this example, in both modes, by the table of
 * tests/test_http_conformance.c. The scenarios beyond the table (a GET and
 * the service's own lines, CR or LF inside a header, many repeated
 * headers, large bodies, concurrency, interleaving, hostile bytes, a
 * client that leaves, draining, SIGINT) are those of tests/
 * http_scenarios.h, which ulfius, built on libmicrohttpd, runs too: the
 * table at the end of this file says which run in which mode.
 *
 * The parts of the API the example does not use (the application's own
 * start and completion callbacks, trail_mhd_queue_buffer, trail_mhd_request,
 * a missing TRAIL_MHD_OPTIONS, trail_mhd_error_log) are tested with a
 * daemon in this process, when the build links the adapter in
 * (TRAIL_TEST_MHD_INPROC, set by tests/CMakeLists.txt).
 */
#include "http_scenarios.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifdef TRAIL_TEST_MHD_INPROC
#include <trail/mhd.h>

#include "../adapters/mhd/mhd_common.h"
#endif

/* ---- the shared scenarios, in both modes --------------------------------- */

static const http_server ORDERS_MHD = {
    .example = "orders_mhd",
    .service = "orders-mhd",
    .conn_logger = "mhd.conn", /* its connection hooks log at debug */
};

static http_case in_thread = {&ORDERS_MHD, HTTP_MODE_THREAD};
static http_case in_poll = {&ORDERS_MHD, HTTP_MODE_POLL};

/* ---- the API in this process --------------------------------------------- */

#ifdef TRAIL_TEST_MHD_INPROC
/*
 * What the application's callbacks saw on MHD's thread, counted there and
 * checked here once MHD_stop_daemon() has joined it (no assertion runs on
 * MHD's thread).
 */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int uri_logs, calls, first_with_marker, ctx_ok, ctx_bad, not_found_ok;
  int completions, completed_with_slot, completed_ctx_ok;
} seen;

static char uri_marker, own_marker; /* the application's con_cls values */
static struct MHD_Response *shared_response;

static void *app_uri_log(void *cls, const char *uri,
                         struct MHD_Connection *conn) {
  (void)cls;
  (void)uri;
  (void)conn;
  pthread_mutex_lock(&seen_lock);
  seen.uri_logs++;
  pthread_mutex_unlock(&seen_lock);
  return &uri_marker;
}

static enum MHD_Result app_handler(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)method;
  (void)version;
  (void)upload;
  trail_http_request *req = trail_mhd_request(conn);
  pthread_mutex_lock(&seen_lock);
  seen.calls++;
  if (req != NULL && trail_ctx_current() == trail_http_ctx(req))
    seen.ctx_ok++;
  else
    seen.ctx_bad++;
  if (trail_mhd_request(NULL) == NULL)
    seen.not_found_ok++;
  if (*con_cls == &uri_marker)
    seen.first_with_marker++;
  pthread_mutex_unlock(&seen_lock);
  if (*con_cls == &uri_marker) { /* the application's first call */
    *con_cls = &own_marker;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(url, "/buffer") == 0) {
    trail_http_set_user(req, "user-set");
    trail_info(NULL, "in handler");
    return trail_mhd_queue_buffer(conn, 200, "hello", 5, "text/plain");
  }
  if (strcmp(url, "/shared") == 0)
    return trail_mhd_queue_response(conn, 200, shared_response, 6);
  if (strcmp(url, "/plain") == 0) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(5, "plain", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, 202, r);
    MHD_destroy_response(r);
    return ret;
  }
  if (strcmp(url, "/nocontent") == 0)
    return trail_mhd_queue_buffer(conn, 204, "ignored", 7, NULL);
  return MHD_NO; /* "/refuse" */
}

static void app_completed(void *cls, struct MHD_Connection *conn,
                          void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)toe;
  trail_http_request *req = trail_mhd_request(conn);
  pthread_mutex_lock(&seen_lock);
  seen.completions++;
  if (con_cls != NULL && *con_cls == &own_marker)
    seen.completed_with_slot++;
  if (req != NULL && trail_ctx_current() == trail_http_ctx(req))
    seen.completed_ctx_ok++;
  pthread_mutex_unlock(&seen_lock);
  trail_info(NULL, "app completed");
}

static int inproc_setup(void **state) {
  (void)state;
  trail_init("mhd-inproc");
  cap_start(TRAIL_LEVEL_DEBUG);
  pthread_mutex_lock(&seen_lock);
  memset(&seen, 0, sizeof seen);
  pthread_mutex_unlock(&seen_lock);
  return 0;
}

static int inproc_teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

/* A one-thread daemon on a loopback port the kernel picks. */
static struct MHD_Daemon *inproc_start(trail_mhd *tm, int with_options,
                                       int *port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  struct MHD_Daemon *d =
      with_options
          ? MHD_start_daemon(flags, 0, NULL, NULL, trail_mhd_access_handler, tm,
                             MHD_OPTION_EXTERNAL_LOGGER, trail_mhd_error_log,
                             NULL, TRAIL_MHD_OPTIONS(tm), MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&a, MHD_OPTION_END)
          : MHD_start_daemon(flags, 0, NULL, NULL, trail_mhd_access_handler, tm,
                             MHD_OPTION_EXTERNAL_LOGGER, trail_mhd_error_log,
                             NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
                             MHD_OPTION_END);
  assert_non_null(d);
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  assert_non_null(info);
  *port = info->port;
  return d;
}

/*
 * The application's own start and completion callbacks, chained; its
 * con_cls slot; the request's context in each call and in the completion;
 * trail_mhd_queue_buffer(); the user set in the handler; a response that
 * brings its own X-Request-ID (replaced: the echo rule sends trail's, once);
 * a response queued without the adapter;
 * a 204; a handler that refuses.
 */
static void test_inproc_api(void **state) {
  (void)state;
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  trail_mhd tm;
  trail_mhd_init(&tm, &cfg, app_handler, NULL);
  trail_mhd_set_completed(&tm, app_completed, NULL);
  trail_mhd_set_uri_log(&tm, app_uri_log, NULL);
  shared_response =
      MHD_create_response_from_buffer(6, "shared", MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(shared_response, "X-Request-ID", "shared-id");
  int port;
  struct MHD_Daemon *d = inproc_start(&tm, 1, &port);

  const char *h_buf[] = {"X-Request-ID: ip-buffer", NULL};
  http_response r_buf;
  http_get(port, "/buffer", h_buf, &r_buf);
  assert_int_equal(r_buf.status, 200);
  assert_string_equal(r_buf.body, "hello");
  assert_string_equal(r_buf.request_id, "ip-buffer");
  http_response r_post;
  const char *h_post[] = {"X-Request-ID: ip-post", NULL};
  http_request(port, "POST", "/buffer", h_post, "{\"a\":1}", &r_post);
  assert_int_equal(r_post.status, 200);
  const char *h_sh[] = {"X-Request-ID: ip-shared", NULL};
  http_response r_sh;
  http_get(port, "/shared", h_sh, &r_sh);
  assert_int_equal(r_sh.status, 200);
  assert_string_equal(r_sh.request_id, "ip-shared");
  /* the handler's header was replaced, not joined by a second one */
  assert_string_equal(MHD_get_response_header(shared_response, "X-Request-ID"),
                      "ip-shared");
  const char *h_pl[] = {"X-Request-ID: ip-plain", NULL};
  http_response r_pl;
  http_get(port, "/plain", h_pl, &r_pl);
  assert_int_equal(r_pl.status, 202);
  assert_string_equal(r_pl.request_id, ""); /* not through the adapter */
  const char *h_nc[] = {"X-Request-ID: ip-204", NULL};
  http_response r_nc;
  http_get(port, "/nocontent", h_nc, &r_nc);
  assert_int_equal(r_nc.status, 204);
  assert_string_equal(r_nc.request_id, "ip-204");
  const char *h_rf[] = {"X-Request-ID: ip-refuse", NULL};
  http_response r_rf;
  http_get(port, "/refuse", h_rf, &r_rf);
  assert_int_not_equal(r_rf.curl_error, 0); /* closed without an answer */
  MHD_stop_daemon(d);
  MHD_destroy_response(shared_response);

  /* Six requests, each seen by the application's start hook and, with the
   * value it returned, by its handler's first call; every call and every
   * completion ran with the request's context current. */
  assert_int_equal(seen.uri_logs, 6);
  assert_int_equal(seen.first_with_marker, 6);
  assert_int_equal(seen.ctx_bad, 0);
  assert_int_equal(seen.ctx_ok, seen.calls);
  assert_int_equal(seen.not_found_ok, seen.calls);
  assert_int_equal(seen.completions, 6);
  assert_int_equal(seen.completed_with_slot, 6);
  assert_int_equal(seen.completed_ctx_ok, 6);

  const struct {
    const char *rid;
    int status;
    int bytes;
  } want[] = {{"ip-buffer", 200, 5}, {"ip-post", 200, 5},
              {"ip-shared", 200, 6}, {"ip-plain", 202, 0},
              {"ip-204", 204, 0},    {"ip-refuse", 500, 0}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    json_t *acc = cap_find(want[i].rid, "request completed");
    if (acc == NULL)
      fail_msg("no access line for %s", want[i].rid);
    assert_int_equal(jint(acc, "status"), want[i].status);
    assert_int_equal(jint(acc, "bytes"), want[i].bytes);
    json_decref(acc);
    /* the application's completion line carries the request's ids */
    json_t *done = cap_find(want[i].rid, "app completed");
    assert_non_null(done);
    json_decref(done);
  }
  json_t *acc = cap_find("ip-buffer", "request completed");
  assert_str_field(acc, "user_id", "user-set");
  json_decref(acc);
  json_t *in = cap_find("ip-buffer", "in handler");
  assert_non_null(in);
  assert_str_field(in, "user_id", "user-set");
  json_decref(in);
}

/* Without TRAIL_MHD_OPTIONS: no request is served without ids, and one
 * line says what is missing. */
static void test_inproc_missing_options(void **state) {
  (void)state;
  trail_mhd tm;
  trail_mhd_init(&tm, NULL, app_handler, NULL);
  int port;
  struct MHD_Daemon *d = inproc_start(&tm, 0, &port);
  http_response r1, r2;
  http_get(port, "/buffer", NULL, &r1);
  http_get(port, "/buffer", NULL, &r2);
  assert_int_not_equal(r1.curl_error, 0);
  assert_int_not_equal(r2.curl_error, 0);
  MHD_stop_daemon(d);
  assert_int_equal(seen.calls, 0);
  assert_int_equal(cap_count_message("libmicrohttpd request without trail "
                                     "state: pass TRAIL_MHD_OPTIONS(tm) to "
                                     "MHD_start_daemon"),
                   1);
}

/*
 * Replies that never go out, ordered with pipes between the test and
 * MHD's thread: the handler says it has reached its point (started), may
 * wait for the test (go), and the completion says how MHD ended the
 * request (done, the termination code as a byte).
 */
static int gone_started[2], gone_go[2], gone_done[2];

/* The handlers' first call, headers only: 1 after it took the slot. */
static int first_call(void **con_cls) {
  if (*con_cls != NULL)
    return 0;
  *con_cls = &own_marker;
  return 1;
}

static void gone_completed(void *cls, struct MHD_Connection *conn,
                           void **con_cls,
                           enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)con_cls;
  char c = (char)toe;
  (void)!write(gone_done[1], &c, 1);
}

/* A one-thread daemon with handler h and gone_completed, and a client that
 * has sent GET path with X-Request-ID rid; returns the client's socket. */
static int ordered_start(trail_mhd *tm, trail_http_config *cfg,
                         MHD_AccessHandlerCallback h, const char *path,
                         const char *rid, struct MHD_Daemon **d) {
  assert_int_equal(pipe(gone_started), 0);
  assert_int_equal(pipe(gone_go), 0);
  assert_int_equal(pipe(gone_done), 0);
  trail_http_config_init(cfg);
  trail_mhd_init(tm, cfg, h, NULL);
  trail_mhd_set_completed(tm, gone_completed, NULL);
  int port;
  *d = inproc_start(tm, 1, &port);
  int fd = raw_connect(port);
  char req[256];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: t\r\nX-Request-ID: %s\r\n\r\n", path, rid);
  assert_int_equal(raw_send(fd, req, strlen(req)), 0);
  return fd;
}

/* The termination code MHD gave, once it ended the request; the pipes
 * closed. */
static char ordered_end(void) {
  char c;
  assert_int_equal(read(gone_done[0], &c, 1), 1);
  for (int i = 0; i < 2; i++) {
    close(gone_started[i]);
    close(gone_go[i]);
    close(gone_done[i]);
  }
  return c;
}

/*
 * The client resets while the handler works, and the response the handler
 * then queues never goes out: the access line says 499, client_gone, and
 * no bytes, not the length that was queued. The handler waits until the
 * client has reset.
 */
static enum MHD_Result gone_handler(void *cls, struct MHD_Connection *conn,
                                    const char *url, const char *method,
                                    const char *version, const char *upload,
                                    size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)url;
  (void)method;
  (void)version;
  (void)upload;
  (void)upload_size;
  if (first_call(con_cls))
    return MHD_YES;
  char c = 's';
  if (write(gone_started[1], &c, 1) != 1 || read(gone_go[0], &c, 1) != 1)
    return MHD_NO;
  return trail_mhd_queue_buffer(conn, 200, "hello", 5, "text/plain");
}

static void test_inproc_reset_before_reply(void **state) {
  (void)state;
  trail_http_config cfg;
  trail_mhd tm;
  struct MHD_Daemon *d;
  int fd = ordered_start(&tm, &cfg, gone_handler, "/gone", "ip-gone", &d);
  char c;
  assert_int_equal(read(gone_started[0], &c, 1), 1);
  raw_abort(fd);
  assert_int_equal(write(gone_go[1], &c, 1), 1);
  char toe = ordered_end(); /* before the stop, which would end it too */
  MHD_stop_daemon(d);       /* the access line is written when this returns */
  assert_int_not_equal(toe, (char)MHD_REQUEST_TERMINATED_COMPLETED_OK);
  cap_expect_unsent("ip-gone", 499);
}

/*
 * The service stops while a queued response is still going out (16 MiB to
 * a client that reads none of it): MHD ends the request with
 * DAEMON_SHUTDOWN, and the access line says 503, the service stopped
 * first, with no bytes, not the 200 that was queued. The handler says it
 * has queued.
 */
enum { STUCK_LEN = 16 << 20 };

static enum MHD_Result stuck_handler(void *cls, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     const char *version, const char *upload,
                                     size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)url;
  (void)method;
  (void)version;
  (void)upload;
  (void)upload_size;
  if (first_call(con_cls))
    return MHD_YES;
  static char big[STUCK_LEN];
  struct MHD_Response *r =
      MHD_create_response_from_buffer(sizeof big, big, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = trail_mhd_queue_response(conn, 200, r, sizeof big);
  MHD_destroy_response(r);
  char c = 'q';
  (void)!write(gone_started[1], &c, 1);
  return ret;
}

static void test_inproc_stop_while_sending(void **state) {
  (void)state;
  trail_http_config cfg;
  trail_mhd tm;
  struct MHD_Daemon *d;
  int fd = ordered_start(&tm, &cfg, stuck_handler, "/big", "ip-stuck", &d);
  char c;
  assert_int_equal(read(gone_started[0], &c, 1), 1);
  MHD_stop_daemon(d); /* with the response still going out */
  close(fd);
  assert_int_equal(ordered_end(), (char)MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN);
  cap_expect_unsent("ip-stuck", 503);
}

/* MHD's messages: formatted, trailing newline dropped, escaped, warn lines
 * of logger "http" (the core's server-error lines). */
static void test_inproc_error_log(void **state) {
  (void)state;
  check_error_log(trail_mhd_error_log);
}

/*
 * The adapters' IPv4 text (adapters/mhd/mhd_common.h) is inet_ntop()'s,
 * byte for byte: every octet value in every position, with neighbours of
 * one, two and three digits.
 */
static void test_ipv4_text(void **state) {
  (void)state;
  for (int pos = 0; pos < 4; pos++) {
    for (int v = 0; v < 256; v++) {
      unsigned char b[4] = {(unsigned char)(255 - v), (unsigned char)(v * 7),
                            (unsigned char)(v % 10), (unsigned char)(v * 13)};
      b[pos] = (unsigned char)v;
      char want[INET_ADDRSTRLEN], got[INET_ADDRSTRLEN];
      assert_non_null(inet_ntop(AF_INET, b, want, sizeof want));
      memset(got, 'x', sizeof got);
      size_t n = trail__ipv4_text(b, got);
      assert_string_equal(got, want);
      assert_int_equal(n, strlen(want));
    }
  }
}
#endif /* TRAIL_TEST_MHD_INPROC */

int main(void) {
  curl_global_init(CURL_GLOBAL_ALL);
  const struct CMUnitTest tests[] = {
      /* the shared scenarios, each in the mode(s) tests/http_scenarios.h
       * gives a server built on libmicrohttpd */
      HTTP_SCENARIOS_ON_MHD(&in_thread, &in_poll),
#ifdef TRAIL_TEST_MHD_INPROC
      cmocka_unit_test_setup_teardown(test_inproc_api, inproc_setup,
                                      inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_missing_options, inproc_setup,
                                      inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_reset_before_reply,
                                      inproc_setup, inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_stop_while_sending,
                                      inproc_setup, inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_error_log, inproc_setup,
                                      inproc_teardown),
      cmocka_unit_test(test_ipv4_text),
#endif
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
