/*
 * The libevent evhttp adapter (include/trail/evhttp.h), through its example
 * service examples/orders_evhttp.c: each test starts the service on a
 * loopback port the kernel picks, sends real HTTP requests (libcurl, or a
 * raw socket where the bytes must be exactly these: CR inside a value, a
 * client that leaves, pipelining), stops it with SIGTERM, and reads every
 * line it wrote.
 *
 * The rules every server follows (request id, traceparent, user, the
 * access line's fields, HEAD, skipped paths, absolute-form targets,
 * keep-alive) are tested for this example by the table of
 * tests/test_http_conformance.c. What is evhttp's own, and tested here: one
 * thread serves every request, so requests truly interleave when replies are
 * deferred (?sleep_ms=N answers from a timer); the access line is written from
 * the completion callback, outside any handler; and a client that closes its
 * connection while its reply is deferred gets an access line with status 499.
 * SIGINT is the shared scenario of tests/http_scenarios.h, and the checks
 * on values and lines are tests/http_checks.h's.
 *
 * No sleeps: lines are read after the service exited, or waited for on the
 * harness's condition variable (with a generous cap that only keeps a
 * broken build from hanging).
 */
/* http_harness.h formats a caller's path pattern (http_concurrent). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "http_scenarios.h"
#pragma GCC diagnostic pop

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <trail/http.h>

#ifdef TRAIL_TEST_EVHTTP_INPROC
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <trail/evhttp.h>
#endif

#define T_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define P_ID "00f067aa0ba902b7"
#define TP_VALID "00-" T_ID "-" P_ID "-01"

/* ---- checks on ids and lines ----------------------------------------------
 */

/* Where line is among the service's lines (s->n when it is not). */
static size_t index_of(service *s, json_t *line) {
  for (size_t i = 0; i < s->n; i++)
    if (s->lines[i] == line)
      return i;
  return s->n;
}

/* Every line: the contract's keys in order; a request's lines carry a
 * 32-hex trace_id and a 16-hex span_id. */
static void check_all_lines(service *s) {
  for (size_t i = 0; i < s->n; i++) {
    assert_key_order(s->lines[i]);
    if (json_object_get(s->lines[i], "request_id") != NULL) {
      if (!is_lower_hex(str_or_null(s->lines[i], "trace_id"), 32) ||
          !is_lower_hex(str_or_null(s->lines[i], "span_id"), 16))
        fail_msg("request line without a valid trace: %s", s->texts[i]);
    }
  }
}

/* SIGTERM, exit 0, every line parsed (the harness); the last lines say
 * so. Run on every stopped service, the shared SIGINT scenario's too. */
static void check_stopped(service *s) {
  check_all_lines(s);
  assert_true(s->n >= 2);
  assert_string_equal(str_or_null(s->lines[s->n - 1], "message"), "stopped");
  assert_non_null(find_message(s, "stopping"));
}

static const http_server ORDERS_EVHTTP = {
    .example = "orders_evhttp",
    .service = "orders-evhttp",
    .conn_logger = NULL, /* the example logs only per request */
    .check_stopped = check_stopped,
    /* its "stopping" line says which signal came */
    .flags = HTTP_SV_SIGNAL_NAMED,
};

/* orders_evhttp takes no mode: one loop thread */
static http_case evhttp = {&ORDERS_EVHTTP, NULL};

/*
 * The service under test. It is static, not on a test's stack, so that the
 * teardown can still free its lines (and kill it, through the shared
 * teardown, when a failed assertion left the test early: a service left
 * running would hold the test's output open).
 */
static service svc;

static service *start(const char *const *env) {
  http_start(&ORDERS_EVHTTP, &svc, NULL, env);
  return &svc;
}

static void stop(service *s) { http_stop(&ORDERS_EVHTTP, s); }

static int teardown(void **state) {
  http_teardown(state);
  service_free(&svc);
  return 0;
}

/* The access line of rid, which must exist, with the request's status. */
static json_t *access_of(service *s, const char *rid) {
  json_t *acc = service_access_line(s, rid);
  if (acc == NULL)
    fail_msg("no access line for %s", rid);
  return acc;
}

/* ---- raw requests (the harness's client, http_raw.h) ------------------------
 */

/* A growing request text. */
typedef struct text {
  char *p;
  size_t len, cap;
} text;

static void text_add(text *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    t->cap = (t->len + n + 1) * 2;
    t->p = realloc(t->p, t->cap);
  }
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

static void text_puts(text *t, const char *s) { text_add(t, s, strlen(s)); }

/* "GET target HTTP/1.1", Host, Connection: close, and the caller's raw
 * header lines (without CRLF); the blank line ends it. */
static void text_request(text *t, const char *target,
                         const char *const *lines) {
  memset(t, 0, sizeof *t);
  text_puts(t, "GET ");
  text_puts(t, target);
  text_puts(t, " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
  for (size_t i = 0; lines != NULL && lines[i] != NULL; i++) {
    text_puts(t, lines[i]);
    text_puts(t, "\r\n");
  }
}

static void text_end(text *t) { text_puts(t, "\r\n"); }

/* ---- the basics
 * --------------------------------------------------------------- */

/* GET 200: the handler's line and the access line carry the request id and
 * one trace; the id is echoed; the access line says what was sent. */
static void test_get(void **state) {
  (void)state;
  service *s = start(NULL);
  const char *h[] = {"X-Request-ID: get-1", NULL};
  http_response r;
  http_get(s->port, "/api/orders/42", h, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "get-1");
  assert_string_equal(r.body, "{\"id\":42,\"state\":\"shipped\"}");
  stop(s);

  json_t *listening = find_message(s, "listening");
  assert_non_null(listening);
  assert_int_equal(jint(listening, "port"), s->port);

  json_t *h1 = find_line(s, "get-1", NULL, "order loaded");
  json_t *acc = access_of(s, "get-1");
  assert_non_null(h1);
  assert_str_field(h1, "logger", "orders");
  assert_str_field(h1, "trace_id", jstr(acc, "trace_id"));
  assert_str_field(h1, "span_id", jstr(acc, "span_id"));
  /* the access line comes from the completion callback, after */
  assert_true(index_of(s, h1) < index_of(s, acc));
  assert_str_field(acc, "service", "orders-evhttp");
  assert_int_equal(jint(acc, "bytes"), r.body_len);
}

/* /metrics: trail's counters for Prometheus, no access line of its own. */
static void test_metrics(void **state) {
  (void)state;
  service *s = start(NULL);
  http_response r;
  http_get(s->port, "/api/orders/5", NULL, &r);
  assert_int_equal(r.status, 200);
  const char *h[] = {"X-Request-ID: metrics-1", NULL};
  http_get(s->port, "/metrics", h, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "# TYPE trail_log_lines_total counter\n"));
  assert_non_null(strstr(r.body,
                         "trail_log_lines_total{service=\"orders-evhttp\","
                         "level=\"info\"} "));
  assert_non_null(
      strstr(r.body, "trail_log_dropped_total{service=\"orders-evhttp\"} 0\n"));
  stop(s);
  assert_null(service_access_line(s, "metrics-1"));
}

/* ---- X-Request-ID
 * ------------------------------------------------------------ */

/*
 * A replaced X-Request-ID is reported at debug, with the request's ids and
 * the header's name, never the value (the table of
 * tests/test_http_conformance.c checks the replacement itself, on every
 * server; this is the report's end-to-end check).
 */
static void test_request_id_rejection_reported(void **state) {
  (void)state;
  char *big = malloc(64 * 1024 + 32);
  assert_non_null(big);
  strcpy(big, "X-Request-ID: ");
  memset(big + 14, 'a', 64 * 1024);
  big[14 + 64 * 1024] = '\0';
  const char *const cases[][3] = {
      {"X-Request-ID: has space", NULL},
      {"X-Request-ID: twice-1", "X-Request-ID: twice-2", NULL},
      {big, NULL},
  };
  const size_t n = sizeof cases / sizeof cases[0];
  char ids[sizeof cases / sizeof cases[0]][256];
  service *s = start(HTTP_ENV_DEBUG);
  for (size_t i = 0; i < n; i++) {
    text t;
    text_request(&t, "/api/orders/11", cases[i]);
    text_end(&t);
    raw_response r;
    raw_request(s->port, t.p, t.len, &r);
    free(t.p);
    assert_int_equal(r.status, 200);
    if (!is_uuid(r.request_id))
      fail_msg("case %zu: echoed id %s is not a new UUID", i, r.request_id);
    memcpy(ids[i], r.request_id, sizeof ids[i]);
  }
  stop(s);
  for (size_t i = 0; i < n; i++) {
    json_t *acc = access_of(s, ids[i]);
    json_t *rej = find_line(s, ids[i], NULL, "request header rejected");
    assert_non_null(rej);
    assert_str_field(rej, "header", "X-Request-ID");
    assert_str_field(rej, "trace_id", jstr(acc, "trace_id"));
  }
  for (size_t i = 0; i < s->n; i++) {
    assert_null(strstr(s->texts[i], "has space"));
    assert_null(strstr(s->texts[i], "twice-"));
    assert_null(strstr(s->texts[i], "aaaaaaaaaaaaaaaa"));
  }
  free(big);
}

/*
 * After requests evhttp refused itself: one request served as usual (id
 * rid), then the stop; its access line is the service's only one.
 */
static void stop_after_one(service *s, const char *rid) {
  char hdr[128];
  snprintf(hdr, sizeof hdr, "X-Request-ID: %s", rid);
  const char *h[] = {hdr, NULL};
  http_response r;
  http_get(s->port, "/api/orders/2", h, &r);
  assert_int_equal(r.status, 200);
  stop(s);
  assert_non_null(access_of(s, rid));
  assert_int_equal(service_count(s, "message", "request completed"), 1);
}

/*
 * evhttp refuses a CR inside a header value, and a lone LF breaks the line
 * into one that is not a header: it answers such a request with its own
 * 400 before any application code runs (so there is no access line, see
 * the docs). The service goes on, and no line is broken.
 */
static void test_header_line_breaks(void **state) {
  (void)state;
  static const char *const reqs[] = {
      "GET /api/orders/1 HTTP/1.1\r\nHost: t\r\nX-Request-ID: a\rb\r\n"
      "Connection: close\r\n\r\n",
      "GET /api/orders/1 HTTP/1.1\r\nHost: t\r\nX-Request-ID: a\r b\r\n"
      "Connection: close\r\n\r\n",
      "GET /api/orders/1 HTTP/1.1\r\nHost: t\r\nX-Request-ID: a\nb\r\n"
      "Connection: close\r\n\r\n",
      "GET /api/orders/1 HTTP/1.1\r\nHost: t\r\ntraceparent: " TP_VALID
      "\rx\r\nConnection: close\r\n\r\n",
  };
  service *s = start(HTTP_ENV_DEBUG);
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    raw_response r;
    raw_request(s->port, reqs[i], strlen(reqs[i]), &r);
    assert_int_equal(r.status, 400);
  }
  stop_after_one(s, "after-breaks");
}

/*
 * A body over the example's limit (evhttp_set_max_body_size(),
 * ORDERS_BODY_MAX), by its Content-Length or as it arrives in chunks:
 * evhttp answers its own 413 before any application code runs, so there
 * is no X-Request-ID and no access line (see the docs). The service goes
 * on. The conformance table tests a body at the limit on every server, and
 * one byte over on the servers where the service answers it.
 */
static void test_body_over_limit(void **state) {
  (void)state;
  service *s = start(NULL);
  for (int chunked = 0; chunked <= 1; chunked++) {
    raw_response r;
    raw_post_sized(s->port, "/api/orders", "refused-body", ORDERS_BODY_MAX + 1,
                   chunked, &r);
    if (r.status != 413)
      fail_msg("%s body over the limit: status %d, want evhttp's 413",
               chunked ? "chunked" : "sized", r.status);
    assert_int_equal(r.request_id_count, 0);
  }
  stop_after_one(s, "after-refused-body");
}

/* ---- header limits --------------------------------------------------------
 */

/* 100 X-Request-ID headers among 1000 of a header trail does not read
 * (evhttp's header limits; the table sends 100 of each header trail reads,
 * one at a time): a new id, and the request is served. */
static void test_many_repeated_headers(void **state) {
  (void)state;
  service *s = start(NULL);
  text t;
  text_request(&t, "/api/orders/15", NULL);
  for (int i = 0; i < 100; i++)
    text_puts(&t, "X-Request-ID: many-rid\r\n");
  for (int i = 0; i < 1000; i++)
    text_puts(&t, "X-Junk: 0123456789\r\n");
  text_end(&t);
  raw_response r;
  raw_request(s->port, t.p, t.len, &r);
  free(t.p);
  assert_int_equal(r.status, 200);
  assert_true(is_uuid(r.request_id));
  stop(s);
  assert_non_null(access_of(s, r.request_id));
  assert_null(service_access_line(s, "many-rid"));
}

/* Bytes that are not ASCII in the request line: answered (404), logged
 * with U+FFFD, nothing broken. */
static void test_non_ascii_path(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char req[] =
      "GET /api/\xff\xc3\xa9t\xc3 HTTP/1.1\r\nHost: t\r\n"
      "X-Request-ID: nonascii\r\nConnection: close\r\n\r\n";
  raw_response r;
  raw_request(s->port, req, sizeof req - 1, &r);
  assert_true(r.status == 404 || r.status == 400);
  int status = r.status;
  stop(s);
  if (status == 404) {
    json_t *acc = access_of(s, "nonascii");
    assert_str_field(acc, "path", "/api/\xef\xbf\xbd\xc3\xa9t\xef\xbf\xbd");
  }
}

/* ---- evhttp's traps: deferred replies, clients that leave -------------------
 */

/*
 * ?sleep_ms= answers from a timer: the access line comes from the
 * completion callback, long after the handler returned, and is still the
 * request's own, with the real status and bytes; the timer logs with the
 * context passed explicitly, then with it entered.
 */
static void test_deferred_reply(void **state) {
  (void)state;
  service *s = start(NULL);
  const char *h[] = {"X-Request-ID: def-1", "traceparent: " TP_VALID, NULL};
  http_response r;
  http_get(s->port, "/api/orders/5?sleep_ms=100", h, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "def-1");
  assert_string_equal(r.body, "{\"id\":5,\"state\":\"shipped\"}");
  size_t body1 = r.body_len;
  const char *h2[] = {"X-Request-ID: def-2", NULL};
  http_get(s->port, "/api/orders/999?sleep_ms=20", h2, &r);
  assert_int_equal(r.status, 404);
  stop(s);

  json_t *deferred = find_line(s, "def-1", NULL, "reply deferred");
  json_t *due = find_line(s, "def-1", NULL, "deferred reply due");
  json_t *loaded = find_line(s, "def-1", NULL, "order loaded");
  json_t *acc = access_of(s, "def-1");
  assert_non_null(deferred);
  assert_non_null(due);
  assert_non_null(loaded);
  assert_true(index_of(s, deferred) < index_of(s, due));
  assert_true(index_of(s, due) < index_of(s, loaded));
  assert_true(index_of(s, loaded) < index_of(s, acc));
  assert_true(json_is_false(json_object_get(due, "client_gone")));
  json_t *all[] = {deferred, due, loaded, acc};
  for (size_t i = 0; i < 4; i++) {
    assert_str_field(all[i], "trace_id", T_ID);
    assert_str_field(all[i], "span_id", jstr(acc, "span_id"));
  }
  assert_int_equal(jint(acc, "status"), 200);
  assert_int_equal(jint(acc, "bytes"), body1);
  assert_str_field(acc, "path", "/api/orders/5");
  assert_str_field(acc, "parent_span_id", P_ID);
  assert_true(json_number_value(json_object_get(acc, "duration_ms")) >= 100);

  json_t *acc2 = access_of(s, "def-2");
  assert_int_equal(jint(acc2, "status"), 404);
  assert_str_field(acc2, "level", "warn");
  assert_int_equal(jint(acc2, "bytes"), r.body_len);
}

/*
 * The client closes its connection while its reply is deferred: evhttp
 * never completes that request, yet the access line is written, with
 * status 499, as soon as the close is seen; the timer still runs with the
 * request's ids, knows the client is gone, and the reply is dropped
 * without a second access line. The service serves on.
 */
static void test_client_gone(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char req[] = "GET /api/orders/21?sleep_ms=1500 HTTP/1.1\r\n"
                            "Host: t\r\nX-Request-ID: gone-1\r\n"
                            "traceparent: " TP_VALID "\r\n\r\n";
  int fd = raw_connect(s->port);
  raw_send(fd, req, sizeof req - 1);
  wait_request_line(s, "gone-1", "reply deferred");
  close(fd);
  wait_request_line(s, "gone-1", "request completed");

  const char *h[] = {"X-Request-ID: after-gone", NULL};
  http_response r;
  http_get(s->port, "/api/orders/22", h, &r);
  assert_int_equal(r.status, 200);
  stop(s);

  json_t *acc = access_of(s, "gone-1");
  assert_int_equal(jint(acc, "status"), TRAIL_HTTP_CLIENT_GONE);
  assert_true(json_is_true(json_object_get(acc, "client_gone")));
  assert_str_field(acc, "level", "warn");
  assert_int_equal(jint(acc, "bytes"), 0);
  assert_str_field(acc, "trace_id", T_ID);
  assert_int_equal(access_count(s, "gone-1"), 1);
  json_t *due = find_line(s, "gone-1", NULL, "deferred reply due");
  assert_non_null(due);
  assert_true(json_is_true(json_object_get(due, "client_gone")));
  assert_str_field(due, "trace_id", T_ID);
  assert_true(index_of(s, acc) < index_of(s, due));
  assert_non_null(find_line(s, "gone-1", NULL, "order loaded"));
  assert_int_equal(jint(access_of(s, "after-gone"), "status"), 200);
}

/*
 * Several clients leave while their replies are deferred, some closing,
 * some half-closing (shutdown(SHUT_WR), a departure too), among others
 * that wait for theirs: each leaver gets its own 499 as soon as it leaves
 * and no reply; each waiter gets its reply and a 200; no line mixes ids.
 */
static void test_clients_gone_among_others(void **state) {
  (void)state;
  enum { N = 12 };
  service *s = start(NULL);
  int fds[N];
  for (int i = 0; i < N; i++) {
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /api/orders/%d?sleep_ms=1500 HTTP/1.1\r\nHost: t\r\n"
                     "X-Request-ID: left-%d\r\nConnection: close\r\n\r\n",
                     30 + i, i);
    fds[i] = raw_connect(s->port);
    raw_send(fds[i], req, (size_t)n);
  }
  for (int i = 0; i < N; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "left-%d", i);
    wait_request_line(s, rid, "reply deferred");
  }
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0)
      close(fds[i]);
    else if (i % 3 == 1)
      shutdown(fds[i], SHUT_WR);
  }
  for (int i = 0; i < N; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "left-%d", i);
    if (i % 3 != 2)
      wait_request_line(s, rid, "request completed");
  }
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0)
      continue;
    size_t len;
    char *buf = raw_read_all(fds[i], &len);
    close(fds[i]);
    if (i % 3 == 1) {
      assert_int_equal(len, 0); /* the reply was dropped */
    } else {
      raw_response r;
      assert_int_equal(raw_parse_one(buf, len, &r), 0);
      assert_int_equal(r.status, 200);
    }
    free(buf);
  }
  stop(s);
  for (int i = 0; i < N; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "left-%d", i);
    json_t *acc = access_of(s, rid);
    assert_int_equal(jint(acc, "status"),
                     i % 3 == 2 ? 200 : TRAIL_HTTP_CLIENT_GONE);
    assert_int_equal(access_count(s, rid), 1);
    const char *trace = jstr(acc, "trace_id");
    for (size_t k = 0; k < s->n; k++) {
      const char *r = str_or_null(s->lines[k], "request_id");
      if (r != NULL && strcmp(r, rid) == 0)
        assert_str_field(s->lines[k], "trace_id", trace);
    }
  }
}

/*
 * A second request pipelined on the connection while the first one's reply
 * is deferred makes the socket readable too: it is not a departure. Both
 * are answered in order, both with status 200.
 */
static void test_pipelined_while_deferred(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char first[] = "GET /api/orders/41?sleep_ms=500 HTTP/1.1\r\n"
                              "Host: t\r\nX-Request-ID: pipe-1\r\n\r\n";
  static const char second[] = "GET /api/orders/42 HTTP/1.1\r\nHost: t\r\n"
                               "X-Request-ID: pipe-2\r\nConnection: close\r\n"
                               "\r\n";
  int fd = raw_connect(s->port);
  raw_send(fd, first, sizeof first - 1);
  wait_request_line(s, "pipe-1", "reply deferred");
  raw_send(fd, second, sizeof second - 1);
  size_t len;
  char *buf = raw_read_all(fd, &len);
  close(fd);
  static raw_reply rp;
  raw_parse(buf, len, &rp);
  free(buf);
  assert_int_equal(rp.n, 2);
  assert_int_equal(rp.r[0].status, 200);
  assert_string_equal(rp.r[0].request_id, "pipe-1");
  assert_int_equal(rp.r[1].status, 200);
  assert_string_equal(rp.r[1].request_id, "pipe-2");
  stop(s);
  assert_int_equal(jint(access_of(s, "pipe-1"), "status"), 200);
  assert_int_equal(jint(access_of(s, "pipe-2"), "status"), 200);
  assert_true(json_is_false(json_object_get(
      find_line(s, "pipe-1", NULL, "deferred reply due"), "client_gone")));
}

/* ---- concurrency -----------------------------------------------------------
 */

/* 64 requests at once on the one loop thread: ids never mix. */
static void test_concurrent(void **state) {
  (void)state;
  enum { N = 64 };
  http_job *jobs = calloc(N, sizeof *jobs);
  service *s = start(NULL);
  http_concurrent(s->port, "/api/orders/%d", N, jobs);
  for (int i = 0; i < N; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    assert_int_equal(jobs[i].resp.curl_error, 0);
    assert_string_equal(jobs[i].resp.request_id, rid);
  }
  stop(s);
  check_isolation(s, N);

  free(jobs);
}

/*
 * 64 requests at once, half of them answered from timers, so that the
 * deferred ones are in flight while the others run: every line still
 * carries only its own request's ids, and the requests did interleave.
 */
static void test_concurrent_interleaved(void **state) {
  (void)state;
  enum { N = 64 };
  http_job *jobs = calloc(N, sizeof *jobs);
  pthread_t t[N];
  pthread_barrier_t go;
  service *s = start(NULL);
  pthread_barrier_init(&go, NULL, N);
  for (int i = 0; i < N; i++) {
    jobs[i].port = s->port;
    if (i % 2 == 0)
      snprintf(jobs[i].path, sizeof jobs[i].path, "/api/orders/%d?sleep_ms=%d",
               100 + i, 50 + 5 * i);
    else
      snprintf(jobs[i].path, sizeof jobs[i].path, "/api/orders/%d", 100 + i);
    snprintf(jobs[i].rid_header, sizeof jobs[i].rid_header,
             "X-Request-ID: conc-%d", i);
    jobs[i].start = &go;
    pthread_create(&t[i], NULL, http_job_run, &jobs[i]);
  }
  for (int i = 0; i < N; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&go);
  for (int i = 0; i < N; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    assert_int_equal(jobs[i].resp.curl_error, 0);
    assert_int_equal(jobs[i].resp.status, 200);
    assert_string_equal(jobs[i].resp.request_id, rid);
  }
  stop(s);
  check_isolation(s, N);

  size_t interleaved = 0;
  for (int i = 0; i < N; i += 2) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    json_t *acc = access_of(s, rid);
    assert_int_equal(jint(acc, "status"), 200);
    assert_int_equal(jint(acc, "bytes"), jobs[i].resp.body_len);
    assert_non_null(find_line(s, rid, NULL, "deferred reply due"));
    size_t from = index_of(s, find_line(s, rid, NULL, NULL));
    size_t to = index_of(s, acc);
    for (size_t k = from + 1; k < to; k++) {
      const char *r = str_or_null(s->lines[k], "request_id");
      if (r != NULL && strcmp(r, rid) != 0) {
        interleaved++;
        break;
      }
    }
  }
  assert_true(interleaved > 0);

  free(jobs);
}

/* ---- stopping
 * ---------------------------------------------------------------- */

/* SIGTERM while a reply is deferred: the service answers it, then stops. */
static void test_stop_finishes_deferred(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char req[] = "GET /api/orders/51?sleep_ms=300 HTTP/1.1\r\n"
                            "Host: t\r\nX-Request-ID: last-1\r\n"
                            "Connection: close\r\n\r\n";
  int fd = raw_connect(s->port);
  raw_send(fd, req, sizeof req - 1);
  wait_request_line(s, "last-1", "reply deferred");
  kill(s->pid, SIGTERM);
  raw_response r;
  raw_read_response(fd, &r);
  close(fd);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "last-1");
  stop(s);
  json_t *acc = access_of(s, "last-1");
  assert_true(jint(acc, "status") == 200 ||
              jint(acc, "status") == TRAIL_HTTP_CLIENT_GONE);
  assert_true(index_of(s, find_message(s, "stopping")) <
              index_of(s, find_line(s, "last-1", NULL, "deferred reply due")));
}

/* ---- the API in this process --------------------------------------------- */

#ifdef TRAIL_TEST_EVHTTP_INPROC
/*
 * The echo rule when the handler brings its own X-Request-ID, twice, after
 * the adapter set trail's at the request's start: the reply carries exactly
 * one, trail's (the sent id), and the access line the same id. The server
 * runs its loop on this thread; the client runs on another, and a byte on a
 * pipe ends the loop once it has its response.
 */
static void own_ids_handler(struct evhttp_request *req, void *arg) {
  (void)arg;
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "X-Request-ID", "theirs-1");
  evhttp_add_header(h, "x-request-id", "theirs-2");
  trail_evhttp_send_reply(req, 200, "OK", NULL);
}

typedef struct inproc_client {
  int port, done_fd;
  raw_response resp;
} inproc_client;

static void *client_main(void *arg) {
  inproc_client *c = arg;
  raw_request_str(c->port,
                  "GET /x HTTP/1.1\r\nHost: t\r\nX-Request-ID: mine-1\r\n"
                  "Connection: close\r\n\r\n",
                  &c->resp);
  char b = 1;
  if (write(c->done_fd, &b, 1) != 1)
    c->resp.status = -1;
  return NULL;
}

static void on_client_done(evutil_socket_t fd, short what, void *base) {
  (void)fd;
  (void)what;
  event_base_loopbreak(base);
}

static void test_inproc_own_request_ids(void **state) {
  (void)state;
  trail_init("evhttp-inproc");
  cap_start(TRAIL_LEVEL_DEBUG);
  struct event_base *base = event_base_new();
  struct evhttp *http = evhttp_new(base);
  assert_non_null(http);
  trail_http_config cfg;
  trail_http_config_init(&cfg);
  trail_evhttp_handler handler;
  trail_evhttp_handler_init(&handler, &cfg, own_ids_handler, NULL);
  evhttp_set_gencb(http, trail_evhttp_handle, &handler);
  struct evhttp_bound_socket *bound =
      evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
  assert_non_null(bound);
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound),
                               (struct sockaddr *)&a, &alen),
                   0);
  int pipe_fds[2];
  assert_int_equal(pipe(pipe_fds), 0);
  struct event *done =
      event_new(base, pipe_fds[0], EV_READ, on_client_done, base);
  assert_int_equal(event_add(done, NULL), 0);
  inproc_client c = {.port = ntohs(a.sin_port), .done_fd = pipe_fds[1]};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, client_main, &c), 0);
  assert_int_equal(event_base_dispatch(base), 0);
  pthread_join(t, NULL);
  event_free(done);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  evhttp_free(http);
  event_base_free(base);

  assert_int_equal(c.resp.status, 200);
  assert_int_equal(c.resp.request_id_count, 1);
  assert_string_equal(c.resp.request_id, "mine-1");
  json_t *acc = cap_find("mine-1", "request completed");
  assert_non_null(acc);
  assert_int_equal(jint(acc, "status"), 200);
  json_decref(acc);
  assert_int_equal(cap_count_message("request completed"), 1);
  cap_stop();
}
#endif /* TRAIL_TEST_EVHTTP_INPROC */

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_get, teardown),
      cmocka_unit_test_teardown(test_metrics, teardown),
      cmocka_unit_test_teardown(test_request_id_rejection_reported, teardown),
      cmocka_unit_test_teardown(test_header_line_breaks, teardown),
      cmocka_unit_test_teardown(test_body_over_limit, teardown),
      cmocka_unit_test_teardown(test_many_repeated_headers, teardown),
      cmocka_unit_test_teardown(test_non_ascii_path, teardown),
      cmocka_unit_test_teardown(test_deferred_reply, teardown),
      cmocka_unit_test_teardown(test_client_gone, teardown),
      cmocka_unit_test_teardown(test_clients_gone_among_others, teardown),
      cmocka_unit_test_teardown(test_pipelined_while_deferred, teardown),
      cmocka_unit_test_teardown(test_concurrent, teardown),
      cmocka_unit_test_teardown(test_concurrent_interleaved, teardown),
      HTTP_SCENARIO("test_sigint", scenario_sigint, &evhttp),
      HTTP_SCENARIO("test_buffered", scenario_buffered, &evhttp),
      HTTP_SCENARIO("test_state_reused", scenario_state_reused, &evhttp),
      cmocka_unit_test_teardown(test_stop_finishes_deferred, teardown),
#ifdef TRAIL_TEST_EVHTTP_INPROC
      cmocka_unit_test(test_inproc_own_request_ids),
#endif
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
