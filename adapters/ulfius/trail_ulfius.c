/*
 * The ulfius adapter (include/trail/ulfius.h). ulfius runs on
 * libmicrohttpd and has no request start or end hook of its own, but it
 * lets its MHD hooks be replaced: the adapter's MHD start hook
 * (MHD_OPTION_URI_LOG_CALLBACK) calls ulfius's and begins the middleware
 * request; every endpoint callback is wrapped, so the application runs
 * with the request's context entered and its response gets X-Request-ID;
 * the adapter's MHD completion hook (MHD_OPTION_NOTIFY_COMPLETED) writes
 * the access line, frees the state, then calls ulfius's.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <trail/http.h>
#include <trail/ulfius.h>

#include "../mhd/mhd_common.h"
#include "../state_cache.h"

/* An application callback and its data, standing behind the wrapper. */
typedef struct ul_wrap {
  trail_ulfius_callback cb;
  void *data;
  trail_ulfius *tu;
  struct ul_wrap *next;
} ul_wrap;

/*
 * One request, from MHD's start hook to its completion hook. ulfius keeps
 * its own state in the request's con_cls, so the adapter's is found from
 * the struct _u_request that ulfius hands the callbacks, through the table
 * below. MHD calls the hooks and the handler of one request on one thread
 * at a time, so the members need no lock; the table does.
 */
typedef struct ul_request {
  trail_ulfius *tu;
  struct MHD_Connection *conn;
  struct connection_info_struct *con_info;
  const struct _u_request *ureq;
  struct ul_request *next; /* in its table bucket */
  uint64_t bytes;          /* the body of the response last prepared */
  uint8_t headers_read;    /* the first wrapped callback has run */
  uint8_t answered;        /* a wrapped callback prepared a response */
  /* Last: only what precedes it is cleared; trail_http_begin() sets it. */
  trail_http_request http;
} ul_request;

#define BUCKETS 256
static struct {
  pthread_mutex_t lock;
  pthread_cond_t idle; /* a trail_ulfius's in_flight_ fell to 0 */
  ul_request *bucket[BUCKETS];
} table = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL}};

/* The condition's clock is the monotonic one, for trail_ulfius_wait_idle(). */
static pthread_once_t idle_once = PTHREAD_ONCE_INIT;
static void idle_init(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  /* completions broadcast under the lock: none sees the condition half
   * made */
  pthread_mutex_lock(&table.lock);
  pthread_cond_destroy(&table.idle);
  pthread_cond_init(&table.idle, &ca);
  pthread_mutex_unlock(&table.lock);
  pthread_condattr_destroy(&ca);
}

/* The request whose callback runs on this thread (for the error log). */
static _Thread_local ul_request *current;

/* Finished requests' states, for the next ones (adapters/state_cache.h). */
static trail__state_cache states = TRAIL__STATE_CACHE_INIT;

static size_t bucket_of(const void *key) {
  uintptr_t k = (uintptr_t)key;
  return (size_t)((k >> 4) ^ (k >> 12)) % BUCKETS;
}

static void table_add(ul_request *r) {
  size_t b = bucket_of(r->ureq);
  pthread_mutex_lock(&table.lock);
  r->next = table.bucket[b];
  table.bucket[b] = r;
  r->tu->in_flight_++;
  pthread_mutex_unlock(&table.lock);
}

static ul_request *table_find(const struct _u_request *ureq) {
  pthread_mutex_lock(&table.lock);
  ul_request *r = table.bucket[bucket_of(ureq)];
  while (r != NULL && r->ureq != ureq)
    r = r->next;
  pthread_mutex_unlock(&table.lock);
  return r;
}

/* Removes and returns the request of con_info (NULL when it has none). */
static ul_request *table_take(const struct connection_info_struct *ci) {
  ul_request *found = NULL;
  pthread_mutex_lock(&table.lock);
  /* ulfius may have dropped ci->request on an error: then look at all. */
  size_t first = ci->request ? bucket_of(ci->request) : 0;
  size_t last = ci->request ? first + 1 : BUCKETS;
  for (size_t b = first; b < last && found == NULL; b++)
    for (ul_request **p = &table.bucket[b]; *p != NULL; p = &(*p)->next)
      if ((*p)->con_info == ci) {
        found = *p;
        *p = found->next;
        if (--found->tu->in_flight_ == 0)
          pthread_cond_broadcast(&table.idle);
        break;
      }
  pthread_mutex_unlock(&table.lock);
  return found;
}

static trail_logger *http_logger(const trail_ulfius *tu) {
  return tu && tu->cfg_ && tu->cfg_->logger ? tu->cfg_->logger
                                            : trail_logger_get("http");
}

/* The client's address as text, "" when MHD cannot say (ulfius keeps only
 * the first sizeof(struct sockaddr) bytes of it, too few for IPv6). */
/*
 * MHD's start hook, in place of ulfius's: ulfius's runs first and makes
 * the request's con_cls (its connection_info_struct, with the struct
 * _u_request the callbacks will get); then the middleware request begins,
 * with the start time, the target as sent and the client's address. The
 * method and the headers come with the first wrapped callback. Without
 * memory for the adapter's state the request is served without trail.
 */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn) {
  trail_ulfius *tu = cls;
  struct connection_info_struct *ci = ulfius_uri_logger(NULL, uri);
  if (ci == NULL || ci->request == NULL || tu == NULL)
    return ci;
  ul_request *r = trail__state_get(&states, sizeof *r);
  if (r == NULL)
    return ci;
  memset(r, 0, offsetof(ul_request, http));
  char addr[TRAIL_HTTP_ADDR_MAX + 1];
  r->tu = tu;
  r->conn = conn;
  r->con_info = ci;
  r->ureq = ci->request;
  trail__mhd_remote_addr(conn, addr, sizeof addr);
  trail_http_begin(&r->http, tu->cfg_, NULL, uri, TRAIL_NTS,
                   addr[0] ? addr : NULL);
  table_add(r);
  return ci;
}

/*
 * Every request header, in order, repeated ones included, as the client
 * sent them: read from MHD (the callbacks run inside MHD's access handler
 * of the connection), not from ulfius's map_header, which joins repeated
 * headers with commas and drops values that are not UTF-8.
 */
static void read_headers(ul_request *r, const struct _u_request *req) {
  r->headers_read = 1;
  trail_http_set_method(&r->http, req->http_verb);
  trail__mhd_read_headers(r->conn, &r->http);
}

/* The echo rule: exactly one X-Request-ID, trail's, whatever its case. */
static void set_request_id(struct _u_response *resp, const char *id) {
  if (resp->map_header == NULL)
    return;
  while (u_map_has_key_case(resp->map_header, "X-Request-ID"))
    if (u_map_remove_from_key_case(resp->map_header, "X-Request-ID") != U_OK)
      break;
  u_map_put(resp->map_header, "X-Request-ID", id);
}

/*
 * What a callback returning U_CALLBACK_ERROR gets from ulfius (500, its
 * error body), made here instead, so that it carries the request id:
 * ulfius would send it without any of the response's headers.
 */
static int error_response(struct _u_response *resp) {
  if (resp->map_header != NULL)
    u_map_empty(resp->map_header);
  /* A stream the callback set up is not sent: its data is freed here, as
   * MHD would have freed it at the response's end. */
  if (resp->stream_callback != NULL && resp->stream_callback_free != NULL)
    resp->stream_callback_free(resp->stream_user_data);
  resp->stream_callback = NULL;
  resp->stream_callback_free = NULL;
  resp->stream_user_data = NULL;
  ulfius_set_string_body_response(resp, 500, ULFIUS_HTTP_ERROR_BODY);
  return U_CALLBACK_COMPLETE;
}

static int not_found(const struct _u_request *req, struct _u_response *resp,
                     void *data) {
  (void)req;
  (void)data;
  ulfius_set_string_body_response(resp, 404, ULFIUS_HTTP_NOT_FOUND_BODY);
  return U_CALLBACK_COMPLETE;
}

/* A trail_ulfius instance's callback outside the adapter's hooks: said
 * once, loudly. */
static void missing_state(trail_ulfius *tu) {
  static int warned;
  if (__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
    return;
  trail_error(http_logger(tu), "ulfius request without trail state: "
                               "start the instance with trail_ulfius_start");
}

/*
 * Every endpoint callback, standing in for the application's: the first
 * one of a request feeds the headers to the core, which decides the
 * context; each runs the application's with the context entered and
 * leaves it after (restoring whatever was current), so no request's
 * context stays current on MHD's thread. After each, the response gets
 * the request id and its body length is kept for the access line.
 */
static int trampoline(const struct _u_request *req, struct _u_response *resp,
                      void *user_data) {
  ul_wrap *w = user_data;
  ul_request *r = table_find(req);
  if (r == NULL) {
    missing_state(w->tu);
    return w->cb(req, resp, w->data);
  }
  if (!r->headers_read)
    read_headers(r, req);

  ul_request *saved = current;
  current = r;
  trail_ctx *prev = trail_ctx_enter(trail_http_ctx(&r->http));
  int ret = w->cb(req, resp, w->data);
  trail_ctx_leave(prev);
  current = saved;

  if (ret != U_CALLBACK_CONTINUE && ret != U_CALLBACK_IGNORE &&
      ret != U_CALLBACK_COMPLETE && ret != U_CALLBACK_UNAUTHORIZED)
    ret = error_response(resp);
  set_request_id(resp, trail_http_request_id(&r->http));
  r->answered = 1;
  if (resp->stream_callback != NULL)
    r->bytes =
        resp->stream_size == U_STREAM_SIZE_UNKNOWN ? 0 : resp->stream_size;
  else
    r->bytes = resp->binary_body ? resp->binary_body_length : 0;
  return ret;
}

/*
 * MHD's completion hook, in place of ulfius's: once per request that the
 * start hook saw, whether the response went out, the client left, or MHD
 * gave up. A request that never reached a callback gets its method and
 * headers from what ulfius read (joined, UTF-8 only); then the access line
 * is written with the request's context explicitly, the state freed, and
 * ulfius's own hook frees ulfius's.
 */
static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  struct connection_info_struct *ci = con_cls ? *con_cls : NULL;
  ul_request *r = ci ? table_take(ci) : NULL;
  (void)cls;
  if (r != NULL) {
    const struct _u_request *req = ci->request;
    if (!r->headers_read && req != NULL && req->http_verb != NULL) {
      r->headers_read = 1;
      trail_http_set_method(&r->http, req->http_verb);
      const char **keys = u_map_enum_keys(req->map_header);
      const char **vals = u_map_enum_values(req->map_header);
      for (size_t i = 0; keys && vals && keys[i] && vals[i]; i++)
        trail_http_header(&r->http, keys[i], TRAIL_NTS, vals[i], TRAIL_NTS);
    }
    trail_http_headers_done(&r->http);
    trail_http_end(&r->http,
                   trail__mhd_end_status(&r->http, conn, toe, r->answered, 0),
                   trail__mhd_end_bytes(toe, r->bytes));
    trail__state_put(&states, r);
  }
  mhd_request_completed(NULL, conn, con_cls, toe);
}

TRAIL_API int trail_ulfius_init(trail_ulfius *tu, struct _u_instance *instance,
                                const trail_http_config *cfg) {
  if (tu == NULL || instance == NULL)
    return -EINVAL;
  memset(tu, 0, sizeof *tu);
  tu->cfg_ = cfg;
  tu->instance_ = instance;
  return 0;
}

static ul_wrap *wrap_new(trail_ulfius *tu, trail_ulfius_callback cb,
                         void *data) {
  ul_wrap *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->cb = cb;
  w->data = data;
  w->tu = tu;
  w->next = tu->wraps_;
  tu->wraps_ = w;
  return w;
}

/* Puts the wrapper in front of an endpoint's callback (once). */
static int wrap_endpoint(trail_ulfius *tu, struct _u_endpoint *e) {
  if (e->callback_function == NULL || e->callback_function == trampoline)
    return 0;
  ul_wrap *w = wrap_new(tu, e->callback_function, e->user_data);
  if (w == NULL)
    return -ENOMEM;
  e->callback_function = trampoline;
  e->user_data = w;
  return 0;
}

static int wrap_all(trail_ulfius *tu) {
  struct _u_instance *in = tu->instance_;
  for (int i = 0; in->endpoint_list && i < in->nb_endpoints; i++)
    if (wrap_endpoint(tu, &in->endpoint_list[i]) != 0)
      return -ENOMEM;
  if (in->default_endpoint != NULL &&
      in->default_endpoint->callback_function != NULL)
    return wrap_endpoint(tu, in->default_endpoint);
  /* ulfius's own 404 would go out without the request id. */
  ul_wrap *w = wrap_new(tu, not_found, NULL);
  if (w == NULL)
    return -ENOMEM;
  return ulfius_set_default_endpoint(in, trampoline, w) == U_OK ? 0 : -ENOMEM;
}

static int has_option(const struct MHD_OptionItem *o, enum MHD_OPTION which) {
  for (size_t i = 0; o && o[i].option != MHD_OPTION_END; i++)
    if (o[i].option == which)
      return 1;
  return 0;
}

TRAIL_API int trail_ulfius_start(trail_ulfius *tu, unsigned int mhd_flags,
                                 const struct MHD_OptionItem *options) {
  if (tu == NULL || tu->instance_ == NULL || tu->options_ != NULL)
    return U_ERROR_PARAMS;
  /* The two hooks are the adapter's; ulfius's run from them. */
  if (has_option(options, MHD_OPTION_URI_LOG_CALLBACK) ||
      has_option(options, MHD_OPTION_NOTIFY_COMPLETED)) {
    trail_error(http_logger(tu), "trail_ulfius_start: the options may not set "
                                 "the URI log or completion callback");
    return U_ERROR_PARAMS;
  }
  pthread_once(&idle_once, idle_init);
  if (wrap_all(tu) != 0)
    return U_ERROR_MEMORY;
  struct _u_instance *in = tu->instance_;
  if (mhd_flags == 0) {
    mhd_flags = MHD_USE_THREAD_PER_CONNECTION |
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
#ifndef U_DISABLE_WEBSOCKET
    mhd_flags |= MHD_ALLOW_UPGRADE;
#endif
    if (in->bind_address6 != NULL)
      mhd_flags |= MHD_USE_IPv6;
  }
  size_t n_app = 0;
  while (options && options[n_app].option != MHD_OPTION_END)
    n_app++;
  struct MHD_OptionItem *o = calloc(n_app + 6, sizeof *o);
  if (o == NULL)
    return U_ERROR_MEMORY;
  size_t n = 0;
  /* MHD wants its logger first, or it prints what comes before on stderr */
  o[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER,
                                   (intptr_t)trail_ulfius_error_log, NULL};
  o[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK,
                                   (intptr_t)uri_log, tu};
  o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
                                   (intptr_t)completed, tu};
  if (!has_option(options, MHD_OPTION_SOCK_ADDR) &&
      !has_option(options, MHD_OPTION_LISTEN_SOCKET) &&
      (in->bind_address6 != NULL || in->bind_address != NULL))
    o[n++] =
        (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0,
                                in->bind_address6 ? (void *)in->bind_address6
                                                  : (void *)in->bind_address};
  if (in->timeout > 0 && !has_option(options, MHD_OPTION_CONNECTION_TIMEOUT))
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                     (intptr_t)in->timeout, NULL};
  for (size_t i = 0; i < n_app; i++)
    o[n++] = options[i];
  o[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  tu->options_ = o;
  int rc = ulfius_start_framework_with_mhd_options(in, mhd_flags, o);
  if (rc == U_OK)
    tu->started_ = 1;
  return rc;
}

TRAIL_API int trail_ulfius_add_endpoint_by_val(
    trail_ulfius *tu, const char *http_method, const char *url_prefix,
    const char *url_format, unsigned int priority,
    trail_ulfius_callback callback, void *user_data) {
  if (tu == NULL || tu->instance_ == NULL || callback == NULL)
    return U_ERROR_PARAMS;
  ul_wrap *w = wrap_new(tu, callback, user_data);
  if (w == NULL)
    return U_ERROR_MEMORY;
  return ulfius_add_endpoint_by_val(tu->instance_, http_method, url_prefix,
                                    url_format, priority, trampoline, w);
}

/* An endpoint's own callback back in place of the wrapper. */
static void unwrap(struct _u_endpoint *e) {
  if (e->callback_function != trampoline)
    return;
  ul_wrap *w = e->user_data;
  e->callback_function = w->cb;
  e->user_data = w->data;
}

TRAIL_API void trail_ulfius_clean(trail_ulfius *tu) {
  if (tu == NULL || tu->instance_ == NULL)
    return;
  struct _u_instance *in = tu->instance_;
  for (int i = 0; in->endpoint_list && i < in->nb_endpoints; i++)
    unwrap(&in->endpoint_list[i]);
  struct _u_endpoint *d = in->default_endpoint;
  if (d != NULL && d->callback_function == trampoline &&
      ((ul_wrap *)d->user_data)->cb == not_found) {
    /* The adapter's 404 goes (ulfius 2.7 refuses a NULL callback in
     * ulfius_set_default_endpoint(); its dispatcher skips one). */
    d->callback_function = NULL;
    d->user_data = NULL;
  } else if (d != NULL) {
    unwrap(d);
  }
  for (ul_wrap *w = tu->wraps_, *next; w != NULL; w = next) {
    next = w->next;
    free(w);
  }
  tu->wraps_ = NULL;
  free(tu->options_);
  tu->options_ = NULL;
  tu->started_ = 0;
}

TRAIL_API int trail_ulfius_in_flight(const trail_ulfius *tu) {
  if (tu == NULL)
    return 0;
  pthread_mutex_lock(&table.lock);
  int n = tu->in_flight_;
  pthread_mutex_unlock(&table.lock);
  return n;
}

/* The completion hook signals each time a request count falls to 0. */
TRAIL_API int trail_ulfius_wait_idle(trail_ulfius *tu,
                                     unsigned int timeout_ms) {
  if (tu == NULL)
    return 0;
  pthread_once(&idle_once, idle_init);
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += (time_t)(timeout_ms / 1000);
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&table.lock);
  while (tu->in_flight_ > 0)
    if (pthread_cond_timedwait(&table.idle, &table.lock, &deadline) ==
        ETIMEDOUT)
      break;
  int n = tu->in_flight_;
  pthread_mutex_unlock(&table.lock);
  return n;
}

/*
 * The middleware request behind request, for code running inside one of
 * its wrapped callbacks on this thread; NULL anywhere else.
 */
TRAIL_API trail_http_request *
trail_ulfius_request(const struct _u_request *request) {
  ul_request *r = current;
  return r != NULL && request != NULL && r->ureq == request ? &r->http : NULL;
}

/*
 * MHD's diagnostics as the core's server-error lines: warn, logger
 * "http", the request's context when MHD complains from inside a callback
 * of this thread; the text is data, never formatted again.
 */
TRAIL_API void trail_ulfius_error_log(void *cls, const char *fmt, va_list ap) {
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
