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
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "ring.h"

#define DEFAULT_QUEUE ((size_t)2 * 1024 * 1024)

/*
 * How the writer waits for lines. Waking a thread costs a system call and
 * a context switch; paid for every line, that is more than writing it. So
 * while lines keep coming the writer naps (NAP_NS at most) and producers
 * wake it only when the ring is a quarter full or someone flushes; after
 * IDLE_NAPS naps in a row with nothing to do it sleeps, and the next line
 * wakes it at once. A line thus reaches the kernel within NAP_NS while the
 * service is busy, and at once after a quiet spell. Each nap's end is a
 * timer, a context switch and a cold cache on a core the service's threads
 * need: napping 1 ms, the writer took 9 to 14 context switches per 1000
 * requests of a 100,000 requests/s server; napping 10 ms, one or two
 * (docs/performance.md).
 */
#define NAP_NS 10000000L /* 10 ms */
#define IDLE_NAPS 10     /* 100 ms with nothing to do: sleep */
/*
 * After a batch smaller than this the writer naps once before the next
 * (unless someone flushes, a producer waits for room, or it stops): under
 * a steady load it then writes about once per NAP_NS, in batches of what
 * came meanwhile, instead of as soon as it finds a line or two, which took
 * a writev(2) per four requests from a service on 32 threads.
 */
#define LINGER_BYTES ((uint64_t)32 * 1024)

/* The writer's thread name, as top -H, ps -L and perf show it (15 bytes
 * at most on Linux). */
#define WRITER_NAME "trail-writer"

/* The writer encodes events into an arena of this size (plus one line). */
#define ARENA ((size_t)256 * 1024)

trail__queue *trail__async_active; /* non-NULL while the writer runs */
int trail__async_on;               /* the same, for the logging call's test */
TRAIL__TLS int trail__on_writer;   /* this thread is the writer */
TRAIL__TLS uint64_t *trail__writer_watch; /* its progress word */
int trail__writers_given_up;              /* see internal.h */
static trail__queue *retired; /* stopped states, kept: see trail_async_stop */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static int atexit_registered;

/*
 * Encodes the event record at data into out (room for max + the slack).
 * Async-signal-safe: the crash handler uses it too.
 */
size_t trail__async_encode_record(const trail__queue *a, const char *data,
                                  size_t size, char *out, size_t max,
                                  int *truncated) {
  trail__event ev;
  trail_field fields[TRAIL__RECORD_KEYS_MAX];
  trail__key keys[TRAIL__EVENT_KEYS];
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
  size_t n =
      trail__event_encode(&b, keys, TRAIL__EVENT_KEYS, trail__conf_get(), &ev);
  *truncated = b.truncated;
  return n;
}

/*
 * Hands n lines to every sink: for a descriptor, as iovecs in one writev(2)
 * (no copy); for a callback, one call per line. end is the ring position
 * after the lines, published per sink for the crash drain.
 */
static void write_lines(trail__queue *a, const trail__conf *c,
                        const line_ref *lines, int n, uint64_t end) {
  struct iovec iov[BATCH_IOV];
  trail__reopen_check(); /* trail_reopen_on_signal() */
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    if (trail__writer_step())
      return; /* given up: the stop writes the rest */
    __atomic_store_n(&a->writing, s, __ATOMIC_RELAXED);
    int k = 0;
    for (int j = 0; j < n; j++) {
      if (lines[j].level < s->min)
        continue;
      if (s->kind == TRAIL__SINK_CALLBACK) {
        if (j > 0 && trail__writer_step())
          return;
        if (!__atomic_load_n(&s->given_up, __ATOMIC_RELAXED))
          s->fn(s->user, (trail_level)lines[j].level, lines[j].p, lines[j].len);
        continue;
      }
      iov[k].iov_base = (void *)lines[j].p;
      iov[k].iov_len = lines[j].len;
      k++;
    }
    if (k > 0)
      trail__sink_writev(s, iov, k);
    if (i < TRAIL__MAX_SINKS) {
      __atomic_store_n(&a->sink_done[i].sink, s, __ATOMIC_RELAXED);
      __atomic_store_n(&a->sink_done[i].pos, end, __ATOMIC_RELEASE);
    }
  }
}

/*
 * The writer stops for the crash handler: what it wrote is published in
 * consumed, and it touches the ring no more.
 */
static void writer_park(trail__queue *a) {
  __atomic_store_n(&a->parked, 1, __ATOMIC_RELEASE);
  trail__ring_park_forever();
}

/*
 * Before a batch: the counter-to-time map brought up to date (the one in
 * force stays untouched for the crash handler), and the arena grown to the
 * current maximum line. Returns the longest line the arena can take: an
 * arena too small for a new maximum cuts lines to what fits.
 */
__attribute__((always_inline)) static inline size_t
batch_prepare(trail__queue *a) {
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
  if (a->arena_cap < max + TRAIL__BUF_SLACK)
    max = a->arena_cap - TRAIL__BUF_SLACK;
  return max;
}

/*
 * Collects the next batch from *from (up to to) into a->lines: lines
 * straight from the ring, events encoded into the arena, up to IOV_MAX
 * lines or a full arena. Moves *from past them; *more says whether records
 * are left in [*from, to) that are committed.
 */
__attribute__((always_inline)) static inline int
batch_collect(trail__queue *a, uint64_t *from, uint64_t to, size_t max,
              int *more) {
  /* Locals, not *from and a->arena: the stores to lines[] could alias
   * them, and the loop runs once per line. */
  uint64_t pos = *from;
  line_ref *lines = a->lines;
  char *arena = a->arena;
  size_t arena_cap = a->arena_cap, used = 0;
  int n = 0, left = 1;
  while (n < BATCH_IOV) {
    uint64_t next = pos;
    const char *data;
    uint32_t len;
    int level, event;
    if (!trail__ring_next(a, &next, to, &data, &len, &level, &event)) {
      /* The end, or a record not yet committed: the next batch's. */
      pos = next;
      left = 0;
      break;
    }
    if (event) {
      if (used + max + TRAIL__BUF_SLACK > arena_cap)
        break; /* the arena is full: write what we have first */
      int cut;
      len = (uint32_t)trail__async_encode_record(a, data, len, arena + used,
                                                 max, &cut);
      pos = next;
      if (len == 0) /* cannot happen: the writer reads whole records */
        continue;
      data = arena + used;
      used += len;
      if (cut)
        trail__count_truncated();
      trail__count_bytes(len);
    }
    lines[n].p = data;
    lines[n].len = len;
    lines[n].level = level;
    n++;
    pos = next;
  }
  *from = pos;
  *more = left;
  return n;
}

/* Writes the records in [from, to), a batch at a time; returns where it
 * stopped (the first record not yet committed, or to). */
static uint64_t write_range(trail__queue *a, uint64_t from, uint64_t to) {
  const trail__conf *c = trail__conf_get();
  size_t max = batch_prepare(a);
  int more = 1;
  while (more) {
    /* seq_cst: pairs with the drain's store of crashing, see crash_drain */
    if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
      writer_park(a);
    int n = batch_collect(a, &from, to, max, &more);
    write_lines(a, c, a->lines, n, from);
    __atomic_store_n(&a->writing, NULL, __ATOMIC_RELAXED);
    /* A step: a stop gives up either before it (and sees it) or after the
     * store, which the stop's drain then starts from. */
    if (trail__writer_step())
      return from;
    /* release: the lines are written before the drain starts after them */
    __atomic_store_n(&a->consumed, from, __ATOMIC_RELEASE);
  }
  return from;
}

/* Whether a stop has given the writer up (see trail__writer_watch). */
static int writer_given_up(trail__queue *a) {
  return (__atomic_load_n(&a->watch, __ATOMIC_SEQ_CST) &
          TRAIL__WATCH_GIVEN_UP) != 0;
}

/* Says how many events were dropped since the last such line. */
void trail__async_report_drops(uint64_t n) {
  trail_field f[] = {TRAIL_UINT("dropped", n)};
  trail__log_direct(trail_logger_get("trail"), TRAIL_LEVEL_WARN,
                    "log events dropped: the async queue was full", f, 1);
}

/* Naps until deadline NAP_NS from now, or until woken (lock held). */
static void nap(trail__queue *a) {
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
 * The writer has had nothing to do for IDLE_NAPS naps: it goes to sleep.
 * It says so, then looks once more at head and at the length at tail. A
 * producer stores the length, then reads the state (commit()), all four
 * sequentially consistent, so either it sees SLEEPING and wakes us, or we
 * see its record (or the padding before it) committed. Lock held.
 */
__attribute__((always_inline)) static inline void writer_sleep(trail__queue *a,
                                                               uint64_t t) {
  __atomic_store_n(&a->writer_waiting, WRITER_SLEEPING, __ATOMIC_SEQ_CST);
  if ((__atomic_load_n(&a->head, __ATOMIC_SEQ_CST) & ~RING_CLOSED) == t &&
      !ring_is_committed(__atomic_load_n(
          ring_len_at(a->ring, (size_t)(t % a->cap)), __ATOMIC_SEQ_CST)))
    pthread_cond_wait(&a->not_empty, &a->lock);
}

/*
 * Waits (lock held) until there is something to do from tail t: a
 * committed record, drops to report, or a stop with everything written.
 * Returns head as it was then.
 */
__attribute__((always_inline)) static inline uint64_t
writer_wait(trail__queue *a, uint64_t t) {
  for (;;) {
    uint64_t h = TRAIL__LOAD(&a->head) & ~RING_CLOSED;
    if (writer_given_up(a))
      return t; /* the caller leaves */
    if ((h != t && ring_is_committed(ring_committed_len(a, t))) ||
        TRAIL__LOAD_RELAXED(&a->dropped) != 0 || (a->stopping && h == t)) {
      (void)trail__writer_step(); /* given up or not: the caller looks */
      return h;
    }
    if (h != t || a->stopping) {
      nap(a); /* a record is being written: it is a memcpy away */
    } else if (a->idle_naps < IDLE_NAPS) {
      nap(a);
      if ((TRAIL__LOAD(&a->head) & ~RING_CLOSED) == t)
        a->idle_naps++;
    } else {
      writer_sleep(a, t);
    }
    /* seq_cst: the drain reads it after storing crashing (seq_cst) */
    __atomic_store_n(&a->writer_waiting, WRITER_BUSY, __ATOMIC_SEQ_CST);
  }
}

/*
 * Writes [t, h) and the drop report, outside the lock, then frees the
 * space. Returns the new tail.
 */
__attribute__((always_inline)) static inline uint64_t
writer_write(trail__queue *a, uint64_t t, uint64_t h, uint64_t dropped) {
  uint64_t done = h != t ? write_range(a, t, h) : t;
  /* Nothing is zeroed, and no drop line written, once the drain runs. */
  if (__atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
    writer_park(a);
  if (writer_given_up(a)) {
    /* The stop's drain reads the ring; its own report counts these. */
    __atomic_fetch_add(&a->dropped, dropped, __ATOMIC_RELAXED);
    return done;
  }
  trail__ring_zero(a, t, done);
  if (dropped > 0)
    trail__async_report_drops(dropped);
  return done;
}

/* After a small batch, a nap to let lines gather (see LINGER_BYTES). */
static void writer_linger(trail__queue *a, uint64_t bytes) {
  if (bytes >= LINGER_BYTES || a->stopping || a->flushers > 0 ||
      __atomic_load_n(&a->producers_waiting, __ATOMIC_SEQ_CST))
    return;
  nap(a);
  /* seq_cst: as in writer_wait(), against the drain and commit() */
  __atomic_store_n(&a->writer_waiting, WRITER_BUSY, __ATOMIC_SEQ_CST);
}

/*
 * The writer leaves (lock held, dropped here): the stop waits for this. A
 * writer given up has returned from the sink it was stuck in, which every
 * thread may write again; its sinks may be freed once it is gone.
 */
static void writer_leave(trail__queue *a) {
  int given_up = writer_given_up(a);
  if (given_up && a->stuck != NULL)
    __atomic_store_n(&a->stuck->given_up, 0, __ATOMIC_SEQ_CST);
  a->exited = 1;
  pthread_cond_broadcast(&a->written);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  if (given_up)
    __atomic_sub_fetch(&trail__writers_given_up, 1, __ATOMIC_SEQ_CST);
}

/*
 * The writer: writes every committed record, outside the lock, then frees
 * the space and wakes whoever waits for it. Exits when stopping and every
 * record up to the closed head is written, so stopping drains; or as soon
 * as it finds that a stop gave it up.
 */
static void *writer_main(void *arg) {
  trail__queue *a = arg;
  trail__on_writer = 1;
  trail__writer_watch = &a->watch;
  (void)pthread_setname_np(pthread_self(), WRITER_NAME); /* a help only */
  trail__count_bytes(0); /* the thread's counter block, made before lines */
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  a->ready = 1; /* trail_async_start() waits for this */
  pthread_cond_broadcast(&a->written);
  for (;;) {
    uint64_t t = a->tail;
    uint64_t h = writer_wait(a, t);
    if (writer_given_up(a))
      break;
    a->idle_naps = 0;
    uint64_t dropped = __atomic_exchange_n(&a->dropped, 0, __ATOMIC_RELAXED);
    if (a->stopping && h == t && dropped == 0)
      break;
    trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
    uint64_t done = writer_write(a, t, h, dropped);
    trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
    if (writer_given_up(a))
      break;
    __atomic_store_n(&a->tail, done, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&a->producers_waiting, __ATOMIC_SEQ_CST))
      pthread_cond_broadcast(&a->not_full);
    pthread_cond_broadcast(&a->written);
    writer_linger(a, done - t);
  }
  writer_leave(a);
  return NULL;
}

static void stop_at_exit(void) { trail_async_stop(); }

/* Frees what state_new() made (a is not, or no longer, running). */
static void state_free(trail__queue *a) {
  free(a->ring);
  free(a->crash_buf);
  free(a->arena);
  free(a);
}

static void state_init_sync(trail__queue *a) {
  pthread_mutex_init(&a->lock, NULL);
  pthread_condattr_t mono;
  pthread_condattr_init(&mono);
  pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
  pthread_cond_init(&a->not_empty, &mono);
  pthread_cond_init(&a->written, &mono); /* the stop waits with a deadline */
  pthread_condattr_destroy(&mono);
  pthread_cond_init(&a->not_full, NULL);
}

/*
 * A queue of cap bytes, and everything its writer needs: made now, not on
 * the writer's first batch, so that nothing is allocated once lines flow
 * (unless the maximum line length is raised later). NULL: out of memory.
 */
static trail__queue *state_new(size_t cap, trail_overflow ov, int wait_ms) {
  trail__queue *a = aligned_alloc(64, sizeof *a);
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
  a->stop_wait_ms = wait_ms;
  a->bias = trail__ring_initial_bias();
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
static int writer_spawn(trail__queue *a) {
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
  size_t min = 4 * (trail_max_line() + sizeof(ring_rec) + 8);
  size_t n = opts && opts->queue_size ? opts->queue_size
             : DEFAULT_QUEUE > min    ? DEFAULT_QUEUE
                                      : min;
  n = ring_pad8(n);
  if (n < min || n > (1u << 30))
    return TRAIL_ERANGE;
  *cap = n;
  return 0;
}

/* Starts the writer: a queue, and a thread that writes it (writer_spawn). */
TRAIL_API int trail_async_start(const trail_async_options *opts) {
  trail_overflow ov = opts ? opts->overflow : TRAIL_OVERFLOW_BLOCK;
  int wait_ms = opts && opts->stop_wait_ms ? opts->stop_wait_ms
                                           : TRAIL_STOP_WAIT_DEFAULT_MS;
  if (ov != TRAIL_OVERFLOW_BLOCK && ov != TRAIL_OVERFLOW_DROP)
    return -EINVAL;
  if (wait_ms < TRAIL_STOP_WAIT_FOREVER)
    return -EINVAL;
  size_t cap;
  int rc = queue_size(opts, &cap);
  if (rc != 0)
    return rc;
  if (trail__on_writer)
    return -EDEADLK;
  trail__lock_take(&start_lock, TRAIL__RANK_LIFECYCLE);
  trail__queue *a = NULL;
  if (trail__async_active != NULL)
    rc = -EALREADY;
  else if ((a = state_new(cap, ov, wait_ms)) == NULL)
    rc = -ENOMEM;
  else if ((rc = -writer_spawn(a)) != 0)
    state_free(a);
  if (rc == 0) {
    TRAIL__STORE(&trail__async_active, a);
    TRAIL__STORE(&trail__async_on, 1);
    if (!atexit_registered) {
      atexit(stop_at_exit);
      atexit_registered = 1;
    }
  }
  trail__lock_drop(&start_lock, TRAIL__RANK_LIFECYCLE);
  return rc;
}

/* The monotonic time at ms milliseconds, as a deadline. */
static struct timespec mono_at(int64_t ms) {
  struct timespec t = {.tv_sec = (time_t)(ms / 1000),
                       .tv_nsec = (long)(ms % 1000) * 1000000L};
  return t;
}

/*
 * How often, in parts of its wait, a stop looks at the writer's progress:
 * a writer is given up between wait and wait * (1 + 1/STOP_LOOKS) after
 * its last step.
 */
#define STOP_LOOKS 8

/* What a wait below waits for (lock held). */
typedef int (*wait_done)(trail__queue *a, uint64_t target);

static int writer_left(trail__queue *a, uint64_t target) {
  (void)target;
  return a->exited;
}

/* Every line before target written, or left to the stop that gave up. */
static int flushed(trail__queue *a, uint64_t target) {
  return TRAIL__LOAD(&a->tail) >= target || writer_given_up(a);
}

/*
 * Waits (lock held) until done(a, target), for as long as the writer makes
 * progress (see trail__writer_watch). Returns 1 when done, 0 when the
 * writer has made no step for a->stop_wait_ms inside a sink. With mark,
 * the watch is then marked given up by a compare-and-swap against the last
 * step seen, so that either the writer's next step or the mark wins, never
 * both. A writer that is not in a sink (not yet run, encoding, waiting for
 * lines) is only slow: it is waited for.
 */
static int wait_while_progress(trail__queue *a, wait_done done, uint64_t target,
                               int mark) {
  uint64_t seen = __atomic_load_n(&a->watch, __ATOMIC_SEQ_CST);
  int64_t wait = a->stop_wait_ms, look = wait / STOP_LOOKS + 1;
  int64_t last = trail__mono_ms(); /* when seen was first seen */
  while (!done(a, target)) {
    if (wait < 0) {
      pthread_cond_wait(&a->written, &a->lock);
      continue;
    }
    /* the next look: in a part of the wait, or when it ends if sooner
     * (past its end, with the writer outside a sink, a part again) */
    int64_t now = trail__mono_ms(), next = now + look, due = last + wait;
    if (due > now && due < next)
      next = due;
    struct timespec until = mono_at(next);
    pthread_cond_timedwait(&a->written, &a->lock, &until);
    uint64_t w = __atomic_load_n(&a->watch, __ATOMIC_SEQ_CST);
    now = trail__mono_ms();
    if (done(a, target))
      break;
    if (w != seen) {
      seen = w;
      last = now;
    } else if (now - last >= wait &&
               __atomic_load_n(&a->writing, __ATOMIC_RELAXED) != NULL &&
               (!mark || __atomic_compare_exchange_n(
                             &a->watch, &seen, seen | TRAIL__WATCH_GIVEN_UP, 0,
                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))) {
      return 0;
    } else if (seen != w) {
      last = now; /* a step came just before: seen is it now */
    }
  }
  return 1;
}

/*
 * Gives the writer up (lock held): the sink it is stuck in is skipped by
 * every write until the writer returns from it (writer_leave()), and
 * whoever waits in trail_flush() is told.
 */
static void give_up(trail__queue *a) {
  a->stuck = __atomic_load_n(&a->writing, __ATOMIC_RELAXED);
  if (a->stuck != NULL)
    __atomic_store_n(&a->stuck->given_up, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&trail__writers_given_up, 1, __ATOMIC_SEQ_CST);
  pthread_cond_broadcast(&a->written);
}

/* A stop's line for a writer it gave up: how long, and what was lost. */
static void report_given_up(const trail__queue *a, uint64_t lost) {
  int fd = a->stuck != NULL && a->stuck->kind != TRAIL__SINK_CALLBACK
               ? a->stuck->fd
               : -1;
  trail_field f[] = {TRAIL_INT("waited_ms", a->stop_wait_ms),
                     TRAIL_UINT("lost", lost), TRAIL_INT("fd", fd)};
  trail__log_direct(trail_logger_get("trail"), TRAIL_LEVEL_ERROR,
                    "async writer given up at stop: no progress", f,
                    sizeof f / sizeof f[0]);
}

/* Every line queued before the ring closed is written (or given up). */
static void mark_drained(trail__queue *a) {
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  a->drained = 1;
  pthread_cond_broadcast(&a->written);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
}

void trail__async_wait_drained(trail__queue *a) {
  if (a->overflow == TRAIL_OVERFLOW_DROP)
    return; /* never waits: the line may come before those queued */
  if (trail__on_writer || trail__locks_held() > 0)
    return; /* the writer, or the stop itself: it would wait for itself */
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  while (!a->drained)
    pthread_cond_wait(&a->written, &a->lock);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
}

/*
 * Closes a's ring and lets its writer drain it. Returns 1 when the writer
 * left and was joined; 0 when it made no progress for the stop's wait and
 * was given up: it is detached, the lines it had not written are written
 * to the other sinks here, and one error line says so. The ring and the
 * state then stay allocated, for the writer may still read them.
 */
static int close_and_join(trail__queue *a) {
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  __atomic_fetch_or(&a->head, RING_CLOSED, __ATOMIC_SEQ_CST);
  a->stopping = 1;
  __atomic_fetch_or(&a->watch, TRAIL__WATCH_STOPPING, __ATOMIC_SEQ_CST);
  pthread_cond_signal(&a->not_empty);
  pthread_cond_broadcast(&a->not_full);
  int left = wait_while_progress(a, writer_left, 0, 1);
  if (!left)
    give_up(a);
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  if (left) {
    pthread_join(a->thread, NULL);
    mark_drained(a);
    return 1;
  }
  pthread_detach(a->thread);
  uint64_t lost = trail__async_give_up_drain(a);
  mark_drained(a);
  report_given_up(a, lost);
  return 0;
}

/*
 * Puts a stopped queue on the retired list, its buffers freed when
 * free_ring says that nobody can still write into them.
 */
static void retire(trail__queue *a, int free_ring) {
  /*
   * A crash drain may be reading the ring. retiring and draining are both
   * seq_cst, stored then loaded in opposite orders here and in the drain:
   * either the drain sees retiring and leaves the ring alone, or this
   * sees its count and never frees (the process is dying).
   */
  __atomic_store_n(&a->retiring, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&a->draining, __ATOMIC_SEQ_CST) != 0 ||
      __atomic_load_n(&a->crashing, __ATOMIC_SEQ_CST))
    trail__ring_park_forever();
  /*
   * A producer that loaded the pointer before it was cleared may still
   * reach reserve(): it sees the ring closed, never touches it, and writes
   * its line itself. So the ring can go, but the state is kept.
   */
  if (free_ring) {
    free(a->ring);
    a->ring = NULL;
    free(a->arena);
    a->arena = NULL;
    free(a->crash_buf);
    a->crash_buf = NULL;
  }
  a->retired_next = retired;
  retired = a;
}

/*
 * Stops taking lines (new ones are written synchronously from now on),
 * lets the writer drain what is queued, and joins it. No line queued before
 * the call is lost, unless the writer makes no progress for the stop's
 * wait (a sink that takes no bytes): see close_and_join().
 */
TRAIL_API int trail_async_stop(void) {
  if (trail__on_writer)
    return -EDEADLK; /* a callback sink cannot stop the thread running it */
  trail__lock_take(&start_lock, TRAIL__RANK_LIFECYCLE);
  trail__queue *a = trail__async_active;
  if (a == NULL) {
    trail__lock_drop(&start_lock, TRAIL__RANK_LIFECYCLE);
    return 0;
  }
  /* No plain store of head may overwrite the closing bit. */
  int unbiased = trail__ring_unbias(a);
  int joined = close_and_join(a);
  TRAIL__STORE(&trail__async_on, 0);
  TRAIL__STORE(&trail__async_active, NULL);
  /* Drops counted after the writer's last look: see count_drop(). */
  uint64_t late = __atomic_exchange_n(&a->dropped, 0, __ATOMIC_SEQ_CST);
  if (late > 0)
    trail__async_report_drops(late);
  trail__count_high_water(TRAIL__LOAD_RELAXED(&a->high));
  retire(a, unbiased && joined);
  trail__lock_drop(&start_lock, TRAIL__RANK_LIFECYCLE);
  return joined ? 0 : -ETIMEDOUT;
}

TRAIL_API bool trail_async_running(void) {
  return TRAIL__LOAD(&trail__async_active) != NULL;
}

/*
 * Waits until every line queued before the call has been written, for as
 * long as the writer makes progress: -ETIMEDOUT after the stop's wait with
 * none (a sink that takes no bytes). The writer is not given up then; the
 * lines stay queued.
 */
int trail__async_flush(void) {
  trail__queue *a = TRAIL__LOAD(&trail__async_active);
  if (a == NULL)
    return 0;
  if (trail__on_writer)
    return -EDEADLK; /* a callback sink cannot wait for itself */
  trail__lock_take(&a->lock, TRAIL__RANK_QUEUE);
  uint64_t target = TRAIL__LOAD(&a->head) & ~RING_CLOSED;
  /* The writer exits only with the ring empty, or given up by a stop that
   * then writes the rest: this ends once the lines are written, left to
   * that stop, or the writer stalls. */
  a->flushers++; /* the writer does not linger while someone waits */
  if (TRAIL__LOAD(&a->tail) < target &&
      TRAIL__LOAD_RELAXED(&a->writer_waiting) != WRITER_BUSY)
    pthread_cond_signal(&a->not_empty);
  int done = wait_while_progress(a, flushed, target, 0);
  a->flushers--;
  trail__lock_drop(&a->lock, TRAIL__RANK_QUEUE);
  return done ? 0 : -ETIMEDOUT;
}

/*
 * fork(): the child has no writer thread. state.c calls these in the lock
 * order: the queue lock is held across the fork (its holders never block on
 * a write), the lifecycle lock is not (a stop holds it while the writer
 * drains into a pipe that may be full). The child drops the queued lines
 * (the parent writes them) and logs synchronously from its first line on;
 * trail_async_start() may start a writer of its own.
 */
static trail__queue *forking; /* the state whose lock the fork holds */

void trail__async_fork_prepare(void) {
  forking = TRAIL__LOAD(
      &trail__async_active); /* states are never freed: see retired */
  if (forking != NULL)
    trail__lock_take(&forking->lock, TRAIL__RANK_QUEUE);
}

void trail__async_fork_parent(void) {
  if (forking != NULL)
    trail__lock_drop(&forking->lock, TRAIL__RANK_QUEUE);
  forking = NULL;
}

void trail__async_fork_child(void) {
  trail__ring_fork_child();
  /* A start or stop of the parent's may hold it: no thread here does. */
  pthread_mutex_init(&start_lock, NULL);
  if (forking != NULL)
    trail__lock_drop(&forking->lock, TRAIL__RANK_QUEUE);
  trail__queue *a = trail__async_active;
  forking = NULL;
  if (a == NULL)
    return;
  trail__async_active = NULL;
  trail__async_on = 0;
  /*
   * Nothing is freed here: until it execs, the child of a threaded process
   * may call only async-signal-safe functions, and an allocator that is not
   * fork-safe (a sanitizer's) may still be locked by a thread of the parent.
   * The queue stays reachable from the retired list, a copy of the
   * parent's memory that costs nothing until written.
   */
  a->stopping = 1;
  a->drained = 1; /* no stop of the parent's runs here to drain it */
  a->retired_next = retired;
  retired = a;
}

/* trail_counters_reset(): the mark starts again from what is queued now. */
void trail__async_reset_high_water(void) {
  trail__queue *a = TRAIL__LOAD(&trail__async_active);
  if (a == NULL)
    return;
  uint64_t h = TRAIL__LOAD(&a->head) & ~RING_CLOSED;
  TRAIL__STORE(&a->high, h - TRAIL__LOAD(&a->tail));
}

/* The queue's current high-water mark, for the counters. */
uint64_t trail__async_high_water(void) {
  trail__queue *a = TRAIL__LOAD(&trail__async_active);
  if (a == NULL)
    return 0;
  return TRAIL__LOAD_RELAXED(&a->high);
}
