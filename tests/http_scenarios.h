/*
 * The end-to-end scenarios several servers' examples share, written once:
 * a GET and the lines it leaves, a CR or LF inside X-Request-ID, 100 of
 * every header trail reads and 1000 traceparent headers, large and
 * malformed POST bodies, 64 mixed requests at once, 16 requests whose
 * calls interleave, hostile bytes, a client that leaves, draining on
 * SIGTERM, and SIGINT.
 *
 * A server is an http_server: its example's name, the service name its
 * lines carry, what differs between servers as members and flags (each
 * with the reason). A test file runs a scenario for a server and a mode
 * (the example's arguments) with one row of its cmocka table:
 *
 *   static http_case thread = {&ORDERS_MHD, MODE_THREAD};
 *   HTTP_SCENARIO("test_get_thread", scenario_basic_get, &thread),
 *
 * (HTTP_SCENARIOS_ON_MHD, at the end, is all the rows of a server built
 * on libmicrohttpd), and keeps, in its own file, what is that server's
 * own.
 *
 * Lines are checked once the service has stopped: the access line may be
 * written after the response went out (a completion hook), so only the
 * service's exit says that every line is in.
 *
 * The scenarios that need libmicrohttpd's behaviour (how it splits a line
 * break, its per-connection memory and its 431, "100 Continue" once the
 * handler has run, the drain) are run only by the servers built on it
 * (orders_mhd, orders_ulfius); their comments say so.
 *
 * Header-only; every function is static inline.
 */
#ifndef TRAIL_TEST_HTTP_SCENARIOS_H
#define TRAIL_TEST_HTTP_SCENARIOS_H

#include "http_checks.h"

/* Flags of an http_server. */
enum {
  /* The "stopping" line names the signal that stopped the service (only
   * orders_evhttp logs which one). */
  HTTP_SV_SIGNAL_NAMED = 1u << 0,
};

typedef struct http_server {
  const char *example; /* the example's program, in $TRAIL_TEST_EXAMPLES_DIR */
  const char *service; /* the "service" field of its lines */
  /*
   * The logger of the debug lines the example writes per connection,
   * outside any request ("mhd.conn"): none of them may carry a request's
   * ids. NULL when the example writes no such line (orders_fcgi), and the
   * check is not made.
   */
  const char *conn_logger;
  /*
   * A front the requests go through, started once the service listens,
   * with the service's port; it returns the port the clients use
   * (orders_fcgi: a real nginx). front_stop stops it if it runs, before
   * the service is stopped, so that every answer is in. NULL: the clients
   * talk to the service.
   */
  int (*front_start)(int service_port);
  void (*front_stop)(void);
  /* More checks on the lines of every stopped service; NULL: none. */
  void (*check_stopped)(service *s);
  unsigned flags; /* HTTP_SV_* */
} http_server;

/* One row of a test table: a server, and the arguments of its example
 * (NULL-terminated, may be NULL). */
typedef struct http_case {
  const http_server *sv;
  const char *const *mode;
} http_case;

/* A scenario as a cmocka test, with the teardown below. */
#define HTTP_SCENARIO(name, fn, c)                                             \
  { name, fn, NULL, http_teardown, c }

/* The modes of the examples built on libmicrohttpd: a thread per
 * connection, or one internal polling thread taking every request in
 * turn. */
static const char *const HTTP_MODE_THREAD[] = {"--mode", "thread", NULL};
static const char *const HTTP_MODE_POLL[] = {"--mode", "poll", NULL};

static const char *const HTTP_ENV_DEBUG[] = {"TRAIL_LEVEL=debug", NULL};

#define HTTP_TP_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define HTTP_TP_VALID "traceparent: 00-" HTTP_TP_TRACE "-00f067aa0ba902b7-01"

/* ---- starting and stopping ---------------------------------------------- */

/*
 * The service the running test started and has not stopped, and its
 * server: a failed assertion leaves the test early, and the teardown then
 * ends both the front and the service rather than leave them running.
 */
static service *http_live;
static const http_server *http_live_sv;

/* Starts the example (and its front); returns the port clients use. */
static inline int http_start(const http_server *sv, service *s,
                             const char *const *mode, const char *const *env) {
  http_live_sv = sv;
  service_start(s, sv->example, mode, env);
  http_live = s;
  return sv->front_start ? sv->front_start(s->port) : s->port;
}

/* Stops the front, then the service with sig: exit 0, every line parsed,
 * and the server's own checks. */
static inline void http_stop_with(const http_server *sv, service *s, int sig) {
  if (sv->front_stop)
    sv->front_stop();
  http_live = NULL;
  service_stop_with(s, sig);
  if (sv->check_stopped)
    sv->check_stopped(s);
}

static inline void http_stop(const http_server *sv, service *s) {
  http_stop_with(sv, s, SIGTERM);
}

static inline int http_teardown(void **state) {
  (void)state;
  if (http_live_sv != NULL && http_live_sv->front_stop != NULL)
    http_live_sv->front_stop();
  http_live_sv = NULL;
  if (http_live != NULL) {
    kill(http_live->pid, SIGKILL);
    waitpid(http_live->pid, NULL, 0);
    pthread_join(http_live->reader, NULL);
    service_free(http_live);
    http_live = NULL;
  }
  return 0;
}

/* ---- checks ------------------------------------------------------------- */

/*
 * The access line of rid, checked for what every access line must say:
 * exactly one per request, its fields, the client's loopback address.
 */
static inline json_t *http_check_access(const http_server *sv, service *s,
                                        const char *rid, const char *method,
                                        const char *path, int status,
                                        size_t bytes, const char *level) {
  json_t *acc = service_access_line(s, rid);
  if (acc == NULL)
    fail_msg("no access line for %s", rid);
  assert_int_equal(access_count(s, rid), 1);
  assert_key_order(acc);
  assert_str_field(acc, "level", service_level(acc, level));
  assert_str_field(acc, "service", sv->service);
  assert_str_field(acc, "method", method);
  assert_str_field(acc, "path", path);
  assert_int_equal(jint(acc, "status"), status);
  assert_int_equal(jint(acc, "bytes"), (json_int_t)bytes);
  json_t *d = json_object_get(acc, "duration_ms");
  assert_true(d != NULL && json_is_number(d) && json_number_value(d) >= 0);
  assert_str_field(acc, "remote_addr", "127.0.0.1");
  assert_true(is_lower_hex(jstr(acc, "trace_id"), 32));
  assert_true(is_lower_hex(jstr(acc, "span_id"), 16));
  return acc;
}

/* No line logged outside a request may carry a request's ids; the
 * server's connection lines (sv->conn_logger) are such lines. */
static inline void http_check_no_leak(const http_server *sv, service *s) {
  if (sv->conn_logger == NULL)
    return;
  size_t conn_lines = 0;
  for (size_t k = 0; k < s->n; k++) {
    const char *lg = str_or_null(s->lines[k], "logger");
    if (lg == NULL || strcmp(lg, sv->conn_logger) != 0)
      continue;
    conn_lines++;
    if (json_object_get(s->lines[k], "request_id") != NULL ||
        json_object_get(s->lines[k], "trace_id") != NULL)
      fail_msg("a context leaked out of a request: %s", s->texts[k]);
  }
  assert_true(conn_lines > 0);
}

/* ---- a GET, and the lines it leaves ------------------------------------- */

/*
 * A GET without ids: the body, a new id, the access line (no parent span,
 * no user), the key order of the handler's line, and the service's own
 * lines (listening, with its port, and stopped), which carry no request.
 */
static inline void scenario_basic_get(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  http_response r;
  http_get(port, "/api/orders/42", NULL, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"id\":42,\"state\":\"shipped\"}");
  assert_true(is_uuid(r.request_id));
  http_stop(c->sv, &s);

  json_t *acc = http_check_access(c->sv, &s, r.request_id, "GET",
                                  "/api/orders/42", 200, r.body_len, "info");
  assert_null(json_object_get(acc, "parent_span_id"));
  assert_null(json_object_get(acc, "user_id"));
  json_t *h = find_line(&s, r.request_id, "orders", "order loaded");
  assert_non_null(h);
  assert_key_order(h);
  check_same_ids(&s, r.request_id, acc);
  json_t *l = wait_line(&s, "message", "listening");
  assert_non_null(l);
  assert_null(json_object_get(l, "request_id"));
  assert_int_equal(jint(l, "port"), s.port);
  json_t *stopped = wait_line(&s, "message", "stopped");
  assert_non_null(stopped);
  assert_null(json_object_get(stopped, "request_id"));
  service_free(&s);
}

/* ---- X-Request-ID ------------------------------------------------------- */

/*
 * A line break inside X-Request-ID, which only a plain socket sends and
 * which each server splits its own way (hence not in the conformance
 * table). libmicrohttpd (so ulfius too) keeps a bare CR in the value, so
 * the id is replaced; an LF, bare or after a CR (the way an injection
 * would try it), ends the line and starts a second X-Request-ID header,
 * so the id is repeated and replaced. Each is echoed once.
 */
static inline void scenario_request_id_line_breaks(void **state) {
  const http_case *c = *state;
  const char *const cases[] = {
      "X-Request-ID: ab\rcd\r\n",
      "X-Request-ID: ab\nX-Request-ID: cd\r\n",
      "X-Request-ID: ab\r\nX-Request-ID: forged\r\n",
  };
  const size_t n = sizeof cases / sizeof cases[0];
  raw_response r[sizeof cases / sizeof cases[0]];
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  for (size_t i = 0; i < n; i++) {
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET /api/orders/%zu HTTP/1.1\r\nHost: t\r\n%s"
                       "Connection: close\r\n\r\n",
                       200 + i, cases[i]);
    raw_request(port, req, (size_t)len, &r[i]);
    assert_int_equal(r[i].status, 200);
    assert_int_equal(r[i].request_id_count, 1);
    if (!is_uuid(r[i].request_id))
      fail_msg("case %zu: echoed %s, want a new UUID", i, r[i].request_id);
  }
  http_stop(c->sv, &s);
  for (size_t i = 0; i < n; i++) {
    char path[64];
    snprintf(path, sizeof path, "/api/orders/%zu", 200 + i);
    json_t *acc = http_check_access(c->sv, &s, r[i].request_id, "GET", path,
                                    200, r[i].body_len, "info");
    check_same_ids(&s, r[i].request_id, acc);
  }
  assert_false(text_anywhere(&s, "forged"));
  service_free(&s);
}

/*
 * The conformance table sends 100 of one header at a time; here 100 of
 * each header trail reads in one request (libcurl), and 1000 traceparent
 * headers (a plain socket), within libmicrohttpd's per-connection memory:
 * a new trace and id, no user, no crash.
 */
static inline void scenario_many_repeated_headers(void **state) {
  const http_case *c = *state;
  enum { N = 100 };
  static char lines[4 * N][128];
  const char *h[4 * N + 1];
  for (int i = 0; i < N; i++) {
    snprintf(lines[(size_t)4 * i], sizeof lines[0], "%s", HTTP_TP_VALID);
    snprintf(lines[4 * i + 1], sizeof lines[0], "tracestate: k%d=v%d", i, i);
    snprintf(lines[4 * i + 2], sizeof lines[0], "X-Request-ID: rep-%d", i);
    snprintf(lines[4 * i + 3], sizeof lines[0], "X-User-ID: user-%d", i);
  }
  for (int i = 0; i < 4 * N; i++)
    h[i] = lines[i];
  h[(size_t)4 * N] = NULL;
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  http_response r;
  http_get(port, "/api/orders/5", h, &r);
  assert_int_equal(r.status, 200);
  assert_true(is_uuid(r.request_id));
  /* and 1000 traceparent headers, through a plain socket */
  size_t size = 1000 * 80 + 256, len = 0;
  char *req = malloc(size);
  assert_non_null(req);
  len += (size_t)snprintf(req + len, size - len,
                          "GET /api/orders/6 HTTP/1.1\r\nHost: t\r\n");
  for (int i = 0; i < 1000; i++)
    len += (size_t)snprintf(req + len, size - len, "%s\r\n", HTTP_TP_VALID);
  len += (size_t)snprintf(req + len, size - len, "Connection: close\r\n\r\n");
  raw_response rr;
  raw_request(port, req, len, &rr);
  free(req);
  assert_int_equal(rr.status, 200);
  assert_true(is_uuid(rr.request_id));
  http_stop(c->sv, &s);

  const char *rids[] = {r.request_id, rr.request_id};
  for (size_t i = 0; i < 2; i++) {
    json_t *acc = service_access_line(&s, rids[i]);
    assert_non_null(acc);
    assert_string_not_equal(jstr(acc, "trace_id"), HTTP_TP_TRACE);
    assert_null(json_object_get(acc, "parent_span_id"));
    assert_null(json_object_get(acc, "user_id")); /* sent 100 times */
    check_same_ids(&s, rids[i], acc);
  }
  assert_int_equal(service_count(&s, "trace_id", HTTP_TP_TRACE), 0);
  service_free(&s);
}

/* ---- request bodies ----------------------------------------------------- */

/*
 * A POST body of 100 KiB, larger than the server hands on in one piece
 * (libmicrohttpd calls the handler several times; ulfius gathers it up to
 * max_post_body_size; nginx buffers it in a temporary file, then sends it
 * as FastCGI stdin): read whole, or it would not parse; and a body that
 * is not JSON, a 400. The conformance table's bodies are small.
 */
static inline void scenario_bodies(void **state) {
  const http_case *c = *state;
  size_t big_len = (size_t)100 * 1024;
  char *big = malloc(big_len + 64);
  assert_non_null(big);
  int off = snprintf(big, 64, "{\"item\":\"book\",\"pad\":\"");
  memset(big + off, 'p', big_len);
  strcpy(big + off + big_len, "\"}");
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  http_response r[2];
  const char *h0[] = {"X-Request-ID: body-big", NULL};
  http_request(port, "POST", "/api/orders", h0, big, &r[0]);
  const char *h1[] = {"X-Request-ID: body-not-json", NULL};
  http_request(port, "POST", "/api/orders", h1, "not json", &r[1]);
  free(big);
  http_stop(c->sv, &s);
  assert_int_equal(r[0].status, 201);
  assert_int_equal(r[1].status, 400);
  json_t *acc = http_check_access(c->sv, &s, "body-big", "POST", "/api/orders",
                                  201, r[0].body_len, "info");
  check_same_ids(&s, "body-big", acc);
  /* parsed, so read whole: a cut body is not JSON */
  assert_non_null(find_line(&s, "body-big", "orders", "order created"));
  http_check_access(c->sv, &s, "body-not-json", "POST", "/api/orders", 400,
                    r[1].body_len, "warn");
  service_free(&s);
}

/* ---- many requests at once ---------------------------------------------- */

#define HTTP_NCONC 64

typedef struct http_mix_job {
  int port, i;
  http_response resp;
  pthread_barrier_t *start;
} http_mix_job;

/*
 * GETs that sleep in the handler, POSTs with bodies of a few KiB (several
 * handler calls each where the server passes a body in pieces), and quick
 * GETs, all released at once.
 */
static inline void *http_mix_run(void *arg) {
  http_mix_job *j = arg;
  char rid[64], path[96];
  snprintf(rid, sizeof rid, "X-Request-ID: conc-%d", j->i);
  const char *h[] = {rid, NULL};
  pthread_barrier_wait(j->start);
  switch (j->i % 4) {
  case 0:
    snprintf(path, sizeof path, "/api/orders/%d?sleep_ms=20", 100 + j->i);
    http_get(j->port, path, h, &j->resp);
    break;
  case 1: {
    char body[8192];
    int n = snprintf(body, sizeof body, "{\"n\":%d,\"pad\":\"", j->i);
    memset(body + n, 'q', 6000);
    strcpy(body + n + 6000, "\"}");
    http_request(j->port, "POST", "/api/orders", h, body, &j->resp);
    break;
  }
  case 2:
    snprintf(path, sizeof path, "/api/orders/%d", 100 + j->i);
    http_get(j->port, path, h, &j->resp);
    break;
  default:
    snprintf(path, sizeof path, "/api/orders/%d?sleep_ms=1", 100 + j->i);
    http_get(j->port, path, h, &j->resp);
    break;
  }
  return NULL;
}

/* Ids never cross between requests (or leak onto connection lines), each
 * request has its one access line, each POST's body reached its own
 * request. */
static inline void scenario_concurrent(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, HTTP_ENV_DEBUG);
  static http_mix_job jobs[HTTP_NCONC];
  pthread_barrier_t start_all;
  pthread_barrier_init(&start_all, NULL, HTTP_NCONC);
  pthread_t t[HTTP_NCONC];
  for (int i = 0; i < HTTP_NCONC; i++) {
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].port = port;
    jobs[i].i = i;
    jobs[i].start = &start_all;
    pthread_create(&t[i], NULL, http_mix_run, &jobs[i]);
  }
  for (int i = 0; i < HTTP_NCONC; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start_all);
  for (int i = 0; i < HTTP_NCONC; i++) {
    char want[32];
    snprintf(want, sizeof want, "conc-%d", i);
    assert_int_equal(jobs[i].resp.curl_error, 0);
    assert_int_equal(jobs[i].resp.status, i % 4 == 1 ? 201 : 200);
    assert_string_equal(jobs[i].resp.request_id, want);
  }
  http_stop(c->sv, &s);

  check_isolation(&s, HTTP_NCONC);
  http_check_no_leak(c->sv, &s);
  for (int i = 0; i < HTTP_NCONC; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    assert_int_equal(access_count(&s, rid), 1);
    json_t *acc = service_access_line(&s, rid);
    assert_int_equal(jint(acc, "bytes"), (json_int_t)jobs[i].resp.body_len);
    if (i % 4 == 1) {
      /* Each POST's body reached its own request. */
      json_t *line = find_line(&s, rid, "orders", "order created");
      assert_non_null(line);
      assert_int_equal(jint(json_object_get(line, "order"), "n"), i);
    }
  }
  service_free(&s);
}

/*
 * Requests that certainly interleave: every request's headers are in
 * (libmicrohttpd has made the first handler call of each, which the "100
 * Continue" proves) before any body is sent, and the bodies go in pieces,
 * in another order. On a polling thread, each request's calls are then
 * interleaved with the others'; each must still log with its own ids and
 * get its own body.
 */
#define HTTP_NIL 16

static inline void scenario_interleaved(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, HTTP_ENV_DEBUG);
  int fd[HTTP_NIL];
  char body[HTTP_NIL][2048];
  size_t blen[HTTP_NIL];
  for (int i = 0; i < HTTP_NIL; i++) {
    int n = snprintf(body[i], sizeof body[i], "{\"n\":%d,\"pad\":\"", i);
    memset(body[i] + n, 'z', 1000 + 37 * (size_t)i);
    strcpy(body[i] + n + 1000 + (size_t)37 * i, "\"}");
    blen[i] = strlen(body[i]);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST /api/orders HTTP/1.1\r\nHost: t\r\n"
                      "X-Request-ID: il-%d\r\nExpect: 100-continue\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      i, blen[i]);
    fd[i] = raw_connect(port);
    assert_int_equal(raw_send(fd[i], head, (size_t)hl), 0);
  }
  for (int i = 0; i < HTTP_NIL; i++) {
    char buf[256];
    raw_read_head(fd[i], buf, sizeof buf);
    if (strncmp(buf, "HTTP/1.1 100", 12) != 0)
      fail_msg("request %d: want 100 Continue, got %s", i, buf);
  }
  for (int i = HTTP_NIL - 1; i >= 0; i--)
    assert_int_equal(raw_send(fd[i], body[i], blen[i] / 2), 0);
  for (int i = 0; i < HTTP_NIL; i++)
    assert_int_equal(
        raw_send(fd[i], body[i] + blen[i] / 2, blen[i] - blen[i] / 2), 0);
  raw_response r[HTTP_NIL];
  for (int i = 0; i < HTTP_NIL; i++) {
    raw_read_response(fd[i], &r[i]);
    close(fd[i]);
    char want[32];
    snprintf(want, sizeof want, "il-%d", i);
    assert_int_equal(r[i].status, 201);
    assert_string_equal(r[i].request_id, want);
  }
  http_stop(c->sv, &s);
  for (int i = 0; i < HTTP_NIL; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "il-%d", i);
    json_t *acc = http_check_access(c->sv, &s, rid, "POST", "/api/orders", 201,
                                    r[i].body_len, "info");
    check_same_ids(&s, rid, acc);
    json_t *line = find_line(&s, rid, "orders", "order created");
    assert_non_null(line);
    assert_int_equal(jint(json_object_get(line, "order"), "n"), i);
  }
  http_check_no_leak(c->sv, &s);
  service_free(&s);
}

/* ---- hostile requests --------------------------------------------------- */

/*
 * Bytes no well-behaved client sends. Whatever libmicrohttpd makes of each
 * (an answer, a 400, a closed connection), the service must go on, and
 * every line it writes must be one valid JSON line (service_stop checks).
 * A header over libmicrohttpd's memory for a request gets its own 431.
 */
static inline void scenario_hostile(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, HTTP_ENV_DEBUG);
  static char big[1024 * 1024 + 256];
#define HTTP_RAW(lit)                                                          \
  { lit, sizeof(lit) - 1 }
  static const struct {
    const char *p;
    size_t len;
  } small[] = {
      /* a bare CR inside a traceparent */
      HTTP_RAW("GET /api/orders/401 HTTP/1.1\r\nHost: t\r\ntraceparent: "
               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\rX\r\n"
               "Connection: close\r\n\r\n"),
      /* a NUL inside X-Request-ID */
      HTTP_RAW("GET /api/orders/402 HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
               "ab\0cd\r\nConnection: close\r\n\r\n"),
      /* an obsolete folded header */
      HTTP_RAW("GET /api/orders/403 HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
               "fold\r\n  continued\r\nConnection: close\r\n\r\n"),
      /* a header name with non-ASCII and control bytes */
      HTTP_RAW("GET /api/orders/404 HTTP/1.1\r\nHost: t\r\nX-\xff\x01\x7f: "
               "v\r\nConnection: close\r\n\r\n"),
      /* control bytes, quotes and non-UTF-8 in the path */
      HTTP_RAW("GET /api/orders/405/\x01\"\xff\xc3 HTTP/1.1\r\nHost: t\r\n"
               "Connection: close\r\n\r\n"),
      /* a header line without a colon */
      HTTP_RAW("GET /api/orders/406 HTTP/1.1\r\nHost: t\r\nno colon here\r\n"
               "Connection: close\r\n\r\n"),
      /* not HTTP at all (a TLS hello) */
      HTTP_RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
      /* a User-Agent with escapes and a line break attempt */
      HTTP_RAW("GET /api/orders/407 HTTP/1.1\r\nHost: t\r\nUser-Agent: "
               "x\"\\\x1b[2J\r\r\nConnection: close\r\n\r\n"),
  };
#undef HTTP_RAW
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
    raw_response r;
    raw_request(port, small[i].p, small[i].len, &r);
    if (r.status == 200 && r.request_id[0] != '\0')
      assert_true(is_safe_id(r.request_id));
  }
  /* A 64 KiB traceparent: the request is served, with a new trace. */
  int n = snprintf(big, sizeof big,
                   "GET /api/orders/408 HTTP/1.1\r\nHost: t\r\n"
                   "X-Request-ID: big-tp\r\ntraceparent: 00-");
  memset(big + n, 'f', (size_t)64 * 1024);
  n += 64 * 1024;
  n += snprintf(big + n, sizeof big - (size_t)n,
                "\r\nConnection: close\r\n\r\n");
  raw_response rb;
  raw_request(port, big, (size_t)n, &rb);
  assert_int_equal(rb.status, 200);
  assert_string_equal(rb.request_id, "big-tp");
  /* 1 MiB of X-Request-ID: beyond what libmicrohttpd holds for a request,
   * so it answers 431 itself, before any handler runs. */
  n = snprintf(big, sizeof big,
               "GET /api/orders/431 HTTP/1.1\r\nHost: t\r\nX-Request-ID: ");
  memset(big + n, 'a', (size_t)1024 * 1024);
  n += 1024 * 1024;
  n += snprintf(big + n, sizeof big - (size_t)n,
                "\r\nConnection: close\r\n\r\n");
  raw_response r431;
  raw_request(port, big, (size_t)n, &r431);
  assert_true(r431.status == 431 || r431.status == 0);
  /* The service is still there and right. */
  http_response ok;
  const char *h[] = {"X-Request-ID: after-hostile", NULL};
  http_get(port, "/api/orders/409", h, &ok);
  assert_int_equal(ok.status, 200);
  assert_string_equal(ok.request_id, "after-hostile");
  http_stop(c->sv, &s);

  json_t *acc = service_access_line(&s, "big-tp");
  assert_non_null(acc);
  assert_string_not_equal(jstr(acc, "trace_id"), HTTP_TP_TRACE);
  json_t *a1 = access_by_path(&s, "/api/orders/401");
  assert_non_null(a1);
  assert_string_not_equal(jstr(a1, "trace_id"), HTTP_TP_TRACE);
  /* libmicrohttpd's own answer still has its access line, with a new
   * request id. */
  json_t *a431 = access_by_path(&s, "/api/orders/431");
  assert_non_null(a431);
  assert_int_equal(jint(a431, "status"), 431);
  assert_str_field(a431, "level", "warn");
  assert_true(is_uuid(jstr(a431, "request_id")));
  assert_int_equal(jint(a431, "bytes"), 0);
  http_check_access(c->sv, &s, "after-hostile", "GET", "/api/orders/409", 200,
                    ok.body_len, "info");
  http_check_no_leak(c->sv, &s);
  service_free(&s);
}

/* ---- the client that leaves --------------------------------------------- */

/*
 * The request is in (libmicrohttpd's "100 Continue" says the handler has
 * run), the body is not, and the client resets the connection: the
 * request ends with an error, and the access line says 499, client_gone.
 */
static inline void scenario_client_gone(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  int fd = raw_connect(port);
  const char *head = "POST /api/orders HTTP/1.1\r\nHost: t\r\n"
                     "X-Request-ID: gone-1\r\nExpect: 100-continue\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n";
  assert_int_equal(raw_send(fd, head, strlen(head)), 0);
  char buf[256];
  raw_read_head(fd, buf, sizeof buf);
  assert_memory_equal(buf, "HTTP/1.1 100", 12);
  assert_int_equal(raw_send(fd, "{\"n\":", 5), 0);
  raw_abort(fd);
  /* The access line comes once the server has seen the reset. */
  assert_non_null(wait_access(&s, "gone-1"));
  http_stop(c->sv, &s);
  json_t *acc = http_check_access(c->sv, &s, "gone-1", "POST", "/api/orders",
                                  499, 0, "warn");
  assert_true(json_is_true(json_object_get(acc, "client_gone")));
  service_free(&s);
}

/* ---- stopping ----------------------------------------------------------- */

/*
 * SIGTERM while a request is in flight (its body held back after
 * libmicrohttpd's "100 Continue"): the service stops accepting at once,
 * lets the request finish (its response and its access line), then logs
 * "stopped" and exits 0, nothing left at the drain deadline.
 */
static inline void scenario_drain(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  const char *body = "{\"item\":\"last\"}";
  char head[512];
  snprintf(head, sizeof head,
           "POST /api/orders HTTP/1.1\r\nHost: t\r\nX-Request-ID: drain-1\r\n"
           "Expect: 100-continue\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\n\r\n",
           strlen(body));
  int fd = raw_connect(port);
  assert_int_equal(raw_send(fd, head, strlen(head)), 0);
  char buf[256];
  raw_read_head(fd, buf, sizeof buf);
  assert_memory_equal(buf, "HTTP/1.1 100", 12);

  kill(s.pid, SIGTERM);
  json_t *stopping = wait_line(&s, "message", "stopping");
  assert_non_null(stopping);
  assert_int_equal(jint(stopping, "in_flight"), 1);
  int err = 0;
  int fd2 = raw_connect_rc(port, &err);
  if (fd2 >= 0)
    fail_msg("a new connection was accepted while stopping");
  assert_int_equal(err, ECONNREFUSED);

  assert_int_equal(raw_send(fd, body, strlen(body)), 0);
  raw_response r;
  raw_read_response(fd, &r);
  close(fd);
  assert_int_equal(r.status, 201);
  assert_string_equal(r.request_id, "drain-1");
  assert_true(r.conn_close);
  http_stop(c->sv, &s);

  json_t *acc = http_check_access(c->sv, &s, "drain-1", "POST", "/api/orders",
                                  201, r.body_len, "info");
  size_t at_access = 0, at_stopped = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (s.lines[i] == acc)
      at_access = i;
    const char *m = str_or_null(s.lines[i], "message");
    if (m && strcmp(m, "stopped") == 0)
      at_stopped = i;
  }
  assert_true(at_stopped > at_access);
  assert_int_equal(service_count(&s, "message",
                                 "requests still in flight at the "
                                 "drain deadline"),
                   0);
  service_free(&s);
}

/*
 * SIGINT stops the service as SIGTERM does (every other test stops it
 * with SIGTERM): the request answered and logged, "stopped" the last
 * line, exit status 0.
 */
static inline void scenario_sigint(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  http_response r;
  const char *h[] = {"X-Request-ID: before-int", NULL};
  http_get(port, "/api/orders/11", h, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.request_id, "before-int");
  http_stop_with(c->sv, &s, SIGINT);
  assert_non_null(wait_line(&s, "message", "stopped"));
  assert_non_null(service_access_line(&s, "before-int"));
  assert_true(s.n > 0);
  assert_string_equal(str_or_null(s.lines[s.n - 1], "message"), "stopped");
  if (c->sv->flags & HTTP_SV_SIGNAL_NAMED)
    assert_string_equal(str_or_null(find_message(&s, "stopping"), "signal"),
                        "SIGINT");
  service_free(&s);
}

/* ---- the table of a server built on libmicrohttpd ------------------------ */

/*
 * Every scenario above, as the rows of a cmocka table, for a server built
 * on libmicrohttpd (orders_mhd, orders_ulfius) with its two modes: most
 * in both; the line breaks in thread mode, the repeated headers and
 * SIGINT in polling mode (what they test does not depend on the mode).
 */
/* ---- request-scoped buffering ------------------------------------------ */

/*
 * The examples keep each request's debug lines (ORDERS_BUFFER_BYTES) and
 * write them only when it fails. Under 16 concurrent requests, half of them
 * failing (/api/orders/7, 503), at the default level: each failing request
 * has exactly its "query" line, marked buffered, then its error, then its
 * access line, in that order; a succeeding one has no debug line at all.
 */
enum { HTTP_NBUF = 16 };

static inline void check_buffered_request(service *s, const char *rid,
                                          int fails) {
  const char *want[] = {"query", "query timed out", "request completed"};
  size_t seen = 0;
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    const char *r = str_or_null(j, "request_id");
    if (r == NULL || strcmp(r, rid) != 0)
      continue;
    const char *level = str_or_null(j, "level");
    int buffered = json_is_true(json_object_get(j, "buffered"));
    if (!fails) {
      if (strcmp(level, "debug") == 0 || buffered)
        fail_msg("%s succeeded but wrote a debug line", rid);
      continue;
    }
    if (seen >= 3)
      fail_msg("%s: more lines than query, error, access", rid);
    assert_string_equal(str_or_null(j, "message"), want[seen]);
    assert_int_equal(buffered, seen == 0);
    if (seen == 0)
      assert_string_equal(level, "debug");
    seen++;
  }
  if (fails && seen != 3)
    fail_msg("%s: %zu of its 3 lines", rid, seen);
}

static inline void scenario_buffered(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  http_job jobs[HTTP_NBUF];
  memset(jobs, 0, sizeof jobs);
  for (int i = 0; i < HTTP_NBUF; i++) {
    jobs[i].port = port;
    snprintf(jobs[i].path, sizeof jobs[i].path, "/api/orders/%d",
             i % 2 ? 7 : 42);
    snprintf(jobs[i].rid_header, sizeof jobs[i].rid_header,
             "X-Request-ID: buf-%d", i);
  }
  http_jobs_run(HTTP_NBUF, jobs);
  http_stop(c->sv, &s);
  for (int i = 0; i < HTTP_NBUF; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "buf-%d", i);
    assert_string_equal(jobs[i].resp.request_id, rid);
    assert_int_equal(jobs[i].resp.status, i % 2 ? 503 : 200);
    check_buffered_request(&s, rid, i % 2);
  }
  service_free(&s);
}

/* ---- a request's state used again ---------------------------------------- */

/*
 * The adapters keep finished requests' states for the next ones
 * (adapters/state_cache.h). Full requests (user agent, continued trace,
 * tracestate, their own id, a query) and bare ones, one after the other:
 * a bare request's access line has none of what a full one carried, and
 * its own trace and id, whichever state it got. Rounds of "full, bare,
 * full, bare, bare" put a bare request right after a full one on every
 * server, and, on one whose workers take requests in turn (FastCGI's 8
 * threads), both kinds on every worker, which plain alternation would not.
 */
#define HTTP_REUSE_ROUND "FBFBB"
enum { HTTP_REUSE_ROUNDS = 4, HTTP_REUSE_BARE = 3 * HTTP_REUSE_ROUNDS };

static inline void check_bare_request(service *s, const char *rid) {
  json_t *acc = service_access_line(s, rid);
  if (acc == NULL)
    fail_msg("%s: no access line", rid);
  assert_string_equal(str_or_null(acc, "path"), "/api/orders/42");
  assert_null(json_object_get(acc, "user_agent"));
  assert_null(json_object_get(acc, "parent_span_id"));
  const char *trace = str_or_null(acc, "trace_id");
  assert_non_null(trace);
  assert_string_not_equal(trace, HTTP_TP_TRACE);
}

static inline void scenario_state_reused(void **state) {
  const http_case *c = *state;
  service s;
  int port = http_start(c->sv, &s, c->mode, NULL);
  static const char full[] =
      "GET /api/orders/42?card=4111 HTTP/1.1\r\nHost: t\r\n"
      "User-Agent: reuse-agent\r\nX-Request-ID: reuse-full\r\n" HTTP_TP_VALID
      "\r\ntracestate: reuse=1\r\nConnection: close\r\n\r\n";
  static const char bare[] =
      "GET /api/orders/42 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  const size_t per_round = sizeof HTTP_REUSE_ROUND - 1;
  char bare_ids[HTTP_REUSE_BARE][256];
  int nbare = 0;
  for (size_t i = 0; i < HTTP_REUSE_ROUNDS * per_round; i++) {
    int is_full = HTTP_REUSE_ROUND[i % per_round] == 'F';
    raw_response r;
    raw_request_str(port, is_full ? full : bare, &r);
    assert_int_equal(r.status, 200);
    if (is_full)
      continue;
    assert_true(is_uuid(r.request_id));
    snprintf(bare_ids[nbare++], sizeof bare_ids[0], "%s", r.request_id);
  }
  http_stop(c->sv, &s);
  assert_int_equal(nbare, HTTP_REUSE_BARE);
  for (int i = 0; i < nbare; i++)
    check_bare_request(&s, bare_ids[i]);
  /* two lines per full request: the handler's and the access line */
  assert_int_equal(service_count(&s, "request_id", "reuse-full"),
                   (size_t)HTTP_REUSE_ROUNDS * 2 * 2);
  service_free(&s);
}

#define HTTP_SCENARIOS_ON_MHD(thread, poll)                                    \
  HTTP_SCENARIO("test_get_thread", scenario_basic_get, thread),                \
      HTTP_SCENARIO("test_get_poll", scenario_basic_get, poll),                \
      HTTP_SCENARIO("test_request_id_line_breaks",                             \
                    scenario_request_id_line_breaks, thread),                  \
      HTTP_SCENARIO("test_many_repeated_headers",                              \
                    scenario_many_repeated_headers, poll),                     \
      HTTP_SCENARIO("test_bodies_thread", scenario_bodies, thread),            \
      HTTP_SCENARIO("test_bodies_poll", scenario_bodies, poll),                \
      HTTP_SCENARIO("test_concurrent_thread", scenario_concurrent, thread),    \
      HTTP_SCENARIO("test_concurrent_poll", scenario_concurrent, poll),        \
      HTTP_SCENARIO("test_interleaved_thread", scenario_interleaved, thread),  \
      HTTP_SCENARIO("test_interleaved_poll", scenario_interleaved, poll),      \
      HTTP_SCENARIO("test_hostile_thread", scenario_hostile, thread),          \
      HTTP_SCENARIO("test_hostile_poll", scenario_hostile, poll),              \
      HTTP_SCENARIO("test_client_gone_thread", scenario_client_gone, thread),  \
      HTTP_SCENARIO("test_client_gone_poll", scenario_client_gone, poll),      \
      HTTP_SCENARIO("test_drain_thread", scenario_drain, thread),              \
      HTTP_SCENARIO("test_drain_poll", scenario_drain, poll),                  \
      HTTP_SCENARIO("test_sigint", scenario_sigint, poll),                     \
      HTTP_SCENARIO("test_buffered_thread", scenario_buffered, thread),        \
      HTTP_SCENARIO("test_buffered_poll", scenario_buffered, poll),            \
      HTTP_SCENARIO("test_state_reused_thread", scenario_state_reused,         \
                    thread),                                                   \
      HTTP_SCENARIO("test_state_reused_poll", scenario_state_reused, poll)

#endif /* TRAIL_TEST_HTTP_SCENARIOS_H */
