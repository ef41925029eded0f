/*
 * The libmicrohttpd adapter (include/trail/mhd.h): MHD's request start hook
 * (MHD_OPTION_URI_LOG_CALLBACK) begins the middleware request, the first
 * access-handler call feeds it every header, each access-handler call runs
 * the application with the request's context entered, and MHD's completion
 * hook (MHD_OPTION_NOTIFY_COMPLETED) writes the access line and frees the
 * state.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trail/http.h>
#include <trail/mhd.h>

#include "../state_cache.h"
#include "mhd_common.h"

/*
 * One request, from MHD's start hook to its completion hook. MHD keeps the
 * pointer in the request's con_cls, which is why the application's own
 * con_cls lives here (app_cls) and the application is handed its address.
 * MHD calls the hooks and the handler of one request on one thread at a
 * time, so nothing here needs a lock.
 */
typedef struct mhd_request {
  struct MHD_Connection *conn;
  void *app_cls;        /* the application's *con_cls */
  uint8_t headers_read; /* the first access-handler call has run */
  uint8_t app_aware;    /* the application has seen the request */
  uint8_t app_refused;  /* its handler returned MHD_NO */
  uint8_t queued;       /* a response was queued through the adapter */
  uint64_t body_len;    /* its body's length, 0 when unknown or none */
  /* Last: only what precedes it is cleared; trail_http_begin() sets it. */
  trail_http_request http;
} mhd_request;

/*
 * The request whose access handler (or completion callback) runs on this
 * thread: how trail_mhd_queue_response() finds the request of a connection,
 * since MHD gives the application no way from a connection to its con_cls.
 */
static _Thread_local mhd_request *current;

/* Finished requests' states, for the next ones (adapters/state_cache.h). */
static trail__state_cache states = TRAIL__STATE_CACHE_INIT;

static trail_logger *http_logger(const trail_mhd *tm) {
  return tm->cfg_ && tm->cfg_->logger ? tm->cfg_->logger
                                      : trail_logger_get("http");
}

/*
 * Sets tm up: nothing is allocated, so there is nothing to free. The
 * application's handler and closure are kept for trail_mhd_access_handler,
 * which MHD calls in their place.
 */
TRAIL_API void trail_mhd_init(trail_mhd *tm, const trail_http_config *cfg,
                              MHD_AccessHandlerCallback handler,
                              void *handler_cls) {
  if (tm == NULL)
    return;
  memset(tm, 0, sizeof *tm);
  tm->cfg_ = cfg;
  tm->handler_ = handler;
  tm->handler_cls_ = handler_cls;
}

/*
 * The application's completion callback. MHD keeps one per daemon and the
 * adapter needs it, so the application's is called from the adapter's: with
 * the request's context entered (its cleanup lines carry the ids), with its
 * own con_cls, before the access line (which stays the request's last line).
 */
TRAIL_API void trail_mhd_set_completed(trail_mhd *tm,
                                       MHD_RequestCompletedCallback completed,
                                       void *cls) {
  if (tm == NULL)
    return;
  tm->completed_ = completed;
  tm->completed_cls_ = cls;
}

/*
 * The application's start hook, for a server that had one: it runs after
 * the adapter's, and what it returns is the application's con_cls, as MHD
 * would have made it.
 */
TRAIL_API void trail_mhd_set_uri_log(trail_mhd *tm, trail_mhd_uri_log_fn fn,
                                     void *cls) {
  if (tm == NULL)
    return;
  tm->uri_log_ = fn;
  tm->uri_log_cls_ = cls;
}

/* The client's address as text, "" when MHD cannot say. */
/*
 * The request's start: MHD calls this once per request, right after the
 * request line, on the thread that will serve the request, and makes the
 * return value the request's con_cls. The method is not known yet (MHD
 * tells it only to the access handler), the headers are not parsed yet; the
 * start time, the path as the client sent it (query included, cut by the
 * core unless configured) and the client's address are. Returns NULL when
 * out of memory: the access handler then refuses the request.
 */
TRAIL_API void *trail_mhd_uri_log(void *cls, const char *uri,
                                  struct MHD_Connection *connection) {
  trail_mhd *tm = cls;
  char addr[TRAIL_HTTP_ADDR_MAX + 1];
  if (tm == NULL)
    return NULL;
  __atomic_store_n(&tm->started_, 1, __ATOMIC_RELAXED);
  mhd_request *r = trail__state_get(&states, sizeof *r);
  if (r == NULL)
    return NULL;
  memset(r, 0, offsetof(mhd_request, http));
  r->conn = connection;
  trail__mhd_remote_addr(connection, addr, sizeof addr);
  trail_http_begin(&r->http, tm->cfg_, NULL, uri, TRAIL_NTS,
                   addr[0] ? addr : NULL);
  if (tm->uri_log_ != NULL) {
    r->app_cls = tm->uri_log_(tm->uri_log_cls_, uri, connection);
    r->app_aware = 1;
  }
  return r;
}

/*
 * A request without the adapter's state: the start hook ran out of memory,
 * or it never ran because TRAIL_MHD_OPTIONS was not passed to the daemon.
 * The second is a setup error worth one loud line.
 */
static void missing_state(trail_mhd *tm) {
  if (__atomic_load_n(&tm->started_, __ATOMIC_RELAXED))
    return;
  if (__atomic_exchange_n(&tm->warned_, 1, __ATOMIC_RELAXED))
    return;
  trail_error(http_logger(tm),
              "libmicrohttpd request without trail state: "
              "pass TRAIL_MHD_OPTIONS(tm) to MHD_start_daemon");
}

/*
 * MHD's access handler, standing in for the application's. On a request's
 * first call, the headers are complete and MHD gives them out (not before):
 * they are all fed to the core, which decides the context. Every call (a
 * POST body arrives over several, and in internal-polling mode one thread
 * interleaves the calls of many requests) runs the application's handler
 * with the context entered and leaves it after, restoring whatever was
 * current, so no request's context stays current between calls. The
 * application gets its own con_cls slot and sees NULL on its first call, as
 * without trail.
 */
TRAIL_API TRAIL_MHD_RESULT trail_mhd_access_handler(
    void *cls, struct MHD_Connection *connection, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls) {
  trail_mhd *tm = cls;
  mhd_request *r = con_cls ? *con_cls : NULL;
  if (tm == NULL)
    return MHD_NO;
  if (r == NULL) {
    missing_state(tm);
    return MHD_NO;
  }
  if (!r->headers_read) {
    r->headers_read = 1;
    /* The method comes only now, after trail_http_begin() ran in the start
     * hook; a second begin would restart the clock. */
    trail_http_set_method(&r->http, method);
    trail__mhd_read_headers(r->conn, &r->http);
  }
  if (tm->handler_ == NULL)
    return MHD_NO;

  mhd_request *saved = current;
  current = r;
  trail_ctx *prev = trail_ctx_enter(trail_http_ctx(&r->http));
  r->app_aware = 1;
  TRAIL_MHD_RESULT ret =
      tm->handler_(tm->handler_cls_, connection, url, method, version,
                   upload_data, upload_data_size, &r->app_cls);
  trail_ctx_leave(prev);
  current = saved;
  if (ret != MHD_YES)
    r->app_refused = 1;
  return ret;
}

/*
 * MHD's completion hook: called once per request that the start hook saw,
 * on the thread that served it (or the one stopping the daemon), whether
 * the response went out, the client left, or MHD gave up. The application's
 * own callback runs first, with the context entered; then the access line,
 * written with the request's context explicitly, whatever is current here;
 * then the state is freed.
 */
TRAIL_API void trail_mhd_completed(void *cls, struct MHD_Connection *connection,
                                   void **con_cls,
                                   enum MHD_RequestTerminationCode toe) {
  trail_mhd *tm = cls;
  mhd_request *r = con_cls ? *con_cls : NULL;
  if (tm == NULL || r == NULL)
    return;
  *con_cls = NULL;
  /* MHD may have answered (400, 431) before the handler ever ran. */
  trail_http_headers_done(&r->http);
  if (r->app_aware && tm->completed_ != NULL) {
    mhd_request *saved = current;
    current = r;
    trail_ctx *prev = trail_ctx_enter(trail_http_ctx(&r->http));
    tm->completed_(tm->completed_cls_, connection, &r->app_cls, toe);
    trail_ctx_leave(prev);
    current = saved;
  }
  trail_http_end(&r->http,
                 trail__mhd_end_status(&r->http, connection, toe, r->queued,
                                       r->app_refused),
                 trail__mhd_end_bytes(toe, r->body_len));
  trail__state_put(&states, r);
}

/*
 * The echo rule of trail/http.h: exactly one X-Request-ID, trail's. One the
 * handler put on the response is removed first (MHD deletes a header by
 * name and value, so each is looked up, then deleted).
 */
static void set_request_id(struct MHD_Response *response, const char *id) {
  const char *v;
  while ((v = MHD_get_response_header(response, "X-Request-ID")) != NULL)
    if (MHD_del_response_header(response, "X-Request-ID", v) != MHD_YES)
      break;
  MHD_add_response_header(response, "X-Request-ID", id);
}

/*
 * MHD_queue_response(), plus what only the adapter can do: the response
 * gets the request's X-Request-ID, and the body length is kept for the
 * access line (MHD reports no byte count; its status it says at the end). The
 * request is found through the thread's current request and checked against the
 * connection, so a call from anywhere else degrades to MHD_queue_response().
 */
TRAIL_API TRAIL_MHD_RESULT
trail_mhd_queue_response(struct MHD_Connection *connection, unsigned int status,
                         struct MHD_Response *response, uint64_t body_len) {
  mhd_request *r = current;
  if (r == NULL || r->conn != connection || response == NULL)
    return MHD_queue_response(connection, status, response);
  set_request_id(response, trail_http_request_id(&r->http));
  TRAIL_MHD_RESULT ret = MHD_queue_response(connection, status, response);
  if (ret == MHD_YES) {
    r->queued = 1;
    /* Status and bytes are known sent only at the end: what MHD says it
     * sent (trail__mhd_end_status), this length when it did
     * (trail__mhd_end_bytes). */
    r->body_len = body_len != MHD_SIZE_UNKNOWN ? body_len : 0;
  }
  return ret;
}

/*
 * The common case in one call: a response made from a copy of body (so the
 * caller's buffer may be on its stack), its Content-Type, queued with the
 * request id, and released (MHD holds its own reference until sent).
 */
TRAIL_API TRAIL_MHD_RESULT
trail_mhd_queue_buffer(struct MHD_Connection *connection, unsigned int status,
                       const void *body, size_t len, const char *content_type) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      len, (void *)(uintptr_t)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
  if (resp == NULL)
    return MHD_NO;
  if (content_type != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  TRAIL_MHD_RESULT ret =
      trail_mhd_queue_response(connection, status, resp, (uint64_t)len);
  MHD_destroy_response(resp);
  return ret;
}

/*
 * The middleware request behind connection, for code running inside its
 * access handler or completion callback on this thread; NULL anywhere else,
 * since MHD offers no lookup from a connection to its con_cls.
 */
TRAIL_API trail_http_request *
trail_mhd_request(struct MHD_Connection *connection) {
  mhd_request *r = current;
  return r != NULL && r->conn == connection ? &r->http : NULL;
}

/*
 * MHD's diagnostics ("Error processing request ...", "Socket has been
 * disconnected ...") as the core's server-error lines: warn, logger
 * "http", the request's context when MHD complains from inside a handler
 * of this thread (trail_http_server_error() does the rest: the line end
 * dropped, the text data from here on, never formatted again).
 */
TRAIL_API void trail_mhd_error_log(void *cls, const char *fmt, va_list ap) {
  char buf[1024];
  (void)cls;
  if (fmt == NULL)
    return;
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
  trail_http_server_error(current ? &current->http : NULL, buf, len);
}
