/*
 * trail's adapter for libevent's evhttp server (include/trail/evhttp.h).
 *
 * evhttp runs many requests on one thread, and a request often outlives
 * the callback that received it (the reply is sent later, from a timer or
 * a backend's answer). So the request's trail state cannot live on the
 * stack or in the thread: it is allocated per request and found from the
 * struct evhttp_request * in a small table, and its context is entered
 * only around each callback that works for the request.
 *
 * The access line is written by exactly one of:
 *  - the completion callback, once evhttp has written the whole reply: the
 *    real status and the body bytes recorded when the reply was handed over;
 *  - a watcher on the connection's socket, when the client closes it while
 *    the request waits for its reply (libevent 2.1 stops reading a
 *    connection once a request is read, so it would not notice): 499;
 *  - the connection's close callback, when evhttp drops the connection
 *    before the reply was written (a failed write, evhttp_free() with the
 *    request in flight): 499.
 * trail_http_end() does nothing the second time, so the order in which
 * these run does not matter.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <trail/evhttp.h>

#include "../state_cache.h"

/* One request in flight. */
typedef struct ev_state {
  struct evhttp_request *req;
  struct evhttp_connection *evcon; /* NULL once the connection is gone */
  struct event *watch; /* EOF watcher while the reply is due: watch_mem */
  const trail_evhttp_handler *handler; /* its done hook, when any */
  struct ev_state *next;               /* table chain */
  uint8_t gone;                        /* the client left before the reply */
  uint8_t closed;                      /* the connection was freed */
  uint8_t reported;                    /* a wrapper reported the body */
  /* The middleware core's state, with the ctx. Last: only what precedes it
   * is cleared; trail_http_begin() sets it. */
  trail_http_request http;
  /* The watcher's struct event, event_get_struct_event_size() bytes (it
   * varies with the libevent build): kept with the state, so that no
   * request allocates one. */
  _Alignas(max_align_t) unsigned char watch_mem[];
} ev_state;

/* The state's size: the struct and the watcher's event after it. */
static size_t state_size(void) {
  return sizeof(ev_state) + event_get_struct_event_size();
}

/* ---- the table: struct evhttp_request * -> ev_state * ------------------ */

/*
 * A process-wide table under a mutex, so that servers running one event
 * base per thread share it safely. It is touched a few times per request,
 * and the lock is held for one chain walk.
 */
#define TABLE_SIZE 1024 /* buckets, a power of two */

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static ev_state *table[TABLE_SIZE];
static size_t table_count; /* requests in flight */

static size_t bucket_of(const struct evhttp_request *req) {
  uint64_t p = (uint64_t)(uintptr_t)req;
  p ^= p >> 17;
  p *= UINT64_C(0x9e3779b97f4a7c15);
  return (size_t)(p >> 54) & (TABLE_SIZE - 1);
}

static ev_state *table_find(const struct evhttp_request *req) {
  if (req == NULL)
    return NULL;
  pthread_mutex_lock(&table_lock);
  ev_state *st = table[bucket_of(req)];
  while (st != NULL && st->req != req)
    st = st->next;
  pthread_mutex_unlock(&table_lock);
  return st;
}

static void table_put(ev_state *st) {
  size_t b = bucket_of(st->req);
  pthread_mutex_lock(&table_lock);
  st->next = table[b];
  table[b] = st;
  table_count++;
  pthread_mutex_unlock(&table_lock);
}

static void table_remove(ev_state *st) {
  pthread_mutex_lock(&table_lock);
  ev_state **at = &table[bucket_of(st->req)];
  while (*at != NULL && *at != st)
    at = &(*at)->next;
  if (*at == st) {
    *at = st->next;
    table_count--;
  }
  pthread_mutex_unlock(&table_lock);
}

/* ---- a request's end ---------------------------------------------------- */

/* Finished requests' states, for the next ones (adapters/state_cache.h). */
static trail__state_cache states = TRAIL__STATE_CACHE_INIT;

static void watch_stop(ev_state *st) {
  if (st->watch != NULL) {
    event_del(st->watch);
    st->watch = NULL;
  }
}

/*
 * Where a context freed while current is moved to. The state is freed, or
 * kept for a next request that overwrites it, when evhttp is done with the
 * request, which may happen inside a callback that entered the request's
 * context (a timer that enters it, replies, then leaves): lines logged
 * between the reply and the leave must not read freed or reused memory.
 * They read this copy, with the same ids, instead; the caller's
 * trail_ctx_leave() then restores what was current before, as it would
 * have.
 */
static _Thread_local trail_ctx orphan;

static void state_free(ev_state *st) {
  watch_stop(st);
  trail_ctx *ctx = trail_http_ctx(&st->http);
  if (trail_ctx_current() == ctx) {
    orphan = *ctx;
    trail_ctx_enter(&orphan);
  }
  trail__state_put(&states, st);
}

/* The adapter is done with the request: out of the table (so that
 * trail_evhttp_pending() no longer counts it), the handler's done hook,
 * then the state's memory. */
static void finish(ev_state *st, int status) {
  table_remove(st);
  const trail_evhttp_handler *h = st->handler;
  if (h != NULL && h->done != NULL)
    h->done(h->arg, status);
  state_free(st);
}

/*
 * The server's byte count, for a reply that did not go through the
 * wrappers (a plain evhttp_send_reply() or evhttp_send_error()): the
 * Content-Length evhttp put in the headers, else 0. The core prefers the
 * bytes the wrappers reported, and applies the no-body rule.
 */
static uint64_t server_bytes(struct evhttp_request *req) {
  const char *cl = evhttp_find_header(evhttp_request_get_output_headers(req),
                                      "Content-Length");
  uint64_t n = 0;
  for (; cl != NULL && *cl >= '0' && *cl <= '9'; cl++) {
    if (n > (UINT64_MAX - 9) / 10)
      return 0;
    n = n * 10 + (uint64_t)(*cl - '0');
  }
  return n;
}

/* The client left: the core says 499 from here on, whatever comes. */
static void client_left(ev_state *st) {
  st->gone = 1;
  trail_http_client_gone(&st->http);
  trail_http_end(&st->http, TRAIL_HTTP_CLIENT_GONE, 0);
}

/* evhttp wrote the whole reply; req is freed when this returns. */
static void on_complete(struct evhttp_request *req, void *arg) {
  ev_state *st = arg;
  int status = evhttp_request_get_response_code(req);
  /* the core takes the bytes a wrapper reported over the server's */
  trail_http_end(&st->http, status, st->reported ? 0 : server_bytes(req));
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  /* A kept-alive connection outlives the request: its next request sets
   * its own close callback, and a close in between concerns nobody. */
  if (evcon != NULL)
    evhttp_connection_set_closecb(evcon, NULL, NULL);
  finish(st, status);
}

/*
 * The connection is being freed while the request had no complete reply.
 * Usually req goes with it, right after this returns; evhttp keeps it only
 * when it had detached it first (then req has no connection any more, and
 * lives until the application replies, which frees it).
 */
static void on_close(struct evhttp_connection *evcon, void *arg) {
  ev_state *st = arg;
  (void)evcon;
  client_left(st);
  st->closed = 1;
  st->evcon = NULL;
  watch_stop(st);
  if (evhttp_request_get_connection(st->req) != NULL)
    finish(st, TRAIL_HTTP_CLIENT_GONE);
}

/*
 * The socket is readable while the reply is due: either the client sent
 * more (a pipelined request, evhttp's to read later: stop watching, it is
 * not a departure) or it closed the connection (EOF, or a reset). MSG_PEEK
 * leaves every byte where evhttp expects it.
 */
static void on_readable(evutil_socket_t fd, short what, void *arg) {
  ev_state *st = arg;
  char c;
  (void)what;
  ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    if (event_add(st->watch, NULL) != 0)
      watch_stop(st);
    return;
  }
  watch_stop(st);
  if (n > 0)
    return;
  client_left(st);
}

/* Watches the connection's socket for the client leaving, while the reply
 * is due (on_readable). */
static void watch_start(ev_state *st, struct evhttp_connection *evcon) {
  struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
  struct event_base *base = evhttp_connection_get_base(evcon);
  evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
  if (fd < 0 || base == NULL)
    return;
  struct event *ev = (struct event *)(void *)st->watch_mem;
  if (event_assign(ev, base, fd, EV_READ, on_readable, st) == 0 &&
      event_add(ev, NULL) == 0)
    st->watch = ev;
}

/* ---- a request's start -------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type cmd) {
  switch (cmd) {
  case EVHTTP_REQ_GET:
    return "GET";
  case EVHTTP_REQ_POST:
    return "POST";
  case EVHTTP_REQ_HEAD:
    return "HEAD";
  case EVHTTP_REQ_PUT:
    return "PUT";
  case EVHTTP_REQ_DELETE:
    return "DELETE";
  case EVHTTP_REQ_OPTIONS:
    return "OPTIONS";
  case EVHTTP_REQ_TRACE:
    return "TRACE";
  case EVHTTP_REQ_CONNECT:
    return "CONNECT";
  case EVHTTP_REQ_PATCH:
    return "PATCH";
  }
  return "UNKNOWN";
}

/* Whether the headers hold exactly one X-Request-ID, and it is id. */
static int has_only_id(const struct evkeyvalq *h, const char *id) {
  int ours = 0;
  for (const struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
    if (strcasecmp(kv->key, "X-Request-ID") == 0) {
      if (ours || strcmp(kv->value, id) != 0)
        return 0;
      ours = 1;
    }
  return ours;
}

/* The echo rule of trail/http.h: exactly one X-Request-ID, trail's. One
 * walk when it is there already (set at the start, and the application
 * left it alone). */
static void set_request_id_header(struct evhttp_request *req, ev_state *st) {
  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  const char *id = trail_http_request_id(&st->http);
  if (out == NULL || (id[0] != '\0' && has_only_id(out, id)))
    return;
  while (evhttp_remove_header(out, "X-Request-ID") == 0) {
  }
  if (id[0] != '\0')
    evhttp_add_header(out, "X-Request-ID", id);
}

/*
 * Drops a state left in the table for a request that evhttp freed without
 * telling (only possible when the application bypassed the adapter, e.g.
 * a plain evhttp_send_reply() to a request evhttp had detached from its
 * closed connection): its address now belongs to a new request, which
 * must not inherit its ids.
 */
static void drop_stale(ev_state *old, struct evhttp_connection *evcon) {
  client_left(old);
  if (!old->closed && old->evcon != NULL && old->evcon != evcon)
    evhttp_connection_set_closecb(old->evcon, NULL, NULL);
  finish(old, TRAIL_HTTP_CLIENT_GONE);
}

/*
 * Starts a request: allocates its state, feeds the middleware core every
 * request header in the order evhttp parsed them (repeated ones included,
 * since a repeated traceparent is invalid and only the whole list tells),
 * decides the ids, and sets X-Request-ID on the response before the
 * application can send anything. Then hooks the three ends described at
 * the top of this file. Called again while the request's context is
 * current (the application calling it inside trail_evhttp_handle()), it
 * does nothing.
 */
static int begin(struct evhttp_request *req, const trail_http_config *cfg,
                 const trail_evhttp_handler *h, ev_state **out) {
  *out = NULL;
  if (req == NULL)
    return -EINVAL;
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  if (evcon == NULL)
    return -EINVAL;
  ev_state *old = table_find(req);
  if (old != NULL) {
    if (trail_ctx_current() == trail_http_ctx(&old->http)) {
      *out = old;
      return 0;
    }
    drop_stale(old, evcon);
  }
  ev_state *st = trail__state_get(&states, state_size());
  if (st == NULL)
    return -ENOMEM;
  memset(st, 0, offsetof(ev_state, http));
  st->req = req;
  st->evcon = evcon;
  st->handler = h;

  char *addr = NULL;
  ev_uint16_t port = 0;
  evhttp_connection_get_peer(evcon, &addr, &port);
  trail_http_begin(&st->http, cfg, method_name(evhttp_request_get_command(req)),
                   evhttp_request_get_uri(req), TRAIL_NTS, addr);
  const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
  for (const struct evkeyval *kv = in != NULL ? in->tqh_first : NULL;
       kv != NULL; kv = kv->next.tqe_next)
    trail_http_header(&st->http, kv->key, TRAIL_NTS, kv->value, TRAIL_NTS);
  trail_http_headers_done(&st->http);
  set_request_id_header(req, st);

  evhttp_request_set_on_complete_cb(req, on_complete, st);
  evhttp_connection_set_closecb(evcon, on_close, st);
  watch_start(st, evcon);
  table_put(st);
  *out = st;
  return 0;
}

/* begin() for a server that calls it from its own callback: there is no
 * handler, so no done hook. */
TRAIL_API int trail_evhttp_begin(struct evhttp_request *req,
                                 const trail_http_config *cfg) {
  ev_state *st;
  return begin(req, cfg, NULL, &st);
}

/*
 * Fills a caller-allocated handler. Nothing is allocated, so there is
 * nothing to free: the handler just has to outlive the server.
 */
TRAIL_API void trail_evhttp_handler_init(trail_evhttp_handler *h,
                                         const trail_http_config *cfg,
                                         trail_evhttp_fn cb, void *arg) {
  if (h == NULL)
    return;
  memset(h, 0, sizeof *h);
  h->cfg = cfg;
  h->cb = cb;
  h->arg = arg;
}

/*
 * The evhttp callback: begin, enter, the application, leave. The context
 * is left when the application returns even if the reply is still to come;
 * whatever then runs for the request enters it again (trail_evhttp_enter)
 * or logs with it explicitly (trail_evhttp_ctx).
 */
TRAIL_API void trail_evhttp_handle(struct evhttp_request *req, void *handler) {
  trail_evhttp_handler *h = handler;
  ev_state *st;
  begin(req, h != NULL ? h->cfg : NULL, h, &st);
  /* the state begin() found or made, without a second lookup */
  trail_ctx *prev = st != NULL ? trail_ctx_enter(trail_http_ctx(&st->http))
                               : trail_ctx_current();
  if (h != NULL && h->cb != NULL)
    h->cb(req, h->arg);
  else
    trail_evhttp_send_error(req, 500, NULL);
  trail_ctx_leave(prev);
}

/* ---- what the application calls for a request --------------------------- */

/* The table's size: begun requests the adapter has not finished with. */
TRAIL_API size_t trail_evhttp_pending(void) {
  pthread_mutex_lock(&table_lock);
  size_t n = table_count;
  pthread_mutex_unlock(&table_lock);
  return n;
}

/* The request's middleware state, or NULL: a lookup in the table. */
TRAIL_API trail_http_request *trail_evhttp_request(struct evhttp_request *req) {
  ev_state *st = table_find(req);
  return st != NULL ? &st->http : NULL;
}

/* Enters the request's context; an unknown request changes nothing, so
 * that the caller's trail_ctx_leave() is harmless either way. */
TRAIL_API trail_ctx *trail_evhttp_enter(struct evhttp_request *req) {
  ev_state *st = table_find(req);
  if (st == NULL)
    return trail_ctx_current();
  return trail_ctx_enter(trail_http_ctx(&st->http));
}

/* Whether the client left before the reply: deferred work may skip what
 * only the reply needed. */
TRAIL_API bool trail_evhttp_client_gone(struct evhttp_request *req) {
  ev_state *st = table_find(req);
  return st != NULL && st->gone;
}

/*
 * Hands the reply to evhttp after recording its body bytes, the count the
 * access line reports when evhttp says it is written. To a client that is
 * gone nothing is written: the connection is freed at once (its close
 * callback ends and frees the state, and evhttp frees req), or, when evhttp
 * had detached req already, evhttp_send_reply() frees req by itself.
 */
TRAIL_API void trail_evhttp_send_reply(struct evhttp_request *req, int code,
                                       const char *reason,
                                       struct evbuffer *body) {
  if (req == NULL)
    return;
  ev_state *st = table_find(req);
  if (st == NULL) {
    evhttp_send_reply(req, code, reason, body);
    return;
  }
  struct evbuffer *out = evhttp_request_get_output_buffer(req);
  uint64_t bytes = (out != NULL ? evbuffer_get_length(out) : 0) +
                   (body != NULL ? evbuffer_get_length(body) : 0);
  trail_http_response(&st->http, code);
  trail_http_body(&st->http, bytes);
  st->reported = 1;
  set_request_id_header(req, st);
  if (!st->gone && evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
    /* libevent 2.1 sends the body after HEAD too, which a keep-alive
     * client then reads as the start of the next response: send the
     * headers a GET would get, and no body. */
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (evhttp_find_header(h, "Content-Length") == NULL) {
      char len[24];
      snprintf(len, sizeof len, "%llu", (unsigned long long)bytes);
      evhttp_add_header(h, "Content-Length", len);
    }
    if (out != NULL)
      evbuffer_drain(out, evbuffer_get_length(out));
    if (body != NULL)
      evbuffer_drain(body, evbuffer_get_length(body));
  }
  if (!st->gone) {
    evhttp_send_reply(req, code, reason, body);
    return;
  }
  if (body != NULL)
    evbuffer_drain(body, evbuffer_get_length(body));
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  if (evcon != NULL) {
    evhttp_connection_free(evcon);
    return;
  }
  finish(st, TRAIL_HTTP_CLIENT_GONE);
  evhttp_send_reply(req, code, reason, NULL);
}

static const char *status_phrase(int code) {
  switch (code) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 413:
    return "Content Too Large";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  }
  return "Error";
}

/*
 * evhttp_send_error() clears every response header before it sends, the
 * X-Request-ID included; this sends the same kind of short error reply
 * through trail_evhttp_send_reply() instead, headers kept.
 */
TRAIL_API void trail_evhttp_send_error(struct evhttp_request *req, int code,
                                       const char *reason) {
  if (req == NULL)
    return;
  struct evbuffer *body = evbuffer_new();
  if (body == NULL) {
    trail_evhttp_send_reply(req, code, reason, NULL);
    return;
  }
  evbuffer_add_printf(body, "%d %s\n", code,
                      reason != NULL ? reason : status_phrase(code));
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  while (evhttp_remove_header(h, "Content-Type") == 0) {
  }
  evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
  trail_evhttp_send_reply(req, code, reason, body);
  evbuffer_free(body);
}

/* Counts a chunk's bytes, then evhttp_send_reply_chunk(). */
TRAIL_API void trail_evhttp_send_reply_chunk(struct evhttp_request *req,
                                             struct evbuffer *chunk) {
  if (req == NULL)
    return;
  ev_state *st = table_find(req);
  if (st != NULL && chunk != NULL) {
    trail_http_body(&st->http, evbuffer_get_length(chunk));
    st->reported = 1;
  }
  evhttp_send_reply_chunk(req, chunk);
}

/*
 * libevent's diagnostics (event_set_log_callback) as the core's
 * server-error lines. libevent logs for the whole process, not for a
 * request: the line carries whatever context is current (a request's, when
 * libevent complains from inside a callback that entered it). Its debug
 * messages, off unless libevent's debug logging is on, are left out.
 */
TRAIL_API void trail_evhttp_log(int severity, const char *msg) {
  if (severity > EVENT_LOG_DEBUG && msg != NULL)
    trail_http_server_error(NULL, msg, TRAIL_NTS);
}
