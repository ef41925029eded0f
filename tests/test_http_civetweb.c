/*
 * The civetweb adapter (include/trail/civetweb.h) and its example service,
 * orders_civetweb.
 *
 * Two halves. The first starts the example on a loopback port and talks to
 * it as any client would, with libcurl and, for what libcurl will not send
 * (a bare CR in a header, a control byte, a request civetweb refuses,
 * pipelined requests), with raw bytes on a socket. The second, built when
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
#include "http_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#ifdef TRAIL_TEST_HAVE_CIVETWEB
#include <semaphore.h>

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

/* ---- reading a service's lines ------------------------------------------ */

static const char *str_of(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return v && json_is_string(v) ? json_string_value(v) : NULL;
}

/* The first line with that request id, logger and message (NULL: any). */
static json_t *find_line(service *s, const char *rid, const char *logger,
                         const char *message) {
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    const char *r = str_of(j, "request_id");
    const char *l = str_of(j, "logger");
    const char *m = str_of(j, "message");
    if (r && strcmp(r, rid) == 0 && (!logger || (l && !strcmp(l, logger))) &&
        (!message || (m && !strcmp(m, message))))
      return j;
  }
  return NULL;
}

static size_t lines_of(service *s, const char *rid) {
  return service_count(s, "request_id", rid);
}

/* Whether any line, as written, contains needle. */
static int any_text_has(service *s, const char *needle) {
  for (size_t i = 0; i < s->n; i++)
    if (strstr(s->texts[i], needle) != NULL)
      return 1;
  return 0;
}

static int is_uuid(const char *s) {
  if (s == NULL || strlen(s) != 36)
    return 0;
  for (int i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
      return 0;
  }
  return 1;
}

static int is_hex(const char *s, size_t len) {
  if (s == NULL || strlen(s) != len)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!strchr("0123456789abcdef", s[i]))
      return 0;
  return 1;
}

/* Every line of rid carries trace (and no other request's id can: each
 * line has one request_id key). */
static void assert_lines_trace(service *s, const char *rid, const char *trace) {
  for (size_t i = 0; i < s->n; i++) {
    const char *r = str_of(s->lines[i], "request_id");
    if (r == NULL || strcmp(r, rid) != 0)
      continue;
    const char *t = str_of(s->lines[i], "trace_id");
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
  assert_string_equal(str_of(a, "level"), level);
  assert_true(json_is_number(json_object_get(a, "duration_ms")));
  assert_true(json_number_value(json_object_get(a, "duration_ms")) >= 0);
  assert_true(is_hex(str_of(a, "trace_id"), 32));
  assert_true(is_hex(str_of(a, "span_id"), 16));
  assert_non_null(str_of(a, "method"));
  assert_non_null(str_of(a, "path"));
  return a;
}

/* ---- raw bytes on a socket ---------------------------------------------- */

#define RAW_MAX 16

typedef struct raw_reply {
  int n;                  /* responses read */
  int status[RAW_MAX];    /* their status codes */
  char rid[RAW_MAX][160]; /* their X-Request-ID ("" when none) */
  long body_len[RAW_MAX]; /* their Content-Length (-1 when none) */
} raw_reply;

static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  /* Not for synchronisation: a bound on a test that would hang. */
  struct timeval tv = {60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void send_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return; /* the server closed: what it answered is still read */
    p += w;
    len -= (size_t)w;
  }
}

/* Parses the responses in buf: status lines, X-Request-ID, Content-Length,
 * skipping each body by its length. */
static void raw_parse(const char *buf, size_t len, raw_reply *out) {
  size_t at = 0;
  memset(out, 0, sizeof *out);
  /* "HTTP/": civetweb answers in the version the request named */
  while (at + 12 <= len && out->n < RAW_MAX &&
         strncmp(buf + at, "HTTP/", 5) == 0 && buf[at + 8] == ' ') {
    int k = out->n++;
    out->status[k] = atoi(buf + at + 9);
    out->body_len[k] = -1;
    const char *end = NULL;
    for (size_t i = at; i + 4 <= len; i++)
      if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
        end = buf + i;
        break;
      }
    if (end == NULL)
      return;
    for (const char *p = buf + at; p < end;) {
      const char *eol = strstr(p, "\r\n");
      if (eol == NULL || eol > end)
        eol = end;
      if (strncasecmp(p, "X-Request-ID: ", 14) == 0) {
        size_t n = (size_t)(eol - p - 14);
        if (n >= sizeof out->rid[k])
          n = sizeof out->rid[k] - 1;
        memcpy(out->rid[k], p + 14, n);
        out->rid[k][n] = '\0';
      } else if (strncasecmp(p, "Content-Length: ", 16) == 0) {
        out->body_len[k] = atol(p + 16);
      }
      p = eol + 2;
    }
    at = (size_t)(end - buf) + 4;
    if (out->body_len[k] > 0)
      at += (size_t)out->body_len[k];
  }
}

/*
 * Sends req (len bytes) on a new connection, ends the sending side, and
 * reads until the server closes: every response the server wrote.
 */
static void raw_exchange(int port, const char *req, size_t len,
                         raw_reply *out) {
  int fd = raw_connect(port);
  size_t room = 1 << 16, n = 0;
  char *buf = malloc(room);
  assert_non_null(buf);
  send_all(fd, req, len);
  shutdown(fd, SHUT_WR);
  for (;;) {
    if (n == room) {
      room *= 2;
      buf = realloc(buf, room);
      assert_non_null(buf);
    }
    ssize_t r = recv(fd, buf + n, room - n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  raw_parse(buf, n, out);
  free(buf);
}

static void raw_str(int port, const char *req, raw_reply *out) {
  raw_exchange(port, req, strlen(req), out);
}

/* ---- the example: the basics -------------------------------------------- */

static void test_get_basic(void **state) {
  (void)state;
  service s;
  http_response r;
  service_start(&s, EXAMPLE, NULL, NULL);
  const char *h[] = {"X-Request-ID: basic-1", "X-User-ID: user-4711", NULL};
  http_get(s.port, "/api/orders/42?token=secret", h, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "basic-1");
  assert_string_equal(r.body, "{\"id\":42,\"state\":\"shipped\"}");
  service_stop(&s);

  json_t *handler = find_line(&s, "basic-1", "orders", "order loaded");
  assert_non_null(handler);
  json_t *a = check_access(&s, "basic-1", 200, r.body_len, "info");
  assert_string_equal(str_of(a, "method"), "GET");
  assert_string_equal(str_of(a, "path"), "/api/orders/42");
  assert_string_equal(str_of(a, "remote_addr"), "127.0.0.1");
  assert_string_equal(str_of(a, "service"), "orders-civetweb");
  assert_null(json_object_get(a, "parent_span_id"));
  /* both lines: the same request, user and trace */
  assert_string_equal(str_of(handler, "user_id"), "user-4711");
  assert_string_equal(str_of(a, "user_id"), "user-4711");
  assert_string_equal(str_of(handler, "trace_id"), str_of(a, "trace_id"));
  assert_string_equal(str_of(handler, "span_id"), str_of(a, "span_id"));
  assert_int_equal(lines_of(&s, "basic-1"), 2);
  assert_false(any_text_has(&s, "secret")); /* the query stays out */
  /* the process's own lines carry no request */
  json_t *listening = NULL;
  for (size_t i = 0; i < s.n; i++) {
    const char *m = str_of(s.lines[i], "message");
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

/* Each status the routes give, the access line's level and bytes; the
 * paths whose access line is skipped. */
/*
 * An absolute-form target (RFC 9112 section 3.2.2) is logged by its path;
 * the query stays out. civetweb 1.15 serves one only when it names the
 * server itself (its port, and its authentication_domain, by default
 * "mydomain.com"); any other it drops without a reply or a hook.
 */
static void test_absolute_form(void **state) {
  (void)state;
  service s;
  raw_reply r;
  char req[512];
  service_start(&s, EXAMPLE, NULL, NULL);
  snprintf(req, sizeof req,
           "GET http://mydomain.com:%d/api/orders/42?token=s3cr3t HTTP/1.1\r\n"
           "Host: mydomain.com\r\nX-Request-ID: abs-1\r\n"
           "Connection: close\r\n\r\n",
           s.port);
  raw_str(s.port, req, &r);
  service_stop(&s);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status[0], 200);
  assert_string_equal(r.rid[0], "abs-1");
  json_t *a = check_access(&s, "abs-1", 200, (size_t)r.body_len[0], "info");
  assert_string_equal(str_of(a, "method"), "GET");
  assert_string_equal(str_of(a, "path"), "/api/orders/42");
  assert_false(any_text_has(&s, "s3cr3t"));
  service_free(&s);
}

static void test_statuses(void **state) {
  (void)state;
  service s;
  http_response r[8];
  service_start(&s, EXAMPLE, NULL, NULL);
  const char *h0[] = {"X-Request-ID: st-201", NULL};
  http_request(s.port, "POST", "/api/orders", h0, "{\"sku\":991,\"qty\":2}",
               &r[0]);
  const char *h1[] = {"X-Request-ID: st-400", NULL};
  http_request(s.port, "POST", "/api/orders", h1, "[1,2", &r[1]);
  const char *h2[] = {"X-Request-ID: st-404", NULL};
  http_get(s.port, "/api/orders/999", h2, &r[2]);
  const char *h3[] = {"X-Request-ID: st-503", NULL};
  http_get(s.port, "/api/orders/7", h3, &r[3]);
  const char *h4[] = {"X-Request-ID: st-no-route", NULL};
  http_get(s.port, "/no/handler/here?x=1", h4, &r[4]);
  const char *h5[] = {"X-Request-ID: st-health", NULL};
  http_get(s.port, "/healthz", h5, &r[5]);
  http_get(s.port, "/api/orders/5", NULL, &r[6]);
  const char *h7[] = {"X-Request-ID: st-metrics", NULL};
  http_get(s.port, "/metrics", h7, &r[7]);
  /* a chunked body is read whole too */
  raw_reply chunked;
  raw_str(s.port,
          "POST /api/orders HTTP/1.1\r\nHost: x\r\nX-Request-ID: st-chunked\r\n"
          "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
          "Connection: close\r\n\r\n"
          "5\r\n{\"a\":\r\n4\r\n[1]}\r\n0\r\n\r\n",
          &chunked);
  service_stop(&s);

  long want[] = {201, 400, 404, 503, 404, 200, 200, 200};
  for (int i = 0; i < 8; i++) {
    assert_int_equal(r[i].curl_error, 0);
    assert_int_equal(r[i].status, want[i]);
  }
  assert_string_equal(r[0].request_id, "st-201");
  check_access(&s, "st-201", 201, r[0].body_len, "info");
  assert_non_null(find_line(&s, "st-201", "orders", "order created"));
  check_access(&s, "st-400", 400, r[1].body_len, "warn");
  assert_non_null(find_line(&s, "st-400", "orders", "invalid order body"));
  check_access(&s, "st-404", 404, r[2].body_len, "warn");
  check_access(&s, "st-503", 503, r[3].body_len, "error");
  assert_non_null(find_line(&s, "st-503", "db", "query timed out"));
  /* no such route: the path alone, without its query */
  assert_string_equal(r[4].request_id, "st-no-route");
  json_t *a = check_access(&s, "st-no-route", 404, r[4].body_len, "warn");
  assert_string_equal(str_of(a, "path"), "/no/handler/here");
  assert_non_null(find_line(&s, "st-no-route", "orders", "no such route"));
  assert_int_equal(chunked.n, 1);
  assert_int_equal(chunked.status[0], 201);
  assert_string_equal(chunked.rid[0], "st-chunked");
  json_t *created = find_line(&s, "st-chunked", "orders", "order created");
  assert_non_null(created);
  assert_int_equal(
      json_integer_value(json_array_get(
          json_object_get(json_object_get(created, "order"), "a"), 0)),
      1);
  /* /metrics: answered, echoed, no access line */
  assert_string_equal(r[7].request_id, "st-metrics");
  assert_null(service_access_line(&s, "st-metrics"));
  /* /healthz: answered, echoed, no access line */
  assert_string_equal(r[5].request_id, "st-health");
  assert_string_equal(r[5].body, "ok\n");
  assert_null(service_access_line(&s, "st-health"));
  /* no X-Request-ID: a new UUID, echoed, on the request's lines */
  assert_true(is_uuid(r[6].request_id));
  check_access(&s, r[6].request_id, 200, r[6].body_len, "info");
  assert_non_null(find_line(&s, r[6].request_id, "orders", "order loaded"));
  service_free(&s);
}

/* ---- X-Request-ID ------------------------------------------------------- */

/* Sends one header line with libcurl; the request id must be a new UUID,
 * echoed, on the access line, and the sent value on no line. */
static void expect_replaced(service *s, const char *header, const char *sent,
                            char *rid_out) {
  http_response r;
  const char *h[] = {header, NULL};
  http_get(s->port, "/api/orders/1", h, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  if (!is_uuid(r.request_id))
    fail_msg("X-Request-ID %.40s... answered with %s", sent, r.request_id);
  strcpy(rid_out, r.request_id);
}

static void test_request_id(void **state) {
  (void)state;
  service s;
  http_response r;
  char rid[8][64];
  size_t big_len = 64 * 1024;
  char *big = malloc(big_len + 32);
  assert_non_null(big);
  strcpy(big, "X-Request-ID: ");
  memset(big + 14, 'a', big_len);
  big[14 + big_len] = '\0';

  service_start(&s, EXAMPLE, NULL, NULL);
  /* valid ones are kept: the full alphabet, and 128 characters */
  const char *ok1[] = {"X-Request-ID: Req_1.2:3-x", NULL};
  http_get(s.port, "/api/orders/1", ok1, &r);
  assert_string_equal(r.request_id, "Req_1.2:3-x");
  char long_ok[160] = "X-Request-ID: ";
  memset(long_ok + 14, 'k', 128);
  long_ok[14 + 128] = '\0';
  const char *ok2[] = {long_ok, NULL};
  http_get(s.port, "/api/orders/1", ok2, &r);
  assert_string_equal(r.request_id, long_ok + 14);

  expect_replaced(&s, "X-Request-ID: has space", "has space", rid[0]);
  expect_replaced(&s, "X-Request-ID: caf\xc3\xa9-\xff\xfe", "caf", rid[1]);
  expect_replaced(&s, "X-Request-ID: quote\"brace{", "quote", rid[2]);
  char too_long[200] = "X-Request-ID: ";
  memset(too_long + 14, 'z', 129);
  too_long[14 + 129] = '\0';
  expect_replaced(&s, too_long, "zzzz", rid[3]);
  expect_replaced(&s, big, "aaaa", rid[4]);
  /* sent twice: ambiguous, replaced */
  const char *twice[] = {"X-Request-ID: twice-a", "X-Request-ID: twice-b",
                         NULL};
  http_get(s.port, "/api/orders/1", twice, &r);
  assert_true(is_uuid(r.request_id));
  strcpy(rid[5], r.request_id);
  service_stop(&s);

  assert_non_null(service_access_line(&s, "Req_1.2:3-x"));
  assert_non_null(service_access_line(&s, long_ok + 14));
  for (int i = 0; i < 6; i++) {
    check_access(&s, rid[i], 200, 26, "info");
    assert_non_null(find_line(&s, rid[i], "orders", "order loaded"));
  }
  assert_false(any_text_has(&s, "has space"));
  assert_false(any_text_has(&s, "quote"));
  assert_false(any_text_has(&s, "zzzzzzzzzz"));
  assert_false(any_text_has(&s, "aaaaaaaaaa"));
  assert_false(any_text_has(&s, "twice-"));
  service_free(&s);
  free(big);
}

/*
 * What libcurl will not send: bytes that break the header syntax. civetweb
 * refuses most of these requests itself, before begin_request; trail's
 * http_error hook still answers with a new id and writes an access line.
 * The rest reach the middleware, which replaces the id.
 */
static void test_hostile_raw(void **state) {
  (void)state;
  service s;
  raw_reply rr[8];
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
  raw_exchange(s.port, huge, strlen(huge), &rr[5]);
  free(huge);
  /* a version civetweb does not speak */
  raw_str(s.port,
          "GET /api/orders/1 HTTP/2.0\r\nHost: x\r\n"
          "X-Request-ID: v2-id\r\n\r\n",
          &rr[6]);
  service_stop(&s);

  for (int i = 0; i < 7; i++) {
    if (rr[i].n < 1)
      fail_msg("case %d: no response", i);
    const char *rid = rr[i].rid[0];
    if (i == 1) {
      assert_string_equal(rid, "lf");
    } else if (i == 3) {
      /* civetweb drops the continuation line: the id is "fold" */
      assert_string_equal(rid, "fold");
    } else if (i == 6) {
      /* civetweb parsed this one whole: the id was valid, and is kept */
      assert_string_equal(rid, "v2-id");
    } else if (!is_uuid(rid)) {
      fail_msg("case %d: status %d, X-Request-ID \"%s\"", i, rr[i].status[0],
               rid);
    }
    json_t *a = service_access_line(&s, rid);
    if (a == NULL)
      fail_msg("case %d: no access line for %s", i, rid);
    assert_int_equal(json_integer_value(json_object_get(a, "status")),
                     rr[i].status[0]);
    assert_int_equal(json_integer_value(json_object_get(a, "bytes")),
                     rr[i].body_len[0] < 0 ? 0 : rr[i].body_len[0]);
  }
  assert_int_equal(rr[1].status[0], 200);
  assert_int_equal(rr[3].status[0], 200);
  assert_int_equal(rr[6].status[0], 505);
  assert_false(any_text_has(&s, "injected"));
  assert_false(any_text_has(&s, "continued"));
  assert_false(any_text_has(&s, "hhhhhhhhhh"));
  service_free(&s);
}

/* ---- traceparent and tracestate ----------------------------------------- */

static void get_tp(int port, const char *rid, const char *const *extra,
                   http_response *r) {
  char rid_h[96];
  const char *h[8];
  int n = 0;
  snprintf(rid_h, sizeof rid_h, "X-Request-ID: %s", rid);
  h[n++] = rid_h;
  for (int i = 0; extra && extra[i] && n < 7; i++)
    h[n++] = extra[i];
  h[n] = NULL;
  http_get(port, "/api/orders/3", h, r);
  assert_int_equal(r->curl_error, 0);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->request_id, rid);
}

/* A request that must have started a new trace. */
static void expect_new_trace(service *s, const char *rid) {
  json_t *a = service_access_line(s, rid);
  if (a == NULL)
    fail_msg("no access line for %s", rid);
  const char *t = str_of(a, "trace_id");
  assert_true(is_hex(t, 32));
  if (strcmp(t, T_ID) == 0)
    fail_msg("%s continued the trace it should have refused", rid);
  assert_null(json_object_get(a, "parent_span_id"));
  assert_lines_trace(s, rid, t);
}

static void test_traceparent(void **state) {
  (void)state;
  service s;
  http_response r;
  service_start(&s, EXAMPLE, NULL, NULL);
  const char *valid[] = {"traceparent: " TP_VALID,
                         "tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
                         NULL};
  get_tp(s.port, "tp-valid", valid, &r);
  const char *bad[][3] = {
      {"traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
       NULL},
      {"traceparent: ff-" T_ID "-" P_ID "-01", NULL},
      {"traceparent: 00-00000000000000000000000000000000-" P_ID "-01", NULL},
      {"traceparent: 00-" T_ID "-0000000000000000-01", NULL},
      {"traceparent: 00-" T_ID "-" P_ID "-01-extra", NULL},
      {"traceparent: 00-" T_ID "-" P_ID, NULL},
      {"traceparent: " TP_VALID, "traceparent: " TP_VALID},
      {"traceparent: \xc3\xa9" TP_VALID, "tracestate: a=b"},
  };
  const size_t nbad = sizeof bad / sizeof bad[0];
  for (size_t i = 0; i < nbad; i++) {
    char rid[32];
    const char *extra[] = {bad[i][0], bad[i][1], NULL};
    snprintf(rid, sizeof rid, "tp-bad-%zu", i);
    get_tp(s.port, rid, extra, &r);
  }
  /* tracestate with no traceparent, and a hostile one with a valid
   * traceparent: no crash, no broken line */
  const char *ts_only[] = {"tracestate: congo=t61rcWkgMzE", NULL};
  get_tp(s.port, "ts-only", ts_only, &r);
  char ts_big[8192] = "tracestate: ";
  for (size_t i = strlen(ts_big); i + 8 < sizeof ts_big; i += 6)
    memcpy(ts_big + i, "k=v\xff\",", 6);
  ts_big[sizeof ts_big - 8] = '\0';
  const char *ts_hostile[] = {"traceparent: " TP_VALID, ts_big, NULL};
  get_tp(s.port, "ts-hostile", ts_hostile, &r);

  /* 100 traceparent headers, all valid, in one request: repeated, so a
   * new trace (civetweb keeps the first 64 headers; two are enough) */
  char *many = malloc(100 * 80 + 256);
  assert_non_null(many);
  size_t at = (size_t)sprintf(many, "GET /api/orders/3 HTTP/1.1\r\nHost: x\r\n"
                                    "Connection: close\r\n"
                                    "X-Request-ID: tp-many\r\n");
  for (int i = 0; i < 100; i++)
    at += (size_t)sprintf(many + at, "traceparent: %s\r\n", TP_VALID);
  strcpy(many + at, "\r\n");
  raw_reply rr;
  raw_str(s.port, many, &rr);
  free(many);
  assert_int_equal(rr.n, 1);
  assert_int_equal(rr.status[0], 200);
  assert_string_equal(rr.rid[0], "tp-many");
  service_stop(&s);

  /* continued: the caller's trace, its span as parent, a new span */
  json_t *a = service_access_line(&s, "tp-valid");
  assert_non_null(a);
  assert_string_equal(str_of(a, "trace_id"), T_ID);
  assert_string_equal(str_of(a, "parent_span_id"), P_ID);
  assert_true(is_hex(str_of(a, "span_id"), 16));
  assert_string_not_equal(str_of(a, "span_id"), P_ID);
  json_t *h = find_line(&s, "tp-valid", "orders", "order loaded");
  assert_non_null(h);
  assert_string_equal(str_of(h, "span_id"), str_of(a, "span_id"));
  assert_lines_trace(&s, "tp-valid", T_ID);

  for (size_t i = 0; i < nbad; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "tp-bad-%zu", i);
    expect_new_trace(&s, rid);
  }
  expect_new_trace(&s, "ts-only");
  expect_new_trace(&s, "tp-many");
  assert_lines_trace(&s, "ts-hostile", T_ID);
  /* only the continued requests carry the caller's trace */
  for (size_t i = 0; i < s.n; i++) {
    const char *t = str_of(s.lines[i], "trace_id");
    const char *rid = str_of(s.lines[i], "request_id");
    if (t && strcmp(t, T_ID) == 0)
      assert_true(!strcmp(rid, "tp-valid") || !strcmp(rid, "ts-hostile"));
  }
  service_free(&s);
}

/* ---- keep-alive: one connection, several requests ------------------------ */

/*
 * civetweb keeps its per-connection data from one kept-alive request to
 * the next. One libcurl handle, reused: each request's lines must carry
 * its own id, user and trace, and nothing of the request before it.
 */
static void test_keepalive_curl(void **state) {
  (void)state;
  service s;
  service_start(&s, EXAMPLE, NULL, NULL);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/api/orders/8", s.port);
  http_response r[6];
  const char *hdrs[6][4] = {
      {"X-Request-ID: ka-0", "X-User-ID: alice", "traceparent: " TP_VALID,
       NULL},
      {"X-Request-ID: ka-1", NULL},
      {NULL},
      {"X-Request-ID: ka-3", "X-User-ID: bob", NULL},
      {"X-Request-ID: bad id", NULL},
      {"X-Request-ID: ka-5", NULL},
  };
  long connects = 0;
  for (int i = 0; i < 6; i++) {
    struct curl_slist *h = NULL;
    for (int k = 0; hdrs[i][k]; k++)
      h = curl_slist_append(h, hdrs[i][k]);
    memset(&r[i], 0, sizeof r[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r[i]);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r[i]);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r[i].status);
    long nc = 0;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc);
    connects += nc;
    curl_slist_free_all(h);
    assert_int_equal(r[i].status, 200);
  }
  curl_easy_cleanup(c);
  service_stop(&s);
  /* How many connections libcurl opened depends on timing (civetweb
   * closes an idle one after keep_alive_timeout_ms); the pipelined test
   * below is the one that proves a shared connection. */
  print_message("keep-alive: 6 requests over %ld connection(s)\n", connects);

  const char *trace0 = NULL;
  for (int i = 0; i < 6; i++) {
    const char *rid = r[i].request_id;
    json_t *a = service_access_line(&s, rid);
    if (a == NULL)
      fail_msg("no access line for request %d (%s)", i, rid);
    assert_non_null(find_line(&s, rid, "orders", "order loaded"));
    assert_int_equal(lines_of(&s, rid), 2);
    const char *trace = str_of(a, "trace_id");
    assert_lines_trace(&s, rid, trace);
    const char *user = str_of(a, "user_id");
    if (i == 0) {
      trace0 = trace;
      assert_string_equal(trace, T_ID);
      assert_string_equal(user, "alice");
    } else {
      assert_string_not_equal(trace, trace0);
      assert_null(json_object_get(a, "parent_span_id"));
      if (i == 3)
        assert_string_equal(user, "bob");
      else
        assert_null(user);
    }
  }
  assert_string_equal(r[0].request_id, "ka-0");
  assert_string_equal(r[1].request_id, "ka-1");
  assert_true(is_uuid(r[2].request_id));
  assert_true(is_uuid(r[4].request_id));
  assert_string_not_equal(r[2].request_id, r[4].request_id);
  service_free(&s);
}

/*
 * The same with pipelined requests: written in one go on one socket, so
 * civetweb serves them one after the other on one connection, for sure.
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
    assert_int_equal(rr.status[i], want[i]);
  assert_string_equal(rr.rid[0], "pipe-1");
  assert_true(is_uuid(rr.rid[1]));
  assert_string_equal(rr.rid[2], "pipe-3");
  assert_string_equal(rr.rid[3], "pipe-4");
  assert_true(is_uuid(rr.rid[4]));
  assert_true(is_uuid(rr.rid[5]));

  json_t *a1 = check_access(&s, "pipe-1", 200, (size_t)rr.body_len[0], "info");
  assert_string_equal(str_of(a1, "trace_id"), T_ID);
  assert_string_equal(str_of(a1, "user_id"), "carol");
  assert_lines_trace(&s, "pipe-1", T_ID);
  const char *later[] = {rr.rid[1], rr.rid[2], rr.rid[4], rr.rid[5]};
  const int later_status[] = {200, 201, 404, 400};
  for (int i = 0; i < 4; i++) {
    json_t *a = service_access_line(&s, later[i]);
    if (a == NULL)
      fail_msg("no access line for %s", later[i]);
    assert_int_equal(json_integer_value(json_object_get(a, "status")),
                     later_status[i]);
    assert_string_not_equal(str_of(a, "trace_id"), T_ID);
    assert_null(json_object_get(a, "user_id"));
    assert_null(json_object_get(a, "parent_span_id"));
    assert_lines_trace(&s, later[i], str_of(a, "trace_id"));
  }
  assert_null(service_access_line(&s, "pipe-4")); /* /healthz */
  /* the user and the trace of the first request are on its lines only */
  for (size_t i = 0; i < s.n; i++) {
    const char *u = str_of(s.lines[i], "user_id");
    if (u != NULL)
      assert_string_equal(str_of(s.lines[i], "request_id"), "pipe-1");
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
    send_all(fd, req, strlen(req));
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
      assert_string_not_equal(str_of(service_access_line(&s, a), "trace_id"),
                              str_of(service_access_line(&s, b), "trace_id"));
    }
  service_free(&s);
  free(jobs);
}

/* ---- stopping ------------------------------------------------------------ */

/* SIGINT stops it as SIGTERM does (service_stop() checks SIGTERM):
 * requests answered, "stopped" last, exit status 0. */
static void test_sigint(void **state) {
  (void)state;
  service s;
  http_response r;
  service_start(&s, EXAMPLE, NULL, NULL);
  const char *h[] = {"X-Request-ID: before-int", NULL};
  http_get(s.port, "/api/orders/2", h, &r);
  assert_int_equal(r.status, 200);
  kill(s.pid, SIGINT);
  int status;
  assert_int_equal(waitpid(s.pid, &status, 0), s.pid);
  pthread_join(s.reader, NULL);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(s.bad_lines, 0);
  assert_non_null(service_access_line(&s, "before-int"));
  assert_true(s.n > 0);
  assert_string_equal(str_of(s.lines[s.n - 1], "message"), "stopped");
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

static struct mg_context *inproc_start(int *port) {
  static const char *const skip[] = {"/skip", NULL};
  struct mg_callbacks cb;
  memset(&cb, 0, sizeof cb);
  trail_http_config_init(&inproc_cfg);
  inproc_cfg.user_id_header = "X-User-ID";
  inproc_cfg.skip_paths = skip;
  assert_int_equal(trail_civetweb_callbacks(&cb, &inproc_cfg), 0);
  const char *opts[] = {"listening_ports",   "127.0.0.1:0", "num_threads", "4",
                        "enable_keep_alive", "yes",         NULL};
  struct mg_context *ctx = mg_start(&cb, NULL, opts);
  assert_non_null(ctx);
  mg_set_request_handler(ctx, "/send1", h_send_return_1, NULL);
  mg_set_request_handler(ctx, "/raw", h_raw, NULL);
  mg_set_request_handler(ctx, "/built", h_built, NULL);
  mg_set_request_handler(ctx, "/error", h_error, NULL);
  mg_set_request_handler(ctx, "/user", h_user, NULL);
  mg_set_request_handler(ctx, "/gone", h_gone, NULL);
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
    const char *r = str_of(j, "request_id");
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
    const char *m = str_of(j, "message");
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
  assert_string_equal(rr.rid[0], "u-1");
  assert_string_equal(rr.rid[1], "u-2");
  assert_true(is_uuid(rr.rid[2]));
  for (int i = 0; i < 3; i++) {
    size_t n;
    json_t *lines = cap_lines_of(rr.rid[i], &n);
    assert_int_equal(n, 4);
    size_t k;
    json_t *j;
    json_array_foreach(lines, k, j) {
      const char *m = str_of(j, "message");
      const char *u = str_of(j, "user_id");
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
  send_all(fd, req, strlen(req));
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
    if (!strcmp(str_of(j, "logger"), "http") &&
        !strcmp(str_of(j, "level"), "warn"))
      seen = 1;
    json_decref(j);
  }
  assert_true(seen);
  cap_stop();
}
#endif /* TRAIL_TEST_HAVE_CIVETWEB */

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_basic),
      cmocka_unit_test(test_absolute_form),
      cmocka_unit_test(test_statuses),
      cmocka_unit_test(test_request_id),
      cmocka_unit_test(test_hostile_raw),
      cmocka_unit_test(test_traceparent),
      cmocka_unit_test(test_keepalive_curl),
      cmocka_unit_test(test_keepalive_pipelined),
      cmocka_unit_test(test_keepalive_sequential),
      cmocka_unit_test(test_concurrent),
      cmocka_unit_test(test_sigint),
#ifdef TRAIL_TEST_HAVE_CIVETWEB
      cmocka_unit_test(test_inproc_status_bytes),
      cmocka_unit_test(test_inproc_user_conn_data),
      cmocka_unit_test(test_inproc_client_gone),
      cmocka_unit_test(test_inproc_api),
#endif
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
