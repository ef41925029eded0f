/*
 * The crash handler (lib/crash.c): a child process crashes while lines sit
 * in the async queue; the file must then hold every queued line and a fatal
 * line naming the signal and the request, and the child must still die of
 * that signal.
 */
#include "crash_harness.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <trail/http.h>

#define QUEUED 500 /* lines queued before the crash */

/* Runs the child: QUEUED lines queued (async: behind a held writer), then
 * the crash by sig. */
static void run_child(int sig, int async) {
  pid_t pid = crash_fork();
  if (pid == 0) {
    /* the callback first: the writer stalls before the file gets a line */
    crash_child_setup("crashy", async ? stall_sink : NULL, 0, NULL);
    CHILD_CHECK(trail_crash_handler_install() == -EALREADY);
    if (async)
      CHILD_CHECK(trail_async_start(NULL) == 0);
    trail_ctx ctx;
    trail_ctx_init(&ctx);
    trail_ctx_set_request_id(&ctx, "req-crash-1");
    trail_ctx_enter(&ctx);
    trail_info(NULL, "queued", TRAIL_INT("i", 0));
    if (async)
      stall_wait();
    for (int i = 1; i < QUEUED; i++)
      trail_info(NULL, "queued", TRAIL_INT("i", i));
    crash_by(sig);
    _exit(7);
  }
  crash_expect(pid, sig);
}

/* How often each queued line ("i") is in the file; what the fatal line
 * must say (its request when request_id is not NULL). */
typedef struct queued_seen {
  int sig;
  const char *request_id;
  int seen[QUEUED];
} queued_seen;

static void count_queued(json_t *j, void *arg) {
  queued_seen *q = arg;
  assert_key_order(j);
  if (is_fatal(j)) {
    assert_str_field(j, "logger", "trail");
    assert_int_equal(json_integer_value(json_object_get(j, "signo")), q->sig);
    if (q->request_id != NULL)
      assert_str_field(j, "request_id", q->request_id);
    assert_str_field(j, "service", "crashy");
  } else {
    q->seen[crash_seq(j, "i", QUEUED)]++;
  }
}

/*
 * Parses every line: every queued line is there (exactly once when once),
 * with one fatal line naming the signal (and request_id), last when once.
 */
static void check_queued(int sig, const char *name, const char *request_id,
                         int once) {
  queued_seen q = {.sig = sig, .request_id = request_id};
  crash_log l = crash_read(name, count_queued, &q);
  assert_int_equal(l.fatal, 1);
  if (once)
    assert_int_equal(l.after_fatal, 0);
  for (int i = 0; i < QUEUED; i++)
    if (q.seen[i] < 1 || (once && q.seen[i] != 1))
      fail_msg("queued line %d is there %d times", i, q.seen[i]);
  if (once)
    assert_int_equal(l.lines, QUEUED + 1);
}

static void test_segv_async_drains_queue(void **state) {
  (void)state;
  run_child(SIGSEGV, 1);
  check_queued(SIGSEGV, "SIGSEGV", "req-crash-1", 0);
}

static void test_abort_async(void **state) {
  (void)state;
  run_child(SIGABRT, 1);
  check_queued(SIGABRT, "SIGABRT", "req-crash-1", 0);
}

static void test_bus_sync(void **state) {
  (void)state;
  run_child(SIGBUS, 0);
  check_queued(SIGBUS, "SIGBUS", "req-crash-1", 0);
}

static void test_ill_async(void **state) {
  (void)state;
  run_child(SIGILL, 1);
  check_queued(SIGILL, "SIGILL", "req-crash-1", 0);
}

static void test_fpe_sync(void **state) {
  (void)state;
  run_child(SIGFPE, 0);
  check_queued(SIGFPE, "SIGFPE", "req-crash-1", 0);
}

/*
 * A crash is its request failing: the lines the crashing thread's request
 * kept back (debug, below the level) are written, marked buffered, in
 * order, before the fatal line; another request's are not.
 */
#define KEPT 20

static void run_buffered_child(int async) {
  pid_t pid = crash_fork();
  if (pid == 0) {
    crash_child_setup("crashy", NULL, async, NULL);
    CHILD_CHECK(trail_levels_set("info", NULL) == 0);
    trail_ctx other, mine;
    trail_ctx_init(&other);
    trail_ctx_init(&mine);
    trail_ctx_set_request_id(&other, "req-other");
    trail_ctx_set_request_id(&mine, "req-crash-2");
    CHILD_CHECK(trail_ctx_buffer(&other, TRAIL_LEVEL_DEBUG, 4096) == 0);
    CHILD_CHECK(trail_ctx_buffer(&mine, TRAIL_LEVEL_DEBUG, 64 * 1024) == 0);
    trail_ctx_enter(&other);
    trail_debug(NULL, "not this request's");
    trail_ctx_enter(&mine);
    trail_info(NULL, "written");
    for (int i = 0; i < KEPT; i++)
      trail_debug(NULL, "kept", TRAIL_INT("i", i));
    crash_by(SIGSEGV);
    _exit(7);
  }
  crash_expect(pid, SIGSEGV);
}

typedef struct kept_seen {
  int next; /* the next "i" expected */
  int written, fatal;
} kept_seen;

static void count_kept(json_t *j, void *arg) {
  kept_seen *k = arg;
  assert_str_field(j, "request_id", "req-crash-2");
  const char *m = jstr(j, "message");
  int buffered = json_is_true(json_object_get(j, "buffered"));
  if (strcmp(m, "written") == 0) {
    assert_false(buffered);
    k->written++;
  } else if (is_fatal(j)) {
    assert_int_equal(k->next, KEPT); /* every kept line came before */
    k->fatal++;
  } else {
    assert_string_equal(m, "kept");
    assert_true(buffered);
    assert_int_equal(crash_seq(j, "i", KEPT), k->next++);
  }
}

static void check_buffered_crash(int async) {
  run_buffered_child(async);
  kept_seen k = {0, 0, 0};
  crash_log l = crash_read("SIGSEGV", count_kept, &k);
  assert_int_equal(l.lines, KEPT + 2);
  assert_int_equal(k.written, 1);
  assert_int_equal(k.fatal, 1);
  assert_int_equal(l.after_fatal, 0);
}

static void test_segv_writes_buffered_sync(void **state) {
  (void)state;
  check_buffered_crash(0);
}

static void test_segv_writes_buffered_async(void **state) {
  (void)state;
  check_buffered_crash(1);
}

/* Faults on the writer thread, inside a callback sink, on its first line. */
static void fault_sink(void *user, trail_level level, const char *line,
                       size_t len) {
  (void)user;
  (void)level;
  (void)line;
  (void)len;
  crash_by(SIGSEGV);
}

/*
 * A fault on the writer thread reaches the crash handler: the file holds
 * the fatal line and the child dies of SIGSEGV. The watchdog ends a child
 * that hangs.
 */
static void test_segv_on_writer_thread(void **state) {
  (void)state;
  pid_t pid = crash_fork();
  if (pid == 0) {
    crash_child_setup("crashy", fault_sink, 1, NULL);
    trail_info(NULL, "boom");
    for (;;)
      pause();
  }
  crash_expect(pid, SIGSEGV);
  assert_int_equal(crash_read("SIGSEGV", NULL, NULL).fatal, 1);
}

/*
 * A stack overflow on a thread other than the installer's: the thread has
 * logged once (and begun a request), so it has an alternate stack of its
 * own, and the handler runs there. The fatal line carries its request.
 */
static volatile int never_true;

__attribute__((noinline)) static int recurse(int depth) {
  volatile char frame[512];
  frame[0] = (char)depth;
  if (never_true)
    return frame[0];
  return recurse(depth + 1) + frame[0]; /* not a tail call */
}

static void *overflow_thread(void *arg) {
  (void)arg;
  trail_http_request r;
  trail_http_begin(&r, NULL, "GET", "/deep", TRAIL_NTS, NULL);
  trail_http_header(&r, "X-Request-ID", TRAIL_NTS, "req-overflow", TRAIL_NTS);
  trail_http_headers_done(&r);
  trail_ctx_enter(trail_http_ctx(&r)); /* as an adapter does for the handler */
  trail_info(NULL, "about to recurse");
  recurse(0);
  return NULL;
}

/* Both lines carry the request; the fatal one names the signal. */
static void check_fatal_request(json_t *j, void *arg) {
  const queued_seen *q = arg;
  assert_key_order(j);
  assert_str_field(j, "request_id", q->request_id);
  if (is_fatal(j))
    assert_int_equal(json_integer_value(json_object_get(j, "signo")), q->sig);
  else
    assert_str_field(j, "message", "about to recurse");
}

/* The same on the thread that installed the handler (its first thread). */
static void test_stack_overflow_on_installer(void **state) {
  (void)state;
  pid_t pid = crash_fork();
  if (pid == 0) {
    crash_child_setup("crashy", NULL, 0, NULL);
    overflow_thread(NULL);
    _exit(7);
  }
  crash_expect(pid, SIGSEGV);
  queued_seen q = {.sig = SIGSEGV, .request_id = "req-overflow"};
  crash_log l = crash_read("SIGSEGV", check_fatal_request, &q);
  assert_int_equal(l.fatal, 1);
  assert_int_equal(l.lines, 2);
}

static void test_stack_overflow_on_worker(void **state) {
  (void)state;
  pid_t pid = crash_fork();
  if (pid == 0) {
    crash_child_setup("crashy", NULL, 0, NULL);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 * 1024); /* overflows quickly */
    pthread_t t;
    CHILD_CHECK(pthread_create(&t, &a, overflow_thread, NULL) == 0);
    for (;;)
      pause();
  }
  crash_expect(pid, SIGSEGV);
  queued_seen q = {.sig = SIGSEGV, .request_id = "req-overflow"};
  crash_log l = crash_read("SIGSEGV", check_fatal_request, &q);
  assert_int_equal(l.fatal, 1);
  assert_int_equal(l.lines, 2);
  assert_int_equal(l.after_fatal, 0);
}

/*
 * Each thread that logs while the handler is installed has an alternate
 * stack of at least 64 KiB after its first line, and trail's is unmapped
 * at the thread's exit (of 100 threads in turn, at least 90 of their
 * stacks' addresses are unmapped after the join: all of them but for the
 * rare reuse of an address by another mapping; none when leaked). A thread
 * that has a stack of its own keeps it. AddressSanitizer gives each thread
 * a smaller stack of its own, which trail leaves in place.
 */
#define STACK_THREADS 100
#if defined(__SANITIZE_ADDRESS__)
#define OWN_STACKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OWN_STACKS 1
#endif
#endif
#ifndef OWN_STACKS
#define OWN_STACKS 0
#endif

static void *log_once_check_stack(void *arg) {
  void *own = arg;
  stack_t before;
  if (own != NULL) {
    stack_t ss = {.ss_sp = own, .ss_size = 128 * 1024};
    CHILD_CHECK(sigaltstack(&ss, &before) == 0);
  }
  trail_info(NULL, "one line");
  stack_t cur;
  CHILD_CHECK(sigaltstack(NULL, &cur) == 0);
  CHILD_CHECK(!(cur.ss_flags & SS_DISABLE));
  CHILD_CHECK(own == NULL || cur.ss_sp == own);
  CHILD_CHECK(OWN_STACKS || cur.ss_size >= 64 * 1024);
  if (own != NULL) /* the one before (a sanitizer's) is the one it frees */
    CHILD_CHECK(sigaltstack(&before, NULL) == 0);
  return cur.ss_sp;
}

/* Runs one such thread; whether its alternate stack is unmapped now. */
static int stack_gone_after(void *own) {
  pthread_t t;
  void *sp;
  CHILD_CHECK(pthread_create(&t, NULL, log_once_check_stack, own) == 0);
  CHILD_CHECK(pthread_join(t, &sp) == 0);
  unsigned char v;
  long page = sysconf(_SC_PAGESIZE);
  void *at = (void *)((uintptr_t)sp & ~(uintptr_t)(page - 1));
  return mincore(at, (size_t)page, &v) != 0 && errno == ENOMEM;
}

static void stacks_freed_at_exit(void) {
  crash_child_setup("crashy", NULL, 0, NULL);
  int gone = 0;
  for (int i = 0; i < STACK_THREADS; i++)
    gone += stack_gone_after(NULL);
  CHILD_CHECK(OWN_STACKS || gone >= STACK_THREADS * 9 / 10);
  static char own[128 * 1024];
  CHILD_CHECK(!stack_gone_after(own));
}

static void test_thread_stacks_freed(void **state) {
  (void)state;
  run_watched("alternate stacks at thread exit", stacks_freed_at_exit);
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
  pid_t pid = crash_fork();
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = prev_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    crash_child_setup("crashy", NULL, 0, NULL);
    fault_at_known();
    _exit(7);
  }
  int status = crash_reap(pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), PREV_EXIT);
  assert_int_equal(crash_read("SIGSEGV", NULL, NULL).fatal, 1);
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
  pid_t pid = crash_fork();
  if (pid == 0) {
    crash_child_setup("crashy", stall_sink, 1, NULL);
    trail_info(NULL, "queued", TRAIL_INT("i", 0));
    stall_wait();
    for (int i = 1; i < QUEUED; i++)
      trail_info(NULL, "queued", TRAIL_INT("i", i));
    CHILD_CHECK(pthread_barrier_init(&fault_barrier, NULL, 2) == 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
      CHILD_CHECK(pthread_create(&t[i], NULL, fault_thread,
                                 (void *)(uintptr_t)(0x100 + 0x40 * i)) == 0);
    for (;;)
      pause();
  }
  crash_expect(pid, SIGSEGV);
  check_queued(SIGSEGV, "SIGSEGV", NULL, 1);
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

/* Counts the filler lines; every other line must be the fatal one. */
static void count_filler(json_t *j, void *arg) {
  long *fillers = arg;
  if (json_object_get(j, "filler") != NULL)
    (*fillers)++;
  else
    assert_str_field(j, "level", "fatal");
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
  pid_t pid = crash_fork();
  if (pid == 0) {
    close(fds[0]);
    CHILD_CHECK(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0);
    trail_init("crashy");
    trail_sinks_clear();
    CHILD_CHECK(trail_sink_add_fd(fds[1], TRAIL_LEVEL_TRACE) >= 0);
    CHILD_CHECK(trail_crash_handler_install() == 0);
    /* whole lines (a pipe write this small is atomic) until it is full */
    while (write(fds[1], FILLER, sizeof FILLER - 1) > 0) {
    }
    CHILD_CHECK(errno == EAGAIN);
    crash_by(SIGSEGV);
    _exit(7);
  }
  close(fds[1]);
  int status = 0, reaped = 0;
  /* a condition, not a delay: the watchdog ends a child that never polls */
  while (!child_polls_or_died(pid, &status, &reaped))
    sched_yield();
  size_t len;
  char *text = read_all_fd(fds[0], &len);
  close(fds[0]);
  long fillers = 0;
  crash_log l = crash_read_text(text, len, "SIGSEGV", count_filler, &fillers);
  free(text);
  if (!reaped)
    status = crash_reap(pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  assert_true(fillers > 0);
  assert_int_equal(l.lines, fillers + 1);
  crash_expect_fatal_last(l);
}

/*
 * A blocking pipe sink whose reader is stalled (it never reads) is full
 * when the process crashes, with a file sink beside it. The handler must
 * not block on the pipe: it gives the pipe up after its wait (1 s), writes
 * the file's lines and the fatal line, and the process dies of its signal
 * (the watchdog would end a hang with SIGALRM). In async mode the writer
 * is stuck in the pipe's write with lines queued, which the handler writes
 * to the file, each once.
 */
#define STALLED_LINES 20

static void fill_pipe(int fd) {
  CHILD_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
  while (write(fd, FILLER, sizeof FILLER - 1) > 0) {
  }
  CHILD_CHECK(errno == EAGAIN);
  CHILD_CHECK(fcntl(fd, F_SETFL, 0) == 0); /* blocking again, and full */
}

static void count_stalled(json_t *j, void *arg) {
  int *seen = arg;
  if (!is_fatal(j))
    seen[crash_seq(j, "i", STALLED_LINES)]++;
}

static void run_stalled_pipe(int async) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = crash_fork();
  if (pid == 0) {
    close(fds[0]);
    trail_init("crashy");
    trail_sinks_clear();
    /* the pipe first: the writer blocks there before the file */
    CHILD_CHECK(trail_sink_add_fd(fds[1], TRAIL_LEVEL_TRACE) >= 0);
    CHILD_CHECK(trail_sink_add_file(path, TRAIL_LEVEL_TRACE) >= 0);
    CHILD_CHECK(trail_crash_handler_install() == 0);
    if (async) {
      CHILD_CHECK(trail_async_start(NULL) == 0);
      fill_pipe(fds[1]);
    }
    for (int i = 0; i < STALLED_LINES; i++)
      trail_info(NULL, "before the crash", TRAIL_INT("i", i));
    if (!async)
      fill_pipe(fds[1]);
    crash_by(SIGSEGV);
    _exit(7);
  }
  close(fds[1]);
  crash_expect(pid, SIGSEGV);
  close(fds[0]);
  int seen[STALLED_LINES] = {0};
  crash_log l = crash_read("SIGSEGV", count_stalled, seen);
  crash_expect_fatal_last(l);
  for (int i = 0; i < STALLED_LINES; i++)
    if (seen[i] != 1)
      fail_msg("line %d is in the file %d times", i, seen[i]);
}

static void test_stalled_pipe_sync(void **state) {
  (void)state;
  run_stalled_pipe(0);
}

static void test_stalled_pipe_async(void **state) {
  (void)state;
  run_stalled_pipe(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_segv_async_drains_queue, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_abort_async, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_bus_sync, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_ill_async, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_segv_writes_buffered_sync,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_segv_writes_buffered_async,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_fpe_sync, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_segv_on_writer_thread, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_stack_overflow_on_installer,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_stack_overflow_on_worker,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_thread_stacks_freed, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_previous_handler_sees_fault,
                                      crash_setup, crash_teardown),
      cmocka_unit_test_setup_teardown(test_two_threads_fault, crash_setup,
                                      crash_teardown),
      cmocka_unit_test(test_full_nonblocking_pipe),
      cmocka_unit_test_setup_teardown(test_stalled_pipe_sync, crash_setup,
                                      crash_teardown),
      cmocka_unit_test_setup_teardown(test_stalled_pipe_async, crash_setup,
                                      crash_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
