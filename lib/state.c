/*
 * Process-wide state and the rules of its locks: the configuration lock,
 * the line maximum, the order in which trail's locks may be taken, and the
 * one set of fork(2) handlers.
 *
 * The lock order (docs/thread-safety.md). Each lock has a rank; a thread
 * takes locks in increasing rank only, and a debug build (NDEBUG unset, or
 * TRAIL_LOCK_CHECK defined) aborts with a message when one is taken while a
 * lock of the same or a higher rank is held:
 *
 *   1 lifecycle  async.c: start and stop of the writer (held while joining
 *                it, so across the writer's last writes)
 *   2 config     trail__lock: configuration changes (never across a write)
 *   3 queue      async.c: the ring's slow moments (never across a write)
 *   4 counters   counters.c: the per-thread blocks (a leaf)
 *   5 sink       sink.c: one pipe or socket sink, across its writev(2)
 *
 * Every trail lock is held with cancellation disabled: a thread cancelled
 * inside a logging call (writev, poll and pthread_cond_wait are
 * cancellation points) acts on it once it has left trail's locks, never
 * while holding one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

pthread_mutex_t trail__lock = PTHREAD_MUTEX_INITIALIZER;
size_t trail__max_line_v = TRAIL__MAX_LINE_DEFAULT;

/* The calling thread's locks: how many, the cancel state before the first,
 * and (checked builds) the ranks held, one bit each. */
static TRAIL__TLS int locks_held;
static TRAIL__TLS int cancel_before;
#if TRAIL__LOCK_CHECK
static TRAIL__TLS unsigned ranks_held;

static const char *const rank_names[] = {
    NULL, "lifecycle", "config", "queue", "counters", "sink",
};

static void rank_violation(int rank) {
  static const char head[] = "trail: lock order violated: taking the ";
  static const char mid[] = " lock while holding a lock of the same or a "
                            "higher rank (see docs/thread-safety.md)\n";
  const char *name = rank_names[rank];
  (void)!write(STDERR_FILENO, head, sizeof head - 1);
  (void)!write(STDERR_FILENO, name, strlen(name));
  (void)!write(STDERR_FILENO, mid, sizeof mid - 1);
  abort();
}

static void rank_take(int rank) {
  if (ranks_held >> rank)
    rank_violation(rank);
  ranks_held |= 1u << rank;
}

static void rank_drop(int rank) { ranks_held &= ~(1u << rank); }
#else
static void rank_take(int rank) { (void)rank; }
static void rank_drop(int rank) { (void)rank; }
#endif

void trail__lock_take(pthread_mutex_t *m, int rank) {
  if (locks_held++ == 0)
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_before);
  rank_take(rank);
  pthread_mutex_lock(m);
}

void trail__lock_drop(pthread_mutex_t *m, int rank) {
  pthread_mutex_unlock(m);
  rank_drop(rank);
  if (--locks_held == 0)
    pthread_setcancelstate(cancel_before, NULL);
}

/* ---- the line maximum -------------------------------------------------- */

TRAIL_API int trail_max_line_set(size_t bytes) {
  if (bytes < TRAIL__MAX_LINE_MIN || bytes > TRAIL__MAX_LINE_MAX)
    return TRAIL_ERANGE;
  __atomic_store_n(&trail__max_line_v, bytes, __ATOMIC_RELAXED);
  return 0;
}

TRAIL_API size_t trail_max_line(void) {
  return __atomic_load_n(&trail__max_line_v, __ATOMIC_RELAXED);
}

/* ---- fork(2) ----------------------------------------------------------- */

/*
 * fork() copies a held mutex as held, and the child has only the forking
 * thread. So the prepare handler takes, in rank order, every lock whose
 * holder never blocks on a write (config, queue, counters): the child then
 * starts with them free and with the state they guard whole. The locks
 * that can be held across a blocking write (lifecycle, sinks) are not
 * waited for (a full pipe would stall every fork of the program); the
 * child makes them anew instead, since no thread of its own holds them.
 */
static void fork_prepare(void) {
  trail__lock_take(&trail__lock, TRAIL__RANK_CONFIG);
  trail__async_fork_prepare();
  trail__counters_fork_prepare();
}

static void fork_parent(void) {
  trail__counters_fork_release();
  trail__async_fork_parent();
  trail__lock_drop(&trail__lock, TRAIL__RANK_CONFIG);
}

static void fork_child(void) {
  trail__counters_fork_release();
  trail__async_fork_child();
  trail__sinks_fork_child();
  trail__lock_drop(&trail__lock, TRAIL__RANK_CONFIG);
}

__attribute__((constructor)) static void register_fork_handlers(void) {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}
