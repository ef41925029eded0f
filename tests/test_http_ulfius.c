/*
 * The ulfius adapter end to end: examples/orders_ulfius runs on a loopback
 * port the kernel picks, in thread-per-connection mode and in
 * internal-polling mode (one thread taking every request's callbacks in
 * turn), and gets real HTTP requests, from libcurl and, where exact bytes
 * matter (CR, NUL, obs-fold, Expect: 100-continue, a client that resets),
 * from a plain socket.
 *
 * The rules every server follows (request id, traceparent and tracestate,
 * user, the access line's fields, status and level, HEAD, the query left
 * out, skipped paths, absolute-form targets, keep-alive) are tested for
 * this example, in both modes, by the table of
 * tests/test_http_conformance.c. ulfius runs on libmicrohttpd, so the
 * scenarios beyond the table are test_http_mhd.c's, written once in
 * tests/http_scenarios.h: a GET and the service's own lines, a CR or LF
 * inside a header, 100 of every header at once and 1000 traceparent
 * headers, a large POST body gathered by ulfius, hostile bytes,
 * concurrency and interleaving, clients that leave, draining, SIGINT; the
 * same requests must give the same lines. The table at the end of this
 * file says which run in which mode. The command line is
 * tests/check_cli.sh's.
 *
 * The parts of the API the example does not use (trail_ulfius_request,
 * trail_ulfius_add_endpoint_by_val, U_CALLBACK_ERROR, the adapter's own
 * 404, trail_ulfius_clean, trail_ulfius_error_log) are tested with an
 * instance in this process, when the build links the adapter in
 * (TRAIL_TEST_ULFIUS_INPROC, set by tests/CMakeLists.txt).
 */
#include "http_scenarios.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifdef TRAIL_TEST_ULFIUS_INPROC
#include <trail/ulfius.h>
#endif

/* ---- the shared scenarios, in both modes --------------------------------- */

static const http_server ORDERS_ULFIUS = {
    .example = "orders_ulfius",
    .service = "orders-ulfius",
    .conn_logger = "ulfius.conn", /* its connection hooks log at debug */
};

static http_case in_thread = {&ORDERS_ULFIUS, HTTP_MODE_THREAD};
static http_case in_poll = {&ORDERS_ULFIUS, HTTP_MODE_POLL};

/* ---- the API in this process --------------------------------------------- */

#ifdef TRAIL_TEST_ULFIUS_INPROC
/*
 * What the callbacks saw on MHD's thread, counted there and checked here
 * once ulfius_stop_framework() has joined it (no assertion runs on MHD's
 * thread).
 */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { int calls, ctx_ok, ctx_bad, null_ok; } seen;

static void count_call(const struct _u_request *req) {
  trail_http_request *r = trail_ulfius_request(req);
  pthread_mutex_lock(&seen_lock);
  seen.calls++;
  if (r != NULL && trail_ctx_current() == trail_http_ctx(r))
    seen.ctx_ok++;
  else
    seen.ctx_bad++;
  if (trail_ulfius_request(NULL) == NULL)
    seen.null_ok++;
  pthread_mutex_unlock(&seen_lock);
}

/* Sets the user, logs, and brings its own X-Request-ID (in another case):
 * the echo rule replaces it. */
static int cb_hello(const struct _u_request *req, struct _u_response *resp,
                    void *data) {
  (void)data;
  count_call(req);
  trail_http_set_user(trail_ulfius_request(req), "user-set");
  trail_info(NULL, "in callback");
  u_map_put(resp->map_header, "x-request-id", "theirs");
  ulfius_set_string_body_response(resp, 200, "hello");
  return U_CALLBACK_COMPLETE;
}

static int cb_first(const struct _u_request *req, struct _u_response *resp,
                    void *data) {
  (void)resp;
  (void)data;
  count_call(req);
  trail_info(NULL, "first of two");
  return U_CALLBACK_CONTINUE;
}

static int cb_second(const struct _u_request *req, struct _u_response *resp,
                     void *data) {
  (void)data;
  count_call(req);
  trail_info(NULL, "second of two");
  ulfius_set_string_body_response(resp, 202, "chained");
  return U_CALLBACK_COMPLETE;
}

static int cb_error(const struct _u_request *req, struct _u_response *resp,
                    void *data) {
  (void)data;
  count_call(req);
  ulfius_set_string_body_response(resp, 200, "never sent");
  return U_CALLBACK_ERROR;
}

static int cb_late(const struct _u_request *req, struct _u_response *resp,
                   void *data) {
  count_call(req);
  ulfius_set_string_body_response(resp, 200, (const char *)data);
  return U_CALLBACK_COMPLETE;
}

static int inproc_setup(void **state) {
  (void)state;
  trail_init("ulfius-inproc");
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

static struct sockaddr_in loopback_any_port(void) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int daemon_port(struct _u_instance *inst) {
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(inst->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
  assert_non_null(info);
  return info->port;
}

/*
 * trail_ulfius_request() and the context in every callback, two chained
 * callbacks of one request, a callback's own X-Request-ID replaced,
 * U_CALLBACK_ERROR answered with the id, an endpoint added after the
 * start, the adapter's 404, and trail_ulfius_clean() giving the instance
 * its callbacks back.
 */
static void test_inproc_api(void **state) {
  (void)state;
  struct sockaddr_in a = loopback_any_port();
  struct _u_instance inst;
  assert_int_equal(ulfius_init_instance(&inst, 8080, &a, NULL), U_OK);
  inst.port = 0; /* the kernel picks (a's port is 0) */
  ulfius_add_endpoint_by_val(&inst, "GET", "/hello", NULL, 0, cb_hello, NULL);
  ulfius_add_endpoint_by_val(&inst, "GET", "/chain", NULL, 0, cb_first, NULL);
  ulfius_add_endpoint_by_val(&inst, "GET", "/chain", NULL, 1, cb_second, NULL);
  ulfius_add_endpoint_by_val(&inst, "GET", "/error", NULL, 0, cb_error, NULL);
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  trail_ulfius tu;
  assert_int_equal(trail_ulfius_init(&tu, &inst, &cfg), 0);
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  assert_int_equal(trail_ulfius_start(&tu, flags, NULL), U_OK);
  static char late_body[] = "late";
  assert_int_equal(trail_ulfius_add_endpoint_by_val(&tu, "GET", "/late", NULL,
                                                    0, cb_late, late_body),
                   U_OK);
  int port = daemon_port(&inst);

  const struct {
    const char *path, *rid, *body;
    int status;
  } cases[] = {{"/hello", "ip-hello", "hello", 200},
               {"/chain", "ip-chain", "chained", 202},
               {"/error", "ip-error", ULFIUS_HTTP_ERROR_BODY, 500},
               {"/late", "ip-late", "late", 200},
               {"/nowhere", "ip-404", ULFIUS_HTTP_NOT_FOUND_BODY, 404}};
  const size_t n = sizeof cases / sizeof cases[0];
  for (size_t i = 0; i < n; i++) {
    char h[64];
    snprintf(h, sizeof h, "X-Request-ID: %s", cases[i].rid);
    const char *hs[] = {h, NULL};
    http_response r;
    http_get(port, cases[i].path, hs, &r);
    assert_int_equal(r.curl_error, 0);
    assert_int_equal(r.status, cases[i].status);
    assert_string_equal(r.body, cases[i].body);
    assert_string_equal(r.request_id, cases[i].rid);
  }
  /* every request has completed (or does so within the bound) */
  assert_int_equal(trail_ulfius_wait_idle(&tu, 60 * 1000), 0);
  ulfius_stop_framework(&inst);
  assert_int_equal(trail_ulfius_in_flight(&tu), 0);
  assert_int_equal(trail_ulfius_in_flight(NULL), 0);

  /* hello, two for chain, error, late */
  assert_int_equal(seen.calls, 5);
  assert_int_equal(seen.ctx_bad, 0);
  assert_int_equal(seen.ctx_ok, seen.calls);
  assert_int_equal(seen.null_ok, seen.calls);
  assert_null(trail_ctx_current());
  for (size_t i = 0; i < n; i++) {
    json_t *acc = cap_find(cases[i].rid, "request completed");
    if (acc == NULL)
      fail_msg("no access line for %s", cases[i].rid);
    assert_int_equal(jint(acc, "status"), cases[i].status);
    assert_int_equal(jint(acc, "bytes"), (json_int_t)strlen(cases[i].body));
    assert_str_field(acc, "path", cases[i].path);
    assert_str_field(acc, "method", "GET");
    json_decref(acc);
  }
  json_t *acc = cap_find("ip-hello", "request completed");
  assert_str_field(acc, "user_id", "user-set");
  json_decref(acc);
  json_t *in = cap_find("ip-hello", "in callback");
  assert_non_null(in);
  assert_str_field(in, "user_id", "user-set");
  json_decref(in);
  json_t *c1 = cap_find("ip-chain", "first of two");
  json_t *c2 = cap_find("ip-chain", "second of two");
  assert_non_null(c1);
  assert_non_null(c2);
  assert_string_equal(jstr(c1, "span_id"), jstr(c2, "span_id"));
  json_decref(c1);
  json_decref(c2);

  trail_ulfius_clean(&tu);
  for (int i = 0; i < inst.nb_endpoints; i++) {
    struct _u_endpoint *e = &inst.endpoint_list[i];
    if (e->callback_function == NULL)
      continue;
    assert_true(
        e->callback_function == cb_hello || e->callback_function == cb_first ||
        e->callback_function == cb_second || e->callback_function == cb_error ||
        e->callback_function == cb_late);
  }
  assert_true(inst.default_endpoint == NULL ||
              inst.default_endpoint->callback_function == NULL);
  ulfius_clean_instance(&inst);
}

/*
 * The client resets while the callback works, and the response it then
 * sets never goes out: 499, client_gone, no bytes (not the body's length).
 * Two pipes order it: the callback says it runs, then waits until the
 * client has reset.
 */
static int gone_started[2], gone_go[2];

static int cb_gone(const struct _u_request *req, struct _u_response *resp,
                   void *data) {
  (void)req;
  (void)data;
  char c = 's';
  if (write(gone_started[1], &c, 1) != 1 || read(gone_go[0], &c, 1) != 1)
    return U_CALLBACK_ERROR;
  ulfius_set_string_body_response(resp, 200, "never read");
  return U_CALLBACK_COMPLETE;
}

static void test_inproc_reset_before_reply(void **state) {
  (void)state;
  assert_int_equal(pipe(gone_started), 0);
  assert_int_equal(pipe(gone_go), 0);
  struct sockaddr_in a = loopback_any_port();
  struct _u_instance inst;
  assert_int_equal(ulfius_init_instance(&inst, 8080, &a, NULL), U_OK);
  inst.port = 0;
  ulfius_add_endpoint_by_val(&inst, "GET", "/gone", NULL, 0, cb_gone, NULL);
  trail_ulfius tu;
  assert_int_equal(trail_ulfius_init(&tu, &inst, NULL), 0);
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  assert_int_equal(trail_ulfius_start(&tu, flags, NULL), U_OK);
  int fd = raw_connect(daemon_port(&inst));
  const char *req = "GET /gone HTTP/1.1\r\nHost: t\r\n"
                    "X-Request-ID: ip-gone\r\n\r\n";
  assert_int_equal(raw_send(fd, req, strlen(req)), 0);
  char c;
  assert_int_equal(read(gone_started[0], &c, 1), 1);
  raw_abort(fd);
  assert_int_equal(write(gone_go[1], &c, 1), 1);
  assert_int_equal(trail_ulfius_wait_idle(&tu, 60 * 1000), 0);
  ulfius_stop_framework(&inst); /* the access line is written by now */
  for (int i = 0; i < 2; i++) {
    close(gone_started[i]);
    close(gone_go[i]);
  }
  cap_expect_unsent("ip-gone", 499);
  trail_ulfius_clean(&tu);
  ulfius_clean_instance(&inst);
}

/* Started without trail_ulfius_start(): the callback runs (without ids),
 * and one line says what is missing. */
static void test_inproc_missing_start(void **state) {
  (void)state;
  struct sockaddr_in a = loopback_any_port();
  struct _u_instance inst;
  assert_int_equal(ulfius_init_instance(&inst, 8080, &a, NULL), U_OK);
  inst.port = 0;
  trail_ulfius tu;
  trail_ulfius_init(&tu, &inst, NULL);
  static char body[] = "plain";
  trail_ulfius_add_endpoint_by_val(&tu, "GET", "/plain", NULL, 0, cb_late,
                                   body);
  struct MHD_OptionItem ops[] = {
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mhd_request_completed, NULL},
      {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL},
      {MHD_OPTION_SOCK_ADDR, 0, &a},
      {MHD_OPTION_END, 0, NULL}};
  assert_int_equal(ulfius_start_framework_with_mhd_options(
                       &inst, MHD_USE_INTERNAL_POLLING_THREAD, ops),
                   U_OK);
  int port = daemon_port(&inst);
  http_response r1, r2;
  http_get(port, "/plain", NULL, &r1);
  http_get(port, "/plain", NULL, &r2);
  assert_int_equal(r1.status, 200);
  assert_string_equal(r1.body, "plain");
  assert_string_equal(r1.request_id, "");
  ulfius_stop_framework(&inst);
  trail_ulfius_clean(&tu);
  ulfius_clean_instance(&inst);
  assert_int_equal(seen.calls, 2);
  assert_int_equal(seen.ctx_bad, 2);
  assert_int_equal(cap_count_message("ulfius request without trail state: "
                                     "start the instance with "
                                     "trail_ulfius_start"),
                   1);
  assert_int_equal(cap_count_message("request completed"), 0);
}

/* The adapter's hooks cannot be given twice. */
static void test_inproc_hook_options(void **state) {
  (void)state;
  struct sockaddr_in a = loopback_any_port();
  struct _u_instance inst;
  assert_int_equal(ulfius_init_instance(&inst, 8080, &a, NULL), U_OK);
  trail_ulfius tu;
  trail_ulfius_init(&tu, &inst, NULL);
  struct MHD_OptionItem ops[] = {
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mhd_request_completed, NULL},
      {MHD_OPTION_END, 0, NULL}};
  assert_int_equal(trail_ulfius_start(&tu, 0, ops), U_ERROR_PARAMS);
  assert_null(inst.mhd_daemon);
  trail_ulfius_clean(&tu);
  ulfius_clean_instance(&inst);
  assert_int_equal(trail_ulfius_init(NULL, &inst, NULL), -EINVAL);
}

/* MHD's messages: formatted, trailing newline dropped, escaped, warn lines
 * of logger "http" (the core's server-error lines). */
static void test_inproc_error_log(void **state) {
  (void)state;
  check_error_log(trail_ulfius_error_log);
}
#endif /* TRAIL_TEST_ULFIUS_INPROC */

int main(void) {
  curl_global_init(CURL_GLOBAL_ALL);
  const struct CMUnitTest tests[] = {
      /* the shared scenarios, each in the mode(s) tests/http_scenarios.h
       * gives a server built on libmicrohttpd */
      HTTP_SCENARIOS_ON_MHD(&in_thread, &in_poll),
#ifdef TRAIL_TEST_ULFIUS_INPROC
      cmocka_unit_test_setup_teardown(test_inproc_api, inproc_setup,
                                      inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_reset_before_reply,
                                      inproc_setup, inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_missing_start, inproc_setup,
                                      inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_hook_options, inproc_setup,
                                      inproc_teardown),
      cmocka_unit_test_setup_teardown(test_inproc_error_log, inproc_setup,
                                      inproc_teardown),
#endif
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
