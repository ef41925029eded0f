/*
 * trail's HTTP middleware core: what every server adapter does at request
 * start and end, independent of any server library.
 *
 * An adapter (or a service on a server trail has no adapter for) does, per
 * request:
 *
 *   trail_http_request *r = ...;             // caller-allocated, no malloc
 *   trail_http_begin(r, &cfg, method, path, path_len, remote_addr);
 *   for each request header (all of them, repeated ones too):
 *     trail_http_header(r, name, name_len, value, value_len);
 *   trail_http_headers_done(r);              // ids decided here
 *   -> set "X-Request-ID: trail_http_request_id(r)" on the response
 *   prev = trail_ctx_enter(trail_http_ctx(r)); handler runs; leave(prev)
 *   trail_http_end(r, status, bytes);        // the access line
 *
 * Reference: docs/middleware.md. Copyright (c) 2026 the trail developers.
 * MIT licence, see LICENSE.
 */
#ifndef TRAIL_HTTP_H
#define TRAIL_HTTP_H

#include <trail.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRAIL_HTTP_PATH_MAX 2048   /* bytes of path (and query) kept */
#define TRAIL_HTTP_AGENT_MAX 256   /* bytes of User-Agent kept */
#define TRAIL_HTTP_ADDR_MAX 64     /* bytes of remote address kept */
#define TRAIL_HTTP_METHOD_MAX 16   /* bytes of method kept */
#define TRAIL_HTTP_CLIENT_GONE 499 /* status of a request whose client left */

typedef struct trail_http_config {
  /* Header carrying an authenticated user id (set by a gateway), e.g.
   * "X-User-ID"; NULL: none. Matched case-insensitively. */
  const char *user_id_header;
  /* Keep the query string in the access line's path (default: no, since
   * queries carry secrets). */
  bool log_query;
  /* Paths whose access line is not written (exact match, query ignored),
   * NULL-terminated; e.g. {"/healthz", NULL}. Borrowed: must outlive use. */
  const char *const *skip_paths;
  /* Requests slower than this (ms) get at least level warn; 0: off. */
  double slow_ms;
  /* The access line's logger; NULL: trail_logger_get("http"). */
  trail_logger *logger;
  void *reserved[4];
} trail_http_config;

/* The defaults: no user header, no query, no skipped path, no threshold. */
TRAIL_API void trail_http_config_init(trail_http_config *cfg);

/*
 * One request in flight. Caller-allocated (inside the server's per-request
 * state); all members are private.
 */
typedef struct trail_http_request {
  trail_ctx ctx_;
  const trail_http_config *cfg_;
  int64_t start_ns_;
  char method_[TRAIL_HTTP_METHOD_MAX + 1];
  char path_[TRAIL_HTTP_PATH_MAX + 1];
  char agent_[TRAIL_HTTP_AGENT_MAX + 1];
  char addr_[TRAIL_HTTP_ADDR_MAX + 1];
  char rid_in_[TRAIL_REQUEST_ID_MAX + 1]; /* the one X-Request-ID seen */
  char user_in_[TRAIL_USER_ID_MAX + 1];
  char tp_in_[64];                           /* the one traceparent seen */
  char ts_in_[2 * TRAIL_TRACESTATE_MAX + 1]; /* tracestate values, joined */
  uint16_t rid_count_, tp_count_, user_count_;
  uint8_t rid_bad_, tp_bad_, ts_bad_, user_bad_, path_cut_, agent_cut_;
  uint8_t state_; /* 0 new, 1 begun, 2 headers done, 3 ended */
  uint8_t skip_;
  uint8_t rid_replaced_;
  uint8_t tp_status_; /* 0 missing, 1 valid, 2 invalid, 3 repeated */
  void *reserved_[4];
} trail_http_request;

/*
 * Starts a request: records the start time, method, path (the query is cut
 * unless cfg->log_query; path_len may be TRAIL_NTS) and remote address
 * (NULL: unknown). cfg is borrowed for the request's life (NULL: defaults).
 */
TRAIL_API void trail_http_begin(trail_http_request *r,
                                const trail_http_config *cfg,
                                const char *method, const char *path,
                                size_t path_len, const char *remote_addr);
/*
 * Feeds one request header; call it for every header the request has, in
 * order, repeated ones included (a repeated traceparent is invalid, repeated
 * tracestate values are joined). Names match case-insensitively; lengths
 * may be TRAIL_NTS. Headers trail does not use are ignored cheaply.
 */
TRAIL_API void trail_http_header(trail_http_request *r, const char *name,
                                 size_t name_len, const char *value,
                                 size_t value_len);
/*
 * Decides the request's context once all headers are in:
 * - request_id: the X-Request-ID when it is 1..128 chars of [A-Za-z0-9._:-]
 *   and sent once, else a new UUID v4;
 * - trace: a valid, single traceparent is continued (its trace id and
 *   flags, its span as parent, a new span for this request); otherwise a
 *   new trace starts (W3C Trace Context);
 * - tracestate: kept, for propagation, only with a valid traceparent and
 *   when it is valid itself (keys, values, at most 32 members, no
 *   duplicate keys);
 * - user_id: from cfg->user_id_header when set and present.
 * A header that was rejected is reported in a debug line of logger "http".
 */
TRAIL_API void trail_http_headers_done(trail_http_request *r);

/*
 * Sets the method after trail_http_begin(), for servers whose start hook
 * runs before the method is known (libmicrohttpd). NULL: "".
 */
TRAIL_API void trail_http_set_method(trail_http_request *r, const char *method);

/* The request's context, to enter around the application's callbacks. */
TRAIL_API trail_ctx *trail_http_ctx(trail_http_request *r);
/* The request id to echo in the response's X-Request-ID header. */
TRAIL_API const char *trail_http_request_id(const trail_http_request *r);
/* Sets the user once the handler knows it (lines after it carry it). */
TRAIL_API int trail_http_set_user(trail_http_request *r, const char *user_id);

/*
 * Writes the access line (logger "http" unless configured), message
 * "request completed", with method, path, status, duration_ms, bytes,
 * remote_addr, user_agent and, when the trace was continued,
 * parent_span_id. Level info for 1xx-3xx, warn for 4xx (and for a request
 * slower than cfg->slow_ms), error for 5xx. Nothing for a skipped path.
 * Status TRAIL_HTTP_CLIENT_GONE (499) says the client left first. Safe to
 * call from any thread, with or without the context entered; a second call
 * does nothing.
 */
TRAIL_API void trail_http_end(trail_http_request *r, int status,
                              uint64_t bytes);

/* ---- outgoing calls ---------------------------------------------------- */

/*
 * The headers to send with a call made on behalf of ctx: a traceparent with
 * ctx's trace and a new child span id (the call's own span), the context's
 * kept tracestate, and its X-Request-ID. Each value is NUL-terminated; an
 * empty tracestate or request_id means: do not send that header.
 */
typedef struct trail_http_outgoing {
  char traceparent[TRAIL_TRACEPARENT_LEN + 1];
  char tracestate[TRAIL_TRACESTATE_MAX + 1];
  char request_id[TRAIL_REQUEST_ID_MAX + 1];
  char span_id[TRAIL_SPAN_ID_LEN + 1]; /* the call's span, sent as parent */
} trail_http_outgoing;

/* Fills out from ctx (NULL: the current context). TRAIL_EINVAL_ID when the
 * context has no trace. */
TRAIL_API int trail_http_outgoing_make(const trail_ctx *ctx,
                                       trail_http_outgoing *out);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_HTTP_H */
