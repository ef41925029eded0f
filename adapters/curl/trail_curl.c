/*
 * Outgoing propagation for libcurl (include/trail/curl.h): the request
 * context's trace, tracestate and request id ride along on a libcurl
 * request, and the call leaves one line on logger "http.client".
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <trail/curl.h>
#include <trail/http.h>

enum { CALL_BEGUN = 1, CALL_ENDED = 2 };

/* The bytes of a URL kept for the line; the line's own limit comes after. */
#define URL_MAX 2048

/*
 * The logger of every outgoing line. Registry loggers live until the
 * process exits, so the pointer is looked up once and kept; two threads
 * racing here store the same pointer.
 */
static trail_logger *client_logger(void) {
  static trail_logger *lg;
  trail_logger *l = __atomic_load_n(&lg, __ATOMIC_ACQUIRE);
  if (l == NULL) {
    l = trail_logger_get("http.client");
    __atomic_store_n(&lg, l, __ATOMIC_RELEASE);
  }
  return l;
}

/*
 * True when the slist entry names one of the headers trail sets. libcurl's
 * entries are "Name: value", "Name:" (remove the header) or "Name;" (send it
 * empty); white space may sit before the separator.
 */
static int entry_is(const char *entry, const char *name) {
  size_t n = strcspn(entry, ":;");
  while (n > 0 && (entry[n - 1] == ' ' || entry[n - 1] == '\t'))
    n--;
  return strlen(name) == n && strncasecmp(entry, name, n) == 0;
}

/* Appends one line, or frees everything and returns NULL when out of memory. */
static struct curl_slist *append(struct curl_slist *list, const char *line) {
  struct curl_slist *next = curl_slist_append(list, line);
  if (next == NULL)
    curl_slist_free_all(list);
  return next;
}

/*
 * The call's header list: the caller's entries except those naming what
 * trail sends, then trail's. NULL when out of memory (nothing leaks).
 */
static struct curl_slist *build_headers(struct curl_slist *user,
                                        const trail_http_outgoing *out,
                                        int have_trace) {
  struct curl_slist *list = NULL;
  char line[32 + TRAIL_TRACESTATE_MAX];

  for (const struct curl_slist *e = user; e != NULL; e = e->next) {
    if (e->data == NULL)
      continue;
    /* A traceparent of the caller's would name another span (or trace),
     * and a tracestate belongs with its traceparent: both give way. */
    if (have_trace &&
        (entry_is(e->data, "traceparent") || entry_is(e->data, "tracestate")))
      continue;
    if (out->request_id[0] && entry_is(e->data, "X-Request-ID"))
      continue;
    if ((list = append(list, e->data)) == NULL)
      return NULL;
  }
  if (have_trace) {
    snprintf(line, sizeof line, "traceparent: %s", out->traceparent);
    if ((list = append(list, line)) == NULL)
      return NULL;
    if (out->tracestate[0]) {
      snprintf(line, sizeof line, "tracestate: %s", out->tracestate);
      if ((list = append(list, line)) == NULL)
        return NULL;
    }
  }
  if (out->request_id[0]) {
    snprintf(line, sizeof line, "X-Request-ID: %s", out->request_id);
    if ((list = append(list, line)) == NULL)
      return NULL;
  }
  return list;
}

/*
 * Starts the call: copies the context (so that a multi-interface transfer
 * may outlive the request that started it), makes the call's span and
 * headers, and records the start time.
 *
 * The headers come from trail_http_outgoing_make(), the middleware core's
 * single rule for what a downstream call carries: the context's trace with
 * a new span as parent-id, its flags, its kept tracestate, its request id.
 * A context without a trace still passes its request id on. When the list
 * cannot be built the handle keeps the caller's list: the request is worth
 * more than its propagation, and the line still gets written.
 */
TRAIL_API int trail_curl_begin(trail_curl_call *call, CURL *easy,
                               const trail_ctx *ctx,
                               struct curl_slist *headers) {
  if (call == NULL)
    return -EINVAL;
  memset(call, 0, sizeof *call);
  if (easy == NULL)
    return -EINVAL;
  call->easy_ = easy;
  call->user_headers_ = headers;
  call->state_ = CALL_BEGUN;
  if (ctx == NULL)
    ctx = trail_ctx_current();
  if (ctx != NULL) {
    call->ctx_ = *ctx;
    call->has_ctx_ = 1;
  }

  int rc = 0;
  trail_http_outgoing out;
  int have_trace = call->has_ctx_ && trail_http_outgoing_make(ctx, &out) == 0;
  if (!have_trace && call->has_ctx_) {
    memset(&out, 0, sizeof out);
    snprintf(out.request_id, sizeof out.request_id, "%s",
             trail_ctx_request_id(ctx));
  }
  if (have_trace || (call->has_ctx_ && out.request_id[0])) {
    struct curl_slist *list = build_headers(headers, &out, have_trace);
    if (list == NULL) {
      rc = -ENOMEM;
    } else if (curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list) != CURLE_OK) {
      curl_slist_free_all(list);
      rc = -EINVAL;
    } else {
      call->headers_ = list;
      if (have_trace)
        memcpy(call->span_id_, out.span_id, sizeof call->span_id_);
    }
  }
  if (call->headers_ == NULL)
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  call->start_ns_ = trail_now_ns();
  return rc;
}

/* Kept for libcurl versions that cannot report the method themselves. */
TRAIL_API void trail_curl_set_method(trail_curl_call *call,
                                     const char *method) {
  if (call == NULL || method == NULL)
    return;
  snprintf(call->method_, sizeof call->method_, "%s", method);
}

TRAIL_API const char *trail_curl_span_id(const trail_curl_call *call) {
  return call != NULL ? call->span_id_ : "";
}

/*
 * Writes the URL for the line into buf: scheme, host, port and path, with
 * any user name and password, query and fragment left out. Queries carry
 * tokens and user info carries passwords; neither belongs in a log. The
 * authority ends where libcurl's own parser ends it, at the first '/', '?'
 * or '#', and the credentials are everything in it up to its last '@'.
 */
static size_t url_for_line(const char *url, char *buf, size_t size) {
  size_t n = 0;
  const char *sep = strstr(url, "://");
  /* A "://" after the first '/', '?' or '#' is not the scheme's. */
  const char *p =
      sep != NULL && sep < url + strcspn(url, "/?#") ? sep + 3 : url;
  const char *auth_end = p + strcspn(p, "/?#");
  const char *host = p;
  for (const char *q = p; q < auth_end; q++)
    if (*q == '@')
      host = q + 1;
  const char *path_end = auth_end + strcspn(auth_end, "?#");

  size_t parts[2][2] = {{0, (size_t)(p - url)},
                        {(size_t)(host - url), (size_t)(path_end - host)}};
  for (int i = 0; i < 2; i++) {
    size_t len = parts[i][1];
    if (len > size - 1 - n)
      len = size - 1 - n;
    memcpy(buf + n, url + parts[i][0], len);
    n += len;
  }
  buf[n] = '\0';
  return n;
}

/*
 * Ends the call: gives the handle back its owner's header list before
 * freeing ours (the handle may be reused, and must never point at freed
 * memory), then writes the line with the context copied at begin, whatever
 * context is current on this thread now.
 */
TRAIL_API void trail_curl_end(trail_curl_call *call, CURLcode result) {
  if (call == NULL || call->state_ != CALL_BEGUN)
    return;
  call->state_ = CALL_ENDED;
  double ms = (double)(trail_now_ns() - call->start_ns_) / 1e6;
  CURL *easy = call->easy_;
  if (call->headers_ != NULL) {
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->user_headers_);
    curl_slist_free_all(call->headers_);
    call->headers_ = NULL;
  }

  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  trail_level level = TRAIL_LEVEL_INFO;
  if (result != CURLE_OK || status >= 500)
    level = TRAIL_LEVEL_ERROR;
  else if (status >= 400)
    level = TRAIL_LEVEL_WARN;
  trail_logger *lg = client_logger();
  if (!trail_enabled(lg, level))
    return;

  const char *method = NULL;
#if LIBCURL_VERSION_NUM >= 0x074800 /* 7.72.0: CURLINFO_EFFECTIVE_METHOD */
  if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_METHOD, &method) != CURLE_OK)
    method = NULL;
#endif
  if (method == NULL && call->method_[0])
    method = call->method_;
  const char *eff = NULL;
  if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK ||
      eff == NULL)
    eff = "";
  char url[URL_MAX + 1];
  size_t url_len = url_for_line(eff, url, sizeof url);

  trail_field f[6];
  size_t n = 0;
  if (method != NULL)
    f[n++] = TRAIL_STR("method", method);
  f[n++] = TRAIL_STRN("url", url, url_len);
  if (status > 0)
    f[n++] = TRAIL_INT("status", status);
  f[n++] = TRAIL_DOUBLE("duration_ms", ms);
  if (call->span_id_[0])
    f[n++] = TRAIL_STR("call_span_id", call->span_id_);
  if (result != CURLE_OK)
    f[n++] = TRAIL_STR("error", curl_easy_strerror(result));
  trail_ctx_log(call->has_ctx_ ? &call->ctx_ : NULL, lg, level,
                "outgoing request completed", f, n);
}

/* The blocking case in one call. */
TRAIL_API CURLcode trail_curl_perform(CURL *easy, const trail_ctx *ctx,
                                      struct curl_slist *headers) {
  trail_curl_call call;
  if (easy == NULL)
    return CURLE_BAD_FUNCTION_ARGUMENT;
  trail_curl_begin(&call, easy, ctx, headers);
  CURLcode rc = curl_easy_perform(easy);
  trail_curl_end(&call, rc);
  return rc;
}
