/*
 * The ends of threads: a line logged from a thread-exit destructor after
 * trail's own, a thread cancelled inside a logging call, the counters read
 * while another thread resets them, a drop racing trail_async_stop(). The
 * scenarios that can hang run under a watchdog (watchdog.h).
 */
#define _GNU_SOURCE
#include "files.h"
#include "gate.h"
#include "pipes.h"
#include "support.h"
#include "watchdog.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>

/* ---- F2: a line from a destructor that runs after trail's --------------- */

#define DTOR_LINES 50
static pthread_key_t user_key;

static void user_dtor(void *p) {
  (void)p;
  for (int i = 0; i < DTOR_LINES; i++)
    trail_trace(NULL, "from a destructor", TRAIL_INT("i", i),
                TRAIL_STR("pad", "................................"));
}

static void *exiting_thread(void *arg) {
  (void)arg;
  trail_trace(NULL, "before the exit");
  pthread_setspecific(user_key, (void *)1);
  return NULL;
}

static void test_log_from_thread_destructor(void **state) {
  (void)state;
  trail_init("teardown");
  cap_start(TRAIL_LEVEL_TRACE);
  trail_levels_set("trace", NULL);
  trail_trace(NULL, "trail's keys first"); /* so its destructors run first */
  /* Created after trail's keys: run after trail's per-thread destructors. */
  assert_int_equal(pthread_key_create(&user_key, user_dtor), 0);
  trail_counters_reset();
  cap_clear();
  for (int i = 0; i < 4; i++) {
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, exiting_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
  }
  size_t expect = 4 * (DTOR_LINES + 1);
  assert_int_equal(cap_count(), expect);
  for (size_t i = 0; i < expect; i++)
    json_decref(cap_json(i));
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.events[TRAIL_LEVEL_TRACE], expect);
  pthread_key_delete(user_key);
  cap_stop();
}

/* ---- F7: cancelled inside a logging call -------------------------------- */

static long logged;

static void *log_to_pipe(void *arg) {
  (void)arg;
  for (;;) {
    trail_info(NULL, "to the pipe", TRAIL_INT("n", logged));
    logged++;
    pthread_testcancel();
  }
  return NULL;
}

/* Sync mode: cancelled while its write to a full pipe holds the sink. */
static void cancel_in_write(void) {
  trail_init("teardown");
  trail_sinks_clear();
  pipe_sink_add();
  pthread_t t, r;
  CHILD_CHECK(pthread_create(&t, NULL, log_to_pipe, NULL) == 0);
  wait_pipe_full();
  CHILD_CHECK(pthread_cancel(t) == 0);
  size_t len;
  CHILD_CHECK(pthread_create(&r, NULL, read_to_end, &len) == 0);
  void *res;
  CHILD_CHECK(pthread_join(t, &res) == 0 && res == PTHREAD_CANCELED);
  trail_info(NULL, "after the cancel"); /* hangs if the sink stayed locked */
  trail_sinks_clear();
  close(pipe_fds[1]);
  char *text;
  CHILD_CHECK(pthread_join(r, (void **)&text) == 0 && text != NULL);
  CHILD_CHECK(count_lines(text, "after the cancel", NULL) == 1);
  CHILD_CHECK(count_lines(text, "to the pipe", NULL) == logged);
  free(text);
}

static void test_cancel_inside_write(void **state) {
  (void)state;
  run_watched("cancelled inside a write", cancel_in_write);
}

/* Async, block policy: cancelled while it waits for room in the queue. */
#define BLOCKED_LINES 2000

static void *fill_queue(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKED_LINES; i++)
    trail_info(NULL, "queued", TRAIL_INT("i", i));
  pthread_testcancel();
  return NULL;
}

static void cancel_in_wait(void) {
  trail_init("teardown");
  CHILD_CHECK(trail_max_line_set(2048) == 0);
  trail_sinks_clear();
  gate_reset();
  CHILD_CHECK(trail_sink_add_callback(gated_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  trail_async_options o = {.queue_size = 16384,
                           .overflow = TRAIL_OVERFLOW_BLOCK};
  CHILD_CHECK(trail_async_start(&o) == 0);
  pthread_t t;
  CHILD_CHECK(pthread_create(&t, NULL, fill_queue, NULL) == 0);
  gate_wait_entered();
  /* Its first cancellation point is the wait for room (the queue fills
   * while the writer is held): there, or at its end, it must act. */
  CHILD_CHECK(pthread_cancel(t) == 0);
  gate_open();
  CHILD_CHECK(pthread_join(t, NULL) == 0);
  CHILD_CHECK(trail_flush() == 0);
  CHILD_CHECK(trail_async_stop() == 0);
  CHILD_CHECK(cap_count() == BLOCKED_LINES);
}

static void test_cancel_inside_queue_wait(void **state) {
  (void)state;
  run_watched("cancelled waiting for room", cancel_in_wait);
}

/* ---- F13: the counters read while another thread resets them ------------ */

#define READS 2000000
static volatile int done;

static void *keep_logging(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
    trail_info(NULL, "counted");
  return NULL;
}

static void *keep_resetting(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
    trail_counters_reset();
  return NULL;
}

static void test_counters_during_reset(void **state) {
  (void)state;
  trail_init("teardown");
  trail_sinks_clear();
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  assert_true(null_fd >= 0);
  assert_true(trail_sink_add_fd(null_fd, TRAIL_LEVEL_TRACE) >= 0);
  pthread_t l, r;
  assert_int_equal(pthread_create(&l, NULL, keep_logging, NULL), 0);
  assert_int_equal(pthread_create(&r, NULL, keep_resetting, NULL), 0);
  uint64_t worst = 0;
  for (int i = 0; i < READS; i++) {
    trail_counters c;
    trail_counters_get(&c);
    if (c.events[TRAIL_LEVEL_INFO] > worst)
      worst = c.events[TRAIL_LEVEL_INFO];
    if (c.bytes / 64 > worst)
      worst = c.bytes / 64;
  }
  __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  pthread_join(l, NULL);
  pthread_join(r, NULL);
  /* Far below what a wrapped (negative) difference reads as. */
  assert_true(worst < (UINT64_C(1) << 48));
  trail_shutdown();
  close(null_fd);
}

/* ---- F12: a drop racing trail_async_stop() ------------------------------ */

#define STOP_ROUNDS 100

static _Thread_local int flooding; /* a flood thread, not the writer */

static void *flood(void *arg) {
  (void)arg;
  flooding = 1;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
    trail_info(NULL, "flood", TRAIL_STR("pad", "........................"));
  return NULL;
}

/* Sums the "dropped" of every report line, and holds the writer (not the
 * flood threads writing their own lines) while the gate is shut. */
static uint64_t reported;

static void drop_sink(void *user, trail_level level, const char *line,
                      size_t len) {
  (void)user;
  (void)level;
  pthread_mutex_lock(&gate.m);
  while (!flooding && !gate.open) {
    gate.entered = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_cond_wait(&gate.cv, &gate.m);
  }
  json_t *j = json_loadb(line, len, 0, NULL);
  json_t *d = json_object_get(j, "dropped");
  if (json_is_integer(d))
    reported += (uint64_t)json_integer_value(d);
  json_decref(j);
  pthread_mutex_unlock(&gate.m);
}

static uint64_t dropped_now(void) {
  trail_counters c;
  trail_counters_get(&c);
  return c.dropped;
}

/* Each round: the writer held until the flood has dropped, then a stop
 * while the flood goes on. Every drop counted is reported in a line. */
static void test_drop_racing_stop(void **state) {
  (void)state;
  trail_init("teardown");
  assert_int_equal(trail_max_line_set(2048), 0);
  trail_sinks_clear();
  assert_true(trail_sink_add_callback(drop_sink, NULL, TRAIL_LEVEL_TRACE) >= 0);
  trail_counters_reset();
  __atomic_store_n(&done, 0, __ATOMIC_RELEASE);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, flood, NULL), 0);
  trail_async_options o = {.queue_size = 16384,
                           .overflow = TRAIL_OVERFLOW_DROP};
  for (int r = 0; r < STOP_ROUNDS; r++) {
    gate_reset();
    uint64_t before = dropped_now();
    assert_int_equal(trail_async_start(&o), 0);
    gate_wait_entered();
    while (dropped_now() == before)
      sched_yield();
    gate_open();
    assert_int_equal(trail_async_stop(), 0);
  }
  __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  assert_true(dropped_now() >= STOP_ROUNDS);
  pthread_mutex_lock(&gate.m);
  assert_int_equal(reported, dropped_now());
  pthread_mutex_unlock(&gate.m);
  trail_shutdown();
}

/* ---- F3: a stop, or the exit, with a sink that takes no bytes ---------- */

#define STUCK_LINES 300
#define STOP_WAIT_MS 100
#define GIVEN_UP_MSG "async writer given up at stop: no progress"

static char stop_log[PATH_MAX];

/* A file sink after the sinks added so far, the writer started with the
 * short wait, and STUCK_LINES queued. */
static void queue_beside_file(void) {
  CHILD_CHECK(trail_sink_add_file(stop_log, TRAIL_LEVEL_TRACE) >= 0);
  trail_async_options o = {.stop_wait_ms = STOP_WAIT_MS};
  CHILD_CHECK(trail_async_start(&o) == 0);
  for (int i = 0; i < STUCK_LINES; i++)
    trail_info(NULL, "queued", TRAIL_INT("i", i));
}

/* Runs fn under the watchdog with stop_log in a fresh directory. */
static void run_with_log(const char *what, void (*fn)(void)) {
  tmpdir_make("stop");
  tmp_path(stop_log, sizeof stop_log, "file.log");
  run_watched(what, fn);
  remove_tree(tmpdir);
}

/* ---- each thread's lines keep their order across a stop and at exit ---- */

#define ORDER_THREADS 4
#define ORDER_AFTER 2000   /* lines each thread logs once it saw the stop */
#define ORDER_BEFORE 20000 /* lines logged, at least, before the stop */

static int order_stopped;

/* Logs "ordered" lines numbered from 0 until ORDER_AFTER after the stop
 * (for good when never stopped). */
static void *log_in_order(void *arg) {
  long t = (long)arg, after = -1;
  for (long i = 0; after < ORDER_AFTER; i++) {
    trail_info(NULL, "ordered", TRAIL_INT("t", t), TRAIL_INT("seq", i));
    if (after >= 0)
      after++;
    else if (__atomic_load_n(&order_stopped, __ATOMIC_ACQUIRE))
      after = 0;
  }
  return NULL;
}

static void start_ordered(pthread_t *th) {
  trail_init("teardown");
  trail_sinks_clear();
  CHILD_CHECK(trail_sink_add_file(stop_log, TRAIL_LEVEL_TRACE) >= 0);
  CHILD_CHECK(trail_async_start(NULL) == 0);
  trail_counters_reset();
  __atomic_store_n(&order_stopped, 0, __ATOMIC_RELEASE);
  for (long t = 0; t < ORDER_THREADS; t++)
    CHILD_CHECK(pthread_create(&th[t], NULL, log_in_order, (void *)t) == 0);
  for (;;) { /* until the queue has had lines to drain */
    trail_counters c;
    trail_counters_get(&c);
    if (c.events[TRAIL_LEVEL_INFO] >= ORDER_BEFORE)
      break;
    sched_yield();
  }
}

/*
 * Checks stop_log: every line whole, each thread's numbered from 0 in file
 * order, each once. Past the last newline only a line the exit cut may
 * follow (a thread killed inside its write). Returns how many there are.
 */
static long check_thread_order(int cut_allowed) {
  size_t len;
  char *text = read_file(stop_log, &len);
  CHILD_CHECK(text != NULL);
  long next[ORDER_THREADS] = {0};
  const char *p = text, *end = text + len;
  /* memchr: strchr would scan to the end each time (a sanitizer's strict
   * string checks do), quadratic in the file's 5 MB */
  for (const char *nl; (nl = memchr(p, '\n', (size_t)(end - p))) != NULL;
       p = nl + 1) {
    json_t *j =
        json_loadb(p, (size_t)(nl - p) + 1, JSON_REJECT_DUPLICATES, NULL);
    CHILD_CHECK(j != NULL);
    const char *m = json_string_value(json_object_get(j, "message"));
    if (m != NULL && strcmp(m, "ordered") == 0) {
      json_int_t t = json_integer_value(json_object_get(j, "t"));
      CHILD_CHECK(t >= 0 && t < ORDER_THREADS);
      CHILD_CHECK(json_integer_value(json_object_get(j, "seq")) == next[t]);
      next[t]++;
    }
    json_decref(j);
  }
  CHILD_CHECK(p == end || cut_allowed);
  free(text);
  long total = 0;
  for (int t = 0; t < ORDER_THREADS; t++)
    total += next[t];
  return total;
}

/*
 * A stop while four threads log: a thread that meets the closed queue
 * writes its line itself, and must not write it before its own lines still
 * queued. Each thread's lines are in the file in the order logged.
 */
static void stop_keeps_thread_order(void) {
  pthread_t th[ORDER_THREADS];
  start_ordered(th);
  CHILD_CHECK(trail_async_stop() == 0);
  __atomic_store_n(&order_stopped, 1, __ATOMIC_RELEASE);
  for (int t = 0; t < ORDER_THREADS; t++)
    CHILD_CHECK(pthread_join(th[t], NULL) == 0);
  CHILD_CHECK(check_thread_order(0) >=
              ORDER_BEFORE + ORDER_THREADS * ORDER_AFTER);
  trail_shutdown();
}

static void test_stop_keeps_thread_order(void **state) {
  (void)state;
  run_with_log("a stop while threads log", stop_keeps_thread_order);
}

/* The same at exit(), the threads logging on until the process ends. */
static void exit_keeps_thread_order(void) {
  pid_t pid = fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) {
    pthread_t th[ORDER_THREADS];
    start_ordered(th);
    exit(3);
  }
  int status;
  CHILD_CHECK(waitpid(pid, &status, 0) == pid);
  CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
  CHILD_CHECK(check_thread_order(1) >= ORDER_BEFORE);
}

static void test_exit_keeps_thread_order(void **state) {
  (void)state;
  run_with_log("exit while threads log", exit_keeps_thread_order);
}

static uint64_t write_errors_now(void) {
  trail_counters c;
  trail_counters_get(&c);
  return c.write_errors;
}

/*
 * Checks the lines of text with message msg: each whole, its "i" field
 * running from 0 in order, each once; returns how many. Also returns, in
 * *given_up, the given-up line's "lost" (-1 when there is none), after
 * checking its level, its wait and its fd.
 */
static long check_sequence(const char *text, const char *msg, int fd,
                           long *given_up) {
  long n = 0;
  *given_up = -1;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    CHILD_CHECK(nl != NULL);
    json_t *j =
        json_loadb(p, (size_t)(nl - p) + 1, JSON_REJECT_DUPLICATES, NULL);
    CHILD_CHECK(j != NULL && json_is_object(j));
    const char *m = json_string_value(json_object_get(j, "message"));
    CHILD_CHECK(m != NULL);
    if (strcmp(m, msg) == 0) {
      CHILD_CHECK(json_integer_value(json_object_get(j, "i")) == n);
      n++;
    } else if (strcmp(m, GIVEN_UP_MSG) == 0) {
      CHILD_CHECK(*given_up == -1);
      CHILD_CHECK(
          strcmp(json_string_value(json_object_get(j, "level")), "error") == 0);
      CHILD_CHECK(json_integer_value(json_object_get(j, "waited_ms")) ==
                  STOP_WAIT_MS);
      CHILD_CHECK(json_integer_value(json_object_get(j, "fd")) == fd);
      *given_up = (long)json_integer_value(json_object_get(j, "lost"));
    }
    json_decref(j);
    p = nl + 1;
  }
  return n;
}

/* Logs until a line reaches the given-up sink again (its write error
 * count stops growing): the writer given up has left it. */
static void wait_sink_back(void) {
  for (;;) {
    uint64_t before = write_errors_now();
    trail_info(NULL, "probe");
    if (write_errors_now() == before)
      return;
    sched_yield();
  }
}

/* The file sink's lines: every queued line once, in order, and the
 * given-up line; returns its "lost". */
static long check_stop_log(int fd) {
  size_t len;
  char *text = read_file(stop_log, &len);
  CHILD_CHECK(text != NULL);
  long lost;
  CHILD_CHECK(check_sequence(text, "queued", fd, &lost) == STUCK_LINES);
  free(text);
  CHILD_CHECK(lost >= 1 && lost <= STUCK_LINES);
  return lost;
}

/*
 * Stops the writer (it must be joined, not given up), closes the pipe and
 * checks what reader r read: lines 0 to want - 1 once, in order, and no
 * given-up line.
 */
static void stop_and_read_all(pthread_t r, long want) {
  CHILD_CHECK(trail_async_stop() == 0);
  trail_sinks_clear();
  close(pipe_fds[1]);
  char *text;
  CHILD_CHECK(pthread_join(r, (void **)&text) == 0 && text != NULL);
  long given_up;
  CHILD_CHECK(check_sequence(text, "queued", -1, &given_up) == want);
  CHILD_CHECK(given_up == -1);
  free(text);
}

/*
 * The writer is stuck in a full blocking pipe that nobody reads, a file
 * sink beside it. The stop gives it up after its wait: the file gets every
 * line and one error line; the pipe is skipped (a line logged now does not
 * hang on it) until a reader drains it, and what it got is whole lines, in
 * order, the line begun when the writer was given up included.
 */
static void stop_with_stalled_pipe(void) {
  trail_init("teardown");
  trail_sinks_clear();
  pipe_sink_add(); /* first: the writer blocks there before the file */
  queue_beside_file();
  wait_pipe_full();
  uint64_t errors = write_errors_now();
  CHILD_CHECK(trail_async_stop() == -ETIMEDOUT);
  trail_info(NULL, "after the stop"); /* hangs if the pipe is not skipped */
  long lost = check_stop_log(pipe_fds[1]);
  /* lost, then the pipe's copies of the error line and of the last one */
  CHILD_CHECK(write_errors_now() - errors == (uint64_t)lost + 2);

  size_t len;
  pthread_t r;
  CHILD_CHECK(pthread_create(&r, NULL, read_to_end, &len) == 0);
  wait_sink_back();
  trail_sinks_clear();
  close(pipe_fds[1]);
  char *text;
  CHILD_CHECK(pthread_join(r, (void **)&text) == 0 && text != NULL);
  long ignored;
  long got = check_sequence(text, "queued", -1, &ignored);
  CHILD_CHECK(got + lost >= STUCK_LINES);
  CHILD_CHECK(count_lines(text, "probe", NULL) == 1);
  CHILD_CHECK(count_lines(text, "after the stop", NULL) == 0);
  free(text);
  trail_shutdown();
}

static void test_stop_with_stalled_pipe(void **state) {
  (void)state;
  run_with_log("a stop with a stalled pipe", stop_with_stalled_pipe);
}

/*
 * A writer that is slow to run is not a stalled one: with a 1 ms wait and
 * two threads keeping both cores busy, a stop right after the start often
 * finds the writer not yet scheduled (the old rule gave it up in most
 * runs). Outside a sink it is waited for: every stop returns 0 and no
 * given-up line is written.
 */
#define SLOW_START_ROUNDS (UNDER_SANITIZER ? 500 : 2000)

static void *spin_until_done(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
    for (volatile int i = 0; i < 100000; i++) {
    }
  }
  return NULL;
}

static void stop_right_after_start(void) {
  trail_init("teardown");
  trail_sinks_clear();
  CHILD_CHECK(trail_sink_add_file(stop_log, TRAIL_LEVEL_TRACE) >= 0);
  __atomic_store_n(&done, 0, __ATOMIC_RELEASE);
  pthread_t spin[2];
  for (int i = 0; i < 2; i++)
    CHILD_CHECK(pthread_create(&spin[i], NULL, spin_until_done, NULL) == 0);
  trail_async_options o = {.stop_wait_ms = 1};
  int timed_out = 0;
  for (int r = 0; r < SLOW_START_ROUNDS; r++) {
    CHILD_CHECK(trail_async_start(&o) == 0);
    timed_out += trail_async_stop() != 0;
  }
  __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++)
    CHILD_CHECK(pthread_join(spin[i], NULL) == 0);
  CHILD_CHECK(timed_out == 0);
  size_t len;
  char *text = read_file(stop_log, &len);
  CHILD_CHECK(text != NULL && len == 0);
  free(text);
  trail_shutdown();
}

static void test_stop_right_after_start(void **state) {
  (void)state;
  run_with_log("a stop right after the start", stop_right_after_start);
}

/*
 * A flush with the writer stuck in a full pipe nobody reads: trail_flush()
 * returns -ETIMEDOUT after the stop's wait instead of waiting for good, and
 * gives nothing up. Once a reader drains the pipe, a flush returns 0, the
 * stop joins the writer, and both sinks have every line once, in order.
 */
static void flush_with_stalled_pipe(void) {
  trail_init("teardown");
  trail_sinks_clear();
  pipe_sink_add();
  queue_beside_file();
  wait_pipe_full();
  uint64_t errors = write_errors_now();
  CHILD_CHECK(trail_flush() == -ETIMEDOUT);
  CHILD_CHECK(trail_async_running());

  size_t len;
  pthread_t r;
  CHILD_CHECK(pthread_create(&r, NULL, read_to_end, &len) == 0);
  CHILD_CHECK(trail_flush() == 0);
  stop_and_read_all(r, STUCK_LINES);
  long given_up;
  char *text = read_file(stop_log, &len);
  CHILD_CHECK(text != NULL);
  CHILD_CHECK(check_sequence(text, "queued", -1, &given_up) == STUCK_LINES);
  CHILD_CHECK(given_up == -1);
  free(text);
  CHILD_CHECK(write_errors_now() == errors);
  trail_shutdown();
}

static void test_flush_with_stalled_pipe(void **state) {
  (void)state;
  run_with_log("a flush with a stalled pipe", flush_with_stalled_pipe);
}

/*
 * The same at exit(), the writer started by TRAIL_ASYNC=1 with
 * TRAIL_ASYNC_STOP_WAIT: the process exits, with its status, and the file
 * has every line.
 */
static void exit_with_stalled_pipe(void) {
  CHILD_CHECK(pipe(pipe_fds) == 0); /* read by nobody: held open here */
  fcntl(pipe_fds[1], F_SETPIPE_SZ, 4096);
  pid_t pid = fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) {
    setenv("TRAIL_ASYNC", "1", 1);
    setenv("TRAIL_ASYNC_STOP_WAIT", "100", 1);
    trail_init("teardown");
    CHILD_CHECK(trail_async_running());
    trail_sinks_clear();
    CHILD_CHECK(trail_sink_add_fd(pipe_fds[1], TRAIL_LEVEL_TRACE) >= 0);
    CHILD_CHECK(trail_sink_add_file(stop_log, TRAIL_LEVEL_TRACE) >= 0);
    for (int i = 0; i < STUCK_LINES; i++)
      trail_info(NULL, "queued", TRAIL_INT("i", i));
    wait_pipe_full();
    exit(3); /* the exit hangs if the stop does not give the writer up */
  }
  int status;
  CHILD_CHECK(waitpid(pid, &status, 0) == pid);
  CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
  (void)check_stop_log(pipe_fds[1]);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

static void test_exit_with_stalled_pipe(void **state) {
  (void)state;
  run_with_log("exit with a stalled pipe", exit_with_stalled_pipe);
}

/*
 * A reader that is slow but reads: a stop whose drain takes longer than
 * its wait must not give the writer up. The reader takes at most a
 * one-page pipe's 4 KiB every SLOW_READ_NS, so SLOW_LINES (600 kB) take at
 * least 1.5 s to pass, three times SLOW_WAIT_MS; a whole batch of the
 * writer's (256 kB) in one write would take 640 ms, the longest write it
 * makes (64 KiB, PIPE_BUF once stopping) 160 ms. Every line arrives, in
 * order.
 */
#define SLOW_LINES 3000
#define SLOW_WAIT_MS 500
#define SLOW_READ_NS 10000000L

static void *read_slowly(void *arg) {
  (void)arg;
  size_t size = 1 << 22, n = 0;
  char *buf = malloc(size);
  CHILD_CHECK(buf != NULL);
  for (;;) {
    if (size - n < 4097) {
      size *= 2;
      buf = realloc(buf, size);
      CHILD_CHECK(buf != NULL);
    }
    ssize_t r = read(pipe_fds[0], buf + n, 4096);
    if (r == 0)
      break;
    CHILD_CHECK(r > 0 || errno == EINTR);
    if (r > 0)
      n += (size_t)r;
    struct timespec pace = {0, SLOW_READ_NS};
    nanosleep(&pace, NULL);
  }
  buf[n] = '\0';
  return buf;
}

#define PAD                                                                    \
  "................................................................"           \
  "......................................"

static void stop_with_slow_reader(void) {
  trail_init("teardown");
  trail_sinks_clear();
  pipe_sink_add();
  trail_async_options o = {.queue_size = 8 << 20, .stop_wait_ms = SLOW_WAIT_MS};
  CHILD_CHECK(trail_async_start(&o) == 0);
  pthread_t r;
  CHILD_CHECK(pthread_create(&r, NULL, read_slowly, NULL) == 0);
  for (int i = 0; i < SLOW_LINES; i++)
    trail_info(NULL, "queued", TRAIL_INT("i", i), TRAIL_STR("pad", PAD));
  stop_and_read_all(r, SLOW_LINES);
  trail_shutdown();
}

static void test_stop_with_slow_reader(void **state) {
  (void)state;
  run_watched("a stop with a slow reader", stop_with_slow_reader);
}

/*
 * A callback sink that never returns (held by the gate) while the stop
 * waits: given up too; lines logged meanwhile skip it; once it returns,
 * it gets lines again.
 */
static void stop_with_stuck_callback(void) {
  trail_init("teardown");
  trail_sinks_clear();
  gate_reset();
  cap_clear();
  CHILD_CHECK(trail_sink_add_callback(gated_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  queue_beside_file();
  gate_wait_entered();
  CHILD_CHECK(trail_async_stop() == -ETIMEDOUT);
  trail_info(NULL, "after the stop"); /* hangs if the callback is called */
  (void)check_stop_log(-1);
  gate_open();
  wait_sink_back();
  trail_sinks_clear();
  /* the line it was held in, then the probe that came through */
  CHILD_CHECK(cap_count() == 2);
  trail_shutdown();
}

static void test_stop_with_stuck_callback(void **state) {
  (void)state;
  run_with_log("a stop with a stuck callback", stop_with_stuck_callback);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_from_thread_destructor),
      cmocka_unit_test(test_cancel_inside_write),
      cmocka_unit_test(test_cancel_inside_queue_wait),
      cmocka_unit_test(test_counters_during_reset),
      cmocka_unit_test(test_drop_racing_stop),
      cmocka_unit_test(test_stop_keeps_thread_order),
      cmocka_unit_test(test_exit_keeps_thread_order),
      cmocka_unit_test(test_stop_with_stalled_pipe),
      cmocka_unit_test(test_stop_right_after_start),
      cmocka_unit_test(test_flush_with_stalled_pipe),
      cmocka_unit_test(test_exit_with_stalled_pipe),
      cmocka_unit_test(test_stop_with_slow_reader),
      cmocka_unit_test(test_stop_with_stuck_callback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
