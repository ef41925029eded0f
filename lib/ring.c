/*
 * The ring's producer side: a logging thread reserves a record with one
 * compare-and-swap on head (or, on the thread the queue is biased to, a
 * plain store), writes it, and commits it by storing its length last; the
 * writer (async.c) and the crash drain (async_drain.c) read committed
 * records back with trail__ring_next(). Every ordering decision of the
 * lock-free path is here, each with the access it pairs with.
 */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

void trail__ring_park_forever(void) {
  struct timespec second = {1, 0};
  for (;;)
    nanosleep(&second, NULL);
}

/* Bytes a record of need bytes takes at head h: itself, and the padding
 * to the ring's end when it would not fit before it. */
static size_t footprint(const trail__queue *a, uint64_t h, size_t need) {
  size_t at = (size_t)(h % a->cap);
  return need > a->cap - at ? need + (a->cap - at) : need;
}

/* Wakes the writer if it waits (takes the lock: not for every event). */
static void wake_writer(trail__queue *a) {
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  pthread_cond_signal(&a->not_empty);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
}

/*
 * Counts a dropped event for the writer to report. A drop can race the
 * stop: the writer may have taken its last count and exited before this
 * one. Both sides are sequentially consistent: either the count precedes
 * the closing of head, and the stop's own look at the count after joining
 * the writer sees it (trail_async_stop()), or this thread sees head
 * closed and reports what is left itself. The exchange reports each once.
 */
static void count_drop(trail__queue *a) {
  __atomic_fetch_add(&a->dropped, 1, __ATOMIC_SEQ_CST);
  trail__count_dropped();
  if (__atomic_load_n(&a->head, __ATOMIC_SEQ_CST) & RING_CLOSED) {
    uint64_t n = __atomic_exchange_n(&a->dropped, 0, __ATOMIC_SEQ_CST);
    if (n > 0)
      trail__async_report_drops(n);
    return;
  }
  if (TRAIL__LOAD_RELAXED(&a->writer_waiting) != WRITER_BUSY)
    wake_writer(a);
}

/*
 * The ring is full. The drop policy counts the event and returns
 * TRAIL__ASYNC_DROPPED; the block policy waits until the writer has made
 * room (or the ring closed) and returns TRAIL__ASYNC_QUEUED: try again.
 */
static int wait_for_room(trail__queue *a, size_t need) {
  if (a->overflow == TRAIL_OVERFLOW_DROP) {
    count_drop(a);
    return TRAIL__ASYNC_DROPPED;
  }
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  __atomic_add_fetch(&a->producers_waiting, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    uint64_t h = __atomic_load_n(&a->head, __ATOMIC_SEQ_CST);
    uint64_t t = __atomic_load_n(&a->tail, __ATOMIC_SEQ_CST);
    if ((h & RING_CLOSED) || h + footprint(a, h, need) - t <= a->cap)
      break;
    if (TRAIL__LOAD_RELAXED(&a->writer_waiting) != WRITER_BUSY)
      pthread_cond_signal(&a->not_empty);
    pthread_cond_wait(&a->not_full, &a->lock);
  }
  __atomic_sub_fetch(&a->producers_waiting, 1, __ATOMIC_SEQ_CST);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  return TRAIL__ASYNC_QUEUED;
}

/*
 * A biased queue. Most services that care about a logging call's latency
 * log from one thread (an event loop), and a compare-and-swap on head is a
 * third of what such a call costs. So the first thread to queue becomes
 * the queue's owner and moves head with a plain store, announcing it in
 * in_cs; every other thread first ends the bias, once: it sets bias to
 * REVOKING, makes every thread of the process pass a full memory barrier
 * (membarrier(2)), and waits until the owner is out of its plain store.
 * From then on every thread, the owner included, uses compare-and-swap.
 * Without membarrier (old kernels, some sandboxes) the queue is never
 * biased.
 */
enum { UNBIASED = 0, REVOKING = 1, BIASED = 2 };
/* A build with -DTRAIL_BIASED_QUEUE=OFF (TRAIL_NO_BIAS): compare-and-swap
 * only, for every thread. */
#ifdef TRAIL_NO_BIAS
#define BIAS_ON 0
#else
#define BIAS_ON 1
#endif
static TRAIL__TLS char thread_token; /* its address names this thread */

/* Registers the process for expedited barriers; asked again in a child. */
static int membarrier_registered = -1;

static int membarrier_ready(void) {
#ifdef SYS_membarrier
  int r = TRAIL__LOAD_RELAXED(&membarrier_registered);
  if (r < 0) {
    r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                0) == 0;
    TRAIL__STORE(&membarrier_registered, r);
  }
  return r;
#else
  return 0;
#endif
}

/* A full memory barrier in every running thread of the process. */
static int barrier_everywhere(void) {
#ifdef SYS_membarrier
  return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
  return 0;
#endif
}

/* Biased when the process can make every thread pass a barrier. */
int trail__ring_initial_bias(void) {
  return BIAS_ON && membarrier_ready() && barrier_everywhere() ? BIASED
                                                               : UNBIASED;
}

/* The child registers again if it starts a writer. */
void trail__ring_fork_child(void) { membarrier_registered = -1; }

int trail__ring_unbias(trail__queue *a) {
  if (TRAIL__LOAD(&a->bias) == UNBIASED)
    return 1;
  if (TRAIL__LOAD_RELAXED(&a->barrier_refused))
    return 0;
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  if (TRAIL__LOAD_RELAXED(&a->bias) == BIASED) {
    TRAIL__STORE(&a->bias, REVOKING);
    if (barrier_everywhere()) {
      while (TRAIL__LOAD(&a->in_cs))
        sched_yield(); /* the owner is a few instructions from done */
      TRAIL__STORE(&a->bias, UNBIASED);
    } else {
      /* Nothing else orders the owner's store of in_cs before its load of
       * bias: no pause would be a proof. The owner keeps the queue. */
      TRAIL__STORE(&a->barrier_refused, 1);
      TRAIL__STORE(&a->bias, BIASED);
    }
  }
  int done = TRAIL__LOAD_RELAXED(&a->bias) == UNBIASED;
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  return done;
}

/* The padding record a wrap needs, and where the record goes. */
static size_t place(trail__queue *a, uint64_t h, size_t take, size_t need) {
  size_t pos = (size_t)(h % a->cap);
  if (take != need) { /* pad to the end; the record starts at 0 */
    ring_rec *skip = (ring_rec *)(void *)(a->ring + pos);
    skip->level = 0;
    /* seq_cst: the writer may find this, not the record, at its tail; see
     * commit() (a wrap is rare: the cost does not matter) */
    __atomic_store_n(&skip->len, RING_SKIP, __ATOMIC_SEQ_CST);
    pos = 0;
  }
  /* The one extra store of the hot path: relaxed, commit() overwrites it
   * with release; only the crash drain reads it (see RING_PENDING). */
  __atomic_store_n(ring_len_at(a->ring, pos),
                   RING_PENDING | (uint32_t)(need - sizeof(ring_rec)),
                   __ATOMIC_RELAXED);
  return pos;
}

/*
 * The owner's reservation: head moved with a plain store while in_cs says
 * so (a compiler barrier only: trail__ring_unbias() supplies the memory
 * barrier). Returns 0 when the queue is not, or no longer, biased to this
 * thread, or has no room (the shared path then takes over).
 */
static int reserve_owned(trail__queue *a, size_t need, size_t *at,
                         uint64_t *used) {
  __atomic_store_n(&a->in_cs, 1, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  int ok = 0;
  if (__atomic_load_n(&a->bias, __ATOMIC_RELAXED) == BIASED) {
    uint64_t h = TRAIL__LOAD_RELAXED(&a->head);
    uint64_t t = TRAIL__LOAD(&a->tail);
    size_t take = footprint(a, h, need);
    if (!(h & RING_CLOSED) && h + take - t <= a->cap) {
      __atomic_store_n(&a->head, h + take, __ATOMIC_RELAXED);
      *at = place(a, h, take, need);
      *used = h + take - t;
      ok = 1;
    }
  }
  __atomic_store_n(&a->in_cs, 0, __ATOMIC_RELEASE);
  return ok;
}

/*
 * Reserves need bytes at the head: TRAIL__ASYNC_QUEUED with *at (the
 * record's offset in the ring) and *used (bytes queued with it), or
 * TRAIL__ASYNC_DROPPED, or TRAIL__ASYNC_OFF when the ring is closed, or
 * biased to another thread for good (the caller then writes the line
 * itself: a stop never loses a line).
 */
static int reserve(trail__queue *a, size_t need, size_t *at, uint64_t *used) {
  const void *owner = TRAIL__LOAD_RELAXED(&a->owner);
  if (owner == &thread_token) {
    if (reserve_owned(a, need, at, used))
      return TRAIL__ASYNC_QUEUED;
  } else if (TRAIL__LOAD(&a->bias) != UNBIASED) {
    const void *none = NULL;
    if (owner == NULL &&
        __atomic_compare_exchange_n(&a->owner, &none, &thread_token, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED) &&
        reserve_owned(a, need, at, used))
      return TRAIL__ASYNC_QUEUED;
    if (TRAIL__LOAD_RELAXED(&a->owner) != &thread_token &&
        !trail__ring_unbias(a))
      return TRAIL__ASYNC_OFF; /* the caller writes its line itself */
  }
  uint64_t h = TRAIL__LOAD_RELAXED(&a->head);
  for (;;) {
    if (h & RING_CLOSED) {
      /* Closed by the crash handler: a line written now would follow the
       * fatal line. The process is dying: wait for it. */
      if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
        trail__ring_park_forever();
      trail__async_wait_drained(a);
      return TRAIL__ASYNC_OFF;
    }
    uint64_t t = TRAIL__LOAD(&a->tail);
    size_t take = footprint(a, h, need);
    if (h + take - t > a->cap) {
      int r = wait_for_room(a, need);
      if (r != TRAIL__ASYNC_QUEUED)
        return r;
      h = TRAIL__LOAD_RELAXED(&a->head);
      continue;
    }
    if (__atomic_compare_exchange_n(&a->head, &h, h + take, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED)) {
      *at = place(a, h, take, need);
      *used = h + take - t;
      return TRAIL__ASYNC_QUEUED;
    }
  }
}

/*
 * Commits the record written at at: its length last, so that the writer
 * never reads a record half written. Then the high-water mark, and the
 * writer woken if it sleeps, or naps while the ring fills up.
 */
static void commit(trail__queue *a, size_t at, uint32_t len, uint32_t level,
                   uint64_t used) {
  ring_rec *r = (ring_rec *)(void *)(a->ring + at);
  r->level = level;
  /*
   * The length is stored, and writer_waiting then loaded, sequentially
   * consistent, against the writer's store of SLEEPING and its load of the
   * length at tail (writer_main), also both seq_cst. With weaker orders
   * (a release store, a relaxed load) the CPU may perform the load before
   * the store is visible (store buffering): each side misses the other and
   * the writer sleeps with a record queued. In the single total order of
   * these four accesses either the writer's load of the length follows
   * this store and it sees the record, or it precedes it, and so does the
   * store of SLEEPING, which the load below then sees. (A fence would do
   * too, but ThreadSanitizer does not model fences; on Arm this costs
   * nothing over release/relaxed, on x86 an xchg in place of a mov.)
   */
  __atomic_store_n(&r->len, len, __ATOMIC_SEQ_CST);
  uint64_t hw = TRAIL__LOAD_RELAXED(&a->high);
  while (used > hw &&
         !__atomic_compare_exchange_n(&a->high, &hw, used, 1, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
  }
  int w = __atomic_load_n(&a->writer_waiting, __ATOMIC_SEQ_CST);
  if (w == WRITER_SLEEPING || (w == WRITER_NAPPING && used >= a->cap / 4))
    wake_writer(a);
}

/*
 * Queues one finished line: TRAIL__ASYNC_QUEUED, TRAIL__ASYNC_DROPPED (the
 * drop policy, ring full), or TRAIL__ASYNC_OFF when the writer is stopping.
 */
static int push(trail__queue *a, trail_level level, const char *line,
                size_t len) {
  size_t need = sizeof(ring_rec) + ring_pad8(len);
  /*
   * A line larger than a quarter of the ring (the maximum line was raised
   * after the start) could wait forever for room: it is written by the
   * caller instead, like a line logged while the writer stops, once the
   * lines queued before it are written (block policy).
   */
  if (trail__on_writer)
    return TRAIL__ASYNC_OFF;
  if (need > a->cap / 4) {
    /* After the lines queued before it, as the thread logged them; the
     * drop policy never waits. */
    if (a->overflow != TRAIL_OVERFLOW_DROP && trail__locks_held() == 0)
      (void)trail__async_flush();
    return TRAIL__ASYNC_OFF;
  }
  size_t at;
  uint64_t used;
  int r = reserve(a, need, &at, &used);
  if (r != TRAIL__ASYNC_QUEUED)
    return r;
  memcpy(a->ring + at + sizeof(ring_rec), line, len);
  commit(a, at, (uint32_t)len, (uint32_t)level, used);
  return TRAIL__ASYNC_QUEUED;
}

/*
 * Queues an event for the writer to encode. While the ring is more than
 * half full the writer is behind: the caller then encodes its own line
 * (TRAIL__ASYNC_OFF), so that both cores share the work instead of the
 * writer alone setting the pace.
 */
int trail__async_push_event(trail__event *ev) {
  trail__queue *a = TRAIL__LOAD(&trail__async_active);
  if (a == NULL || trail__on_writer)
    return TRAIL__ASYNC_OFF;
  uint64_t used = TRAIL__LOAD_RELAXED(&a->head) - TRAIL__LOAD_RELAXED(&a->tail);
  if (used > a->cap / 2) {
    if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
      trail__ring_park_forever(); /* closed by the crash handler: see reserve()
                                   */
    return TRAIL__ASYNC_OFF;      /* also when closed: head's top bit is set */
  }
  uint32_t slen[TRAIL__RECORD_KEYS_MAX];
  size_t len = trail__record_size(ev, slen);
  size_t need = sizeof(ring_rec) + len;
  if (len == 0 || need > a->cap / 4)
    return TRAIL__ASYNC_OFF;
  if (a->use_tsc) {
    ev->sec = (int64_t)trail__tsc();
    ev->tsc = 1;
  } else {
    trail__now(&ev->sec, &ev->usec);
  }
  size_t at;
  int r = reserve(a, need, &at, &used);
  if (r != TRAIL__ASYNC_QUEUED)
    return r;
  trail__record_write(a->ring + at + sizeof(ring_rec), ev, slen);
  commit(a, at, (uint32_t)len, (uint32_t)ev->level | REC_EVENT, used);
  return TRAIL__ASYNC_QUEUED;
}

/* The hand-off from the logging call; see push(). */
int trail__async_push(trail_level level, const char *line, size_t len) {
  trail__queue *a = TRAIL__LOAD(&trail__async_active);
  if (a == NULL)
    return TRAIL__ASYNC_OFF;
  return push(a, level, line, len);
}

/*
 * The next record in [*from, to): skips the padding record at the ring's
 * end, sets *data, *len, *level and *event (an event record, not a line),
 * and moves *from past the record. Returns 0 when there is none, when the
 * next is not yet committed, or (read by the crash handler while the
 * writer runs) when the record cannot be trusted.
 */
int trail__ring_next(const trail__queue *a, uint64_t *from, uint64_t to,
                     const char **data, uint32_t *len, int *level, int *event) {
  while (*from < to) {
    size_t at = (size_t)(*from % a->cap);
    uint32_t n = ring_committed_len(a, *from);
    if (!ring_is_committed(n))
      return 0;
    if (n == RING_SKIP) {
      *from += a->cap - at;
      continue;
    }
    ring_rec r;
    memcpy(&r, a->ring + at, sizeof r);
    if (n > a->cap || (r.level & 0xff) > TRAIL_LEVEL_FATAL)
      return 0;
    *data = a->ring + at + sizeof r;
    *len = n;
    *level = (int)(r.level & 0xff);
    *event = (r.level & REC_EVENT) != 0;
    *from += sizeof r + ring_pad8(n);
    return 1;
  }
  return 0;
}

void trail__ring_zero(trail__queue *a, uint64_t from, uint64_t to) {
  while (from < to) {
    size_t at = (size_t)(from % a->cap);
    size_t n = a->cap - at;
    if (n > to - from)
      n = (size_t)(to - from);
    memset(a->ring + at, 0, n);
    from += n;
  }
}
