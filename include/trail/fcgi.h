/*
 * trail's FastCGI adapter (libtrail-fcgi, a library of its own) for
 * services on libfcgi's FCGX_* interface behind a web server such as nginx:
 * each request gets its context from the FastCGI params (the request's
 * HTTP headers arrive as HTTP_* params), the application runs with that
 * context entered, the response carries X-Request-ID, and one access line
 * is written when the request is finished.
 *
 * One trail_fcgi per worker thread, reused request after request:
 *
 *   static trail_http_config cfg;        // trail_http_config_init()
 *   trail_fcgi tf;                       // per thread; holds FCGX_Request
 *   trail_fcgi_init(&tf, &cfg, listen_fd);
 *   while (FCGX_Accept_r(&tf.request) >= 0) {   // serialised if you like
 *     trail_fcgi_begin(&tf);             // ids decided, context entered
 *     ... read params and body from tf.request as usual ...
 *     trail_fcgi_respond(&tf, 200, headers, body, len);
 *     trail_fcgi_end(&tf);               // context left, FCGX_Finish_r,
 *   }                                    // access line
 *
 * FCGX_Init() once per process before the first trail_fcgi_init(). Link
 * with libtrail-fcgi (pkg-config trail-fcgi, CMake trail::trail_fcgi).
 * Reference: docs/middleware-fcgi.md.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_FCGI_H
#define TRAIL_FCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>
#include <trail.h>
#include <trail/http.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A worker's FastCGI request and its middleware request, caller-allocated
 * (on the worker's stack, in an array), reused for every request the worker
 * accepts; no malloc. `request` is libfcgi's own, public: accept into it,
 * read its params, its `in` stream and, for a response written by hand,
 * its `out` stream. The members ending in `_` are private. Because it holds
 * an FCGX_Request, its layout follows libfcgi's header.
 */
typedef struct trail_fcgi {
  FCGX_Request request;
  trail_http_request http_;
  const trail_http_config *cfg_;
  trail_ctx *prev_;          /* what was current before trail_fcgi_begin() */
  int state_;                /* 0 idle, 1 begun, 2 response head written */
  int status_;               /* the status of the head written */
  int gone_;                 /* a write to the web server failed */
  struct trail_fcgi *outer_; /* the thread's previous begun trail_fcgi */
  void *reserved_[4];
} trail_fcgi;

/*
 * Sets tf up and calls FCGX_InitRequest(&tf->request, listen_fd, 0);
 * returns what that returns (0). cfg is the middleware configuration (NULL:
 * defaults), borrowed: it must outlive every request tf serves. listen_fd is
 * a listening socket (FCGX_OpenSocket(), or one the application bound),
 * 0 for the one the web server passed (FCGI_LISTENSOCK_FILENO).
 */
TRAIL_API int trail_fcgi_init(trail_fcgi *tf, const trail_http_config *cfg,
                              int listen_fd);

/*
 * Starts a request FCGX_Accept_r() has just accepted into tf->request:
 * records its start, method (REQUEST_METHOD), path (REQUEST_URI, else
 * SCRIPT_NAME + PATH_INFO + "?" QUERY_STRING), client address (REMOTE_ADDR)
 * and feeds every HTTP_* param as a request header (HTTP_X_REQUEST_ID as
 * X-Request-ID, HTTP_TRACEPARENT, HTTP_TRACESTATE, HTTP_USER_AGENT, the
 * configured user header), decides the ids and enters the request's context
 * on the calling thread, until trail_fcgi_end() on that same thread. A
 * previous request of tf that was never ended (accepted again without
 * trail_fcgi_end()) gets its access line here, with what it had sent.
 */
TRAIL_API void trail_fcgi_begin(trail_fcgi *tf);

/*
 * Writes the response head: "Status: <status> <reason>", "X-Request-ID:
 * <the request's id>" (exactly one, trail's: an X-Request-ID among headers
 * is dropped, as is a Status), then headers ("Name: value" strings,
 * NULL-terminated; NULL: none; one holding a CR or LF is dropped), then the
 * blank line. Reports the status to the core. Returns 0, -1 when the head
 * was already written or a write failed (the client is then counted gone).
 */
TRAIL_API int trail_fcgi_head(trail_fcgi *tf, int status,
                              const char *const *headers);
/*
 * Writes len body bytes after the head, counting those that were written
 * for the access line; writes nothing where trail_http_no_body() says the
 * response has no body (HEAD, 1xx, 204, 304), and returns 0 then. -1 when a
 * write failed (FCGX_PutStr() < 0): the client is counted gone (499).
 */
TRAIL_API int trail_fcgi_write(trail_fcgi *tf, const void *body, size_t len);
/*
 * The whole response at once: trail_fcgi_head() with headers plus
 * "Content-Length: len" (not for 1xx, 204 and 304), then trail_fcgi_write().
 */
TRAIL_API int trail_fcgi_respond(trail_fcgi *tf, int status,
                                 const char *const *headers, const void *body,
                                 size_t len);

/*
 * Ends the request: a response not started yet becomes a bodiless 500
 * (the handler gave none); the output is flushed (a failure counts the
 * client gone), the context is left (the one current before
 * trail_fcgi_begin() is current again), FCGX_Finish_r() completes the
 * request for the web server, and the access line is written. tf is ready
 * for the next FCGX_Accept_r(). Nothing happens for a tf not begun.
 */
TRAIL_API void trail_fcgi_end(trail_fcgi *tf);

/*
 * The middleware request of req (a trail_fcgi's `request`) between
 * trail_fcgi_begin() and trail_fcgi_end() on the calling thread, NULL
 * elsewhere: for trail_http_set_user(), trail_http_ctx() and
 * trail_http_request_id().
 */
TRAIL_API trail_http_request *trail_fcgi_request(FCGX_Request *req);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_FCGI_H */
