/*
 * The HTTP middleware core: a request's context from its headers, and its
 * access line, independent of any server library (include/trail/http.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"
#include "trail/http.h"

enum { ST_NEW = 0, ST_BEGUN = 1, ST_DECIDED = 2, ST_ENDED = 3 };
enum { TP_MISSING = 0, TP_VALID = 1, TP_INVALID = 2, TP_REPEATED = 3 };

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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
 * Starts a request. Nothing here can fail: what does not fit the fixed
 * storage is cut (and the access line says so), NULLs become "".
 */
TRAIL_API void trail_http_begin(trail_http_request *r,
                                const trail_http_config *cfg,
                                const char *method, const char *path,
                                size_t path_len, const char *remote_addr) {
  if (r == NULL)
    return;
  memset(r, 0, sizeof *r);
  r->cfg_ = cfg ? cfg : &default_config;
  r->start_ns_ = now_ns();
  if (method == NULL)
    method = "";
  copy_cut(r->method_, TRAIL_HTTP_METHOD_MAX, method, strlen(method));
  if (path == NULL)
    path = "";
  if (path_len == TRAIL_NTS)
    path_len = strlen(path);
  if (!r->cfg_->log_query) {
    const char *q = memchr(path, '?', path_len);
    if (q != NULL)
      path_len = (size_t)(q - path);
  }
  r->path_cut_ =
      (uint8_t)copy_cut(r->path_, TRAIL_HTTP_PATH_MAX, path, path_len);
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
static void header_traceparent(trail_http_request *r, const char *value,
                               size_t value_len, int has_nul) {
  if (++r->tp_count_ == 1) {
    copy_cut(r->tp_in_, sizeof r->tp_in_ - 1, value, value_len);
    r->tp_bad_ = (uint8_t)has_nul;
  }
}

/*
 * tracestate may come in several headers, which are one list (W3C Trace
 * Context, section 3.3.1.1, combining them as RFC 9110 section 5.3 says):
 * each is appended after a comma. A list too long to validate whole (over
 * twice the 512 characters section 3.3.1.5 asks to propagate), or with a
 * NUL, is marked bad and not propagated.
 */
static void header_tracestate(trail_http_request *r, const char *value,
                              size_t value_len, int has_nul) {
  size_t have = strlen(r->ts_in_);
  if (has_nul)
    r->ts_bad_ = 1;
  if (value_len == 0 || has_nul)
    return;
  if (have + 1 + value_len > sizeof r->ts_in_ - 1) {
    r->ts_bad_ = 1;
    return;
  }
  if (have > 0)
    r->ts_in_[have++] = ',';
  memcpy(r->ts_in_ + have, value, value_len);
  r->ts_in_[have + value_len] = '\0';
}

/* The first X-Request-Id is kept when it is a valid request ID. */
static void header_request_id(trail_http_request *r, const char *value,
                              size_t value_len) {
  if (++r->rid_count_ == 1) {
    if (trail_request_id_check(value, value_len) == 0)
      copy_cut(r->rid_in_, TRAIL_REQUEST_ID_MAX, value, value_len);
    else
      r->rid_bad_ = 1;
  }
}

/* The first user-ID header is kept when it fits and holds no NUL. */
static void header_user_id(trail_http_request *r, const char *value,
                           size_t value_len, int has_nul) {
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
TRAIL_API void trail_http_header(trail_http_request *r, const char *name,
                                 size_t name_len, const char *value,
                                 size_t value_len) {
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

static trail_logger *http_logger(const trail_http_request *r) {
  return r->cfg_->logger ? r->cfg_->logger : trail_logger_get("http");
}

static void reject(trail_http_request *r, const char *header,
                   const char *reason) {
  trail_field f[] = {TRAIL_STR("header", header), TRAIL_STR("reason", reason)};
  trail_logger *lg = http_logger(r);
  if (trail_enabled(lg, TRAIL_LEVEL_DEBUG))
    trail_ctx_log(&r->ctx_, lg, TRAIL_LEVEL_DEBUG, "request header rejected", f,
                  2);
}

/*
 * Decides the request's ids, once, from what the headers said. A new
 * request id and a new trace are made first, so that whatever is rejected
 * below leaves a complete, valid context behind.
 */
TRAIL_API void trail_http_headers_done(trail_http_request *r) {
  if (r == NULL || r->state_ != ST_BEGUN)
    return;
  trail_ctx_init(&r->ctx_);

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

  const char *const *skip = r->cfg_->skip_paths;
  for (size_t i = 0; skip && skip[i]; i++)
    if (strcmp(skip[i], r->path_) == 0)
      r->skip_ = 1;
  r->state_ = ST_DECIDED;

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
                                     : "not valid per W3C Trace Context");
  if (r->user_count_ > 1 || r->user_bad_)
    reject(r, r->cfg_->user_id_header,
           r->user_bad_ ? "not 1 to 128 bytes" : "sent more than once");
}

TRAIL_API void trail_http_set_method(trail_http_request *r,
                                     const char *method) {
  if (r == NULL)
    return;
  if (method == NULL)
    method = "";
  copy_cut(r->method_, TRAIL_HTTP_METHOD_MAX, method, strlen(method));
}

TRAIL_API trail_ctx *trail_http_ctx(trail_http_request *r) {
  return r ? &r->ctx_ : NULL;
}

TRAIL_API const char *trail_http_request_id(const trail_http_request *r) {
  return r ? trail_ctx_request_id(&r->ctx_) : "";
}

TRAIL_API int trail_http_set_user(trail_http_request *r, const char *user_id) {
  if (r == NULL)
    return -EINVAL;
  return trail_ctx_set_user_id(&r->ctx_, user_id);
}

/*
 * The access line. It takes the request's context explicitly, so it is
 * right from a completion callback on another thread or after the context
 * was left; the state makes a second call harmless, which adapters whose
 * server may report the end twice (completion and close) rely on.
 */
TRAIL_API void trail_http_end(trail_http_request *r, int status,
                              uint64_t bytes) {
  if (r == NULL || r->state_ == ST_NEW || r->state_ == ST_ENDED)
    return;
  if (r->state_ == ST_BEGUN)
    trail_http_headers_done(r);
  r->state_ = ST_ENDED;
  if (r->skip_)
    return;
  double ms = (double)(now_ns() - r->start_ns_) / 1e6;
  trail_level level = status >= 500   ? TRAIL_LEVEL_ERROR
                      : status >= 400 ? TRAIL_LEVEL_WARN
                                      : TRAIL_LEVEL_INFO;
  if (r->cfg_->slow_ms > 0 && ms > r->cfg_->slow_ms && level < TRAIL_LEVEL_WARN)
    level = TRAIL_LEVEL_WARN;
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
