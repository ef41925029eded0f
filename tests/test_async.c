/*
 * The async writer (lib/async.c): nothing lost with the block policy, drops
 * counted and reported with the drop policy, flush, stop, shutdown, fork,
 * and lines written with nobody flushing. Synchronised with condition
 * variables, or by watching the output under a watchdog; never with sleeps.
 */
#include "support.h"

#include "gate.h"

#include "watchdog.h"

#include "ring.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/trail-async-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/app.log", dir);
  trail_init("async-test");
  trail_counters_reset();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  unlink(path);
  rmdir(dir);
  return 0;
}

/* Reads the file and checks every line; returns the number of lines. */
static size_t check_file(const char *p, size_t *per_thread, size_t nthreads) {
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0, n = 0;
  ssize_t len;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    assert_key_order(j);
    json_t *t = json_object_get(j, "thread");
    if (per_thread && t) {
      json_int_t k = json_integer_value(t);
      assert_true(k >= 0 && (size_t)k < nthreads);
      per_thread[k]++;
    }
    json_decref(j);
    n++;
  }
  free(line);
  fclose(f);
  return n;
}

typedef struct worker {
  int id;
  int lines;
} worker;

static void *log_lines(void *arg) {
  worker *w = arg;
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_logger *lg = trail_logger_get("orders");
  for (int i = 0; i < w->lines; i++)
    trail_info(lg, "request completed", TRAIL_INT("thread", w->id),
               TRAIL_INT("seq", i), TRAIL_DOUBLE("duration_ms", 12.5 + i));
  trail_ctx_leave(prev);
  return NULL;
}

/* Four threads, the block policy, a small queue: every line arrives. */
static void test_block_policy_loses_nothing(void **state) {
  (void)state;
  assert_int_equal(trail_output_set(path, NULL), 0);
  trail_async_options o = {.queue_size = 128 * 1024,
                           .overflow = TRAIL_OVERFLOW_BLOCK};
  assert_int_equal(trail_async_start(&o), 0);
  assert_true(trail_async_running());
  assert_int_equal(trail_async_start(&o), -EALREADY);
  pthread_t t[4];
  worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){.id = i, .lines = 25000};
    pthread_create(&t[i], NULL, log_lines, &w[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(trail_flush(), 0);
  size_t per[4] = {0};
  assert_int_equal(check_file(path, per, 4), 100000);
  for (int i = 0; i < 4; i++)
    assert_int_equal(per[i], 25000);
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.dropped, 0);
  assert_int_equal(c.events[TRAIL_LEVEL_INFO], 100000);
  assert_true(c.queue_high_water > 0 && c.queue_high_water <= 128 * 1024);
  assert_int_equal(trail_async_stop(), 0);
  assert_false(trail_async_running());
}

/*
 * The drop policy never blocks: with the writer stalled, a full queue drops
 * events, counts them, and the writer then says so in a line of its own
 * from logger "trail"; written + dropped = logged.
 */
static void test_drop_policy_counts_and_reports(void **state) {
  (void)state;
  cap_clear();
  gate_reset();
  trail_sinks_clear();
  assert_true(trail_sink_add_callback(gated_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  trail_async_options o = {.queue_size = 80 * 1024,
                           .overflow = TRAIL_OVERFLOW_DROP};
  assert_int_equal(trail_async_start(&o), 0);
  trail_info(NULL, "first");
  gate_wait_entered(); /* the writer is now stuck in the sink */
  trail_counters c;
  int logged = 1;
  do {
    trail_info(NULL, "filler", TRAIL_INT("i", logged));
    logged++;
    trail_counters_get(&c);
  } while (c.dropped < 100);
  gate_open();
  assert_int_equal(trail_flush(), 0);
  assert_int_equal(trail_async_stop(), 0);
  trail_counters_get(&c);

  size_t fillers = 0, reported = 0, reports = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    if (strcmp(jstr(j, "logger"), "trail") == 0) {
      assert_str_field(j, "level", "warn");
      reported += (size_t)json_integer_value(json_object_get(j, "dropped"));
      reports++;
    } else if (strcmp(jstr(j, "message"), "filler") == 0) {
      fillers++;
    }
    json_decref(j);
  }
  assert_true(reports >= 1);
  assert_int_equal(reported, c.dropped);
  assert_int_equal(fillers + 1 + c.dropped, (size_t)logged);
}

typedef struct blocked_producer {
  int lines;
} blocked_producer;

static void *produce(void *arg) {
  blocked_producer *p = arg;
  for (int i = 0; i < p->lines; i++)
    trail_info(NULL, "blocked", TRAIL_INT("i", i));
  return NULL;
}

/* The block policy waits for room: far more lines than fit, none lost. */
static void test_block_policy_waits(void **state) {
  (void)state;
  cap_clear();
  gate_reset();
  trail_sinks_clear();
  assert_true(trail_sink_add_callback(gated_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  trail_async_options o = {.queue_size = 80 * 1024,
                           .overflow = TRAIL_OVERFLOW_BLOCK};
  assert_int_equal(trail_async_start(&o), 0);
  blocked_producer p = {.lines = 5000}; /* ~1.3 MB of lines, 80 KiB queue */
  pthread_t t;
  pthread_create(&t, NULL, produce, &p);
  gate_wait_entered();
  gate_open();
  pthread_join(t, NULL);
  assert_int_equal(trail_flush(), 0);
  assert_int_equal(cap_count(), 5000);
  for (size_t i = 0; i < 5000; i++) {
    json_t *j = cap_json(i);
    assert_int_equal(json_integer_value(json_object_get(j, "i")), (int)i);
    json_decref(j);
  }
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.dropped, 0);
  assert_int_equal(trail_async_stop(), 0);
}

/* Stopping and shutting down drain the queue; logging goes on in sync. */
static void test_stop_and_shutdown_drain(void **state) {
  (void)state;
  assert_int_equal(trail_output_set(path, NULL), 0);
  assert_int_equal(trail_async_start(NULL), 0);
  for (int i = 0; i < 3000; i++)
    trail_info(NULL, "before stop", TRAIL_INT("i", i));
  assert_int_equal(trail_async_stop(), 0);
  assert_int_equal(check_file(path, NULL, 0), 3000);
  trail_info(NULL, "sync again");
  assert_int_equal(check_file(path, NULL, 0), 3001);
  assert_int_equal(trail_async_start(NULL), 0);
  for (int i = 0; i < 3000; i++)
    trail_info(NULL, "before shutdown", TRAIL_INT("i", i));
  trail_shutdown();
  assert_false(trail_async_running());
  assert_int_equal(check_file(path, NULL, 0), 6001);
}

/*
 * fork() while the writer runs: the child logs at once (synchronously),
 * the parent's queued lines are written once, by the parent.
 */
static void test_fork_child_logs(void **state) {
  (void)state;
  assert_int_equal(trail_output_set(path, NULL), 0);
  assert_int_equal(trail_async_start(NULL), 0);
  for (int i = 0; i < 1000; i++)
    trail_info(NULL, "parent", TRAIL_INT("i", i));
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    trail_info(NULL, "child");
    if (trail_async_running())
      _exit(2);
    trail_flush();
    _exit(0);
  }
  for (int i = 0; i < 1000; i++)
    trail_info(NULL, "parent", TRAIL_INT("i", 1000 + i));
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(trail_async_stop(), 0);
  assert_int_equal(check_file(path, NULL, 0), 2001);
}

/* Options are checked; TRAIL_ASYNC=1 starts the writer from trail_init. */
static void test_options_and_env(void **state) {
  (void)state;
  trail_async_options bad = {.queue_size = 1024};
  assert_int_equal(trail_async_start(&bad), TRAIL_ERANGE);
  trail_async_options bad2 = {.overflow = (trail_overflow)7};
  assert_int_equal(trail_async_start(&bad2), -EINVAL);
  trail_async_options bad3 = {.stop_wait_ms = TRAIL_STOP_WAIT_FOREVER - 1};
  assert_int_equal(trail_async_start(&bad3), -EINVAL);
  trail_async_options forever = {.stop_wait_ms = TRAIL_STOP_WAIT_FOREVER};
  assert_int_equal(trail_async_start(&forever), 0);
  assert_int_equal(trail_async_stop(), 0);
  assert_false(trail_async_running());
  setenv("TRAIL_ASYNC", "1", 1);
  setenv("TRAIL_ASYNC_OVERFLOW", "drop", 1);
  trail_init("env-async");
  unsetenv("TRAIL_ASYNC");
  unsetenv("TRAIL_ASYNC_OVERFLOW");
  assert_true(trail_async_running());
  cap_start(TRAIL_LEVEL_TRACE);
  trail_info(NULL, "via env");
  trail_flush();
  assert_int_equal(cap_count(), 1);
  json_t *j = cap_json(0);
  assert_str_field(j, "service", "env-async");
  json_decref(j);
}

/*
 * Logs one line with a string of n bytes after the `before` lines already
 * captured or queued; it must arrive whole, after them.
 */
static void expect_big_line_after(size_t before, size_t n) {
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'x', n);
  big[n] = '\0';
  trail_info(NULL, "big", TRAIL_STR("v", big));
  free(big);
  assert_int_equal(trail_flush(), 0);
  assert_int_equal(cap_count(), before + 1);
  for (size_t i = 0; i < before; i++) {
    json_t *b = cap_json(i);
    assert_int_equal(json_integer_value(json_object_get(b, "seq")), i);
    json_decref(b);
  }
  json_t *j = cap_json(before);
  assert_int_equal(json_string_length(json_object_get(j, "v")), n);
  json_decref(j);
}

static void expect_big_line(size_t n) { expect_big_line_after(0, n); }

/*
 * A line larger than the queue can hold is written by the caller, after
 * the lines it queued before: 300 lines queued, the big one, 10 more, and
 * the capture has them in that order.
 */
static void test_line_larger_than_queue(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  trail_async_options o = {.queue_size = 80 * 1024};
  assert_int_equal(trail_async_start(&o), 0);
  assert_int_equal(trail_max_line_set(1024 * 1024), 0);
  expect_big_line(500 * 1024);
  cap_clear();
  for (int i = 0; i < 300; i++)
    trail_info(NULL, "before", TRAIL_INT("seq", i));
  expect_big_line_after(300, 100 * 1024);
  assert_int_equal(trail_async_stop(), 0);
}

/*
 * With a maximum line above 524272 bytes, 2 MiB cannot hold the 4 lines a
 * queue must: an explicit 2 MiB is refused, and the default queue is the
 * minimum instead, so the writer starts and a line of the maximum's size
 * goes through it whole.
 */
static void test_default_queue_fits_max_line(void **state) {
  (void)state;
  size_t was = trail_max_line();
  cap_start(TRAIL_LEVEL_TRACE);
  assert_int_equal(trail_max_line_set(1024 * 1024), 0);
  trail_async_options two = {.queue_size = (size_t)2 * 1024 * 1024};
  assert_int_equal(trail_async_start(&two), TRAIL_ERANGE);
  assert_int_equal(trail_async_start(NULL), 0);
  expect_big_line(1000 * 1000);
  assert_int_equal(trail_async_stop(), 0);
  assert_int_equal(trail_max_line_set(was), 0);
}

static int callback_flush_rc = 1, callback_stop_rc = 1;
static void flushing_sink(void *user, trail_level level, const char *line,
                          size_t len) {
  callback_flush_rc = trail_flush();
  callback_stop_rc = trail_async_stop();
  cap_sink(user, level, line, len);
}

/* A callback sink that flushes or stops gets an error, not a deadlock. */
static void test_callback_cannot_wait_for_itself(void **state) {
  (void)state;
  cap_clear();
  trail_sinks_clear();
  assert_true(trail_sink_add_callback(flushing_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  assert_int_equal(trail_async_start(NULL), 0);
  trail_info(NULL, "m");
  assert_int_equal(trail_flush(), 0);
  assert_int_equal(cap_count(), 1);
  assert_int_equal(callback_flush_rc, -EDEADLK);
  assert_int_equal(callback_stop_rc, -EDEADLK);
  assert_true(trail_async_running());
  assert_int_equal(trail_async_stop(), 0);
}

/*
 * A full pipe nobody reads: the writer is stuck in write(2), the ring fills,
 * and with the drop policy no logging call waits; once the pipe is drained
 * every line that was queued arrives, and queued + dropped = logged.
 */
typedef struct pipe_reader {
  int fd;
  char *data;
  size_t len, cap;
} pipe_reader;

static void *read_pipe(void *arg) {
  pipe_reader *r = arg;
  ssize_t n;
  for (;;) {
    if (r->cap - r->len < 65536) {
      r->cap = r->cap ? 2 * r->cap : 1 << 20;
      r->data = realloc(r->data, r->cap);
    }
    n = read(r->fd, r->data + r->len, r->cap - r->len);
    if (n <= 0)
      break;
    r->len += (size_t)n;
  }
  return NULL;
}

static void test_full_pipe_drop_policy_holds(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  trail_sinks_clear();
  assert_true(trail_sink_add_fd(fds[1], TRAIL_LEVEL_TRACE) >= 0);
  trail_async_options o = {.queue_size = 80 * 1024,
                           .overflow = TRAIL_OVERFLOW_DROP};
  assert_int_equal(trail_async_start(&o), 0);
  const int n = 20000; /* ~6 MB of lines: far more than pipe and ring */
  for (int i = 0; i < n; i++)
    trail_info(NULL, "into a full pipe", TRAIL_INT("i", i));
  trail_counters c;
  trail_counters_get(&c);
  assert_true(c.dropped > 0);
  pipe_reader r = {.fd = fds[0]};
  pthread_t t;
  pthread_create(&t, NULL, read_pipe, &r);
  assert_int_equal(trail_async_stop(), 0);
  trail_sinks_clear();
  close(fds[1]);
  pthread_join(t, NULL);
  close(fds[0]);
  trail_counters_get(&c);
  /* every line was written or dropped, and every drop was reported */
  size_t written = 0, reported = 0;
  for (char *p = r.data, *end = r.data + r.len; p < end;) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    assert_non_null(nl);
    json_t *j = parse_line(p, (size_t)(nl - p + 1));
    if (strcmp(jstr(j, "logger"), "trail") == 0)
      reported += (size_t)json_integer_value(json_object_get(j, "dropped"));
    else
      written++;
    json_decref(j);
    p = nl + 1;
  }
  free(r.data);
  assert_int_equal(written + c.dropped, (size_t)n);
  assert_int_equal(reported, c.dropped);
}

/*
 * Stops and restarts of the writer while four threads log through a small
 * queue: each line is written exactly once, whether it was queued before a
 * stop (the writer drains it), reserved while the queue closed (its record
 * is committed before the writer leaves), or logged during a stop (its
 * thread writes it, after the lines it queued before), and each thread's
 * lines keep their order.
 */
#define STORM_THREADS 4
#define STORM_LINES 20000
static pthread_barrier_t storm_barrier;

static void *storm_logger(void *arg) {
  int id = *(int *)arg;
  trail_logger *lg = trail_logger_get("storm");
  for (int i = 0; i < STORM_LINES; i++) {
    if (i == 1000)
      pthread_barrier_wait(&storm_barrier);
    trail_info(lg, "storm", TRAIL_INT("thread", id), TRAIL_INT("seq", i),
               TRAIL_STR("pad", "0123456789abcdef0123456789abcdef"));
  }
  return NULL;
}

static void test_stop_while_logging(void **state) {
  (void)state;
  assert_int_equal(trail_output_set(path, NULL), 0);
  trail_async_options o = {.queue_size = 80 * 1024,
                           .overflow = TRAIL_OVERFLOW_BLOCK};
  assert_int_equal(trail_async_start(&o), 0);
  pthread_barrier_init(&storm_barrier, NULL, STORM_THREADS + 1);
  pthread_t t[STORM_THREADS];
  int ids[STORM_THREADS];
  for (int i = 0; i < STORM_THREADS; i++) {
    ids[i] = i;
    pthread_create(&t[i], NULL, storm_logger, &ids[i]);
  }
  pthread_barrier_wait(&storm_barrier);
  for (int k = 0; k < 20; k++) {
    assert_int_equal(trail_async_stop(), 0);
    assert_int_equal(trail_async_start(&o), 0);
  }
  for (int i = 0; i < STORM_THREADS; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&storm_barrier);
  assert_int_equal(trail_async_stop(), 0);

  /* Every (thread, seq) exactly once, each thread's in the order logged:
   * a thread that meets a stopping writer writes its line only after its
   * lines still queued. */
  unsigned char *seen = calloc(STORM_THREADS * STORM_LINES, 1);
  assert_non_null(seen);
  json_int_t next[STORM_THREADS] = {0};
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap_ = 0, n = 0;
  ssize_t len;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_t *j = parse_line(line, (size_t)len);
    assert_key_order(j);
    json_int_t th = json_integer_value(json_object_get(j, "thread"));
    json_int_t seq = json_integer_value(json_object_get(j, "seq"));
    assert_true(th >= 0 && th < STORM_THREADS);
    assert_true(seq >= 0 && seq < STORM_LINES);
    assert_int_equal(seen[th * STORM_LINES + seq], 0);
    seen[th * STORM_LINES + seq] = 1;
    assert_int_equal(seq, next[th]);
    next[th]++;
    json_decref(j);
    n++;
  }
  free(line);
  fclose(f);
  free(seen);
  assert_int_equal(n, STORM_THREADS * STORM_LINES);
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.dropped, 0);
}

/*
 * The kernel refuses membarrier(2) only after the writer started (a
 * seccomp filter installed by a service sandboxing itself): the queue is
 * then biased to its first thread for good, and the others write their
 * lines themselves. Nothing hangs and no line is lost, in the child.
 */
#define REFUSED_LINES 500

static int refuse_membarrier(void) {
#ifdef SYS_membarrier
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                      SECCOMP_FILTER_FLAG_TSYNC, &prog);
#else
  return -1;
#endif
}

static void barrier_refused_scenario(void) {
  CHILD_CHECK(trail_output_set(path, NULL) == 0);
  CHILD_CHECK(trail_async_start(NULL) == 0);
  worker first = {.id = 0, .lines = REFUSED_LINES};
  log_lines(&first); /* this thread owns the queue from now on */
  CHILD_CHECK(refuse_membarrier() == 0);
  worker w[2] = {{.id = 1, .lines = REFUSED_LINES},
                 {.id = 2, .lines = REFUSED_LINES}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    CHILD_CHECK(pthread_create(&t[i], NULL, log_lines, &w[i]) == 0);
  worker again = {.id = 0, .lines = REFUSED_LINES};
  log_lines(&again);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  CHILD_CHECK(trail_async_stop() == 0);
  CHILD_CHECK(trail_async_start(NULL) == 0); /* unbiased from the start */
  log_lines(&first);
  CHILD_CHECK(trail_async_stop() == 0);
}

static void test_barrier_refused_after_start(void **state) {
  (void)state;
  run_watched("barrier refused", barrier_refused_scenario);
  size_t per[3] = {0, 0, 0};
  assert_int_equal(check_file(path, per, 3), 5 * REFUSED_LINES);
  assert_int_equal(per[0], 3 * REFUSED_LINES);
  assert_int_equal(per[1], REFUSED_LINES);
  assert_int_equal(per[2], REFUSED_LINES);
}

/* The lines in p so far (0 when it is not there yet). */
static size_t lines_in(const char *p) {
  FILE *f = fopen(p, "r");
  size_t n = 0;
  int c;
  if (f == NULL)
    return 0;
  while ((c = getc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

/* Until p holds n lines: the writer wrote them on its own, unflushed. */
static void wait_lines(const char *p, size_t n) {
  while (lines_in(p) < n)
    sched_yield();
}

/* Until the writer's naps ran out and it sleeps, waiting to be woken. */
static void wait_writer_asleep(void) {
  const trail__queue *a = trail__async_active;
  while (__atomic_load_n(&a->writer_waiting, __ATOMIC_SEQ_CST) !=
         WRITER_SLEEPING)
    sched_yield();
}

static void unprompted_scenario(void) {
  CHILD_CHECK(trail_output_set(path, NULL) == 0);
  CHILD_CHECK(trail_async_start(NULL) == 0);
  trail_info(NULL, "while napping", TRAIL_INT("seq", 0));
  wait_lines(path, 1); /* the nap ends, the writer finds it */
  wait_writer_asleep();
  trail_info(NULL, "after a quiet spell", TRAIL_INT("seq", 1));
  wait_lines(path, 2); /* the line woke it */
  CHILD_CHECK(lines_in(path) == 2);
  CHILD_CHECK(trail_async_stop() == 0);
}

/*
 * Nobody flushes: a line reaches the file by the writer's own nap, and a
 * line logged while the writer sleeps wakes it. A lost wake-up or a nap
 * that never ends hangs the scenario, and the watchdog says so.
 */
static void test_writer_writes_unprompted(void **state) {
  (void)state;
  run_watched("unprompted", unprompted_scenario);
  assert_int_equal(check_file(path, NULL, 0), 2);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[512];
  const char *want[] = {"while napping", "after a quiet spell"};
  for (int i = 0; i < 2; i++) {
    assert_non_null(fgets(line, sizeof line, f));
    json_t *j = parse_line(line, strlen(line));
    assert_str_field(j, "message", want[i]);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), i);
    json_decref(j);
  }
  fclose(f);
}

/* The threads of this process whose name is name. */
static int threads_named(const char *name) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char p[300], comm[32] = "";
    if (e->d_name[0] == '.')
      continue;
    snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(p, "r");
    if (f == NULL)
      continue; /* the thread ended meanwhile */
    if (fgets(comm, sizeof comm, f) != NULL)
      comm[strcspn(comm, "\n")] = '\0';
    fclose(f);
    n += strcmp(comm, name) == 0;
  }
  closedir(d);
  return n;
}

/*
 * No thread named name, once the kernel has reaped the joined ones:
 * pthread_join() returns when a thread's id is cleared, a moment before
 * the kernel removes its task, so /proc may list a joined thread briefly.
 * Polls for that, 10 s at most; returns how many are still listed.
 */
static int threads_named_gone(const char *name) {
  int n = threads_named(name);
  for (int i = 0; n != 0 && i < 10000; i++) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    n = threads_named(name);
  }
  return n;
}

/* The writer is one thread named trail-writer, there only while it runs. */
static void test_writer_thread_named(void **state) {
  (void)state;
  assert_int_equal(threads_named_gone("trail-writer"), 0);
  assert_int_equal(trail_async_start(NULL), 0);
  assert_int_equal(threads_named("trail-writer"), 1);
  assert_int_equal(trail_async_stop(), 0);
  assert_int_equal(threads_named_gone("trail-writer"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_block_policy_loses_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_drop_policy_counts_and_reports,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_block_policy_waits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_and_shutdown_drain, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fork_child_logs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_options_and_env, setup, teardown),
      cmocka_unit_test_setup_teardown(test_default_queue_fits_max_line, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_line_larger_than_queue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_callback_cannot_wait_for_itself,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_while_logging, setup, teardown),
      cmocka_unit_test_setup_teardown(test_writer_thread_named, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_writer_writes_unprompted, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_barrier_refused_after_start, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_full_pipe_drop_policy_holds, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
