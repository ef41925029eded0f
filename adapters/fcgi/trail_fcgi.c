/*
 * The FastCGI adapter (include/trail/fcgi.h). A FastCGI request arrives
 * whole before the application sees it: its params (the CGI variables and,
 * as HTTP_* params, the client's request headers, which the web server
 * passes on) are all in FCGX_Request.envp once FCGX_Accept_r() returns. So
 * the middleware request is begun, fed and decided in one call; the
 * response goes out as CGI output (a "Status:" header, the others, a blank
 * line, the body) through FCGX_PutStr(), which is where the status, the
 * byte count and a departed client are known.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <trail/fcgi.h>
#include <trail/http.h>

enum { IDLE = 0, BEGUN = 1, HEAD_SENT = 2 };

/* Bytes of a rebuilt path (SCRIPT_NAME + PATH_INFO + query); the core keeps
 * TRAIL_HTTP_PATH_MAX of it. */
#define PATH_BUF (TRAIL_HTTP_PATH_MAX + 2)
/* Bytes of a header name made from an HTTP_* param. */
#define NAME_BUF 256

/*
 * The trail_fcgi structs begun and not ended on this thread, newest first,
 * for trail_fcgi_request(): libfcgi has no slot of its own in FCGX_Request
 * to find them by.
 */
static _Thread_local trail_fcgi *current;

TRAIL_API int trail_fcgi_init(trail_fcgi *tf, const trail_http_config *cfg,
                              int listen_fd) {
  if (tf == NULL)
    return -1;
  memset(tf, 0, sizeof *tf);
  tf->cfg_ = cfg;
  return FCGX_InitRequest(&tf->request, listen_fd, 0);
}

/* Sets *out to the value of "NAME=value" when the entry's name is name
 * (n bytes) and *out is still unset: the first entry of a name counts. */
static void take(const char *entry, const char *name, size_t n,
                 const char **out) {
  if (*out == NULL && strncmp(entry, name, n) == 0 && entry[n] == '=')
    *out = entry + n + 1;
}
#define TAKE(entry, literal, out) take(entry, literal, sizeof(literal) - 1, out)

/* The value of the param name, else NULL. */
static const char *param(char **envp, const char *name) {
  const char *v = NULL;
  size_t n = strlen(name);
  for (char **p = envp; p != NULL && *p != NULL && v == NULL; p++)
    take(*p, name, n, &v);
  return v;
}

/* What the request's begin needs of its params, found in one walk. */
typedef struct begin_params {
  const char *method, *addr, *uri;
} begin_params;

/* nginx sends twenty params and more: each entry's first letter rules
 * out most names without a comparison. */
static void scan_params(char **envp, begin_params *bp) {
  memset(bp, 0, sizeof *bp);
  for (char **p = envp; p != NULL && *p != NULL; p++) {
    if ((*p)[0] != 'R')
      continue;
    TAKE(*p, "REQUEST_METHOD", &bp->method);
    TAKE(*p, "REQUEST_URI", &bp->uri);
    TAKE(*p, "REMOTE_ADDR", &bp->addr);
  }
}

/*
 * The request target. nginx's fastcgi_params sends REQUEST_URI, the target
 * as the client sent it (query included; the core cuts the query and
 * reduces an absolute form). Without it, the CGI pieces are joined.
 */
static const char *request_path(char **envp, const char *uri, char *buf,
                                size_t size) {
  if (uri != NULL && uri[0] != '\0')
    return uri;
  const char *script = param(envp, "SCRIPT_NAME");
  const char *info = param(envp, "PATH_INFO");
  const char *query = param(envp, "QUERY_STRING");
  int has_query = query != NULL && query[0] != '\0';
  int n =
      snprintf(buf, size, "%s%s%s%s", script ? script : "", info ? info : "",
               has_query ? "?" : "", has_query ? query : "");
  if (n <= 0)
    return "/";
  return buf;
}

/*
 * An HTTP_* param as the header it came from: HTTP_X_REQUEST_ID becomes
 * X-REQUEST-ID (the core matches names case-insensitively). The web server
 * made the name (uppercase, '-' as '_'), so the mapping back is exact for
 * every header trail reads.
 */
static void feed_param(trail_http_request *r, const char *entry) {
  if (strncmp(entry, "HTTP_", 5) != 0)
    return;
  const char *eq = strchr(entry + 5, '=');
  if (eq == NULL)
    return;
  char name[NAME_BUF];
  size_t n = (size_t)(eq - entry) - 5;
  if (n == 0 || n >= sizeof name)
    return;
  memcpy(name, entry + 5, n);
  for (size_t i = 0; i < n; i++)
    if (name[i] == '_')
      name[i] = '-';
  trail_http_header(r, name, n, eq + 1, TRAIL_NTS);
}

static void unlink_current(trail_fcgi *tf);

/*
 * A request begun and never ended when the next one is begun: the
 * application accepted again without trail_fcgi_end(). FCGX_Accept_r() has
 * finished it already and its streams are gone, so nothing more is
 * written: its context is left and its access line says what was sent (500
 * when nothing was).
 */
static void end_abandoned(trail_fcgi *tf) {
  trail_ctx_leave(tf->prev_);
  tf->prev_ = NULL;
  unlink_current(tf);
  tf->state_ = IDLE;
  trail_http_end(&tf->http_, tf->status_, 0); /* 0: none, the core says 500 */
}

TRAIL_API void trail_fcgi_begin(trail_fcgi *tf) {
  if (tf == NULL)
    return;
  if (tf->state_ != IDLE)
    end_abandoned(tf);
  char **envp = tf->request.envp;
  char path[PATH_BUF];
  begin_params bp;
  scan_params(envp, &bp);
  trail_http_begin(&tf->http_, tf->cfg_, bp.method ? bp.method : "",
                   request_path(envp, bp.uri, path, sizeof path), TRAIL_NTS,
                   bp.addr != NULL && bp.addr[0] != '\0' ? bp.addr : NULL);
  for (char **p = envp; p != NULL && *p != NULL; p++)
    feed_param(&tf->http_, *p);
  trail_http_headers_done(&tf->http_);
  tf->gone_ = 0;
  tf->status_ = 0;
  tf->state_ = BEGUN;
  tf->outer_ = current;
  current = tf;
  tf->prev_ = trail_ctx_enter(trail_http_ctx(&tf->http_));
}

/* Writes n bytes to the web server; a failure means the client is gone. */
static int put(trail_fcgi *tf, const char *p, size_t n) {
  if (tf->gone_)
    return -1;
  if (tf->request.out == NULL) { /* begun without an accepted request */
    tf->gone_ = 1;
    trail_http_client_gone(&tf->http_);
    return -1;
  }
  while (n > 0) {
    int chunk = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
    if (FCGX_PutStr(p, chunk, tf->request.out) < 0) {
      tf->gone_ = 1;
      trail_http_client_gone(&tf->http_);
      return -1;
    }
    p += chunk;
    n -= (size_t)chunk;
  }
  return 0;
}

static int put_str(trail_fcgi *tf, const char *s) {
  return put(tf, s, strlen(s));
}

static const char *reason(int status) {
  static const struct {
    int code;
    const char *text;
  } phrases[] = {
      {100, "Continue"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {413, "Content Too Large"},
      {415, "Unsupported Media Type"},
      {422, "Unprocessable Content"},
      {429, "Too Many Requests"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
    if (phrases[i].code == status)
      return phrases[i].text;
  return "";
}

/*
 * Whether the application's header line may go out: "Name: value", no CR
 * or LF (which would start another header, or the body), and neither of
 * the two the adapter owns.
 */
static int header_ok(const char *h) {
  if (h[0] == '\0' || strpbrk(h, "\r\n") != NULL || strchr(h, ':') == NULL)
    return 0;
  if (strncasecmp(h, "X-Request-ID:", 13) == 0 ||
      strncasecmp(h, "Status:", 7) == 0)
    return 0;
  return 1;
}

/* The head after the Status line; any failed write ends it. */
static int put_headers(trail_fcgi *tf, const char *const *headers) {
  const char *id = trail_http_request_id(&tf->http_);
  if (id[0] != '\0' && (put_str(tf, "X-Request-ID: ") != 0 ||
                        put_str(tf, id) != 0 || put_str(tf, "\r\n") != 0))
    return -1;
  for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
    if (!header_ok(headers[i]))
      continue;
    if (put_str(tf, headers[i]) != 0 || put_str(tf, "\r\n") != 0)
      return -1;
  }
  return put_str(tf, "\r\n");
}

TRAIL_API int trail_fcgi_head(trail_fcgi *tf, int status,
                              const char *const *headers) {
  if (tf == NULL || tf->state_ != BEGUN || status < 100 || status > 999)
    return -1;
  tf->state_ = HEAD_SENT;
  tf->status_ = status;
  trail_http_response(&tf->http_, status);
  char line[64];
  const char *phrase = reason(status);
  snprintf(line, sizeof line, "Status: %d%s%s\r\n", status,
           phrase[0] ? " " : "", phrase);
  if (put_str(tf, line) != 0)
    return -1;
  return put_headers(tf, headers);
}

TRAIL_API int trail_fcgi_write(trail_fcgi *tf, const void *body, size_t len) {
  if (tf == NULL || tf->state_ != HEAD_SENT)
    return -1;
  if (trail_http_no_body(&tf->http_, tf->status_))
    return 0;
  if (len > 0 && body == NULL)
    return -1;
  if (put(tf, body, len) != 0)
    return -1;
  trail_http_body(&tf->http_, (uint64_t)len);
  return 0;
}

TRAIL_API int trail_fcgi_respond(trail_fcgi *tf, int status,
                                 const char *const *headers, const void *body,
                                 size_t len) {
  enum { MAX_HEADERS = 64 };
  const char *all[MAX_HEADERS + 2];
  char length[48];
  size_t n = 0;
  for (; headers != NULL && headers[n] != NULL && n < MAX_HEADERS; n++)
    all[n] = headers[n];
  /* RFC 9110 section 8.6: no Content-Length on a 1xx or a 204; a 304's
   * would describe the representation, which the handler did not send. */
  if (status >= 200 && status != 204 && status != 304) {
    snprintf(length, sizeof length, "Content-Length: %zu", len);
    all[n++] = length;
  }
  all[n] = NULL;
  if (trail_fcgi_head(tf, status, all) != 0)
    return -1;
  return trail_fcgi_write(tf, body, len);
}

/* Takes tf off the thread's list of begun requests, wherever it is. */
static void unlink_current(trail_fcgi *tf) {
  for (trail_fcgi **at = &current; *at != NULL; at = &(*at)->outer_)
    if (*at == tf) {
      *at = tf->outer_;
      break;
    }
  tf->outer_ = NULL;
}

/*
 * Closes the request's output streams as FCGX_Finish_r() would, stderr
 * first, so that stdout's close carries the end of the request: what is
 * still buffered, the stream's end and FCGI_END_REQUEST go out in one
 * write, as they do without trail (an FCGX_FFlush() first would make it
 * two). A failed write is a departed client, like a failed FCGX_PutStr().
 * FCGX_Finish_r() then finds both closed and writes nothing more.
 */
static void close_output(trail_fcgi *tf) {
  if (tf->gone_ || tf->request.out == NULL)
    return;
  int failed = FCGX_FClose(tf->request.err) != 0;
  failed |= FCGX_FClose(tf->request.out) != 0;
  if (failed || FCGX_GetError(tf->request.out) != 0) {
    tf->gone_ = 1;
    trail_http_client_gone(&tf->http_);
  }
}

/*
 * The request's end, in the order the web server and the log need: the
 * output is closed (above), the context is left before libfcgi forgets the
 * request, FCGX_Finish_r() tells the web server the response is complete,
 * and the access line comes last, written with the request's context
 * explicitly.
 */
TRAIL_API void trail_fcgi_end(trail_fcgi *tf) {
  if (tf == NULL || tf->state_ == IDLE)
    return;
  if (tf->state_ == BEGUN)
    trail_fcgi_head(tf, 500, NULL);
  close_output(tf);
  trail_ctx_leave(tf->prev_);
  tf->prev_ = NULL;
  unlink_current(tf);
  FCGX_Finish_r(&tf->request);
  tf->state_ = IDLE;
  trail_http_end(&tf->http_, tf->status_, 0); /* 0: none, the core says 500 */
}

TRAIL_API trail_http_request *trail_fcgi_request(FCGX_Request *req) {
  for (trail_fcgi *t = current; t != NULL && req != NULL; t = t->outer_)
    if (&t->request == req)
      return &t->http_;
  return NULL;
}
