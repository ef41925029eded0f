/*
 * The crash handler (lib/crash.c): a child process crashes while lines sit
 * in the async queue; the file must then hold every queued line and a fatal
 * line naming the signal and the request, and the child must still die of
 * that signal.
 */
#include "support.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], path[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/trail-crash-XXXXXX");
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

/* Holds the writer thread inside a callback sink, forever. */
static pthread_mutex_t stall_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stall_cv = PTHREAD_COND_INITIALIZER;
static int stalled;

static void stall_sink(void *user, trail_level level, const char *line,
                       size_t len) {
  (void)user;
  (void)level;
  (void)line;
  (void)len;
  pthread_mutex_lock(&stall_m);
  stalled = 1;
  pthread_cond_broadcast(&stall_cv);
  for (;;)
    pthread_cond_wait(&stall_cv, &stall_m);
}

/* Real faults for SIGSEGV, SIGILL and SIGFPE: UBSan must not report the
 * store or the division first. */
__attribute__((no_sanitize("undefined"))) static void crash_by(int how) {
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

/* Runs the child; returns the signal that ended it. */
static int run_child(int sig, int async) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* The test runner catches fatal signals itself: give them back their
     * default action, which the handler must let take its course. */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
      signal(sigs[i], SIG_DFL);
    trail_init("crashy");
    trail_sinks_clear();
    /* the callback first: the writer stalls before the file gets a line */
    if (async &&
        trail_sink_add_callback(stall_sink, NULL, TRAIL_LEVEL_TRACE) < 0)
      _exit(3);
    if (trail_sink_add_file(path, TRAIL_LEVEL_TRACE) < 0)
      _exit(3);
    if (trail_crash_handler_install() != 0)
      _exit(4);
    if (trail_crash_handler_install() != -EALREADY)
      _exit(5);
    if (async && trail_async_start(NULL) != 0)
      _exit(6);
    trail_ctx ctx;
    trail_ctx_init(&ctx);
    trail_ctx_set_request_id(&ctx, "req-crash-1");
    trail_ctx_enter(&ctx);
    trail_info(NULL, "queued", TRAIL_INT("i", 0));
    if (async) {
      pthread_mutex_lock(&stall_m);
      while (!stalled)
        pthread_cond_wait(&stall_cv, &stall_m);
      pthread_mutex_unlock(&stall_m);
    }
    for (int i = 1; i < 500; i++)
      trail_info(NULL, "queued", TRAIL_INT("i", i));
    crash_by(sig);
    _exit(7);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status))
    fail_msg("child exited with %d", WEXITSTATUS(status));
  return WTERMSIG(status);
}

static void check_file(int sig, const char *name) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  int seen[500] = {0};
  int fatal = 0;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    assert_key_order(j);
    if (strcmp(jstr(j, "level"), "fatal") == 0) {
      assert_str_field(j, "logger", "trail");
      assert_str_field(j, "signal", name);
      assert_int_equal(json_integer_value(json_object_get(j, "signo")), sig);
      assert_str_field(j, "request_id", "req-crash-1");
      assert_str_field(j, "service", "crashy");
      fatal++;
    } else {
      json_int_t i = json_integer_value(json_object_get(j, "i"));
      assert_true(i >= 0 && i < 500);
      seen[i]++;
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
  assert_int_equal(fatal, 1);
  for (int i = 0; i < 500; i++)
    if (seen[i] < 1)
      fail_msg("queued line %d is missing", i);
}

static void test_segv_async_drains_queue(void **state) {
  (void)state;
  assert_int_equal(run_child(SIGSEGV, 1), SIGSEGV);
  check_file(SIGSEGV, "SIGSEGV");
}

static void test_abort_async(void **state) {
  (void)state;
  assert_int_equal(run_child(SIGABRT, 1), SIGABRT);
  check_file(SIGABRT, "SIGABRT");
}

static void test_bus_sync(void **state) {
  (void)state;
  assert_int_equal(run_child(SIGBUS, 0), SIGBUS);
  check_file(SIGBUS, "SIGBUS");
}

static void test_ill_async(void **state) {
  (void)state;
  assert_int_equal(run_child(SIGILL, 1), SIGILL);
  check_file(SIGILL, "SIGILL");
}

static void test_fpe_sync(void **state) {
  (void)state;
  assert_int_equal(run_child(SIGFPE, 0), SIGFPE);
  check_file(SIGFPE, "SIGFPE");
}

/* Parses every line of the file; returns how many are SIGSEGV fatal lines. */
static int count_fatal(void) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  int fatal = 0;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    if (strcmp(jstr(j, "level"), "fatal") == 0) {
      assert_str_field(j, "signal", "SIGSEGV");
      fatal++;
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
  return fatal;
}

/* Faults on the writer thread, inside a callback sink, on its first line. */
__attribute__((no_sanitize("undefined"))) static void
fault_sink(void *user, trail_level level, const char *line, size_t len) {
  (void)user;
  (void)level;
  (void)line;
  (void)len;
  volatile int *p = NULL;
  *p = 1;
}

/*
 * A fault on the writer thread reaches the crash handler: the file holds
 * the fatal line and the child dies of SIGSEGV. A watchdog alarm ends a
 * child that hangs.
 */
static void test_segv_on_writer_thread(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(10);
    signal(SIGSEGV, SIG_DFL);
    trail_init("crashy");
    trail_sinks_clear();
    if (trail_sink_add_callback(fault_sink, NULL, TRAIL_LEVEL_TRACE) < 0 ||
        trail_sink_add_file(path, TRAIL_LEVEL_TRACE) < 0 ||
        trail_crash_handler_install() != 0 || trail_async_start(NULL) != 0)
      _exit(3);
    trail_info(NULL, "boom");
    for (;;)
      pause();
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  assert_int_equal(count_fatal(), 1);
}

#define FAULT_ADDR ((volatile int *)0x10)
#define PREV_EXIT 42

/* The earlier crash reporter: records what it saw in its exit code. */
static void prev_handler(int sig, siginfo_t *info, void *uctx) {
  (void)uctx;
  int ok = sig == SIGSEGV && info->si_code == SEGV_MAPERR &&
           info->si_addr == (void *)FAULT_ADDR;
  _exit(ok ? PREV_EXIT : PREV_EXIT + 1);
}

__attribute__((no_sanitize("undefined"))) static void fault_at_known(void) {
  /* through a volatile integer: the compiler cannot see the address */
  volatile uintptr_t addr = (uintptr_t)FAULT_ADDR;
  *(volatile int *)addr = 1;
}

/*
 * A SA_SIGINFO handler installed before trail's is called with the kernel's
 * siginfo (SEGV_MAPERR, the fault address), after the fatal line.
 */
static void test_previous_handler_sees_fault(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(10);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = prev_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    trail_init("crashy");
    trail_sinks_clear();
    if (trail_sink_add_file(path, TRAIL_LEVEL_TRACE) < 0 ||
        trail_crash_handler_install() != 0)
      _exit(3);
    fault_at_known();
    _exit(7);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), PREV_EXIT);
  assert_int_equal(count_fatal(), 1);
}

/*
 * Parses every line; each of the n queued lines must be there exactly
 * once, and the one fatal line (signal name) last.
 */
static void check_exactly_once(const char *name, int n) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  int *seen = calloc((size_t)n, sizeof *seen);
  assert_non_null(seen);
  int fatal = 0, after_fatal = 0;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    assert_key_order(j);
    if (fatal > 0)
      after_fatal++;
    if (strcmp(jstr(j, "level"), "fatal") == 0) {
      assert_str_field(j, "signal", name);
      fatal++;
    } else {
      json_int_t i = json_integer_value(json_object_get(j, "i"));
      assert_true(i >= 0 && i < n);
      seen[i]++;
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
  assert_int_equal(fatal, 1);
  assert_int_equal(after_fatal, 0);
  for (int i = 0; i < n; i++)
    if (seen[i] != 1)
      fail_msg("queued line %d is there %d times", i, seen[i]);
  free(seen);
}

static pthread_barrier_t fault_barrier;

/* Waits for the other faulting thread, then faults; each at its own
 * address (the same one would be a data race for ThreadSanitizer). */
__attribute__((no_sanitize("undefined"))) static void *fault_thread(void *arg) {
  volatile uintptr_t addr = (uintptr_t)arg;
  pthread_barrier_wait(&fault_barrier);
  *(volatile int *)addr = 1;
  return NULL;
}

/*
 * Two threads fault at about the same time while 500 lines are queued: the
 * second waits for the first's drain, so the file holds every queued line
 * once, whole, and one fatal line, last.
 */
static void test_two_threads_fault(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(20);
    signal(SIGSEGV, SIG_DFL);
    trail_init("crashy");
    trail_sinks_clear();
    if (trail_sink_add_callback(stall_sink, NULL, TRAIL_LEVEL_TRACE) < 0 ||
        trail_sink_add_file(path, TRAIL_LEVEL_TRACE) < 0 ||
        trail_crash_handler_install() != 0 || trail_async_start(NULL) != 0)
      _exit(3);
    trail_info(NULL, "queued", TRAIL_INT("i", 0));
    pthread_mutex_lock(&stall_m);
    while (!stalled)
      pthread_cond_wait(&stall_cv, &stall_m);
    pthread_mutex_unlock(&stall_m);
    for (int i = 1; i < 500; i++)
      trail_info(NULL, "queued", TRAIL_INT("i", i));
    if (pthread_barrier_init(&fault_barrier, NULL, 2) != 0)
      _exit(4);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
      if (pthread_create(&t[i], NULL, fault_thread,
                         (void *)(uintptr_t)(0x100 + 0x40 * i)) != 0)
        _exit(5);
    for (;;)
      pause();
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status))
    fail_msg("child exited with %d", WEXITSTATUS(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  check_exactly_once("SIGSEGV", 500);
}

#define FILLER "{\"filler\":true}\n"

/* The child is blocked in poll(2), or gone: 1; still running otherwise. */
static int child_polls_or_died(pid_t pid, int *status, int *reaped) {
  if (!*reaped && waitpid(pid, status, WNOHANG) == pid)
    *reaped = 1;
  if (*reaped)
    return 1;
  char p[64], w[128] = {0};
  snprintf(p, sizeof p, "/proc/%d/wchan", (int)pid);
  FILE *f = fopen(p, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(w, 1, sizeof w - 1, f);
  fclose(f);
  w[n] = '\0';
  return strstr(w, "poll") != NULL;
}

/*
 * A non-blocking pipe sink is full when the process crashes: the handler
 * waits for the reader (poll) instead of giving up on EAGAIN, so the fatal
 * line arrives once the parent reads.
 */
static void test_full_nonblocking_pipe(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(20);
    signal(SIGSEGV, SIG_DFL);
    close(fds[0]);
    if (fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0)
      _exit(3);
    trail_init("crashy");
    trail_sinks_clear();
    if (trail_sink_add_fd(fds[1], TRAIL_LEVEL_TRACE) < 0 ||
        trail_crash_handler_install() != 0)
      _exit(4);
    /* whole lines (a pipe write this small is atomic) until it is full */
    while (write(fds[1], FILLER, sizeof FILLER - 1) > 0) {
    }
    if (errno != EAGAIN)
      _exit(5);
    crash_by(SIGSEGV);
    _exit(7);
  }
  close(fds[1]);
  int status = 0, reaped = 0;
  /* a condition, not a delay: the alarm ends a child that never polls */
  while (!child_polls_or_died(pid, &status, &reaped))
    sched_yield();
  FILE *f = fdopen(fds[0], "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  int fillers = 0, fatal = 0, after_fatal = 0;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    if (fatal > 0)
      after_fatal++;
    if (json_object_get(j, "filler") != NULL) {
      fillers++;
    } else {
      assert_str_field(j, "level", "fatal");
      assert_str_field(j, "signal", "SIGSEGV");
      fatal++;
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
  if (!reaped)
    assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  assert_true(fillers > 0);
  assert_int_equal(fatal, 1);
  assert_int_equal(after_fatal, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_segv_async_drains_queue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_abort_async, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bus_sync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ill_async, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fpe_sync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_segv_on_writer_thread, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_previous_handler_sees_fault, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_two_threads_fault, setup, teardown),
      cmocka_unit_test(test_full_nonblocking_pipe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
