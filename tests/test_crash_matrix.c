/*
 * The crash drain against everything else that runs at that moment
 * (lib/async.c, trail__async_crash_drain): four threads logging into the
 * async queue, a record reserved but never committed, a stop under way.
 * Each scenario runs in a child process with a watchdog alarm; the parent
 * parses every line of the file.
 */
#include "support.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define MAX_SEQ 200000   /* lines per thread at most */
#define FAULT_AFTER 3000 /* lines thread 0 logs before it faults */

static char dir[64], path[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/trail-crashm-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/app.log", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(path);
  rmdir(dir);
  return 0;
}

/* Shared with the child: each thread's last sequence number returned. */
static long *last_done;

enum { FAULT_PLAIN, FAULT_IN_CALL };
static int fault_how;
static const char *bad_string; /* a PROT_NONE page */
static pthread_barrier_t start_barrier;

__attribute__((no_sanitize("undefined"))) static void fault_now(void) {
  volatile int *p = NULL;
  *p = 1;
}

static void *logging_thread(void *arg) {
  long k = (long)(intptr_t)arg;
  pthread_barrier_wait(&start_barrier);
  for (long n = 0; n < MAX_SEQ; n++) {
    if (k == 0 && n == FAULT_AFTER) {
      if (fault_how == FAULT_PLAIN)
        fault_now();
      /* faults copying the string, after the record is reserved: a record
       * that is never committed */
      trail_info(NULL, "tick", TRAIL_INT("t", k), TRAIL_INT("n", n),
                 TRAIL_STRN("s", bad_string, 16));
    }
    trail_info(NULL, "tick", TRAIL_INT("t", k), TRAIL_INT("n", n));
    __atomic_store_n(&last_done[k], n, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void run_logging_child(int how) {
  for (int k = 0; k < THREADS; k++)
    last_done[k] = -1;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(30);
    signal(SIGSEGV, SIG_DFL);
    fault_how = how;
    bad_string =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bad_string == MAP_FAILED)
      _exit(2);
    trail_init("matrix");
    trail_sinks_clear();
    /* a large ring: the writer keeps up, no caller encodes its own line */
    trail_async_options o = {.queue_size = (size_t)64 << 20};
    if (trail_sink_add_file(path, TRAIL_LEVEL_TRACE) < 0 ||
        trail_crash_handler_install() != 0 || trail_async_start(&o) != 0)
      _exit(3);
    if (pthread_barrier_init(&start_barrier, NULL, THREADS) != 0)
      _exit(4);
    pthread_t t[THREADS];
    for (long k = 0; k < THREADS; k++)
      if (pthread_create(&t[k], NULL, logging_thread, (void *)(intptr_t)k) != 0)
        _exit(5);
    for (int k = 0; k < THREADS; k++)
      pthread_join(t[k], NULL);
    _exit(6); /* no fault */
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status))
    fail_msg("child exited with %d", WEXITSTATUS(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/*
 * Every line a thread's call returned from is in the file exactly once
 * (later ones at most once), every line parses, the fatal line is last.
 */
static void check_logging_file(void) {
  unsigned char *seen = calloc((size_t)THREADS * MAX_SEQ, 1);
  assert_non_null(seen);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  int fatal = 0, after_fatal = 0;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    assert_key_order(j);
    if (fatal > 0)
      after_fatal++;
    if (strcmp(jstr(j, "level"), "fatal") == 0) {
      assert_str_field(j, "signal", "SIGSEGV");
      fatal++;
    } else {
      json_int_t k = json_integer_value(json_object_get(j, "t"));
      json_int_t n = json_integer_value(json_object_get(j, "n"));
      assert_true(k >= 0 && k < THREADS && n >= 0 && n < MAX_SEQ);
      if (++seen[k * MAX_SEQ + n] > 1)
        fail_msg("line %d/%d is there twice", (int)k, (int)n);
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
  assert_int_equal(fatal, 1);
  assert_int_equal(after_fatal, 0);
  assert_int_equal(last_done[0], FAULT_AFTER - 1);
  for (int k = 0; k < THREADS; k++)
    for (long n = 0; n <= last_done[k]; n++)
      if (seen[k * MAX_SEQ + n] != 1)
        fail_msg("line %d/%ld (returned) is missing", k, n);
  free(seen);
}

/* A plain fault on one of four logging threads. */
static void test_fault_while_four_threads_log(void **state) {
  (void)state;
  run_logging_child(FAULT_PLAIN);
  check_logging_file();
}

/*
 * The fault is inside a logging call, between the reservation and the
 * commit: the drain steps over that record and writes the others' lines
 * queued after it.
 */
static void test_fault_inside_a_reservation(void **state) {
  (void)state;
  run_logging_child(FAULT_IN_CALL);
  check_logging_file();
}

/* The writer is held in a callback sink; other callers pass through. */
static pthread_mutex_t stall_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stall_cv = PTHREAD_COND_INITIALIZER;
static int stalled;
static pthread_t stalled_thread;
static int sync_probe_seen; /* a probe came through on the caller's thread */

static void stall_sink(void *user, trail_level level, const char *line,
                       size_t len) {
  (void)user;
  (void)level;
  (void)len;
  pthread_mutex_lock(&stall_m);
  if (!stalled) {
    stalled = 1;
    stalled_thread = pthread_self();
    pthread_cond_broadcast(&stall_cv);
  }
  if (pthread_equal(stalled_thread, pthread_self())) {
    for (;;)
      pthread_cond_wait(&stall_cv, &stall_m);
  }
  if (strstr(line, "\"probe\"") != NULL)
    __atomic_store_n(&sync_probe_seen, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&stall_m);
}

static void *stop_thread(void *arg) {
  (void)arg;
  trail_async_stop(); /* blocks: the writer never finishes */
  return NULL;
}

/*
 * A fault while trail_async_stop() waits for the writer: the drain still
 * writes the queue (the stop does not free the ring under it), then the
 * fatal line, last.
 */
static void test_fault_during_stop(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(30);
    signal(SIGSEGV, SIG_DFL);
    trail_init("matrix");
    trail_sinks_clear();
    if (trail_sink_add_callback(stall_sink, NULL, TRAIL_LEVEL_TRACE) < 0 ||
        trail_sink_add_file(path, TRAIL_LEVEL_TRACE) < 0 ||
        trail_crash_handler_install() != 0 || trail_async_start(NULL) != 0)
      _exit(3);
    trail_info(NULL, "tick", TRAIL_INT("t", 0), TRAIL_INT("n", 0));
    pthread_mutex_lock(&stall_m);
    while (!stalled)
      pthread_cond_wait(&stall_cv, &stall_m);
    pthread_mutex_unlock(&stall_m);
    for (long n = 1; n < 500; n++)
      trail_info(NULL, "tick", TRAIL_INT("t", 0), TRAIL_INT("n", n));
    pthread_t st;
    if (pthread_create(&st, NULL, stop_thread, NULL) != 0)
      _exit(4);
    /* Once the stop has closed the ring, a line is written by its caller:
     * the probe reaches the callback on this thread. */
    while (!__atomic_load_n(&sync_probe_seen, __ATOMIC_ACQUIRE))
      trail_info(NULL, "probe");
    fault_now();
    _exit(7);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status))
    fail_msg("child exited with %d", WEXITSTATUS(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  int seen[500] = {0};
  int fatal = 0, after_fatal = 0;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    assert_key_order(j);
    if (fatal > 0)
      after_fatal++;
    if (strcmp(jstr(j, "level"), "fatal") == 0) {
      fatal++;
    } else if (strcmp(jstr(j, "message"), "tick") == 0) {
      json_int_t n = json_integer_value(json_object_get(j, "n"));
      assert_true(n >= 0 && n < 500);
      seen[n]++;
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
  assert_int_equal(fatal, 1);
  assert_int_equal(after_fatal, 0);
  for (int n = 0; n < 500; n++)
    if (seen[n] != 1)
      fail_msg("line %d is there %d times", n, seen[n]);
}

int main(void) {
  last_done = mmap(NULL, sizeof(long) * THREADS, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (last_done == MAP_FAILED)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fault_while_four_threads_log, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fault_inside_a_reservation, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fault_during_stop, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
