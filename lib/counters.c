/*
 * Process-wide counters: what was written, what failed, what was cut.
 *
 * The per-event counters (lines by level, bytes) are kept per thread: an
 * atomic add on a cache line that every logging thread shares costs more
 * than encoding a field, while a thread's own block is a plain load and
 * store (relaxed atomics, so a reader on another thread sees a value, never
 * a torn one). A reader sums the blocks of living threads and what exited
 * threads left behind. The rare counters (errors, cuts, drops) stay global.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct thread_block {
  uint64_t events[TRAIL_LEVEL_COUNT];
  uint64_t bytes;
  uint64_t buffered; /* lines kept in a request's buffer */
  struct thread_block *next, *prev;
} thread_block;

static struct {
  uint64_t write_errors;
  uint64_t truncated;
  uint64_t dropped;
  uint64_t high_water;
  uint64_t suppressed;
  uint64_t buffer_flushed;
  uint64_t buffer_discarded;
} counters;

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static thread_block *blocks;  /* living threads' blocks */
static thread_block departed; /* sums of exited threads */
static thread_block base;     /* totals at the last reset */
static TRAIL__TLS thread_block *mine;
static TRAIL__TLS int released; /* this thread's block is gone: it exits */
static pthread_key_t block_key;
static pthread_once_t block_once = PTHREAD_ONCE_INIT;

static void add_block(thread_block *to, const thread_block *from) {
  for (int i = 0; i < TRAIL_LEVEL_COUNT; i++)
    to->events[i] += TRAIL__LOAD_RELAXED(&from->events[i]);
  to->bytes += TRAIL__LOAD_RELAXED(&from->bytes);
  to->buffered += TRAIL__LOAD_RELAXED(&from->buffered);
}

/*
 * A thread exits: its counts move to the departed sums. Code that runs
 * after this on the same thread (a later key destructor that logs) counts
 * in the departed sums directly: see my_block().
 */
static void block_release(void *p) {
  thread_block *b = p;
  trail__lock_take(&blocks_lock, TRAIL__RANK_COUNTERS);
  add_block(&departed, b);
  if (b->prev)
    b->prev->next = b->next;
  else
    blocks = b->next;
  if (b->next)
    b->next->prev = b->prev;
  trail__lock_drop(&blocks_lock, TRAIL__RANK_COUNTERS);
  mine = NULL;
  released = 1;
  free(b);
}

static void block_key_make(void) {
  pthread_key_create(&block_key, block_release);
}

/* The calling thread's block, made on its first line; NULL once released
 * (and out of memory). */
static thread_block *my_block(void) {
  if (mine != NULL || released)
    return mine;
  pthread_once(&block_once, block_key_make);
  thread_block *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  trail__lock_take(&blocks_lock, TRAIL__RANK_COUNTERS);
  b->next = blocks;
  if (blocks)
    blocks->prev = b;
  blocks = b;
  trail__lock_drop(&blocks_lock, TRAIL__RANK_COUNTERS);
  pthread_setspecific(block_key, b);
  mine = b;
  trail__crash_stack_thread(); /* the thread's first line */
  return b;
}

static void bump(uint64_t *p, uint64_t v) {
  __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v,
                   __ATOMIC_RELAXED);
}

/*
 * Counts one event at level (none when level < 0) and bytes in the
 * calling thread's block.
 */
static void count(int level, size_t bytes) {
  thread_block *b = my_block();
  if (b == NULL) {
    /* No block (exiting, or out of memory): the departed sums, locked. */
    trail__lock_take(&blocks_lock, TRAIL__RANK_COUNTERS);
    if (level >= 0)
      departed.events[level]++;
    departed.bytes += bytes;
    trail__lock_drop(&blocks_lock, TRAIL__RANK_COUNTERS);
    return;
  }
  if (level >= 0)
    bump(&b->events[level], 1);
  if (bytes > 0)
    bump(&b->bytes, (uint64_t)bytes);
}

void trail__count_event(trail_level level, size_t bytes) {
  count((int)level, bytes);
}

/* An event queued for the writer, which counts its bytes when it encodes it. */
void trail__count_queued(trail_level level) { count((int)level, 0); }

/* The bytes of a line the async writer encoded (its event was counted by
 * the logging thread). 0 only makes the thread's block. */
void trail__count_bytes(size_t bytes) { count(-1, bytes); }

/* A line kept in its request's buffer: per thread, as events are. */
void trail__count_buffered(void) {
  thread_block *b = my_block();
  if (b != NULL) {
    bump(&b->buffered, 1);
    return;
  }
  trail__lock_take(&blocks_lock, TRAIL__RANK_COUNTERS);
  departed.buffered++;
  trail__lock_drop(&blocks_lock, TRAIL__RANK_COUNTERS);
}

/* Per request, not per line: the shared counters do. */
void trail__count_buffer_flushed(uint64_t n) {
  TRAIL__ADD(&counters.buffer_flushed, n);
}

void trail__count_buffer_discarded(uint64_t n) {
  TRAIL__ADD(&counters.buffer_discarded, n);
}

void trail__count_write_error(void) { TRAIL__ADD(&counters.write_errors, 1); }

void trail__count_truncated(void) { TRAIL__ADD(&counters.truncated, 1); }

void trail__count_dropped(void) { TRAIL__ADD(&counters.dropped, 1); }

void trail__count_suppressed(void) { TRAIL__ADD(&counters.suppressed, 1); }

void trail__count_high_water(uint64_t bytes) {
  uint64_t cur = TRAIL__LOAD_RELAXED(&counters.high_water);
  while (bytes > cur &&
         !__atomic_compare_exchange_n(&counters.high_water, &cur, bytes, 1,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

/* What the counters say now: the totals less the base (lock held). Each
 * per-thread count only grows and an exiting thread moves its counts to
 * departed under the lock, so no total is below the base taken earlier. */
static void totals_locked(thread_block *t) {
  memset(t, 0, sizeof *t);
  add_block(t, &departed);
  for (thread_block *b = blocks; b; b = b->next)
    add_block(t, b);
}

/* A snapshot of every counter; callable from any thread at any time. */
TRAIL_API void trail_counters_get(trail_counters *out) {
  if (out == NULL)
    return;
  memset(out, 0, sizeof *out);
  thread_block t;
  trail__lock_take(&blocks_lock, TRAIL__RANK_COUNTERS);
  totals_locked(&t);
  for (int i = 0; i < TRAIL_LEVEL_COUNT; i++)
    out->events[i] = t.events[i] - base.events[i];
  out->bytes = t.bytes - base.bytes;
  out->buffered = t.buffered - base.buffered;
  trail__lock_drop(&blocks_lock, TRAIL__RANK_COUNTERS);
  out->buffer_flushed = TRAIL__LOAD_RELAXED(&counters.buffer_flushed);
  out->buffer_discarded = TRAIL__LOAD_RELAXED(&counters.buffer_discarded);
  out->write_errors = TRAIL__LOAD_RELAXED(&counters.write_errors);
  out->truncated = TRAIL__LOAD_RELAXED(&counters.truncated);
  out->dropped = TRAIL__LOAD_RELAXED(&counters.dropped);
  out->suppressed = TRAIL__LOAD_RELAXED(&counters.suppressed);
  trail__count_high_water(trail__async_high_water());
  out->queue_high_water = TRAIL__LOAD_RELAXED(&counters.high_water);
}

/*
 * Sets every counter to zero (tests, or a process that reports deltas).
 * The per-thread counts are not written by another thread: the totals at
 * this moment become the base that later snapshots subtract.
 */
TRAIL_API void trail_counters_reset(void) {
  trail__lock_take(&blocks_lock, TRAIL__RANK_COUNTERS);
  totals_locked(&base);
  trail__lock_drop(&blocks_lock, TRAIL__RANK_COUNTERS);
  __atomic_store_n(&counters.write_errors, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.truncated, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.dropped, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.suppressed, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.buffer_flushed, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.buffer_discarded, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.high_water, 0, __ATOMIC_RELAXED);
  trail__async_reset_high_water();
}

/* fork(): the child starts with the blocks' list whole and its lock free.
 * The blocks of the parent's other threads stay on the list, their counts
 * part of the child's totals as of the fork. */
void trail__counters_fork_prepare(void) {
  trail__lock_take(&blocks_lock, TRAIL__RANK_COUNTERS);
}

void trail__counters_fork_release(void) {
  trail__lock_drop(&blocks_lock, TRAIL__RANK_COUNTERS);
}
