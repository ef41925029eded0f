/*
 * trail's adapter for libevent's evhttp server: every request gets its
 * context from trail's middleware core, entered around the application's
 * callbacks, an X-Request-ID response header, and one access line with the
 * status and body bytes really sent, whether the reply is sent at once,
 * later from a timer, or never because the client left first.
 *
 * The few lines a server adds:
 *
 *   static trail_http_config cfg;             // trail_http_config_init()
 *   static trail_evhttp_handler h;
 *   trail_evhttp_handler_init(&h, &cfg, on_request, app);
 *   evhttp_set_gencb(http, trail_evhttp_handle, &h);
 *   ...and reply with trail_evhttp_send_reply() instead of
 *   evhttp_send_reply(); a callback that runs later for the request enters
 *   its context with trail_evhttp_enter() and leaves it before returning.
 *
 * Link with libtrail-evhttp (pkg-config trail-evhttp, CMake
 * trail::trail_evhttp). Reference: docs/middleware-evhttp.md.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_EVHTTP_H
#define TRAIL_EVHTTP_H

#include <stdbool.h>

#include <trail.h>
#include <trail/http.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libevent's types, declared here so that this header needs no libevent
 * include of its own; the application includes <event2/http.h>. */
struct evhttp_request;
struct evbuffer;

/* The application's request callback, as evhttp_set_gencb() takes it. */
typedef void (*trail_evhttp_fn)(struct evhttp_request *req, void *arg);
/*
 * Called once per request served through a handler, when the adapter is
 * done with it (the access line is written and evhttp has finished with
 * the request or its connection): status is the one sent, or 499. The
 * request itself is not passed: it may already be freed.
 */
typedef void (*trail_evhttp_done_fn)(void *arg, int status);

/*
 * What trail_evhttp_handle() calls: allocated by the caller (static, or in
 * the application's server struct), it must outlive the evhttp server it
 * is registered with. The members are public and read on every request;
 * reserved must stay zero.
 */
typedef struct trail_evhttp_handler {
  const trail_http_config *cfg; /* borrowed; NULL: the defaults */
  trail_evhttp_fn cb;           /* the application's callback */
  void *arg;                    /* its argument, and done's */
  trail_evhttp_done_fn done;    /* optional; NULL by handler_init */
  void *reserved[4];
} trail_evhttp_handler;

/* Fills h (done NULL). cfg is borrowed, and must outlive every request it
 * serves. */
TRAIL_API void trail_evhttp_handler_init(trail_evhttp_handler *h,
                                         const trail_http_config *cfg,
                                         trail_evhttp_fn cb, void *arg);
/*
 * An evhttp request callback (arg: a trail_evhttp_handler *): starts the
 * request with trail_evhttp_begin(), then calls h->cb with the request's
 * context entered and leaves it when h->cb returns.
 */
TRAIL_API void trail_evhttp_handle(struct evhttp_request *req, void *handler);

/*
 * Starts trail's handling of req, for servers that call it at the top of
 * their own callback instead of using trail_evhttp_handle(): feeds every
 * request header to the middleware core, decides the ids, sets the
 * X-Request-ID response header and registers the completion and close
 * callbacks that write the access line. Once per request: called again
 * while req's context is current it does nothing. Returns 0, -EINVAL for a
 * NULL req or a request without a connection, or -ENOMEM (req is then
 * served without trail).
 */
TRAIL_API int trail_evhttp_begin(struct evhttp_request *req,
                                 const trail_http_config *cfg);

/*
 * The middleware request of req, NULL when req was not begun (or is done):
 * for trail_http_ctx() (explicit logging from deferred work,
 * trail_ctx_info(ctx, ...)), trail_http_request_id() (the X-Request-ID
 * echoed; "" for NULL), trail_http_set_user() and the response reports of
 * trail/http.h. It lives until evhttp is done with the request.
 */
TRAIL_API trail_http_request *trail_evhttp_request(struct evhttp_request *req);
/*
 * Enters req's context on the calling thread and returns the previous one
 * for trail_ctx_leave(). Wrap each deferred callback of the request with it
 * (a timer, a backend reply): never leave it entered across the event loop.
 * When req was not begun nothing changes and the current context is
 * returned.
 */
TRAIL_API trail_ctx *trail_evhttp_enter(struct evhttp_request *req);
/* Whether the client closed its connection before the reply was sent (its
 * access line, status 499, is then already written). */
TRAIL_API bool trail_evhttp_client_gone(struct evhttp_request *req);
/*
 * The number of requests begun and not yet finished (process-wide: every
 * evhttp server of the process), for a graceful stop: stop accepting, then
 * leave the loop once it is 0 (the handler's done hook says when).
 */
TRAIL_API size_t trail_evhttp_pending(void);

/*
 * evhttp_send_reply() that also reports the status and the body bytes
 * (body plus what the request's output buffer already holds) to the core,
 * and sets the X-Request-ID header (replacing one the handler set: exactly
 * one goes out, trail's). body is borrowed and drained, as evhttp_send_reply()
 * drains it; NULL for no body. When the client already left, nothing is
 * written: the connection is closed and req is freed. Either way req must
 * not be used after the call.
 */
TRAIL_API void trail_evhttp_send_reply(struct evhttp_request *req, int code,
                                       const char *reason,
                                       struct evbuffer *body);
/*
 * An error reply that keeps X-Request-ID, unlike evhttp_send_error(),
 * which clears every response header: a short text/plain body with the
 * code and reason (NULL: the standard phrase). req is done after the call.
 */
TRAIL_API void trail_evhttp_send_error(struct evhttp_request *req, int code,
                                       const char *reason);
/* evhttp_send_reply_chunk() that counts the chunk's bytes for the access
 * line of a reply started with evhttp_send_reply_start(). */
TRAIL_API void trail_evhttp_send_reply_chunk(struct evhttp_request *req,
                                             struct evbuffer *chunk);

/*
 * A libevent log callback, for event_set_log_callback(trail_evhttp_log):
 * libevent's diagnostics (warnings, errors; not its debug messages) become
 * trail_http_server_error() lines, warn, logger "http", with whatever
 * context is current.
 */
TRAIL_API void trail_evhttp_log(int severity, const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_EVHTTP_H */
