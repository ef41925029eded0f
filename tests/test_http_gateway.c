/*
 * Outgoing propagation (include/trail/curl.h) and the gateway example.
 *
 * The test plays the part of the W3C trace-context test harness: it runs a
 * small HTTP receiver of its own on a loopback port, which records the
 * headers and body of every request it gets, and POSTs to the gateway's
 * /forward a JSON array of {"url": receiver, "arguments": [...]}, with the
 * traceparent and tracestate headers of each W3C case. What the receiver
 * got is what the gateway propagated. Then: the gateway's own lines (the
 * outgoing line and its relation to the access line), one trace across two
 * services, and trail_curl used in this process, with and without a
 * context, through the easy and the multi interface.
 *
 * No sleeps: the gateway answers /forward only after its calls are done,
 * and the receiver records a request before it answers it; a service's
 * lines are read after it has exited.
 */
#include "http_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <trail/curl.h>

#define T_ID "12345678901234567890123456789012"
#define P_ID "1234567890123456"
#define TP_01 "00-" T_ID "-" P_ID "-01"
#define TP_00 "00-" T_ID "-" P_ID "-00"
#define ZERO_TRACE "00000000000000000000000000000000"
#define ZERO_SPAN "0000000000000000"

/* ---- the receiver -------------------------------------------------------- */

#define RX_HEADERS 64

typedef struct rx_req {
  char method[16];
  char path[1024];
  int nh;
  char *name[RX_HEADERS];
  char *value[RX_HEADERS]; /* white space around it trimmed, as HTTP says */
  char *body;
  size_t body_len;
} rx_req;

static struct {
  int fd;
  int port;
  int wake[2];
  pthread_t thread;
  pthread_mutex_t lock;
  rx_req *reqs;
  size_t n, cap;
} rx = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void rx_write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

/* One request per connection: read it, record it, answer it, close. */
static void rx_serve(int c) {
  static char buf[128 * 1024];
  size_t len = 0;
  char *end = NULL;
  while (end == NULL && len < sizeof buf - 1) {
    ssize_t r = recv(c, buf + len, sizeof buf - 1 - len, 0);
    if (r <= 0)
      return;
    len += (size_t)r;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  if (end == NULL)
    return;
  rx_req q;
  memset(&q, 0, sizeof q);
  size_t body_want = 0;
  int expect_continue = 0;
  char *line = buf;
  char *eol = strstr(line, "\r\n");
  *eol = '\0';
  sscanf(line, "%15s %1023s", q.method, q.path);
  for (line = eol + 2; line < end; line = eol + 2) {
    eol = strstr(line, "\r\n");
    *eol = '\0';
    char *colon = strchr(line, ':');
    if (colon == NULL || q.nh == RX_HEADERS)
      continue;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    size_t vn = strlen(v);
    while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
      v[--vn] = '\0';
    q.name[q.nh] = strdup(line);
    q.value[q.nh] = strdup(v);
    q.nh++;
    if (strcasecmp(line, "Content-Length") == 0)
      body_want = strtoul(v, NULL, 10);
    if (strcasecmp(line, "Expect") == 0 && strcasecmp(v, "100-continue") == 0)
      expect_continue = 1;
  }
  size_t have = len - (size_t)(end + 4 - buf);
  if (expect_continue && have < body_want)
    rx_write_all(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  q.body = malloc(body_want + 1);
  memcpy(q.body, end + 4, have < body_want ? have : body_want);
  q.body_len = have < body_want ? have : body_want;
  while (q.body_len < body_want) {
    ssize_t r = recv(c, q.body + q.body_len, body_want - q.body_len, 0);
    if (r <= 0)
      break;
    q.body_len += (size_t)r;
  }
  q.body[q.body_len] = '\0';

  int status = 200;
  if (strncmp(q.path, "/status/", 8) == 0)
    status = atoi(q.path + 8);
  pthread_mutex_lock(&rx.lock);
  if (rx.n == rx.cap) {
    rx.cap = rx.cap ? 2 * rx.cap : 64;
    rx.reqs = realloc(rx.reqs, rx.cap * sizeof *rx.reqs);
  }
  rx.reqs[rx.n++] = q;
  pthread_mutex_unlock(&rx.lock);

  char resp[256];
  int n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 %d Whatever\r\nContent-Type: application/json\r\n"
                   "Content-Length: 4\r\nConnection: close\r\n\r\nnull",
                   status);
  rx_write_all(c, resp, (size_t)n);
}

static void *rx_main(void *arg) {
  (void)arg;
  for (;;) {
    struct pollfd p[2] = {{rx.fd, POLLIN, 0}, {rx.wake[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p[1].revents != 0)
      break;
    if (p[0].revents & POLLIN) {
      int c = accept(rx.fd, NULL, NULL);
      if (c < 0)
        continue;
      /* A client that connects and says nothing must not hang the tests. */
      struct timeval tv = {10, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      rx_serve(c);
      close(c);
    }
  }
  return NULL;
}

/*
 * A loopback port that refuses connections: bound but not listening, and
 * kept bound until the process exits, so that no other service (other tests
 * run at the same time) can take it meanwhile.
 */
static int closed_port(void) {
  static int port;
  if (port == 0) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    port = ntohs(a.sin_port);
  }
  return port;
}

static void rx_start(void) {
  rx.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(rx.fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  assert_int_equal(bind(rx.fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(rx.fd, 64), 0);
  assert_int_equal(getsockname(rx.fd, (struct sockaddr *)&a, &al), 0);
  rx.port = ntohs(a.sin_port);
  assert_int_equal(pipe(rx.wake), 0);
  /* The services the tests start need none of these. */
  fcntl(rx.wake[0], F_SETFD, FD_CLOEXEC);
  fcntl(rx.wake[1], F_SETFD, FD_CLOEXEC);
  assert_int_equal(pthread_create(&rx.thread, NULL, rx_main, NULL), 0);
}

static void rx_free_reqs(void) {
  for (size_t i = 0; i < rx.n; i++) {
    for (int h = 0; h < rx.reqs[i].nh; h++) {
      free(rx.reqs[i].name[h]);
      free(rx.reqs[i].value[h]);
    }
    free(rx.reqs[i].body);
  }
  rx.n = 0;
}

static void rx_clear(void) {
  pthread_mutex_lock(&rx.lock);
  rx_free_reqs();
  pthread_mutex_unlock(&rx.lock);
}

static void rx_stop(void) {
  char c = 1;
  assert_int_equal(write(rx.wake[1], &c, 1), 1);
  pthread_join(rx.thread, NULL);
  close(rx.fd);
  close(rx.wake[0]);
  close(rx.wake[1]);
  rx_free_reqs();
  free(rx.reqs);
}

/* The requests received so far; the pointer stays valid until rx_clear(). */
static size_t rx_count(void) {
  pthread_mutex_lock(&rx.lock);
  size_t n = rx.n;
  pthread_mutex_unlock(&rx.lock);
  return n;
}

static rx_req *rx_get(size_t i) {
  pthread_mutex_lock(&rx.lock);
  assert_true(i < rx.n);
  rx_req *q = &rx.reqs[i];
  pthread_mutex_unlock(&rx.lock);
  return q;
}

static int rx_header_count(const rx_req *q, const char *name) {
  int n = 0;
  for (int i = 0; i < q->nh; i++)
    if (strcasecmp(q->name[i], name) == 0)
      n++;
  return n;
}

/* The value of the one header of that name; fails when there is not one. */
static const char *rx_header(const rx_req *q, const char *name) {
  const char *v = NULL;
  for (int i = 0; i < q->nh; i++)
    if (strcasecmp(q->name[i], name) == 0) {
      if (v != NULL)
        fail_msg("header %s received twice", name);
      v = q->value[i];
    }
  if (v == NULL)
    fail_msg("header %s not received", name);
  return v;
}

/* ---- traceparent as received ------------------------------------------- */

typedef struct tp_seen {
  char trace[33];
  char parent[17];
  char flags[3];
} tp_seen;

static int lower_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/*
 * The request carries one traceparent, version 00, well formed, with ids
 * that are not all zero: what the harness's own parser accepts.
 */
static tp_seen tp_of(const rx_req *q) {
  const char *v = rx_header(q, "traceparent");
  tp_seen t;
  if (strlen(v) != 55 || strncmp(v, "00-", 3) != 0 || v[35] != '-' ||
      v[52] != '-' || !lower_hex(v + 3, 32) || !lower_hex(v + 36, 16) ||
      !lower_hex(v + 53, 2))
    fail_msg("traceparent sent is not version 00: '%s'", v);
  memcpy(t.trace, v + 3, 32);
  t.trace[32] = '\0';
  memcpy(t.parent, v + 36, 16);
  t.parent[16] = '\0';
  memcpy(t.flags, v + 53, 2);
  t.flags[2] = '\0';
  assert_string_not_equal(t.trace, ZERO_TRACE);
  assert_string_not_equal(t.parent, ZERO_SPAN);
  return t;
}

/* ---- driving the gateway's /forward ------------------------------------ */

static service gw;
static int rid_seq;

/*
 * POSTs /forward with the given request headers and ncalls elements, each
 * {"url": receiver/cb/i, "arguments": []}, and checks the calls arrived in
 * order as POSTs of "[]" with a JSON type and the request's X-Request-ID.
 */
static void forward(const char *const *headers, int ncalls) {
  char rid[64];
  snprintf(rid, sizeof rid, "X-Request-ID: fw-%d", ++rid_seq);
  const char *h[16];
  int nh = 0;
  for (int i = 0; headers && headers[i] && nh < 14; i++)
    h[nh++] = headers[i];
  h[nh++] = rid;
  h[nh] = NULL;
  char body[4096];
  size_t o = (size_t)snprintf(body, sizeof body, "[");
  for (int i = 0; i < ncalls; i++)
    o += (size_t)snprintf(
        body + o, sizeof body - o,
        "%s{\"url\":\"http://127.0.0.1:%d/cb/%d\",\"arguments\":[]}",
        i ? "," : "", rx.port, i);
  snprintf(body + o, sizeof body - o, "]");

  rx_clear();
  http_response resp;
  http_request(gw.port, "POST", "/forward", h, body, &resp);
  assert_int_equal(resp.curl_error, 0);
  assert_int_equal(resp.status, 200);
  assert_int_equal(rx_count(), (size_t)ncalls);
  for (int i = 0; i < ncalls; i++) {
    rx_req *q = rx_get((size_t)i);
    char path[32];
    snprintf(path, sizeof path, "/cb/%d", i);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, path);
    assert_string_equal(q->body, "[]");
    assert_string_equal(rx_header(q, "Content-Type"), "application/json");
    assert_string_equal(rx_header(q, "X-Request-ID"), rid + 14);
  }
}

enum { NEW = 0, SAME = 1 };

/*
 * One W3C case, one call: the trace is continued (SAME, with these flags)
 * or a new one started (NEW: none of the incoming trace ids goes out), and
 * the tracestate sent is exactly want_state (NULL: no tracestate header).
 */
/* The case being run, for failure messages: its headers on one line. */
static char case_text[2048];

static void case_set(const char *const *headers) {
  size_t o = 0;
  case_text[0] = '\0';
  for (int i = 0; headers && headers[i] && o < sizeof case_text; i++)
    o += (size_t)snprintf(case_text + o, sizeof case_text - o, "%s[%.200s]",
                          i ? " " : "", headers[i]);
}

static void case_expect(int ok, const char *what, const char *got) {
  if (!ok)
    fail_msg("case %s: %s, got '%s'", case_text[0] ? case_text : "(none)", what,
             got ? got : "(nothing)");
}

static void check_case(const char *const *headers, int same, const char *flags,
                       const char *want_state) {
  case_set(headers);
  forward(headers, 1);
  rx_req *q = rx_get(0);
  case_expect(rx_header_count(q, "traceparent") == 1,
              "one traceparent expected", NULL);
  tp_seen t = tp_of(q);
  if (same) {
    case_expect(strcmp(t.trace, T_ID) == 0, "trace continued", t.trace);
    case_expect(flags == NULL || strcmp(t.flags, flags) == 0,
                "flags propagated", t.flags);
  } else {
    case_expect(strcmp(t.trace, T_ID) != 0 &&
                    strcmp(t.trace, "12345678901234567890123456789011") != 0 &&
                    strcmp(t.trace, "23456789012345678901234567890123") != 0,
                "a new trace", t.trace);
  }
  case_expect(strcmp(t.parent, P_ID) != 0, "a new parent-id", t.parent);
  int n = rx_header_count(q, "tracestate");
  const char *ts = n == 1 ? rx_header(q, "tracestate") : NULL;
  if (want_state == NULL) {
    case_expect(n == 0, "no tracestate", ts);
  } else {
    case_expect(n == 1 && strcmp(ts, want_state) == 0, want_state, ts);
  }
  case_text[0] = '\0';
}

#define CASE(same, flags, state, ...)                                          \
  check_case((const char *const[]){__VA_ARGS__, NULL}, (same), (flags), (state))

static int gw_setup(void **state) {
  (void)state;
  service_start(&gw, "gateway", NULL, NULL);
  return 0;
}

static int gw_teardown(void **state) {
  (void)state;
  service_stop(&gw);
  service_free(&gw);
  return 0;
}

/* ---- W3C cases: traceparent -------------------------------------------- */

static void test_traceparent_missing(void **state) {
  (void)state;
  check_case(NULL, NEW, NULL, NULL);
}

static void test_traceparent_valid(void **state) {
  (void)state;
  CASE(SAME, "01", NULL, "traceparent: " TP_01);
  CASE(SAME, "00", NULL, "traceparent: " TP_00);
}

static void test_traceparent_duplicated(void **state) {
  (void)state;
  CASE(NEW, NULL, NULL,
       "traceparent: 00-12345678901234567890123456789011-" P_ID "-01",
       "traceparent: " TP_01);
  /* Two identical ones are still two. */
  CASE(NEW, NULL, NULL, "traceparent: " TP_01, "traceparent: " TP_01);
}

static void test_traceparent_header_name(void **state) {
  (void)state;
  CASE(NEW, NULL, NULL, "trace-parent: " TP_01);
  CASE(NEW, NULL, NULL, "trace.parent: " TP_01);
  CASE(SAME, "01", NULL, "TraceParent: " TP_01);
  CASE(SAME, "01", NULL, "TrAcEpArEnT: " TP_01);
  CASE(SAME, "01", NULL, "TRACEPARENT: " TP_01);
}

static void test_traceparent_versions(void **state) {
  (void)state;
  /* Version 00 is exactly 55 characters. */
  CASE(NEW, NULL, NULL, "traceparent: " TP_01 ".");
  CASE(NEW, NULL, NULL, "traceparent: " TP_01 "-what-the-future-will-be-like");
  /* A higher version is read by its first four parts; out goes 00. */
  CASE(SAME, "01", NULL, "traceparent: cc-" T_ID "-" P_ID "-01");
  CASE(SAME, "01", NULL,
       "traceparent: cc-" T_ID "-" P_ID "-01-what-the-future-will-be-like");
  CASE(NEW, NULL, NULL,
       "traceparent: cc-" T_ID "-" P_ID "-01.what-the-future-will-be-like");
  CASE(NEW, NULL, NULL, "traceparent: ff-" T_ID "-" P_ID "-01");
  CASE(NEW, NULL, NULL, "traceparent: .0-" T_ID "-" P_ID "-01");
  CASE(NEW, NULL, NULL, "traceparent: 0.-" T_ID "-" P_ID "-01");
  CASE(NEW, NULL, NULL, "traceparent: 000-" T_ID "-" P_ID "-01");
  CASE(NEW, NULL, NULL, "traceparent: 0000-" T_ID "-" P_ID "-01");
  CASE(NEW, NULL, NULL, "traceparent: 0-" T_ID "-" P_ID "-01");
  CASE(NEW, NULL, NULL, "traceparent: CC-" T_ID "-" P_ID "-01");
}

static void test_traceparent_trace_id(void **state) {
  (void)state;
  CASE(NEW, NULL, NULL, "traceparent: 00-" ZERO_TRACE "-" P_ID "-01");
  CASE(NEW, NULL, NULL,
       "traceparent: 00-.2345678901234567890123456789012-" P_ID "-01");
  CASE(NEW, NULL, NULL,
       "traceparent: 00-1234567890123456789012345678901.-" P_ID "-01");
  CASE(NEW, NULL, NULL,
       "traceparent: 00-123456789012345678901234567890123-" P_ID "-01");
  CASE(NEW, NULL, NULL,
       "traceparent: 00-1234567890123456789012345678901-" P_ID "-01");
  /* Uppercase hex is not lowercase hex. */
  CASE(NEW, NULL, NULL,
       "traceparent: 00-1234567890ABCDEF1234567890123456-" P_ID "-01");
}

static void test_traceparent_parent_id(void **state) {
  (void)state;
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-" ZERO_SPAN "-01");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-.234567890123456-01");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-123456789012345.-01");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-12345678901234567-01");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-123456789012345-01");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-123456789012345A-01");
}

static void test_traceparent_flags(void **state) {
  (void)state;
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-" P_ID "-.0");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-" P_ID "-0.");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-" P_ID "-001");
  CASE(NEW, NULL, NULL, "traceparent: 00-" T_ID "-" P_ID "-1");
  /* Section 3.2.2.5: flags not defined (all but sampled, random) go out 0 */
  CASE(SAME, "03", NULL, "traceparent: 00-" T_ID "-" P_ID "-ff");
  CASE(SAME, "02", NULL, "traceparent: 00-" T_ID "-" P_ID "-06");
}

static void test_traceparent_ows(void **state) {
  (void)state;
  CASE(SAME, "01", NULL, "traceparent:  " TP_01);
  CASE(SAME, "01", NULL, "traceparent: \t" TP_01);
  CASE(SAME, "01", NULL, "traceparent: " TP_01 " ");
  CASE(SAME, "01", NULL, "traceparent: " TP_01 "\t");
  CASE(SAME, "01", NULL, "traceparent: \t " TP_01 " \t");
}

/* ---- W3C cases: tracestate --------------------------------------------- */

static void test_tracestate_needs_traceparent(void **state) {
  (void)state;
  CASE(NEW, NULL, NULL, "tracestate: foo=1");
  CASE(NEW, NULL, NULL, "tracestate: foo=1,bar=2");
  /* An invalid traceparent takes its tracestate down with it. */
  CASE(NEW, NULL, NULL, "traceparent: 00-" ZERO_TRACE "-" P_ID "-01",
       "tracestate: foo=1");
  CASE(NEW, NULL, NULL, "traceparent: " TP_01, "traceparent: " TP_01,
       "tracestate: foo=1");
}

static void test_tracestate_propagated(void **state) {
  (void)state;
  CASE(SAME, "00", "foo=1,bar=2", "traceparent: " TP_00,
       "tracestate: foo=1,bar=2");
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "trace-state: foo=1");
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "trace.state: foo=1");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "TraceState: foo=1");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "TrAcEsTaTe: foo=1");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "TRACESTATE: foo=1");
}

static void test_tracestate_empty(void **state) {
  (void)state;
  /* "Name;" is how libcurl sends a header with an empty value. */
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate;");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate: foo=1",
       "tracestate;");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate;",
       "tracestate: foo=1");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate: ,,foo=1,, ,");
}

static void test_tracestate_multiple_headers(void **state) {
  (void)state;
  CASE(SAME, "00", "foo=1,bar=2,rojo=1,congo=2,baz=3", "traceparent: " TP_00,
       "tracestate: foo=1,bar=2", "tracestate: rojo=1,congo=2",
       "tracestate: baz=3");
}

/*
 * One entry per key is the sender's duty (W3C Trace Context, section
 * 3.3.1.4): a list with a key twice is propagated as it came, never lost.
 */
static void test_tracestate_duplicated_keys(void **state) {
  (void)state;
  CASE(SAME, "00", "foo=1,foo=1", "traceparent: " TP_00,
       "tracestate: foo=1,foo=1");
  CASE(SAME, "00", "foo=1,foo=2", "traceparent: " TP_00,
       "tracestate: foo=1,foo=2");
  CASE(SAME, "00", "foo=1,foo=1", "traceparent: " TP_00, "tracestate: foo=1",
       "tracestate: foo=1");
  CASE(SAME, "00", "foo=1,foo=2", "traceparent: " TP_00, "tracestate: foo=1",
       "tracestate: foo=2");
}

static void test_tracestate_all_allowed_characters(void **state) {
  (void)state;
  char key[64], vkey[80], value[128], h[512], want[384];
  size_t n = 0;
  for (char c = 'a'; c <= 'z'; c++)
    key[n++] = c;
  memcpy(key + n, "0123456789_-*/", 15);
  snprintf(vkey, sizeof vkey, "%s@a-z0-9_-*/", key);
  n = 0;
  for (int c = 0x20; c <= 0x7e; c++)
    if (c != ',' && c != '=')
      value[n++] = (char)c;
  value[n] = '\0';

  snprintf(want, sizeof want, "%s=%s", key, value);
  snprintf(h, sizeof h, "tracestate: %s", want);
  CASE(SAME, "00", want, "traceparent: " TP_00, h);
  snprintf(want, sizeof want, "%s=%s", vkey, value);
  snprintf(h, sizeof h, "tracestate: %s", want);
  CASE(SAME, "00", want, "traceparent: " TP_00, h);
}

static void test_tracestate_ows(void **state) {
  (void)state;
  CASE(SAME, "00", "foo=1,bar=2,baz=3", "traceparent: " TP_00,
       "tracestate: foo=1 \t , \t bar=2, \t baz=3");
  CASE(SAME, "00", "foo=1,bar=2,baz=3", "traceparent: " TP_00,
       "tracestate: foo=1\t \t,\t \tbar=2,\t \tbaz=3");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate:  foo=1");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate: \tfoo=1");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate: foo=1 ");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate: foo=1\t");
  CASE(SAME, "00", "foo=1", "traceparent: " TP_00, "tracestate: \t foo=1 \t");
}

/* Section 3.3.1.3.1: key = ( lcalpha / DIGIT ) 0*255 ( keychar ). */
static void test_tracestate_illegal_keys(void **state) {
  (void)state;
  static const char *const bad[] = {
      "foo =1", "FOO=1",     "foo.bar=1", "@foo=1,bar=2",
      "=1",     "foo@Bar=1", "_foo=1",    "foo=1,-bar=2",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char h[128];
    snprintf(h, sizeof h, "tracestate: %s", bad[i]);
    CASE(SAME, "00", NULL, "traceparent: " TP_00, h);
  }
  /* '@' is a key character like the others; a digit may start any key. */
  static const char *const good[] = {
      "foo@=1,bar=2", "foo@@bar=1,bar=2", "foo@bar@baz=1,bar=2",
      "1foo=1",       "1foo@bar=1",       "foo@1ar=1",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    char h[128];
    snprintf(h, sizeof h, "tracestate: %s", good[i]);
    CASE(SAME, "00", good[i], "traceparent: " TP_00, h);
  }
}

static void test_tracestate_illegal_values(void **state) {
  (void)state;
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate: foo=bar=baz");
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate: foo=,bar=3");
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate: foo");
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate: foo=1\x7f");
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate: foo=caf\xc3\xa9");
}

static void test_tracestate_member_count(void **state) {
  (void)state;
  char h[4][600], want[512];
  size_t o = 0;
  for (int i = 1; i <= 32; i++)
    o += (size_t)snprintf(want + o, sizeof want - o, "%sbar%02d=%02d",
                          i > 1 ? "," : "", i, i);
  snprintf(h[0], sizeof h[0], "tracestate: %.89s", want);       /* 1-10 */
  snprintf(h[1], sizeof h[1], "tracestate: %.89s", want + 90);  /* -20 */
  snprintf(h[2], sizeof h[2], "tracestate: %.89s", want + 180); /* -30 */
  snprintf(h[3], sizeof h[3], "tracestate: %s", want + 270);    /* -32 */
  CASE(SAME, "00", want, "traceparent: " TP_00, h[0], h[1], h[2], h[3]);
  snprintf(h[3], sizeof h[3], "tracestate: %s,bar33=33", want + 270);
  CASE(SAME, "00", NULL, "traceparent: " TP_00, h[0], h[1], h[2], h[3]);
}

/*
 * Section 3.3.1.3.1: a key is 1 to 256 characters, '@' or not; the former
 * tenant and system limits (241 and 14) are gone.
 */
static void test_tracestate_key_length(void **state) {
  (void)state;
  char h[512], want[512];
  char k256[257], k257[258], t242[243], v15[16];
  memset(k256, 'z', 256);
  k256[256] = '\0';
  memset(k257, 'z', 257);
  k257[257] = '\0';
  memset(t242, 't', 242);
  t242[242] = '\0';
  memset(v15, 'v', 15);
  v15[15] = '\0';

  snprintf(h, sizeof h, "tracestate: %s=1", k256);
  snprintf(want, sizeof want, "foo=1,%s=1", k256);
  CASE(SAME, "00", want, "traceparent: " TP_00, "tracestate: foo=1", h);
  snprintf(h, sizeof h, "tracestate: %s=1", k257);
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate: foo=1", h);
  snprintf(h, sizeof h, "tracestate: %s@v=1", t242);
  snprintf(want, sizeof want, "foo=1,%s@v=1", t242);
  CASE(SAME, "00", want, "traceparent: " TP_00, "tracestate: foo=1", h);
  snprintf(h, sizeof h, "tracestate: t@%s=1", v15);
  snprintf(want, sizeof want, "foo=1,t@%s=1", v15);
  CASE(SAME, "00", want, "traceparent: " TP_00, "tracestate: foo=1", h);
  snprintf(h, sizeof h, "tracestate: %.250s@%s=1", k257, "vvvvvv");
  CASE(SAME, "00", NULL, "traceparent: " TP_00, "tracestate: foo=1", h);
}

static void test_tracestate_value_length(void **state) {
  (void)state;
  char h[768], want[512], v256[257], v257[258];
  memset(v256, 'x', 256);
  v256[256] = '\0';
  memset(v257, 'x', 257);
  v257[257] = '\0';
  snprintf(want, sizeof want, "foo=%s", v256);
  snprintf(h, sizeof h, "tracestate: %s", want);
  CASE(SAME, "00", want, "traceparent: " TP_00, h);
  snprintf(h, sizeof h, "tracestate: foo=%s", v257);
  CASE(SAME, "00", NULL, "traceparent: " TP_00, h);
  /* Spaces inside a value are kept; only the ends are white space. */
  CASE(SAME, "00", "foo=a b", "traceparent: " TP_00, "tracestate: foo=a b");
}

/* ---- several calls per request (the harness's AdvancedTest) ------------- */

static void check_three_calls(const char *const *headers, int same) {
  forward(headers, 3);
  tp_seen t[3];
  for (int i = 0; i < 3; i++)
    t[i] = tp_of(rx_get((size_t)i));
  for (int i = 0; i < 3; i++) {
    /* One request, one trace; a span of its own for every call. */
    assert_string_equal(t[i].trace, t[0].trace);
    if (same)
      assert_string_equal(t[i].trace, T_ID);
    else
      assert_string_not_equal(t[i].trace, T_ID);
    assert_string_not_equal(t[i].parent, P_ID);
    for (int k = 0; k < i; k++)
      assert_string_not_equal(t[i].parent, t[k].parent);
  }
}

static void test_multiple_calls(void **state) {
  (void)state;
  check_three_calls((const char *const[]){"traceparent: " TP_01, NULL}, SAME);
  check_three_calls(NULL, NEW);
  check_three_calls(
      (const char *const[]){"traceparent: 00-" ZERO_TRACE "-" P_ID "-01", NULL},
      NEW);
}

/* ---- /forward itself ---------------------------------------------------- */

static void post_forward(const char *body, long want_status) {
  http_response resp;
  rx_clear();
  http_request(gw.port, "POST", "/forward", NULL, body, &resp);
  assert_int_equal(resp.curl_error, 0);
  assert_int_equal(resp.status, want_status);
}

static void test_forward_arguments(void **state) {
  (void)state;
  char body[1024];
  snprintf(body, sizeof body,
           "[{\"url\":\"http://127.0.0.1:%d/cb/0\",\"arguments\":"
           "[{\"url\":\"http://127.0.0.1:9/x\",\"arguments\":[]}]},"
           "{\"url\":\"http://127.0.0.1:%d/cb/1\"},"
           "{\"url\":\"http://127.0.0.1:%d/cb/2\",\"arguments\":null},"
           "{\"url\":\"http://127.0.0.1:%d/cb/3\",\"arguments\":{\"a\":1}}]",
           rx.port, rx.port, rx.port, rx.port);
  post_forward(body, 200);
  assert_int_equal(rx_count(), 4);
  static const char *const want[] = {
      "[{\"url\":\"http://127.0.0.1:9/x\",\"arguments\":[]}]", "[]", "[]",
      "{\"a\":1}"};
  for (size_t i = 0; i < 4; i++) {
    rx_req *q = rx_get(i);
    char path[16];
    snprintf(path, sizeof path, "/cb/%zu", i);
    assert_string_equal(q->path, path);
    json_t *got = json_loads(q->body, 0, NULL);
    json_t *exp = json_loads(want[i], 0, NULL);
    assert_non_null(got);
    if (!json_equal(got, exp))
      fail_msg("call %zu sent %s, want %s", i, q->body, want[i]);
    json_decref(got);
    json_decref(exp);
  }

  /* An empty array: no call, still 200. */
  post_forward("[]", 200);
  assert_int_equal(rx_count(), 0);
}

static void test_forward_bad_bodies(void **state) {
  (void)state;
  char body[8192];
  post_forward("not json", 400);
  post_forward("{\"url\":\"http://127.0.0.1:1/\"}", 400);
  post_forward("[1]", 400);
  /* One bad element anywhere: no call at all, not even the good ones. */
  snprintf(body, sizeof body,
           "[{\"url\":\"http://127.0.0.1:%d/cb/0\"},{\"arguments\":[]}]",
           rx.port);
  post_forward(body, 400);
  assert_int_equal(rx_count(), 0);
  size_t o = (size_t)snprintf(body, sizeof body, "[");
  for (int i = 0; i < 65; i++)
    o += (size_t)snprintf(body + o, sizeof body - o,
                          "%s{\"url\":\"http://127.0.0.1:%d/cb/%d\"}",
                          i ? "," : "", rx.port, i);
  snprintf(body + o, sizeof body - o, "]");
  post_forward(body, 400);
  assert_int_equal(rx_count(), 0);
}

/* ---- the gateway's lines ------------------------------------------------ */

/* The lines of a request id from one logger, in the order written. */
static size_t lines_of(service *s, const char *rid, const char *logger,
                       json_t **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    json_t *r = json_object_get(j, "request_id");
    json_t *l = json_object_get(j, "logger");
    if (r && l && strcmp(json_string_value(r), rid) == 0 &&
        strcmp(json_string_value(l), logger) == 0 && n < max)
      out[n++] = j;
  }
  return n;
}

static void test_outgoing_lines(void **state) {
  (void)state;
  service g;
  service_start(&g, "gateway", NULL, NULL);
  int dead = closed_port();
  char body[2048];
  snprintf(body, sizeof body,
           "["
           "{\"url\":\"http://user:s3cret@127.0.0.1:%d/cb/creds?token=hunter2"
           "#frag\"},"
           "{\"url\":\"http://127.0.0.1:%d/status/404?q=1\"},"
           "{\"url\":\"http://127.0.0.1:%d/status/503\"},"
           "{\"url\":\"http://127.0.0.1:%d/refused\"},"
           "{\"url\":\"http://127.0.0.1:%d/a@b/c?q=hunter2\"},"
           "{\"url\":\"ftp://127.0.0.1:%d/not-http\"}"
           "]",
           rx.port, rx.port, rx.port, dead, rx.port, rx.port);
  const char *const headers[] = {"traceparent: " TP_01, "X-Request-ID: lines-1",
                                 NULL};
  rx_clear();
  http_response resp;
  http_request(g.port, "POST", "/forward", headers, body, &resp);
  assert_int_equal(resp.status, 200);
  assert_string_equal(resp.request_id, "lines-1");
  /* The ftp call and the refused one never reached the receiver. */
  assert_int_equal(rx_count(), 4);
  json_t *reply = json_loads(resp.body, 0, NULL);
  assert_non_null(reply);
  json_t *calls = json_object_get(reply, "calls");
  assert_int_equal(json_array_size(calls), 6);
  static const int want_status[] = {200, 404, 503, 0, 200, 0};
  for (size_t i = 0; i < 6; i++) {
    json_t *c = json_array_get(calls, i);
    if (want_status[i])
      assert_int_equal(json_integer_value(json_object_get(c, "status")),
                       want_status[i]);
    else
      assert_non_null(json_object_get(c, "error"));
  }
  json_decref(reply);
  /* Basic auth still went out: stripping is for the line only. */
  assert_non_null(strstr(rx_header(rx_get(0), "Authorization"), "Basic "));
  tp_seen sent[4];
  for (size_t i = 0; i < 4; i++)
    sent[i] = tp_of(rx_get(i));
  service_stop(&g);

  json_t *acc = service_access_line(&g, "lines-1");
  assert_non_null(acc);
  assert_str_field(acc, "trace_id", T_ID);
  assert_str_field(acc, "parent_span_id", P_ID);
  const char *span = jstr(acc, "span_id");

  json_t *out[8];
  assert_int_equal(lines_of(&g, "lines-1", "http.client", out, 8), 6);
  char base[64];
  snprintf(base, sizeof base, "http://127.0.0.1:%d", rx.port);
  char url[6][128];
  snprintf(url[0], sizeof url[0], "%s/cb/creds", base);
  snprintf(url[1], sizeof url[1], "%s/status/404", base);
  snprintf(url[2], sizeof url[2], "%s/status/503", base);
  snprintf(url[3], sizeof url[3], "http://127.0.0.1:%d/refused", dead);
  snprintf(url[4], sizeof url[4], "%s/a@b/c", base);
  snprintf(url[5], sizeof url[5], "ftp://127.0.0.1:%d/not-http", rx.port);
  static const char *const want_level[] = {"info",  "warn", "error",
                                           "error", "info", "error"};
  int reached = 0;
  for (size_t i = 0; i < 6; i++) {
    json_t *j = out[i];
    assert_key_order(j);
    assert_str_field(j, "message", "outgoing request completed");
    assert_str_field(j, "level", want_level[i]);
    assert_str_field(j, "url", url[i]);
    assert_str_field(j, "trace_id", T_ID);
    /* The call is a child of the gateway request's span. */
    assert_str_field(j, "span_id", span);
    assert_true(json_is_number(json_object_get(j, "duration_ms")));
    assert_true(json_number_value(json_object_get(j, "duration_ms")) >= 0);
    const char *call_span = jstr(j, "call_span_id");
    assert_string_not_equal(call_span, span);
    if (want_status[i]) {
      assert_str_field(j, "method", "POST");
      assert_int_equal(json_integer_value(json_object_get(j, "status")),
                       want_status[i]);
      assert_null(json_object_get(j, "error"));
      /* What the line calls the call's span is what was sent as parent. */
      assert_string_equal(call_span, sent[reached].parent);
      reached++;
    } else {
      assert_null(json_object_get(j, "status"));
      assert_true(strlen(jstr(j, "error")) > 0);
    }
  }
  /* No credential or query value in any line the gateway wrote. */
  for (size_t i = 0; i < g.n; i++) {
    assert_null(strstr(g.texts[i], "s3cret"));
    assert_null(strstr(g.texts[i], "hunter2"));
    assert_null(strstr(g.texts[i], "user:"));
  }
  service_free(&g);
}

/* ---- one trace across two services -------------------------------------- */

/* The first orders example that was built, or NULL. */
static const char *orders_example(void) {
  static const char *const names[] = {"orders_evhttp", "orders_mhd",
                                      "orders_civetweb"};
  const char *dir = getenv("TRAIL_TEST_EXAMPLES_DIR");
  for (size_t i = 0; i < 3; i++) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir ? dir : "../examples", names[i]);
    if (access(p, X_OK) == 0)
      return names[i];
  }
  return NULL;
}

/*
 * Through the gateway to a downstream service and back: the downstream's
 * access line is in the same trace, its parent is the span the gateway's
 * call line names, the call's parent is the gateway request's span, and
 * that request's parent is the caller's.
 */
static void check_two_services(service *front, service *back, const char *rid,
                               const char *path, long want_status) {
  json_t *acc = service_access_line(front, rid);
  json_t *down = service_access_line(back, rid);
  json_t *call[2];
  if (acc == NULL || down == NULL)
    fail_msg("no access line for %s in %s", rid,
             acc ? "downstream" : "gateway");
  assert_int_equal(lines_of(front, rid, "http.client", call, 2), 1);
  assert_str_field(acc, "trace_id", T_ID);
  assert_str_field(acc, "parent_span_id", P_ID);
  assert_str_field(call[0], "trace_id", T_ID);
  assert_str_field(call[0], "span_id", jstr(acc, "span_id"));
  assert_str_field(call[0], "method", "GET");
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", back->port, path);
  assert_str_field(call[0], "url", url);
  assert_int_equal(json_integer_value(json_object_get(call[0], "status")),
                   want_status);
  assert_str_field(down, "trace_id", T_ID);
  assert_str_field(down, "parent_span_id", jstr(call[0], "call_span_id"));
  assert_string_not_equal(jstr(down, "span_id"), jstr(acc, "span_id"));
  assert_int_equal(json_integer_value(json_object_get(down, "status")),
                   want_status);
}

static void test_two_services(void **state) {
  (void)state;
  const char *name = orders_example();
  if (name == NULL) {
    fprintf(stderr, "no orders_* example built: two-service test skipped\n");
    skip();
  }
  service orders, g;
  service_start(&orders, name, NULL, NULL);
  char ds[64];
  snprintf(ds, sizeof ds, "http://127.0.0.1:%d", orders.port);
  const char *const args[] = {"--downstream", ds, NULL};
  service_start(&g, "gateway", args, NULL);

  const char *const h1[] = {"traceparent: " TP_01, "X-Request-ID: two-1",
                            "X-User-ID: user-4711", NULL};
  http_response resp;
  http_get(g.port, "/api/orders/42?sleep_ms=0&token=hunter2", h1, &resp);
  assert_int_equal(resp.status, 200);
  assert_string_equal(resp.request_id, "two-1");
  assert_non_null(strstr(resp.body, "\"id\":42"));
  const char *const h2[] = {"traceparent: " TP_01, "X-Request-ID: two-2", NULL};
  http_get(g.port, "/api/orders/999", h2, &resp);
  assert_int_equal(resp.status, 404);
  const char *const h3[] = {"traceparent: " TP_01, "X-Request-ID: two-3", NULL};
  http_get(g.port, "/api/orders/7", h3, &resp);
  assert_int_equal(resp.status, 503);
  service_stop(&g);
  service_stop(&orders);

  check_two_services(&g, &orders, "two-1", "/api/orders/42", 200);
  check_two_services(&g, &orders, "two-2", "/api/orders/999", 404);
  check_two_services(&g, &orders, "two-3", "/api/orders/7", 503);
  json_t *call[2];
  lines_of(&g, "two-2", "http.client", call, 2);
  assert_str_field(call[0], "level", "warn");
  lines_of(&g, "two-3", "http.client", call, 2);
  assert_str_field(call[0], "level", "error");
  /* The handler's own line downstream is in the request too. */
  size_t handler = 0;
  for (size_t i = 0; i < orders.n; i++) {
    json_t *j = orders.lines[i];
    json_t *r = json_object_get(j, "request_id");
    if (r && strcmp(json_string_value(r), "two-1") == 0 &&
        strcmp(jstr(j, "logger"), "orders") == 0) {
      assert_str_field(j, "trace_id", T_ID);
      handler++;
    }
  }
  assert_true(handler >= 1);
  for (size_t i = 0; i < g.n; i++)
    assert_null(strstr(g.texts[i], "hunter2"));
  service_free(&g);
  service_free(&orders);
}

/*
 * The same chain with the gateway as its own downstream (the second one has
 * none and answers 502), so that the two-service path is tested whichever
 * server examples were built.
 */
static void test_gateway_chain(void **state) {
  (void)state;
  service back, front;
  service_start(&back, "gateway", NULL, NULL);
  char ds[64];
  snprintf(ds, sizeof ds, "http://127.0.0.1:%d/", back.port);
  const char *const args[] = {"--downstream", ds, NULL};
  service_start(&front, "gateway", args, NULL);
  const char *const h[] = {"traceparent: " TP_01, "X-Request-ID: chain-1",
                           NULL};
  http_response resp;
  http_get(front.port, "/api/orders/5", h, &resp);
  assert_int_equal(resp.status, 502);
  assert_string_equal(resp.request_id, "chain-1");
  /* No traceparent: the chain still shares one (new) trace. */
  http_get(front.port, "/api/orders/6", NULL, &resp);
  assert_int_equal(resp.status, 502);
  char rid2[sizeof resp.request_id];
  snprintf(rid2, sizeof rid2, "%s", resp.request_id);
  service_stop(&front);
  service_stop(&back);

  check_two_services(&front, &back, "chain-1", "/api/orders/5", 502);
  json_t *a = service_access_line(&front, rid2);
  json_t *b = service_access_line(&back, rid2);
  assert_non_null(a);
  assert_non_null(b);
  assert_null(json_object_get(a, "parent_span_id"));
  assert_str_field(b, "trace_id", jstr(a, "trace_id"));
  service_free(&front);
  service_free(&back);
}

static void test_healthz_and_unknown_route(void **state) {
  (void)state;
  http_response resp;
  http_get(gw.port, "/healthz", NULL, &resp);
  assert_int_equal(resp.status, 200);
  assert_string_equal(resp.body, "ok\n");
  assert_true(strlen(resp.request_id) > 0);
  http_get(gw.port, "/nope", NULL, &resp);
  assert_int_equal(resp.status, 404);
  /* No downstream configured: an order cannot be fetched. */
  http_get(gw.port, "/api/orders/1", NULL, &resp);
  assert_int_equal(resp.status, 502);
}

/* ---- trail_curl in this process ----------------------------------------- */

static CURL *easy_to(const char *path) {
  CURL *c = curl_easy_init();
  assert_non_null(c);
  char url[512];
  if (strncmp(path, "http", 4) == 0)
    snprintf(url, sizeof url, "%s", path);
  else
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", rx.port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
  static http_response sink;
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  return c;
}

/* The one captured line of logger http.client; fails unless exactly one. */
static json_t *client_line(void) {
  json_t *found = NULL;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "logger"), "http.client") == 0) {
      if (found != NULL)
        fail_msg("more than one outgoing line");
      found = j;
    } else {
      json_decref(j);
    }
  }
  if (found == NULL)
    fail_msg("no outgoing line");
  assert_key_order(found);
  assert_str_field(found, "message", "outgoing request completed");
  return found;
}

static int lib_setup(void **state) {
  (void)state;
  trail_init("curl-test");
  cap_start(TRAIL_LEVEL_TRACE);
  rx_clear();
  return 0;
}

static int lib_teardown(void **state) {
  (void)state;
  trail_ctx_enter(NULL);
  cap_stop();
  return 0;
}

static void test_perform_without_context(void **state) {
  (void)state;
  assert_null(trail_ctx_current());
  CURL *c = easy_to("/cb/plain?secret=1");
  struct curl_slist *mine = curl_slist_append(NULL, "X-Custom: a");
  assert_int_equal(trail_curl_perform(c, NULL, mine), CURLE_OK);
  rx_req *q = rx_get(0);
  assert_int_equal(rx_header_count(q, "traceparent"), 0);
  assert_int_equal(rx_header_count(q, "tracestate"), 0);
  assert_int_equal(rx_header_count(q, "X-Request-ID"), 0);
  assert_string_equal(rx_header(q, "X-Custom"), "a");

  json_t *j = client_line();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/cb/plain", rx.port);
  assert_str_field(j, "level", "info");
  assert_str_field(j, "method", "GET");
  assert_str_field(j, "url", url);
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
  assert_true(json_number_value(json_object_get(j, "duration_ms")) >= 0);
  static const char *const absent[] = {"request_id", "trace_id", "span_id",
                                       "call_span_id", "error"};
  for (size_t i = 0; i < 5; i++)
    assert_null(json_object_get(j, absent[i]));
  json_decref(j);
  curl_slist_free_all(mine);
  curl_easy_cleanup(c);
}

static void test_perform_with_context_merges_headers(void **state) {
  (void)state;
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  assert_int_equal(trail_ctx_set_traceparent(&ctx, TP_01, TRAIL_NTS), 0);
  assert_int_equal(trail_ctx_set_tracestate(&ctx, "k=v", TRAIL_NTS), 0);
  assert_int_equal(trail_ctx_set_request_id(&ctx, "rid-merge"), 0);
  trail_ctx *prev = trail_ctx_enter(&ctx);

  struct curl_slist *mine = NULL;
  mine = curl_slist_append(mine, "traceparent: 00-bogus");
  mine = curl_slist_append(mine, "TraceState: x=y");
  mine = curl_slist_append(mine, "x-request-id: theirs");
  mine = curl_slist_append(mine, "X-Custom: 1");
  mine = curl_slist_append(mine, "Accept: application/json");
  CURL *c = easy_to("/cb/merge");
  assert_int_equal(trail_curl_perform(c, NULL, mine), CURLE_OK);
  trail_ctx_leave(prev);

  rx_req *q = rx_get(0);
  tp_seen t = tp_of(q);
  assert_string_equal(t.trace, T_ID);
  assert_string_equal(t.flags, "01");
  assert_string_not_equal(t.parent, trail_ctx_span_id(&ctx));
  assert_string_equal(rx_header(q, "tracestate"), "k=v");
  assert_string_equal(rx_header(q, "X-Request-ID"), "rid-merge");
  assert_string_equal(rx_header(q, "X-Custom"), "1");
  assert_string_equal(rx_header(q, "Accept"), "application/json");

  json_t *j = client_line();
  assert_str_field(j, "request_id", "rid-merge");
  assert_str_field(j, "trace_id", T_ID);
  assert_str_field(j, "span_id", trail_ctx_span_id(&ctx));
  assert_str_field(j, "call_span_id", t.parent);
  json_decref(j);

  /* The handle has the caller's list back: a plain transfer sends it. */
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  q = rx_get(1);
  assert_string_equal(rx_header(q, "traceparent"), "00-bogus");
  assert_string_equal(rx_header(q, "X-Request-ID"), "theirs");
  assert_string_equal(rx_header(q, "TraceState"), "x=y");

  /* Every call is a span of its own. */
  assert_int_equal(trail_curl_perform(c, &ctx, mine), CURLE_OK);
  tp_seen t2 = tp_of(rx_get(2));
  assert_string_equal(t2.trace, T_ID);
  assert_string_not_equal(t2.parent, t.parent);
  curl_slist_free_all(mine);
  curl_easy_cleanup(c);
}

/*
 * An explicit context wins over the current one, and the call keeps a
 * copy: the context may change or go away before the call ends.
 */
static void test_explicit_context_is_copied(void **state) {
  (void)state;
  trail_ctx current, mine;
  trail_ctx_init(&current);
  trail_ctx_init(&mine);
  assert_int_equal(trail_ctx_set_request_id(&mine, "explicit-1"), 0);
  char trace[33];
  snprintf(trace, sizeof trace, "%s", trail_ctx_trace_id(&mine));
  trail_ctx *prev = trail_ctx_enter(&current);

  CURL *c = easy_to("/cb/explicit");
  trail_curl_call call;
  assert_int_equal(trail_curl_begin(&call, c, &mine, NULL), 0);
  trail_ctx_clear(&mine);
  CURLcode rc = curl_easy_perform(c);
  trail_curl_end(&call, rc);
  trail_ctx_leave(prev);

  tp_seen t = tp_of(rx_get(0));
  assert_string_equal(t.trace, trace);
  assert_string_equal(t.parent, trail_curl_span_id(&call));
  assert_string_equal(rx_header(rx_get(0), "X-Request-ID"), "explicit-1");
  json_t *j = client_line();
  assert_str_field(j, "request_id", "explicit-1");
  assert_str_field(j, "trace_id", trace);
  json_decref(j);
  curl_easy_cleanup(c);
}

/* The multi interface: begin before adding, end when the transfer is done. */
static void test_multi_interface(void **state) {
  (void)state;
  trail_ctx ctx, other;
  trail_ctx_init(&ctx);
  trail_ctx_init(&other);
  assert_int_equal(trail_ctx_set_request_id(&ctx, "multi-1"), 0);
  CURL *c = easy_to("/status/404");
  CURLM *m = curl_multi_init();
  trail_curl_call call;
  assert_int_equal(trail_curl_begin(&call, c, &ctx, NULL), 0);
  assert_int_equal(curl_multi_add_handle(m, c), CURLM_OK);
  int running = 1;
  CURLcode result = CURLE_OK;
  int done = 0;
  while (!done) {
    assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == c) {
        result = msg->data.result;
        done = 1;
      }
    if (!done)
      assert_int_equal(curl_multi_wait(m, NULL, 0, 1000, NULL), CURLM_OK);
  }
  curl_multi_remove_handle(m, c);
  /* Ended where another request's context is current: the line still
   * belongs to the call's own request. */
  trail_ctx *prev = trail_ctx_enter(&other);
  trail_curl_end(&call, result);
  trail_ctx_leave(prev);

  assert_int_equal(rx_header_count(rx_get(0), "traceparent"), 1);
  json_t *j = client_line();
  assert_str_field(j, "request_id", "multi-1");
  assert_str_field(j, "level", "warn");
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
  json_decref(j);
  curl_multi_cleanup(m);
  curl_easy_cleanup(c);
}

static void test_levels_errors_and_end_twice(void **state) {
  (void)state;
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  CURL *c = easy_to("/status/503");
  trail_curl_call call;
  trail_curl_begin(&call, c, &ctx, NULL);
  CURLcode rc = curl_easy_perform(c);
  trail_curl_end(&call, rc);
  trail_curl_end(&call, rc); /* nothing more */
  json_t *j = client_line();
  assert_str_field(j, "level", "error");
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 503);
  json_decref(j);
  curl_easy_cleanup(c);

  cap_start(TRAIL_LEVEL_TRACE);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/refused?k=v", closed_port());
  c = easy_to(url);
  assert_int_not_equal(trail_curl_perform(c, &ctx, NULL), CURLE_OK);
  j = client_line();
  assert_str_field(j, "level", "error");
  assert_null(json_object_get(j, "status"));
  assert_string_equal(jstr(j, "error"),
                      curl_easy_strerror(CURLE_COULDNT_CONNECT));
  assert_null(strstr(jstr(j, "url"), "k=v"));
  json_decref(j);
  curl_easy_cleanup(c);
}

static void test_urls_in_the_line(void **state) {
  (void)state;
  /* user info before the host, then the path; what the line must say */
  static const char *const cases[][3] = {
      {"u:pw@", "/cb/a?x=1#f", "/cb/a"},
      {"u@", "/cb/b", "/cb/b"},
      {"", "/cb/c@d/e?x=1", "/cb/c@d/e"},
      {"", "/cb/f#frag", "/cb/f"},
      {"", "", "/"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char in[128], want[128];
    snprintf(in, sizeof in, "http://%s127.0.0.1:%d%s", cases[i][0], rx.port,
             cases[i][1]);
    snprintf(want, sizeof want, "http://127.0.0.1:%d%s", rx.port, cases[i][2]);
    cap_start(TRAIL_LEVEL_TRACE);
    CURL *c = easy_to(in);
    assert_int_equal(trail_curl_perform(c, NULL, NULL), CURLE_OK);
    json_t *j = client_line();
    assert_str_field(j, "url", want);
    json_decref(j);
    curl_easy_cleanup(c);
  }
}

/* curl's own answer for the method wins over the one given. */
static void test_method_in_the_line(void **state) {
  (void)state;
  CURL *c = easy_to("/cb/delete");
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  trail_curl_call call;
  trail_curl_begin(&call, c, NULL, NULL);
  trail_curl_set_method(&call, "PATCH");
  trail_curl_end(&call, curl_easy_perform(c));
  json_t *j = client_line();
  assert_str_field(j, "method", "DELETE");
  json_decref(j);
  assert_string_equal(rx_get(0)->method, "DELETE");
  curl_easy_cleanup(c);
}

/* A context with a request id and no trace passes the request id on. */
static void test_request_id_without_trace(void **state) {
  (void)state;
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  assert_int_equal(trail_ctx_set_request_id(&ctx, "only-rid"), 0);
  CURL *c = easy_to("/cb/rid");
  trail_curl_call call;
  assert_int_equal(trail_curl_begin(&call, c, &ctx, NULL), 0);
  assert_string_equal(trail_curl_span_id(&call), "");
  trail_curl_end(&call, curl_easy_perform(c));
  rx_req *q = rx_get(0);
  assert_int_equal(rx_header_count(q, "traceparent"), 0);
  assert_string_equal(rx_header(q, "X-Request-ID"), "only-rid");
  json_t *j = client_line();
  assert_str_field(j, "request_id", "only-rid");
  assert_null(json_object_get(j, "trace_id"));
  assert_null(json_object_get(j, "call_span_id"));
  json_decref(j);
  curl_easy_cleanup(c);
}

static void test_bad_arguments(void **state) {
  (void)state;
  trail_curl_call call;
  assert_int_equal(trail_curl_begin(NULL, NULL, NULL, NULL), -EINVAL);
  assert_int_equal(trail_curl_begin(&call, NULL, NULL, NULL), -EINVAL);
  trail_curl_end(&call, CURLE_OK); /* not begun: no line */
  trail_curl_end(NULL, CURLE_OK);
  trail_curl_set_method(NULL, "GET");
  assert_string_equal(trail_curl_span_id(NULL), "");
  assert_int_equal(trail_curl_perform(NULL, NULL, NULL),
                   CURLE_BAD_FUNCTION_ARGUMENT);
  assert_int_equal(cap_count(), 0);
}

static int gateway_built(void) {
  const char *dir = getenv("TRAIL_TEST_EXAMPLES_DIR");
  char p[512];
  snprintf(p, sizeof p, "%s/gateway", dir ? dir : "../examples");
  return access(p, X_OK) == 0;
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rx_start();
#define LIB(t) cmocka_unit_test_setup_teardown(t, lib_setup, lib_teardown)
  const struct CMUnitTest lib_tests[] = {
      LIB(test_perform_without_context),
      LIB(test_perform_with_context_merges_headers),
      LIB(test_explicit_context_is_copied),
      LIB(test_multi_interface),
      LIB(test_levels_errors_and_end_twice),
      LIB(test_urls_in_the_line),
      LIB(test_method_in_the_line),
      LIB(test_request_id_without_trace),
      LIB(test_bad_arguments),
  };
  const struct CMUnitTest gateway_tests[] = {
      cmocka_unit_test(test_traceparent_missing),
      cmocka_unit_test(test_traceparent_valid),
      cmocka_unit_test(test_traceparent_duplicated),
      cmocka_unit_test(test_traceparent_header_name),
      cmocka_unit_test(test_traceparent_versions),
      cmocka_unit_test(test_traceparent_trace_id),
      cmocka_unit_test(test_traceparent_parent_id),
      cmocka_unit_test(test_traceparent_flags),
      cmocka_unit_test(test_traceparent_ows),
      cmocka_unit_test(test_tracestate_needs_traceparent),
      cmocka_unit_test(test_tracestate_propagated),
      cmocka_unit_test(test_tracestate_empty),
      cmocka_unit_test(test_tracestate_multiple_headers),
      cmocka_unit_test(test_tracestate_duplicated_keys),
      cmocka_unit_test(test_tracestate_all_allowed_characters),
      cmocka_unit_test(test_tracestate_ows),
      cmocka_unit_test(test_tracestate_illegal_keys),
      cmocka_unit_test(test_tracestate_illegal_values),
      cmocka_unit_test(test_tracestate_member_count),
      cmocka_unit_test(test_tracestate_key_length),
      cmocka_unit_test(test_tracestate_value_length),
      cmocka_unit_test(test_multiple_calls),
      cmocka_unit_test(test_forward_arguments),
      cmocka_unit_test(test_forward_bad_bodies),
      cmocka_unit_test(test_healthz_and_unknown_route),
  };
  const struct CMUnitTest service_tests[] = {
      cmocka_unit_test(test_outgoing_lines),
      cmocka_unit_test(test_gateway_chain),
      cmocka_unit_test(test_two_services),
  };
  int rc = cmocka_run_group_tests_name("trail_curl", lib_tests, NULL, NULL);
  if (!gateway_built()) {
    fprintf(stderr, "gateway example not built: its tests are skipped\n");
    rx_stop();
    curl_global_cleanup();
    return rc ? rc : 77;
  }
  rc |=
      cmocka_run_group_tests_name("w3c", gateway_tests, gw_setup, gw_teardown);
  rc |= cmocka_run_group_tests_name("services", service_tests, NULL, NULL);
  rx_stop();
  curl_global_cleanup();
  return rc;
}
