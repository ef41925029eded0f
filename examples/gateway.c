/*
 * gateway: a service in front of the orders service, to show one trace
 * crossing two services. Its server part is libmicrohttpd with trail's
 * adapter (libtrail-mhd: the request's context, X-Request-ID and the access
 * line); its calls go out through libcurl with trail_curl, which carries the
 * request's trace.
 *
 *   gateway --port 8081 --downstream http://127.0.0.1:8080
 *   gateway --help
 *
 *   GET  /api/orders/{id}   GET downstream /api/orders/{id} (query kept),
 *                           status, body and type relayed; 502 when the
 *                           downstream cannot be reached
 *   POST /forward           body: a JSON array of {"url": ..., "arguments":
 *                           ...}; POSTs each element's "arguments" as JSON
 *                           ([] when absent) to its url, in order, with the
 *                           propagated headers, then replies 200 with each
 *                           call's status. This is the endpoint the W3C
 *                           trace-context test harness drives.
 *   GET  /healthz           200 "ok" (no access line)
 *   GET  /metrics           trail's counters for Prometheus (no access line)
 *
 * --port 0 lets the kernel choose; the "listening" line says which port.
 * SIGINT or SIGTERM stops it, exit status 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <trail.h>
#include <trail/curl.h>
#include <trail/http.h>
#include <trail/mhd.h>

#include "orders.h"

typedef TRAIL_MHD_RESULT mhd_result;

#define BODY_MAX (1024 * 1024) /* request and relayed bodies */
#define FORWARD_MAX 64         /* calls one POST /forward may ask for */
#define CALL_TIMEOUT_MS 10000L

static trail_http_config http_cfg;
static trail_mhd gw_mhd;      /* the adapter's state: outlives the daemon */
static char downstream[1024]; /* base URL, no trailing '/' */
static trail_logger *gw_log;

/* One request: what the handler needs (the adapter keeps trail's state). */
typedef struct gw_request {
  char *uri; /* as received, query included */
  char *body;
  size_t body_len;
  int too_big;
  int started; /* the access handler's first call has run */
} gw_request;

/* A reply being built: status, content type and body (malloc'ed). */
typedef struct gw_reply {
  int status;
  char type[128];
  char *body;
  size_t len;
} gw_reply;

static void reply_set(gw_reply *out, int status, const char *type,
                      const char *body, size_t len) {
  free(out->body);
  out->status = status;
  snprintf(out->type, sizeof out->type, "%s", type ? type : "");
  out->body = malloc(len ? len : 1);
  out->len = out->body ? len : 0;
  if (out->body != NULL && len > 0)
    memcpy(out->body, body, len);
}

static void reply_json(gw_reply *out, int status, const char *json) {
  reply_set(out, status, "application/json", json, strlen(json));
}

/* ---- outgoing calls ---------------------------------------------------- */

typedef struct buffer {
  char *data;
  size_t len;
} buffer;

static size_t on_body(char *p, size_t size, size_t n, void *user) {
  buffer *b = user;
  size_t len = size * n;
  if (b == NULL)
    return len; /* body not wanted */
  if (b->len + len > BODY_MAX)
    return 0; /* too large to relay: libcurl fails the transfer */
  char *grown = realloc(b->data, b->len + len + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + b->len, p, len);
  b->data = grown;
  b->len += len;
  b->data[b->len] = '\0';
  return len;
}

/* A handle for one outgoing call: bounded in time, http and https only. */
static CURL *call_handle(const char *url, buffer *body) {
  CURL *c = curl_easy_init();
  if (c == NULL)
    return NULL;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CALL_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "trail-gateway/" TRAIL_VERSION_STRING);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  return c;
}

/*
 * GET /api/orders/{id}: the same path on the orders service. The request's
 * context is current, so trail_curl_perform() finds it: the call carries the
 * trace, and its line carries the request's ids.
 */
static void route_order(gw_request *q, gw_reply *out) {
  if (downstream[0] == '\0') {
    reply_json(out, 502, "{\"error\":\"no downstream configured\"}");
    return;
  }
  char url[sizeof downstream + TRAIL_HTTP_PATH_MAX];
  snprintf(url, sizeof url, "%s%s", downstream, q->uri);
  buffer body = {NULL, 0};
  CURL *c = call_handle(url, &body);
  if (c == NULL) {
    reply_json(out, 500, "{\"error\":\"out of memory\"}");
    return;
  }
  CURLcode rc = trail_curl_perform(c, NULL, NULL);
  long status = 0;
  const char *type = NULL;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  if (rc != CURLE_OK || status < 100 || status > 599) {
    reply_json(out, 502, "{\"error\":\"downstream unavailable\"}");
  } else {
    /* The type goes back as it came, when it fits and is one clean line. */
    int plain = type != NULL && strlen(type) < sizeof out->type &&
                strcspn(type, "\r\n") == strlen(type);
    reply_set(out, (int)status, plain ? type : NULL, body.data ? body.data : "",
              body.len);
  }
  free(body.data);
  curl_easy_cleanup(c);
}

/*
 * POST /forward: the calls, in order, each a POST of its "arguments" with
 * the propagated headers. The whole array is checked before the first call,
 * so that a bad request makes no call at all.
 */
static void route_forward(gw_request *q, gw_reply *out) {
  json_error_t err;
  json_t *doc = json_loadb(q->body ? q->body : "", q->body_len, 0, &err);
  size_t n = json_is_array(doc) ? json_array_size(doc) : 0;
  int ok = json_is_array(doc) && n <= FORWARD_MAX;
  for (size_t i = 0; ok && i < n; i++) {
    json_t *el = json_array_get(doc, i);
    ok = json_is_object(el) && json_is_string(json_object_get(el, "url"));
  }
  if (!ok) {
    trail_warn(gw_log, "invalid forward body",
               TRAIL_STR("error",
                         doc ? "not an array of {url, arguments}" : err.text));
    json_decref(doc);
    reply_json(out, 400,
               "{\"error\":\"body must be a JSON array of "
               "{\\\"url\\\":...,\\\"arguments\\\":...}, at most 64\"}");
    return;
  }

  json_t *calls = json_array();
  struct curl_slist *headers =
      curl_slist_append(NULL, "Content-Type: application/json");
  for (size_t i = 0; i < n; i++) {
    json_t *el = json_array_get(doc, i);
    const char *url = json_string_value(json_object_get(el, "url"));
    json_t *args = json_object_get(el, "arguments");
    char *payload = args && !json_is_null(args)
                        ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY)
                        : NULL;
    CURL *c = call_handle(url, NULL);
    json_t *result = json_pack("{s:s}", "url", url);
    if (c != NULL) {
      const char *sent = payload ? payload : "[]";
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, sent);
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(sent));
      CURLcode rc = trail_curl_perform(c, NULL, headers);
      long status = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
      if (rc == CURLE_OK)
        json_object_set_new(result, "status", json_integer(status));
      else
        json_object_set_new(result, "error",
                            json_string(curl_easy_strerror(rc)));
      curl_easy_cleanup(c);
    } else {
      json_object_set_new(result, "error", json_string("out of memory"));
    }
    json_array_append_new(calls, result);
    free(payload);
  }
  curl_slist_free_all(headers);
  json_decref(doc);

  json_t *reply = json_pack("{s:o}", "calls", calls);
  char *text = json_dumps(reply, JSON_COMPACT);
  json_decref(reply);
  if (text == NULL) {
    reply_json(out, 500, "{\"error\":\"out of memory\"}");
    return;
  }
  reply_set(out, 200, "application/json", text, strlen(text));
  free(text);
}

/* The routes. Runs with the request's context entered. */
static void route(gw_request *q, const char *method, gw_reply *out) {
  const char *uri = q->uri;
  size_t plen = strcspn(uri, "?#");
  if (q->too_big) {
    reply_json(out, 413, "{\"error\":\"body too large\"}");
  } else if (strcmp(method, "GET") == 0 && plen == 8 &&
             strncmp(uri, "/healthz", 8) == 0) {
    reply_set(out, 200, "text/plain", "ok\n", 3);
  } else if (strcmp(method, "GET") == 0 && plen == 8 &&
             strncmp(uri, "/metrics", 8) == 0) {
    char text[4096];
    size_t n = trail_metrics_render(text, sizeof text);
    reply_set(out, 200, "text/plain; version=0.0.4", text,
              n < sizeof text ? n : sizeof text - 1);
  } else if (strcmp(method, "GET") == 0 && plen > 12 &&
             strncmp(uri, "/api/orders/", 12) == 0) {
    route_order(q, out);
  } else if (strcmp(method, "POST") == 0 && plen == 8 &&
             strncmp(uri, "/forward", 8) == 0) {
    route_forward(q, out);
  } else {
    trail_info(gw_log, "no such route", TRAIL_STR("method", method));
    reply_json(out, 404, "{\"error\":\"no such route\"}");
  }
}

/* ---- libmicrohttpd glue, through libtrail-mhd --------------------------- */

/*
 * MHD's start hook, chained by the adapter (trail_mhd_set_uri_log): the URI
 * as received (the access handler only sees the path); what it returns is
 * the request's con_cls, freed in on_completed().
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)cls;
  (void)conn;
  gw_request *q = calloc(1, sizeof *q);
  if (q != NULL && (q->uri = strdup(uri ? uri : "/")) == NULL) {
    free(q);
    q = NULL;
  }
  return q;
}

/* The reply, through the adapter: X-Request-ID and the access line's
 * status and bytes come with it. */
static mhd_result send_reply(struct MHD_Connection *conn, gw_reply *r) {
  return trail_mhd_queue_buffer(conn, (unsigned int)r->status,
                                r->body ? r->body : "", r->len,
                                r->type[0] ? r->type : NULL);
}

/*
 * The application's access handler, called by the adapter with the
 * request's context entered: once the headers are in, then once per piece
 * of body, then with no body left (the request is handled). A body larger
 * than BODY_MAX is read and dropped, then answered with 413.
 */
static mhd_result on_request(void *cls, struct MHD_Connection *conn,
                             const char *url, const char *method,
                             const char *version, const char *upload_data,
                             size_t *upload_data_size, void **con_cls) {
  (void)cls;
  (void)url;
  (void)version;
  gw_request *q = *con_cls;
  if (q == NULL)
    return MHD_NO; /* out of memory in on_uri: MHD closes the connection */
  if (!q->started) {
    q->started = 1;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (q->too_big || q->body_len + n > BODY_MAX) {
      q->too_big = 1;
      return MHD_YES;
    }
    char *grown = realloc(q->body, q->body_len + n + 1);
    if (grown == NULL) {
      q->too_big = 1;
      return MHD_YES;
    }
    memcpy(grown + q->body_len, upload_data, n);
    q->body = grown;
    q->body_len += n;
    q->body[q->body_len] = '\0';
    return MHD_YES;
  }

  gw_reply r;
  memset(&r, 0, sizeof r);
  route(q, method, &r);
  mhd_result ok = send_reply(conn, &r);
  free(r.body);
  return ok;
}

/* The request is over: the adapter writes the access line after this. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  gw_request *q = *con_cls;
  *con_cls = NULL;
  if (q == NULL)
    return;
  free(q->body);
  free(q->uri);
  free(q);
}

static const char USAGE[] =
    "usage: gateway [--port N] [--downstream URL]\n"
    "\n"
    "A service in front of the orders service: GET /api/orders/{id} is\n"
    "relayed to the downstream with libcurl, carrying the trace; POST\n"
    "/forward makes the calls its JSON body lists; GET /healthz and\n"
    "GET /metrics answer themselves. It writes trail's JSON lines on\n"
    "stdout; SIGINT or SIGTERM stops it.\n"
    "\n"
    "  --port N           listen on port N (default 8080; 0: the kernel\n"
    "                     chooses, and the \"listening\" line says which)\n"
    "  --downstream URL   the orders service, e.g. http://127.0.0.1:8080\n"
    "                     (none: GET /api/orders/{id} answers 502)\n"
    "  -h, --help         print this help and exit\n";

/* The command line (cli.h): the port, and the downstream into its global. */
static int parse_args(int argc, char **argv) {
  int port = 8080;
  const char *ds;
  cli cl;
  cli_init(&cl, "gateway", USAGE, argc, argv);
  while (cli_next(&cl)) {
    if (cli_port(&cl, &port))
      continue;
    if (!cli_value(&cl, "--downstream", &ds))
      cli_unknown(&cl);
    size_t n = strlen(ds);
    while (n > 0 && ds[n - 1] == '/')
      n--;
    if (strncmp(ds, "http://", 7) != 0 && strncmp(ds, "https://", 8) != 0)
      cli_fail(&cl, "--downstream: '%s' is not an http(s) URL", ds);
    if (n >= sizeof downstream)
      cli_fail(&cl, "--downstream: the URL is longer than %zu bytes",
               sizeof downstream - 1);
    memcpy(downstream, ds, n);
    downstream[n] = '\0';
  }
  return port;
}

int main(int argc, char **argv) {
  int port = parse_args(argc, argv);
  trail_init("gateway");
  gw_log = trail_logger_get("gateway");
  orders_http_config(&http_cfg);

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    trail_error(gw_log, "libcurl initialisation failed");
    trail_shutdown();
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  /* SIGINT and SIGTERM are taken by sigwait() below; blocked here, before
   * MHD starts its threads, so that none of them gets the signal. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  trail_mhd_init(&gw_mhd, &http_cfg, on_request, NULL);
  trail_mhd_set_uri_log(&gw_mhd, on_uri, NULL);
  trail_mhd_set_completed(&gw_mhd, on_completed, NULL);
  struct MHD_Daemon *d =
      MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                           MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
                       (uint16_t)port, NULL, NULL, trail_mhd_access_handler,
                       &gw_mhd, MHD_OPTION_EXTERNAL_LOGGER, trail_mhd_error_log,
                       NULL, TRAIL_MHD_OPTIONS(&gw_mhd),
                       MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  if (d == NULL) {
    trail_error(gw_log, "cannot listen", TRAIL_INT("port", port));
    curl_global_cleanup();
    trail_shutdown();
    return 1;
  }
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (di != NULL &&
      getsockname(di->listen_fd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET)
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  trail_info(gw_log, "listening", TRAIL_INT("port", port),
             TRAIL_STR("downstream", downstream));

  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  trail_info(gw_log, "stopping",
             TRAIL_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
  MHD_stop_daemon(d); /* waits for the requests in flight */
  trail_info(gw_log, "stopped");
  curl_global_cleanup();
  trail_shutdown();
  return 0;
}
