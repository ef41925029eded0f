/*
 * Process-wide state and the rules of its locks: the configuration lock,
 * the configuration snapshot that logging threads read, the line maximum,
 * the order in which trail's locks may be taken, and the one set of
 * fork(2) handlers.
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
 *   5 sink       sink.c: one pipe or socket sink, across its writev(2);
 *                rotate.c: a rotating file, with its flock on path.lock
 *                taken under it
 *
 * Every trail lock is held with cancellation disabled: a thread cancelled
 * inside a logging call (writev, poll and pthread_cond_wait are
 * cancellation points) acts on it once it has left trail's locks, never
 * while holding one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"
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

int trail__locks_held(void) { return locks_held; }

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

/* ---- the configuration snapshot --------------------------------------- */

trail__conf *trail__conf_current; /* published snapshot */
static trail__conf *conf_retired; /* replaced snapshots, freed at shutdown */

static void conf_compute_min(trail__conf *c) {
  c->min_level = TRAIL_LEVEL_OFF;
  for (size_t i = 0; i < c->nsinks; i++)
    if (c->sinks[i]->min < c->min_level)
      c->min_level = c->sinks[i]->min;
}

void trail__conf_set_service(trail__conf *c, const char *name, size_t len) {
  memcpy(c->service, name, len);
  c->service[len] = '\0';
  c->service_seg_len = trail__string_seg(
      c->service_seg, TRAIL__SEG_STR(TRAIL__K_SERVICE),
      TRAIL__LIT_LEN(TRAIL__SEG_STR(TRAIL__K_SERVICE)), name, len);
}

/*
 * The default service name is the program's, with any character a name may
 * not hold replaced by '_', so that the line is valid before trail_init().
 */
static void default_service(trail__conf *c) {
  char name[TRAIL__NAME_MAX + 1];
  const char *p = program_invocation_short_name;
  size_t n = p ? strnlen(p, TRAIL__NAME_MAX) : 0;
  if (n == 0) {
    p = "unknown";
    n = 7;
  }
  for (size_t i = 0; i < n; i++) {
    name[i] = '_';
    if (trail__name_valid(p + i, 1))
      name[i] = p[i];
  }
  trail__conf_set_service(c, name, n);
}

static trail__conf default_conf;

static void make_default(void) {
  default_conf.nsinks = 1;
  default_conf.sinks[0] = trail__sink_default_stdout();
  conf_compute_min(&default_conf);
  default_service(&default_conf);
  trail__redact_parse(&default_conf, NULL, NULL, NULL);
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/*
 * What trail__conf_get() gives before any configuration: stdout, every
 * level, the default redaction list.
 */
const trail__conf *trail__conf_default(void) {
  pthread_once(&default_once, make_default);
  return &default_conf;
}

trail__conf *trail__conf_copy_locked(void) {
  trail__conf *c = malloc(sizeof *c);
  if (c == NULL)
    return NULL;
  *c = *trail__conf_get();
  c->retired_next = NULL;
  return c;
}

/*
 * Publishes c. The old snapshot may still be read by a thread that loaded it
 * just before, so it is kept (not freed) until trail_shutdown(); there are as
 * many as configuration changes, which a program makes a handful of.
 */
void trail__conf_publish_locked(trail__conf *c) {
  conf_compute_min(c);
  trail__conf *old = trail__conf_current;
  TRAIL__STORE(&trail__conf_current, c);
  if (old != NULL) {
    old->retired_next = conf_retired;
    conf_retired = old;
  }
  trail__loggers_update_locked();
}

void trail__conf_reset_locked(void) {
  trail__conf *cur = (trail__conf *)trail__conf_get();
  trail__sinks_retire_locked(cur, &default_conf);
  TRAIL__STORE(&trail__conf_current, NULL);
  trail__pfields_free_all_locked();
  /*
   * An async writer given up by a stop (async.c) reads its snapshot and
   * sinks again when its write returns: while one runs, they are kept, for
   * a later reset to free.
   */
  if (__atomic_load_n(&trail__writers_given_up, __ATOMIC_SEQ_CST) > 0) {
    if (cur != &default_conf) {
      cur->retired_next = conf_retired;
      conf_retired = cur;
    }
    trail__loggers_update_locked();
    return;
  }
  if (cur != &default_conf)
    free(cur);
  for (trail__conf *c = conf_retired, *n; c; c = n) {
    n = c->retired_next;
    free(c);
  }
  conf_retired = NULL;
  trail__sinks_free_retired_locked();
  trail__loggers_update_locked();
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
  trail__loggers_fork_child();
  trail__lock_drop(&trail__lock, TRAIL__RANK_CONFIG);
}

__attribute__((constructor)) static void register_fork_handlers(void) {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}
