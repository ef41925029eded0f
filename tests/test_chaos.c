/*
 * Chaos: counted threads log in sync and async mode (block policy: nothing
 * may be lost) while another thread, at random, forks children that log,
 * starts and stops the writer, renames the file and reopens it, adds and
 * removes sinks, changes levels, redaction and sampling, cancels logging
 * threads, and makes threads exit whose destructors log. Afterwards every
 * line of every file must parse with no duplicate key, and every counted
 * line must be there exactly once. It all runs in a child under the
 * watchdog (watchdog.h): a hang fails the test.
 */
#define _GNU_SOURCE
#include "files.h"
#include "support.h"
#include "watchdog.h"

#include <sched.h>

#define COUNTED 3
#define LINES 20000
#define ACTIONS 200 /* at least; more while the counted threads run */

#if UNDER_SANITIZER
/*
 * A thread cancelled deep in a call is unwound without AddressSanitizer
 * unpoisoning its frames, and the runtime's own sigaltstack() at that
 * thread's exit then reads them as an overflow: no alternate stack for the
 * runtime (trail's crash handler is not used here).
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "use_sigaltstack=0"; }
#endif
#ifdef __SANITIZE_THREAD__
/* A child forked while a counted thread has finished but is not yet joined
 * inherits it as a "leaked" thread; that is the test's doing, not trail's. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "report_thread_leaks=0"; }
#endif

static char base[160];
static int nfiles = 1; /* app.log, then app.log.1 ... as renamed */
static int finished;   /* counted threads done */
static unsigned char seen[COUNTED][LINES];

static void *counted(void *arg) {
  long t = (long)arg;
  for (int i = 0; i < LINES; i++)
    trail_info(NULL, "counted", TRAIL_INT("t", t), TRAIL_INT("seq", i),
               TRAIL_STR("secret", "s3cr3t"));
  __atomic_add_fetch(&finished, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* Logs until cancelled (it is never joined before the cancel). */
static void *victim(void *arg) {
  (void)arg;
  for (;;) {
    trail_warn(trail_logger_get("victim"), "doomed");
    pthread_testcancel();
  }
  return NULL;
}

static pthread_key_t dtor_key;
static void dtor_logs(void *p) {
  (void)p;
  trail_info(trail_logger_get("dtor"), "from a destructor");
}
static void *exits_with_dtor(void *arg) {
  (void)arg;
  trail_info(trail_logger_get("dtor"), "about to exit");
  pthread_setspecific(dtor_key, (void *)1);
  return NULL;
}

static void discard(void *u, trail_level l, const char *line, size_t n) {
  (void)u, (void)l, (void)line, (void)n;
}

/*
 * The child's logger is made in the parent: a child of a threaded process
 * must not allocate, since another thread may have held the allocator's lock
 * at the fork (a sanitizer's allocator has no fork handlers to release it),
 * and the first trail_logger_get() of a name allocates the logger.
 */
static void act_fork(void) {
  trail_logger *lg = trail_logger_get("child");
  pid_t pid = fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) {
    alarm(WATCHDOG_SECONDS);
    trail_info(lg, "in a child");
    _exit(0);
  }
  int st;
  CHILD_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
              WEXITSTATUS(st) == 0);
}

static void act_rotate(void) {
  char to[200];
  snprintf(to, sizeof to, "%s.%d", base, nfiles++);
  CHILD_CHECK(rename(base, to) == 0);
  CHILD_CHECK(trail_reopen() == 0);
}

static void act_async(void) {
  if (trail_async_running()) {
    CHILD_CHECK(trail_async_stop() == 0);
    return;
  }
  trail_async_options o = {.queue_size = 262144,
                           .overflow = TRAIL_OVERFLOW_BLOCK};
  int rc = trail_async_start(&o);
  CHILD_CHECK(rc == 0 || rc == -EALREADY);
}

static void act_threads(int which) {
  pthread_t t;
  if (which == 0) {
    CHILD_CHECK(pthread_create(&t, NULL, victim, NULL) == 0);
    sched_yield();
    CHILD_CHECK(pthread_cancel(t) == 0);
  } else {
    CHILD_CHECK(pthread_create(&t, NULL, exits_with_dtor, NULL) == 0);
  }
  CHILD_CHECK(pthread_join(t, NULL) == 0);
}

static void act_config(int which, int *sink) {
  switch (which) {
  case 0:
    if (*sink >= 0) {
      CHILD_CHECK(trail_sink_remove(*sink) == 0);
      *sink = -1;
    } else {
      *sink = trail_sink_add_callback(discard, NULL, TRAIL_LEVEL_TRACE);
      CHILD_CHECK(*sink >= 0);
    }
    break;
  case 1:
    CHILD_CHECK(trail_levels_set(rand() % 2 ? "trace" : "debug", NULL) == 0);
    break;
  case 2:
    CHILD_CHECK(trail_redact_set(rand() % 2 ? "secret" : "password", NULL) ==
                0);
    break;
  default:
    CHILD_CHECK(trail_logger_set_sampling(trail_logger_get("victim"),
                                          (uint32_t)(rand() % 3), 5) == 0);
    break;
  }
}

static void chaos_step(int *sink) {
  int a = rand() % 10;
  if (a == 0)
    act_fork();
  else if (a == 1)
    act_rotate();
  else if (a <= 3)
    act_async();
  else if (a <= 5)
    act_threads(a - 4);
  else
    act_config(a - 6, sink);
}

/* Checks every line of one file; marks the counted ones in seen. */
static void check_file(const char *path) {
  size_t len;
  char *text = read_file(path, &len);
  CHILD_CHECK(text != NULL);
  for (char *p = text; *p;) {
    char *nl = strchr(p, '\n');
    CHILD_CHECK(nl != NULL); /* whole */
    json_error_t e;
    json_t *j = json_loadb(p, (size_t)(nl - p) + 1, JSON_REJECT_DUPLICATES, &e);
    CHILD_CHECK(j != NULL); /* parses, no duplicate key */
    const char *m = json_string_value(json_object_get(j, "message"));
    CHILD_CHECK(m != NULL);
    if (strcmp(m, "counted") == 0) {
      json_int_t t = json_integer_value(json_object_get(j, "t"));
      json_int_t s = json_integer_value(json_object_get(j, "seq"));
      CHILD_CHECK(t >= 0 && t < COUNTED && s >= 0 && s < LINES);
      CHILD_CHECK(seen[t][s] == 0); /* once */
      seen[t][s] = 1;
    }
    json_decref(j);
    p = nl + 1;
  }
  free(text);
}

static void chaos(void) {
  srand(20261206);
  trail_init("chaos");
  trail_sinks_clear();
  CHILD_CHECK(trail_sink_add_file(base, TRAIL_LEVEL_TRACE) >= 0);
  CHILD_CHECK(pthread_key_create(&dtor_key, dtor_logs) == 0);
  pthread_t t[COUNTED];
  for (long i = 0; i < COUNTED; i++)
    CHILD_CHECK(pthread_create(&t[i], NULL, counted, (void *)i) == 0);
  int sink = -1;
  for (int i = 0;
       i < ACTIONS || __atomic_load_n(&finished, __ATOMIC_ACQUIRE) < COUNTED;
       i++)
    chaos_step(&sink);
  for (int i = 0; i < COUNTED; i++)
    CHILD_CHECK(pthread_join(t[i], NULL) == 0);
  CHILD_CHECK(trail_async_stop() == 0);
  check_file(base);
  for (int k = 1; k < nfiles; k++) {
    char p[200];
    snprintf(p, sizeof p, "%s.%d", base, k);
    check_file(p);
  }
  for (int i = 0; i < COUNTED; i++)
    for (int s = 0; s < LINES; s++)
      CHILD_CHECK(seen[i][s] == 1); /* none lost */
}

static void test_chaos(void **state) {
  (void)state;
  tmpdir_make("chaos");
  tmp_path(base, sizeof base, "app.log");
  run_watched("chaos", chaos);
  remove_tree(tmpdir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_chaos)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
