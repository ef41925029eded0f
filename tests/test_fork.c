/*
 * fork() at the worst moments: while the writer stops (and reports drops),
 * while a pipe sink is full, while other threads start, exit and read the
 * counters. Each scenario runs under a watchdog (watchdog.h): on a deadlock
 * it fails instead of hanging. Every forked grandchild has its own alarm.
 */
#define _GNU_SOURCE
#include "files.h"
#include "pipes.h"
#include "support.h"
#include "watchdog.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>

#define FORKS (UNDER_SANITIZER ? 60 : 300)

static char path[160];

static int setup(void **state) {
  (void)state;
  tmpdir_make("fork");
  tmp_path(path, sizeof path, "app.log");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  remove_tree(tmpdir);
  return 0;
}

/*
 * The scenarios where other threads allocate while the test forks (starting
 * writers, starting threads) do not run under a sanitizer: its allocator is
 * not locked across fork(), and a child was seen (in gdb) waiting forever on
 * the runtime's own allocator lock from its first realloc. glibc's malloc is
 * fork-safe; these run in the plain and fallback builds.
 */
static void skip_if_sanitizer(void) {
  if (!UNDER_SANITIZER)
    return;
  fprintf(stderr, "skipped: the sanitizer runtime's allocator is not "
                  "fork-safe against threads that allocate\n");
  skip();
}

/* Forks a child that logs one line and exits; returns its exit status. */
static int fork_and_log(void) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    alarm(WATCHDOG_SECONDS);
    trail_info(NULL, "in the child");
    _exit(0);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- F1: fork while the writer stops and reports its drops -------------- */

#define ROUNDS (UNDER_SANITIZER ? 60 : 300)
#define LINES 200
#define SMALL_LINE 2048
#define SMALL_QUEUE 16384

static void *start_stop(void *arg) {
  (void)arg;
  trail_async_options o = {.queue_size = SMALL_QUEUE,
                           .overflow = TRAIL_OVERFLOW_DROP};
  for (int r = 0; r < ROUNDS; r++) {
    if (trail_async_start(&o) != 0)
      return (void *)1;
    for (int i = 0; i < LINES; i++)
      trail_info(NULL, "from the parent", TRAIL_INT("i", i),
                 TRAIL_STR("pad", "........................................"));
    if (trail_async_stop() != 0)
      return (void *)1;
  }
  return NULL;
}

static void fork_during_stop(void) {
  trail_init("forky");
  CHILD_CHECK(trail_max_line_set(SMALL_LINE) == 0); /* a small queue */
  trail_sinks_clear();
  CHILD_CHECK(trail_sink_add_file(path, TRAIL_LEVEL_TRACE) >= 0);
  pthread_t t;
  CHILD_CHECK(pthread_create(&t, NULL, start_stop, NULL) == 0);
  for (int i = 0; i < FORKS; i++)
    CHILD_CHECK(fork_and_log() == 0);
  void *rc;
  CHILD_CHECK(pthread_join(t, &rc) == 0 && rc == NULL);
  trail_counters cn;
  trail_counters_get(&cn);
  size_t len;
  char *text = read_file(path, &len);
  CHILD_CHECK(text != NULL);
  uint64_t dropped = 0;
  CHILD_CHECK(count_lines(text, "in the child", NULL) == FORKS);
  long parent = count_lines(text, "from the parent", &dropped);
  CHILD_CHECK(parent >= 0);
  CHILD_CHECK(dropped == cn.dropped);
  CHILD_CHECK((uint64_t)parent + dropped == (uint64_t)ROUNDS * LINES);
  free(text);
}

static void test_fork_during_async_stop(void **state) {
  (void)state;
  skip_if_sanitizer();
  run_watched("fork during trail_async_stop", fork_during_stop);
}

/* ---- F9: fork while a pipe sink is full --------------------------------- */

static volatile int stop_logging;
static long logged;

#define MAX_LOGGED 100000 /* far more than a full pipe holds */

static void *log_until_stopped(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&stop_logging, __ATOMIC_ACQUIRE) &&
         logged < MAX_LOGGED) {
    trail_info(NULL, "to the pipe", TRAIL_INT("n", logged));
    logged++;
  }
  return NULL;
}

/* Forks n children that exit at once; each fork must return. */
static void fork_n(int n) {
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    CHILD_CHECK(pid >= 0);
    if (pid == 0)
      _exit(0);
    int st;
    CHILD_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
  }
}

static void fork_with_full_pipe(int async) {
  trail_init("forky");
  trail_sinks_clear();
  pipe_sink_add();
  trail_async_options o = {.overflow = TRAIL_OVERFLOW_DROP};
  if (async)
    CHILD_CHECK(trail_async_start(&o) == 0);
  pthread_t t, r;
  CHILD_CHECK(pthread_create(&t, NULL, log_until_stopped, NULL) == 0);
  wait_pipe_full();
  fork_n(3); /* the first may still find the sink free; not the next */
  size_t len = 0;
  CHILD_CHECK(pthread_create(&r, NULL, read_to_end, &len) == 0);
  __atomic_store_n(&stop_logging, 1, __ATOMIC_RELEASE);
  CHILD_CHECK(pthread_join(t, NULL) == 0);
  CHILD_CHECK(trail_async_stop() == 0);
  trail_sinks_clear();
  close(pipe_fds[1]);
  char *text;
  CHILD_CHECK(pthread_join(r, (void **)&text) == 0 && text != NULL);
  uint64_t dropped = 0;
  long n = count_lines(text, "to the pipe", &dropped);
  CHILD_CHECK(n >= 0);
  CHILD_CHECK((uint64_t)n + dropped == (uint64_t)logged);
  free(text);
}

static void full_pipe_sync(void) { fork_with_full_pipe(0); }
static void full_pipe_async(void) { fork_with_full_pipe(1); }

static void test_fork_with_full_pipe_sync(void **state) {
  (void)state;
  run_watched("fork with a full pipe sink", full_pipe_sync);
}

static void test_fork_with_full_pipe_async(void **state) {
  (void)state;
  run_watched("fork with a full pipe sink, async drop", full_pipe_async);
}

/* ---- fork while a suppression report waits for a full pipe ------------- */

static volatile int flushing;

static void *flush_reports(void *arg) {
  (void)arg;
  __atomic_store_n(&flushing, 1, __ATOMIC_RELEASE);
  trail_flush(); /* its report waits for the pipe */
  return NULL;
}

static void fork_during_report(void) {
  trail_init("forky");
  trail_sinks_clear();
  pipe_sink_add();
  trail_logger *quiet = trail_logger_get("quiet");
  CHILD_CHECK(trail_logger_set_sampling(quiet, 1, 1000000) == 0);
  for (int i = 0; i < 10; i++)
    trail_info(quiet, "held back"); /* one written, nine held back */
  pthread_t t, f, r;
  CHILD_CHECK(pthread_create(&t, NULL, log_until_stopped, NULL) == 0);
  wait_pipe_full();
  CHILD_CHECK(pthread_create(&f, NULL, flush_reports, NULL) == 0);
  while (!__atomic_load_n(&flushing, __ATOMIC_ACQUIRE))
    sched_yield();
  fork_n(20);
  size_t len = 0;
  CHILD_CHECK(pthread_create(&r, NULL, read_to_end, &len) == 0);
  __atomic_store_n(&stop_logging, 1, __ATOMIC_RELEASE);
  CHILD_CHECK(pthread_join(t, NULL) == 0);
  CHILD_CHECK(pthread_join(f, NULL) == 0);
  trail_sinks_clear();
  close(pipe_fds[1]);
  char *text;
  CHILD_CHECK(pthread_join(r, (void **)&text) == 0 && text != NULL);
  CHILD_CHECK(count_lines(text, "to the pipe", NULL) == logged);
  CHILD_CHECK(count_lines(text, "log events suppressed by sampling", NULL) ==
              1);
  CHILD_CHECK(strstr(text, "\"suppressed\":9") != NULL);
  free(text);
}

static void test_fork_during_suppression_report(void **state) {
  (void)state;
  run_watched("fork while a report waits for a full pipe", fork_during_report);
}

/*
 * A child forked while events are held back by flood control does not
 * report them: they are the parent's, which does, once. The child flushes
 * and exits (both write pending reports); the file then holds one report,
 * the parent's, with every held-back event.
 */
static void child_no_parent_report(void) {
  trail_init("forky");
  CHILD_CHECK(trail_output_set(path, NULL) == 0);
  trail_counters_reset();
  trail_logger *quiet = trail_logger_get("quiet");
  CHILD_CHECK(trail_logger_set_sampling(quiet, 1, 1000000) == 0);
  for (int i = 0; i < 10; i++)
    trail_info(quiet, "held back");
  trail_counters c;
  trail_counters_get(&c);
  CHILD_CHECK(c.suppressed > 0);
  pid_t pid = fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) {
    trail_info(NULL, "from the child");
    trail_flush();
    exit(0);
  }
  int status;
  CHILD_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0);
  trail_flush();
  size_t len;
  char *text = read_file(path, &len);
  CHILD_CHECK(text != NULL);
  CHILD_CHECK(count_lines(text, "from the child", NULL) == 1);
  CHILD_CHECK(count_lines(text, "log events suppressed by sampling", NULL) ==
              1);
  char want[64];
  snprintf(want, sizeof want, "\"suppressed\":%llu}",
           (unsigned long long)c.suppressed);
  CHILD_CHECK(strstr(text, want) != NULL);
  free(text);
  trail_shutdown();
}

static void test_fork_child_leaves_reports_to_parent(void **state) {
  (void)state;
  run_watched("a child forked with events held back", child_no_parent_report);
}

/* ---- F6: fork while threads start, exit and read the counters ----------- */

static void *one_line(void *arg) {
  (void)arg;
  trail_info(NULL, "short-lived");
  return NULL;
}

/* Threads that logged once and wait: their blocks make the list long, so
 * that reading the counters holds their lock for a while. */
#define PARKED (UNDER_SANITIZER ? 16 : 64)
static pthread_mutex_t park_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;
static int parked, unpark;

static void *park(void *arg) {
  one_line(arg);
  pthread_mutex_lock(&park_m);
  parked++;
  pthread_cond_broadcast(&park_cv);
  while (!unpark)
    pthread_cond_wait(&park_cv, &park_m);
  pthread_mutex_unlock(&park_m);
  return NULL;
}

static void *churn(void *arg) {
  (void)arg;
  for (unsigned i = 0; !__atomic_load_n(&stop_logging, __ATOMIC_ACQUIRE); i++) {
    pthread_t t;
    if (i % 64 == 0 && pthread_create(&t, NULL, one_line, NULL) == 0)
      pthread_join(t, NULL);
    trail_counters c;
    trail_counters_get(&c);
  }
  return NULL;
}

static void fork_during_churn(void) {
  trail_init("forky");
  trail_sinks_clear();
  CHILD_CHECK(trail_sink_add_file(path, TRAIL_LEVEL_TRACE) >= 0);
  pthread_t p[PARKED], t[2];
  for (int i = 0; i < PARKED; i++)
    CHILD_CHECK(pthread_create(&p[i], NULL, park, NULL) == 0);
  pthread_mutex_lock(&park_m);
  while (parked < PARKED)
    pthread_cond_wait(&park_cv, &park_m);
  pthread_mutex_unlock(&park_m);
  for (int i = 0; i < 2; i++)
    CHILD_CHECK(pthread_create(&t[i], NULL, churn, NULL) == 0);
  for (int i = 0; i < FORKS; i++)
    CHILD_CHECK(fork_and_log() == 0);
  __atomic_store_n(&stop_logging, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++)
    CHILD_CHECK(pthread_join(t[i], NULL) == 0);
  pthread_mutex_lock(&park_m);
  unpark = 1;
  pthread_cond_broadcast(&park_cv);
  pthread_mutex_unlock(&park_m);
  for (int i = 0; i < PARKED; i++)
    CHILD_CHECK(pthread_join(p[i], NULL) == 0);
  size_t len;
  char *text = read_file(path, &len);
  CHILD_CHECK(text != NULL);
  CHILD_CHECK(count_lines(text, "in the child", NULL) == FORKS);
  free(text);
}

static void test_fork_during_thread_churn(void **state) {
  (void)state;
  skip_if_sanitizer();
  run_watched("fork while threads start, exit and count", fork_during_churn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fork_during_async_stop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fork_with_full_pipe_sync, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fork_with_full_pipe_async, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fork_during_suppression_report,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_fork_child_leaves_reports_to_parent,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_fork_during_thread_churn, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
