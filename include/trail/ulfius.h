/*
 * trail's ulfius adapter (libtrail-ulfius, a library of its own): every
 * request an ulfius instance serves gets its context from its headers, the
 * application's endpoint callbacks run with that context entered, every
 * response carries X-Request-ID, and one access line is written when the
 * libmicrohttpd daemon under ulfius says the request is over.
 *
 *   static trail_ulfius tu;              // outlives the instance's daemon
 *   ulfius_init_instance(&inst, port, &bind, NULL);
 *   ulfius_add_endpoint_by_val(&inst, "GET", "/api", "/orders/:id", 0,
 *                              my_callback, my_data);  // as without trail
 *   ulfius_set_default_endpoint(&inst, my_not_found, NULL);  // optional
 *   trail_ulfius_init(&tu, &inst, &cfg);
 *   trail_ulfius_start(&tu, 0, NULL);    // was ulfius_start_framework()
 *   ...
 *   ulfius_stop_framework(&inst);
 *   trail_ulfius_clean(&tu);             // before ulfius_clean_instance()
 *
 * trail_ulfius_start() wraps every endpoint registered so far (and the
 * default endpoint; without one, the adapter's answers ulfius's 404 with
 * the request id) and starts the daemon with ulfius_start_framework_with_
 * mhd_options(), with the adapter's request start and completion hooks in
 * place of ulfius's own (which the adapter's call). Endpoints added later
 * go through trail_ulfius_add_endpoint_by_val().
 *
 * Reference: docs/middleware-ulfius.md. Copyright (c) 2026 the trail
 * developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_ULFIUS_H
#define TRAIL_ULFIUS_H

#include <stdarg.h>
#include <stddef.h>

#include <trail.h>
#include <trail/http.h>
#include <ulfius.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shape of an ulfius endpoint callback. */
typedef int (*trail_ulfius_callback)(const struct _u_request *request,
                                     struct _u_response *response,
                                     void *user_data);

/*
 * The adapter's state for one ulfius instance. Caller-allocated; it must
 * outlive the instance's daemon (ulfius_stop_framework() has returned) and
 * be cleaned with trail_ulfius_clean() before the instance is. All members
 * are private.
 */
typedef struct trail_ulfius {
  const trail_http_config *cfg_;
  struct _u_instance *instance_;
  void *wraps_;   /* the wrapped endpoint callbacks (private) */
  void *options_; /* the option array the daemon was started with */
  int started_;
  int in_flight_; /* requests begun and not completed (the adapter's lock) */
  void *reserved_[4];
} trail_ulfius;

/*
 * Sets tu up for instance. cfg is the middleware configuration (NULL:
 * defaults), borrowed: it must outlive the daemon. Returns 0, or -EINVAL.
 */
TRAIL_API int trail_ulfius_init(trail_ulfius *tu, struct _u_instance *instance,
                                const trail_http_config *cfg);

/*
 * Wraps the instance's endpoints and starts it, as
 * ulfius_start_framework_with_mhd_options() does. mhd_flags 0: ulfius's
 * own (a thread per connection, internal polling, MHD's error log,
 * upgrades). options: more MHD options (may be NULL; ends with
 * MHD_OPTION_END; copied), after the adapter's; the instance's bind
 * address and timeout are passed as ulfius_start_framework() would. MHD's
 * diagnostics become trail lines (trail_ulfius_error_log) unless options
 * name another MHD_OPTION_EXTERNAL_LOGGER. Returns U_OK or ulfius's error.
 */
TRAIL_API int trail_ulfius_start(trail_ulfius *tu, unsigned int mhd_flags,
                                 const struct MHD_OptionItem *options);

/*
 * ulfius_add_endpoint_by_val() with callback wrapped: for an endpoint added
 * after trail_ulfius_start() (or instead of ulfius's call before it).
 */
TRAIL_API int trail_ulfius_add_endpoint_by_val(
    trail_ulfius *tu, const char *http_method, const char *url_prefix,
    const char *url_format, unsigned int priority,
    trail_ulfius_callback callback, void *user_data);

/*
 * Gives the instance its endpoints' own callbacks back and frees what the
 * adapter allocated. Call it after ulfius_stop_framework().
 */
TRAIL_API void trail_ulfius_clean(trail_ulfius *tu);

/*
 * The requests of tu's instance that MHD has begun (the request line came)
 * and not yet completed.
 */
TRAIL_API int trail_ulfius_in_flight(const trail_ulfius *tu);

/*
 * Waits until no request of tu's instance is in flight, timeout_ms at most,
 * and returns how many still are: for a graceful stop, between
 * MHD_quiesce_daemon(instance->mhd_daemon) and ulfius_stop_framework().
 * Not from an endpoint callback (its own request is in flight).
 */
TRAIL_API int trail_ulfius_wait_idle(trail_ulfius *tu, unsigned int timeout_ms);

/*
 * The middleware request of request while an endpoint callback of a
 * trail_ulfius instance runs with it, NULL elsewhere: for
 * trail_http_set_user(), trail_http_ctx() and trail_http_request_id(). It
 * lives until the request completes.
 */
TRAIL_API trail_http_request *
trail_ulfius_request(const struct _u_request *request);

/*
 * An MHD_OPTION_EXTERNAL_LOGGER function: libmicrohttpd's diagnostics
 * become trail_http_server_error() lines (warn, logger "http"), with the
 * request's context when reported from inside an endpoint callback. cls is
 * unused.
 */
TRAIL_API void trail_ulfius_error_log(void *cls, const char *fmt, va_list ap)
    TRAIL__PRINTF(2, 0);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_ULFIUS_H */
