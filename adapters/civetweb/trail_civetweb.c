/*
 * trail's civetweb adapter: the middleware core (trail/http.h) hooked into
 * civetweb's begin_request, end_request and http_error callbacks
 * (include/trail/civetweb.h, docs/middleware-civetweb.md).
 *
 * Where the request lives. civetweb serves a connection on one worker
 * thread from the first byte of a request to end_request, and the only
 * per-connection slot it offers (mg_set_user_connection_data) belongs to
 * the application and survives from one kept-alive request to the next.
 * So the request in flight is kept in a thread-local slot of the worker
 * instead: begin_request fills it afresh, end_request closes it, and a
 * lookup from a handler checks both the connection and that the slot is
 * open. Nothing of a request outlives its end_request, whatever the
 * connection does next.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "trail/civetweb.h"

/* One worker thread's request in flight. */
typedef struct slot {
  trail_http_request req;
  const struct mg_connection *conn; /* whose request it is */
  trail_ctx *prev;                  /* current before begin_request */
  uint8_t open;                     /* between begin and end */
} slot;

static _Thread_local slot tls;

/* The configuration of the hooks trail_civetweb_callbacks() installs. */
static _Atomic(const trail_http_config *) hooks_cfg;

static slot *slot_of(const struct mg_connection *conn) {
  return conn != NULL && tls.open && tls.conn == conn ? &tls : NULL;
}

/*
 * The path for the access line. civetweb has already URL-decoded
 * request_uri and split the query off into query_string, so a '?' left in
 * it was "%3F" on the wire: it is written back that way, or the core
 * would cut the path there. The query comes back only when the
 * configuration asks for it. One byte more than the core keeps is copied,
 * so that it sees the cut and says so.
 */
static size_t build_path(char *out, const struct mg_request_info *ri,
                         const trail_http_config *cfg) {
  const size_t cap = TRAIL_HTTP_PATH_MAX + 1;
  const char *uri = ri->request_uri ? ri->request_uri : "";
  size_t n = 0;
  for (const char *p = uri; *p && n < cap; p++) {
    if (*p == '?') {
      if (n + 3 > cap)
        break;
      memcpy(out + n, "%3F", 3);
      n += 3;
    } else {
      out[n++] = *p;
    }
  }
  if (cfg != NULL && cfg->log_query && ri->query_string != NULL && n < cap) {
    out[n++] = '?';
    for (const char *p = ri->query_string; *p && n < cap; p++)
      out[n++] = *p;
  }
  out[n] = '\0';
  return n;
}

/*
 * Starts the middleware request in s from what civetweb parsed: the
 * request line and every header, repeated ones included (civetweb keeps
 * the first MG_MAX_HEADERS and drops the rest; a failed parse leaves
 * num_headers negative, and then no header is trusted).
 */
static void request_start(slot *s, const struct mg_connection *conn,
                          const trail_http_config *cfg) {
  const struct mg_request_info *ri = mg_get_request_info(conn);
  char path[TRAIL_HTTP_PATH_MAX + 2];
  if (ri == NULL) {
    trail_http_begin(&s->req, cfg, NULL, NULL, 0, NULL);
  } else {
    size_t len = build_path(path, ri, cfg);
    trail_http_begin(&s->req, cfg, ri->request_method, path, len,
                     ri->remote_addr[0] ? ri->remote_addr : NULL);
    int n = ri->num_headers;
    if (n > MG_MAX_HEADERS)
      n = MG_MAX_HEADERS;
    for (int i = 0; i < n; i++) {
      const struct mg_header *h = &ri->http_headers[i];
      if (h->name != NULL)
        trail_http_header(&s->req, h->name, TRAIL_NTS, h->value, TRAIL_NTS);
    }
  }
  trail_http_headers_done(&s->req);
  s->conn = conn;
}

/*
 * The access line: civetweb's reply_status_code is only the server's
 * fallback, below a client gone and a status sent through trail (the
 * core's precedence). That order matters here: civetweb reports a request
 * handler's return value, and handlers commonly return 1 for "handled".
 */
static void request_finish(slot *s, int reported) {
  trail_http_end(&s->req, reported, 0);
  s->open = 0;
  s->conn = NULL;
  trail_ctx_leave(s->prev);
  s->prev = NULL;
}

/*
 * Starts a request on the calling worker thread and makes its context
 * current there. A slot still open here means civetweb started a request
 * without ending the previous one on this thread; that one is closed
 * first (its access line written, its context left), so that no id of it
 * can reach the new request's lines.
 */
TRAIL_API int trail_civetweb_begin(struct mg_connection *conn,
                                   const trail_http_config *cfg) {
  if (conn == NULL)
    return 0;
  if (tls.open)
    request_finish(&tls, 0);
  request_start(&tls, conn, cfg);
  tls.open = 1;
  tls.prev = trail_ctx_enter(trail_http_ctx(&tls.req));
  return 0;
}

/*
 * Ends the request of conn: the access line, then the context of the
 * thread goes back to what it was before begin_request. A request whose
 * begin_request civetweb skipped has no open slot: nothing is written.
 */
TRAIL_API void trail_civetweb_end(const struct mg_connection *conn,
                                  int reply_status_code) {
  slot *s = slot_of(conn);
  if (s != NULL)
    request_finish(s, reply_status_code);
}

/* The core's no-body rule; outside a request, the method says HEAD. */
static int has_body(const slot *s, const struct mg_connection *conn,
                    int status) {
  if (s != NULL)
    return !trail_http_no_body(&s->req, status);
  const struct mg_request_info *ri = mg_get_request_info(conn);
  return !trail_http_no_body(NULL, status) &&
         !(ri != NULL && ri->request_method != NULL &&
           strcmp(ri->request_method, "HEAD") == 0);
}

/*
 * mg_write() that counts the body bytes and notices a client that left.
 * civetweb's answer alone cannot tell the two failures apart: it returns
 * -1 when send() fails (the client reset or closed the connection), but
 * also when its stop flag is up right after a send() that went through
 * (mg_stop() running while a response is written). What send() left in
 * errno does: a failed send() sets it, a stop does not. So errno is
 * cleared first, and a failure without one is counted as written, not
 * as a client gone. Writes go in pieces civetweb's int length can hold.
 */
static int counted_write(slot *s, struct mg_connection *conn, const void *buf,
                         size_t len) {
  const char *p = buf;
  size_t left = len;
  int total = 0;
  while (left > 0) {
    size_t piece = left < (1u << 30) ? left : (1u << 30);
    errno = 0;
    int n = mg_write(conn, p, piece);
    int err = errno;
    if (n > 0 && s != NULL)
      trail_http_body(&s->req, (uint64_t)n);
    if (n > 0)
      total = total > INT_MAX - n ? INT_MAX : total + n;
    if (n == (int)piece) {
      p += piece;
      left -= piece;
      continue;
    }
    if (s != NULL) {
      if (err != 0) /* send() failed: the client left or stopped reading */
        trail_http_client_gone(&s->req);
      else if (n < 0) /* sent, then the server stopped */
        trail_http_body(&s->req, (uint64_t)piece);
    }
    return n > 0 ? total : n;
  }
  return total;
}

/*
 * Starts a response with the headers every response of trail's has.
 * Returns 0 or a negative code (-EALREADY: headers were already sent).
 */
static int header_start(struct mg_connection *conn, int status,
                        const char *rid) {
  int rc = mg_response_header_start(conn, status);
  if (rc == -3)
    return -EALREADY;
  if (rc < 0)
    return -EINVAL;
  if (rid != NULL && rid[0])
    mg_response_header_add(conn, "X-Request-ID", rid, -1);
  return 0;
}

/*
 * Sends a response for a request handler: all its headers at once, then
 * the body through the counting write. The Content-Length of a HEAD
 * response is the length a GET would have had; its body is not sent.
 */
TRAIL_API int trail_civetweb_send(struct mg_connection *conn, int status,
                                  const char *content_type, const void *body,
                                  size_t len) {
  if (conn == NULL || status < 100 || status > 999 || (body == NULL && len))
    return -EINVAL;
  slot *s = slot_of(conn);
  int rc = header_start(conn, status, s ? trail_http_request_id(&s->req) : "");
  if (rc < 0)
    return rc;
  if (content_type != NULL)
    mg_response_header_add(conn, "Content-Type", content_type, -1);
  if (status >= 200 && status != 204) {
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", len);
    mg_response_header_add(conn, "Content-Length", cl, -1);
  }
  if (s != NULL)
    trail_http_response(&s->req, status);
  if (mg_response_header_send(conn) < 0)
    return status; /* a state error: nothing more can be sent */
  if (len > 0 && has_body(s, conn, status))
    counted_write(s, conn, body, len);
  return status;
}

/*
 * Adds the request id to a response the handler builds itself with
 * mg_response_header_start(). The status of such a response is not seen
 * here: civetweb reports the one the handler returns.
 */
TRAIL_API int trail_civetweb_header_add(struct mg_connection *conn) {
  slot *s = slot_of(conn);
  if (s == NULL)
    return -ENOENT;
  return mg_response_header_add(conn, "X-Request-ID",
                                trail_http_request_id(&s->req), -1);
}

/*
 * mg_write() for a handler's body, counted for the access line, with a
 * failed send() marking the client gone; see counted_write() for why the
 * failures civetweb reports are not all taken at their word.
 */
TRAIL_API int trail_civetweb_write(struct mg_connection *conn, const void *buf,
                                   size_t len) {
  return counted_write(slot_of(conn), conn, buf, len);
}

/*
 * The request in flight on this thread, if it is conn's. Both checks are
 * needed: the slot stays on the thread between requests (closed), and a
 * handler may be handed another connection than the one the thread
 * serves.
 */
TRAIL_API trail_http_request *
trail_civetweb_request(const struct mg_connection *conn) {
  slot *s = slot_of(conn);
  return s ? &s->req : NULL;
}

/*
 * civetweb's error page, as its own default handler writes it (the same
 * status line, cache headers, additional_header and text body), plus
 * X-Request-ID. The connection is closed after it, as civetweb does after
 * an error: what follows on the connection may not be a request.
 */
static int send_error(struct mg_connection *conn, slot *s, int status,
                      const char *msg) {
  const struct mg_context *ctx = mg_get_context(conn);
  int rc = header_start(conn, status, trail_http_request_id(&s->req));
  if (rc < 0)
    return rc;
  mg_disable_connection_keep_alive(conn);
  mg_response_header_add(conn, "Cache-Control",
                         "no-cache, no-store, must-revalidate, private, "
                         "max-age=0",
                         -1);
  mg_response_header_add(conn, "Expires", "0", -1);
  mg_response_header_add(conn, "Pragma", "no-cache", -1);
  const char *extra = ctx ? mg_get_option(ctx, "additional_header") : NULL;
  if (extra != NULL && extra[0])
    mg_response_header_add_lines(conn, extra);
  char body[1024];
  int len = 0;
  if (has_body(s, conn, status)) {
    const char *text = mg_get_response_code_text(conn, status);
    len = snprintf(body, sizeof body, "Error %d: %s\n%s", status,
                   text ? text : "", msg ? msg : "");
    if (len < 0)
      len = 0;
    if ((size_t)len >= sizeof body)
      len = (int)sizeof body - 1;
    char cl[16];
    snprintf(cl, sizeof cl, "%d", len);
    mg_response_header_add(conn, "Content-Type", "text/plain; charset=utf-8",
                           -1);
    mg_response_header_add(conn, "Content-Length", cl, -1);
  }
  trail_http_response(&s->req, status);
  if (mg_response_header_send(conn) < 0)
    return 0;
  if (len > 0)
    counted_write(s, conn, body, (size_t)len);
  return 0;
}

/*
 * The error hook. During a request (begin_request ran on this thread for
 * conn) the error page gets the request's id and end_request writes the
 * access line as usual. Before one, civetweb refused the request while
 * reading it (malformed, too large, an HTTP version it does not speak),
 * and no begin_request or end_request will come: the request is made
 * here from whatever civetweb parsed, answered, and its access line
 * written at once, so that even a refused request has an id that the
 * client and the logs share.
 */
TRAIL_API int trail_civetweb_http_error(struct mg_connection *conn,
                                        const trail_http_config *cfg,
                                        int status, const char *msg) {
  if (conn == NULL)
    return 1;
  const struct mg_context *ctx = mg_get_context(conn);
  const char *pages = ctx ? mg_get_option(ctx, "error_pages") : NULL;
  if (pages != NULL && pages[0])
    return 1;
  slot *s = slot_of(conn);
  if (s != NULL)
    return send_error(conn, s, status, msg) < 0 ? 1 : 0;

  if (tls.open)
    request_finish(&tls, 0);
  request_start(&tls, conn, cfg);
  int rc = send_error(conn, &tls, status, msg);
  trail_http_end(&tls.req, status, 0);
  tls.conn = NULL;
  return rc < 0 ? 1 : 0;
}

static int hook_begin(struct mg_connection *conn) {
  return trail_civetweb_begin(conn, atomic_load(&hooks_cfg));
}

static void hook_end(const struct mg_connection *conn, int status) {
  trail_civetweb_end(conn, status);
}

static int hook_http_error(struct mg_connection *conn, int status,
                           const char *msg) {
  return trail_civetweb_http_error(conn, atomic_load(&hooks_cfg), status, msg);
}

/*
 * civetweb's diagnostics (mg_cry) as the core's server-error lines (warn,
 * logger "http") instead of civetweb's own error log; a diagnostic about
 * the request in flight on this thread carries its context. Returning 1
 * tells civetweb it was logged.
 */
static int hook_log_message(const struct mg_connection *conn,
                            const char *message) {
  slot *s = slot_of(conn);
  trail_http_server_error(s ? &s->req : NULL, message ? message : "",
                          TRAIL_NTS);
  return 1;
}

/*
 * Installs trail's hooks in a callbacks struct about to be given to
 * mg_start(). Refusing to replace a hook the application set is the
 * point of -EEXIST: chaining it would need a place to keep it per server,
 * and civetweb's only per-server pointer (mg_start's user_data) is the
 * application's.
 */
TRAIL_API int trail_civetweb_callbacks(struct mg_callbacks *callbacks,
                                       const trail_http_config *cfg) {
  if (callbacks == NULL)
    return -EINVAL;
  if (callbacks->begin_request != NULL || callbacks->end_request != NULL ||
      callbacks->http_error != NULL)
    return -EEXIST;
  atomic_store(&hooks_cfg, cfg);
  callbacks->begin_request = hook_begin;
  callbacks->end_request = hook_end;
  callbacks->http_error = hook_http_error;
  if (callbacks->log_message == NULL)
    callbacks->log_message = hook_log_message;
  return 0;
}
