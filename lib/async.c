/*
 * The asynchronous writer: logging threads copy their event into a bounded
 * ring of bytes (record.c), or, when the writer falls behind, encode the
 * line themselves as in sync mode and copy that; one writer thread takes
 * everything queued at once, encodes the events and hands the lines to
 * each sink in as few writev(2) calls as possible. What happens when the ring
 * is full is the user's choice: wait for room (nothing lost) or drop and count;
 * drops are written as a line of their own by the writer, never silent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_QUEUE ((size_t)2 * 1024 * 1024)
#define SKIP UINT32_MAX /* a record that only pads to the end of the ring */
/*
 * A reserved record not yet committed: its length word holds PENDING and
 * the record's size, stored (relaxed) by the producer right after it wins
 * the reservation, so that the crash drain can step over a record whose
 * producer never commits (it crashed, or is stopped by the crash).
 */
#define PENDING UINT32_C(0x80000000)

/*
 * The crash drain: how long it waits for the writer to finish the batch it
 * is writing (it then parks), and, in all, for pending records to commit.
 */
#define CRASH_WRITER_WAIT_MS 100
#define CRASH_PENDING_WAIT_MS 50
#define CRASH_POLL_NS 100000L /* 0.1 ms */
#define BATCH_IOV 1024        /* IOV_MAX on Linux */

/*
 * How the writer waits for lines. Waking a thread costs a system call and
 * a context switch; paid for every line, that is more than writing it. So
 * while lines keep coming the writer naps (NAP_NS at most) and producers
 * wake it only when the ring is a quarter full or someone flushes; after
 * IDLE_NAPS naps in a row with nothing to do it sleeps, and the next line
 * wakes it at once. A line thus reaches the kernel within NAP_NS while the
 * service is busy, and at once after a quiet spell.
 */
#define NAP_NS 1000000L /* 1 ms */
#define IDLE_NAPS 100
enum { WRITER_BUSY = 0, WRITER_NAPPING = 1, WRITER_SLEEPING = 2 };

/*
 * A record: this header, then the line or the event record (REC_EVENT set
 * in level), padded to 8 bytes.
 */
typedef struct rec {
  uint32_t len;
  uint32_t level;
} rec;
#define REC_EVENT 0x100u

/* The writer encodes events into an arena of this size (plus one line). */
#define ARENA ((size_t)256 * 1024)
/* Keys an event read back from a record can have: see TRAIL__RECORD_KEYS_MAX.
 */
#define EVENT_KEYS (2 * TRAIL__RECORD_KEYS_MAX + TRAIL_CTX_FIELDS_MAX + 1)

typedef struct line_ref {
  const char *p;
  uint32_t len;
  int level;
} line_ref;

typedef struct async_state {
  /*
   * The fields fall on three cache lines by who writes them, so that a
   * producer's event does not wait for a line the writer just wrote to:
   * set once at the start ...
   */
  char *ring;
  size_t cap; /* bytes, a multiple of 8 */
  trail_overflow overflow;
  int use_tsc; /* events are stamped with the counter */
  /* ... written by producers (atomics; the lock is for the slow moments:
   * waiting for room, waking the writer, flush, stop) ... */
  _Alignas(64) pthread_mutex_t lock;
  uint64_t head;    /* bytes ever queued (producers advance it) */
  uint64_t high;    /* most bytes queued at once */
  uint64_t dropped; /* not yet reported in a line */
  int producers_waiting;
  int stopping;
  int ready;         /* the writer has made what it needs and waits for lines */
  const void *owner; /* the thread the queue is biased to (see reserve()) */
  int in_cs;         /* the owner is moving head with a plain store */
  int bias;          /* BIASED, REVOKING or UNBIASED */
  /*
   * The crash handler runs (seq_cst, set once): the writer and producers
   * that find the ring closed park, a stop never frees the ring.
   */
  int crashing;
  int draining; /* crash drains reading the ring (seq_cst, see stop) */
  int retiring; /* the stop is about to free the ring (seq_cst) */
  /* ... and written by the writer. */
  _Alignas(64) uint64_t tail; /* bytes ever written (the writer advances it) */
  /*
   * Where the writer has finished writing to every sink: stored (release)
   * after each batch, before those bytes are zeroed; the crash drain reads
   * it (acquire) and starts there, so nothing written is written twice and
   * nothing being zeroed is read.
   */
  uint64_t consumed;
  int parked;         /* the writer stopped for the crash (release/acquire) */
  int writer_waiting; /* the writer waits on not_empty: NAPPING/SLEEPING */
  int idle_naps;      /* naps in a row that found nothing */
  int map;            /* the map in force: the writer updates the other */
  trail__tsc_map maps[2];                /* counter readings to time */
  _Alignas(64) pthread_cond_t not_empty; /* the writer waits here for lines */
  pthread_cond_t not_full; /* blocked producers wait here for room */
  pthread_cond_t written;  /* trail_flush() waits here */
  char *arena;             /* the writer's encoded lines (writer thread only) */
  size_t arena_cap;
  line_ref lines[BATCH_IOV]; /* the batch being written (writer only) */
  char *crash_buf;           /* one line, for the crash handler */
  size_t crash_cap;
  pthread_t thread;
  struct async_state *retired_next;
} async_state;

static async_state *active;      /* non-NULL while the writer runs */
int trail__async_on;             /* the same, for the logging call's test */
static TRAIL__TLS int on_writer; /* this thread is the writer */
static async_state *retired; /* stopped states, kept: see trail_async_stop */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static int atexit_registered;

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/*
 * The ring without a lock on the logging path. A producer reserves its
 * record by moving head forward with one compare-and-swap, writes the
 * record, and commits it by storing the header's length last (release);
 * the writer reads records from tail up to the first one not yet
 * committed, then zeroes what it consumed, so that a length read as 0
 * always means "not yet committed". The lock and the condition variables
 * serve only the slow moments: a full ring with the block policy, the
 * writer going to sleep or being woken, flush and stop.
 *
 * head's top bit closes the ring (trail_async_stop): no reservation
 * succeeds after it, so the writer knows when it has everything.
 */
#define CLOSED (UINT64_C(1) << 63)

static uint32_t *len_at(char *ring, size_t at) {
  return (uint32_t *)(void *)(ring + at);
}

/* The record at position pos, if committed: its length (or SKIP), else 0. */
static uint32_t committed_len(const async_state *a, uint64_t pos) {
  return __atomic_load_n(len_at(a->ring, (size_t)(pos % a->cap)),
                         __ATOMIC_ACQUIRE);
}

/* A length word that says the record is there to read (or a SKIP). */
static int is_committed(uint32_t n) {
  return n != 0 && (n == SKIP || !(n & PENDING));
}

/* Stops the calling thread for good: the process is dying of a signal. */
static void park_forever(void) {
  struct timespec second = {1, 0};
  for (;;)
    nanosleep(&second, NULL);
}

/* Bytes a record of need bytes takes at head h: itself, and the padding
 * to the ring's end when it would not fit before it. */
static size_t footprint(const async_state *a, uint64_t h, size_t need) {
  size_t at = (size_t)(h % a->cap);
  return need > a->cap - at ? need + (a->cap - at) : need;
}

/* Wakes the writer if it waits (takes the lock: not for every event). */
static void wake_writer(async_state *a) {
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  pthread_cond_signal(&a->not_empty);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
}

static void report_drops(uint64_t n);

/*
 * Counts a dropped event for the writer to report. A drop can race the
 * stop: the writer may have taken its last count and exited before this
 * one. Both sides are sequentially consistent: either the count precedes
 * the closing of head, and the stop's own look at the count after joining
 * the writer sees it (trail_async_stop()), or this thread sees head
 * closed and reports what is left itself. The exchange reports each once.
 */
static void count_drop(async_state *a) {
  __atomic_fetch_add(&a->dropped, 1, __ATOMIC_SEQ_CST);
  trail__count_dropped();
  if (__atomic_load_n(&a->head, __ATOMIC_SEQ_CST) & CLOSED) {
    uint64_t n = __atomic_exchange_n(&a->dropped, 0, __ATOMIC_SEQ_CST);
    if (n > 0)
      report_drops(n);
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
static int wait_for_room(async_state *a, size_t need) {
  if (a->overflow == TRAIL_OVERFLOW_DROP) {
    count_drop(a);
    return TRAIL__ASYNC_DROPPED;
  }
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  __atomic_add_fetch(&a->producers_waiting, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    uint64_t h = __atomic_load_n(&a->head, __ATOMIC_SEQ_CST);
    uint64_t t = __atomic_load_n(&a->tail, __ATOMIC_SEQ_CST);
    if ((h & CLOSED) || h + footprint(a, h, need) - t <= a->cap)
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

/* Ends the bias, once; returns when no plain store of head can follow. */
static void unbias(async_state *a) {
  if (TRAIL__LOAD(&a->bias) == UNBIASED)
    return;
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  if (TRAIL__LOAD_RELAXED(&a->bias) == BIASED) {
    TRAIL__STORE(&a->bias, REVOKING);
    int fenced = barrier_everywhere();
    while (TRAIL__LOAD(&a->in_cs))
      sched_yield(); /* the owner is a few instructions from done */
    if (!fenced) {
      /*
       * Registered at the start, so this does not happen; if it does, the
       * failed system call still drained this thread's stores, and a
       * pause far longer than the owner's few instructions, then a second
       * look, stands in for the barrier on the owner's side.
       */
      struct timespec pause = {0, 2000000};
      nanosleep(&pause, NULL);
      while (TRAIL__LOAD(&a->in_cs))
        sched_yield();
    }
    TRAIL__STORE(&a->bias, UNBIASED);
  }
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
}

/* The padding record a wrap needs, and where the record goes. */
static size_t place(async_state *a, uint64_t h, size_t take, size_t need) {
  size_t pos = (size_t)(h % a->cap);
  if (take != need) { /* pad to the end; the record starts at 0 */
    rec *skip = (rec *)(void *)(a->ring + pos);
    skip->level = 0;
    /* seq_cst: the writer may find this, not the record, at its tail; see
     * commit() (a wrap is rare: the cost does not matter) */
    __atomic_store_n(&skip->len, SKIP, __ATOMIC_SEQ_CST);
    pos = 0;
  }
  /* The one extra store of the hot path: relaxed, commit() overwrites it
   * with release; only the crash drain reads it (see PENDING). */
  __atomic_store_n(len_at(a->ring, pos),
                   PENDING | (uint32_t)(need - sizeof(rec)), __ATOMIC_RELAXED);
  return pos;
}

/*
 * The owner's reservation: head moved with a plain store while in_cs says
 * so (a compiler barrier only: unbias() supplies the memory barrier).
 * Returns 0 when the queue is not, or no longer, biased to this thread, or
 * has no room (the shared path then takes over).
 */
static int reserve_owned(async_state *a, size_t need, size_t *at,
                         uint64_t *used) {
  __atomic_store_n(&a->in_cs, 1, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  int ok = 0;
  if (__atomic_load_n(&a->bias, __ATOMIC_RELAXED) == BIASED) {
    uint64_t h = TRAIL__LOAD_RELAXED(&a->head);
    uint64_t t = TRAIL__LOAD(&a->tail);
    size_t take = footprint(a, h, need);
    if (!(h & CLOSED) && h + take - t <= a->cap) {
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
 * TRAIL__ASYNC_DROPPED, or TRAIL__ASYNC_OFF when the ring is closed (the
 * caller then writes the line itself: a stop never loses a line).
 */
static int reserve(async_state *a, size_t need, size_t *at, uint64_t *used) {
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
    if (TRAIL__LOAD_RELAXED(&a->owner) != &thread_token)
      unbias(a);
  }
  uint64_t h = TRAIL__LOAD_RELAXED(&a->head);
  for (;;) {
    if (h & CLOSED) {
      /* Closed by the crash handler: a line written now would follow the
       * fatal line. The process is dying: wait for it. */
      if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
        park_forever();
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
static void commit(async_state *a, size_t at, uint32_t len, uint32_t level,
                   uint64_t used) {
  rec *r = (rec *)(void *)(a->ring + at);
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
static int push(async_state *a, trail_level level, const char *line,
                size_t len) {
  size_t need = sizeof(rec) + pad8(len);
  /*
   * A line larger than a quarter of the ring (the maximum line was raised
   * after the start) could wait forever for room: it is written by the
   * caller instead, like a line logged while the writer stops.
   */
  if (need > a->cap / 4 || on_writer)
    return TRAIL__ASYNC_OFF;
  size_t at;
  uint64_t used;
  int r = reserve(a, need, &at, &used);
  if (r != TRAIL__ASYNC_QUEUED)
    return r;
  memcpy(a->ring + at + sizeof(rec), line, len);
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
  async_state *a = TRAIL__LOAD(&active);
  if (a == NULL || on_writer)
    return TRAIL__ASYNC_OFF;
  uint64_t used = TRAIL__LOAD_RELAXED(&a->head) - TRAIL__LOAD_RELAXED(&a->tail);
  if (used > a->cap / 2) {
    if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
      park_forever();        /* closed by the crash handler: see reserve() */
    return TRAIL__ASYNC_OFF; /* also when closed: head's top bit is set */
  }
  uint32_t slen[TRAIL__RECORD_KEYS_MAX];
  size_t len = trail__record_size(ev, slen);
  size_t need = sizeof(rec) + len;
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
  trail__record_write(a->ring + at + sizeof(rec), ev, slen);
  commit(a, at, (uint32_t)len, (uint32_t)ev->level | REC_EVENT, used);
  return TRAIL__ASYNC_QUEUED;
}

/*
 * The next record in [*from, to): skips the padding record at the ring's
 * end, sets *data, *len, *level and *event (an event record, not a line),
 * and moves *from past the record. Returns 0 when there is none, when the
 * next is not yet committed, or (read by the crash handler while the
 * writer runs) when the record cannot be trusted.
 */
static int next_rec(const async_state *a, uint64_t *from, uint64_t to,
                    const char **data, uint32_t *len, int *level, int *event) {
  while (*from < to) {
    size_t at = (size_t)(*from % a->cap);
    uint32_t n = committed_len(a, *from);
    if (!is_committed(n))
      return 0;
    if (n == SKIP) {
      *from += a->cap - at;
      continue;
    }
    rec r;
    memcpy(&r, a->ring + at, sizeof r);
    if (n > a->cap || (r.level & 0xff) > TRAIL_LEVEL_FATAL)
      return 0;
    *data = a->ring + at + sizeof r;
    *len = n;
    *level = (int)(r.level & 0xff);
    *event = (r.level & REC_EVENT) != 0;
    *from += sizeof r + pad8(n);
    return 1;
  }
  return 0;
}

/*
 * Encodes the event record at data into out (room for max + the slack).
 * Async-signal-safe: the crash handler uses it too.
 */
static size_t encode_record(const async_state *a, const char *data, size_t size,
                            char *out, size_t max, int *truncated) {
  trail__event ev;
  trail_field fields[TRAIL__RECORD_KEYS_MAX];
  trail__key keys[EVENT_KEYS];
  *truncated = 0;
  if (trail__record_read(data, size, &ev, fields) != 0)
    return 0; /* torn (crash handler only): nothing to write */
  if (ev.tsc)
    trail__tsc_to_time(&a->maps[TRAIL__LOAD(&a->map)], (uint64_t)ev.sec,
                       &ev.sec, &ev.usec);
  trail__buf b = {.data = out,
                  .len = 0,
                  .limit = max - TRAIL__TAIL_RESERVE,
                  .truncated = ev.cut};
  size_t n = trail__event_encode(&b, keys, EVENT_KEYS, trail__conf_get(), &ev);
  *truncated = b.truncated;
  return n;
}

/*
 * Hands n lines to every sink: for a descriptor, as iovecs in one writev(2)
 * (no copy); for a callback, one call per line.
 */
static void write_lines(const trail__conf *c, const line_ref *lines, int n) {
  struct iovec iov[BATCH_IOV];
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    int k = 0;
    for (int j = 0; j < n; j++) {
      if (lines[j].level < s->min)
        continue;
      if (s->kind == TRAIL__SINK_CALLBACK) {
        s->fn(s->user, (trail_level)lines[j].level, lines[j].p, lines[j].len);
        continue;
      }
      iov[k].iov_base = (void *)lines[j].p;
      iov[k].iov_len = lines[j].len;
      k++;
    }
    if (k > 0)
      trail__sink_writev(s, iov, k);
  }
}

/*
 * The writer stops for the crash handler: what it wrote is published in
 * consumed, and it touches the ring no more.
 */
static void writer_park(async_state *a) {
  __atomic_store_n(&a->parked, 1, __ATOMIC_RELEASE);
  park_forever();
}

/*
 * Writes the records in [from, to): lines straight from the ring, events
 * encoded into the arena first, up to IOV_MAX lines or a full arena at a
 * time.
 */
static uint64_t write_range(async_state *a, uint64_t from, uint64_t to) {
  const trail__conf *c = trail__conf_get();
  if (a->use_tsc) {
    int next = !a->map;
    a->maps[next] = a->maps[a->map];
    trail__tsc_map_update(&a->maps[next]);
    TRAIL__STORE(&a->map, next);
  }
  size_t max = trail_max_line();
  if (a->arena_cap < ARENA + max + TRAIL__BUF_SLACK) {
    char *p = realloc(a->arena, ARENA + max + TRAIL__BUF_SLACK);
    if (p != NULL) {
      a->arena = p;
      a->arena_cap = ARENA + max + TRAIL__BUF_SLACK;
    }
  }
  /* An arena too small for the new maximum: lines are cut to what fits. */
  if (a->arena_cap < max + TRAIL__BUF_SLACK)
    max = a->arena_cap - TRAIL__BUF_SLACK;
  line_ref *lines = a->lines;
  int more = 1;
  while (more) {
    /* seq_cst: pairs with the drain's store of crashing, see crash_drain */
    if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
      writer_park(a);
    int n = 0;
    size_t used = 0;
    while (n < BATCH_IOV) {
      uint64_t next = from;
      const char *data;
      uint32_t len;
      int level, event;
      if (!next_rec(a, &next, to, &data, &len, &level, &event)) {
        /* The end, or a record not yet committed: the next batch's. */
        from = next;
        more = 0;
        break;
      }
      if (event) {
        if (used + max + TRAIL__BUF_SLACK > a->arena_cap)
          break; /* the arena is full: write what we have first */
        int cut;
        len = (uint32_t)encode_record(a, data, len, a->arena + used, max, &cut);
        if (len == 0) { /* cannot happen: the writer reads whole records */
          from = next;
          continue;
        }
        data = a->arena + used;
        used += len;
        if (cut)
          trail__count_truncated();
        trail__count_bytes(len);
      }
      lines[n].p = data;
      lines[n].len = len;
      lines[n].level = level;
      n++;
      from = next;
    }
    write_lines(c, lines, n);
    /* release: the lines are written before the drain starts after them */
    __atomic_store_n(&a->consumed, from, __ATOMIC_RELEASE);
  }
  return from;
}

/* Zeroes the ring's bytes [from, to): consumed, their lengths read 0 again. */
static void zero_range(async_state *a, uint64_t from, uint64_t to) {
  while (from < to) {
    size_t at = (size_t)(from % a->cap);
    size_t n = a->cap - at;
    if (n > to - from)
      n = (size_t)(to - from);
    memset(a->ring + at, 0, n);
    from += n;
  }
}

/* Says how many events were dropped since the last such line. */
static void report_drops(uint64_t n) {
  trail_field f[] = {TRAIL_UINT("dropped", n)};
  trail__log_direct(trail_logger_get("trail"), TRAIL_LEVEL_WARN,
                    "log events dropped: the async queue was full", f, 1);
}

/* Naps until deadline NAP_NS from now, or until woken (lock held). */
static void nap(async_state *a) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_nsec += NAP_NS;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  TRAIL__STORE(&a->writer_waiting, WRITER_NAPPING);
  pthread_cond_timedwait(&a->not_empty, &a->lock, &until);
}

/*
 * The writer: writes every committed record, outside the lock, then frees
 * the space and wakes whoever waits for it. Exits when stopping and every
 * record up to the closed head is written, so stopping drains.
 */
static void *writer_main(void *arg) {
  async_state *a = arg;
  on_writer = 1;
  trail__count_bytes(0); /* the thread's counter block, made before lines */
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  a->ready = 1; /* trail_async_start() waits for this */
  pthread_cond_broadcast(&a->written);
  for (;;) {
    uint64_t t = a->tail, h;
    for (;;) {
      h = TRAIL__LOAD(&a->head) & ~CLOSED;
      if ((h != t && is_committed(committed_len(a, t))) ||
          TRAIL__LOAD_RELAXED(&a->dropped) != 0 || (a->stopping && h == t))
        break;
      if (h != t || a->stopping) {
        nap(a); /* a record is being written: it is a memcpy away */
      } else if (a->idle_naps < IDLE_NAPS) {
        nap(a);
        if ((TRAIL__LOAD(&a->head) & ~CLOSED) == t)
          a->idle_naps++;
      } else {
        /*
         * Going to sleep: say so, then look once more at head and at the
         * length at tail. A producer stores the length, then reads the
         * state (commit()), all four sequentially consistent, so either it
         * sees SLEEPING and wakes us, or we see its record (or the padding
         * before it) committed.
         */
        __atomic_store_n(&a->writer_waiting, WRITER_SLEEPING, __ATOMIC_SEQ_CST);
        if ((__atomic_load_n(&a->head, __ATOMIC_SEQ_CST) & ~CLOSED) == t &&
            !is_committed(__atomic_load_n(len_at(a->ring, (size_t)(t % a->cap)),
                                          __ATOMIC_SEQ_CST)))
          pthread_cond_wait(&a->not_empty, &a->lock);
      }
      /* seq_cst: the drain reads it after storing crashing (seq_cst) */
      __atomic_store_n(&a->writer_waiting, WRITER_BUSY, __ATOMIC_SEQ_CST);
    }
    a->idle_naps = 0;
    uint64_t dropped = __atomic_exchange_n(&a->dropped, 0, __ATOMIC_RELAXED);
    if (a->stopping && h == t && dropped == 0)
      break;
    trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);

    uint64_t done = h != t ? write_range(a, t, h) : t;
    /* Nothing is zeroed, and no drop line written, once the drain runs. */
    if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
      writer_park(a);
    zero_range(a, t, done);
    if (dropped > 0)
      report_drops(dropped);

    trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
    __atomic_store_n(&a->tail, done, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&a->producers_waiting, __ATOMIC_SEQ_CST))
      pthread_cond_broadcast(&a->not_full);
    pthread_cond_broadcast(&a->written);
  }
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  return NULL;
}

/* The hand-off from the logging call; see push(). */
int trail__async_push(trail_level level, const char *line, size_t len) {
  async_state *a = TRAIL__LOAD(&active);
  if (a == NULL)
    return TRAIL__ASYNC_OFF;
  return push(a, level, line, len);
}

static void stop_at_exit(void) { trail_async_stop(); }

/* Frees what state_new() made (a is not, or no longer, running). */
static void state_free(async_state *a) {
  free(a->ring);
  free(a->crash_buf);
  free(a->arena);
  free(a);
}

static void state_init_sync(async_state *a) {
  pthread_mutex_init(&a->lock, NULL);
  pthread_condattr_t mono;
  pthread_condattr_init(&mono);
  pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
  pthread_cond_init(&a->not_empty, &mono);
  pthread_condattr_destroy(&mono);
  pthread_cond_init(&a->not_full, NULL);
  pthread_cond_init(&a->written, NULL);
}

/*
 * A queue of cap bytes, and everything its writer needs: made now, not on
 * the writer's first batch, so that nothing is allocated once lines flow
 * (unless the maximum line length is raised later). NULL: out of memory.
 */
static async_state *state_new(size_t cap, trail_overflow ov) {
  async_state *a = aligned_alloc(64, sizeof *a);
  if (a == NULL)
    return NULL;
  memset(a, 0, sizeof *a);
  a->ring = calloc(1, cap); /* zeroed: a length reads 0 until committed */
  a->crash_cap = trail_max_line() + TRAIL__BUF_SLACK;
  a->crash_buf = malloc(a->crash_cap);
  a->arena_cap = ARENA + trail_max_line() + TRAIL__BUF_SLACK;
  a->arena = malloc(a->arena_cap);
  if (a->ring == NULL || a->crash_buf == NULL || a->arena == NULL) {
    state_free(a);
    return NULL;
  }
  a->cap = cap;
  a->overflow = ov;
  a->bias = BIAS_ON && membarrier_ready() ? BIASED : UNBIASED;
  a->use_tsc = trail__tsc_usable();
  if (a->use_tsc)
    trail__tsc_map_init(&a->maps[0]);
  state_init_sync(a);
  return a;
}

/*
 * Starts a's writer thread and waits until it is ready. The writer takes no
 * asynchronous signal, but a fault on it (in a callback sink or the
 * encoder), or abort(), must reach the crash handler: a blocked synchronous
 * signal kills the process silently. Returns 0 or an errno value.
 */
static int writer_spawn(async_state *a) {
  static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE,
                                     SIGTRAP, SIGSYS, SIGABRT};
  sigset_t all, old;
  sigfillset(&all);
  for (size_t i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
    sigdelset(&all, sync_signals[i]);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&a->thread, NULL, writer_main, a);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0)
    return rc;
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  while (!a->ready)
    pthread_cond_wait(&a->written, &a->lock);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  return 0;
}

/* The queue size opts ask for, checked: 0, or a negative code. */
static int queue_size(const trail_async_options *opts, size_t *cap) {
  size_t min = 4 * (trail_max_line() + sizeof(rec) + 8);
  size_t n = opts && opts->queue_size ? opts->queue_size
             : DEFAULT_QUEUE > min    ? DEFAULT_QUEUE
                                      : min;
  n = pad8(n);
  if (n < min || n > (1u << 30))
    return TRAIL_ERANGE;
  *cap = n;
  return 0;
}

/* Starts the writer: a queue, and a thread that writes it (writer_spawn). */
TRAIL_API int trail_async_start(const trail_async_options *opts) {
  trail_overflow ov = opts ? opts->overflow : TRAIL_OVERFLOW_BLOCK;
  if (ov != TRAIL_OVERFLOW_BLOCK && ov != TRAIL_OVERFLOW_DROP)
    return -EINVAL;
  size_t cap;
  int rc = queue_size(opts, &cap);
  if (rc != 0)
    return rc;
  if (on_writer)
    return -EDEADLK;
  trail__lock_take(&start_lock, TRAIL__RANK_LIFECYCLE);
  async_state *a = NULL;
  if (active != NULL)
    rc = -EALREADY;
  else if ((a = state_new(cap, ov)) == NULL)
    rc = -ENOMEM;
  else if ((rc = -writer_spawn(a)) != 0)
    state_free(a);
  if (rc == 0) {
    TRAIL__STORE(&active, a);
    TRAIL__STORE(&trail__async_on, 1);
    if (!atexit_registered) {
      atexit(stop_at_exit);
      atexit_registered = 1;
    }
  }
  trail__lock_drop(&start_lock, TRAIL__RANK_LIFECYCLE);
  return rc;
}

/*
 * Stops taking lines (new ones are written synchronously from now on),
 * lets the writer drain what is queued, and joins it. No line queued before
 * the call is lost.
 */
TRAIL_API int trail_async_stop(void) {
  if (on_writer)
    return -EDEADLK; /* a callback sink cannot stop the thread running it */
  trail__lock_take(&start_lock, TRAIL__RANK_LIFECYCLE);
  async_state *a = active;
  if (a == NULL) {
    trail__lock_drop(&start_lock, TRAIL__RANK_LIFECYCLE);
    return 0;
  }
  unbias(a); /* no plain store of head may overwrite the closing bit */
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  __atomic_fetch_or(&a->head, CLOSED, __ATOMIC_SEQ_CST);
  a->stopping = 1;
  pthread_cond_signal(&a->not_empty);
  pthread_cond_broadcast(&a->not_full);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  pthread_join(a->thread, NULL);
  TRAIL__STORE(&trail__async_on, 0);
  TRAIL__STORE(&active, NULL);
  /* Drops counted after the writer's last look: see count_drop(). */
  uint64_t late = __atomic_exchange_n(&a->dropped, 0, __ATOMIC_SEQ_CST);
  if (late > 0)
    report_drops(late);
  trail__count_high_water(TRAIL__LOAD_RELAXED(&a->high));
  /*
   * A crash drain may be reading the ring. retiring and draining are both
   * seq_cst, stored then loaded in opposite orders here and in the drain:
   * either the drain sees retiring and leaves the ring alone, or this
   * sees its count and never frees (the process is dying).
   */
  __atomic_store_n(&a->retiring, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&a->draining, __ATOMIC_SEQ_CST) != 0 ||
      __atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
    park_forever();
  /*
   * A producer that loaded the pointer before it was cleared may still
   * reach reserve(): it sees the ring closed, never touches it, and writes
   * its line itself. So the ring can go, but the state is kept.
   */
  free(a->ring);
  a->ring = NULL;
  free(a->arena);
  a->arena = NULL;
  free(a->crash_buf);
  a->crash_buf = NULL;
  a->retired_next = retired;
  retired = a;
  trail__lock_drop(&start_lock, TRAIL__RANK_LIFECYCLE);
  return 0;
}

TRAIL_API bool trail_async_running(void) {
  return TRAIL__LOAD(&active) != NULL;
}

/* Waits until every line queued before the call has been written. */
int trail__async_flush(void) {
  async_state *a = TRAIL__LOAD(&active);
  if (a == NULL)
    return 0;
  if (on_writer)
    return -EDEADLK; /* a callback sink cannot wait for itself */
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  uint64_t target = TRAIL__LOAD(&a->head) & ~CLOSED;
  /* The writer only exits with the ring empty, so this always ends. */
  if (TRAIL__LOAD(&a->tail) < target &&
      TRAIL__LOAD_RELAXED(&a->writer_waiting) != WRITER_BUSY)
    pthread_cond_signal(&a->not_empty);
  while (TRAIL__LOAD(&a->tail) < target)
    pthread_cond_wait(&a->written, &a->lock);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  return 0;
}

/*
 * fork(): the child has no writer thread. state.c calls these in the lock
 * order: the queue lock is held across the fork (its holders never block on
 * a write), the lifecycle lock is not (a stop holds it while the writer
 * drains into a pipe that may be full). The child drops the queued lines
 * (the parent writes them) and logs synchronously from its first line on;
 * trail_async_start() may start a writer of its own.
 */
static async_state *forking; /* the state whose lock the fork holds */

void trail__async_fork_prepare(void) {
  forking = TRAIL__LOAD(&active); /* states are never freed: see retired */
  if (forking != NULL)
    trail__lock_take(&forking->lock, TRAIL__RANK_QUEUE);
}

void trail__async_fork_parent(void) {
  if (forking != NULL)
    trail__lock_drop(&forking->lock, TRAIL__RANK_QUEUE);
  forking = NULL;
}

void trail__async_fork_child(void) {
  membarrier_registered = -1; /* the child registers again if it starts */
  /* A start or stop of the parent's may hold it: no thread here does. */
  pthread_mutex_init(&start_lock, NULL);
  if (forking != NULL)
    trail__lock_drop(&forking->lock, TRAIL__RANK_QUEUE);
  async_state *a = active;
  forking = NULL;
  if (a == NULL)
    return;
  active = NULL;
  trail__async_on = 0;
  /*
   * Nothing is freed here: until it execs, the child of a threaded process
   * may call only async-signal-safe functions, and an allocator that is not
   * fork-safe (a sanitizer's) may still be locked by a thread of the parent.
   * The queue stays reachable from the retired list, a copy of the
   * parent's memory that costs nothing until written.
   */
  a->stopping = 1;
  a->retired_next = retired;
  retired = a;
}

/* trail_counters_reset(): the mark starts again from what is queued now. */
void trail__async_reset_high_water(void) {
  async_state *a = TRAIL__LOAD(&active);
  if (a == NULL)
    return;
  uint64_t h = TRAIL__LOAD(&a->head) & ~CLOSED;
  TRAIL__STORE(&a->high, h - TRAIL__LOAD(&a->tail));
}

/* The queue's current high-water mark, for the counters. */
uint64_t trail__async_high_water(void) {
  async_state *a = TRAIL__LOAD(&active);
  if (a == NULL)
    return 0;
  return TRAIL__LOAD_RELAXED(&a->high);
}

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
 * The record at *p for the drain: 1 with its data (as next_rec()), or 0 at
 * the end. A record reserved but not committed is waited for while the
 * budget *until lasts, then stepped over by the size its producer stored
 * with PENDING; a length still 0 (the producer's store not yet seen) after
 * the budget ends the drain, as nothing says how far to step.
 */
static int drain_next(const async_state *a, uint64_t *p, uint64_t to,
                      int64_t *until, const char **data, uint32_t *len,
                      int *level, int *event) {
  while (*p < to) {
    if (next_rec(a, p, to, data, len, level, event))
      return 1;
    if (*p >= to)
      return 0;
    uint32_t n = committed_len(a, *p);
    if (is_committed(n))
      return 0; /* committed but not trustworthy: stop */
    if (*until < 0)
      *until = mono_ns() + (int64_t)CRASH_PENDING_WAIT_MS * 1000000;
    if (mono_ns() < *until) {
      crash_pause();
      continue;
    }
    if (n == 0 || (n & ~PENDING) > a->cap)
      return 0;
    *p += sizeof(rec) + pad8(n & ~PENDING); /* never committed: skipped */
  }
  return 0;
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
  async_state *a = TRAIL__LOAD(&active);
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
  __atomic_fetch_or(&a->head, CLOSED, __ATOMIC_SEQ_CST);
  if (!on_writer) {
    int64_t until = mono_ns() + (int64_t)CRASH_WRITER_WAIT_MS * 1000000;
    /* Parked, or waiting for lines: it will park before it writes. */
    while (!__atomic_load_n(&a->parked, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&a->writer_waiting, __ATOMIC_SEQ_CST) ==
               WRITER_BUSY &&
           mono_ns() < until)
      crash_pause();
  }
  /*
   * Again: the biased owner moves head with a plain store, which may have
   * overwritten the closing bit in its few instructions; what it queued
   * meanwhile is drained too.
   */
  uint64_t to = __atomic_fetch_or(&a->head, CLOSED, __ATOMIC_SEQ_CST) & ~CLOSED;
  uint64_t from = __atomic_load_n(&a->consumed, __ATOMIC_ACQUIRE);
  const trail__conf *c = trail__conf_get();
  if (to - from > a->cap)
    return;           /* torn read: nothing trustworthy to write */
  int64_t until = -1; /* the pending budget, started at the first */
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    if (s->kind == TRAIL__SINK_CALLBACK)
      continue;
    uint64_t p = from;
    const char *data;
    uint32_t len;
    int level, event, cut;
    while (drain_next(a, &p, to, &until, &data, &len, &level, &event)) {
      if (level < s->min)
        continue;
      if (event) {
        if (a->crash_buf == NULL)
          continue;
        size_t max = trail_max_line();
        if (max + TRAIL__BUF_SLACK > a->crash_cap)
          max = a->crash_cap - TRAIL__BUF_SLACK;
        len = (uint32_t)encode_record(a, data, len, a->crash_buf, max, &cut);
        if (len == 0)
          continue;
        data = a->crash_buf;
      }
      trail__write_all(s->fd, data, len);
    }
  }
}
