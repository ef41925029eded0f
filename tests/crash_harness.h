/*
 * What the crash tests share (test_crash.c, test_crash_matrix.c): a child
 * process set up to crash under the watchdog (watchdog.h), real faults, a
 * sink that holds the writer thread, and the parent's reading of the log
 * the child left: every line whole and one JSON object, the fatal line
 * naming the signal, counted, and where it stands. Header-only, like
 * watchdog.h and pipes.h.
 */
#ifndef TRAIL_TEST_CRASH_HARNESS_H
#define TRAIL_TEST_CRASH_HARNESS_H

#include "files.h"
#include "watchdog.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* The log file the child writes, in a fresh directory per test. */
static char path[128];

static int crash_setup(void **state) {
  (void)state;
  tmpdir_make("crash");
  tmp_path(path, sizeof path, "app.log");
  return 0;
}

static int crash_teardown(void **state) {
  (void)state;
  remove_tree(tmpdir);
  return 0;
}

/*
 * Holds the first thread that reaches it (the writer, when it is the first
 * sink of an async start) in the sink forever; the others pass through,
 * and a line with "probe" in it says so in sync_probe_seen.
 */
static pthread_mutex_t stall_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stall_cv = PTHREAD_COND_INITIALIZER;
static int stalled;
static pthread_t stalled_thread;
static int sync_probe_seen; /* a probe came through on the caller's thread */

static inline void stall_sink(void *user, trail_level level, const char *line,
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

/* Returns once a thread is held in stall_sink(). */
static inline void stall_wait(void) {
  pthread_mutex_lock(&stall_m);
  while (!stalled)
    pthread_cond_wait(&stall_cv, &stall_m);
  pthread_mutex_unlock(&stall_m);
}

/* Real faults for SIGSEGV, SIGILL and SIGFPE: UBSan must not report the
 * store or the division first. */
__attribute__((no_sanitize("undefined"))) static inline void crash_by(int how) {
  if (how == SIGSEGV) {
    volatile int *p = NULL;
    *p = 1;
  } else if (how == SIGILL) {
    __builtin_trap(); /* ud2 on x86 */
  } else if (how == SIGFPE) {
    volatile int one = 1, zero = 0, r = one / zero; /* not folded */
    (void)r;
  } else if (how == SIGABRT) {
    abort();
  } else {
    raise(how);
  }
}

/*
 * Forks; in the child (0 returned), the watchdog alarm is set and the
 * fatal signals have their default action again (the test runner catches
 * them itself), which the crash handler must let take its course.
 */
static inline pid_t crash_fork(void) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    static const int sigs[] = {SIGSEGV, SIGBUS,  SIGILL,
                               SIGFPE,  SIGABRT, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
      signal(sigs[i], SIG_DFL);
    alarm(WATCHDOG_SECONDS);
  }
  return pid;
}

/* Waits for the child; returns its wait status. */
static inline int crash_reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);
  return status;
}

/* Fails unless the child died of sig (a hang ends it by the watchdog). */
static inline void crash_expect(pid_t pid, int sig) {
  int status = crash_reap(pid);
  if (!WIFSIGNALED(status))
    fail_msg("child exited with %d", WEXITSTATUS(status));
  if (WTERMSIG(status) != sig)
    fail_msg("child ended by signal %d, not %d%s", WTERMSIG(status), sig,
             WTERMSIG(status) == SIGALRM ? " (hung: watchdog)" : "");
}

/*
 * In the child: service, only the sinks first (a callback, when given)
 * and the log file, the crash handler, and the async writer when async
 * (with opts, which may be NULL).
 */
static inline void crash_child_setup(const char *service, trail_sink_fn first,
                                     int async,
                                     const trail_async_options *opts) {
  trail_init(service);
  trail_sinks_clear();
  if (first != NULL)
    CHILD_CHECK(trail_sink_add_callback(first, NULL, TRAIL_LEVEL_TRACE) >= 0);
  CHILD_CHECK(trail_sink_add_file(path, TRAIL_LEVEL_TRACE) >= 0);
  CHILD_CHECK(trail_crash_handler_install() == 0);
  if (async)
    CHILD_CHECK(trail_async_start(opts) == 0);
}

/* What crash_read() found. */
typedef struct crash_log {
  long lines;       /* every line, parsed */
  long fatal;       /* lines of level fatal */
  long after_fatal; /* lines after the first fatal one */
} crash_log;

static inline int is_fatal(json_t *j) {
  const char *level = json_string_value(json_object_get(j, "level"));
  return level != NULL && strcmp(level, "fatal") == 0;
}

/*
 * Parses every line of text (len bytes): each must be whole, one object,
 * no control byte (parse_line). A fatal line must name the signal name and
 * have the contract's key order; each(j, arg), when given, sees every line.
 */
static inline crash_log crash_read_text(const char *text, size_t len,
                                        const char *name,
                                        void (*each)(json_t *j, void *arg),
                                        void *arg) {
  crash_log l = {0, 0, 0};
  for (const char *p = text, *end = text + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
      fail_msg("line %ld is not whole: %.300s", l.lines + 1, p);
    json_t *j = parse_line(p, (size_t)(nl - p) + 1);
    l.lines++;
    if (l.fatal > 0)
      l.after_fatal++;
    if (is_fatal(j)) {
      assert_key_order(j);
      assert_str_field(j, "signal", name);
      l.fatal++;
    }
    if (each != NULL)
      each(j, arg);
    json_decref(j);
    p = nl + 1;
  }
  return l;
}

/* crash_read_text() on the whole log file. */
static inline crash_log
crash_read(const char *name, void (*each)(json_t *j, void *arg), void *arg) {
  size_t len;
  char *text = read_file(path, &len);
  crash_log l = crash_read_text(text, len, name, each, arg);
  free(text);
  return l;
}

/* One fatal line, and nothing after it. */
static inline void crash_expect_fatal_last(crash_log l) {
  assert_int_equal(l.fatal, 1);
  assert_int_equal(l.after_fatal, 0);
}

/* The line's integer field key, which must be in [0, n). */
static inline long crash_seq(json_t *j, const char *key, long n) {
  json_t *v = json_object_get(j, key);
  if (!json_is_integer(v))
    fail_msg("no integer %s", key);
  json_int_t i = json_integer_value(v);
  if (i < 0 || i >= n)
    fail_msg("%s %lld out of [0, %ld)", key, (long long)i, n);
  return (long)i;
}

#endif /* TRAIL_TEST_CRASH_HARNESS_H */
