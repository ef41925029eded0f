/*
 * The FastCGI adapter end to end, the way it is deployed: examples/
 * orders_fcgi serves FastCGI on a loopback port the kernel picks, a real
 * nginx (tests/nginx_harness.h) runs in front of it with the stock
 * fastcgi_params, and the test sends HTTP to nginx, from libcurl and, where
 * exact bytes matter (HEAD, an absolute-form target), from a plain socket.
 * The ids, the traceparent, the user header and the client's address reach
 * the service only as nginx's FastCGI params.
 *
 * The rules every server follows (request id, traceparent and tracestate,
 * user, User-Agent, the access line's fields, status and level, HEAD, the
 * query left out, skipped paths, absolute-form targets, keep-alive) are
 * tested for this example behind nginx by the table of
 * tests/test_http_conformance.c (the row "fcgi-nginx"). The scenarios
 * beyond the table that do not depend on libmicrohttpd (a GET and the
 * service's name, listening and stop lines; a body nginx buffers in a
 * file; concurrency across the worker threads; SIGINT) are those of
 * tests/http_scenarios.h, run here with nginx as the server's front. This
 * file keeps what is nginx's own: the header lines it refuses itself with
 * its 400 (which the table skips, SV_FRONT_HEADER_LIMIT), and the
 * in-process API. The command line is tests/check_cli.sh's.
 *
 * Lines are checked once the service has stopped: the access line is
 * written after FCGX_Finish_r(), when nginx may already have answered, so
 * only the service's exit says that every line is in.
 *
 * The parts of the API the example does not use (trail_fcgi_head and
 * trail_fcgi_write apart, trail_fcgi_request, a handler that answers
 * nothing, its own X-Request-ID and a header with a line break, a 204) are
 * tested with a FastCGI worker in this process behind nginx, when the
 * build links the adapter in (TRAIL_TEST_FCGI_INPROC, set by
 * tests/CMakeLists.txt).
 *
 * Without nginx the test is skipped (exit 77).
 */
#include "http_scenarios.h"
#include "nginx_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifdef TRAIL_TEST_FCGI_INPROC
#include <trail/fcgi.h>
#endif

/* ---- nginx in front, and the shared scenarios ---------------------------- */

/* The nginx the running test started and has not stopped (the teardown
 * stops it when a failed assertion left the test early). */
static nginx front;
static int front_up;

static int front_start(int fastcgi_port) {
  nginx_start_fastcgi(&front, fastcgi_port);
  front_up = 1;
  return front.port;
}

static void front_stop(void) {
  if (front_up) {
    front_up = 0;
    nginx_stop(&front);
  }
}

static const http_server ORDERS_FCGI = {
    .example = "orders_fcgi",
    .service = "orders-fcgi",
    /* no connection lines: the example logs only per request */
    .conn_logger = NULL,
    /* the requests go to nginx, which passes them on over FastCGI */
    .front_start = front_start,
    .front_stop = front_stop,
};

/* orders_fcgi takes no mode: one worker thread pool */
static http_case fcgi = {&ORDERS_FCGI, NULL};

static int teardown(void **state) {
  front_stop(); /* the in-process test's nginx, which has no service */
  return http_teardown(state);
}

/* ---- what nginx refuses itself ----------------------------------------- */

/*
 * A header line longer than nginx's large_client_header_buffers (8 KiB by
 * default): nginx answers 400 itself and passes nothing to the service, so
 * there is no X-Request-ID and no access line: trail never had the
 * request. These are the conformance table's 64 KiB cases, which it does
 * not run on this server (SV_FRONT_HEADER_LIMIT). The service serves the
 * next request as usual.
 */
static void test_header_over_nginx_limit(void **state) {
  (void)state;
  const char *const names[] = {"X-Request-ID", "traceparent", "tracestate"};
  const size_t n = sizeof names / sizeof names[0];
  const size_t pad = (size_t)64 * 1024;
  service s;
  int port = http_start(&ORDERS_FCGI, &s, NULL, NULL);
  raw_response r[sizeof names / sizeof names[0]];
  for (size_t i = 0; i < n; i++) {
    size_t size = pad + 256;
    char *req = malloc(size);
    assert_non_null(req);
    int len = snprintf(req, size,
                       "GET /api/orders/%zu HTTP/1.1\r\nHost: t\r\n"
                       "Connection: close\r\n%s: ",
                       500 + i, names[i]);
    memset(req + len, 'p', pad);
    len += (int)pad;
    len += snprintf(req + len, size - (size_t)len, "\r\n\r\n");
    raw_request(port, req, (size_t)len, &r[i]);
    free(req);
  }
  http_response after;
  const char *h[] = {"X-Request-ID: after-refused", NULL};
  http_get(port, "/api/orders/9", h, &after);
  http_stop(&ORDERS_FCGI, &s);

  for (size_t i = 0; i < n; i++) {
    if (r[i].status != 400)
      fail_msg("%s over the limit: status %d, want nginx's 400", names[i],
               r[i].status);
    assert_int_equal(r[i].request_id_count, 0);
  }
  assert_int_equal(after.status, 200);
  assert_string_equal(after.request_id, "after-refused");
  http_check_access(&ORDERS_FCGI, &s, "after-refused", "GET", "/api/orders/9",
                    200, after.body_len, "info");
  /* the one access line, the refused requests none */
  size_t naccess = 0;
  for (size_t i = 0; i < s.n; i++) {
    const char *m = str_or_null(s.lines[i], "message");
    naccess += m && strcmp(m, "request completed") == 0;
  }
  assert_int_equal(naccess, 1);
  assert_false(text_anywhere(&s, "pppppppppppppppp"));
  service_free(&s);
}

/*
 * A body over nginx's client_max_body_size (1 MiB by default, the
 * example's own limit too), by its Content-Length or as it arrives in
 * chunks: nginx answers its own 413 and the service never sees the
 * request, so there is no access line. The service goes on.
 */
static void test_body_over_nginx_limit(void **state) {
  (void)state;
  service s;
  int port = http_start(&ORDERS_FCGI, &s, NULL, NULL);
  raw_response r[2];
  for (int chunked = 0; chunked <= 1; chunked++)
    raw_post_sized(port, "/api/orders", "refused-body", ORDERS_BODY_MAX + 1,
                   chunked, &r[chunked]);
  http_response after;
  const char *h[] = {"X-Request-ID: after-refused-body", NULL};
  http_get(port, "/api/orders/9", h, &after);
  http_stop(&ORDERS_FCGI, &s);

  for (int chunked = 0; chunked <= 1; chunked++) {
    if (r[chunked].status != 413)
      fail_msg("%s body over the limit: status %d, want nginx's 413",
               chunked ? "chunked" : "sized", r[chunked].status);
    assert_int_equal(r[chunked].request_id_count, 0);
  }
  assert_int_equal(after.status, 200);
  http_check_access(&ORDERS_FCGI, &s, "after-refused-body", "GET",
                    "/api/orders/9", 200, after.body_len, "info");
  assert_int_equal(access_count(&s, "refused-body"), 0);
  assert_int_equal(service_count(&s, "message", "request completed"), 1);
  service_free(&s);
}

/* ---- the API in this process --------------------------------------------- */

#ifdef TRAIL_TEST_FCGI_INPROC
/* What the worker saw, counted there, checked here after the join. */
static struct { int calls, ctx_ok, lookup_ok, head_twice_refused; } seen;

static int inproc_listen(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 64), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

/* Serves one request; returns 1 when the handler leaves it without
 * trail_fcgi_end() ("/abandon"). */
static int inproc_serve(trail_fcgi *tf) {
  const char *uri = FCGX_GetParam("REQUEST_URI", tf->request.envp);
  trail_http_request *req = trail_fcgi_request(&tf->request);
  FCGX_Request other;
  memset(&other, 0, sizeof other);
  seen.calls++;
  if (req != NULL && trail_ctx_current() == trail_http_ctx(req))
    seen.ctx_ok++;
  if (trail_fcgi_request(NULL) == NULL && trail_fcgi_request(&other) == NULL)
    seen.lookup_ok++;
  if (uri == NULL)
    return 0;
  if (strcmp(uri, "/abandon") == 0) {
    /* answered, then accepted again without trail_fcgi_end(): the next
     * begin writes this request's access line */
    trail_fcgi_respond(tf, 200, NULL, "gone", 4);
    return 1;
  }
  if (strcmp(uri, "/own-id") == 0) {
    /* the handler's X-Request-ID and a header with a line break go out
     * neither of them: exactly one X-Request-ID, trail's */
    const char *h[] = {"X-Request-ID: handler-id", "X-Bad: a\r\nInjected: 1",
                       "Content-Type: text/plain", NULL};
    trail_fcgi_respond(tf, 200, h, "own", 3);
  } else if (strcmp(uri, "/stream") == 0) {
    trail_http_set_user(req, "user-set");
    trail_info(NULL, "in handler");
    const char *h[] = {"Content-Type: text/plain", "Content-Length: 5", NULL};
    trail_fcgi_head(tf, 202, h);
    if (trail_fcgi_head(tf, 200, NULL) != 0)
      seen.head_twice_refused++;
    trail_fcgi_write(tf, "ab", 2);
    trail_fcgi_write(tf, "cde", 3);
  } else if (strcmp(uri, "/nocontent") == 0) {
    trail_fcgi_respond(tf, 204, NULL, "ignored", 7);
  }
  /* "/nothing": no response; trail_fcgi_end() answers 500 */
  return 0;
}

typedef struct inproc_worker {
  int fd, requests;
  trail_http_config cfg;
} inproc_worker;

static void *inproc_run(void *arg) {
  inproc_worker *w = arg;
  trail_fcgi tf;
  trail_fcgi_init(&tf, &w->cfg, w->fd);
  /* what is current on this thread outside requests: again after every
   * end, and after an abandoned request's next begin has ended it */
  trail_ctx *before = trail_ctx_current();
  for (int i = 0; i < w->requests; i++) {
    if (FCGX_Accept_r(&tf.request) < 0)
      break;
    trail_fcgi_begin(&tf);
    if (inproc_serve(&tf))
      continue;
    trail_fcgi_end(&tf);
    if (trail_ctx_current() != before)
      seen.ctx_ok = -1000; /* the context was not left */
  }
  FCGX_Free(&tf.request, 1);
  return NULL;
}

static void test_inproc_api(void **state) {
  (void)state;
  trail_init("fcgi-inproc");
  cap_start(TRAIL_LEVEL_DEBUG);
  memset(&seen, 0, sizeof seen);
  assert_int_equal(FCGX_Init(), 0);
  static inproc_worker w;
  trail_http_config_init(&w.cfg);
  w.requests = 5;
  int port;
  w.fd = inproc_listen(&port);
  pthread_t t;
  pthread_create(&t, NULL, inproc_run, &w);
  int front_port = front_start(port);

  raw_response own, stream, nocontent, nothing, abandon;
  raw_request_str(front_port,
                  "GET /own-id HTTP/1.1\r\nHost: t\r\nX-Request-ID: ip-own\r\n"
                  "Connection: close\r\n\r\n",
                  &own);
  raw_request_str(front_port,
                  "GET /stream HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-stream\r\nConnection: close\r\n\r\n",
                  &stream);
  raw_request_str(front_port,
                  "GET /abandon HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-abandon\r\nConnection: close\r\n\r\n",
                  &abandon);
  raw_request_str(front_port,
                  "GET /nocontent HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-204\r\nConnection: close\r\n\r\n",
                  &nocontent);
  raw_request_str(front_port,
                  "GET /nothing HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-nothing\r\nConnection: close\r\n\r\n",
                  &nothing);
  pthread_join(t, NULL);
  front_stop();
  close(w.fd);

  assert_int_equal(own.status, 200);
  assert_int_equal(own.request_id_count, 1);
  assert_string_equal(own.request_id, "ip-own");
  assert_string_equal(own.body, "own");
  assert_int_equal(stream.status, 202);
  assert_string_equal(stream.body, "abcde");
  assert_int_equal(nocontent.status, 204);
  assert_int_equal(nocontent.body_len, 0);
  assert_string_equal(nocontent.request_id, "ip-204");
  assert_int_equal(nothing.status, 500);
  assert_string_equal(nothing.request_id, "ip-nothing");
  assert_int_equal(abandon.status, 200);
  assert_string_equal(abandon.body, "gone");
  assert_int_equal(seen.calls, 5);
  assert_int_equal(seen.ctx_ok, 5);
  assert_int_equal(seen.lookup_ok, 5);
  assert_int_equal(seen.head_twice_refused, 1);

  const struct {
    const char *rid;
    int status, bytes;
  } want[] = {{"ip-own", 200, 3},
              {"ip-stream", 202, 5},
              {"ip-abandon", 200, 4},
              {"ip-204", 204, 0},
              {"ip-nothing", 500, 0}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    json_t *acc = cap_find(want[i].rid, "request completed");
    if (acc == NULL)
      fail_msg("no access line for %s", want[i].rid);
    assert_int_equal(jint(acc, "status"), want[i].status);
    assert_int_equal(jint(acc, "bytes"), want[i].bytes);
    assert_str_field(acc, "remote_addr", "127.0.0.1");
    json_decref(acc);
  }
  json_t *acc = cap_find("ip-stream", "request completed");
  assert_str_field(acc, "user_id", "user-set");
  json_decref(acc);
  json_t *in = cap_find("ip-stream", "in handler");
  assert_non_null(in);
  json_decref(in);
  for (size_t i = 0; i < cap_count(); i++)
    assert_null(strstr(cap_text(i), "handler-id"));
  cap_stop();
}
#endif /* TRAIL_TEST_FCGI_INPROC */

int main(void) {
  nginx_require();
  curl_global_init(CURL_GLOBAL_ALL);
  const struct CMUnitTest tests[] = {
      HTTP_SCENARIO("test_get", scenario_basic_get, &fcgi),
      cmocka_unit_test_teardown(test_header_over_nginx_limit, teardown),
      cmocka_unit_test_teardown(test_body_over_nginx_limit, teardown),
      HTTP_SCENARIO("test_bodies", scenario_bodies, &fcgi),
      HTTP_SCENARIO("test_concurrent", scenario_concurrent, &fcgi),
      HTTP_SCENARIO("test_sigint", scenario_sigint, &fcgi),
      HTTP_SCENARIO("test_buffered", scenario_buffered, &fcgi),
      HTTP_SCENARIO("test_state_reused", scenario_state_reused, &fcgi),
#ifdef TRAIL_TEST_FCGI_INPROC
      cmocka_unit_test_teardown(test_inproc_api, teardown),
#endif
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
