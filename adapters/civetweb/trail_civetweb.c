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
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "trail/civetweb.h"

#include "imf_fixdate.h"

/* The access line's status for a response mg_stop() cut off: the service
 * stopped first (Service Unavailable). */
#define STOPPED_STATUS 503

/*
 * The two server options every response needs, read once per worker
 * thread: mg_get_option() compares the name with every option's in turn,
 * which cost about a tenth of the adapter's time per request. A worker
 * thread serves one server, which joins it before freeing its options,
 * so a thread's copy of the pointers never outlives them.
 */
typedef struct server_options {
  const struct mg_context *ctx; /* NULL: not read yet */
  const char *additional;       /* additional_header, NULL: none */
  int keep_alive;               /* enable_keep_alive is "yes" */
} server_options;

/* One worker thread's request in flight. */
typedef struct slot {
  trail_http_request req;
  const struct mg_connection *conn; /* whose request it is */
  trail_ctx *prev;                  /* current before begin_request */
  uint8_t open;                     /* between begin and end */
  uint8_t sent;                     /* a response went out through trail */
  server_options opts;              /* of the server this thread works for */
} slot;

static _Thread_local slot tls;

/* The configuration of the hooks trail_civetweb_callbacks() installs. */
static _Atomic(const trail_http_config *) hooks_cfg;

static slot *slot_of(const struct mg_connection *conn) {
  return conn != NULL && tls.open && tls.conn == conn ? &tls : NULL;
}

static void options_read(server_options *o, const struct mg_context *ctx) {
  const char *ka = ctx ? mg_get_option(ctx, "enable_keep_alive") : NULL;
  o->ctx = ctx;
  o->additional = ctx ? mg_get_option(ctx, "additional_header") : NULL;
  o->keep_alive = ka != NULL && strcasecmp(ka, "yes") == 0;
}

/* conn's server's options: the worker's copy during a request of the
 * adapter's (s), else read now into *tmp. */
static const server_options *
options_of(slot *s, const struct mg_connection *conn, server_options *tmp) {
  const struct mg_context *ctx = mg_get_context(conn);
  server_options *o = s != NULL ? &s->opts : tmp;
  if (o == tmp || o->ctx != ctx || ctx == NULL)
    options_read(o, ctx);
  return o;
}

/*
 * The path for the access line. civetweb has already URL-decoded
 * request_uri and split the query off into query_string, so a '?' left in
 * it was "%3F" on the wire: it is written back that way, or the core
 * would cut the path there. The query comes back only when the
 * configuration asks for it. One byte more than the core keeps is copied,
 * so that it sees the cut and says so. A target that is only a query
 * ("?q") has no query split off: its '?' is left for the core, which logs
 * the empty path as "/" and the query only when asked to.
 */
static size_t build_path(char *out, const struct mg_request_info *ri,
                         const trail_http_config *cfg) {
  const size_t cap = TRAIL_HTTP_PATH_MAX + 1;
  const char *uri = ri->request_uri ? ri->request_uri : "";
  size_t n = 0;
  for (const char *p = uri; *p && n < cap; p++) {
    if (*p == '?' && p > uri) {
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
  s->sent = 0;
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

/* Counts for the access line the part of a written piece [off, off + n)
 * that lies past the first head bytes of a write: the body's. */
static void count_body(slot *s, size_t off, size_t n, size_t head) {
  if (s == NULL || off + n <= head)
    return;
  size_t from = off > head ? off : head;
  trail_http_body(&s->req, (uint64_t)(off + n - from));
}

/*
 * mg_write() that counts the body bytes and notices a client that left.
 * The first head bytes of buf are the response head, written but not
 * counted (0 for a body alone). civetweb's answer alone cannot tell the
 * two failures apart: it returns -1 when send() fails (the client reset
 * or closed the connection), but also when its stop flag is up right
 * after a send() that went through (mg_stop() running while a response
 * is written). What send() left in errno does: a failed send() sets it, a
 * stop does not. So errno is cleared first, and a failure without one is
 * counted as written, not as a client gone. A write cut short with no
 * error (0 or more bytes, fewer than asked) is civetweb's loop stopping at
 * its stop flag before the rest went out: the response never reached the
 * client whole, and the access line says STOPPED_STATUS, as for a request
 * libmicrohttpd's stop cut off. Writes go in pieces civetweb's int length
 * can hold.
 */
static int counted_write(slot *s, struct mg_connection *conn, const void *buf,
                         size_t len, size_t head) {
  const char *p = buf;
  size_t off = 0;
  int total = 0;
  while (off < len) {
    size_t piece = len - off < (1u << 30) ? len - off : (1u << 30);
    errno = 0;
    int n = mg_write(conn, p + off, piece);
    int err = errno;
    if (n > 0) {
      count_body(s, off, (size_t)n, head);
      total = total > INT_MAX - n ? INT_MAX : total + n;
    }
    if (n == (int)piece) {
      off += piece;
      continue;
    }
    if (s != NULL) {
      if (err != 0) /* send() failed: the client left or stopped reading */
        trail_http_client_gone(&s->req);
      else if (n < 0) /* sent, then the server stopped */
        count_body(s, off, piece, head);
      else /* the server stopped before all of it was sent */
        trail_http_response(&s->req, STOPPED_STATUS);
    }
    return n > 0 ? total : n;
  }
  return total;
}

/*
 * A response head being built: bytes go to p while they fit in cap, and
 * n counts every byte the head needs, so that a head too long for the
 * buffer is known by its size and built again in one that holds it.
 */
typedef struct head {
  char *p;
  size_t cap;
  size_t n;
} head;

static void put(head *h, const char *s, size_t len) {
  if (h->n < h->cap)
    memcpy(h->p + h->n, s, len < h->cap - h->n ? len : h->cap - h->n);
  h->n += len;
}

/* A header value up to its first CR or LF: nothing a caller passes can
 * end the header line, or the head, early. */
static void put_header(head *h, const char *name, const char *value) {
  put(h, name, strlen(name));
  put(h, ": ", 2);
  put(h, value, strcspn(value, "\r\n"));
  put(h, "\r\n", 2);
}

/*
 * The server option additional_header, which civetweb adds to the
 * responses it makes itself: one or more "Name: value" lines, separated
 * by CRLF or LF. Each line that has a colon is written with its CRLF; an
 * empty line is skipped (it would end the head).
 */
static void put_additional(head *h, const char *p) {
  while (p != NULL && *p) {
    size_t len = strcspn(p, "\n");
    size_t end = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
    const char *colon = memchr(p, ':', end);
    if (colon != NULL && colon != p) {
      put(h, p, end);
      put(h, "\r\n", 2);
    }
    p += len + (p[len] == '\n');
  }
}

/* Whether a comma-separated header value has token, in any case. */
static int has_token(const char *v, const char *token) {
  size_t tl = strlen(token);
  while (*v) {
    v += strspn(v, " \t,");
    size_t len = strcspn(v, ",");
    size_t end = len;
    while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
      end--;
    if (end == tl && strncasecmp(v, token, tl) == 0)
      return 1;
    v += len;
  }
  return 0;
}

/*
 * Whether civetweb keeps the connection open after this response, by the
 * rule civetweb's own header API applies for its Connection header: the
 * server's enable_keep_alive is "yes", and the request's Connection
 * header names keep-alive or, without one, the request is HTTP/1.1. What
 * civetweb decides beyond that rule (its must_close) is not readable;
 * the adapter's own reasons to close (error pages) are passed in.
 */
static int keeps_alive(const struct mg_connection *conn,
                       const server_options *o) {
  if (!o->keep_alive)
    return 0;
  const char *c = mg_get_header(conn, "Connection");
  if (c != NULL)
    return has_token(c, "keep-alive");
  const struct mg_request_info *ri = mg_get_request_info(conn);
  return ri != NULL && ri->http_version != NULL &&
         strcmp(ri->http_version, "1.1") == 0;
}

/* What a response of the adapter's says in its head. */
typedef struct response {
  int status;
  const char *rid;          /* "" or NULL: no X-Request-ID */
  const char *fixed;        /* header lines of the caller's, CRLF each */
  const char *additional;   /* the server's additional_header, or NULL */
  const char *content_type; /* NULL: none */
  int has_length;           /* Content-Length: length */
  size_t length;
  int close; /* Connection: close, and civetweb told to close */
} response;

/*
 * The head, in this order: the status line in the request's HTTP version
 * with civetweb's reason phrase, X-Request-ID, the caller's fixed lines,
 * additional_header, Content-Type, Content-Length, Date, Connection, and
 * the blank line.
 */
static void build_head(head *h, const struct mg_connection *conn,
                       const response *r) {
  const struct mg_request_info *ri = mg_get_request_info(conn);
  const char *text = mg_get_response_code_text(conn, r->status);
  char line[64];
  int n =
      snprintf(line, sizeof line, "HTTP/%s %d ",
               ri && ri->http_version ? ri->http_version : "1.1", r->status);
  put(h, line, n > 0 && (size_t)n < sizeof line ? (size_t)n : 0);
  put(h, text ? text : "", text ? strcspn(text, "\r\n") : 0);
  put(h, "\r\n", 2);
  if (r->rid != NULL && r->rid[0])
    put_header(h, "X-Request-ID", r->rid);
  if (r->fixed != NULL)
    put(h, r->fixed, strlen(r->fixed));
  put_additional(h, r->additional);
  if (r->content_type != NULL)
    put_header(h, "Content-Type", r->content_type);
  if (r->has_length) {
    snprintf(line, sizeof line, "%zu", r->length);
    put_header(h, "Content-Length", line);
  }
  trail__imf_fixdate(line, sizeof line);
  put_header(h, "Date", line);
  put_header(h, "Connection", r->close ? "close" : "keep-alive");
  put(h, "\r\n", 2);
}

/* The stack buffer a response goes out of: head and body in one write
 * when both fit, else the head, then the body from where it is. */
#define RESPONSE_BUF 16384

/*
 * Writes a response: its head, then body_len bytes of body (0: none),
 * through the counting write, the body's bytes alone counted. Returns 0,
 * or -ENOMEM when a head longer than the stack buffer finds no memory
 * (then nothing was sent).
 */
static int send_response(struct mg_connection *conn, slot *s, const response *r,
                         const void *body, size_t body_len) {
  char stack[RESPONSE_BUF];
  head h = {stack, sizeof stack, 0};
  if (r->close)
    mg_disable_connection_keep_alive(conn);
  build_head(&h, conn, r);
  if (h.n + body_len <= sizeof stack) {
    if (body_len > 0)
      memcpy(stack + h.n, body, body_len);
    counted_write(s, conn, stack, h.n + body_len, h.n);
    return 0;
  }
  char *big = h.n > sizeof stack ? malloc(h.n) : stack;
  if (big == NULL)
    return -ENOMEM;
  if (big != stack) {
    h = (head){big, h.n, 0};
    build_head(&h, conn, r);
  }
  int sent = counted_write(s, conn, big, h.n, h.n);
  if (big != stack)
    free(big);
  if (sent >= 0 && (size_t)sent == h.n && body_len > 0)
    counted_write(s, conn, body, body_len, 0);
  return 0;
}

/*
 * Claims the response of the request: a second one is refused. trail
 * writes its responses past civetweb's header API, so civetweb keeps no
 * state of them: the slot does, for a request of the adapter's. The call
 * to mg_response_header_start() is for civetweb's bookkeeping alone (its
 * header list is never sent): it records the status as civetweb's, and
 * refuses (-3) when the handler has already started a response with
 * civetweb's header API, or when trail already answered outside a request
 * of the adapter's.
 */
static int claim(struct mg_connection *conn, slot *s, int status) {
  if (s != NULL && s->sent)
    return -EALREADY;
  int rc = mg_response_header_start(conn, status);
  if (rc == -3)
    return -EALREADY;
  if (rc < 0)
    return -EINVAL;
  if (s != NULL)
    s->sent = 1;
  return 0;
}

/*
 * Sends a response for a request handler, head and body in one write
 * (send_response()). The Content-Length of a HEAD response is the length
 * a GET would have had; its body is not sent.
 */
TRAIL_API int trail_civetweb_send(struct mg_connection *conn, int status,
                                  const char *content_type, const void *body,
                                  size_t len) {
  if (conn == NULL || status < 100 || status > 999 || (body == NULL && len))
    return -EINVAL;
  slot *s = slot_of(conn);
  int rc = claim(conn, s, status);
  if (rc < 0)
    return rc;
  server_options tmp;
  const server_options *o = options_of(s, conn, &tmp);
  response r = {.status = status,
                .rid = s ? trail_http_request_id(&s->req) : NULL,
                .additional = o->additional,
                .content_type = content_type,
                .has_length = status >= 200 && status != 204,
                .length = len,
                .close = !keeps_alive(conn, o)};
  if (s != NULL)
    trail_http_response(&s->req, status);
  rc = send_response(conn, s, &r, body, has_body(s, conn, status) ? len : 0);
  return rc < 0 ? rc : status;
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
  return counted_write(slot_of(conn), conn, buf, len, 0);
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
 * X-Request-ID, in one write. The connection is closed after it, as
 * civetweb does after an error: what follows on the connection may not
 * be a request.
 */
static int send_error(struct mg_connection *conn, slot *s, int status,
                      const char *msg) {
  int rc = claim(conn, s, status);
  if (rc < 0)
    return rc;
  server_options tmp;
  char body[1024];
  int len = 0;
  int with_body = has_body(s, conn, status);
  if (with_body) {
    const char *text = mg_get_response_code_text(conn, status);
    len = snprintf(body, sizeof body, "Error %d: %s\n%s", status,
                   text ? text : "", msg ? msg : "");
    if (len < 0)
      len = 0;
    if ((size_t)len >= sizeof body)
      len = (int)sizeof body - 1;
  }
  response r = {.status = status,
                .rid = trail_http_request_id(&s->req),
                .fixed = "Cache-Control: no-cache, no-store, "
                         "must-revalidate, private, max-age=0\r\n"
                         "Expires: 0\r\nPragma: no-cache\r\n",
                .additional = options_of(s, conn, &tmp)->additional,
                .content_type = with_body ? "text/plain; charset=utf-8" : NULL,
                .has_length = with_body,
                .length = (size_t)len,
                .close = 1};
  trail_http_response(&s->req, status);
  return send_response(conn, s, &r, body, (size_t)len);
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
