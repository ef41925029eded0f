/*
 * Draining the async ring without its writer. The crash handler's drain:
 * the lines still queued when a fatal signal arrives are written before the
 * fatal line, with async-signal-safe calls only and without the queue's
 * lock (the crashing thread may hold it); the writer is parked first, so
 * that nothing is written twice and nothing is read while the writer zeroes
 * it. And the drain of a stop that gave a stuck writer up: the lines it had
 * not written go to the other sinks.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>

#include "ring.h"

/*
 * How long the drain waits for the writer to finish the batch it is
 * writing (it then parks), and, in all, for pending records to commit.
 */
#define CRASH_WRITER_WAIT_MS 100
#define CRASH_PENDING_WAIT_MS 50
#define CRASH_POLL_NS 100000L /* 0.1 ms */

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
      *until = trail_now_ns() + (int64_t)CRASH_PENDING_WAIT_MS * 1000000;
    if (trail_now_ns() < *until) {
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
  int64_t until = trail_now_ns() + (int64_t)CRASH_WRITER_WAIT_MS * 1000000;
  while (!__atomic_load_n(&a->parked, __ATOMIC_ACQUIRE) &&
         __atomic_load_n(&a->writer_waiting, __ATOMIC_SEQ_CST) == WRITER_BUSY &&
         trail_now_ns() < until)
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

/* How a drain writes: the crash handler's way, the stop's, or not at all. */
enum drain_mode { DRAIN_CRASH, DRAIN_STOP, DRAIN_COUNT };

typedef struct drain_out {
  enum drain_mode mode;
  char *buf; /* events are encoded here */
  size_t cap;
} drain_out;

/* A line to s: async-signal-safe for the crash handler, else as any. */
static void drain_write(const drain_out *o, trail__sink *s, const char *p,
                        size_t n, int level) {
  if (o->mode == DRAIN_CRASH) {
    trail__sink_write_crash(s, p, n);
  } else if (s->kind == TRAIL__SINK_CALLBACK) {
    s->fn(s->user, (trail_level)level, p, n);
  } else {
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    trail__sink_writev(s, &iov, 1);
  }
}

/*
 * Writes the records of [from, to) at or above the sink's level to it,
 * events encoded into o->buf (or only counts them); returns how many.
 */
static uint64_t drain_to(trail__queue *a, trail__sink *s, uint64_t from,
                         uint64_t to, int64_t *until, const drain_out *o) {
  uint64_t p = from, lines = 0;
  const char *data;
  uint32_t len;
  int level, event, cut;
  while (drain_next(a, &p, to, until, &data, &len, &level, &event)) {
    if (level < s->min)
      continue;
    lines++;
    if (o->mode == DRAIN_COUNT) {
      trail__count_write_error(); /* a line the sink did not get */
      continue;
    }
    /* seq_cst: a crash from now on is the crash handler's to drain */
    if (o->mode == DRAIN_STOP &&
        __atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
      trail__ring_park_forever();
    if (event) {
      if (o->buf == NULL) {
        if (o->mode == DRAIN_STOP)
          trail__count_write_error(); /* no memory to encode it */
        continue;
      }
      size_t max = trail_max_line();
      if (max + TRAIL__BUF_SLACK > o->cap)
        max = o->cap - TRAIL__BUF_SLACK;
      len =
          (uint32_t)trail__async_encode_record(a, data, len, o->buf, max, &cut);
      if (len == 0)
        continue;
      data = o->buf;
    }
    drain_write(o, s, data, len, level);
  }
  return lines;
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
  drain_out o = {.mode = DRAIN_CRASH, .buf = a->crash_buf, .cap = a->crash_cap};
  for (size_t i = 0; i < c->nsinks; i++)
    if (c->sinks[i]->kind != TRAIL__SINK_CALLBACK)
      drain_to(a, c->sinks[i], sink_start(a, i, c->sinks[i], from, to), to,
               &until, &o);
}

/*
 * The stop's drain, once it gave the writer up (see trail_async_stop()):
 * the writer no longer moves consumed or zeroes the ring, and reads only
 * the records it has already collected, so every record from consumed on
 * stays as it was. Each sink but the stuck one gets them from where the
 * writer left it; those of the stuck one are counted instead.
 */
uint64_t trail__async_give_up_drain(trail__queue *a) {
  uint64_t to = TRAIL__LOAD(&a->head) & ~RING_CLOSED; /* closed: final */
  uint64_t from = __atomic_load_n(&a->consumed, __ATOMIC_ACQUIRE);
  const trail__conf *c = trail__conf_get();
  size_t cap = trail_max_line() + TRAIL__BUF_SLACK;
  drain_out o = {.mode = DRAIN_STOP, .buf = malloc(cap), .cap = cap};
  drain_out count = {.mode = DRAIN_COUNT};
  int64_t until = -1;
  uint64_t lost = 0;
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    uint64_t start = sink_start(a, i, s, from, to);
    if (s == a->stuck)
      lost = drain_to(a, s, start, to, &until, &count);
    else
      drain_to(a, s, start, to, &until, &o);
  }
  free(o.buf);
  return lost;
}
