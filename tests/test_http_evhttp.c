/*
 * The libevent evhttp adapter (include/trail/evhttp.h), through its example
 * service examples/orders_evhttp.c: each test starts the service on a
 * loopback port the kernel picks, sends real HTTP requests (libcurl, or a
 * raw socket where the bytes must be exactly these: CR inside a value, a
 * client that leaves, pipelining), stops it with SIGTERM, and reads every
 * line it wrote.
 *
 * What is evhttp's own: one thread serves every request, so requests truly
 * interleave when replies are deferred (?sleep_ms=N answers from a timer);
 * the access line is written from the completion callback, outside any
 * handler; and a client that closes its connection while its reply is
 * deferred gets an access line with status 499.
 *
 * No sleeps: lines are read after the service exited, or waited for on the
 * harness's condition variable (with a generous cap that only keeps a
 * broken build from hanging).
 */
/* http_harness.h formats a caller's path pattern (http_concurrent). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include "http_harness.h"
#pragma GCC diagnostic pop

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <trail/http.h>

#define EXAMPLE "orders_evhttp"
#define T_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define P_ID "00f067aa0ba902b7"
#define TP_VALID "00-" T_ID "-" P_ID "-01"

static const char *const debug_env[] = {"TRAIL_LEVEL=debug", NULL};

/* ---- checks on ids and lines ----------------------------------------------
 */

static int is_hex(const char *s, size_t n) {
  if (s == NULL || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
      return 0;
  return 1;
}

static int is_uuid4(const char *s) {
  if (s == NULL || strlen(s) != 36)
    return 0;
  for (size_t i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return 0;
    } else if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f')) {
      return 0;
    }
  }
  return s[14] == '4';
}

static const char *opt_str(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return v != NULL && json_is_string(v) ? json_string_value(v) : NULL;
}

/* The first line of request rid with that message (NULL: any), or NULL.
 * Only for a stopped service, or with s->lock held. */
static json_t *line_of(service *s, const char *rid, const char *message) {
  for (size_t i = 0; i < s->n; i++) {
    const char *r = opt_str(s->lines[i], "request_id");
    const char *m = opt_str(s->lines[i], "message");
    if (r != NULL && strcmp(r, rid) == 0 &&
        (message == NULL || (m != NULL && strcmp(m, message) == 0)))
      return s->lines[i];
  }
  return NULL;
}

/* The first line with that message, whatever its request. */
static json_t *line_of_any(service *s, const char *message) {
  for (size_t i = 0; i < s->n; i++) {
    const char *m = opt_str(s->lines[i], "message");
    if (m != NULL && strcmp(m, message) == 0)
      return s->lines[i];
  }
  return NULL;
}

static size_t index_of(service *s, json_t *line) {
  for (size_t i = 0; i < s->n; i++)
    if (s->lines[i] == line)
      return i;
  return s->n;
}

static size_t count_of(service *s, const char *rid, const char *message) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    const char *r = opt_str(s->lines[i], "request_id");
    const char *m = opt_str(s->lines[i], "message");
    if (r != NULL && strcmp(r, rid) == 0 && m != NULL &&
        strcmp(m, message) == 0)
      n++;
  }
  return n;
}

/* Waits until the running service has written that line. */
static void wait_line(service *s, const char *rid, const char *message) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 120;
  pthread_mutex_lock(&s->lock);
  while (line_of(s, rid, message) == NULL) {
    if (s->eof || pthread_cond_timedwait(&s->cv, &s->lock, &deadline) != 0) {
      pthread_mutex_unlock(&s->lock);
      fail_msg("no line \"%s\" for request %s", message, rid);
    }
  }
  pthread_mutex_unlock(&s->lock);
}

/* Every line: the contract's keys in order; a request's lines carry a
 * 32-hex trace_id and a 16-hex span_id. */
static void check_all_lines(service *s) {
  for (size_t i = 0; i < s->n; i++) {
    assert_key_order(s->lines[i]);
    if (json_object_get(s->lines[i], "request_id") != NULL) {
      if (!is_hex(opt_str(s->lines[i], "trace_id"), 32) ||
          !is_hex(opt_str(s->lines[i], "span_id"), 16))
        fail_msg("request line without a valid trace: %s", s->texts[i]);
    }
  }
}

/*
 * The service under test. It is static, not on a test's stack, so that the
 * teardown can still kill it when a failed assertion left the test early:
 * a service left running would hold the test's output open.
 */
static service svc;
static int svc_running;

static service *start(const char *const *env) {
  service_start(&svc, EXAMPLE, NULL, env);
  svc_running = 1;
  return &svc;
}

static int teardown(void **state) {
  (void)state;
  if (svc_running) {
    kill(svc.pid, SIGKILL);
    waitpid(svc.pid, NULL, 0);
    pthread_join(svc.reader, NULL);
    svc_running = 0;
  }
  service_free(&svc);
  return 0;
}

/* SIGTERM, exit 0, every line parsed; the last lines say so. */
static void stop(service *s) {
  svc_running = 0;
  service_stop(s);
  check_all_lines(s);
  assert_true(s->n >= 2);
  assert_string_equal(opt_str(s->lines[s->n - 1], "message"), "stopped");
  assert_non_null(line_of_any(s, "stopping"));
}

/* The access line of rid, which must exist, with the request's status. */
static json_t *access_of(service *s, const char *rid) {
  json_t *acc = service_access_line(s, rid);
  if (acc == NULL)
    fail_msg("no access line for %s", rid);
  return acc;
}

static long long int_of(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  if (v == NULL || !json_is_integer(v))
    fail_msg("no integer %s", key);
  return json_integer_value(v);
}

/* ---- a raw HTTP client ------------------------------------------------------
 */

typedef struct raw_resp {
  char *buf; /* everything the server sent */
  size_t len;
  int status;
  char rid[256]; /* X-Request-ID */
  const char *body;
  size_t body_len;
  size_t used; /* bytes of buf this response took */
} raw_resp;

static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

static void raw_send(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    assert_true(w > 0);
    p += w;
    n -= (size_t)w;
  }
}

/* Reads until the server closes the connection. */
static void raw_read_all(int fd, raw_resp *r) {
  size_t room = 8192;
  r->buf = malloc(room);
  r->len = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 120000) != 1)
      fail_msg("the service did not answer");
    if (r->len + 4096 + 1 > room) {
      room *= 2;
      r->buf = realloc(r->buf, room);
    }
    ssize_t n = recv(fd, r->buf + r->len, room - r->len - 1, 0);
    if (n <= 0)
      break;
    r->len += (size_t)n;
  }
  r->buf[r->len] = '\0';
}

/* Parses the response starting at buf + at into r (status, X-Request-ID,
 * body by Content-Length). */
static void raw_parse(raw_resp *r, size_t at) {
  const char *p = r->buf + at;
  r->status = 0;
  r->rid[0] = '\0';
  r->body = NULL;
  r->body_len = 0;
  if (sscanf(p, "HTTP/1.%*d %d", &r->status) != 1)
    fail_msg("not an HTTP response: %.200s", p);
  const char *end = strstr(p, "\r\n\r\n");
  assert_non_null(end);
  size_t clen = 0;
  for (const char *h = strstr(p, "\r\n") + 2; h < end;
       h = strstr(h, "\r\n") + 2) {
    const char *eol = strstr(h, "\r\n");
    if (strncasecmp(h, "X-Request-ID:", 13) == 0) {
      const char *v = h + 13;
      while (*v == ' ')
        v++;
      size_t n = (size_t)(eol - v);
      assert_true(n < sizeof r->rid);
      memcpy(r->rid, v, n);
      r->rid[n] = '\0';
    } else if (strncasecmp(h, "Content-Length:", 15) == 0) {
      clen = (size_t)strtoul(h + 15, NULL, 10);
    }
  }
  r->body = end + 4;
  r->body_len = clen;
  r->used = (size_t)(r->body - p) + clen;
}

/* One request on its own connection (it should say Connection: close). */
static void raw_exchange(int port, const char *req, size_t len, raw_resp *r) {
  memset(r, 0, sizeof *r);
  int fd = raw_connect(port);
  raw_send(fd, req, len);
  raw_read_all(fd, r);
  close(fd);
  raw_parse(r, 0);
}

static void raw_free(raw_resp *r) {
  free(r->buf);
  memset(r, 0, sizeof *r);
}

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
  http_get(s->port, "/api/orders/42?token=secret", h, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "get-1");
  assert_string_equal(r.body, "{\"id\":42,\"state\":\"shipped\"}");
  stop(s);

  json_t *listening = line_of_any(s, "listening");
  assert_non_null(listening);
  assert_int_equal(int_of(listening, "port"), s->port);

  json_t *h1 = line_of(s, "get-1", "order loaded");
  json_t *acc = access_of(s, "get-1");
  assert_non_null(h1);
  assert_str_field(h1, "logger", "orders");
  assert_str_field(h1, "trace_id", jstr(acc, "trace_id"));
  assert_str_field(h1, "span_id", jstr(acc, "span_id"));
  assert_true(index_of(s, h1) < index_of(s, acc));
  assert_str_field(acc, "level", "info");
  assert_str_field(acc, "method", "GET");
  assert_str_field(acc, "path", "/api/orders/42");
  assert_int_equal(int_of(acc, "status"), 200);
  assert_int_equal(int_of(acc, "bytes"), r.body_len);
  assert_true(json_is_number(json_object_get(acc, "duration_ms")));
  assert_true(json_number_value(json_object_get(acc, "duration_ms")) >= 0);
  assert_str_field(acc, "remote_addr", "127.0.0.1");
  assert_null(json_object_get(acc, "parent_span_id"));
  assert_null(strstr(s->texts[index_of(s, acc)], "secret"));
}

/* Status, bytes and level of the access line, for every route's outcome;
 * the echoed id is the access line's. */
static void test_access_lines(void **state) {
  (void)state;
  static const struct {
    const char *method, *path, *body;
    long status;
    const char *level;
  } cases[] = {
      {"GET", "/api/orders/1", NULL, 200, "info"},
      {"GET", "/api/orders/999", NULL, 404, "warn"},
      {"GET", "/api/orders/7", NULL, 503, "error"},
      {"POST", "/api/orders", "{\"sku\":991,\"qty\":2}", 201, "info"},
      {"POST", "/api/orders", "not json", 400, "warn"},
      {"POST", "/api/orders", "[1,2]", 400, "warn"},
      {"GET", "/no/such/route", NULL, 404, "warn"},
      {"DELETE", "/api/orders/1", NULL, 404, "warn"},
  };
  const size_t n = sizeof cases / sizeof cases[0];
  http_response r[sizeof cases / sizeof cases[0]];
  service *s = start(NULL);
  for (size_t i = 0; i < n; i++) {
    char rid[64];
    snprintf(rid, sizeof rid, "X-Request-ID: acc-%zu", i);
    const char *h[] = {rid, NULL};
    http_request(s->port, cases[i].method, cases[i].path, h, cases[i].body,
                 &r[i]);
    assert_int_equal(r[i].curl_error, 0);
    assert_int_equal(r[i].status, cases[i].status);
  }
  stop(s);
  for (size_t i = 0; i < n; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "acc-%zu", i);
    assert_string_equal(r[i].request_id, rid);
    json_t *acc = access_of(s, rid);
    assert_str_field(acc, "method", cases[i].method);
    assert_str_field(acc, "path", cases[i].path);
    assert_str_field(acc, "level", cases[i].level);
    assert_int_equal(int_of(acc, "status"), cases[i].status);
    assert_int_equal(int_of(acc, "bytes"), r[i].body_len);
    assert_true(json_is_number(json_object_get(acc, "duration_ms")));
    /* the handler logged inside the request, with its ids */
    assert_true(count_of(s, rid, "request completed") == 1);
    size_t lines = 0;
    for (size_t k = 0; k < s->n; k++) {
      const char *lr = opt_str(s->lines[k], "request_id");
      if (lr != NULL && strcmp(lr, rid) == 0) {
        lines++;
        assert_str_field(s->lines[k], "trace_id", jstr(acc, "trace_id"));
      }
    }
    assert_true(lines >= 2);
  }
  /* the POSTed body was read whole and parsed by jansson */
  json_t *created = line_of(s, "acc-3", "order created");
  assert_non_null(created);
  json_t *order = json_object_get(created, "order");
  assert_int_equal(json_integer_value(json_object_get(order, "sku")), 991);
}

/* HEAD: the routes answer GET only, so a 404, whose body HTTP does not
 * send after HEAD: bytes 0. */
static void test_head(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char req[] = "HEAD /api/orders/1 HTTP/1.1\r\nHost: t\r\n"
                            "X-Request-ID: head-1\r\nConnection: close\r\n\r\n";
  raw_resp r;
  raw_exchange(s->port, req, sizeof req - 1, &r);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.rid, "head-1");
  assert_int_equal(r.len, (size_t)(r.body - r.buf)); /* headers only */
  raw_free(&r);
  stop(s);
  json_t *acc = access_of(s, "head-1");
  assert_str_field(acc, "method", "HEAD");
  assert_int_equal(int_of(acc, "status"), 404);
  assert_str_field(acc, "level", "warn");
  assert_int_equal(int_of(acc, "bytes"), 0);
}

/* /healthz is answered, echoes its id, and writes no access line. */
static void test_healthz(void **state) {
  (void)state;
  service *s = start(NULL);
  const char *h[] = {"X-Request-ID: hz-1", NULL};
  http_response r;
  http_get(s->port, "/healthz", h, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "hz-1");
  assert_string_equal(r.body, "ok\n");
  stop(s);
  assert_null(service_access_line(s, "hz-1"));
  for (size_t i = 0; i < s->n; i++) {
    const char *p = opt_str(s->lines[i], "path");
    assert_true(p == NULL || strcmp(p, "/healthz") != 0);
  }
}

/* The user id a gateway passes in X-User-ID is on every line of the
 * request; a non-ASCII one is escaped, not broken. */
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

static void test_user_id(void **state) {
  (void)state;
  service *s = start(NULL);
  const char *h[] = {"X-Request-ID: user-1", "X-User-ID: user-4711", NULL};
  http_response r;
  http_get(s->port, "/api/orders/3", h, &r);
  assert_int_equal(r.status, 200);
  static const char req[] = "GET /api/orders/4 HTTP/1.1\r\nHost: t\r\n"
                            "X-Request-ID: user-2\r\nX-User-ID: j\xc3\xb6rg\xff"
                            "\r\nConnection: close\r\n\r\n";
  raw_resp rr;
  raw_exchange(s->port, req, sizeof req - 1, &rr);
  assert_int_equal(rr.status, 200);
  raw_free(&rr);
  stop(s);
  assert_str_field(line_of(s, "user-1", "order loaded"), "user_id",
                   "user-4711");
  assert_str_field(access_of(s, "user-1"), "user_id", "user-4711");
  /* invalid UTF-8 becomes U+FFFD */
  assert_str_field(access_of(s, "user-2"), "user_id",
                   "j\xc3\xb6rg\xef\xbf\xbd");
}

/* ---- X-Request-ID
 * ------------------------------------------------------------ */

static void test_request_id_kept(void **state) {
  (void)state;
  static const char *const ids[] = {"Abc.1_2:3-4", "a",
                                    "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"};
  service *s = start(NULL);
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    char h0[200];
    snprintf(h0, sizeof h0, "X-Request-ID: %s", ids[i]);
    const char *h[] = {h0, NULL};
    http_response r;
    http_get(s->port, "/api/orders/5", h, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.request_id, ids[i]);
  }
  stop(s);
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    assert_non_null(line_of(s, ids[i], "order loaded"));
    assert_non_null(access_of(s, ids[i]));
  }
}

/*
 * Hostile X-Request-ID values, sent as raw bytes: each is replaced by a new
 * UUID v4, which the response echoes and every line of the request
 * carries; the value itself never reaches a line.
 */
static void test_request_id_replaced(void **state) {
  (void)state;
  char *big = malloc(64 * 1024 + 32);
  strcpy(big, "X-Request-ID: ");
  memset(big + 14, 'a', 64 * 1024);
  big[14 + 64 * 1024] = '\0';
  char long129[160];
  strcpy(long129, "X-Request-ID: ");
  memset(long129 + 14, 'b', 129);
  long129[14 + 129] = '\0';
  const char *const cases[][3] = {
      {"X-Request-ID: has space", NULL},
      {"X-Request-ID: caf\xc3\xa9", NULL},
      {"X-Request-ID: \xff\xfe\x80", NULL},
      {"X-Request-ID: quote\"inside", NULL},
      {"X-Request-ID: {\"json\":1}", NULL},
      {"X-Request-ID:", NULL},
      {"X-Request-ID: twice-1", "X-Request-ID: twice-2", NULL},
      {"X-Request-ID: tab\tinside", NULL},
      {long129, NULL},
      {big, NULL},
  };
  const size_t n = sizeof cases / sizeof cases[0];
  char ids[sizeof cases / sizeof cases[0]][256];
  service *s = start(debug_env);
  for (size_t i = 0; i < n; i++) {
    text t;
    text_request(&t, "/api/orders/11", cases[i]);
    text_end(&t);
    raw_resp r;
    raw_exchange(s->port, t.p, t.len, &r);
    free(t.p);
    assert_int_equal(r.status, 200);
    if (!is_uuid4(r.rid))
      fail_msg("case %zu: echoed id %s is not a new UUID", i, r.rid);
    memcpy(ids[i], r.rid, sizeof ids[i]);
    raw_free(&r);
  }
  stop(s);
  for (size_t i = 0; i < n; i++) {
    json_t *acc = access_of(s, ids[i]);
    assert_int_equal(int_of(acc, "status"), 200);
    json_t *h1 = line_of(s, ids[i], "order loaded");
    assert_non_null(h1);
    assert_str_field(h1, "trace_id", jstr(acc, "trace_id"));
    /* the rejection is reported (debug), with the ids, not the value */
    json_t *rej = line_of(s, ids[i], "request header rejected");
    assert_non_null(rej);
    assert_str_field(rej, "header", "X-Request-ID");
  }
  for (size_t i = 0; i < s->n; i++) {
    assert_null(strstr(s->texts[i], "has space"));
    assert_null(strstr(s->texts[i], "twice-"));
    assert_null(strstr(s->texts[i], "quote"));
    assert_null(strstr(s->texts[i], "bbbbbbbbbbbbbbbb"));
    assert_null(strstr(s->texts[i], "aaaaaaaaaaaaaaaa"));
  }

  free(big);
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
  service *s = start(debug_env);
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    raw_resp r;
    raw_exchange(s->port, reqs[i], strlen(reqs[i]), &r);
    assert_int_equal(r.status, 400);
    raw_free(&r);
  }
  const char *h[] = {"X-Request-ID: after-breaks", NULL};
  http_response r;
  http_get(s->port, "/api/orders/2", h, &r);
  assert_int_equal(r.status, 200);
  stop(s);
  assert_non_null(access_of(s, "after-breaks"));
}

/* ---- traceparent and tracestate --------------------------------------------
 */

/* A valid traceparent is continued: its trace, the caller's span as the
 * parent, a new span for this request. */
static void test_traceparent_continued(void **state) {
  (void)state;
  service *s = start(NULL);
  const char *h[] = {"X-Request-ID: tp-ok", "traceparent: " TP_VALID,
                     "tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
                     NULL};
  http_response r;
  http_get(s->port, "/api/orders/12", h, &r);
  assert_int_equal(r.status, 200);
  stop(s);
  json_t *acc = access_of(s, "tp-ok");
  assert_str_field(acc, "trace_id", T_ID);
  assert_str_field(acc, "parent_span_id", P_ID);
  assert_true(is_hex(opt_str(acc, "span_id"), 16));
  assert_string_not_equal(jstr(acc, "span_id"), P_ID);
  json_t *h1 = line_of(s, "tp-ok", "order loaded");
  assert_str_field(h1, "trace_id", T_ID);
  assert_str_field(h1, "span_id", jstr(acc, "span_id"));
}

/* An invalid, repeated or hostile traceparent starts a new trace; a
 * tracestate without a valid traceparent is dropped; nothing breaks. */
static void test_traceparent_rejected(void **state) {
  (void)state;
  char *big = malloc(64 * 1024 + 32);
  strcpy(big, "traceparent: 00-");
  memset(big + 16, 'a', 64 * 1024);
  big[16 + 64 * 1024] = '\0';
  char *bigts = malloc(64 * 1024 + 32);
  strcpy(bigts, "tracestate: ");
  for (size_t i = 12; i < 64 * 1024; i += 8)
    memcpy(bigts + i, "k=v1234,", 8);
  bigts[64 * 1024] = '\0';
  const char *const cases[][4] = {
      {"traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-" P_ID "-01", NULL},
      {"traceparent: ff-" T_ID "-" P_ID "-01", NULL},
      {"traceparent: 00-00000000000000000000000000000000-" P_ID "-01", NULL},
      {"traceparent: 00-" T_ID "-0000000000000000-01", NULL},
      {"traceparent: 00-" T_ID "-" P_ID "-01-extra", NULL},
      {"traceparent: 00-" T_ID "-" P_ID, NULL},
      {"traceparent: garbage", NULL},
      {"traceparent: 00-" T_ID "-" P_ID "-0\xc3\xa9", NULL},
      {"traceparent: " TP_VALID, "traceparent: " TP_VALID, NULL},
      {"traceparent: " TP_VALID, "Traceparent: 00-" T_ID "-" P_ID "-00", NULL},
      {"tracestate: rojo=00f067aa0ba902b7", NULL},
      {big, NULL},
      {"traceparent: junk", bigts, NULL},
  };
  const size_t n = sizeof cases / sizeof cases[0];
  service *s = start(debug_env);
  for (size_t i = 0; i < n; i++) {
    char rid[64];
    snprintf(rid, sizeof rid, "X-Request-ID: tpbad-%zu", i);
    const char *lines[6] = {rid};
    for (size_t k = 0; k < 4 && cases[i][k] != NULL; k++)
      lines[k + 1] = cases[i][k];
    text t;
    text_request(&t, "/api/orders/13", lines);
    text_end(&t);
    raw_resp r;
    raw_exchange(s->port, t.p, t.len, &r);
    free(t.p);
    assert_int_equal(r.status, 200);
    raw_free(&r);
  }
  stop(s);
  for (size_t i = 0; i < n; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "tpbad-%zu", i);
    json_t *acc = access_of(s, rid);
    if (strcmp(jstr(acc, "trace_id"), T_ID) == 0)
      fail_msg("case %zu continued a trace it should not have", i);
    assert_null(json_object_get(acc, "parent_span_id"));
    assert_str_field(line_of(s, rid, "order loaded"), "trace_id",
                     jstr(acc, "trace_id"));
  }

  free(big);
  free(bigts);
}

/* Many repeated headers: 100 traceparent (a new trace), 100 X-Request-ID
 * (a new id), 1000 of a header trail does not read. */
static void test_many_repeated_headers(void **state) {
  (void)state;
  service *s = start(NULL);
  text t;
  text_request(&t, "/api/orders/14", NULL);
  for (int i = 0; i < 100; i++)
    text_puts(&t, "traceparent: " TP_VALID "\r\n");
  text_puts(&t, "X-Request-ID: many-tp\r\n");
  text_end(&t);
  raw_resp r;
  raw_exchange(s->port, t.p, t.len, &r);
  free(t.p);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.rid, "many-tp");
  raw_free(&r);

  text_request(&t, "/api/orders/15", NULL);
  for (int i = 0; i < 100; i++)
    text_puts(&t, "X-Request-ID: many-rid\r\n");
  for (int i = 0; i < 1000; i++)
    text_puts(&t, "X-Junk: 0123456789\r\n");
  text_end(&t);
  raw_exchange(s->port, t.p, t.len, &r);
  free(t.p);
  assert_int_equal(r.status, 200);
  assert_true(is_uuid4(r.rid));
  char rid2[sizeof r.rid];
  memcpy(rid2, r.rid, sizeof rid2);
  raw_free(&r);
  stop(s);

  json_t *acc = access_of(s, "many-tp");
  assert_string_not_equal(jstr(acc, "trace_id"), T_ID);
  assert_null(json_object_get(acc, "parent_span_id"));
  assert_non_null(access_of(s, rid2));
  assert_null(service_access_line(s, "many-rid"));
}

/* Bytes that are not ASCII in the request line: answered (404), logged
 * with U+FFFD, nothing broken. */
/* An absolute-form target (RFC 9112 section 3.2.2) is logged by its path;
 * the query stays out. */
static void test_absolute_form(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char req[] =
      "GET http://orders.example/api/orders/42?token=s3cr3t HTTP/1.1\r\n"
      "Host: orders.example\r\nX-Request-ID: abs-1\r\n"
      "Connection: close\r\n\r\n";
  raw_resp r;
  raw_exchange(s->port, req, sizeof req - 1, &r);
  int status = r.status;
  assert_true(status > 0);
  assert_string_equal(r.rid, "abs-1");
  raw_free(&r);
  stop(s);
  json_t *acc = access_of(s, "abs-1");
  assert_str_field(acc, "method", "GET");
  assert_str_field(acc, "path", "/api/orders/42");
  assert_int_equal(int_of(acc, "status"), status);
  for (size_t i = 0; i < s->n; i++) {
    char *dump = json_dumps(s->lines[i], JSON_COMPACT);
    assert_null(strstr(dump, "s3cr3t"));
    free(dump);
  }
}

static void test_non_ascii_path(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char req[] =
      "GET /api/\xff\xc3\xa9t\xc3 HTTP/1.1\r\nHost: t\r\n"
      "X-Request-ID: nonascii\r\nConnection: close\r\n\r\n";
  raw_resp r;
  raw_exchange(s->port, req, sizeof req - 1, &r);
  assert_true(r.status == 404 || r.status == 400);
  int status = r.status;
  raw_free(&r);
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

  json_t *deferred = line_of(s, "def-1", "reply deferred");
  json_t *due = line_of(s, "def-1", "deferred reply due");
  json_t *loaded = line_of(s, "def-1", "order loaded");
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
  assert_int_equal(int_of(acc, "status"), 200);
  assert_int_equal(int_of(acc, "bytes"), body1);
  assert_str_field(acc, "path", "/api/orders/5");
  assert_str_field(acc, "parent_span_id", P_ID);
  assert_true(json_number_value(json_object_get(acc, "duration_ms")) >= 100);

  json_t *acc2 = access_of(s, "def-2");
  assert_int_equal(int_of(acc2, "status"), 404);
  assert_str_field(acc2, "level", "warn");
  assert_int_equal(int_of(acc2, "bytes"), r.body_len);
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
  wait_line(s, "gone-1", "reply deferred");
  close(fd);
  wait_line(s, "gone-1", "request completed");

  const char *h[] = {"X-Request-ID: after-gone", NULL};
  http_response r;
  http_get(s->port, "/api/orders/22", h, &r);
  assert_int_equal(r.status, 200);
  stop(s);

  json_t *acc = access_of(s, "gone-1");
  assert_int_equal(int_of(acc, "status"), TRAIL_HTTP_CLIENT_GONE);
  assert_true(json_is_true(json_object_get(acc, "client_gone")));
  assert_str_field(acc, "level", "warn");
  assert_int_equal(int_of(acc, "bytes"), 0);
  assert_str_field(acc, "trace_id", T_ID);
  assert_int_equal(count_of(s, "gone-1", "request completed"), 1);
  json_t *due = line_of(s, "gone-1", "deferred reply due");
  assert_non_null(due);
  assert_true(json_is_true(json_object_get(due, "client_gone")));
  assert_str_field(due, "trace_id", T_ID);
  assert_true(index_of(s, acc) < index_of(s, due));
  assert_non_null(line_of(s, "gone-1", "order loaded"));
  assert_int_equal(int_of(access_of(s, "after-gone"), "status"), 200);
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
    wait_line(s, rid, "reply deferred");
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
      wait_line(s, rid, "request completed");
  }
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0)
      continue;
    raw_resp r;
    memset(&r, 0, sizeof r);
    raw_read_all(fds[i], &r);
    close(fds[i]);
    if (i % 3 == 1) {
      assert_int_equal(r.len, 0); /* the reply was dropped */
    } else {
      raw_parse(&r, 0);
      assert_int_equal(r.status, 200);
    }
    raw_free(&r);
  }
  stop(s);
  for (int i = 0; i < N; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "left-%d", i);
    json_t *acc = access_of(s, rid);
    assert_int_equal(int_of(acc, "status"),
                     i % 3 == 2 ? 200 : TRAIL_HTTP_CLIENT_GONE);
    assert_int_equal(count_of(s, rid, "request completed"), 1);
    const char *trace = jstr(acc, "trace_id");
    for (size_t k = 0; k < s->n; k++) {
      const char *r = opt_str(s->lines[k], "request_id");
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
  wait_line(s, "pipe-1", "reply deferred");
  raw_send(fd, second, sizeof second - 1);
  raw_resp r;
  memset(&r, 0, sizeof r);
  raw_read_all(fd, &r);
  close(fd);
  raw_parse(&r, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.rid, "pipe-1");
  raw_parse(&r, r.used);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.rid, "pipe-2");
  raw_free(&r);
  stop(s);
  assert_int_equal(int_of(access_of(s, "pipe-1"), "status"), 200);
  assert_int_equal(int_of(access_of(s, "pipe-2"), "status"), 200);
  assert_true(json_is_false(json_object_get(
      line_of(s, "pipe-1", "deferred reply due"), "client_gone")));
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
    assert_int_equal(int_of(acc, "status"), 200);
    assert_int_equal(int_of(acc, "bytes"), jobs[i].resp.body_len);
    assert_non_null(line_of(s, rid, "deferred reply due"));
    size_t from = index_of(s, line_of(s, rid, NULL));
    size_t to = index_of(s, acc);
    for (size_t k = from + 1; k < to; k++) {
      const char *r = opt_str(s->lines[k], "request_id");
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

/* SIGINT stops it as SIGTERM does: exit 0, "stopped" last. */
static void test_sigint(void **state) {
  (void)state;
  service *s = start(NULL);
  http_response r;
  http_get(s->port, "/api/orders/1", NULL, &r);
  assert_int_equal(r.status, 200);
  kill(s->pid, SIGINT);
  int status;
  assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
  pthread_join(s->reader, NULL);
  svc_running = 0;
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(s->bad_lines, 0);
  check_all_lines(s);
  assert_string_equal(opt_str(s->lines[s->n - 1], "message"), "stopped");
  assert_string_equal(opt_str(line_of_any(s, "stopping"), "signal"), "SIGINT");
}

/* SIGTERM while a reply is deferred: the service answers it, then stops. */
static void test_stop_finishes_deferred(void **state) {
  (void)state;
  service *s = start(NULL);
  static const char req[] = "GET /api/orders/51?sleep_ms=300 HTTP/1.1\r\n"
                            "Host: t\r\nX-Request-ID: last-1\r\n"
                            "Connection: close\r\n\r\n";
  int fd = raw_connect(s->port);
  raw_send(fd, req, sizeof req - 1);
  wait_line(s, "last-1", "reply deferred");
  kill(s->pid, SIGTERM);
  raw_resp r;
  memset(&r, 0, sizeof r);
  raw_read_all(fd, &r);
  close(fd);
  raw_parse(&r, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.rid, "last-1");
  raw_free(&r);
  stop(s);
  json_t *acc = access_of(s, "last-1");
  assert_true(int_of(acc, "status") == 200 ||
              int_of(acc, "status") == TRAIL_HTTP_CLIENT_GONE);
  assert_true(index_of(s, line_of_any(s, "stopping")) <
              index_of(s, line_of(s, "last-1", "deferred reply due")));
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_get, teardown),
      cmocka_unit_test_teardown(test_access_lines, teardown),
      cmocka_unit_test_teardown(test_head, teardown),
      cmocka_unit_test_teardown(test_healthz, teardown),
      cmocka_unit_test_teardown(test_metrics, teardown),
      cmocka_unit_test_teardown(test_user_id, teardown),
      cmocka_unit_test_teardown(test_request_id_kept, teardown),
      cmocka_unit_test_teardown(test_request_id_replaced, teardown),
      cmocka_unit_test_teardown(test_header_line_breaks, teardown),
      cmocka_unit_test_teardown(test_traceparent_continued, teardown),
      cmocka_unit_test_teardown(test_traceparent_rejected, teardown),
      cmocka_unit_test_teardown(test_many_repeated_headers, teardown),
      cmocka_unit_test_teardown(test_non_ascii_path, teardown),
      cmocka_unit_test_teardown(test_absolute_form, teardown),
      cmocka_unit_test_teardown(test_deferred_reply, teardown),
      cmocka_unit_test_teardown(test_client_gone, teardown),
      cmocka_unit_test_teardown(test_clients_gone_among_others, teardown),
      cmocka_unit_test_teardown(test_pipelined_while_deferred, teardown),
      cmocka_unit_test_teardown(test_concurrent, teardown),
      cmocka_unit_test_teardown(test_concurrent_interleaved, teardown),
      cmocka_unit_test_teardown(test_sigint, teardown),
      cmocka_unit_test_teardown(test_stop_finishes_deferred, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
