/*
 * trail's libmicrohttpd adapter (libtrail-mhd, a library of its own): every
 * request served by an MHD daemon gets its context from its headers, the
 * application's access handler runs with that context entered, the response
 * carries X-Request-ID, and one access line is written when MHD says the
 * request is over.
 *
 *   static trail_mhd tm;                 // outlives the daemon
 *   trail_mhd_init(&tm, &cfg, my_handler, my_cls);
 *   d = MHD_start_daemon(flags, port, NULL, NULL,
 *                        trail_mhd_access_handler, &tm,  // was my_handler
 *                        TRAIL_MHD_OPTIONS(&tm),
 *                        ... your other options ...,
 *                        MHD_OPTION_END);
 *
 * and in my_handler, queue responses with trail_mhd_queue_response() (or
 * trail_mhd_queue_buffer()) instead of MHD_queue_response(): MHD tells
 * nobody how long a body is, and the response needs the request id.
 *
 * The adapter takes MHD_OPTION_URI_LOG_CALLBACK (MHD's request start hook)
 * and MHD_OPTION_NOTIFY_COMPLETED (its end hook); give yours to
 * trail_mhd_set_uri_log() and trail_mhd_set_completed() instead. my_handler
 * sees *con_cls exactly as it would without trail: NULL on the first call,
 * then whatever it stored there.
 *
 * Reference: docs/middleware-mhd.md. Copyright (c) 2026 the trail
 * developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_MHD_H
#define TRAIL_MHD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>
#include <trail.h>
#include <trail/http.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What MHD's callbacks return: enum MHD_Result from 0.9.71 on, int before. */
#if MHD_VERSION >= 0x00097002
#define TRAIL_MHD_RESULT enum MHD_Result
#else
#define TRAIL_MHD_RESULT int
#endif

/* The shape of MHD_OPTION_URI_LOG_CALLBACK's function (MHD names none). */
typedef void *(*trail_mhd_uri_log_fn)(void *cls, const char *uri,
                                      struct MHD_Connection *connection);

/*
 * The adapter's state for one daemon (or several sharing one handler).
 * Caller-allocated; it must outlive the daemon (MHD_stop_daemon() has
 * returned). Set up before MHD_start_daemon(), read-only afterwards. All
 * members are private.
 */
typedef struct trail_mhd {
  const trail_http_config *cfg_;
  MHD_AccessHandlerCallback handler_;
  void *handler_cls_;
  MHD_RequestCompletedCallback completed_;
  void *completed_cls_;
  trail_mhd_uri_log_fn uri_log_;
  void *uri_log_cls_;
  int started_; /* a start hook ran: the options were passed */
  int warned_;  /* the missing-options error was written */
  void *reserved_[4];
} trail_mhd;

/*
 * Sets tm up for the application's access handler and its closure. cfg is
 * the middleware configuration (NULL: defaults), borrowed: it must outlive
 * the daemon.
 */
TRAIL_API void trail_mhd_init(trail_mhd *tm, const trail_http_config *cfg,
                              MHD_AccessHandlerCallback handler,
                              void *handler_cls);
/* The application's own MHD_OPTION_NOTIFY_COMPLETED callback (optional). */
TRAIL_API void trail_mhd_set_completed(trail_mhd *tm,
                                       MHD_RequestCompletedCallback completed,
                                       void *cls);
/* The application's own MHD_OPTION_URI_LOG_CALLBACK callback (optional). */
TRAIL_API void trail_mhd_set_uri_log(trail_mhd *tm, trail_mhd_uri_log_fn fn,
                                     void *cls);

/*
 * The options to pass to MHD_start_daemon() (or MHD_OPTION_ARRAY), with tm's
 * address: the request start hook and the completion hook.
 */
#define TRAIL_MHD_OPTIONS(tm)                                                  \
  MHD_OPTION_URI_LOG_CALLBACK, trail_mhd_uri_log, (void *)(tm),                \
      MHD_OPTION_NOTIFY_COMPLETED, trail_mhd_completed, (void *)(tm)

/* The three callbacks behind TRAIL_MHD_OPTIONS and the handler; cls is tm. */
TRAIL_API void *trail_mhd_uri_log(void *cls, const char *uri,
                                  struct MHD_Connection *connection);
TRAIL_API TRAIL_MHD_RESULT trail_mhd_access_handler(
    void *cls, struct MHD_Connection *connection, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls);
TRAIL_API void trail_mhd_completed(void *cls, struct MHD_Connection *connection,
                                   void **con_cls,
                                   enum MHD_RequestTerminationCode toe);

/*
 * MHD_queue_response() for a response whose body is body_len bytes: sets
 * "X-Request-ID: <the request's id>" on response (replacing one the handler
 * set: exactly one goes out, trail's), queues it, and reports status and
 * length to the core for the access line (trail_http_response(),
 * trail_http_body(); no bytes where trail_http_no_body() says so, nor for
 * MHD_SIZE_UNKNOWN). Call it from the access handler, as
 * MHD_queue_response(). response must be this request's own (not one shared
 * with other requests, which would get this request's id). Outside a
 * handler of a trail_mhd daemon it is MHD_queue_response().
 */
TRAIL_API TRAIL_MHD_RESULT
trail_mhd_queue_response(struct MHD_Connection *connection, unsigned int status,
                         struct MHD_Response *response, uint64_t body_len);
/*
 * Queues a response made here from a copy of body (len bytes), with
 * Content-Type content_type (NULL: none), as trail_mhd_queue_response().
 * MHD_NO when the response cannot be made.
 */
TRAIL_API TRAIL_MHD_RESULT
trail_mhd_queue_buffer(struct MHD_Connection *connection, unsigned int status,
                       const void *body, size_t len, const char *content_type);

/*
 * The middleware request of connection while its access handler (or the
 * application's completion callback) runs on the calling thread, NULL
 * elsewhere: for trail_http_set_user(), trail_http_ctx() and
 * trail_http_request_id(). It lives until the request completes.
 */
TRAIL_API trail_http_request *
trail_mhd_request(struct MHD_Connection *connection);

/*
 * An MHD_OPTION_EXTERNAL_LOGGER function: MHD's own diagnostics become
 * trail_http_server_error() lines (warn, logger "http", with the request's
 * context when MHD reports from inside its handler) instead of raw text on
 * stderr. cls is unused: pass NULL.
 */
TRAIL_API void trail_mhd_error_log(void *cls, const char *fmt, va_list ap)
    TRAIL__PRINTF(2, 0);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_MHD_H */
