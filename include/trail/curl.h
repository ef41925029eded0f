/*
 * trail's outgoing propagation for libcurl (libtrail-curl, a library of its
 * own): a request made while a request context is current carries that
 * context to the service it calls, and leaves one line saying how it went.
 *
 *   trail_curl_call call;
 *   trail_curl_begin(&call, easy, NULL, my_headers);  // NULL: current ctx
 *   CURLcode rc = curl_easy_perform(easy);
 *   trail_curl_end(&call, rc);                        // the outgoing line
 *
 * or, for a blocking call, trail_curl_perform(easy, NULL, my_headers).
 *
 * begin adds three headers to the request: a traceparent of the context's
 * trace whose parent-id is a new span (the call's own span), the tracestate
 * the context kept, and X-Request-ID. end writes, on logger "http.client",
 * "outgoing request completed" with method, url (no query, no credentials),
 * status, duration_ms and call_span_id, carrying the context's ids.
 *
 * Reference: docs/middleware-curl.md. Copyright (c) 2026 the trail
 * developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_CURL_H
#define TRAIL_CURL_H

#include <curl/curl.h>
#include <trail.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRAIL_CURL_METHOD_MAX 16 /* bytes of a method given for the line */

/*
 * One outgoing call in flight, from trail_curl_begin() to trail_curl_end().
 * Caller-allocated (on the stack for a blocking call, beside the easy handle
 * for the multi interface); no malloc besides libcurl's header list. It
 * holds a copy of the context, so the context need not outlive the call.
 * All members are private.
 */
typedef struct trail_curl_call {
  CURL *easy_;
  struct curl_slist *headers_;      /* the list set on easy_, ours */
  struct curl_slist *user_headers_; /* the caller's, put back at the end */
  int64_t start_ns_;
  trail_ctx ctx_;
  char span_id_[TRAIL_SPAN_ID_LEN + 1]; /* the call's span; "" if none */
  char method_[TRAIL_CURL_METHOD_MAX + 1];
  uint8_t has_ctx_;
  uint8_t state_; /* 1 begun, 2 ended */
  void *reserved_[4];
} trail_curl_call;

/*
 * Starts an outgoing call on easy, on behalf of ctx (NULL: the calling
 * thread's current context; none current: no context).
 *
 * Sets CURLOPT_HTTPHEADER on easy to a list the call owns: a copy of
 * headers (the caller's own list, borrowed, may be NULL) plus traceparent,
 * tracestate (when the context kept one) and X-Request-ID. The caller's
 * entries for those three names are left out, so that exactly one of each
 * goes out. Pass here the list you would have set yourself, and do not set
 * CURLOPT_HTTPHEADER again before trail_curl_end(), which puts headers back
 * on easy. With no context nothing is added; a context without a trace
 * adds only its X-Request-ID.
 *
 * Returns 0; -EINVAL when call or easy is NULL (call, if given, is cleared:
 * its end does nothing); -ENOMEM when the list could not be built: the
 * request then goes out with the caller's headers only, and trail_curl_end()
 * still writes its line. Every begin needs its end (it frees the list).
 */
TRAIL_API int trail_curl_begin(trail_curl_call *call, CURL *easy,
                               const trail_ctx *ctx,
                               struct curl_slist *headers);

/*
 * The method to write in the line when libcurl cannot say (before 7.72,
 * which brought CURLINFO_EFFECTIVE_METHOD); libcurl's answer wins when it
 * has one. Copied, at most TRAIL_CURL_METHOD_MAX bytes. Optional.
 */
TRAIL_API void trail_curl_set_method(trail_curl_call *call, const char *method);

/* The span id sent as the call's parent-id, "" when none was sent. */
TRAIL_API const char *trail_curl_span_id(const trail_curl_call *call);

/*
 * Ends the call once the transfer is over (result: what curl_easy_perform
 * returned, or the CURLMsg's data.result with the multi interface): puts
 * the caller's header list back on the handle, frees the call's, and writes
 * the line. Level info, warn for a 4xx status, error for a 5xx status or
 * a transport error (then with field "error", curl_easy_strerror's text;
 * "status" is there only when a response came). A second call does nothing.
 */
TRAIL_API void trail_curl_end(trail_curl_call *call, CURLcode result);

/*
 * trail_curl_begin(), curl_easy_perform() and trail_curl_end() in one
 * blocking call; returns curl_easy_perform's result.
 */
TRAIL_API CURLcode trail_curl_perform(CURL *easy, const trail_ctx *ctx,
                                      struct curl_slist *headers);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_CURL_H */
