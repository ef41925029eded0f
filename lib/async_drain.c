/*
 * The crash handler's drain of the async ring: the lines still queued when
 * a fatal signal arrives are written before the fatal line, with
 * async-signal-safe calls only and without the queue's lock (the crashing
 * thread may hold it). The writer is parked first, so that nothing is
 * written twice and nothing is read while the writer zeroes it.
 */
#define _GNU_SOURCE
#include <time.h>

#include "ring.h"

/*
 * How long the drain waits for the writer to finish the batch it is
 * writing (it then parks), and, in all, for pending records to commit.
 */
#define CRASH_WRITER_WAIT_MS 100
#define CRASH_PENDING_WAIT_MS 50
#define CRASH_POLL_NS 100000L /* 0.1 ms */

/* Nanoseconds on the monotonic clock (async-signal-safe). */
static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void crash_pause(void) {
  struct timespec step = {0, CRASH_POLL_NS};
  nanosleep(&step, NULL);
}

/*
 * The record at *p for the drain: 1 with its data (as trail__ring_next()), or 0
 * at the end. A record reserved but not committed is waited for while the
 * budget *until lasts, then stepped over by the size its producer stored
 * with RING_PENDING; a length still 0 (the producer's store not yet seen) after
 * the budget ends the drain, as nothing says how far to step.
 */
static int drain_next(const trail__queue *a, uint64_t *p, uint64_t to,
                      int64_t *until, const char **data, uint32_t *len,
                      int *level, int *event) {
  while (*p < to) {
    if (trail__ring_next(a, p, to, data, len, level, event))
      return 1;
    if (*p >= to)
      return 0;
    uint32_t n = ring_committed_len(a, *p);
    if (ring_is_committed(n))
      return 0; /* committed but not trustworthy: stop */
    if (*until < 0)
      *until = mono_ns() + (int64_t)CRASH_PENDING_WAIT_MS * 1000000;
    if (mono_ns() < *until) {
      crash_pause();
      continue;
    }
    if (n == 0 || (n & ~RING_PENDING) > a->cap)
      return 0;
    *p += sizeof(ring_rec) +
          ring_pad8(n & ~RING_PENDING); /* never committed: skipped */
  }
  return 0;
}

/*
 * Waits, a bounded time, for the writer to finish the batch it is writing
 * and park; a writer waiting for lines parks before it writes again.
 */
static void wait_for_writer(const trail__queue *a) {
  int64_t until = mono_ns() + (int64_t)CRASH_WRITER_WAIT_MS * 1000000;
  while (!__atomic_load_n(&a->parked, __ATOMIC_ACQUIRE) &&
         __atomic_load_n(&a->writer_waiting, __ATOMIC_SEQ_CST) == WRITER_BUSY &&
         mono_ns() < until)
    crash_pause();
}

/*
 * Where the drain starts sink s (index i): where the writer finished it,
 * if that is past from (consumed) and within the ring's records.
 */
static uint64_t sink_start(const trail__queue *a, size_t i,
                           const trail__sink *s, uint64_t from, uint64_t to) {
  uint64_t pos = __atomic_load_n(&a->sink_done[i].pos, __ATOMIC_ACQUIRE);
  if (__atomic_load_n(&a->sink_done[i].sink, __ATOMIC_RELAXED) == s &&
      pos > from && pos <= to)
    return pos;
  return from;
}

/*
 * Writes the records of [from, to) at or above the sink's level to its
 * descriptor, events encoded into the crash buffer.
 */
static void drain_to(trail__queue *a, trail__sink *s, uint64_t from,
                     uint64_t to, int64_t *until) {
  uint64_t p = from;
  const char *data;
  uint32_t len;
  int level, event, cut;
  while (drain_next(a, &p, to, until, &data, &len, &level, &event)) {
    if (level < s->min)
      continue;
    if (event) {
      if (a->crash_buf == NULL)
        continue;
      size_t max = trail_max_line();
      if (max + TRAIL__BUF_SLACK > a->crash_cap)
        max = a->crash_cap - TRAIL__BUF_SLACK;
      len = (uint32_t)trail__async_encode_record(a, data, len, a->crash_buf,
                                                 max, &cut);
      if (len == 0)
        continue;
      data = a->crash_buf;
    }
    trail__sink_write_crash(s, data, len);
  }
}

/*
 * From the crash handler: writes every line still in the ring to the
 * descriptor sinks, with async-signal-safe calls only and without the lock
 * (the crashing thread may hold it). It closes the ring and sets crashing,
 * so that no record is queued after it (producers park), waits a bounded
 * time for the writer to finish its batch and park, then writes from where
 * the writer stopped: no line written twice, no byte read while zeroed.
 * A writer stuck in a sink past the wait leaves its batch to be written
 * again.
 */
void trail__async_crash_drain(void) {
  trail__queue *a = TRAIL__LOAD(&trail__async_active);
  if (a == NULL)
    return;
  /* seq_cst: ordered before the writer's and the producers' loads of it */
  __atomic_store_n(&a->crashing, 1, __ATOMIC_SEQ_CST);
  /* seq_cst, then retiring loaded: see trail_async_stop() */
  __atomic_fetch_add(&a->draining, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&a->retiring, __ATOMIC_SEQ_CST) ||
      TRAIL__LOAD(&a->ring) == NULL)
    return;
  /* seq_cst: after it no reservation succeeds (see reserve()) */
  __atomic_fetch_or(&a->head, RING_CLOSED, __ATOMIC_SEQ_CST);
  if (!trail__on_writer)
    wait_for_writer(a);
  /*
   * Again: the biased owner moves head with a plain store, which may have
   * overwritten the closing bit in its few instructions; what it queued
   * meanwhile is drained too.
   */
  uint64_t to =
      __atomic_fetch_or(&a->head, RING_CLOSED, __ATOMIC_SEQ_CST) & ~RING_CLOSED;
  uint64_t from = __atomic_load_n(&a->consumed, __ATOMIC_ACQUIRE);
  const trail__conf *c = trail__conf_get();
  if (to - from > a->cap)
    return;           /* torn read: nothing trustworthy to write */
  int64_t until = -1; /* the pending budget, started at the first */
  for (size_t i = 0; i < c->nsinks; i++)
    if (c->sinks[i]->kind != TRAIL__SINK_CALLBACK)
      drain_to(a, c->sinks[i], sink_start(a, i, c->sinks[i], from, to), to,
               &until);
}
