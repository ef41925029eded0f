/*
 * Flood control: opt-in sampling per logger and message. Of the events a
 * logger writes with one message in one second, the first `first` pass,
 * then every `thereafter`-th; the rest are suppressed, counted, and
 * reported in a line of their own, so that a hot error loop cannot drown
 * the disk or Loki and yet nothing disappears without a trace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define SLOTS 64 /* messages tracked per logger; collisions share a slot */

typedef struct slot {
  uint64_t sec;   /* the second this slot counts */
  uint64_t hash;  /* the message it counts */
  uint64_t count; /* events so far in that second */
} slot;

struct trail__sampler {
  uint32_t first;
  uint32_t thereafter;
  uint64_t suppressed; /* since the last report */
  struct trail__sampler *retired_next;
  slot slots[SLOTS];
};

static uint64_t fnv1a(const char *s) {
  uint64_t h = UINT64_C(14695981039346656037);
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= UINT64_C(1099511628211);
  }
  return h;
}

/*
 * The coarse clock is enough to tell seconds apart and costs a few
 * nanoseconds from the vDSO.
 */
static uint64_t now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec;
}

/* The clock, replaceable by tests that must not depend on real seconds. */
uint64_t (*trail__sample_clock)(void) = now_sec;

/*
 * 1 when the event passes. Races between threads on one slot only blur
 * the count by an event or two at a second's edge: each count is an atomic
 * add, and a slot changing second or message is reset by whoever sees it.
 * Two messages that hash to one slot take turns resetting it, which lets
 * more of them through, never fewer.
 */
int trail__sample(trail_logger *lg, trail_level level, const char *msg) {
  trail__sampler *s = TRAIL__LOAD(&lg->sampler);
  if (s == NULL || level == TRAIL_LEVEL_FATAL)
    return 1;
  uint64_t h = fnv1a(msg ? msg : "");
  slot *sl = &s->slots[h % SLOTS];
  uint64_t sec = trail__sample_clock();
  if (TRAIL__LOAD_RELAXED(&sl->sec) != sec ||
      TRAIL__LOAD_RELAXED(&sl->hash) != h) {
    __atomic_store_n(&sl->count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sl->hash, h, __ATOMIC_RELAXED);
    __atomic_store_n(&sl->sec, sec, __ATOMIC_RELAXED);
  }
  uint64_t n = __atomic_add_fetch(&sl->count, 1, __ATOMIC_RELAXED);
  if (n <= s->first)
    return 1;
  if (s->thereafter != 0 && (n - s->first) % s->thereafter == 0)
    return 1;
  TRAIL__ADD(&s->suppressed, 1);
  trail__count_suppressed();
  return 0;
}

/* Takes the count of suppressed events not yet reported (0 if none). */
uint64_t trail__sample_take(trail_logger *lg) {
  uint64_t n = 0;
  if (TRAIL__LOAD_RELAXED(&lg->carried) != 0)
    n = __atomic_exchange_n(&lg->carried, 0, __ATOMIC_RELAXED);
  trail__sampler *s = TRAIL__LOAD(&lg->sampler);
  if (s != NULL && TRAIL__LOAD_RELAXED(&s->suppressed) != 0)
    n += __atomic_exchange_n(&s->suppressed, 0, __ATOMIC_RELAXED);
  return n;
}

int trail__sample_pending(const trail_logger *lg) {
  const trail__sampler *s = TRAIL__LOAD(&lg->sampler);
  return TRAIL__LOAD_RELAXED(&lg->carried) != 0 ||
         (s != NULL && TRAIL__LOAD_RELAXED(&s->suppressed) != 0);
}

void trail__sampler_carry_locked(trail_logger *lg, uint64_t n) {
  if (n > 0)
    TRAIL__ADD(&lg->carried, n);
}

/*
 * A normal exit reports what is still held back, once sampling was ever on.
 * The order with the async writer's own exit drain does not matter:
 * handlers run in reverse order of registration, so either the report is
 * queued before the drain, or the drain has stopped the writer and the
 * report is written directly.
 */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static void report_at_exit(void) { trail__sample_report_all(); }
static void register_exit_report(void) { atexit(report_at_exit); }

trail__sampler *trail__sampler_new(uint32_t first, uint32_t thereafter) {
  pthread_once(&exit_once, register_exit_report);
  trail__sampler *s = calloc(1, sizeof *s);
  if (s != NULL) {
    s->first = first;
    s->thereafter = thereafter;
  }
  return s;
}

static trail__sampler *retired; /* replaced samplers: a thread may hold one */

/*
 * Replaces lg's sampler (config lock held). What the old one held back and
 * did not yet report is returned, for the caller to report once the lock
 * is released: a change of setting never makes suppressed events vanish.
 * The old sampler is kept, not freed, because another thread may still be
 * counting in it; trail_shutdown() frees them.
 */
uint64_t trail__sampler_set_locked(trail_logger *lg, trail__sampler *s) {
  trail__sampler *old = lg->sampler;
  TRAIL__STORE(&lg->sampler, s);
  if (old == NULL)
    return 0;
  old->retired_next = retired;
  retired = old;
  return __atomic_exchange_n(&old->suppressed, 0, __ATOMIC_RELAXED);
}

/* Frees the replaced samplers; no thread may log (trail_shutdown). */
void trail__samplers_free_retired_locked(void) {
  for (trail__sampler *s = retired, *n; s; s = n) {
    n = s->retired_next;
    free(s);
  }
  retired = NULL;
}

/*
 * Turns sampling on for one logger (first > 0) or off (first == 0); what
 * the previous setting held back is reported now.
 */
TRAIL_API int trail_logger_set_sampling(trail_logger *logger, uint32_t first,
                                        uint32_t thereafter) {
  if (logger == NULL)
    logger = trail__root();
  trail__sampler *s = NULL;
  if (first > 0 && (s = trail__sampler_new(first, thereafter)) == NULL)
    return -ENOMEM;
  trail__config_lock();
  uint64_t pending = trail__sampler_set_locked(logger, s);
  trail__config_unlock();
  if (pending > 0)
    trail__sample_report(logger, pending);
  return 0;
}

/* A child's sampler goes with the child (nobody else can hold it). */
void trail__sampler_free(trail__sampler *s) { free(s); }

uint32_t trail__sampler_first(const trail__sampler *s) { return s->first; }
uint32_t trail__sampler_thereafter(const trail__sampler *s) {
  return s->thereafter;
}
