/*
 * The civetweb adapter (include/trail/civetweb.h) and its example service,
 * orders_civetweb.
 *
 * Two halves. The first starts the example on a loopback port and talks to
 * it as any client would, with libcurl and, for what libcurl will not send
 * (a bare CR in a header, a control byte, a request civetweb refuses,
 * pipelined requests), with the harness's raw client. The rules every
 * server follows (request id, traceparent, user, the access line's fields,
 * skipped paths, absolute-form targets, keep-alive) are tested for this
 * example by the table of tests/test_http_conformance.c; this half keeps
 * what is civetweb's own (SIGINT is the shared scenario of
 * tests/http_scenarios.h, and the checks on values and lines are
 * tests/http_checks.h's). The second, built when
 * civetweb was found, runs a civetweb server inside the test with handlers
 * that use the adapter in ways the example does not (a handler returning 1,
 * a response it builds itself, a client that leaves), and reads the lines
 * through a capture sink.
 *
 * No sleeps: a service's lines are read after it has exited, and the
 * in-process server's after mg_stop() has joined its threads. Keep-alive
 * is proved with pipelined requests, which ride one connection whatever
 * the timing, and with requests sent one after the other on one socket.
 * Times are printed, never asserted.
 */
#define _GNU_SOURCE /* strptime(), for the Date header */
#include "http_scenarios.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#ifdef TRAIL_TEST_HAVE_CIVETWEB
#include <semaphore.h>
#include <stdatomic.h>
#include <strings.h>

#include <civetweb.h>
#include <trail/civetweb.h>
#endif

/*
 * Built with ThreadSanitizer: civetweb 1.15, as Debian builds it (without
 * REENTRANT_TIME), formats every response's Date header with gmtime(),
 * whose static result two workers may write at once. The race is
 * civetweb's, not the test's; this tells ThreadSanitizer so.
 */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifdef TEST_TSAN
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) { return "race:gmtime\n"; }
#endif

#define EXAMPLE "orders_civetweb"

#define T_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define P_ID "00f067aa0ba902b7"
#define TP_VALID "00-" T_ID "-" P_ID "-01"

static const http_server ORDERS_CIVETWEB = {
    .example = EXAMPLE,
    .service = "orders-civetweb",
    .conn_logger = NULL, /* the example logs only per request */
};

/* orders_civetweb takes no mode */
static http_case civetweb = {&ORDERS_CIVETWEB, NULL};

/* ---- reading a service's lines (and tests/http_checks.h) ---------------- */

/* Every line of rid carries trace (and no other request's id can: each
 * line has one request_id key). */
static void assert_lines_trace(service *s, const char *rid, const char *trace) {
  for (size_t i = 0; i < s->n; i++) {
    const char *r = str_or_null(s->lines[i], "request_id");
    if (r == NULL || strcmp(r, rid) != 0)
      continue;
    const char *t = str_or_null(s->lines[i], "trace_id");
    if (t == NULL || strcmp(t, trace) != 0)
      fail_msg("line of %s has trace %s, want %s: %s", rid, t ? t : "none",
               trace, s->texts[i]);
  }
}

/* The access line of rid: status, bytes, level, and the usual fields. */
static json_t *check_access(service *s, const char *rid, int status,
                            size_t bytes, const char *level) {
  json_t *a = service_access_line(s, rid);
  if (a == NULL)
    fail_msg("no access line for %s", rid);
  assert_int_equal(json_integer_value(json_object_get(a, "status")), status);
  assert_int_equal(json_integer_value(json_object_get(a, "bytes")), bytes);
  assert_string_equal(str_or_null(a, "level"), service_level(a, level));
  assert_true(json_is_number(json_object_get(a, "duration_ms")));
  assert_true(json_number_value(json_object_get(a, "duration_ms")) >= 0);
  assert_true(is_lower_hex(str_or_null(a, "trace_id"), 32));
  assert_true(is_lower_hex(str_or_null(a, "span_id"), 16));
  assert_non_null(str_or_null(a, "method"));
  assert_non_null(str_or_null(a, "path"));
  return a;
}

/* ---- raw bytes on a socket ---------------------------------------------- */

/*
 * One connection of the harness's raw client (http_raw.h): the requests,
 * then the sending side closed, so that civetweb, which keeps a connection
 * alive, ends it once it has answered them all.
 */
static void raw_str(int port, const char *req, raw_reply *out) {
  raw_exchange_opt(port, req, strlen(req), 1, out);
}

/* ---- the example: the basics -------------------------------------------- */

/*
 * What tests/test_http_conformance.c does not say of this example: the
 * body, the service name, the request's two lines (the handler's and the
 * access line), and the process's own lines, which carry no request.
 */
static void test_get_basic(void **state) {
  (void)state;
  service s;
  http_response r;
  service_start(&s, EXAMPLE, NULL, NULL);
  const char *h[] = {"X-Request-ID: basic-1", NULL};
  http_get(s.port, "/api/orders/42", h, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"id\":42,\"state\":\"shipped\"}");
  service_stop(&s);

  json_t *a = check_access(&s, "basic-1", 200, r.body_len, "info");
  assert_string_equal(str_or_null(a, "service"), "orders-civetweb");
  assert_int_equal(service_count(&s, "request_id", "basic-1"), 2);
  assert_non_null(find_line(&s, "basic-1", "orders", "order loaded"));
  json_t *listening = NULL;
  for (size_t i = 0; i < s.n; i++) {
    const char *m = str_or_null(s.lines[i], "message");
    if (m && (!strcmp(m, "listening") || !strcmp(m, "stopped"))) {
      assert_null(json_object_get(s.lines[i], "request_id"));
      if (!strcmp(m, "listening"))
        listening = s.lines[i];
    }
  }
  assert_non_null(listening);
  assert_int_equal(json_integer_value(json_object_get(listening, "port")),
                   s.port);
  service_free(&s);
}

/* ---- header bytes civetweb handles itself -------------------------------- */

/*
 * What libcurl will not send: bytes that break the header syntax. civetweb
 * refuses most of these requests itself, before begin_request; trail's
 * http_error hook still answers with a new id and writes an access line.
 * The rest reach the middleware, which replaces the id.
 */
static void test_hostile_raw(void **state) {
  (void)state;
  service s;
  static raw_reply rr[8];
  service_start(&s, EXAMPLE, NULL, NULL);
  /* a bare CR inside the value */
  raw_str(s.port,
          "GET /api/orders/1 HTTP/1.1\r\nHost: x\r\n"
          "X-Request-ID: cr\rinjected\r\n\r\n",
          &rr[0]);
  /* a bare LF: civetweb ends the header line there (HTTP allows it), so
   * the id "lf" is valid, and what follows is a header of its own */
  raw_str(s.port,
          "GET /api/orders/1 HTTP/1.1\r\nHost: x\r\n"
          "X-Request-ID: lf\n{\"level\":\"fatal\"}: x\r\n\r\n",
          &rr[1]);
  /* a control byte */
  raw_str(s.port,
          "GET /api/orders/1 HTTP/1.1\r\nHost: x\r\n"
          "X-Request-ID: ctl\x01x\r\n\r\n",
          &rr[2]);
  /* an obsolete line folding (civetweb ignores the continuation) */
  raw_str(s.port,
          "GET /api/orders/1 HTTP/1.1\r\nHost: x\r\n"
          "X-Request-ID: fold\r\n continued\r\nConnection: close\r\n\r\n",
          &rr[3]);
  /* not HTTP at all */
  raw_str(s.port, "\x16\x03\x01garbage\r\n\r\n", &rr[4]);
  /* a header larger than civetweb takes (max_request_size) */
  size_t huge_len = 300 * 1024;
  char *huge = malloc(huge_len + 128);
  assert_non_null(huge);
  int n = snprintf(huge, 128,
                   "GET /api/orders/1 HTTP/1.1\r\nHost: x\r\n"
                   "X-Request-ID: ");
  memset(huge + n, 'h', huge_len);
  memcpy(huge + n + huge_len, "\r\n\r\n", 5);
  raw_exchange_opt(s.port, huge, strlen(huge), 1, &rr[5]);
  free(huge);
  /* a version civetweb does not speak */
  raw_str(s.port,
          "GET /api/orders/1 HTTP/2.0\r\nHost: x\r\n"
          "X-Request-ID: v2-id\r\n\r\n",
          &rr[6]);
  /* a tab inside the value: refused, as a control byte is (the reason
   * the conformance table's SV_REFUSES_CONTROL_BYTES cases skip civetweb) */
  raw_str(s.port,
          "GET /api/orders/1 HTTP/1.1\r\nHost: x\r\n"
          "X-Request-ID: tab\tx\r\n\r\n",
          &rr[7]);
  service_stop(&s);

  for (int i = 0; i < 8; i++) {
    if (rr[i].n < 1)
      fail_msg("case %d: no response", i);
    const char *rid = rr[i].r[0].request_id;
    if (i == 1) {
      assert_string_equal(rid, "lf");
    } else if (i == 3) {
      /* civetweb drops the continuation line: the id is "fold" */
      assert_string_equal(rid, "fold");
    } else if (i == 6) {
      /* civetweb parsed this one whole: the id was valid, and is kept */
      assert_string_equal(rid, "v2-id");
    } else if (!is_uuid(rid)) {
      fail_msg("case %d: status %d, X-Request-ID \"%s\"", i, rr[i].r[0].status,
               rid);
    }
    json_t *a = service_access_line(&s, rid);
    if (a == NULL)
      fail_msg("case %d: no access line for %s", i, rid);
    assert_int_equal(json_integer_value(json_object_get(a, "status")),
                     rr[i].r[0].status);
    assert_int_equal(json_integer_value(json_object_get(a, "bytes")),
                     rr[i].r[0].body_len);
  }
  assert_int_equal(rr[1].r[0].status, 200);
  assert_int_equal(rr[3].r[0].status, 200);
  assert_int_equal(rr[6].r[0].status, 505);
  assert_int_equal(rr[2].r[0].status, 400);
  assert_int_equal(rr[7].r[0].status, 400);
  assert_false(text_anywhere(&s, "injected"));
  assert_false(text_anywhere(&s, "continued"));
  assert_false(text_anywhere(&s, "hhhhhhhhhh"));
  service_free(&s);
}

/* ---- keep-alive: one connection, several requests ------------------------ */

/*
 * civetweb keeps its per-connection data from one kept-alive request to
 * the next (the conformance table checks requests in turn on one
 * connection). Here they are pipelined: written in one go on one socket,
 * so civetweb serves them one after the other on one connection, for sure.
 * The last one is malformed: refused before begin_request, on a
 * connection whose previous request had ids.
 */
static void test_keepalive_pipelined(void **state) {
  (void)state;
  service s;
  raw_reply rr;
  service_start(&s, EXAMPLE, NULL, NULL);
  raw_str(s.port,
          "GET /api/orders/11 HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-1\r\n"
          "X-User-ID: carol\r\ntraceparent: " TP_VALID "\r\n\r\n"
          "GET /api/orders/12 HTTP/1.1\r\nHost: x\r\n\r\n"
          "POST /api/orders HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-3\r\n"
          "Content-Type: application/json\r\nContent-Length: 9\r\n\r\n"
          "{\"a\":[1]}"
          "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-4\r\n\r\n"
          "GET /api/orders/999 HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /api/orders/13 HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n",
          &rr);
  service_stop(&s);

  assert_int_equal(rr.n, 6);
  int want[] = {200, 200, 201, 200, 404, 400};
  for (int i = 0; i < 6; i++)
    assert_int_equal(rr.r[i].status, want[i]);
  assert_string_equal(rr.r[0].request_id, "pipe-1");
  assert_true(is_uuid(rr.r[1].request_id));
  assert_string_equal(rr.r[2].request_id, "pipe-3");
  assert_string_equal(rr.r[3].request_id, "pipe-4");
  assert_true(is_uuid(rr.r[4].request_id));
  assert_true(is_uuid(rr.r[5].request_id));

  json_t *a1 =
      check_access(&s, "pipe-1", 200, (size_t)rr.r[0].body_len, "info");
  assert_string_equal(str_or_null(a1, "trace_id"), T_ID);
  assert_string_equal(str_or_null(a1, "user_id"), "carol");
  assert_lines_trace(&s, "pipe-1", T_ID);
  const char *later[] = {rr.r[1].request_id, rr.r[2].request_id,
                         rr.r[4].request_id, rr.r[5].request_id};
  const int later_status[] = {200, 201, 404, 400};
  for (int i = 0; i < 4; i++) {
    json_t *a = service_access_line(&s, later[i]);
    if (a == NULL)
      fail_msg("no access line for %s", later[i]);
    assert_int_equal(json_integer_value(json_object_get(a, "status")),
                     later_status[i]);
    assert_string_not_equal(str_or_null(a, "trace_id"), T_ID);
    assert_null(json_object_get(a, "user_id"));
    assert_null(json_object_get(a, "parent_span_id"));
    assert_lines_trace(&s, later[i], str_or_null(a, "trace_id"));
  }
  assert_null(service_access_line(&s, "pipe-4")); /* /healthz */
  /* the user and the trace of the first request are on its lines only */
  for (size_t i = 0; i < s.n; i++) {
    const char *u = str_or_null(s.lines[i], "user_id");
    if (u != NULL)
      assert_string_equal(str_or_null(s.lines[i], "request_id"), "pipe-1");
  }
  service_free(&s);
}

/* Where needle first is in text, ignoring case; NULL when it is not. */
static const char *find_ci(const char *text, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = text; *p; p++)
    if (strncasecmp(p, needle, n) == 0)
      return p;
  return NULL;
}

/*
 * Reads one response on fd: the head up to the blank line, then a body of
 * its Content-Length. Returns the bytes read into buf (NUL-terminated), 0
 * when the server closed first or the response does not fit.
 */
static size_t read_response(int fd, char *buf, size_t room) {
  size_t n = 0;
  const char *end = NULL;
  long body = -1;
  for (;;) {
    buf[n] = '\0';
    if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
      const char *cl = find_ci(buf, "\r\nContent-Length: ");
      if (cl == NULL || cl > end)
        return 0;
      body = atol(cl + 18);
    }
    if (end != NULL && n >= (size_t)(end + 4 - buf) + (size_t)body)
      return n;
    if (n + 1 >= room)
      return 0;
    ssize_t r = recv(fd, buf + n, room - 1 - n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 0;
    n += (size_t)r;
  }
}

static double ms_between(const struct timespec *a, const struct timespec *b) {
  return (double)(b->tv_sec - a->tv_sec) * 1e3 +
         (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/*
 * TCP_NODELAY on the service's end of the client's connection fd, read
 * through a copy of the service's socket (pidfd_getfd(), Linux 5.6): 1 or
 * 0, or -1 when this system will not let the test look.
 */
static int server_nodelay(pid_t pid, int client_fd) {
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
  struct sockaddr_in mine, peer;
  socklen_t len = sizeof mine;
  if (getsockname(client_fd, (struct sockaddr *)&mine, &len) != 0)
    return -1;
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0)
    return -1;
  int found = -1;
  for (int target = 0; target < 1024 && found < 0; target++) {
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
    if (fd < 0) {
      if (errno == EBADF)
        continue; /* no such descriptor in the service */
      break;      /* not allowed, or not supported: cannot look */
    }
    len = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
        peer.sin_family == AF_INET && peer.sin_port == mine.sin_port &&
        peer.sin_addr.s_addr == mine.sin_addr.s_addr) {
      int on = 0;
      len = sizeof on;
      if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0)
        found = on != 0;
    }
    close(fd);
  }
  close(pidfd);
  return found;
#else
  (void)pid;
  (void)client_fd;
  return -1;
#endif
}

/*
 * What a client that reuses its connection sees: three GETs on one
 * socket, each sent after the previous response was read to its end
 * (not pipelined: each response is written while the connection is
 * otherwise idle, which is where Nagle's algorithm held civetweb's small
 * writes back for a delayed ACK, about 40 ms a request after the first).
 * Asserted: each is answered, in full and correctly, on the same
 * connection, which stays open, and the service's end of it has
 * TCP_NODELAY (the example's "tcp_nodelay" option; checked where the
 * system lets a parent look at its child's socket). Measured, not
 * asserted (no timing thresholds in the tests): the time to each answer.
 */
static void test_keepalive_sequential(void **state) {
  (void)state;
  enum { N = 3 };
  service s;
  char buf[N][8192];
  size_t got[N] = {0};
  double ms[N] = {0};
  service_start(&s, EXAMPLE, NULL, NULL);
  int fd = raw_connect(s.port);
  int nodelay = -1;
  for (int i = 0; i < N; i++) {
    char req[256];
    snprintf(req, sizeof req,
             "GET /api/orders/%d HTTP/1.1\r\nHost: x\r\n"
             "X-Request-ID: seq-%d\r\n\r\n",
             30 + i, i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(raw_send(fd, req, strlen(req)), 0);
    got[i] = read_response(fd, buf[i], sizeof buf[i]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms[i] = ms_between(&t0, &t1);
    if (got[i] == 0)
      break;
    if (i == 0)
      nodelay = server_nodelay(s.pid, fd);
  }
  /* still open: nothing more to read, and not the end of the stream */
  char more;
  ssize_t after = recv(fd, &more, 1, MSG_DONTWAIT);
  int after_err = errno;
  close(fd);
  /* stopped before any assertion, so that a failure leaves no service */
  service_stop(&s);

  for (int i = 0; i < N; i++) {
    char rid[64], body[64];
    if (got[i] == 0)
      fail_msg("request %d: no complete response on the connection", i);
    snprintf(rid, sizeof rid, "\r\nX-Request-ID: seq-%d\r\n", i);
    snprintf(body, sizeof body, "\r\n\r\n{\"id\":%d,\"state\":\"shipped\"}",
             30 + i);
    size_t bl = strlen(body);
    assert_memory_equal(buf[i], "HTTP/1.1 200 ", 13);
    assert_non_null(find_ci(buf[i], rid));
    assert_non_null(find_ci(buf[i], "\r\nConnection: keep-alive\r\n"));
    assert_true(got[i] >= bl);
    assert_memory_equal(buf[i] + got[i] - bl, body, bl);
  }
  assert_int_equal(after, -1);
  assert_true(after_err == EAGAIN || after_err == EWOULDBLOCK);
  if (nodelay < 0)
    print_message("keep-alive: the service's socket cannot be seen here, "
                  "TCP_NODELAY not checked\n");
  else
    assert_int_equal(nodelay, 1);
  print_message("keep-alive: %d requests on one connection, answered in "
                "%.2f, %.2f, %.2f ms\n",
                N, ms[0], ms[1], ms[2]);

  for (int i = 0; i < N; i++) {
    char rid[16];
    snprintf(rid, sizeof rid, "seq-%d", i);
    json_t *a = service_access_line(&s, rid);
    if (a == NULL)
      fail_msg("no access line for %s", rid);
    assert_int_equal(json_integer_value(json_object_get(a, "status")), 200);
  }
  service_free(&s);
}

/* ---- concurrency --------------------------------------------------------- */

static void test_concurrent(void **state) {
  (void)state;
  enum { N = 64 };
  service s;
  http_job *jobs = calloc(N, sizeof *jobs);
  assert_non_null(jobs);
  service_start(&s, EXAMPLE, NULL, NULL);
  http_concurrent(s.port, "/api/orders/%d?sleep_ms=20", N, jobs);
  service_stop(&s);
  for (int i = 0; i < N; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    assert_int_equal(jobs[i].resp.curl_error, 0);
    assert_int_equal(jobs[i].resp.status, i == 7 ? 503 : 200);
    assert_string_equal(jobs[i].resp.request_id, rid);
  }
  check_isolation(&s, N);
  /* 64 requests, 64 traces */
  for (int i = 0; i < N; i++)
    for (int k = i + 1; k < N; k++) {
      char a[32], b[32];
      snprintf(a, sizeof a, "conc-%d", i);
      snprintf(b, sizeof b, "conc-%d", k);
      assert_string_not_equal(
          str_or_null(service_access_line(&s, a), "trace_id"),
          str_or_null(service_access_line(&s, b), "trace_id"));
    }
  service_free(&s);
  free(jobs);
}

/* ---- stopping ------------------------------------------------------------ */

/*
 * SIGTERM while a handler works (its "sleeping" line, at debug, says it
 * began): the example drains before mg_stop(), which would write nothing
 * more of the response, so the request is answered whole and logged with
 * its real status and bytes; then "stopped", exit 0.
 */
static void test_drain_before_stop(void **state) {
  (void)state;
  service s;
  const char *env[] = {"TRAIL_LEVEL=debug", NULL};
  service_start(&s, EXAMPLE, NULL, env);
  int fd = raw_connect(s.port);
  const char *req = "GET /api/orders/42?sleep_ms=1000 HTTP/1.1\r\nHost: t\r\n"
                    "X-Request-ID: drain-c\r\nConnection: close\r\n\r\n";
  assert_int_equal(raw_send(fd, req, strlen(req)), 0);
  assert_non_null(wait_line(&s, "message", "sleeping"));
  kill(s.pid, SIGTERM);
  json_t *stopping = wait_line(&s, "message", "stopping");
  assert_non_null(stopping);
  assert_int_equal(json_integer_value(json_object_get(stopping, "in_flight")),
                   1);
  raw_response r;
  raw_read_response(fd, &r);
  close(fd);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "drain-c");
  service_stop(&s);
  check_access(&s, "drain-c", 200, r.body_len, "info");
  assert_int_equal(service_count(&s, "message",
                                 "requests still in flight at the "
                                 "drain deadline"),
                   0);
  service_free(&s);
}

#ifdef TRAIL_TEST_HAVE_CIVETWEB
/* ---- in this process: the adapter's API -----------------------------------
 */

static trail_http_config inproc_cfg;
static sem_t gone_started, gone_go, gone_done;
static int conn_marker;

static int h_send_return_1(struct mg_connection *conn, void *cb) {
  (void)cb;
  trail_info(NULL, "in handler");
  trail_civetweb_send(conn, 404, "text/plain", "gone\n", 5);
  return 1; /* the civetweb idiom: "handled" */
}

static int h_raw(struct mg_connection *conn, void *cb) {
  (void)cb;
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nX-Request-ID: %s\r\nContent-Length: 2\r\n"
            "\r\nok",
            trail_http_request_id(trail_civetweb_request(conn)));
  return 200;
}

/* Handlers run on civetweb's threads, where a failed cmocka assertion
 * cannot unwind: they report through their lines instead. */
static int h_built(struct mg_connection *conn, void *cb) {
  (void)cb;
  mg_response_header_start(conn, 202);
  trail_info(NULL, "header added",
             TRAIL_INT("rc", trail_civetweb_header_add(conn)));
  mg_response_header_add(conn, "Content-Length", "11", -1);
  mg_response_header_send(conn);
  trail_civetweb_write(conn, "hello ", 6);
  trail_civetweb_write(conn, "world", 5);
  return 202;
}

static int h_error(struct mg_connection *conn, void *cb) {
  (void)cb;
  trail_warn(NULL, "about to fail");
  mg_send_http_error(conn, 418, "%s", "short and stout");
  return 418;
}

static int h_user(struct mg_connection *conn, void *cb) {
  (void)cb;
  trail_http_request *r = trail_civetweb_request(conn);
  if (r == NULL)
    return trail_civetweb_send(conn, 500, NULL, NULL, 0);
  trail_info(NULL, "before login",
             TRAIL_BOOL("current", trail_http_ctx(r) == trail_ctx_current()),
             TRAIL_BOOL("same_id", !strcmp(trail_http_request_id(r),
                                           trail_http_request_id(
                                               trail_civetweb_request(conn)))));
  trail_info(NULL, "after login",
             TRAIL_INT("rc", trail_http_set_user(r, "user-9")));
  /* the application's connection data is the application's */
  void *had = mg_get_user_connection_data(conn);
  trail_info(NULL, "connection data", TRAIL_BOOL("had", had == &conn_marker));
  mg_set_user_connection_data(conn, &conn_marker);
  return trail_civetweb_send(conn, 200, "text/plain", "hi", 2);
}

static int h_gone(struct mg_connection *conn, void *cb) {
  (void)cb;
  size_t len = 16 << 20;
  char *big = calloc(1, len);
  sem_post(&gone_started);
  sem_wait(&gone_go); /* the client has reset the connection */
  int rc =
      big ? trail_civetweb_send(conn, 200, "application/octet-stream", big, len)
          : trail_civetweb_send(conn, 503, NULL, NULL, 0);
  free(big);
  sem_post(&gone_done);
  return rc;
}

/* Answers once mg_stop() has begun (test_inproc_reply_while_stopping). */
static sem_t stop_started, stop_go;
static int h_stopping(struct mg_connection *conn, void *cb) {
  (void)cb;
  sem_post(&stop_started);
  sem_wait(&stop_go);
  return trail_civetweb_send(conn, 200, "text/plain", "late", 4);
}

static int h_json(struct mg_connection *conn, void *cb) {
  (void)cb;
  return trail_civetweb_send(conn, 200, "application/json", "{\"ok\":true}",
                             11);
}

/* A body longer than the adapter's buffer: 'a' to 'z' over and over. */
enum { BIG_LEN = 20000 };
static int h_big(struct mg_connection *conn, void *cb) {
  (void)cb;
  static char big[BIG_LEN];
  for (size_t i = 0; i < BIG_LEN; i++)
    big[i] = (char)('a' + i % 26);
  return trail_civetweb_send(conn, 200, "application/json", big, BIG_LEN);
}

static int h_twice(struct mg_connection *conn, void *cb) {
  (void)cb;
  int rc = trail_civetweb_send(conn, 201, "text/plain", "first", 5);
  trail_info(NULL, "second send",
             TRAIL_INT("rc", trail_civetweb_send(conn, 500, NULL, "x", 1)));
  return rc;
}

static struct mg_context *inproc_start(int *port) {
  static const char *const skip[] = {"/skip", NULL};
  struct mg_callbacks cb;
  memset(&cb, 0, sizeof cb);
  trail_http_config_init(&inproc_cfg);
  inproc_cfg.user_id_header = "X-User-ID";
  inproc_cfg.skip_paths = skip;
  assert_int_equal(trail_civetweb_callbacks(&cb, &inproc_cfg), 0);
  const char *opts[] = {"listening_ports",
                        "127.0.0.1:0",
                        "num_threads",
                        "4",
                        "enable_keep_alive",
                        "yes",
                        "additional_header",
                        "X-Frame-Options: DENY",
                        NULL};
  struct mg_context *ctx = mg_start(&cb, NULL, opts);
  assert_non_null(ctx);
  mg_set_request_handler(ctx, "/send1", h_send_return_1, NULL);
  mg_set_request_handler(ctx, "/raw", h_raw, NULL);
  mg_set_request_handler(ctx, "/built", h_built, NULL);
  mg_set_request_handler(ctx, "/error", h_error, NULL);
  mg_set_request_handler(ctx, "/user", h_user, NULL);
  mg_set_request_handler(ctx, "/gone", h_gone, NULL);
  mg_set_request_handler(ctx, "/json", h_json, NULL);
  mg_set_request_handler(ctx, "/stopping", h_stopping, NULL);
  mg_set_request_handler(ctx, "/big", h_big, NULL);
  mg_set_request_handler(ctx, "/twice", h_twice, NULL);
  struct mg_server_port p[2];
  assert_true(mg_get_server_ports(ctx, 2, p) >= 1);
  *port = p[0].port;
  return ctx;
}

/* The captured lines of a request id, parsed; n gets their number. */
static json_t *cap_lines_of(const char *rid, size_t *n) {
  json_t *all = json_array();
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    const char *r = str_or_null(j, "request_id");
    if (r && strcmp(r, rid) == 0)
      json_array_append(all, j);
    json_decref(j);
  }
  *n = json_array_size(all);
  return all;
}

static json_t *cap_access(json_t *lines) {
  size_t i;
  json_t *j;
  json_array_foreach(lines, i, j) {
    const char *m = str_or_null(j, "message");
    if (m && !strcmp(m, "request completed"))
      return j;
  }
  return NULL;
}

static void expect_access(const char *rid, int status, uint64_t bytes) {
  size_t n;
  json_t *lines = cap_lines_of(rid, &n);
  json_t *a = cap_access(lines);
  if (a == NULL)
    fail_msg("no access line for %s", rid);
  assert_int_equal(json_integer_value(json_object_get(a, "status")), status);
  assert_int_equal(json_integer_value(json_object_get(a, "bytes")), bytes);
  json_decref(lines);
}

/* The status trail sent wins over a handler's "return 1"; a response the
 * handler builds itself gets the id and its body counted; civetweb's error
 * pages (mg_send_http_error(), and its 404 for a path with no handler) get
 * them too. */
static void test_inproc_status_bytes(void **state) {
  (void)state;
  int port;
  cap_start(TRAIL_LEVEL_INFO);
  struct mg_context *ctx = inproc_start(&port);
  http_response r[5];
  const char *h0[] = {"X-Request-ID: in-send1", NULL};
  http_get(port, "/send1", h0, &r[0]);
  const char *h1[] = {"X-Request-ID: in-raw", NULL};
  http_get(port, "/raw", h1, &r[1]);
  const char *h2[] = {"X-Request-ID: in-built", NULL};
  http_get(port, "/built", h2, &r[2]);
  const char *h3[] = {"X-Request-ID: in-error", NULL};
  http_get(port, "/error", h3, &r[3]);
  const char *h4[] = {"X-Request-ID: in-nohandler", NULL};
  http_get(port, "/no/handler?q=1", h4, &r[4]);
  mg_stop(ctx);

  const char *rid[] = {"in-send1", "in-raw", "in-built", "in-error",
                       "in-nohandler"};
  const long status[] = {404, 200, 202, 418, 404};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(r[i].curl_error, 0);
    assert_int_equal(r[i].status, status[i]);
    assert_string_equal(r[i].request_id, rid[i]);
  }
  assert_string_equal(r[0].body, "gone\n");
  assert_string_equal(r[2].body, "hello world");
  expect_access("in-send1", 404, 5);
  expect_access("in-raw", 200, 0); /* written past the adapter: not seen */
  expect_access("in-built", 202, 11);
  expect_access("in-error", 418, r[3].body_len);
  /* civetweb's own 404, for a path no handler takes */
  assert_true(r[4].body_len > 0);
  expect_access("in-nohandler", 404, r[4].body_len);
  assert_non_null(strstr(r[3].body, "short and stout"));
  size_t n;
  json_t *lines = cap_lines_of("in-send1", &n);
  assert_int_equal(n, 2); /* "in handler" and the access line */
  json_decref(lines);
  lines = cap_lines_of("in-error", &n);
  assert_int_equal(n, 2);
  json_decref(lines);
  lines = cap_lines_of("in-built", &n);
  assert_int_equal(n, 2);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(lines, 0), "rc")), 0);
  json_decref(lines);
  assert_null(trail_ctx_current());
  cap_stop();
}

/* trail_civetweb_request() and trail_http_set_user() inside a handler;
 * the application's connection data, untouched by trail, kept across a
 * kept-alive connection, while the ids are not. */
static void test_inproc_user_conn_data(void **state) {
  (void)state;
  int port;
  raw_reply rr;
  cap_start(TRAIL_LEVEL_INFO);
  struct mg_context *ctx = inproc_start(&port);
  raw_str(port,
          "GET /user HTTP/1.1\r\nHost: x\r\nX-Request-ID: u-1\r\n\r\n"
          "GET /user HTTP/1.1\r\nHost: x\r\nX-Request-ID: u-2\r\n"
          "X-User-ID: header-user\r\n\r\n"
          "GET /user HTTP/1.1\r\nHost: x\r\n\r\n",
          &rr);
  mg_stop(ctx);
  assert_int_equal(rr.n, 3);
  assert_string_equal(rr.r[0].request_id, "u-1");
  assert_string_equal(rr.r[1].request_id, "u-2");
  assert_true(is_uuid(rr.r[2].request_id));
  for (int i = 0; i < 3; i++) {
    size_t n;
    json_t *lines = cap_lines_of(rr.r[i].request_id, &n);
    assert_int_equal(n, 4);
    size_t k;
    json_t *j;
    json_array_foreach(lines, k, j) {
      const char *m = str_or_null(j, "message");
      const char *u = str_or_null(j, "user_id");
      if (!strcmp(m, "before login")) {
        assert_true(json_is_true(json_object_get(j, "current")));
        assert_true(json_is_true(json_object_get(j, "same_id")));
        if (i == 1)
          assert_string_equal(u, "header-user");
        else
          assert_null(u);
      } else {
        assert_string_equal(u, "user-9");
      }
      if (!strcmp(m, "after login"))
        assert_int_equal(json_integer_value(json_object_get(j, "rc")), 0);
      if (!strcmp(m, "connection data"))
        assert_true(json_is_true(json_object_get(j, "had")) == (i > 0));
    }
    json_decref(lines);
  }
  cap_stop();
}

/* A client that resets the connection before the body: 499. */
static void test_inproc_client_gone(void **state) {
  (void)state;
  int port;
  cap_start(TRAIL_LEVEL_INFO);
  sem_init(&gone_started, 0, 0);
  sem_init(&gone_go, 0, 0);
  sem_init(&gone_done, 0, 0);
  struct mg_context *ctx = inproc_start(&port);
  int fd = raw_connect(port);
  const char *req =
      "GET /gone HTTP/1.1\r\nHost: x\r\nX-Request-ID: gone-1\r\n\r\n";
  raw_send(fd, req, strlen(req));
  sem_wait(&gone_started);
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd); /* RST */
  sem_post(&gone_go);
  /* mg_stop() only once the write has failed: civetweb also fails writes
   * while it stops, which the adapter does not count as a client gone */
  sem_wait(&gone_done);
  mg_stop(ctx);
  size_t n;
  json_t *lines = cap_lines_of("gone-1", &n);
  json_t *a = cap_access(lines);
  assert_non_null(a);
  assert_int_equal(json_integer_value(json_object_get(a, "status")),
                   TRAIL_HTTP_CLIENT_GONE);
  assert_true(json_is_true(json_object_get(a, "client_gone")));
  json_decref(lines);
  sem_destroy(&gone_started);
  sem_destroy(&gone_go);
  sem_destroy(&gone_done);
  cap_stop();
}

static void *stop_server(void *ctx) {
  mg_stop(ctx);
  return NULL;
}

/*
 * A handler that answers after mg_stop() has raised civetweb's stop flag:
 * civetweb writes none of it, and the access line says 503 (the service
 * stopped first) with no bytes, not the 200 that never went out. The flag
 * is known up once connecting fails: civetweb closes its listening socket
 * when it sees the flag, and waits for this handler before going on.
 */
static void test_inproc_reply_while_stopping(void **state) {
  (void)state;
  int port;
  cap_start(TRAIL_LEVEL_INFO);
  sem_init(&stop_started, 0, 0);
  sem_init(&stop_go, 0, 0);
  struct mg_context *ctx = inproc_start(&port);
  int fd = raw_connect(port);
  const char *req =
      "GET /stopping HTTP/1.1\r\nHost: x\r\nX-Request-ID: stop-1\r\n\r\n";
  raw_send(fd, req, strlen(req));
  sem_wait(&stop_started);
  pthread_t stopper;
  assert_int_equal(pthread_create(&stopper, NULL, stop_server, ctx), 0);
  for (;;) { /* polled: each try is one connection, so not back to back */
    int err, probe = raw_connect_rc(port, &err);
    if (probe < 0)
      break;
    close(probe);
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  sem_post(&stop_go);
  assert_int_equal(pthread_join(stopper, NULL), 0);
  size_t got;
  free(raw_read_all(fd, &got));
  close(fd);
  assert_int_equal(got, 0); /* nothing was written */
  expect_access("stop-1", 503, 0);
  sem_destroy(&stop_started);
  sem_destroy(&stop_go);
  cap_stop();
}

static int other_begin(struct mg_connection *conn) {
  (void)conn;
  return 0;
}

/* The installer's contract, lookups outside a request, civetweb's own
 * messages as lines. */
static void test_inproc_api(void **state) {
  (void)state;
  struct mg_callbacks cb;
  assert_int_equal(trail_civetweb_callbacks(NULL, NULL), -EINVAL);
  memset(&cb, 0, sizeof cb);
  cb.begin_request = other_begin;
  assert_int_equal(trail_civetweb_callbacks(&cb, NULL), -EEXIST);
  assert_ptr_equal(cb.begin_request, other_begin);
  assert_null(cb.end_request);
  assert_null(cb.http_error);
  assert_null(cb.log_message);

  assert_null(trail_civetweb_request(NULL));
  assert_string_equal(trail_http_request_id(trail_civetweb_request(NULL)), "");
  assert_int_equal(trail_civetweb_send(NULL, 200, NULL, NULL, 0), -EINVAL);
  assert_int_equal(trail_civetweb_header_add(NULL), -ENOENT);
  trail_civetweb_end(NULL, 200); /* nothing in flight: nothing happens */

  /* a bad option: civetweb says so through log_message */
  cap_start(TRAIL_LEVEL_INFO);
  memset(&cb, 0, sizeof cb);
  assert_int_equal(trail_civetweb_callbacks(&cb, NULL), 0);
  assert_non_null(cb.log_message);
  const char *opts[] = {"listening_ports", "127.0.0.1:0", "no_such_option", "1",
                        NULL};
  assert_null(mg_start(&cb, NULL, opts));
  int seen = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (!strcmp(str_or_null(j, "logger"), "http") &&
        !strcmp(str_or_null(j, "level"), "warn"))
      seen = 1;
    json_decref(j);
  }
  assert_true(seen);
  cap_stop();
}

/* ---- one write a response ------------------------------------------------
 *
 * civetweb sends with send(); this test program defines send() itself, in
 * front of libc's (civetweb's call goes to the program's definition),
 * counts the calls made on civetweb's worker threads and passes every one
 * to the kernel unchanged. The test's own clients run on the main thread
 * and are not counted.
 */
static atomic_long worker_sends;
static pid_t main_tid;

ssize_t send(int fd, const void *buf, size_t len, int flags) {
  if (main_tid != 0 && (pid_t)syscall(SYS_gettid) != main_tid)
    atomic_fetch_add(&worker_sends, 1);
  return (ssize_t)syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

/* A response as read from the socket: status line, headers in order,
 * body. */
typedef struct parsed {
  char status_line[128];
  int nh;
  char name[24][64];
  char value[24][256];
  char body[65536];
  size_t body_len;
  long sends; /* the worker's send() calls for it */
} parsed;

/* The value of header name (any case), and how many times it came. */
static const char *parsed_header(const parsed *p, const char *name, int *n) {
  const char *v = NULL;
  *n = 0;
  for (int i = 0; i < p->nh; i++)
    if (strcasecmp(p->name[i], name) == 0 && (*n)++ == 0)
      v = p->value[i];
  return v;
}

/* Splits the head in buf (up to and with its blank line) into p. */
static void parse_head(char *buf, parsed *p) {
  char *line = buf, *eol = strstr(line, "\r\n");
  assert_non_null(eol);
  *eol = '\0';
  assert_true(strlen(line) < sizeof p->status_line);
  strcpy(p->status_line, line);
  p->nh = 0;
  for (line = eol + 2; (eol = strstr(line, "\r\n")) != line; line = eol + 2) {
    assert_non_null(eol);
    *eol = '\0';
    char *colon = strchr(line, ':');
    assert_non_null(colon);
    assert_true(p->nh < 24);
    *colon = '\0';
    snprintf(p->name[p->nh], sizeof p->name[0], "%s", line);
    snprintf(p->value[p->nh], sizeof p->value[0], "%s", colon + 2);
    assert_int_equal(colon[1], ' ');
    p->nh++;
  }
}

/*
 * Sends req on fd and reads one response: the head, then a body of its
 * Content-Length unless head_only (the answer to a HEAD). Counts the
 * worker's sends for it.
 */
static void exchange(int fd, const char *req, int head_only, parsed *p) {
  static char buf[sizeof p->body + 8192];
  long before = atomic_load(&worker_sends);
  assert_int_equal(raw_send(fd, req, strlen(req)), 0);
  size_t n = 0;
  char *end = NULL;
  while (end == NULL) {
    ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
    assert_true(r > 0);
    n += (size_t)r;
    buf[n] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  size_t head = (size_t)(end + 4 - buf), want = 0;
  memcpy(p->body, end + 4, n - head);
  p->body_len = n - head;
  parse_head(buf, p);
  int k;
  const char *cl = parsed_header(p, "Content-Length", &k);
  if (cl != NULL && !head_only)
    want = (size_t)strtoul(cl, NULL, 10);
  assert_true(want <= sizeof p->body);
  while (p->body_len < want) {
    ssize_t r = recv(fd, p->body + p->body_len, want - p->body_len, 0);
    assert_true(r > 0);
    p->body_len += (size_t)r;
  }
  assert_int_equal(p->body_len, want); /* nothing past the response */
  p->sends = atomic_load(&worker_sends) - before;
}

/* The header names of p, in order, are exactly names (NULL-ended). */
static void assert_header_names(const parsed *p, const char *const *names) {
  int i = 0;
  for (; names[i] != NULL; i++) {
    if (i >= p->nh)
      fail_msg("header %d: none, want %s", i, names[i]);
    if (strcmp(p->name[i], names[i]) != 0)
      fail_msg("header %d: %s, want %s", i, p->name[i], names[i]);
  }
  assert_int_equal(p->nh, i);
}

/* Date is an IMF-fixdate between t0 and t1 (the seconds around the
 * exchange). */
static void assert_date(const parsed *p, time_t t0, time_t t1) {
  int n;
  const char *d = parsed_header(p, "Date", &n);
  assert_int_equal(n, 1);
  assert_int_equal(strlen(d), 29);
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  assert_non_null(end);
  assert_int_equal(*end, '\0');
  time_t t = timegm(&tm);
  assert_true(t >= t0 && t <= t1);
  char again[64];
  strftime(again, sizeof again, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  assert_string_equal(again, d); /* two-digit day, English names */
}

static void assert_one(const parsed *p, const char *name, const char *want) {
  int n;
  const char *v = parsed_header(p, name, &n);
  if (n != 1)
    fail_msg("%s: %d times, want once", name, n);
  assert_string_equal(v, want);
}

static const char *const ONE_WRITE_HEADERS[] = {"X-Request-ID",
                                                "X-Frame-Options",
                                                "Content-Type",
                                                "Content-Length",
                                                "Date",
                                                "Connection",
                                                NULL};

/*
 * trail_civetweb_send() on one kept-alive connection: a GET, a HEAD (the
 * GET's Content-Length, no body), an HTTP/1.0 request asking for
 * keep-alive, then one asking to close. Each response is one send(),
 * has exactly the headers of ONE_WRITE_HEADERS in that order (the
 * server's additional_header among them), X-Request-ID once, a Date of
 * now, and the access line counts the body alone.
 */
static void test_inproc_one_write(void **state) {
  (void)state;
  int port;
  static parsed p[4];
  cap_start(TRAIL_LEVEL_INFO);
  struct mg_context *ctx = inproc_start(&port);
  int fd = raw_connect(port);
  time_t t0 = time(NULL);
  exchange(fd, "GET /json HTTP/1.1\r\nHost: x\r\nX-Request-ID: ow-1\r\n\r\n", 0,
           &p[0]);
  exchange(fd, "HEAD /json HTTP/1.1\r\nHost: x\r\nX-Request-ID: ow-2\r\n\r\n",
           1, &p[1]);
  exchange(fd,
           "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n"
           "X-Request-ID: ow-3\r\n\r\n",
           0, &p[2]);
  exchange(fd,
           "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           "X-Request-ID: ow-4\r\n\r\n",
           0, &p[3]);
  time_t t1 = time(NULL);
  char more;
  ssize_t after = recv(fd, &more, 1, 0); /* civetweb closes: end of stream */
  close(fd);
  mg_stop(ctx);

  const char *status[] = {"HTTP/1.1 200 OK", "HTTP/1.1 200 OK",
                          "HTTP/1.0 200 OK", "HTTP/1.1 200 OK"};
  const char *conn[] = {"keep-alive", "keep-alive", "keep-alive", "close"};
  for (int i = 0; i < 4; i++) {
    char rid[16];
    snprintf(rid, sizeof rid, "ow-%d", i + 1);
    assert_string_equal(p[i].status_line, status[i]);
    assert_header_names(&p[i], ONE_WRITE_HEADERS);
    assert_one(&p[i], "X-Request-ID", rid);
    assert_one(&p[i], "X-Frame-Options", "DENY");
    assert_one(&p[i], "Content-Type", "application/json");
    assert_one(&p[i], "Content-Length", "11");
    assert_one(&p[i], "Connection", conn[i]);
    assert_date(&p[i], t0, t1);
    assert_int_equal(p[i].sends, 1);
    assert_int_equal(p[i].body_len, i == 1 ? 0 : 11);
    if (i != 1)
      assert_memory_equal(p[i].body, "{\"ok\":true}", 11);
    expect_access(rid, 200, i == 1 ? 0 : 11);
  }
  assert_int_equal(after, 0);
  cap_stop();
}

/*
 * A body that does not fit the adapter's 16 KiB buffer with its head: the
 * head, then the body (two sends), the access line counting the body
 * alone; a second trail_civetweb_send() is refused with -EALREADY and
 * sends nothing; civetweb's error page is one send too, with its cache
 * headers, and closes the connection.
 */
static void test_inproc_big_twice_error(void **state) {
  (void)state;
  int port;
  static parsed p[3];
  cap_start(TRAIL_LEVEL_INFO);
  struct mg_context *ctx = inproc_start(&port);
  int fd = raw_connect(port);
  exchange(fd, "GET /big HTTP/1.1\r\nHost: x\r\nX-Request-ID: ow-big\r\n\r\n",
           0, &p[0]);
  exchange(fd,
           "GET /twice HTTP/1.1\r\nHost: x\r\nX-Request-ID: ow-twice\r\n\r\n",
           0, &p[1]);
  exchange(fd, "GET /error HTTP/1.1\r\nHost: x\r\nX-Request-ID: ow-err\r\n\r\n",
           0, &p[2]);
  char more;
  ssize_t after = recv(fd, &more, 1, 0);
  close(fd);
  mg_stop(ctx);

  assert_header_names(&p[0], ONE_WRITE_HEADERS);
  assert_int_equal(p[0].body_len, BIG_LEN);
  for (size_t i = 0; i < BIG_LEN; i++)
    if (p[0].body[i] != (char)('a' + i % 26))
      fail_msg("body byte %zu differs", i);
  assert_int_equal(p[0].sends, 2);
  expect_access("ow-big", 200, BIG_LEN);

  assert_string_equal(p[1].status_line, "HTTP/1.1 201 Created");
  assert_int_equal(p[1].sends, 1);
  assert_memory_equal(p[1].body, "first", 5);
  expect_access("ow-twice", 201, 5);
  size_t n;
  json_t *lines = cap_lines_of("ow-twice", &n);
  json_t *second = json_array_get(lines, 0);
  assert_string_equal(str_or_null(second, "message"), "second send");
  assert_int_equal(json_integer_value(json_object_get(second, "rc")),
                   -EALREADY);
  json_decref(lines);

  static const char *const error_headers[] = {
      "X-Request-ID",    "Cache-Control",
      "Expires",         "Pragma",
      "X-Frame-Options", "Content-Type",
      "Content-Length",  "Date",
      "Connection",      NULL};
  assert_string_equal(p[2].status_line, "HTTP/1.1 418 I am a teapot");
  assert_header_names(&p[2], error_headers);
  assert_one(&p[2], "X-Request-ID", "ow-err");
  assert_one(&p[2], "Connection", "close");
  assert_int_equal(p[2].sends, 1);
  expect_access("ow-err", 418, p[2].body_len);
  assert_int_equal(after, 0);
  cap_stop();
}
#endif /* TRAIL_TEST_HAVE_CIVETWEB */

int main(void) {
#ifdef TRAIL_TEST_HAVE_CIVETWEB
  main_tid = (pid_t)syscall(SYS_gettid);
#endif
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_basic),
      cmocka_unit_test(test_hostile_raw),
      cmocka_unit_test(test_keepalive_pipelined),
      cmocka_unit_test(test_keepalive_sequential),
      cmocka_unit_test(test_concurrent),
      cmocka_unit_test(test_drain_before_stop),
      HTTP_SCENARIO("test_sigint", scenario_sigint, &civetweb),
      HTTP_SCENARIO("test_buffered", scenario_buffered, &civetweb),
      HTTP_SCENARIO("test_state_reused", scenario_state_reused, &civetweb),
#ifdef TRAIL_TEST_HAVE_CIVETWEB
      cmocka_unit_test(test_inproc_status_bytes),
      cmocka_unit_test(test_inproc_user_conn_data),
      cmocka_unit_test(test_inproc_client_gone),
      cmocka_unit_test(test_inproc_reply_while_stopping),
      cmocka_unit_test(test_inproc_api),
      cmocka_unit_test(test_inproc_one_write),
      cmocka_unit_test(test_inproc_big_twice_error),
#endif
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
