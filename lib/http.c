/*
 * The HTTP middleware core: a request's context from its headers, and its
 * access line, independent of any server library (include/trail/http.h).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"
#include "trail/http.h"

/*
 * The longest tracestate list, its headers joined, that is validated: twice
 * the 512 characters W3C Trace Context, section 3.3.1.5 asks to propagate.
 * Longer is dropped whole. TS_NUL and TS_LONG: why a list was marked bad.
 */
#define TS_JOINED_MAX 1024
#define TS_TEXT(n) #n
#define TS_BYTES(n) TS_TEXT(n) " bytes"
_Static_assert(TS_JOINED_MAX == 2 * TRAIL_TRACESTATE_MAX,
               "the joined list holds twice what is propagated");
enum { TS_NUL = 1, TS_LONG = 2 };

/*
 * The request behind the public trail_http_request, which is only storage
 * of TRAIL_HTTP_REQUEST_SIZE bytes aligned for any scalar: this layout may
 * change freely as long as it fits (the assertions below).
 */
typedef struct http_req {
  trail_ctx ctx_;
  /* From cfg_ to method_: the scalars, cleared together by req_reset(). */
  const trail_http_config *cfg_;
  int64_t start_ns_;
  uint64_t bytes_; /* body bytes reported through trail_http_body() */
  int status_;     /* status reported through trail_http_response(); 0 */
  uint16_t rid_count_, tp_count_, user_count_;
  uint8_t rid_bad_, tp_bad_, ts_bad_, user_bad_, path_cut_, agent_cut_;
  uint8_t state_; /* 0 new, 1 begun, 2 headers done, 3 ended */
  uint8_t skip_;
  uint8_t rid_replaced_;
  uint8_t tp_status_;   /* 0 missing, 1 valid, 2 invalid, 3 repeated */
  uint8_t head_;        /* a HEAD request: no body goes out */
  uint8_t body_known_;  /* trail_http_body() was called */
  uint8_t client_gone_; /* trail_http_client_gone() was called */
  /* The strings, always NUL-terminated and never read past their NUL. */
  char method_[TRAIL_HTTP_METHOD_MAX + 1];
  char path_[TRAIL_HTTP_PATH_MAX + 1];
  char agent_[TRAIL_HTTP_AGENT_MAX + 1];
  char addr_[TRAIL_HTTP_ADDR_MAX + 1];
  char rid_in_[TRAIL_REQUEST_ID_MAX + 1]; /* the one X-Request-ID seen */
  char user_in_[TRAIL_USER_ID_MAX + 1];
  char tp_in_[64];                /* the one traceparent seen */
  char ts_in_[TS_JOINED_MAX + 1]; /* tracestate values, joined */
} http_req;

_Static_assert(sizeof(http_req) <= TRAIL_HTTP_REQUEST_SIZE,
               "the request state outgrew TRAIL_HTTP_REQUEST_SIZE");
_Static_assert(alignof(http_req) <= alignof(trail_http_request),
               "the request state needs more than trail_http_request's "
               "alignment");

/* The private view of the caller's storage (NULL stays NULL). */
static http_req *req_of(trail_http_request *r) { return (http_req *)(void *)r; }
static const http_req *creq_of(const trail_http_request *r) {
  return (const http_req *)(const void *)r;
}

enum { ST_NEW = 0, ST_BEGUN = 1, ST_DECIDED = 2, ST_ENDED = 3 };
enum { TP_MISSING = 0, TP_VALID = 1, TP_INVALID = 2, TP_REPEATED = 3 };

TRAIL_API void trail_http_config_init(trail_http_config *cfg) {
  if (cfg != NULL)
    memset(cfg, 0, sizeof *cfg);
}

static const trail_http_config default_config;

/* Copies at most cap bytes and a NUL; returns 1 when src was longer. */
static int copy_cut(char *dst, size_t cap, const char *src, size_t n) {
  int cut = n > cap;
  if (cut)
    n = cap;
  if (n > 0)
    memcpy(dst, src, n);
  dst[n] = '\0';
  return cut;
}

/*
 * The origin form of an absolute-form target (RFC 9112 section 3.2.2):
 * "scheme://authority" is dropped, the path (and query) stays. *slash is
 * set when the target has no path of its own ("http://h" or "http://h?q"),
 * which then is "/"; so is a target that is only a query ("?q": an empty
 * path, which section 3.2.1 has the client send as "/"). An origin-form
 * path, "*" (asterisk-form, section 3.2.4) and anything without a scheme
 * are left as they are.
 */
static const char *origin_form(const char *path, size_t *len, int *slash) {
  size_t n = *len, i = 0;
  *slash = n > 0 && path[0] == '?';
  if (n == 0 || path[0] == '/' || path[0] == '*' ||
      !isalpha((unsigned char)path[0]))
    return path;
  while (i < n && (isalnum((unsigned char)path[i]) || path[i] == '+' ||
                   path[i] == '-' || path[i] == '.'))
    i++;
  if (n - i < 3 || memcmp(path + i, "://", 3) != 0)
    return path;
  i += 3;
  while (i < n && path[i] != '/' && path[i] != '?' && path[i] != '#')
    i++;
  *slash = i == n || path[i] != '/';
  *len = n - i;
  return path + i;
}

/* The path as kept for the access line and the skip list: origin form,
 * query cut unless configured, cut to TRAIL_HTTP_PATH_MAX. */
static void set_path(http_req *r, const char *path, size_t path_len) {
  int slash;
  if (path == NULL)
    path = "";
  if (path_len == TRAIL_NTS)
    path_len = strlen(path);
  path = origin_form(path, &path_len, &slash);
  if (!r->cfg_->log_query) {
    const char *q = memchr(path, '?', path_len);
    if (q != NULL)
      path_len = (size_t)(q - path);
  }
  if (slash)
    r->path_[0] = '/';
  r->path_cut_ = (uint8_t)copy_cut(
      r->path_ + slash, TRAIL_HTTP_PATH_MAX - (size_t)slash, path, path_len);
}

static void set_method(http_req *r, const char *method) {
  if (method == NULL)
    method = "";
  copy_cut(r->method_, TRAIL_HTTP_METHOD_MAX, method, strlen(method));
  r->head_ = strcmp(r->method_, "HEAD") == 0;
}

/*
 * A request as new, without clearing its 6 KiB: the scalars are zeroed, each
 * string made empty, and the context empty until trail_http_headers_done()
 * makes it (a memset of the whole request was a tenth of what trail added
 * to a request on libmicrohttpd).
 */
static void req_reset(http_req *r) {
  memset(&r->cfg_, 0, offsetof(http_req, method_) - offsetof(http_req, cfg_));
  r->method_[0] = r->path_[0] = r->agent_[0] = r->addr_[0] = '\0';
  r->rid_in_[0] = r->user_in_[0] = r->tp_in_[0] = r->ts_in_[0] = '\0';
  trail__ctx_empty(&r->ctx_);
}

/*
 * Starts a request. Nothing here can fail: what does not fit the fixed
 * storage is cut (and the access line says so), NULLs become "".
 */
TRAIL_API void trail_http_begin(trail_http_request *hr,
                                const trail_http_config *cfg,
                                const char *method, const char *path,
                                size_t path_len, const char *remote_addr) {
  http_req *r = req_of(hr);
  if (r == NULL)
    return;
  trail__crash_stack_thread(); /* before the handler runs on this thread */
  req_reset(r);
  r->cfg_ = cfg ? cfg : &default_config;
  r->start_ns_ = trail_now_ns();
  set_method(r, method);
  set_path(r, path, path_len);
  if (remote_addr != NULL)
    copy_cut(r->addr_, TRAIL_HTTP_ADDR_MAX, remote_addr, strlen(remote_addr));
  r->state_ = ST_BEGUN;
}

static int name_is(const char *name, size_t n, const char *want) {
  return want != NULL && strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static void trim_ows(const char **v, size_t *n) {
  while (*n > 0 && (**v == ' ' || **v == '\t')) {
    (*v)++;
    (*n)--;
  }
  while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
    (*n)--;
}

/*
 * The first traceparent is kept, with whether it held a NUL; a second one
 * is only counted (it makes the pair invalid). 63 bytes decide: version 00
 * is exactly 55 long (a longer copy stays invalid), a higher version is
 * read by its first 55 and the character after them.
 */
static void header_traceparent(http_req *r, const char *value, size_t value_len,
                               int has_nul) {
  if (++r->tp_count_ == 1) {
    copy_cut(r->tp_in_, sizeof r->tp_in_ - 1, value, value_len);
    r->tp_bad_ = (uint8_t)has_nul;
  }
}

/*
 * tracestate may come in several headers, which are one list (W3C Trace
 * Context, section 3.3.1.1, combining them as RFC 9110 section 5.3 says):
 * each is appended after a comma. A list too long to validate whole (over
 * twice the 512 characters section 3.3.1.5 asks to propagate, TS_JOINED_MAX
 * bytes joined), or with a NUL, is marked bad and not propagated.
 */
static void header_tracestate(http_req *r, const char *value, size_t value_len,
                              int has_nul) {
  size_t have = strlen(r->ts_in_);
  if (has_nul)
    r->ts_bad_ |= TS_NUL;
  if (value_len == 0 || has_nul)
    return;
  /* the comma joins it to what came before, if anything did */
  if (have + (have > 0) + value_len > TS_JOINED_MAX) {
    r->ts_bad_ |= TS_LONG;
    return;
  }
  if (have > 0)
    r->ts_in_[have++] = ',';
  memcpy(r->ts_in_ + have, value, value_len);
  r->ts_in_[have + value_len] = '\0';
}

/* The first X-Request-Id is kept when it is a valid request ID. */
static void header_request_id(http_req *r, const char *value,
                              size_t value_len) {
  if (++r->rid_count_ == 1) {
    if (trail_request_id_check(value, value_len) == 0)
      copy_cut(r->rid_in_, TRAIL_REQUEST_ID_MAX, value, value_len);
    else
      r->rid_bad_ = 1;
  }
}

/* The first user-ID header is kept when it fits and holds no NUL. */
static void header_user_id(http_req *r, const char *value, size_t value_len,
                           int has_nul) {
  if (++r->user_count_ == 1) {
    if (value_len >= 1 && value_len <= TRAIL_USER_ID_MAX && !has_nul)
      copy_cut(r->user_in_, TRAIL_USER_ID_MAX, value, value_len);
    else
      r->user_bad_ = 1;
  }
}

/*
 * Records what the headers trail uses say. Every occurrence is counted: a
 * header sent twice is ambiguous, and a repeated traceparent is invalid:
 * its value is not a list (W3C Trace Context, section 3.2.2), so the two
 * joined as RFC 9110 section 5.3 says are no valid value. Names match in
 * any case (sections 3.2.1 and 3.3.1). Values are only looked at, never
 * trusted: anything kept is validated in trail_http_headers_done() and escaped
 * when written.
 */
TRAIL_API void trail_http_header(trail_http_request *hr, const char *name,
                                 size_t name_len, const char *value,
                                 size_t value_len) {
  http_req *r = req_of(hr);
  if (r == NULL || name == NULL || r->state_ != ST_BEGUN)
    return;
  if (value == NULL)
    value = "";
  if (name_len == TRAIL_NTS)
    name_len = strlen(name);
  if (value_len == TRAIL_NTS)
    value_len = strlen(value);
  trim_ows(&value, &value_len);
  /* A NUL inside a value is never valid; it would also end a C string. */
  int has_nul = memchr(value, '\0', value_len) != NULL;

  if (name_is(name, name_len, "traceparent"))
    header_traceparent(r, value, value_len, has_nul);
  else if (name_is(name, name_len, "tracestate"))
    header_tracestate(r, value, value_len, has_nul);
  else if (name_is(name, name_len, "x-request-id"))
    header_request_id(r, value, value_len);
  else if (name_is(name, name_len, "user-agent"))
    r->agent_cut_ =
        (uint8_t)copy_cut(r->agent_, TRAIL_HTTP_AGENT_MAX, value, value_len);
  else if (name_is(name, name_len, r->cfg_->user_id_header))
    header_user_id(r, value, value_len, has_nul);
}

static trail_logger *http_logger(const http_req *r) {
  return r->cfg_->logger ? r->cfg_->logger : trail_logger_get("http");
}

static void reject(http_req *r, const char *header, const char *reason) {
  trail_field f[] = {TRAIL_STR("header", header), TRAIL_STR("reason", reason)};
  trail_logger *lg = http_logger(r);
  if (trail_enabled(lg, TRAIL_LEVEL_DEBUG))
    trail_ctx_log(&r->ctx_, lg, TRAIL_LEVEL_DEBUG, "request header rejected", f,
                  2);
}

/*
 * The request's ids from what the headers said, into r's fresh context.
 * Returns 1 when a tracestate came and was dropped.
 */
static int decide_ids(http_req *r) {
  if (r->rid_count_ == 1 && !r->rid_bad_)
    trail_ctx_set_request_id(&r->ctx_, r->rid_in_);
  else if (r->rid_count_ > 0)
    r->rid_replaced_ = 1;

  if (r->tp_count_ > 1)
    r->tp_status_ = TP_REPEATED;
  else if (r->tp_count_ == 1)
    r->tp_status_ = !r->tp_bad_ && trail_ctx_set_traceparent(
                                       &r->ctx_, r->tp_in_, TRAIL_NTS) == 0
                        ? TP_VALID
                        : TP_INVALID;

  int ts_dropped = 0;
  if (r->ts_in_[0] || r->ts_bad_) {
    /* W3C Trace Context, section 3.3: no valid traceparent, no tracestate */
    if (r->tp_status_ != TP_VALID || r->ts_bad_ ||
        trail_ctx_set_tracestate(&r->ctx_, r->ts_in_, TRAIL_NTS) != 0)
      ts_dropped = 1;
  }

  if (r->user_count_ == 1 && !r->user_bad_)
    trail_ctx_set_user_id(&r->ctx_, r->user_in_);
  return ts_dropped;
}

/* A debug line for each header decide_ids() did not take, with why. */
static void report_rejected(http_req *r, int ts_dropped) {
  if (r->rid_replaced_)
    reject(r, "X-Request-ID",
           r->rid_count_ > 1 ? "sent more than once"
                             : "not 1 to 128 characters of [A-Za-z0-9._:-]");
  if (r->tp_status_ == TP_REPEATED)
    reject(r, "traceparent", "sent more than once");
  else if (r->tp_status_ == TP_INVALID)
    reject(r, "traceparent", "not valid per W3C Trace Context");
  if (ts_dropped)
    reject(r, "tracestate",
           r->tp_status_ != TP_VALID ? "no valid traceparent"
           : r->ts_bad_ & TS_NUL     ? "holds a NUL byte"
           : r->ts_bad_ & TS_LONG    ? "longer than " TS_BYTES(TS_JOINED_MAX)
                                     : "not valid per W3C Trace Context");
  if (r->user_count_ > 1 || r->user_bad_)
    reject(r, r->cfg_->user_id_header,
           r->user_bad_ ? "not 1 to 128 bytes" : "sent more than once");
}

/*
 * Decides the request's ids, once, from what the headers said. A new
 * request id and a new trace are made first, so that whatever is rejected
 * leaves a complete, valid context behind.
 */
/* The request's buffering, as configured or as TRAIL_BUFFER says. */
static void buffer_start(http_req *r) {
  trail_level level = r->cfg_->buffer_level;
  size_t bytes = r->cfg_->buffer_bytes;
  if (bytes == 0 && !trail__buffer_defaults(&level, &bytes))
    return;
  trail_ctx_buffer(&r->ctx_, level, bytes);
}

TRAIL_API void trail_http_headers_done(trail_http_request *hr) {
  http_req *r = req_of(hr);
  if (r == NULL || r->state_ != ST_BEGUN)
    return;
  trail_ctx_init(&r->ctx_);
  int ts_dropped = decide_ids(r);
  buffer_start(r);
  const char *const *skip = r->cfg_->skip_paths;
  for (size_t i = 0; skip && skip[i]; i++)
    if (strcmp(skip[i], r->path_) == 0)
      r->skip_ = 1;
  r->state_ = ST_DECIDED;
  report_rejected(r, ts_dropped);
}

TRAIL_API void trail_http_set_method(trail_http_request *hr,
                                     const char *method) {
  http_req *r = req_of(hr);
  if (r != NULL)
    set_method(r, method);
}

TRAIL_API trail_ctx *trail_http_ctx(trail_http_request *hr) {
  http_req *r = req_of(hr);
  return r ? &r->ctx_ : NULL;
}

TRAIL_API const char *trail_http_request_id(const trail_http_request *hr) {
  const http_req *r = creq_of(hr);
  return r ? trail_ctx_request_id(&r->ctx_) : "";
}

TRAIL_API int trail_http_set_user(trail_http_request *hr, const char *user_id) {
  http_req *r = req_of(hr);
  if (r == NULL)
    return -EINVAL;
  return trail_ctx_set_user_id(&r->ctx_, user_id);
}

/* An HTTP status code: three digits, 100 to 599 (RFC 9110, section 15). */
#define STATUS_MIN 100
#define STATUS_MAX 599
/* The access line's status when the server names none it could have sent:
 * the request ended without a response anyone can tell. */
#define STATUS_UNNAMED 500

static int status_valid(int status) {
  return status >= STATUS_MIN && status <= STATUS_MAX;
}

/* A status outside 100-599 is not one that went on the wire: ignored. */
TRAIL_API void trail_http_response(trail_http_request *hr, int status) {
  http_req *r = req_of(hr);
  if (r != NULL && r->state_ != ST_NEW && r->state_ != ST_ENDED &&
      status_valid(status))
    r->status_ = status;
}

TRAIL_API void trail_http_body(trail_http_request *hr, uint64_t n) {
  http_req *r = req_of(hr);
  if (r == NULL || r->state_ == ST_NEW || r->state_ == ST_ENDED)
    return;
  r->bytes_ = n > UINT64_MAX - r->bytes_ ? UINT64_MAX : r->bytes_ + n;
  r->body_known_ = 1;
}

TRAIL_API void trail_http_client_gone(trail_http_request *hr) {
  http_req *r = req_of(hr);
  if (r != NULL && r->state_ != ST_NEW && r->state_ != ST_ENDED)
    r->client_gone_ = 1;
}

/*
 * No body goes with a response to HEAD (RFC 9110 section 9.3.2), with a
 * 1xx (section 15.2), a 204 No Content (section 15.3.5) or a 304 Not
 * Modified (section 15.4.5), whatever the handler wrote.
 */
TRAIL_API bool trail_http_no_body(const trail_http_request *hr, int status) {
  const http_req *r = creq_of(hr);
  if (r != NULL && r->state_ != ST_NEW && r->head_)
    return true;
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/*
 * A server's diagnostic as data: copied (it need not end in a NUL), its
 * line end dropped, never formatted again, escaped when written.
 */
TRAIL_API void trail_http_server_error(trail_http_request *hr, const char *text,
                                       size_t len) {
  http_req *r = req_of(hr);
  char buf[1024];
  if (r != NULL && r->state_ == ST_NEW)
    r = NULL;
  trail_logger *lg = r ? http_logger(r) : trail_logger_get("http");
  if (text == NULL || !trail_enabled(lg, TRAIL_LEVEL_WARN))
    return;
  if (len == TRAIL_NTS)
    len = strlen(text);
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
                     text[len - 1] == ' ' || text[len - 1] == '\t'))
    len--;
  copy_cut(buf, sizeof buf - 1, text, len);
  if (r != NULL)
    trail_ctx_log(&r->ctx_, lg, TRAIL_LEVEL_WARN, buf, NULL, 0);
  else
    trail_warn(lg, buf);
}

/*
 * The status and bytes of the access line, by the precedence documented
 * in trail/http.h: a client gone, then what trail was told, then what the
 * server says; no bytes where HTTP sends no body.
 */
static int final_status(const http_req *r, int server_status,
                        uint64_t server_bytes, uint64_t *bytes) {
  int status = r->client_gone_               ? TRAIL_HTTP_CLIENT_GONE
               : r->status_                  ? r->status_
               : status_valid(server_status) ? server_status
                                             : STATUS_UNNAMED;
  *bytes = r->body_known_ ? r->bytes_ : server_bytes;
  if (status != TRAIL_HTTP_CLIENT_GONE &&
      trail_http_no_body((const trail_http_request *)(const void *)r, status))
    *bytes = 0;
  return status;
}

static trail_level level_of(const http_req *r, int status, double ms) {
  trail_level level = status >= 500   ? TRAIL_LEVEL_ERROR
                      : status >= 400 ? TRAIL_LEVEL_WARN
                                      : TRAIL_LEVEL_INFO;
  if (r->cfg_->slow_ms > 0 && ms > r->cfg_->slow_ms && level < TRAIL_LEVEL_WARN)
    level = TRAIL_LEVEL_WARN;
  return level;
}

/*
 * The access line. It takes the request's context explicitly, so it is
 * right from a completion callback on another thread or after the context
 * was left; the state makes a second call harmless, which adapters whose
 * server may report the end twice (completion and close) rely on.
 */
TRAIL_API void trail_http_end(trail_http_request *hr, int server_status,
                              uint64_t server_bytes) {
  http_req *r = req_of(hr);
  if (r == NULL || r->state_ == ST_NEW || r->state_ == ST_ENDED)
    return;
  if (r->state_ == ST_BEGUN)
    trail_http_headers_done(hr);
  r->state_ = ST_ENDED;
  uint64_t bytes;
  int status = final_status(r, server_status, server_bytes, &bytes);
  /* A failed request's buffered lines come before its access line. */
  if (status >= 500 && status <= STATUS_MAX)
    trail_ctx_buffer_flush(&r->ctx_);
  trail_ctx_buffer_end(&r->ctx_);
  if (r->skip_)
    return;
  double ms = (double)(trail_now_ns() - r->start_ns_) / 1e6;
  trail_level level = level_of(r, status, ms);
  trail_logger *lg = http_logger(r);
  if (!trail_enabled(lg, level))
    return;
  trail_field f[12];
  size_t n = 0;
  f[n++] = TRAIL_STR("method", r->method_);
  f[n++] = TRAIL_STR("path", r->path_);
  f[n++] = TRAIL_INT("status", status);
  f[n++] = TRAIL_DOUBLE("duration_ms", ms);
  f[n++] = TRAIL_UINT("bytes", bytes);
  if (r->addr_[0])
    f[n++] = TRAIL_STR("remote_addr", r->addr_);
  if (r->agent_[0])
    f[n++] = TRAIL_STR("user_agent", r->agent_);
  if (r->ctx_.has_parent_)
    f[n++] = TRAIL_STR("parent_span_id", r->ctx_.parent_span_id_);
  if (status == TRAIL_HTTP_CLIENT_GONE)
    f[n++] = TRAIL_BOOL("client_gone", 1);
  if (r->path_cut_)
    f[n++] = TRAIL_BOOL("path_cut", 1);
  trail_ctx_log(&r->ctx_, lg, level, "request completed", f, n);
}

/*
 * The headers of an outgoing call: the call is a new span of the request's
 * trace (W3C: the parent-id sent is the caller's own span for that call),
 * the flags and the kept tracestate go along, and so does the request id.
 */
TRAIL_API int trail_http_outgoing_make(const trail_ctx *ctx,
                                       trail_http_outgoing *out) {
  if (out == NULL)
    return -EINVAL;
  memset(out, 0, sizeof *out);
  if (ctx == NULL)
    ctx = trail_ctx_current();
  if (ctx == NULL || !ctx->trace_id_[0])
    return TRAIL_EINVAL_ID;
  trail_span_id_new(out->span_id, sizeof out->span_id);
  trail_traceparent tp;
  tp.version = 0;
  tp.flags = ctx->trace_flags_;
  memcpy(tp.trace_id, ctx->trace_id_, sizeof tp.trace_id);
  memcpy(tp.parent_id, out->span_id, sizeof tp.parent_id);
  int rc =
      trail_traceparent_format(&tp, out->traceparent, sizeof out->traceparent);
  if (rc < 0)
    return rc;
  memcpy(out->tracestate, ctx->tracestate_, sizeof out->tracestate);
  memcpy(out->request_id, ctx->request_id_, sizeof out->request_id);
  return 0;
}
