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
 * tests/test_http_conformance.c (the row "fcgi-nginx"). This file keeps
 * what is FastCGI's or nginx's own: the service's name and its listening
 * and stop lines, the header lines nginx refuses itself with its 400
 * (which the table skips, SV_FRONT_HEADER_LIMIT), a body nginx buffers in
 * a file, concurrency across the worker threads, SIGINT, and the
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
#include "http_harness.h"
#include "nginx_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifdef TRAIL_TEST_FCGI_INPROC
#include <trail/fcgi.h>
#endif

#define SERVICE "orders_fcgi"

static const char *const ENV_DEBUG[] = {"TRAIL_LEVEL=debug", NULL};

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

/* ---- lines -------------------------------------------------------------- */

static const char *str_or_null(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return v && json_is_string(v) ? json_string_value(v) : NULL;
}

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

/* How many access lines carry request id rid. */
static size_t access_count(service *s, const char *rid) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    const char *m = str_or_null(s->lines[i], "message");
    const char *r = str_or_null(s->lines[i], "request_id");
    if (m && strcmp(m, "request completed") == 0 && r && strcmp(r, rid) == 0)
      n++;
  }
  return n;
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

static json_t *wait_line(service *s, const char *key, const char *value) {
  json_t *found = NULL;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    for (size_t i = 0; i < s->n && found == NULL; i++) {
      const char *v = str_or_null(s->lines[i], key);
      if (v && strcmp(v, value) == 0)
        found = s->lines[i];
    }
    if (found != NULL || s->eof)
      break;
    pthread_cond_wait(&s->cv, &s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return found;
}

/*
 * The service and the nginx the running test started and has not stopped:
 * a failed assertion leaves the test early, and the teardown then ends
 * both rather than leave them running.
 */
static service *live;
static nginx *live_ng;

/* orders_fcgi, then nginx in front of it. */
static void start(service *s, nginx *ng, const char *const *env) {
  service_start(s, SERVICE, NULL, env);
  live = s;
  nginx_start_fastcgi(ng, s->port);
  live_ng = ng;
}

/* nginx first (every answer is in), then the service (every line is). */
static void stop(service *s, nginx *ng) {
  live_ng = NULL;
  nginx_stop(ng);
  live = NULL;
  service_stop(s);
}

static int teardown(void **state) {
  (void)state;
  if (live_ng != NULL) {
    nginx_stop(live_ng);
    live_ng = NULL;
  }
  if (live != NULL) {
    kill(live->pid, SIGKILL);
    waitpid(live->pid, NULL, 0);
    pthread_join(live->reader, NULL);
    service_free(live);
    live = NULL;
  }
  return 0;
}

/*
 * The access line of rid, checked for what every access line must say:
 * exactly one per request, its fields, the client's address as nginx saw
 * it (REMOTE_ADDR).
 */
static json_t *check_access(service *s, const char *rid, const char *method,
                            const char *path, int status, size_t bytes,
                            const char *level) {
  json_t *acc = service_access_line(s, rid);
  if (acc == NULL)
    fail_msg("no access line for %s", rid);
  assert_int_equal(access_count(s, rid), 1);
  assert_key_order(acc);
  assert_str_field(acc, "level", service_level(acc, level));
  assert_str_field(acc, "service", "orders-fcgi");
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

static void test_get(void **state) {
  (void)state;
  service s;
  nginx ng;
  start(&s, &ng, NULL);
  http_response r;
  http_get(ng.port, "/api/orders/42", NULL, &r);
  assert_int_equal(r.curl_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"id\":42,\"state\":\"shipped\"}");
  assert_true(is_uuid(r.request_id));
  stop(&s, &ng);

  json_t *acc = check_access(&s, r.request_id, "GET", "/api/orders/42", 200,
                             r.body_len, "info");
  assert_null(json_object_get(acc, "parent_span_id"));
  assert_null(json_object_get(acc, "user_id"));
  json_t *h = find_line(&s, r.request_id, "orders", "order loaded");
  assert_non_null(h);
  assert_key_order(h);
  check_same_ids(&s, r.request_id, acc);
  json_t *l = wait_line(&s, "message", "listening");
  assert_non_null(l);
  assert_null(json_object_get(l, "request_id"));
  assert_non_null(wait_line(&s, "message", "stopped"));
  service_free(&s);
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
  nginx ng;
  start(&s, &ng, NULL);
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
    raw_request(ng.port, req, (size_t)len, &r[i]);
    free(req);
  }
  http_response after;
  const char *h[] = {"X-Request-ID: after-refused", NULL};
  http_get(ng.port, "/api/orders/9", h, &after);
  stop(&s, &ng);

  for (size_t i = 0; i < n; i++) {
    if (r[i].status != 400)
      fail_msg("%s over the limit: status %d, want nginx's 400", names[i],
               r[i].status);
    assert_int_equal(r[i].request_id_count, 0);
  }
  assert_int_equal(after.status, 200);
  assert_string_equal(after.request_id, "after-refused");
  check_access(&s, "after-refused", "GET", "/api/orders/9", 200, after.body_len,
               "info");
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

/* ---- request bodies ------------------------------------------------------ */

/*
 * A POST body larger than nginx keeps in memory (it buffers it in a
 * temporary file, then sends it as FastCGI stdin): read whole, or it would
 * not parse; and a body that is not JSON. The table's bodies are small.
 */
static void test_bodies(void **state) {
  (void)state;
  size_t big_len = (size_t)100 * 1024;
  char *big = malloc(big_len + 64);
  assert_non_null(big);
  int off = snprintf(big, 64, "{\"item\":\"book\",\"pad\":\"");
  memset(big + off, 'p', big_len);
  strcpy(big + off + big_len, "\"}");
  service s;
  nginx ng;
  start(&s, &ng, NULL);
  http_response r[2];
  const char *h0[] = {"X-Request-ID: body-big", NULL};
  http_request(ng.port, "POST", "/api/orders", h0, big, &r[0]);
  const char *h1[] = {"X-Request-ID: body-not-json", NULL};
  http_request(ng.port, "POST", "/api/orders", h1, "not json", &r[1]);
  stop(&s, &ng);
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

/* ---- many requests at once ---------------------------------------------- */

#define NCONC 64

typedef struct mix_job {
  int port, i;
  http_response resp;
  pthread_barrier_t *start;
} mix_job;

/* GETs that sleep in the handler, POSTs of a few KiB, quick GETs. */
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

/* Ids never cross between the worker threads, each request has its one
 * access line, each POST's body reached its own request. */
static void test_concurrent(void **state) {
  (void)state;
  service s;
  nginx ng;
  start(&s, &ng, ENV_DEBUG);
  static mix_job jobs[NCONC];
  pthread_barrier_t start_all;
  pthread_barrier_init(&start_all, NULL, NCONC);
  pthread_t t[NCONC];
  for (int i = 0; i < NCONC; i++) {
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].port = ng.port;
    jobs[i].i = i;
    jobs[i].start = &start_all;
    pthread_create(&t[i], NULL, mix_run, &jobs[i]);
  }
  for (int i = 0; i < NCONC; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start_all);
  for (int i = 0; i < NCONC; i++) {
    char want[32];
    snprintf(want, sizeof want, "conc-%d", i);
    assert_int_equal(jobs[i].resp.curl_error, 0);
    assert_int_equal(jobs[i].resp.status, i % 4 == 1 ? 201 : 200);
    assert_string_equal(jobs[i].resp.request_id, want);
  }
  stop(&s, &ng);

  check_isolation(&s, NCONC);
  for (int i = 0; i < NCONC; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    assert_int_equal(access_count(&s, rid), 1);
    json_t *acc = service_access_line(&s, rid);
    assert_int_equal(jint(acc, "bytes"), (json_int_t)jobs[i].resp.body_len);
    if (i % 4 == 1) {
      json_t *c = find_line(&s, rid, "orders", "order created");
      assert_non_null(c);
      assert_int_equal(jint(json_object_get(c, "order"), "n"), i);
    }
  }
  service_free(&s);
}

/* ---- stopping ------------------------------------------------------------ */

static void test_sigint(void **state) {
  (void)state;
  service s;
  nginx ng;
  start(&s, &ng, NULL);
  http_response r;
  http_get(ng.port, "/api/orders/11", NULL, &r);
  assert_int_equal(r.status, 200);
  live_ng = NULL;
  nginx_stop(&ng);
  live = NULL;
  kill(s.pid, SIGINT);
  int status;
  assert_int_equal(waitpid(s.pid, &status, 0), s.pid);
  pthread_join(s.reader, NULL);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(s.bad_lines, 0);
  assert_non_null(wait_line(&s, "message", "stopped"));
  assert_non_null(service_access_line(&s, r.request_id));
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
  nginx ng;
  nginx_start_fastcgi(&ng, port);
  live_ng = &ng;

  raw_response own, stream, nocontent, nothing, abandon;
  raw_request_str(ng.port,
                  "GET /own-id HTTP/1.1\r\nHost: t\r\nX-Request-ID: ip-own\r\n"
                  "Connection: close\r\n\r\n",
                  &own);
  raw_request_str(ng.port,
                  "GET /stream HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-stream\r\nConnection: close\r\n\r\n",
                  &stream);
  raw_request_str(ng.port,
                  "GET /abandon HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-abandon\r\nConnection: close\r\n\r\n",
                  &abandon);
  raw_request_str(ng.port,
                  "GET /nocontent HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-204\r\nConnection: close\r\n\r\n",
                  &nocontent);
  raw_request_str(ng.port,
                  "GET /nothing HTTP/1.1\r\nHost: t\r\nX-Request-ID: "
                  "ip-nothing\r\nConnection: close\r\n\r\n",
                  &nothing);
  pthread_join(t, NULL);
  live_ng = NULL;
  nginx_stop(&ng);
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
      cmocka_unit_test_teardown(test_get, teardown),
      cmocka_unit_test_teardown(test_header_over_nginx_limit, teardown),
      cmocka_unit_test_teardown(test_bodies, teardown),
      cmocka_unit_test_teardown(test_concurrent, teardown),
      cmocka_unit_test_teardown(test_sigint, teardown),
#ifdef TRAIL_TEST_FCGI_INPROC
      cmocka_unit_test_teardown(test_inproc_api, teardown),
#endif
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
