/*
 * The async writer's ring, shared by its three parts: ring.c (producers
 * reserve, write and commit records; the bias), async.c (the writer thread,
 * start, stop, flush, fork) and async_drain.c (the crash handler's drain).
 * Private to the library.
 */
#ifndef TRAIL_RING_H
#define TRAIL_RING_H

#include <pthread.h>
#include <stdint.h>

#include "internal.h"

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
#define RING_CLOSED (UINT64_C(1) << 63)
#define RING_SKIP                                                              \
  UINT32_MAX /* a record that only pads to the end of the ring */
/*
 * A reserved record not yet committed: its length word holds RING_PENDING
 * and the record's size, stored (relaxed) by the producer right after it
 * wins the reservation, so that the crash drain can step over a record
 * whose producer never commits (it crashed, or is stopped by the crash).
 */
#define RING_PENDING UINT32_C(0x80000000)

/*
 * A record: this header, then the line or the event record (REC_EVENT set
 * in level), padded to 8 bytes.
 */
typedef struct ring_rec {
  uint32_t len;
  uint32_t level;
} ring_rec;
#define REC_EVENT 0x100u

#define BATCH_IOV 1024 /* lines the writer hands over at once: IOV_MAX */

/* What the writer is doing, for producers deciding to wake it (async.c). */
enum { WRITER_BUSY = 0, WRITER_NAPPING = 1, WRITER_SLEEPING = 2 };

/* A line of the writer's batch: in the ring, or encoded into its arena. */
typedef struct line_ref {
  const char *p;
  uint32_t len;
  int level;
} line_ref;

typedef struct trail__queue {
  /*
   * The fields fall on three cache lines by who writes them, so that a
   * producer's event does not wait for a line the writer just wrote to:
   * set once at the start ...
   */
  char *ring;
  size_t cap; /* bytes, a multiple of 8 */
  trail_overflow overflow;
  int use_tsc;      /* events are stamped with the counter */
  int stop_wait_ms; /* see trail_async_options; < 0: for good */
  /* ... written by producers (atomics; the lock is for the slow moments:
   * waiting for room, waking the writer, flush, stop) ... */
  _Alignas(64) pthread_mutex_t lock;
  uint64_t head;    /* bytes ever queued (producers advance it) */
  uint64_t high;    /* most bytes queued at once */
  uint64_t dropped; /* not yet reported in a line */
  int producers_waiting;
  int stopping;
  int ready;  /* the writer has made what it needs and waits for lines */
  int exited; /* the writer is leaving (lock held) */
  /* The stop has written every line queued before it closed the ring, or
   * given them up (lock held; see trail__async_wait_drained()). */
  int drained;
  trail__sink *stuck;  /* the sink a stop gave the writer up in (lock held) */
  const void *owner;   /* the thread the queue is biased to (see reserve()) */
  int in_cs;           /* the owner is moving head with a plain store */
  int bias;            /* BIASED, REVOKING or UNBIASED */
  int barrier_refused; /* the bias cannot end: see trail__ring_unbias() */
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
  /*
   * Where the writer has finished writing each sink of the batch's
   * snapshot, by index: pos stored (release) after the sink, once per
   * batch. The drain starts a sink there when it is past consumed, so that
   * a writer held up in a later sink (a slow callback) leaves nothing to be
   * written twice. A pos read with another snapshot's sink is at most
   * consumed: an earlier batch's.
   */
  struct {
    const trail__sink *sink;
    uint64_t pos;
  } sink_done[TRAIL__MAX_SINKS];
  /* The writer's progress word: see trail__writer_watch (internal.h). */
  uint64_t watch;
  trail__sink *writing; /* the sink it is writing, or NULL (relaxed) */
  int parked;           /* the writer stopped for the crash (release/acquire) */
  int writer_waiting;   /* the writer waits on not_empty: NAPPING/SLEEPING */
  int idle_naps;        /* naps in a row that found nothing */
  int flushers;         /* threads in trail_flush() (lock held) */
  int map;              /* the map in force: the writer updates the other */
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
  struct trail__queue *retired_next;
} trail__queue;

/*
 * A producer that finds the ring closed by a stop waits here until the
 * lines queued before are written, so that the line it then writes itself
 * follows them: each thread's lines keep their order across a stop. Not
 * with the drop policy (it never waits), nor when it holds a trail lock
 * (the stopping thread does): it writes at once.
 */
void trail__async_wait_drained(trail__queue *a);

/* The queue in use: non-NULL while the writer runs (async.c). */
extern trail__queue *trail__async_active;
/* This thread is the writer: it never queues (it would wait for itself). */
extern TRAIL__TLS int trail__on_writer;

static inline size_t ring_pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static inline uint32_t *ring_len_at(char *ring, size_t at) {
  return (uint32_t *)(void *)(ring + at);
}

/* The record at position pos, if committed: its length (or RING_SKIP),
 * else 0. */
static inline uint32_t ring_committed_len(const trail__queue *a, uint64_t pos) {
  return __atomic_load_n(ring_len_at(a->ring, (size_t)(pos % a->cap)),
                         __ATOMIC_ACQUIRE);
}

/* A length word that says the record is there to read (or a RING_SKIP). */
static inline int ring_is_committed(uint32_t n) {
  return n != 0 && (n == RING_SKIP || !(n & RING_PENDING));
}

/* BIASED or UNBIASED: how a new queue starts (see ring.c). */
int trail__ring_initial_bias(void);
/*
 * Ends the bias, once. Returns 1 when no plain store of head can follow;
 * 0 when the kernel refuses the barrier that ending it needs (a seccomp
 * filter installed after the start, say): the queue then stays biased to
 * its owner for good, and other threads write their lines themselves.
 */
int trail__ring_unbias(trail__queue *a);
/* fork() child: the bias registration is the parent's. */
void trail__ring_fork_child(void);
/*
 * The next record in [*from, to): skips the padding record at the ring's
 * end, sets *data, *len, *level and *event (an event record, not a line),
 * and moves *from past the record. Returns 0 when there is none, when the
 * next is not yet committed, or (read by the crash handler while the
 * writer runs) when the record cannot be trusted.
 */
int trail__ring_next(const trail__queue *a, uint64_t *from, uint64_t to,
                     const char **data, uint32_t *len, int *level, int *event);
/* Zeroes the ring's bytes [from, to): consumed, their lengths read 0 again. */
void trail__ring_zero(trail__queue *a, uint64_t from, uint64_t to);
/* Stops the calling thread for good: the process is dying of a signal. */
void trail__ring_park_forever(void);

/* The writer's side, for ring.c and the drain (async.c). */
void trail__async_report_drops(uint64_t n);
/*
 * From a stop that gave the writer up (lock not held): writes the lines the
 * writer had not written to every sink but a->stuck, from where the writer
 * left each. Returns how many lines a->stuck did not get, each counted a
 * write error (async_drain.c).
 */
uint64_t trail__async_give_up_drain(trail__queue *a);
size_t trail__async_encode_record(const trail__queue *a, const char *data,
                                  size_t size, char *out, size_t max,
                                  int *truncated);

#endif /* TRAIL_RING_H */
