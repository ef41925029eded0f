/*
 * The ulfius adapter end to end: examples/orders_ulfius runs on a loopback
 * port the kernel picks, in thread-per-connection mode and in
 * internal-polling mode (one thread taking every request's callbacks in
 * turn), and gets real HTTP requests, from libcurl and, where exact bytes
 * matter (CR, NUL, obs-fold, Expect: 100-continue, a client that resets),
 * from a plain socket. ulfius runs on libmicrohttpd: the cases here are
 * those test_http_mhd.c keeps, and the same requests must give the same
 * lines.
 *
 * The rules every server follows (request id, traceparent and tracestate,
 * user, the access line's fields, status and level, HEAD, the query left
 * out, skipped paths, absolute-form targets, keep-alive) are tested for
 * this example, in both modes, by the table of
 * tests/test_http_conformance.c; this file keeps what is ulfius's own: a
 * CR or LF inside a header, 100 of every header at once and 1000
 * traceparent headers, a large POST body gathered by ulfius, hostile
 * bytes, concurrency and interleaving, clients that leave, draining, and
 * the in-process API. The command line is tests/check_cli.sh's.
 *
 * Lines are checked once the service has stopped: the access line is
 * written by MHD's completion hook, after the response went out, so only
 * the service's exit says that every line is in.
 *
 * The parts of the API the example does not use (trail_ulfius_request,
 * trail_ulfius_add_endpoint_by_val, U_CALLBACK_ERROR, the adapter's own
 * 404, trail_ulfius_clean, trail_ulfius_error_log) are tested with an
 * instance in this process, when the build links the adapter in
 * (TRAIL_TEST_ULFIUS_INPROC, set by tests/CMakeLists.txt).
 */
#include "http_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifdef TRAIL_TEST_ULFIUS_INPROC
#include <trail/ulfius.h>
#endif

#define SERVICE "orders_ulfius"

static const char *const MODE_THREAD[] = {"--mode", "thread", NULL};
static const char *const MODE_POLL[] = {"--mode", "poll", NULL};
static const char *const ENV_DEBUG[] = {"TRAIL_LEVEL=debug", NULL};

static const char *const TP_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char *const TP_VALID =
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/* ---- checks on values --------------------------------------------------- */

static int is_lower_hex(const char *s, size_t n) {
  if (s == NULL || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* A lowercase UUID v4, as trail makes them. */
static int is_uuid(const char *s) {
  if (s == NULL || strlen(s) != 36 || s[14] != '4')
    return 0;
  for (size_t i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-'))
      return 0;
    if (!dash && !is_lower_hex((char[]){s[i], 0}, 1))
      return 0;
  }
  return 1;
}

/* A request id trail would keep: 1..128 of [A-Za-z0-9._:-]. */
static int is_safe_id(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > 128)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || strchr("._:-", s[i]) != NULL))
      return 0;
  return 1;
}

/* ---- lines -------------------------------------------------------------- */

static const char *str_or_null(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return v && json_is_string(v) ? json_string_value(v) : NULL;
}

/* The first line of request_id from logger with message (NULL: any). */
static json_t *find_line(service *s, const char *rid, const char *logger,
                         const char *message) {
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    const char *r = str_or_null(j, "request_id");
    const char *l = str_or_null(j, "logger");
    const char *m = str_or_null(j, "message");
    if (r && strcmp(r, rid) == 0 && l && strcmp(l, logger) == 0 &&
        (message == NULL || (m && strcmp(m, message) == 0)))
      return j;
  }
  return NULL;
}

/* The access line whose path is path. */
static json_t *access_by_path(service *s, const char *path) {
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    const char *m = str_or_null(j, "message");
    const char *p = str_or_null(j, "path");
    if (m && strcmp(m, "request completed") == 0 && p && strcmp(p, path) == 0)
      return j;
  }
  return NULL;
}

static size_t lines_with(service *s, const char *key, const char *value) {
  return service_count(s, key, value);
}

static int text_anywhere(service *s, const char *needle) {
  for (size_t i = 0; i < s->n; i++)
    if (strstr(s->texts[i], needle) != NULL)
      return 1;
  return 0;
}

static json_int_t jint(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  if (v == NULL || !json_is_integer(v))
    fail_msg("no integer %s", key);
  return json_integer_value(v);
}

/*
 * The waits below end when the line comes or the service ends; the
 * deadline only turns a broken service into a failure rather than a hang.
 */
#define WAIT_BOUND_S 120

static int wait_more(service *s) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += WAIT_BOUND_S;
  return pthread_cond_timedwait(&s->cv, &s->lock, &t) == 0;
}

/* Waits (on the harness's reader) for a line with key == value. */
static json_t *wait_line(service *s, const char *key, const char *value) {
  json_t *found = NULL;
  size_t seen = 0;
  int alive = 1;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    for (; seen < s->n && found == NULL; seen++) {
      const char *v = str_or_null(s->lines[seen], key);
      if (v && strcmp(v, value) == 0)
        found = s->lines[seen];
    }
    if (found != NULL || s->eof || !alive)
      break;
    alive = wait_more(s);
  }
  pthread_mutex_unlock(&s->lock);
  if (found == NULL && !alive)
    fail_msg("no line with %s %s", key, value);
  return found;
}

/* Waits for the access line of rid; NULL if the service ended first. */
static json_t *wait_access(service *s, const char *rid) {
  json_t *found;
  int alive = 1;
  pthread_mutex_lock(&s->lock);
  while ((found = service_access_line(s, rid)) == NULL && !s->eof && alive)
    alive = wait_more(s);
  pthread_mutex_unlock(&s->lock);
  if (found == NULL && !alive)
    fail_msg("no access line for %s", rid);
  return found;
}

/*
 * The service the running test started and has not stopped: a failed
 * assertion leaves the test early, and the teardown then ends the service
 * rather than leave it running.
 */
static service *live;

static void start(service *s, const char *const *mode, const char *const *env) {
  service_start(s, SERVICE, mode, env);
  live = s;
}

static void stop(service *s) {
  live = NULL;
  service_stop(s);
}

static int teardown(void **state) {
  (void)state;
  if (live != NULL) {
    kill(live->pid, SIGKILL);
    waitpid(live->pid, NULL, 0);
    pthread_join(live->reader, NULL);
    service_free(live);
    live = NULL;
  }
  return 0;
}

/* Like stop(), with the signal given. */
static void stop_with(service *s, int sig) {
  live = NULL;
  kill(s->pid, sig);
  int status;
  assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
  pthread_join(s->reader, NULL);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("service ended with status 0x%x", status);
  assert_int_equal(s->bad_lines, 0);
}

/*
 * The access line of rid, checked for what every access line must say;
 * the handler line's ids must be the access line's.
 */
static json_t *check_access(service *s, const char *rid, const char *method,
                            const char *path, int status, size_t bytes,
                            const char *level) {
  json_t *acc = service_access_line(s, rid);
  if (acc == NULL)
    fail_msg("no access line for %s", rid);
  assert_key_order(acc);
  assert_str_field(acc, "level", service_level(acc, level));
  assert_str_field(acc, "service", "orders-ulfius");
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

/* Every line of rid carries the access line's trace and span. */
static void check_same_ids(service *s, const char *rid, json_t *acc) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    const char *r = str_or_null(s->lines[i], "request_id");
    if (r == NULL || strcmp(r, rid) != 0)
      continue;
    n++;
    assert_string_equal(jstr(s->lines[i], "trace_id"), jstr(acc, "trace_id"));
    assert_string_equal(jstr(s->lines[i], "span_id"), jstr(acc, "span_id"));
  }
  assert_true(n >= 2);
}

/* ---- a GET, and the lines it leaves ------------------------------------ */

static void check_basic_get(const char *const *mode) {
  service s;
  start(&s, mode, NULL);
  http_response r;
  http_get(s.port, "/api/orders/42", NULL, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"id\":42,\"state\":\"shipped\"}");
  assert_true(is_uuid(r.request_id));
  stop(&s);

  json_t *acc = check_access(&s, r.request_id, "GET", "/api/orders/42", 200,
                             r.body_len, "info");
  assert_null(json_object_get(acc, "parent_span_id"));
  assert_null(json_object_get(acc, "user_id"));
  json_t *h = find_line(&s, r.request_id, "orders", "order loaded");
  assert_non_null(h);
  assert_key_order(h);
  check_same_ids(&s, r.request_id, acc);
  /* The listening line and the stop lines carry no request. */
  json_t *l = wait_line(&s, "message", "listening");
  assert_null(json_object_get(l, "request_id"));
  assert_non_null(wait_line(&s, "message", "stopped"));
  service_free(&s);
}

static void test_get_thread(void **state) {
  (void)state;
  check_basic_get(MODE_THREAD);
}

static void test_get_poll(void **state) {
  (void)state;
  check_basic_get(MODE_POLL);
}

/* ---- X-Request-ID -------------------------------------------------------- */

/*
 * A line break inside X-Request-ID, which only a plain socket sends: a
 * bare CR (MHD, under ulfius, keeps it in the value), an LF that starts a
 * second X-Request-ID header, a CR LF the way an injection would try it.
 * Each id is replaced by a new one, echoed once. (Control bytes and
 * non-ASCII ids are the conformance table's.)
 */
static void test_request_id_line_breaks(void **state) {
  (void)state;
  const char *const cases[] = {
      "X-Request-ID: ab\rcd\r\n",
      "X-Request-ID: ab\nX-Request-ID: cd\r\n",
      "X-Request-ID: ab\r\nX-Request-ID: forged\r\n",
  };
  const size_t n = sizeof cases / sizeof cases[0];
  raw_response r[sizeof cases / sizeof cases[0]];
  service s;
  start(&s, MODE_THREAD, NULL);
  for (size_t i = 0; i < n; i++) {
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET /api/orders/%zu HTTP/1.1\r\nHost: t\r\n%s"
                       "Connection: close\r\n\r\n",
                       200 + i, cases[i]);
    raw_request(s.port, req, (size_t)len, &r[i]);
    assert_int_equal(r[i].status, 200);
    assert_int_equal(r[i].request_id_count, 1);
    if (!is_uuid(r[i].request_id))
      fail_msg("case %zu: echoed %s, want a new UUID", i, r[i].request_id);
  }
  stop(&s);
  for (size_t i = 0; i < n; i++) {
    char path[64];
    snprintf(path, sizeof path, "/api/orders/%zu", 200 + i);
    json_t *acc = check_access(&s, r[i].request_id, "GET", path, 200,
                               r[i].body_len, "info");
    check_same_ids(&s, r[i].request_id, acc);
  }
  assert_false(text_anywhere(&s, "forged"));
  service_free(&s);
}

/*
 * The table sends 100 of one header at a time; here 100 of each header
 * trail reads in one request (libcurl), and 1000 traceparent headers (a
 * plain socket): a new trace and id, no user, no crash.
 */
static void test_many_repeated_headers(void **state) {
  (void)state;
  enum { N = 100 };
  static char lines[4 * N][128];
  const char *h[4 * N + 1];
  for (int i = 0; i < N; i++) {
    snprintf(lines[(size_t)4 * i], sizeof lines[0], "%s", TP_VALID);
    snprintf(lines[4 * i + 1], sizeof lines[0], "tracestate: k%d=v%d", i, i);
    snprintf(lines[4 * i + 2], sizeof lines[0], "X-Request-ID: rep-%d", i);
    snprintf(lines[4 * i + 3], sizeof lines[0], "X-User-ID: user-%d", i);
  }
  for (int i = 0; i < 4 * N; i++)
    h[i] = lines[i];
  h[(size_t)4 * N] = NULL;
  service s;
  start(&s, MODE_POLL, NULL);
  http_response r;
  http_get(s.port, "/api/orders/5", h, &r);
  assert_int_equal(r.status, 200);
  assert_true(is_uuid(r.request_id));
  /* and 1000 traceparent headers, through a plain socket */
  size_t size = 1000 * 80 + 256, len = 0;
  char *req = malloc(size);
  len += (size_t)snprintf(req + len, size - len,
                          "GET /api/orders/6 HTTP/1.1\r\nHost: t\r\n");
  for (int i = 0; i < 1000; i++)
    len += (size_t)snprintf(req + len, size - len, "%s\r\n", TP_VALID);
  len += (size_t)snprintf(req + len, size - len, "Connection: close\r\n\r\n");
  raw_response rr;
  raw_request(s.port, req, len, &rr);
  free(req);
  assert_int_equal(rr.status, 200);
  assert_true(is_uuid(rr.request_id));
  stop(&s);

  const char *rids[] = {r.request_id, rr.request_id};
  for (size_t i = 0; i < 2; i++) {
    json_t *acc = service_access_line(&s, rids[i]);
    assert_non_null(acc);
    assert_string_not_equal(jstr(acc, "trace_id"), TP_TRACE);
    assert_null(json_object_get(acc, "parent_span_id"));
    assert_null(json_object_get(acc, "user_id")); /* sent 100 times */
    check_same_ids(&s, rids[i], acc);
  }
  assert_int_equal(lines_with(&s, "trace_id", TP_TRACE), 0);
  service_free(&s);
}

/* ---- request bodies ------------------------------------------------------ */

/*
 * A POST body larger than MHD hands ulfius in one call (ulfius gathers it
 * up to max_post_body_size): read whole, or it would not parse; and a body
 * that is not JSON. The table's bodies are small.
 */
static void check_bodies(const char *const *mode) {
  size_t big_len = (size_t)100 * 1024;
  char *big = malloc(big_len + 64);
  assert_non_null(big);
  int off = snprintf(big, 64, "{\"item\":\"book\",\"pad\":\"");
  memset(big + off, 'p', big_len);
  strcpy(big + off + big_len, "\"}");
  service s;
  start(&s, mode, NULL);
  http_response r[2];
  const char *h0[] = {"X-Request-ID: body-big", NULL};
  http_request(s.port, "POST", "/api/orders", h0, big, &r[0]);
  const char *h1[] = {"X-Request-ID: body-not-json", NULL};
  http_request(s.port, "POST", "/api/orders", h1, "not json", &r[1]);
  stop(&s);
  assert_int_equal(r[0].status, 201);
  assert_int_equal(r[1].status, 400);
  json_t *acc = check_access(&s, "body-big", "POST", "/api/orders", 201,
                             r[0].body_len, "info");
  check_same_ids(&s, "body-big", acc);
  assert_non_null(find_line(&s, "body-big", "orders", "order created"));
  check_access(&s, "body-not-json", "POST", "/api/orders", 400, r[1].body_len,
               "warn");
  free(big);
  service_free(&s);
}

static void test_bodies_thread(void **state) {
  (void)state;
  check_bodies(MODE_THREAD);
}

static void test_bodies_poll(void **state) {
  (void)state;
  check_bodies(MODE_POLL);
}

/* ---- many requests at once ---------------------------------------------- */

#define NCONC 64

typedef struct mix_job {
  int port, i;
  http_response resp;
  pthread_barrier_t *start;
} mix_job;

/*
 * GETs that sleep in the handler, POSTs with bodies of a few KiB (several
 * access-handler calls each), and quick GETs, all released at once.
 */
static void *mix_run(void *arg) {
  mix_job *j = arg;
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

/* No line logged outside a request may carry a request id. */
static void check_no_leak(service *s) {
  size_t conn_lines = 0;
  for (size_t k = 0; k < s->n; k++) {
    const char *lg = str_or_null(s->lines[k], "logger");
    if (lg == NULL || strcmp(lg, "ulfius.conn") != 0)
      continue;
    conn_lines++;
    if (json_object_get(s->lines[k], "request_id") != NULL ||
        json_object_get(s->lines[k], "trace_id") != NULL)
      fail_msg("a context leaked out of a request: %s", s->texts[k]);
  }
  assert_true(conn_lines > 0);
}

static void check_concurrent(const char *const *mode) {
  service s;
  start(&s, mode, ENV_DEBUG);
  static mix_job jobs[NCONC];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, NCONC);
  pthread_t t[NCONC];
  for (int i = 0; i < NCONC; i++) {
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].port = s.port;
    jobs[i].i = i;
    jobs[i].start = &start;
    pthread_create(&t[i], NULL, mix_run, &jobs[i]);
  }
  for (int i = 0; i < NCONC; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);
  for (int i = 0; i < NCONC; i++) {
    char want[32];
    snprintf(want, sizeof want, "conc-%d", i);
    assert_int_equal(jobs[i].resp.curl_error, 0);
    assert_int_equal(jobs[i].resp.status, i % 4 == 1 ? 201 : 200);
    assert_string_equal(jobs[i].resp.request_id, want);
  }
  stop(&s);

  check_isolation(&s, NCONC);
  check_no_leak(&s);
  for (int i = 0; i < NCONC; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    json_t *acc = service_access_line(&s, rid);
    assert_int_equal(jint(acc, "bytes"), (json_int_t)jobs[i].resp.body_len);
    if (i % 4 == 1) {
      /* Each POST's body reached its own request. */
      json_t *c = find_line(&s, rid, "orders", "order created");
      assert_non_null(c);
      assert_int_equal(jint(json_object_get(c, "order"), "n"), i);
    }
  }
  service_free(&s);
}

static void test_concurrent_thread(void **state) {
  (void)state;
  check_concurrent(MODE_THREAD);
}

static void test_concurrent_poll(void **state) {
  (void)state;
  check_concurrent(MODE_POLL);
}

/*
 * Requests that certainly interleave: every request's headers are in (MHD
 * has made the first access-handler call of each, which the "100 Continue"
 * proves) before any body is sent, and the bodies go in pieces, in another
 * order. On the polling thread, each request's calls are then interleaved
 * with the others'; each must still log with its own ids and get its own
 * body.
 */
#define NIL 16

static void check_interleaved(const char *const *mode) {
  service s;
  start(&s, mode, ENV_DEBUG);
  int fd[NIL];
  char body[NIL][2048];
  size_t blen[NIL];
  for (int i = 0; i < NIL; i++) {
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
    fd[i] = raw_connect(s.port);
    assert_int_equal(raw_send(fd[i], head, (size_t)hl), 0);
  }
  for (int i = 0; i < NIL; i++) {
    char buf[256];
    raw_read_head(fd[i], buf, sizeof buf);
    if (strncmp(buf, "HTTP/1.1 100", 12) != 0)
      fail_msg("request %d: want 100 Continue, got %s", i, buf);
  }
  for (int i = NIL - 1; i >= 0; i--)
    assert_int_equal(raw_send(fd[i], body[i], blen[i] / 2), 0);
  for (int i = 0; i < NIL; i++)
    assert_int_equal(
        raw_send(fd[i], body[i] + blen[i] / 2, blen[i] - blen[i] / 2), 0);
  raw_response r[NIL];
  for (int i = 0; i < NIL; i++) {
    raw_read_response(fd[i], &r[i]);
    close(fd[i]);
    char want[32];
    snprintf(want, sizeof want, "il-%d", i);
    assert_int_equal(r[i].status, 201);
    assert_string_equal(r[i].request_id, want);
  }
  stop(&s);
  for (int i = 0; i < NIL; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "il-%d", i);
    json_t *acc = check_access(&s, rid, "POST", "/api/orders", 201,
                               r[i].body_len, "info");
    check_same_ids(&s, rid, acc);
    json_t *c = find_line(&s, rid, "orders", "order created");
    assert_non_null(c);
    assert_int_equal(jint(json_object_get(c, "order"), "n"), i);
  }
  check_no_leak(&s);
  service_free(&s);
}

static void test_interleaved_thread(void **state) {
  (void)state;
  check_interleaved(MODE_THREAD);
}

static void test_interleaved_poll(void **state) {
  (void)state;
  check_interleaved(MODE_POLL);
}

/* ---- hostile requests ---------------------------------------------------- */

/*
 * Bytes no well-behaved client sends. Whatever MHD makes of each (an
 * answer, a 400, a closed connection), the service must go on, and every
 * line it writes must be one valid JSON line (service_stop checks).
 */
static void check_hostile(const char *const *mode) {
  service s;
  start(&s, mode, ENV_DEBUG);
  static char big[1024 * 1024 + 256];
#define RAW(lit)                                                               \
  { lit, sizeof(lit) - 1 }
  static const struct {
    const char *p;
    size_t len;
  } small[] = {
      /* a bare CR inside a traceparent */
      RAW("GET /api/orders/401 HTTP/1.1\r\nHost: t\r\ntraceparent: "
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\rX\r\n"
          "Connection: close\r\n\r\n"),
      /* a NUL inside X-Request-ID */
      RAW("GET /api/orders/402 HTTP/1.1\r\nHost: t\r\nX-Request-ID: ab\0cd\r\n"
          "Connection: close\r\n\r\n"),
      /* an obsolete folded header */
      RAW("GET /api/orders/403 HTTP/1.1\r\nHost: t\r\nX-Request-ID: fold\r\n"
          "  continued\r\nConnection: close\r\n\r\n"),
      /* a header name with non-ASCII and control bytes */
      RAW("GET /api/orders/404 HTTP/1.1\r\nHost: t\r\nX-\xff\x01\x7f: v\r\n"
          "Connection: close\r\n\r\n"),
      /* control bytes, quotes and non-UTF-8 in the path */
      RAW("GET /api/orders/405/\x01\"\xff\xc3 HTTP/1.1\r\nHost: t\r\n"
          "Connection: close\r\n\r\n"),
      /* a header line without a colon */
      RAW("GET /api/orders/406 HTTP/1.1\r\nHost: t\r\nno colon here\r\n"
          "Connection: close\r\n\r\n"),
      /* not HTTP at all (a TLS hello) */
      RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
      /* a User-Agent with escapes and a line break attempt */
      RAW("GET /api/orders/407 HTTP/1.1\r\nHost: t\r\nUser-Agent: "
          "x\"\\\x1b[2J\r\r\nConnection: close\r\n\r\n"),
  };
#undef RAW
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
    raw_response r;
    raw_request(s.port, small[i].p, small[i].len, &r);
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
  raw_request(s.port, big, (size_t)n, &rb);
  assert_int_equal(rb.status, 200);
  assert_string_equal(rb.request_id, "big-tp");
  /* 1 MiB of X-Request-ID: beyond what MHD holds for a request, so MHD
   * answers 431 itself, before any handler runs. */
  n = snprintf(big, sizeof big,
               "GET /api/orders/431 HTTP/1.1\r\nHost: t\r\nX-Request-ID: ");
  memset(big + n, 'a', (size_t)1024 * 1024);
  n += 1024 * 1024;
  n += snprintf(big + n, sizeof big - (size_t)n,
                "\r\nConnection: close\r\n\r\n");
  raw_response r431;
  raw_request(s.port, big, (size_t)n, &r431);
  assert_true(r431.status == 431 || r431.status == 0);
  /* The service is still there and right. */
  http_response ok;
  const char *h[] = {"X-Request-ID: after-hostile", NULL};
  http_get(s.port, "/api/orders/409", h, &ok);
  assert_int_equal(ok.status, 200);
  assert_string_equal(ok.request_id, "after-hostile");
  stop(&s);

  json_t *acc = service_access_line(&s, "big-tp");
  assert_non_null(acc);
  assert_string_not_equal(jstr(acc, "trace_id"), TP_TRACE);
  json_t *a1 = access_by_path(&s, "/api/orders/401");
  assert_non_null(a1);
  assert_string_not_equal(jstr(a1, "trace_id"), TP_TRACE);
  /* MHD's own answer still has its access line, with a new request id. */
  json_t *a431 = access_by_path(&s, "/api/orders/431");
  assert_non_null(a431);
  assert_int_equal(jint(a431, "status"), 431);
  assert_str_field(a431, "level", "warn");
  assert_true(is_uuid(jstr(a431, "request_id")));
  assert_int_equal(jint(a431, "bytes"), 0);
  check_access(&s, "after-hostile", "GET", "/api/orders/409", 200, ok.body_len,
               "info");
  check_no_leak(&s);
  service_free(&s);
}

static void test_hostile_thread(void **state) {
  (void)state;
  check_hostile(MODE_THREAD);
}

static void test_hostile_poll(void **state) {
  (void)state;
  check_hostile(MODE_POLL);
}

/* ---- the client that leaves --------------------------------------------- */

/*
 * The request is in (100 Continue says the handler has run), the body is
 * not, and the client resets the connection: MHD ends the request with an
 * error, and the access line says 499, client_gone.
 */
static void check_client_gone(const char *const *mode) {
  service s;
  start(&s, mode, NULL);
  int fd = raw_connect(s.port);
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
  /* The access line comes once MHD has seen the reset. */
  assert_non_null(wait_access(&s, "gone-1"));
  stop(&s);
  json_t *acc =
      check_access(&s, "gone-1", "POST", "/api/orders", 499, 0, "warn");
  assert_true(json_is_true(json_object_get(acc, "client_gone")));
  service_free(&s);
}

static void test_client_gone_thread(void **state) {
  (void)state;
  check_client_gone(MODE_THREAD);
}

static void test_client_gone_poll(void **state) {
  (void)state;
  check_client_gone(MODE_POLL);
}

/* ---- stopping ------------------------------------------------------------ */

/*
 * SIGTERM while a request is in flight: the service stops accepting at
 * once, lets the request finish (its response and its access line), then
 * logs "stopped" and exits 0.
 */
static void check_drain(const char *const *mode) {
  service s;
  start(&s, mode, NULL);
  const char *body = "{\"item\":\"last\"}";
  char head[512];
  snprintf(head, sizeof head,
           "POST /api/orders HTTP/1.1\r\nHost: t\r\nX-Request-ID: drain-1\r\n"
           "Expect: 100-continue\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\n\r\n",
           strlen(body));
  int fd = raw_connect(s.port);
  assert_int_equal(raw_send(fd, head, strlen(head)), 0);
  char buf[256];
  raw_read_head(fd, buf, sizeof buf);
  assert_memory_equal(buf, "HTTP/1.1 100", 12);

  kill(s.pid, SIGTERM);
  json_t *stopping = wait_line(&s, "message", "stopping");
  assert_non_null(stopping);
  assert_int_equal(jint(stopping, "in_flight"), 1);
  int err = 0;
  int fd2 = raw_connect_rc(s.port, &err);
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
  stop(&s);

  json_t *acc = check_access(&s, "drain-1", "POST", "/api/orders", 201,
                             r.body_len, "info");
  size_t at_access = 0, at_stopped = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (s.lines[i] == acc)
      at_access = i;
    const char *m = str_or_null(s.lines[i], "message");
    if (m && strcmp(m, "stopped") == 0)
      at_stopped = i;
  }
  assert_true(at_stopped > at_access);
  assert_int_equal(lines_with(&s, "message",
                              "requests still in flight at the "
                              "drain deadline"),
                   0);
  service_free(&s);
}

static void test_drain_thread(void **state) {
  (void)state;
  check_drain(MODE_THREAD);
}

static void test_drain_poll(void **state) {
  (void)state;
  check_drain(MODE_POLL);
}

static void test_sigint(void **state) {
  (void)state;
  service s;
  start(&s, MODE_POLL, NULL);
  http_response r;
  http_get(s.port, "/api/orders/11", NULL, &r);
  assert_int_equal(r.status, 200);
  stop_with(&s, SIGINT);
  assert_non_null(wait_line(&s, "message", "stopped"));
  assert_non_null(service_access_line(&s, r.request_id));
  service_free(&s);
}

/* ---- the command line ---------------------------------------------------- */

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

/* The captured line of request_id with message; the caller decrefs it. */
static json_t *cap_find(const char *rid, const char *message) {
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    const char *r = str_or_null(j, "request_id");
    const char *m = str_or_null(j, "message");
    if (r && strcmp(r, rid) == 0 && m && strcmp(m, message) == 0)
      return j;
    json_decref(j);
  }
  return NULL;
}

static size_t cap_count_message(const char *message) {
  size_t n = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    const char *m = str_or_null(j, "message");
    if (m && strcmp(m, message) == 0)
      n++;
    json_decref(j);
  }
  return n;
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

static void TRAIL__PRINTF(2, 3)
    call_error_log(void *cls, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  trail_ulfius_error_log(cls, fmt, ap);
  va_end(ap);
}

/* MHD's messages: formatted, trailing newline dropped, escaped, warn lines
 * of logger "http" (the core's server-error lines). */
static void test_inproc_error_log(void **state) {
  (void)state;
  call_error_log(NULL, "Error %d on %s\n", 7, "line\none");
  call_error_log(NULL, "%s", "plain");
  assert_int_equal(cap_count(), 2);
  json_t *a = cap_json(0);
  assert_str_field(a, "logger", "http");
  assert_str_field(a, "level", "warn");
  assert_str_field(a, "message", "Error 7 on line\none");
  json_decref(a);
  json_t *b = cap_json(1);
  assert_str_field(b, "logger", "http");
  assert_str_field(b, "message", "plain");
  json_decref(b);
}
#endif /* TRAIL_TEST_ULFIUS_INPROC */

int main(void) {
  curl_global_init(CURL_GLOBAL_ALL);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_get_thread, teardown),
      cmocka_unit_test_teardown(test_get_poll, teardown),
      cmocka_unit_test_teardown(test_request_id_line_breaks, teardown),
      cmocka_unit_test_teardown(test_many_repeated_headers, teardown),
      cmocka_unit_test_teardown(test_bodies_thread, teardown),
      cmocka_unit_test_teardown(test_bodies_poll, teardown),
      cmocka_unit_test_teardown(test_concurrent_thread, teardown),
      cmocka_unit_test_teardown(test_concurrent_poll, teardown),
      cmocka_unit_test_teardown(test_interleaved_thread, teardown),
      cmocka_unit_test_teardown(test_interleaved_poll, teardown),
      cmocka_unit_test_teardown(test_hostile_thread, teardown),
      cmocka_unit_test_teardown(test_hostile_poll, teardown),
      cmocka_unit_test_teardown(test_client_gone_thread, teardown),
      cmocka_unit_test_teardown(test_client_gone_poll, teardown),
      cmocka_unit_test_teardown(test_drain_thread, teardown),
      cmocka_unit_test_teardown(test_drain_poll, teardown),
      cmocka_unit_test_teardown(test_sigint, teardown),
#ifdef TRAIL_TEST_ULFIUS_INPROC
      cmocka_unit_test_setup_teardown(test_inproc_api, inproc_setup,
                                      inproc_teardown),
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
