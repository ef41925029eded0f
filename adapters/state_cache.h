/*
 * A few finished requests' adapter states, kept for the next requests: what
 * the adapters that allocate a state per request (mhd, ulfius, evhttp)
 * share. A private header of the adapters, not installed.
 *
 * A state holds a trail_http_request, 8 KiB, and glibc's malloc() of that
 * size first merges every small free chunk the server left (its headers,
 * events, pools), a cost paid for every request otherwise: perf of the
 * servers showed malloc and free at 2% of the request thread's samples with
 * trail, against a fraction of that without. A cache holds up to
 * TRAIL__STATE_CACHE states under its own lock, held for a pointer move
 * and only ever tried, never waited for: when another thread has it (or
 * had it when the process forked, and so holds it forever in the child),
 * the state is simply allocated or freed. Under AddressSanitizer nothing
 * is kept, so that a use of a state after its request's end is still
 * caught.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_STATE_CACHE_H
#define TRAIL_STATE_CACHE_H

#include <pthread.h>
#include <stdlib.h>

#define TRAIL__STATE_CACHE 16 /* states kept, per adapter */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRAIL__STATE_CACHE_OFF 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TRAIL__STATE_CACHE_OFF 1
#endif

typedef struct trail__state_cache {
  pthread_mutex_t lock;
  size_t n;
  void *kept[TRAIL__STATE_CACHE];
} trail__state_cache;

#define TRAIL__STATE_CACHE_INIT                                                \
  {                                                                            \
    PTHREAD_MUTEX_INITIALIZER, 0, { NULL }                                     \
  }

/* A kept state when there is one and the cache is free, else a new one of
 * size bytes (NULL: out of memory). Its bytes are whatever the last
 * request left: the caller initialises it. */
static inline void *trail__state_get(trail__state_cache *c, size_t size) {
  void *p = NULL;
  if (pthread_mutex_trylock(&c->lock) == 0) {
    if (c->n > 0)
      p = c->kept[--c->n];
    pthread_mutex_unlock(&c->lock);
  }
  return p != NULL ? p : malloc(size);
}

/* Keeps p for a next request, or frees it (the cache full or busy). */
static inline void trail__state_put(trail__state_cache *c, void *p) {
#ifndef TRAIL__STATE_CACHE_OFF
  if (pthread_mutex_trylock(&c->lock) == 0) {
    if (c->n < TRAIL__STATE_CACHE) {
      c->kept[c->n++] = p;
      p = NULL;
    }
    pthread_mutex_unlock(&c->lock);
  }
#else
  (void)c;
#endif
  free(p);
}

#endif /* TRAIL_STATE_CACHE_H */
