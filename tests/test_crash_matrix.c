/*
 * The crash drain against everything else that runs at that moment
 * (lib/async.c, trail__async_crash_drain): four threads logging into the
 * async queue, a record reserved but never committed, a stop under way, a
 * small ring that wraps again and again. Each scenario runs in a child
 * process under the watchdog; the parent parses every line of the file.
 */
#include "crash_harness.h"

#include <sched.h>
#include <sys/mman.h>

#define THREADS 4
#define MAX_SEQ 200000   /* lines per thread at most */
#define FAULT_AFTER 3000 /* lines thread 0 logs before it faults */

/*
 * The smallest ring a 2 KiB maximum line allows (four lines and their
 * headers): a few dozen records fill it, so it wraps every few dozen lines.
 */
#define SMALL_MAX_LINE 2048
#define SMALL_RING (4 * (SMALL_MAX_LINE + 16))
/* Lines of sizes that do not divide the ring: each wrap pads elsewhere. */
#define PAD_MAX 211
static const char pad[PAD_MAX + 1] =
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrst"
    "uvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmn"
    "opqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabc";

/* In the child: the async writer with a ring of queue bytes, the maximum
 * line SMALL_MAX_LINE (so that a ring as small as SMALL_RING may be had). */
static void start_small_lines(size_t queue) {
  CHILD_CHECK(trail_max_line_set(SMALL_MAX_LINE) == 0);
  trail_async_options o = {.queue_size = queue};
  CHILD_CHECK(trail_async_start(&o) == 0);
}

/* Rounds of the racing scenarios, each a fresh child. */
#define ROUNDS (UNDER_SANITIZER ? 40 : 200)

/* Shared with the child: each thread's last sequence number returned. */
static long *last_done;

/* One line of thread k, number n; with a string of a size that varies
 * from line to line when padded. */
static void log_tick(long k, long n, int padded) {
  if (padded)
    trail_info(NULL, "tick", TRAIL_INT("t", k), TRAIL_INT("n", n),
               TRAIL_STRN("s", pad, (size_t)((n * 37 + k * 11) % PAD_MAX)));
  else
    trail_info(NULL, "tick", TRAIL_INT("t", k), TRAIL_INT("n", n));
  __atomic_store_n(&last_done[k], n, __ATOMIC_RELEASE);
}

/* In the parent, before a child: no thread has returned from a line. */
static void last_done_reset(void) {
  for (int k = 0; k < THREADS; k++)
    last_done[k] = -1;
}

/* What the parent found of the tick lines ("t", "n"), and the others. */
typedef struct ticks {
  unsigned char *seen; /* THREADS * MAX_SEQ counts */
  long distinct;       /* tick lines */
  long probes;         /* lines of message "probe" */
} ticks;

static void count_tick(json_t *j, void *arg) {
  ticks *t = arg;
  assert_key_order(j);
  if (is_fatal(j))
    return;
  if (strcmp(jstr(j, "message"), "probe") == 0) {
    t->probes++;
    return;
  }
  assert_str_field(j, "message", "tick");
  long k = crash_seq(j, "t", THREADS), n = crash_seq(j, "n", MAX_SEQ);
  if (++t->seen[k * MAX_SEQ + n] > 1)
    fail_msg("line %ld/%ld is there twice", k, n);
  t->distinct++;
}

/*
 * Parses every line of the file: each line at most once, whole, the fatal
 * line once and last, no line but these; every line a thread's call
 * returned from (last_done) is there. Returns the tick lines found.
 */
/*
 * check_ticks() allowing up to after lines after the fatal one: in
 * synchronous mode, each other thread may have been writing its line
 * itself at the moment of the crash; no later line may follow.
 */
static long check_ticks_after(long *probes, long after) {
  ticks t = {calloc((size_t)THREADS * MAX_SEQ, 1), 0, 0};
  assert_non_null(t.seen);
  crash_log l = crash_read("SIGSEGV", count_tick, &t);
  assert_int_equal(l.fatal, 1);
  if (l.after_fatal > after)
    fail_msg("%ld lines after the fatal line, at most %ld may be",
             l.after_fatal, after);
  assert_int_equal(l.lines, t.distinct + t.probes + 1);
  for (int k = 0; k < THREADS; k++)
    for (long n = 0; n <= last_done[k]; n++)
      if (t.seen[k * MAX_SEQ + n] != 1)
        fail_msg("line %d/%ld (returned) is missing", k, n);
  free(t.seen);
  if (probes != NULL)
    *probes = t.probes;
  else
    assert_int_equal(t.probes, 0);
  return t.distinct;
}

static long check_ticks(long *probes) { return check_ticks_after(probes, 0); }

enum { FAULT_PLAIN, FAULT_IN_CALL };
static int fault_how;
static int padded_lines;
static const char *bad_string; /* a PROT_NONE page */
static pthread_barrier_t start_barrier;

static void *logging_thread(void *arg) {
  long k = (long)(intptr_t)arg;
  pthread_barrier_wait(&start_barrier);
  for (long n = 0; n < MAX_SEQ; n++) {
    if (k == 0 && n == FAULT_AFTER) {
      if (fault_how == FAULT_PLAIN)
        crash_by(SIGSEGV);
      /* faults copying the string, after the record is reserved: a record
       * that is never committed */
      trail_info(NULL, "tick", TRAIL_INT("t", k), TRAIL_INT("n", n),
                 TRAIL_STRN("s", bad_string, 16));
    }
    log_tick(k, n, padded_lines);
  }
  return NULL;
}

/* Where the lines go: a large ring, the smallest ring, no ring. */
enum { RING_LARGE, RING_SMALL, RING_NONE };

/*
 * THREADS threads log until thread 0 faults after FAULT_AFTER lines (how);
 * into a ring so large that the writer keeps up and no caller encodes its
 * own line, or into the smallest ring, which wraps every few dozen lines,
 * with lines of varying sizes, or in synchronous mode, each thread writing
 * its own lines.
 */
static void run_logging_child(int how, int ring) {
  int small = ring == RING_SMALL;
  last_done_reset();
  pid_t pid = crash_fork();
  if (pid == 0) {
    fault_how = how;
    padded_lines = small;
    bad_string =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(bad_string != MAP_FAILED);
    crash_child_setup("matrix", NULL, 0, NULL);
    if (small) {
      start_small_lines(SMALL_RING);
    } else if (ring == RING_LARGE) {
      trail_async_options o = {.queue_size = (size_t)64 << 20};
      CHILD_CHECK(trail_async_start(&o) == 0);
    }
    CHILD_CHECK(pthread_barrier_init(&start_barrier, NULL, THREADS) == 0);
    pthread_t t[THREADS];
    for (long k = 0; k < THREADS; k++)
      CHILD_CHECK(pthread_create(&t[k], NULL, logging_thread,
                                 (void *)(intptr_t)k) == 0);
    for (int k = 0; k < THREADS; k++)
      pthread_join(t[k], NULL);
    _exit(6); /* no fault */
  }
  crash_expect(pid, SIGSEGV);
  check_ticks_after(NULL, ring == RING_NONE ? THREADS - 1 : 0);
  assert_int_equal(last_done[0], FAULT_AFTER - 1);
}

/* A plain fault on one of four logging threads. */
static void test_fault_while_four_threads_log(void **state) {
  (void)state;
  run_logging_child(FAULT_PLAIN, RING_LARGE);
}

/*
 * The same in synchronous mode: the other threads, which write their own
 * lines, write none after the fatal line but the one each may have been
 * writing at the moment of the crash; they wait for the process to die.
 */
static void test_fault_while_four_threads_log_sync(void **state) {
  (void)state;
  run_logging_child(FAULT_PLAIN, RING_NONE);
}

/*
 * The fault is inside a logging call, between the reservation and the
 * commit: the drain steps over that record and writes the others' lines
 * queued after it.
 */
static void test_fault_inside_a_reservation(void **state) {
  (void)state;
  run_logging_child(FAULT_IN_CALL, RING_LARGE);
}

/*
 * The same with the smallest ring, wrapped hundreds of times before the
 * fault and while the drain reads it: the drain reads only whole records
 * inside the ring, nothing past its end, nothing that producers write over.
 */
static void test_fault_as_small_ring_wraps(void **state) {
  for (int r = 0; r < ROUNDS; r++) {
    run_logging_child(r % 2 ? FAULT_IN_CALL : FAULT_PLAIN, RING_SMALL);
    crash_teardown(state);
    crash_setup(state);
  }
}

static void *stop_thread(void *arg) {
  (void)arg;
  trail_async_stop(); /* blocks: the writer never finishes */
  return NULL;
}

/*
 * A fault while trail_async_stop() waits for the writer: the drain still
 * writes the queue (the stop does not free the ring under it), then the
 * fatal line, last. The drop policy: a line logged while the stop waits is
 * written by its caller at once (with the block policy it would wait for
 * the drain), which tells this thread that the ring is closed.
 */
static void test_fault_during_stop(void **state) {
  (void)state;
  last_done_reset();
  pid_t pid = crash_fork();
  if (pid == 0) {
    trail_async_options drop = {.overflow = TRAIL_OVERFLOW_DROP};
    crash_child_setup("matrix", stall_sink, 1, &drop);
    log_tick(0, 0, 0);
    stall_wait();
    for (long n = 1; n < 500; n++)
      log_tick(0, n, 0);
    pthread_t st;
    CHILD_CHECK(pthread_create(&st, NULL, stop_thread, NULL) == 0);
    /* Once the stop has closed the ring, a line is written by its caller:
     * the probe reaches the callback on this thread. */
    while (!__atomic_load_n(&sync_probe_seen, __ATOMIC_ACQUIRE))
      trail_info(NULL, "probe");
    crash_by(SIGSEGV);
    _exit(7);
  }
  crash_expect(pid, SIGSEGV);
  long probes = 0;
  assert_int_equal(check_ticks(&probes), 500);
  assert_true(probes > 0);
}

/*
 * A stop and a fault at about the same moment, the ring full of lines:
 * THREADS threads log into a ring of RACE_RING bytes, wrapping it again
 * and again, until asked to stop; once every one has returned, one thread
 * calls trail_async_stop() (the writer writes what is queued, then the
 * stop frees the ring) and another faults. A callback sink after the file
 * parses every line: the writer is busy with a batch it has already written
 * to the file for a while. Which
 * comes first moves from round to round by a count of spins on one side:
 * the fault lands before the stop, while the writer writes for it, while
 * the ring is freed, or after. Whichever: the drain reads no ring freed
 * and nothing past a ring's end, every line is whole and there once, the
 * fatal line last. No line is logged meanwhile: one written by its caller
 * after the stop closed the ring may land after the fatal line.
 */
#define RACE_RING ((size_t)16 << 10)
#define RACE_LINES 2000 /* lines thread 0 logs before the stop */
#define RACE_SPINS 200000

static pthread_barrier_t race_barrier; /* the stopper and the faulter */
static int loggers_quiet;              /* asked to stop logging */
static int loggers_returned;           /* threads done with their lines */
static long race_spins;                /* this round's head start */
static int race_fault_waits;           /* the fault side spins, or the stop */

/* The writer's first sink: every line it hands over parses. */
static void parse_sink(void *user, trail_level level, const char *line,
                       size_t len) {
  (void)user;
  (void)level;
  json_error_t e;
  json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
  CHILD_CHECK(j != NULL && json_is_object(j));
  json_decref(j);
}

static void race_spin(int mine) {
  if (mine)
    for (volatile long i = 0; i < race_spins; i++) {
    }
}

static void *race_logger(void *arg) {
  long k = (long)(intptr_t)arg;
  pthread_barrier_wait(&start_barrier);
  for (long n = 0; n < MAX_SEQ; n++) {
    if (__atomic_load_n(&loggers_quiet, __ATOMIC_ACQUIRE))
      break;
    log_tick(k, n, 1);
  }
  __atomic_add_fetch(&loggers_returned, 1, __ATOMIC_ACQ_REL);
  return NULL;
}

static void *race_faulter(void *arg) {
  (void)arg;
  pthread_barrier_wait(&race_barrier);
  race_spin(race_fault_waits);
  crash_by(SIGSEGV);
  return NULL;
}

static void race_child(int round) {
  race_spins = (long)((round / 2) * 7919 % RACE_SPINS);
  race_fault_waits = round % 2;
  crash_child_setup("matrix", NULL, 0, NULL);
  /* after the file: the writer has written its batch there when it parses */
  CHILD_CHECK(trail_sink_add_callback(parse_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  start_small_lines(RACE_RING);
  CHILD_CHECK(pthread_barrier_init(&start_barrier, NULL, THREADS + 1) == 0);
  CHILD_CHECK(pthread_barrier_init(&race_barrier, NULL, 2) == 0);
  pthread_t t;
  for (long k = 0; k < THREADS; k++)
    CHILD_CHECK(pthread_create(&t, NULL, race_logger, (void *)(intptr_t)k) ==
                0);
  CHILD_CHECK(pthread_create(&t, NULL, race_faulter, NULL) == 0);
  pthread_barrier_wait(&start_barrier);
  /* Enough lines to wrap the ring many times (a count, not a delay). */
  while (__atomic_load_n(&last_done[0], __ATOMIC_ACQUIRE) < RACE_LINES)
    sched_yield();
  __atomic_store_n(&loggers_quiet, 1, __ATOMIC_RELEASE);
  while (__atomic_load_n(&loggers_returned, __ATOMIC_ACQUIRE) < THREADS)
    sched_yield();
  pthread_barrier_wait(&race_barrier);
  race_spin(!race_fault_waits);
  trail_async_stop();
  for (;;)
    pause(); /* the fault ends the process */
}

static void test_fault_races_stop(void **state) {
  for (int r = 0; r < ROUNDS; r++) {
    last_done_reset();
    pid_t pid = crash_fork();
    if (pid == 0)
      race_child(r);
    crash_expect(pid, SIGSEGV);
    /* every line a thread logged, none other: nothing logs after the stop */
    long all = 0;
    for (int k = 0; k < THREADS; k++)
      all += last_done[k] + 1;
    assert_true(last_done[0] >= RACE_LINES);
    assert_int_equal(check_ticks(NULL), all);
    crash_teardown(state);
    crash_setup(state);
  }
}

int main(void) {
  last_done = mmap(NULL, sizeof(long) * THREADS, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (last_done == MAP_FAILED)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fault_while_four_threads_log,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_fault_while_four_threads_log_sync,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_fault_inside_a_reservation,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_fault_during_stop, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_fault_as_small_ring_wraps,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_fault_races_stop, crash_setup,
                                      crash_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
