/*
 * trail's civetweb adapter (libtrail-civetweb, a library of its own): every
 * request a civetweb server serves gets its context from its headers, the
 * request handlers run with that context entered on the worker thread, the
 * response carries X-Request-ID, and one access line is written when
 * civetweb says the request is over.
 *
 *   static trail_http_config cfg;        // outlives the server
 *   trail_http_config_init(&cfg);
 *   struct mg_callbacks cb = {0};
 *   trail_civetweb_callbacks(&cb, &cfg); // begin_request, end_request,
 *                                        // http_error (and log_message)
 *   ctx = mg_start(&cb, user_data, options);
 *
 * and in the request handlers, send with trail_civetweb_send() (or add the
 * header with trail_civetweb_header_add() and write the body with
 * trail_civetweb_write()): civetweb 1.15 tells nobody how many body bytes
 * a response had, and a handler that returns 1 reports status 1.
 *
 * A server that already has its own begin_request, end_request or
 * http_error calls trail_civetweb_begin(), trail_civetweb_end() and
 * trail_civetweb_http_error() from them instead.
 *
 * Reference: docs/middleware-civetweb.md. Copyright (c) 2026 the trail
 * developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_CIVETWEB_H
#define TRAIL_CIVETWEB_H

#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>
#include <trail.h>
#include <trail/http.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Sets callbacks->begin_request, end_request and http_error to trail's
 * hooks, and log_message too when it is NULL (civetweb's diagnostics become
 * trail_http_server_error() lines: warn, logger "http", with the request's
 * context when known). cfg (NULL: defaults) is borrowed and
 * must outlive every server started with these callbacks; it is shared by
 * all of them. Call it before mg_start(). Returns 0, -EINVAL for a NULL
 * callbacks, or -EEXIST when one of the three hooks is already set (then
 * nothing is changed: call the functions below from your own hooks).
 */
TRAIL_API int trail_civetweb_callbacks(struct mg_callbacks *callbacks,
                                       const trail_http_config *cfg);

/*
 * The request start: reads the request line and every header civetweb
 * parsed, decides the context, and enters it on the calling (worker)
 * thread. Call it from begin_request; returns 0, which begin_request
 * returns to let civetweb go on. cfg (NULL: defaults) is borrowed until
 * the request ends.
 */
TRAIL_API int trail_civetweb_begin(struct mg_connection *conn,
                                   const trail_http_config *cfg);
/*
 * The request end: writes the access line, civetweb's reply_status_code
 * being the server's status of trail_http_end() (a client gone and the
 * status sent through the adapter come first), and leaves the context. Call it
 * from end_request. Nothing when no request of conn is in flight on the calling
 * thread.
 */
TRAIL_API void trail_civetweb_end(const struct mg_connection *conn,
                                  int reply_status_code);
/*
 * civetweb's http_error hook: sends civetweb's error page (status, its
 * text, msg) with X-Request-ID, in one write, and returns 0 (handled). For an
 * error civetweb raises before begin_request (a request it could not parse), it
 * also makes the request's context, with cfg (NULL: defaults; borrowed for the
 * call), and writes its access line. Returns 1 (civetweb sends its own page,
 * without the header) when the server has error_pages configured or a response
 * was already started.
 */
TRAIL_API int trail_civetweb_http_error(struct mg_connection *conn,
                                        const trail_http_config *cfg,
                                        int status, const char *msg);

/*
 * Sends a whole response in one mg_write() (head and body, when they fit
 * 16 KiB; else the head, then the body): the status line in the request's
 * HTTP version with civetweb's reason phrase, X-Request-ID, the server's
 * additional_header lines, Content-Type (NULL: none), Content-Length (not
 * for 1xx and 204; a HEAD gets the GET's), Date (now, IMF-fixdate),
 * Connection (keep-alive or close, by civetweb's keep-alive rule; on close
 * civetweb is told to close), then len bytes of body (none for HEAD, 1xx,
 * 204 and 304). civetweb's own header API would send each of those lines
 * in a send() of its own. Records status and body bytes (not the head's)
 * for the access line. Returns status, which a request handler returns to
 * civetweb, or a negative code when nothing was sent (-EINVAL for a status
 * outside 100..999, -EALREADY when a response was already sent or
 * started, -ENOMEM for a head over 16 KiB without memory); a client that
 * left during the write makes the access line say 499.
 */
TRAIL_API int trail_civetweb_send(struct mg_connection *conn, int status,
                                  const char *content_type, const void *body,
                                  size_t len);
/*
 * For a response built with mg_response_header_start(): adds
 * "X-Request-ID: <the request's id>" to it (civetweb cannot remove a
 * header: under the echo rule of trail/http.h, a handler that calls this
 * adds no X-Request-ID of its own). civetweb sends such a response one
 * send() per header line, this one included; trail_civetweb_send() sends
 * a whole response in one. Returns 0, a negative civetweb
 * code, or -ENOENT when no request of conn is in flight on this thread.
 */
TRAIL_API int trail_civetweb_header_add(struct mg_connection *conn);
/*
 * mg_write(), counting the body bytes for the access line (a failed write:
 * the client left, status 499). Returns the bytes written (at most
 * INT_MAX), or what mg_write() returned on a failure (0 or -1).
 */
TRAIL_API int trail_civetweb_write(struct mg_connection *conn, const void *buf,
                                   size_t len);

/*
 * The middleware request of conn while it is in flight on the calling
 * thread (between begin_request and end_request), NULL elsewhere: for
 * trail_http_set_user(), trail_http_ctx(), trail_http_request_id() (which
 * gives "" for NULL) and the response reports of trail/http.h.
 */
TRAIL_API trail_http_request *
trail_civetweb_request(const struct mg_connection *conn);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_CIVETWEB_H */
