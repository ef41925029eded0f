/*
 * Conformance: what every adapter is tested for. One table of requests and
 * what each must give, the response (status, exactly one X-Request-ID) and
 * the access line (method, path, status, level, bytes, ids, user, remote
 * address, user agent), run against every server in the server table.
 *
 * Each server is started once, through the harness (http_harness.h), gets
 * every case of the table on a connection of its own (raw bytes, so that a
 * control byte or a repeated header goes out as written, and so that the
 * response's X-Request-ID headers can be counted), then one kept-alive
 * connection with several requests, and is stopped. Its lines are read
 * once it has exited: no sleep, no timing.
 *
 * What is here is what every server does alike. What one server does its
 * own way stays in its own test file, with the reason:
 *   - a bare CR or LF, or an obsolete line folding, in a header: MHD keeps
 *     the CR in the value (the id is replaced), civetweb answers from its
 *     error hook, evhttp refuses the request with its own 400 before any
 *     application code (no access line);
 *   - requests the server refuses itself (not HTTP, a header over its
 *     limit, an unknown version);
 *   - a control byte (a tab included) in a header value, which civetweb
 *     refuses with its own 400: those cases are in the table, flagged, and
 *     skip civetweb (SV_REFUSES_CONTROL_BYTES);
 *   - a non-ASCII request line (evhttp: 404 or 400);
 *   - a header line over nginx's buffer (8 KiB by default), in front of
 *     FastCGI: nginx answers its own 400 and the service never sees the
 *     request, so there is no access line; the table's 64 KiB cases are
 *     flagged and skip that row (SV_FRONT_HEADER_LIMIT), and
 *     tests/test_http_fcgi.c tests the refusal; nginx refuses a target
 *     that is only a query the same way (SV_FRONT_TARGET_CHECK);
 *   - a body over the examples' limit, which libevent and nginx refuse
 *     with their own 413 (no access line): flagged (SV_OWN_BODY_LIMIT),
 *     and tested in tests/test_http_evhttp.c and tests/test_http_fcgi.c;
 *   - deferred replies, clients that leave, concurrency, stopping, and the
 *     adapters' APIs in the test's own process.
 *
 * Adding a server is one row of `servers` below: its label, the example's
 * binary, its arguments, optionally a front (a proxy the test starts before
 * it, e.g. nginx for FastCGI) and its flags (documented differences). The
 * servers: MHD (both modes), civetweb, evhttp, ulfius (both modes), and the
 * FastCGI example behind a real nginx (tests/nginx_harness.h).
 */
#include "http_harness.h"
#include "nginx_harness.h"

#define T_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define P_ID "00f067aa0ba902b7"
#define TP_VALID "00-" T_ID "-" P_ID "-01"
#define UA "trail-conformance/1.0"

/* ---- the servers ----------------------------------------------------------
 */

/* Documented differences a case may depend on (conf_case.unless). */
enum {
  /* The server refuses a request whose header value holds a control byte
   * (a tab included) with 400 before the application sees it (civetweb
   * 1.15, see tests/test_http_civetweb.c): the cases with such bytes are
   * not run on it. */
  SV_REFUSES_CONTROL_BYTES = 1u << 0,
  /* A front refuses a request with a header line over its buffer (nginx:
   * large_client_header_buffers, 8 KiB by default) with its own 400,
   * before the service sees it: no X-Request-ID, and no access line, as
   * trail never had the request. The 64 KiB header cases are not run on
   * it; tests/test_http_fcgi.c tests the refusal (nginx's 400, no line,
   * the service unharmed). */
  SV_FRONT_HEADER_LIMIT = 1u << 1,
  /* A front refuses a target that is neither a path nor absolute ("?q":
   * nginx's own 400), before the service sees it: no access line. */
  SV_FRONT_TARGET_CHECK = 1u << 2,
  /* The server (libevent's evhttp_set_max_body_size()) or its front
   * (nginx's client_max_body_size, 1 MiB by default) answers a body over
   * the example's limit with its own 413, before the service sees it: no
   * access line. The over-limit cases are not run on it. */
  SV_OWN_BODY_LIMIT = 1u << 3,
};

typedef struct server {
  const char *label;         /* in messages */
  const char *example;       /* the binary, in the examples' directory */
  const char *const *args;   /* after --port 0; NULL-terminated, may be NULL */
  const char *front;         /* NULL: clients talk to the example itself */
  const char *absolute_host; /* the host an absolute-form target names;
                                "{port}" is the listening port; NULL:
                                "orders.example" */
  unsigned flags;            /* SV_* */
} server;

static const char *const mhd_thread[] = {"--mode", "thread", NULL};
static const char *const mhd_poll[] = {"--mode", "poll", NULL};
static const char *const ulfius_thread[] = {"--mode", "thread", NULL};
static const char *const ulfius_poll[] = {"--mode", "poll", NULL};

static const server servers[] = {
    {"mhd-thread", "orders_mhd", mhd_thread, NULL, NULL, 0},
    {"mhd-poll", "orders_mhd", mhd_poll, NULL, NULL, 0},
    /* civetweb 1.15 serves an absolute-form target only when it names the
     * server itself: its port, and its authentication_domain (by default
     * "mydomain.com"); any other it drops without a reply. */
    {"civetweb", "orders_civetweb", NULL, NULL, "mydomain.com:{port}",
     SV_REFUSES_CONTROL_BYTES},
    {"evhttp", "orders_evhttp", NULL, NULL, NULL, SV_OWN_BODY_LIMIT},
    {"ulfius-thread", "orders_ulfius", ulfius_thread, NULL, NULL, 0},
    {"ulfius-poll", "orders_ulfius", ulfius_poll, NULL, NULL, 0},
    /* FastCGI: nginx (tests/nginx_harness.h, the stock fastcgi_params) in
     * front of orders_fcgi; the test's HTTP goes to nginx. */
    {"fcgi-nginx", "orders_fcgi", NULL, "nginx", NULL,
     SV_FRONT_HEADER_LIMIT | SV_FRONT_TARGET_CHECK | SV_OWN_BODY_LIMIT},
};

#define NSERVERS (sizeof servers / sizeof servers[0])

/*
 * A front: a proxy started in front of the example, which the test's
 * requests then go to. Returns the port to send to, or 0 when this front
 * is not supported here (the server is skipped).
 *
 * "nginx": a real nginx (tests/nginx_harness.h) passing location / to the
 * example over FastCGI with the stock fastcgi_params; its configuration in
 * a temporary directory of its own, on a free loopback port, ready once
 * its pid file is written (no sleep). Without nginx the row is skipped.
 */
static nginx front_nginx;

static int front_start(const server *sv, int backend_port) {
  if (sv->front == NULL)
    return backend_port;
  if (strcmp(sv->front, "nginx") == 0 && nginx_binary() != NULL) {
    nginx_start_fastcgi(&front_nginx, backend_port);
    return front_nginx.port;
  }
  return 0;
}

/* Before the service stops: every request sent has been answered. Safe to
 * call again, and for a front that did not start. */
static void front_stop(const server *sv) {
  if (sv->front != NULL && strcmp(sv->front, "nginx") == 0)
    nginx_stop(&front_nginx);
}

/* ---- the cases ------------------------------------------------------------
 */

#define K16 "kkkkkkkkkkkkkkkk"
#define ID128 K16 K16 K16 K16 K16 K16 K16 K16
#define Z16 "zzzzzzzzzzzzzzzz"
#define ID129 Z16 Z16 Z16 Z16 Z16 Z16 Z16 Z16 "z"

typedef struct conf_case {
  const char *name;
  const char *method;
  const char *target;   /* a leading "{abs}" is "http://<absolute_host>" */
  const char *headers;  /* raw header lines, each ending in CRLF */
  const char *body;     /* sent with Content-Length, or NULL */
  const char *raw_body; /* sent as it is after the head (a chunked body) */
  /* a JSON object of body_n bytes ({"a":"xx...x"}), sent with
   * Content-Length, or in one chunk when chunked is set (0: none) */
  size_t body_n;
  int chunked;
  /* a header line sent `repeat` times after the others (NULL: none) */
  const char *repeat;
  int repeat_n;
  /* a header "pad_name: " with pad_n times 'p' as its value (NULL: none) */
  const char *pad_name;
  size_t pad_n;

  int status;          /* the response's; 0: the server's own choice */
  const char *rid;     /* the echoed X-Request-ID: the sent one; NULL: a new
                          UUID v4 */
  const char *path;    /* the access line's path; NULL: no access line */
  const char *level;   /* the access line's level; NULL: by the status */
  int no_body;         /* bytes 0 (HEAD); else the body's length */
  int continued;       /* the trace of TP_VALID continued; else a new one */
  const char *user;    /* user_id; NULL: none */
  const char *handler; /* a handler line of the request (NULL: none) */
  const char *never;   /* on no line of the service (NULL: nothing) */
  unsigned unless;     /* not run on a server with any of these flags */
} conf_case;

#define RID(v) "X-Request-ID: " v "\r\n"
#define TP(v) "traceparent: " v "\r\n"

static const conf_case cases[] = {
    /* the basics: status, level, bytes, path without its query */
    {.name = "get",
     .method = "GET",
     .target = "/api/orders/42?token=s3cr3t-get",
     .headers = RID("cf-get"),
     .status = 200,
     .rid = "cf-get",
     .path = "/api/orders/42",
     .level = "info",
     .handler = "order loaded",
     .never = "s3cr3t-get"},
    {.name = "no-id",
     .method = "GET",
     .target = "/api/orders/1",
     .status = 200,
     .path = "/api/orders/1",
     .level = "info",
     .handler = "order loaded"},
    {.name = "post-201",
     .method = "POST",
     .target = "/api/orders",
     .headers = RID("cf-post-201") "Content-Type: application/json\r\n",
     .body = "{\"sku\":991,\"qty\":2}",
     .status = 201,
     .rid = "cf-post-201",
     .path = "/api/orders",
     .level = "info",
     .handler = "order created"},
    {.name = "post-chunked",
     .method = "POST",
     .target = "/api/orders",
     .headers = RID("cf-post-chunked") "Content-Type: application/json\r\n"
                                       "Transfer-Encoding: chunked\r\n",
     .raw_body = "5\r\n{\"a\":\r\n4\r\n[1]}\r\n0\r\n\r\n",
     .status = 201,
     .rid = "cf-post-chunked",
     .path = "/api/orders",
     .level = "info",
     .handler = "order created"},
    {.name = "post-400",
     .method = "POST",
     .target = "/api/orders",
     .headers = RID("cf-post-400") "Content-Type: application/json\r\n",
     .body = "[1,2",
     .status = 400,
     .rid = "cf-post-400",
     .path = "/api/orders",
     .level = "warn",
     .handler = "invalid order body"},
    /* the examples' body limit (ORDERS_BODY_MAX): at it, accepted; one
     * byte over, 413 from the service, with its access line */
    {.name = "post-at-limit",
     .method = "POST",
     .target = "/api/orders",
     .headers = RID("cf-at-limit") "Content-Type: application/json\r\n",
     .body_n = ORDERS_BODY_MAX,
     .status = 201,
     .rid = "cf-at-limit",
     .path = "/api/orders",
     .level = "info",
     .handler = "order created"},
    {.name = "post-at-limit-chunked",
     .method = "POST",
     .target = "/api/orders",
     .headers = RID("cf-at-limit-chunked") "Content-Type: application/json\r\n",
     .body_n = ORDERS_BODY_MAX,
     .chunked = 1,
     .status = 201,
     .rid = "cf-at-limit-chunked",
     .path = "/api/orders",
     .level = "info",
     .handler = "order created"},
    {.name = "post-over-limit",
     .method = "POST",
     .target = "/api/orders",
     .headers = RID("cf-over-limit") "Content-Type: application/json\r\n",
     .body_n = ORDERS_BODY_MAX + 1,
     .status = 413,
     .rid = "cf-over-limit",
     .path = "/api/orders",
     .level = "warn",
     .handler = "request body too large",
     .unless = SV_OWN_BODY_LIMIT},
    {.name = "post-over-limit-chunked",
     .method = "POST",
     .target = "/api/orders",
     .headers =
         RID("cf-over-limit-chunked") "Content-Type: application/json\r\n",
     .body_n = ORDERS_BODY_MAX + 1,
     .chunked = 1,
     .status = 413,
     .rid = "cf-over-limit-chunked",
     .path = "/api/orders",
     .level = "warn",
     .handler = "request body too large",
     .unless = SV_OWN_BODY_LIMIT},
    {.name = "get-404",
     .method = "GET",
     .target = "/api/orders/999",
     .headers = RID("cf-404"),
     .status = 404,
     .rid = "cf-404",
     .path = "/api/orders/999",
     .level = "warn",
     .handler = "order not found"},
    {.name = "get-503",
     .method = "GET",
     .target = "/api/orders/7",
     .headers = RID("cf-503"),
     .status = 503,
     .rid = "cf-503",
     .path = "/api/orders/7",
     .level = "error",
     .handler = "query timed out"},
    {.name = "no-route",
     .method = "GET",
     .target = "/no/such/route?x=s3cr3t-route",
     .headers = RID("cf-no-route"),
     .status = 404,
     .rid = "cf-no-route",
     .path = "/no/such/route",
     .level = "warn",
     .handler = "no such route",
     .never = "s3cr3t-route"},
    {.name = "delete",
     .method = "DELETE",
     .target = "/api/orders/1",
     .headers = RID("cf-delete"),
     .status = 404,
     .rid = "cf-delete",
     .path = "/api/orders/1",
     .level = "warn"},
    /* HEAD: the routes know GET and POST; no body goes out, bytes is 0 */
    {.name = "head",
     .method = "HEAD",
     .target = "/api/orders/42",
     .headers = RID("cf-head"),
     .status = 404,
     .rid = "cf-head",
     .path = "/api/orders/42",
     .level = "warn",
     .no_body = 1},
    /* skipped paths: answered, echoed, no access line */
    {.name = "healthz",
     .method = "GET",
     .target = "/healthz",
     .headers = RID("cf-healthz"),
     .status = 200,
     .rid = "cf-healthz"},
    {.name = "healthz-query",
     .method = "GET",
     .target = "/healthz?probe=1",
     .status = 200},
    {.name = "metrics",
     .method = "GET",
     .target = "/metrics",
     .headers = RID("cf-metrics"),
     .status = 200,
     .rid = "cf-metrics"},
    /* an absolute-form target is logged by its path (a core rule); what
     * the example's routes make of it is the server's (MHD hands the
     * handler the target as sent: no route, 404) */
    {.name = "absolute-form",
     .method = "GET",
     .target = "{abs}/api/orders/42?token=s3cr3t-abs",
     .headers = RID("cf-absolute"),
     .rid = "cf-absolute",
     .path = "/api/orders/42",
     .never = "s3cr3t-abs"},
    {.name = "absolute-form-no-path",
     .method = "GET",
     .target = "{abs}",
     .headers = RID("cf-absolute-root"),
     .rid = "cf-absolute-root",
     .path = "/"},
    {.name = "absolute-form-query-only",
     .method = "GET",
     .target = "{abs}?token=s3cr3t-absq",
     .headers = RID("cf-absolute-query"),
     .rid = "cf-absolute-query",
     .path = "/",
     .never = "s3cr3t-absq"},
    /* a target that is only a query: an empty path, logged as "/" */
    {.name = "query-only",
     .method = "GET",
     .target = "?token=s3cr3t-qonly",
     .headers = RID("cf-query-only"),
     .rid = "cf-query-only",
     .path = "/",
     .never = "s3cr3t-qonly",
     .unless = SV_FRONT_TARGET_CHECK},

    /* X-Request-ID: kept when valid */
    {.name = "rid-alphabet",
     .method = "GET",
     .target = "/api/orders/2",
     .headers = RID("Req_1.2:3-x"),
     .status = 200,
     .rid = "Req_1.2:3-x",
     .path = "/api/orders/2",
     .level = "info",
     .handler = "order loaded"},
    {.name = "rid-128",
     .method = "GET",
     .target = "/api/orders/2",
     .headers = RID(ID128),
     .status = 200,
     .rid = ID128,
     .path = "/api/orders/2",
     .level = "info"},
    {.name = "rid-uuid",
     .method = "GET",
     .target = "/api/orders/2",
     .headers = RID("3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"),
     .status = 200,
     .rid = "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91",
     .path = "/api/orders/2",
     .level = "info"},
    /* X-Request-ID: replaced by a new UUID v4, the value on no line */
    {.name = "rid-129",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID(ID129),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = Z16},
    {.name = "rid-64k",
     .method = "GET",
     .target = "/api/orders/3",
     .pad_name = "X-Request-ID",
     .pad_n = 64 * 1024,
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "pppppppppppppppp",
     .unless = SV_FRONT_HEADER_LIMIT},
    {.name = "rid-space",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("has space"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .handler = "order loaded",
     .never = "has space"},
    {.name = "rid-quote",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("quo\"te,c=d"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "te,c=d"},
    {.name = "rid-json",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("{\"level\":\"fatal\"}"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "fatal"},
    {.name = "rid-utf8",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("caf\xc3\xa9-id"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "-id\""},
    {.name = "rid-not-utf8",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("\xff\xfe\x80-bytes"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "-bytes"},
    {.name = "rid-tab",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("tab\tinside"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "inside",
     .unless = SV_REFUSES_CONTROL_BYTES},
    {.name = "rid-control",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("ctl\x01\x1b[31mred\x7f"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "[31mred",
     .unless = SV_REFUSES_CONTROL_BYTES},
    {.name = "rid-empty",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = "X-Request-ID:\r\n",
     .status = 200,
     .path = "/api/orders/3",
     .level = "info"},
    {.name = "rid-twice",
     .method = "GET",
     .target = "/api/orders/3",
     .headers = RID("dup-a") RID("dup-b"),
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .handler = "order loaded",
     .never = "dup-"},
    {.name = "rid-100",
     .method = "GET",
     .target = "/api/orders/3",
     .repeat = RID("many-rid"),
     .repeat_n = 100,
     .status = 200,
     .path = "/api/orders/3",
     .level = "info",
     .never = "many-rid"},

    /* traceparent: continued when one and valid */
    {.name = "tp-valid",
     .method = "GET",
     .target = "/api/orders/4",
     .headers = RID("cf-tp-valid")
         TP(TP_VALID) "tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\r\n",
     .status = 200,
     .rid = "cf-tp-valid",
     .path = "/api/orders/4",
     .level = "info",
     .continued = 1,
     .handler = "order loaded",
     .never = "t61rcWkgMzE"}, /* tracestate is propagated, not logged */
    {.name = "tp-ows",
     .method = "GET",
     .target = "/api/orders/4",
     .headers = RID("cf-tp-ows") "traceparent:   00-" T_ID "-" P_ID "-00  \r\n",
     .status = 200,
     .rid = "cf-tp-ows",
     .path = "/api/orders/4",
     .level = "info",
     .continued = 1},
    {.name = "tp-ows-tab",
     .method = "GET",
     .target = "/api/orders/4",
     .headers =
         RID("cf-tp-ows-tab") "traceparent: \t 00-" T_ID "-" P_ID "-00 \t\r\n",
     .status = 200,
     .rid = "cf-tp-ows-tab",
     .path = "/api/orders/4",
     .level = "info",
     .continued = 1,
     .unless = SV_REFUSES_CONTROL_BYTES},
    {.name = "tp-name-case",
     .method = "GET",
     .target = "/api/orders/4",
     .headers = RID("cf-tp-case") "TraceParent: " TP_VALID "\r\n",
     .status = 200,
     .rid = "cf-tp-case",
     .path = "/api/orders/4",
     .level = "info",
     .continued = 1},
    /* traceparent: a new trace when invalid or repeated */
    {.name = "tp-upper",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-upper")
         TP("00-4BF92F3577B34DA6A3CE929D0E0E4736-" P_ID "-01"),
     .status = 200,
     .rid = "cf-tp-upper",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-version-ff",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-ff") TP("ff-" T_ID "-" P_ID "-01"),
     .status = 200,
     .rid = "cf-tp-ff",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-zero-trace",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-zero-trace")
         TP("00-00000000000000000000000000000000-" P_ID "-01"),
     .status = 200,
     .rid = "cf-tp-zero-trace",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-zero-parent",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-zero-parent") TP("00-" T_ID "-0000000000000000-01"),
     .status = 200,
     .rid = "cf-tp-zero-parent",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-extra",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-extra") TP(TP_VALID "-extra"),
     .status = 200,
     .rid = "cf-tp-extra",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-short",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-short") TP("00-" T_ID "-" P_ID),
     .status = 200,
     .rid = "cf-tp-short",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-short-flags",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-short-flags") TP("00-" T_ID "-" P_ID "-1"),
     .status = 200,
     .rid = "cf-tp-short-flags",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-not-hex",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-not-hex")
         TP("00-4bf92f3577b34da6a3ce929d0e0e473g-" P_ID "-01"),
     .status = 200,
     .rid = "cf-tp-not-hex",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-joined",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-joined") TP(TP_VALID "," TP_VALID),
     .status = 200,
     .rid = "cf-tp-joined",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-non-ascii",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-non-ascii") TP("00-" T_ID "-" P_ID "-\xc3\xa9"),
     .status = 200,
     .rid = "cf-tp-non-ascii",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-twice",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-twice") TP(TP_VALID) TP(TP_VALID),
     .status = 200,
     .rid = "cf-tp-twice",
     .path = "/api/orders/5",
     .level = "info",
     .handler = "order loaded"},
    {.name = "tp-twice-name-case",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-twice-case") TP(TP_VALID) "Traceparent: 00-" T_ID
                                                     "-" P_ID "-00\r\n",
     .status = 200,
     .rid = "cf-tp-twice-case",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-100",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-100"),
     .repeat = TP(TP_VALID),
     .repeat_n = 100,
     .status = 200,
     .rid = "cf-tp-100",
     .path = "/api/orders/5",
     .level = "info"},
    {.name = "tp-64k",
     .method = "GET",
     .target = "/api/orders/5",
     .headers = RID("cf-tp-64k"),
     .pad_name = "traceparent",
     .pad_n = 64 * 1024,
     .status = 200,
     .rid = "cf-tp-64k",
     .path = "/api/orders/5",
     .level = "info",
     .unless = SV_FRONT_HEADER_LIMIT},
    /* tracestate: without a valid traceparent, dropped; hostile, harmless */
    {.name = "ts-alone",
     .method = "GET",
     .target = "/api/orders/6",
     .headers = RID("cf-ts-alone") "tracestate: congo=t61rcWkgMzE\r\n",
     .status = 200,
     .rid = "cf-ts-alone",
     .path = "/api/orders/6",
     .level = "info",
     .never = "t61rcWkgMzE"},
    {.name = "ts-hostile",
     .method = "GET",
     .target = "/api/orders/6",
     .headers = RID("cf-ts-hostile")
         TP(TP_VALID) "tracestate: k=v\xff\",{\"level\":\"fatal\"}=x,=\\\r\n",
     .status = 200,
     .rid = "cf-ts-hostile",
     .path = "/api/orders/6",
     .level = "info",
     .continued = 1,
     .handler = "order loaded"},
    {.name = "ts-control",
     .method = "GET",
     .target = "/api/orders/6",
     .headers =
         RID("cf-ts-control") TP(TP_VALID) "tracestate: a=\x01,\x1b=\x7f\r\n",
     .status = 200,
     .rid = "cf-ts-control",
     .path = "/api/orders/6",
     .level = "info",
     .continued = 1,
     .unless = SV_REFUSES_CONTROL_BYTES},
    {.name = "ts-junk-tp",
     .method = "GET",
     .target = "/api/orders/6",
     .headers = RID("cf-ts-junk-tp") TP("junk"),
     .pad_name = "tracestate",
     .pad_n = 64 * 1024,
     .status = 200,
     .rid = "cf-ts-junk-tp",
     .path = "/api/orders/6",
     .level = "info",
     .unless = SV_FRONT_HEADER_LIMIT},

    /* the user header */
    {.name = "user",
     .method = "GET",
     .target = "/api/orders/8",
     .headers = RID("cf-user") "X-User-ID: user-4711\r\n",
     .status = 200,
     .rid = "cf-user",
     .path = "/api/orders/8",
     .level = "info",
     .user = "user-4711",
     .handler = "order loaded"},
    {.name = "user-twice",
     .method = "GET",
     .target = "/api/orders/8",
     .headers = RID("cf-user-twice") "X-User-ID: u-1\r\nX-User-ID: u-2\r\n",
     .status = 200,
     .rid = "cf-user-twice",
     .path = "/api/orders/8",
     .level = "info",
     .handler = "order loaded"},
    {.name = "user-100",
     .method = "GET",
     .target = "/api/orders/8",
     .headers = RID("cf-user-100"),
     .repeat = "X-User-ID: many-users\r\n",
     .repeat_n = 100,
     .status = 200,
     .rid = "cf-user-100",
     .path = "/api/orders/8",
     .level = "info",
     .never = "many-users"},
    /* quotes, a backslash, a control byte: escaped, the line intact */
    {.name = "user-hostile",
     .method = "GET",
     .target = "/api/orders/8",
     .headers = RID("cf-user-hostile") "X-User-ID: q\"u\\o,{\"level\":1}\r\n",
     .status = 200,
     .rid = "cf-user-hostile",
     .path = "/api/orders/8",
     .level = "info",
     .user = "q\"u\\o,{\"level\":1}",
     .handler = "order loaded"},
    {.name = "user-control",
     .method = "GET",
     .target = "/api/orders/8",
     .headers = RID("cf-user-control") "X-User-ID: a\x01b\x1b[0m\x7f\r\n",
     .status = 200,
     .rid = "cf-user-control",
     .path = "/api/orders/8",
     .level = "info",
     .user = "a\x01b\x1b[0m\x7f",
     .handler = "order loaded",
     .unless = SV_REFUSES_CONTROL_BYTES},
    /* invalid UTF-8 becomes U+FFFD */
    {.name = "user-not-utf8",
     .method = "GET",
     .target = "/api/orders/8",
     .headers = RID("cf-user-utf8") "X-User-ID: j\xc3\xb6rg\xff\r\n",
     .status = 200,
     .rid = "cf-user-utf8",
     .path = "/api/orders/8",
     .level = "info",
     .user = "j\xc3\xb6rg\xef\xbf\xbd"},
};

#define NCASES (sizeof cases / sizeof cases[0])

/* ---- checks on values -----------------------------------------------------
 */

static int is_hex(const char *s, size_t n) {
  if (s == NULL || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
      return 0;
  return 1;
}

/* A lowercase UUID v4 (version 4, RFC 4122 variant), as trail makes them. */
static int is_uuid4(const char *s) {
  if (s == NULL || strlen(s) != 36)
    return 0;
  for (size_t i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex((char[]){s[i], '\0'}, 1))
      return 0;
  }
  return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static const char *str_of(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return v && json_is_string(v) ? json_string_value(v) : NULL;
}

static int is_access(json_t *j) {
  const char *l = str_of(j, "logger"), *m = str_of(j, "message");
  return l && m && !strcmp(l, "http") && !strcmp(m, "request completed");
}

/* ---- sending a case -------------------------------------------------------
 */

typedef struct text {
  char *p;
  size_t len, cap;
} text;

static void text_add(text *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    t->cap = (t->len + n + 1) * 2;
    t->p = realloc(t->p, t->cap);
    assert_non_null(t->p);
  }
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

static void text_puts(text *t, const char *s) { text_add(t, s, strlen(s)); }

/* "{port}" in a host template becomes the port. */
static void host_of(const server *sv, int port, char *out, size_t size) {
  const char *h = sv->absolute_host ? sv->absolute_host : "orders.example";
  const char *p = strstr(h, "{port}");
  if (p == NULL)
    snprintf(out, size, "%s", h);
  else
    snprintf(out, size, "%.*s%d%s", (int)(p - h), h, port, p + 6);
}

/* A JSON object of n bytes (raw_fill_object()). */
static void add_object(text *t, size_t n) {
  char *b = malloc(n);
  assert_non_null(b);
  raw_fill_object(b, n);
  text_add(t, b, n);
  free(b);
}

/* The request of case c, as bytes; keep_alive: no "Connection: close". */
static void build_request(const server *sv, int port, const conf_case *c,
                          int keep_alive, text *t) {
  char host[256];
  host_of(sv, port, host, sizeof host);
  memset(t, 0, sizeof *t);
  text_puts(t, c->method);
  text_puts(t, " ");
  if (strncmp(c->target, "{abs}", 5) == 0) {
    text_puts(t, "http://");
    text_puts(t, host);
    text_puts(t, c->target + 5);
  } else {
    text_puts(t, c->target);
  }
  text_puts(t, " HTTP/1.1\r\nHost: ");
  text_puts(t, strncmp(c->target, "{abs}", 5) == 0 ? host : "127.0.0.1");
  text_puts(t, "\r\nUser-Agent: " UA "\r\n");
  if (!keep_alive)
    text_puts(t, "Connection: close\r\n");
  if (c->headers)
    text_puts(t, c->headers);
  for (int i = 0; c->repeat && i < c->repeat_n; i++)
    text_puts(t, c->repeat);
  if (c->pad_name) {
    text_puts(t, c->pad_name);
    text_puts(t, ": ");
    for (size_t i = 0; i < c->pad_n; i++)
      text_add(t, "p", 1);
    text_puts(t, "\r\n");
  }
  char line[64];
  if (c->body || (c->body_n && !c->chunked)) {
    snprintf(line, sizeof line, "Content-Length: %zu\r\n",
             c->body ? strlen(c->body) : c->body_n);
    text_puts(t, line);
  }
  if (c->body_n && c->chunked)
    text_puts(t, "Transfer-Encoding: chunked\r\n");
  text_puts(t, "\r\n");
  if (c->body)
    text_puts(t, c->body);
  if (c->raw_body)
    text_puts(t, c->raw_body);
  if (c->body_n) {
    if (c->chunked) {
      snprintf(line, sizeof line, "%zx\r\n", c->body_n);
      text_puts(t, line);
    }
    add_object(t, c->body_n);
    if (c->chunked)
      text_puts(t, "\r\n0\r\n\r\n");
  }
}

/* ---- checking a case ------------------------------------------------------
 */

/* A mismatch is reported and counted, and ends the check of that case
 * only: one run shows every case a server fails. */
static int failures;

static void TRAIL__PRINTF(3, 4)
    report(const server *sv, const conf_case *c, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  print_error("%s, case %s: %s\n", sv->label, c->name, msg);
  failures++;
}

#define FAIL(sv, c, ...)                                                       \
  do {                                                                         \
    report(sv, c, __VA_ARGS__);                                                \
    return;                                                                    \
  } while (0)

/* 0 when j's key is want (NULL: j has no key), else reported, -1. */
static int check_string(const server *sv, const conf_case *c, json_t *j,
                        const char *key, const char *want) {
  const char *got = str_of(j, key);
  if (want == NULL && json_object_get(j, key) != NULL) {
    report(sv, c, "%s present, want none", key);
    return -1;
  }
  if (want != NULL && (got == NULL || strcmp(got, want) != 0)) {
    report(sv, c, "%s is \"%s\", want \"%s\"", key, got ? got : "(none)", want);
    return -1;
  }
  return 0;
}

/* The response: its status, and exactly one X-Request-ID, the sent value
 * or a new UUID v4. */
static void check_response(const server *sv, const conf_case *c,
                           const raw_response *r) {
  if (r->status <= 0 || (c->status != 0 && r->status != c->status))
    FAIL(sv, c, "status %d, want %d", r->status, c->status);
  if (r->request_id_count != 1)
    FAIL(sv, c, "%d X-Request-ID headers, want 1", r->request_id_count);
  if (c->rid ? strcmp(r->request_id, c->rid) != 0 : !is_uuid4(r->request_id))
    FAIL(sv, c, "X-Request-ID \"%s\", want %s", r->request_id,
         c->rid ? c->rid : "a new UUID v4");
  if (c->no_body && r->body_len != 0)
    FAIL(sv, c, "%zu body bytes, want none", r->body_len);
}

/* The lines of the request r answered: one access line with the case's
 * fields (or none), every line with the access line's ids and user. */
static void check_lines(const server *sv, const conf_case *c, service *s,
                        const raw_response *r) {
  const char *rid = r->request_id;
  json_t *acc = NULL;
  size_t naccess = 0, nlines = 0;
  for (size_t i = 0; i < s->n; i++) {
    const char *lr = str_of(s->lines[i], "request_id");
    if (lr == NULL || strcmp(lr, rid) != 0)
      continue;
    nlines++;
    if (is_access(s->lines[i])) {
      naccess++;
      acc = s->lines[i];
    }
  }
  if (c->path == NULL) {
    /* a skipped path: no access line, and the handler logs nothing */
    if (nlines != 0)
      FAIL(sv, c, "%zu lines for a skipped path, want none", nlines);
    return;
  }
  if (naccess != 1)
    FAIL(sv, c, "%zu access lines for %s, want exactly 1", naccess, rid);
  assert_key_order(acc);
  const char *level = c->level           ? c->level
                      : r->status >= 500 ? "error"
                      : r->status >= 400 ? "warn"
                                         : "info";
  if (check_string(sv, c, acc, "level", service_level(acc, level)) != 0)
    return;
  if (check_string(sv, c, acc, "method", c->method) != 0)
    return;
  if (check_string(sv, c, acc, "path", c->path) != 0)
    return;
  if (check_string(sv, c, acc, "remote_addr", "127.0.0.1") != 0)
    return;
  if (check_string(sv, c, acc, "user_agent", UA) != 0)
    return;
  if (check_string(sv, c, acc, "user_id", c->user) != 0)
    return;
  json_t *st = json_object_get(acc, "status");
  if (!json_is_integer(st) || json_integer_value(st) != r->status)
    FAIL(sv, c, "access line status differs from the response's %d", r->status);
  json_t *b = json_object_get(acc, "bytes");
  json_int_t want_bytes = c->no_body ? 0 : (json_int_t)r->body_len;
  if (!json_is_integer(b) || json_integer_value(b) != want_bytes)
    FAIL(sv, c, "bytes %lld, want %lld",
         b ? (long long)json_integer_value(b) : -1LL, (long long)want_bytes);
  json_t *d = json_object_get(acc, "duration_ms");
  if (!json_is_number(d) || json_number_value(d) < 0)
    FAIL(sv, c, "no duration_ms");
  const char *trace = str_of(acc, "trace_id");
  const char *span = str_of(acc, "span_id");
  if (!is_hex(trace, 32) || !is_hex(span, 16))
    FAIL(sv, c, "trace_id %s, span_id %s", trace ? trace : "(none)",
         span ? span : "(none)");
  if (c->continued) {
    if (check_string(sv, c, acc, "trace_id", T_ID) != 0)
      return;
    if (check_string(sv, c, acc, "parent_span_id", P_ID) != 0)
      return;
    if (strcmp(span, P_ID) == 0)
      FAIL(sv, c, "the caller's span kept as the request's");
  } else {
    if (strcmp(trace, T_ID) == 0)
      FAIL(sv, c, "continued a trace it should have refused");
    if (check_string(sv, c, acc, "parent_span_id", NULL) != 0)
      return;
  }
  /* every line of the request: its trace, span and user */
  json_t *handler = NULL;
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    const char *lr = str_of(j, "request_id");
    if (lr == NULL || strcmp(lr, rid) != 0)
      continue;
    if (check_string(sv, c, j, "trace_id", trace) != 0)
      return;
    if (check_string(sv, c, j, "span_id", span) != 0)
      return;
    if (check_string(sv, c, j, "user_id", c->user) != 0)
      return;
    const char *m = str_of(j, "message");
    if (c->handler && m && strcmp(m, c->handler) == 0)
      handler = j;
  }
  if (c->handler && handler == NULL)
    FAIL(sv, c, "no handler line \"%s\"", c->handler);
}

/* ---- one server -----------------------------------------------------------
 */

/*
 * Keep-alive: three requests, one after the other, on one connection. The
 * first one's id, user and trace must not reach the next ones' lines.
 */
static const conf_case ka_cases[] = {
    {.name = "keep-alive-1",
     .method = "GET",
     .target = "/api/orders/11",
     .headers = RID("cf-ka-1") "X-User-ID: carol\r\n" TP(TP_VALID),
     .status = 200,
     .rid = "cf-ka-1",
     .path = "/api/orders/11",
     .level = "info",
     .continued = 1,
     .user = "carol",
     .handler = "order loaded"},
    {.name = "keep-alive-2",
     .method = "GET",
     .target = "/api/orders/12",
     .status = 200,
     .path = "/api/orders/12",
     .level = "info",
     .handler = "order loaded"},
    {.name = "keep-alive-3",
     .method = "POST",
     .target = "/api/orders",
     .headers = RID("bad id") "Content-Type: application/json\r\n",
     .body = "{\"a\":[1]}",
     .status = 201,
     .path = "/api/orders",
     .level = "info",
     .handler = "order created"},
};

#define NKA (sizeof ka_cases / sizeof ka_cases[0])

/* The running service, for the teardown to end when a failed assertion
 * left the test before it stopped the service. */
static service *live;

static int teardown(void **state) {
  front_stop(*state);
  if (live != NULL) {
    kill(live->pid, SIGKILL);
    waitpid(live->pid, NULL, 0);
    pthread_join(live->reader, NULL);
    service_free(live);
    live = NULL;
  }
  return 0;
}

static void run_server(void **state) {
  const server *sv = *state;
  static service s;
  failures = 0;
  if (!service_built(sv->example)) {
    print_message("%s: %s not built, skipped\n", sv->label, sv->example);
    skip();
  }
  service_start(&s, sv->example, sv->args, NULL);
  live = &s;
  int port = front_start(sv, s.port);
  if (port == 0) {
    print_message("%s: front %s not supported, skipped\n", sv->label,
                  sv->front);
    live = NULL;
    service_stop(&s);
    service_free(&s);
    skip();
  }

  /* Every request first, every check once the service has stopped: a
   * failed check must not leave it running. */
  raw_response *resp = calloc(NCASES, sizeof *resp);
  int *nresp = calloc(NCASES, sizeof *nresp);
  assert_non_null(resp);
  assert_non_null(nresp);
  int run[NCASES];
  size_t expected_access = 0, nrun = 0;
  for (size_t i = 0; i < NCASES; i++) {
    const conf_case *c = &cases[i];
    run[i] = (sv->flags & c->unless) == 0;
    if (!run[i])
      continue;
    nrun++;
    text t;
    build_request(sv, port, c, 0, &t);
    raw_reply *rr = malloc(sizeof *rr);
    assert_non_null(rr);
    raw_exchange(port, t.p, t.len, rr);
    free(t.p);
    nresp[i] = rr->n;
    resp[i] = rr->r[0];
    free(rr);
    if (c->path)
      expected_access++;
  }

  /* keep-alive */
  raw_response ka[NKA];
  int ka_ok[NKA];
  int fd = raw_connect(port);
  for (size_t i = 0; i < NKA; i++) {
    text t;
    build_request(sv, port, &ka_cases[i], i + 1 < NKA, &t);
    ka_ok[i] =
        raw_send(fd, t.p, t.len) == 0 && raw_read_one(fd, 0, &ka[i]) == 0;
    free(t.p);
    expected_access++;
  }
  close(fd);

  front_stop(sv);
  live = NULL;
  service_stop(&s);

  for (size_t i = 0; i < NCASES; i++) {
    if (!run[i])
      continue;
    if (nresp[i] != 1) {
      report(sv, &cases[i], "%d responses, want 1", nresp[i]);
      continue;
    }
    check_response(sv, &cases[i], &resp[i]);
  }
  for (size_t i = 0; i < NKA; i++) {
    if (!ka_ok[i]) {
      report(sv, &ka_cases[i], "no response on the kept-alive connection");
      continue;
    }
    check_response(sv, &ka_cases[i], &ka[i]);
  }
  for (size_t i = 0; i < NCASES; i++)
    if (run[i])
      check_lines(sv, &cases[i], &s, &resp[i]);
  for (size_t i = 0; i < NKA; i++)
    check_lines(sv, &ka_cases[i], &s, &ka[i]);
  /* the new ids are new: no two requests share one */
  for (size_t i = 0; i < NKA; i++)
    for (size_t k = i + 1; k < NKA; k++)
      assert_string_not_equal(ka[i].request_id, ka[k].request_id);

  /* exactly one access line per request that has one, and no other */
  size_t naccess = 0;
  for (size_t i = 0; i < s.n; i++)
    naccess += (size_t)is_access(s.lines[i]);
  if (naccess != expected_access)
    fail_msg("%s: %zu access lines, want %zu", sv->label, naccess,
             expected_access);
  /* what must reach no line */
  for (size_t i = 0; i < NCASES; i++)
    for (size_t k = 0; run[i] && cases[i].never && k < s.n; k++)
      if (strstr(s.texts[k], cases[i].never) != NULL)
        report(sv, &cases[i], "\"%s\" on a line: %.300s", cases[i].never,
               s.texts[k]);
  if (failures > 0)
    fail_msg("%s: %d mismatches", sv->label, failures);
  print_message("%s: %zu of %zu cases, %zu requests on one connection\n",
                sv->label, nrun, (size_t)NCASES, (size_t)NKA);
  free(resp);
  free(nresp);
  service_free(&s);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct CMUnitTest tests[NSERVERS];
  size_t built = 0;
  for (size_t i = 0; i < NSERVERS; i++) {
    tests[i] = (struct CMUnitTest){servers[i].label, run_server, NULL, teardown,
                                   (void *)&servers[i]};
    built += (size_t)service_built(servers[i].example);
  }
  if (built == 0) {
    fprintf(stderr, "no server's example was built, skipping\n");
    return 77;
  }
  int rc = cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
