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
 *   prev = trail_ctx_enter(trail_http_ctx(r)); handler runs; leave(prev)
 *   when the response goes out:
 *     set "X-Request-ID: trail_http_request_id(r)" (the only one)
 *     trail_http_response(r, status);        // the status on the wire
 *     trail_http_body(r, n) per body write;  // none if trail_http_no_body()
 *     trail_http_client_gone(r) when a write fails;
 *   trail_http_end(r, server_status, server_bytes);  // the access line
 *   server diagnostics: trail_http_server_error(r or NULL, text, len)
 *
 * Reference: docs/middleware.md. Copyright (c) 2026 the trail developers.
 * MIT licence, see LICENSE.
 */
#ifndef TRAIL_HTTP_H
#define TRAIL_HTTP_H

#include <stddef.h>

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
  /* Request-scoped buffering (trail_ctx_buffer()): every request keeps
   * its lines below their logger's level, from buffer_level up, in a ring
   * of buffer_bytes, written before the access line when the status is
   * 5xx and dropped otherwise. 0 bytes: as TRAIL_BUFFER says (default:
   * off). */
  size_t buffer_bytes;
  trail_level buffer_level;
  void *reserved[2];
} trail_http_config;

/* The defaults: no user header, no query, no skipped path, no threshold. */
TRAIL_API void trail_http_config_init(trail_http_config *cfg);

/*
 * One request in flight: opaque storage of TRAIL_HTTP_REQUEST_SIZE bytes,
 * caller-allocated (inside the server's per-request state, on a stack, in
 * an array), no malloc. Its layout is private to lib/http.c; only the size
 * and the alignment (the strictest of the scalar types below, which C99
 * can name as well as C11 and C++) are ABI, and the size leaves room for
 * the private state to grow without an ABI break. Touch it only through
 * the functions below.
 */
#define TRAIL_HTTP_REQUEST_SIZE 8192
typedef union trail_http_request {
  unsigned char opaque_[TRAIL_HTTP_REQUEST_SIZE];
  long long align_ll_;
  long double align_ld_;
  void *align_p_;
  void (*align_fn_)(void);
} trail_http_request;

/*
 * Starts a request: records the start time, method, path (the query is cut
 * unless cfg->log_query; path_len may be TRAIL_NTS) and remote address
 * (NULL: unknown). cfg is borrowed for the request's life (NULL: defaults).
 * An absolute-form target (RFC 9112 section 3.2.2: "http://host/p?q", what
 * a proxy is sent) is reduced to its path and query: "/p?q" ("/" when it
 * has no path, "https://h:8080" -> "/"); an origin-form path and the
 * asterisk-form "*" of OPTIONS are kept as they are.
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
 * runs before the method is known (libmicrohttpd). NULL: "". The no-body
 * rule of HEAD follows the method set last.
 */
TRAIL_API void trail_http_set_method(trail_http_request *r, const char *method);

/* The request's context, to enter around the application's callbacks. */
TRAIL_API trail_ctx *trail_http_ctx(trail_http_request *r);
/*
 * The request id for the response's X-Request-ID header. The echo rule,
 * the same for every adapter: a response carries exactly one X-Request-ID,
 * and its value is always this one; an X-Request-ID the handler put on the
 * response itself is replaced, not sent next to it.
 */
TRAIL_API const char *trail_http_request_id(const trail_http_request *r);
/* Sets the user once the handler knows it (lines after it carry it). */
TRAIL_API int trail_http_set_user(trail_http_request *r, const char *user_id);

/* ---- the response ------------------------------------------------------ */

/*
 * The status the adapter (or the service) put on the wire. The last call
 * with a status of 100 to 599 counts (others are ignored). It takes precedence
 * over the status the server reports at trail_http_end().
 */
TRAIL_API void trail_http_response(trail_http_request *r, int status);
/*
 * n more body bytes were sent (it accumulates; 0 still says "the body is
 * counted here"). Once called, the bytes of the access line are these,
 * not the server's.
 */
TRAIL_API void trail_http_body(trail_http_request *r, uint64_t n);
/* A write failed: the client left (or stopped reading). Final status 499. */
TRAIL_API void trail_http_client_gone(trail_http_request *r);
/*
 * Whether a response with this status to r carries no body: a response to
 * HEAD (RFC 9110 section 9.3.2), a 1xx (section 15.2), 204 (section
 * 15.3.5) or 304 (section 15.4.5). r may be NULL (status alone decides).
 */
TRAIL_API bool trail_http_no_body(const trail_http_request *r, int status);

/*
 * A diagnostic of the server library (a parse error, a failed socket, a
 * setup complaint) as a warn line of logger "http" (cfg->logger when set),
 * message text (len bytes, TRAIL_NTS: up to the NUL; trailing line ends
 * and blanks dropped, cut at 1023 bytes). With r (begun) the line carries
 * r's context; with NULL it carries whatever context is current.
 */
TRAIL_API void trail_http_server_error(trail_http_request *r, const char *text,
                                       size_t len);

/*
 * Writes the access line (logger "http" unless configured), message
 * "request completed", with method, path, status, duration_ms, bytes,
 * remote_addr, user_agent and, when the trace was continued,
 * parent_span_id. The status, in this order of precedence:
 *   1. TRAIL_HTTP_CLIENT_GONE (499, with client_gone: true) when
 *      trail_http_client_gone() was called;
 *   2. else the status reported with trail_http_response();
 *   3. else server_status, what the server itself says it sent;
 *   4. else (server_status not 100-599, e.g. 0 for "none") 500.
 * bytes: those reported with trail_http_body() when it was called, else
 * server_bytes; 0 when trail_http_no_body() says so for the final status.
 * Level info for 1xx-3xx, warn for 4xx (and for a request slower than
 * cfg->slow_ms), error for 5xx. Nothing for a skipped path. Safe to call
 * from any thread, with or without the context entered; a second call does
 * nothing.
 */
TRAIL_API void trail_http_end(trail_http_request *r, int server_status,
                              uint64_t server_bytes);

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
