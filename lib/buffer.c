/*
 * Request-scoped buffering (trail_ctx_buffer()): the lines of a request
 * below its logger's level, kept in a bounded ring of the request's own
 * until the request ends, then written if it failed and dropped if not.
 *
 * This file owns the storage: the ring of entries, the process-wide pool
 * its memory comes from, the floor that lets such lines past the inline
 * level check, and TRAIL_BUFFER's defaults. log.c encodes what goes in and
 * writes what comes out.
 *
 * A ring is made on the first line a request buffers (a request that logs
 * nothing below its level costs nothing) and freed at trail_ctx_buffer_end.
 * Each entry is 8-aligned: a head (its length, kind and level) and either
 * an event record (record.c: the event's parts, copied, with its time) or,
 * for an event that cannot be recorded (a jansson value), its finished
 * line. An entry that would cross the ring's end leaves a padding entry
 * there and starts at 0, as the async queue does; when the ring is full
 * the oldest entries go, and are counted for the flush to report.
 *
 * Several threads may log under one context at once: the ring's lock
 * serialises its entries. It is a spin lock held across a memcpy only:
 * nothing is called under it, so no cancellation point, signal-unsafe call
 * or other lock is reached while it is held, and a waiter yields the CPU
 * after a few spins in case the holder was preempted. (A mutex, with the
 * cancellation state saved around it as trail's other locks have, was a
 * third of what a buffered line cost.) The state moves one way, BUFFERING to
 * FAILED, under the lock; once FAILED nothing is added, so the flush reads the
 * entries without it. Ending the buffer frees the ring: like the context
 * itself, it must not be in use by another thread then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The state in the context (buffer_state_). */
enum { ST_OFF = 0, ST_BUFFERING = 1, ST_FAILED = 2 };

typedef struct entry_head {
  uint32_t len; /* bytes after this head, before the padding to 8 */
  uint8_t kind; /* TRAIL__BUF_RECORD, TRAIL__BUF_LINE, or PAD */
  uint8_t level;
  uint16_t pad_;
} entry_head;

#define PAD 0xFF

struct trail__ring_buf {
  int lock;            /* 0 free, 1 held: see ring_lock() */
  size_t cap;          /* bytes of data, a multiple of 8 */
  uint64_t head, tail; /* positions in bytes, only ever growing */
  uint64_t lines;      /* entries held */
  uint64_t dropped;    /* entries dropped for room, not yet reported */
  _Alignas(8) char data[];
};

/* TRAIL_BUFFER's values (0 bytes: off) and the pool's bound and use, read
 * by requests on any thread while the configuration may change: atomic. */
static int default_level = TRAIL_LEVEL_DEBUG;
static size_t default_bytes;
static size_t pool_max = TRAIL_BUFFER_POOL_DEFAULT;
static size_t pool_used;

/* The lowest level any context buffers: see trail__buffer_floor(). */
int trail__buffer_floor_v = TRAIL_LEVEL_OFF;

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Spins this many times before each sched_yield(). */
#define SPINS 64
#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

static void ring_lock(struct trail__ring_buf *rb) {
  for (;;) {
    for (int i = 0; i < SPINS; i++) {
      if (__atomic_load_n(&rb->lock, __ATOMIC_RELAXED) == 0 &&
          __atomic_exchange_n(&rb->lock, 1, __ATOMIC_ACQUIRE) == 0)
        return;
      CPU_RELAX();
    }
    sched_yield();
  }
}

static void ring_unlock(struct trail__ring_buf *rb) {
  __atomic_store_n(&rb->lock, 0, __ATOMIC_RELEASE);
}

/*
 * Lowers the floor to level: every logger's threshold then lets lines of
 * that level through to trail__log(), which buffers or drops them.
 */
static void floor_lower(int level) {
  if (level >= __atomic_load_n(&trail__buffer_floor_v, __ATOMIC_RELAXED))
    return;
  trail__config_lock();
  if (level < trail__buffer_floor_v) {
    __atomic_store_n(&trail__buffer_floor_v, level, __ATOMIC_RELAXED);
    trail__loggers_update_locked();
  }
  trail__config_unlock();
}

static int level_valid(trail_level level) {
  return (int)level >= TRAIL_LEVEL_TRACE && (int)level <= TRAIL_LEVEL_FATAL;
}

TRAIL_API int trail_ctx_buffer(trail_ctx *ctx, trail_level min_level,
                               size_t bytes) {
  if (ctx == NULL || !level_valid(min_level) ||
      bytes < TRAIL_BUFFER_BYTES_MIN || bytes > TRAIL_BUFFER_BYTES_MAX)
    return -EINVAL;
  if (__atomic_load_n(&ctx->buffer_state_, __ATOMIC_RELAXED) != ST_OFF)
    return -EBUSY;
  ctx->buffer_ = NULL;
  ctx->buffer_bytes_ = pad8(bytes);
  ctx->buffer_level_ = (uint8_t)min_level;
  __atomic_store_n(&ctx->buffer_state_, ST_BUFFERING, __ATOMIC_RELAXED);
  floor_lower((int)min_level);
  return 0;
}

int trail__buffer_mode(const trail_ctx *ctx, trail_level level) {
  if (ctx == NULL)
    return TRAIL__BUF_DROP;
  int st = __atomic_load_n(&ctx->buffer_state_, __ATOMIC_RELAXED);
  if (st == ST_OFF || (int)level < ctx->buffer_level_)
    return TRAIL__BUF_DROP;
  return st == ST_FAILED ? TRAIL__BUF_THROUGH : TRAIL__BUF_KEEP;
}

int trail__buffer_active(const trail_ctx *ctx) {
  return ctx != NULL &&
         __atomic_load_n(&ctx->buffer_state_, __ATOMIC_RELAXED) == ST_BUFFERING;
}

/* Takes bytes from the pool; 0 when it has no room for them. */
static int pool_take(size_t bytes) {
  size_t used = __atomic_load_n(&pool_used, __ATOMIC_RELAXED);
  do {
    size_t max = __atomic_load_n(&pool_max, __ATOMIC_RELAXED);
    if (bytes > max || used > max - bytes)
      return 0;
  } while (!__atomic_compare_exchange_n(&pool_used, &used, used + bytes, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return 1;
}

static void pool_give(size_t bytes) {
  __atomic_sub_fetch(&pool_used, bytes, __ATOMIC_RELAXED);
}

/* The context's ring, made on its first entry; NULL without memory. */
static struct trail__ring_buf *ring_of(trail_ctx *ctx) {
  struct trail__ring_buf *rb = __atomic_load_n(&ctx->buffer_, __ATOMIC_ACQUIRE);
  if (rb != NULL)
    return rb;
  size_t cap = ctx->buffer_bytes_;
  if (!pool_take(sizeof *rb + cap))
    return NULL;
  rb = malloc(sizeof *rb + cap);
  if (rb == NULL) {
    pool_give(sizeof *rb + cap);
    return NULL;
  }
  rb->lock = 0;
  rb->cap = cap;
  rb->head = rb->tail = rb->lines = rb->dropped = 0;
  void *expected = NULL;
  if (__atomic_compare_exchange_n(&ctx->buffer_, &expected, rb, 0,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return rb;
  /* another thread made it first */
  free(rb);
  pool_give(sizeof *rb + cap);
  return expected;
}

static entry_head *head_at(struct trail__ring_buf *rb, uint64_t pos) {
  return (entry_head *)(void *)(rb->data + (size_t)(pos % rb->cap));
}

/* The entry at tail, past any padding: its position (tail moved on). */
static uint64_t skip_pad(const struct trail__ring_buf *rb, uint64_t tail) {
  const entry_head *h =
      (const entry_head *)(const void *)(rb->data + (size_t)(tail % rb->cap));
  if (tail != rb->head && h->kind == PAD)
    tail += rb->cap - (size_t)(tail % rb->cap);
  return tail;
}

/* Drops the oldest entry (there is one). */
static void drop_oldest(struct trail__ring_buf *rb) {
  rb->tail = skip_pad(rb, rb->tail);
  rb->tail += sizeof(entry_head) + pad8(head_at(rb, rb->tail)->len);
  rb->lines--;
  rb->dropped++;
}

/*
 * Makes room for an entry of need bytes at head, dropping the oldest, and
 * pads to the ring's end when it would not fit before it. Lock held.
 */
static void make_room(struct trail__ring_buf *rb, size_t need) {
  for (;;) {
    if (rb->head == rb->tail) { /* empty: start again at 0, where it fits */
      rb->head = rb->tail = 0;
      break;
    }
    size_t at = (size_t)(rb->head % rb->cap);
    size_t foot = need > rb->cap - at ? need + (rb->cap - at) : need;
    if (rb->cap - (size_t)(rb->head - rb->tail) >= foot)
      break;
    drop_oldest(rb);
  }
  size_t at = (size_t)(rb->head % rb->cap);
  if (need > rb->cap - at) {
    entry_head *h = head_at(rb, rb->head);
    h->kind = PAD;
    h->len = 0;
    rb->head += rb->cap - at;
  }
}

int trail__buffer_reserve(trail_ctx *ctx, size_t len, int kind,
                          trail_level level, char **out) {
  size_t need = sizeof(entry_head) + pad8(len);
  struct trail__ring_buf *rb = ring_of(ctx);
  if (rb == NULL || need > ctx->buffer_bytes_ || len > UINT32_MAX) {
    trail__count_buffer_discarded(1);
    return TRAIL__BUF_DROP;
  }
  ring_lock(rb);
  if (__atomic_load_n(&ctx->buffer_state_, __ATOMIC_RELAXED) != ST_BUFFERING) {
    ring_unlock(rb);
    return TRAIL__BUF_THROUGH; /* it failed meanwhile: written at once */
  }
  make_room(rb, need);
  entry_head *h = head_at(rb, rb->head);
  h->len = (uint32_t)len;
  h->kind = (uint8_t)kind;
  h->level = (uint8_t)level;
  *out = (char *)(h + 1);
  return TRAIL__BUF_KEEP; /* lock held until trail__buffer_commit() */
}

void trail__buffer_commit(trail_ctx *ctx) {
  struct trail__ring_buf *rb = ctx->buffer_;
  rb->head += sizeof(entry_head) + pad8(head_at(rb, rb->head)->len);
  rb->lines++;
  ring_unlock(rb);
  trail__count_buffered();
}

/*
 * Marks the request failed and hands fn the count of the lines dropped for
 * room (if any), then each entry, oldest first. Once FAILED nothing is
 * added, so the entries are read outside the lock. A second call finds the
 * request failed and hands nothing.
 */
void trail__buffer_drain(trail_ctx *ctx, trail__buffer_fn fn, void *arg) {
  if (!trail__buffer_active(ctx))
    return;
  struct trail__ring_buf *rb = __atomic_load_n(&ctx->buffer_, __ATOMIC_ACQUIRE);
  if (rb == NULL) {
    __atomic_store_n(&ctx->buffer_state_, ST_FAILED, __ATOMIC_RELAXED);
    return;
  }
  ring_lock(rb);
  __atomic_store_n(&ctx->buffer_state_, ST_FAILED, __ATOMIC_RELAXED);
  ring_unlock(rb);
  if (rb->dropped > 0) {
    trail__count_buffer_discarded(rb->dropped);
    fn(arg, TRAIL__BUF_DROPPED, TRAIL_LEVEL_WARN, NULL, (size_t)rb->dropped);
  }
  uint64_t n = 0;
  while ((rb->tail = skip_pad(rb, rb->tail)) != rb->head) {
    const entry_head *h = head_at(rb, rb->tail);
    fn(arg, h->kind, (trail_level)h->level, (const char *)(h + 1), h->len);
    rb->tail += sizeof(entry_head) + pad8(h->len);
    n++;
  }
  rb->lines = rb->dropped = 0;
  trail__count_buffer_flushed(n);
}

/*
 * From the crash handler: hands fn the entries of ctx's ring, if it is
 * buffering and its lock can be had at once (a thread that crashed while
 * holding it, or holds it now, leaves it as it is: it is never waited for).
 * The lock is not released and the state not changed: the process is
 * ending. Async-signal-safe.
 */
void trail__buffer_crash_each(trail_ctx *ctx, trail__buffer_fn fn, void *arg) {
  if (!trail__buffer_active(ctx))
    return;
  struct trail__ring_buf *rb = __atomic_load_n(&ctx->buffer_, __ATOMIC_ACQUIRE);
  if (rb == NULL || __atomic_exchange_n(&rb->lock, 1, __ATOMIC_ACQUIRE) != 0)
    return;
  if (rb->dropped > 0)
    fn(arg, TRAIL__BUF_DROPPED, TRAIL_LEVEL_WARN, NULL, (size_t)rb->dropped);
  for (uint64_t t = skip_pad(rb, rb->tail); t != rb->head;
       t = skip_pad(rb, t)) {
    const entry_head *h = head_at(rb, t);
    fn(arg, h->kind, (trail_level)h->level, (const char *)(h + 1), h->len);
    t += sizeof(entry_head) + pad8(h->len);
  }
}

TRAIL_API void trail_ctx_buffer_end(trail_ctx *ctx) {
  if (ctx == NULL ||
      __atomic_load_n(&ctx->buffer_state_, __ATOMIC_RELAXED) == ST_OFF)
    return;
  struct trail__ring_buf *rb = ctx->buffer_;
  if (rb != NULL) {
    if (rb->lines + rb->dropped > 0)
      trail__count_buffer_discarded(rb->lines + rb->dropped);
    pool_give(sizeof *rb + rb->cap);
    free(rb);
  }
  ctx->buffer_ = NULL;
  ctx->buffer_bytes_ = 0;
  __atomic_store_n(&ctx->buffer_state_, ST_OFF, __ATOMIC_RELAXED);
}

/* ---- TRAIL_BUFFER ------------------------------------------------------- */

int trail__buffer_defaults(trail_level *level, size_t *bytes) {
  *bytes = __atomic_load_n(&default_bytes, __ATOMIC_RELAXED);
  *level = (trail_level)__atomic_load_n(&default_level, __ATOMIC_RELAXED);
  return *bytes > 0;
}

/*
 * LEVEL,SIZE[,POOL]: the level and bytes every request of the middleware
 * buffers, and the pool all buffers share. Returns 0 or -1.
 */
int trail__buffer_parse(const char *v, trail_level *level, size_t *bytes,
                        size_t *pool) {
  const char *comma = v ? strchr(v, ',') : NULL;
  char name[16];
  if (comma == NULL || (size_t)(comma - v) >= sizeof name)
    return -1;
  memcpy(name, v, (size_t)(comma - v));
  name[comma - v] = '\0';
  uint64_t b, p = TRAIL_BUFFER_POOL_DEFAULT;
  const char *end;
  if (trail_level_parse(name, level) != 0 || !level_valid(*level) ||
      trail__parse_bytes(comma + 1, &end, &b) != 0)
    return -1;
  if (*end == ',' && (trail__parse_bytes(end + 1, &end, &p) != 0 || p < b))
    return -1;
  if (*end != '\0' || b < TRAIL_BUFFER_BYTES_MIN || b > TRAIL_BUFFER_BYTES_MAX)
    return -1;
  *bytes = (size_t)b;
  *pool = (size_t)p;
  return 0;
}

void trail__buffer_reset_locked(void) {
  __atomic_store_n(&default_bytes, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&default_level, TRAIL_LEVEL_DEBUG, __ATOMIC_RELAXED);
  __atomic_store_n(&pool_max, TRAIL_BUFFER_POOL_DEFAULT, __ATOMIC_RELAXED);
  __atomic_store_n(&trail__buffer_floor_v, TRAIL_LEVEL_OFF, __ATOMIC_RELAXED);
}

void trail__buffer_set_defaults(trail_level level, size_t bytes, size_t pool) {
  __atomic_store_n(&default_level, (int)level, __ATOMIC_RELAXED);
  __atomic_store_n(&default_bytes, bytes, __ATOMIC_RELAXED);
  __atomic_store_n(&pool_max, pool, __ATOMIC_RELAXED);
  if (bytes > 0)
    floor_lower((int)level);
}
