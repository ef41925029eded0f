/*
 * Logging from many threads and processes at once: whole lines in a shared
 * file, each line with its own thread's request context, configuration
 * changed and files rotated under running loggers, and the current context
 * kept per thread.
 */
#define _GNU_SOURCE
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

/*
 * Calls fn on each line of the file, parsed (parse_line checks the shape);
 * returns the number of lines. The file must end with a whole line.
 */
static size_t each_line(const char *path, void (*fn)(json_t *, void *),
                        void *arg) {
  size_t len;
  char *buf = read_file(path, &len);
  if (len > 0)
    assert_int_equal(buf[len - 1], '\n');
  size_t n = 0;
  for (size_t at = 0; at < len; n++) {
    const char *end = memchr(buf + at, '\n', len - at);
    size_t l = (size_t)(end - (buf + at)) + 1;
    json_t *j = parse_line(buf + at, l);
    fn(j, arg);
    json_decref(j);
    at += l;
  }
  free(buf);
  return n;
}

static json_int_t jint(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  if (v == NULL || !json_is_integer(v))
    fail_msg("no integer %s", key);
  return json_integer_value(v);
}

static int setup(void **state) {
  (void)state;
  trail_shutdown();
  snprintf(tmpdir, sizeof tmpdir, "/tmp/trail-threads-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  remove_tree(tmpdir);
  return 0;
}

/* ---- many threads, one file --------------------------------------------- */

#define FILE_THREADS 8
#define FILE_LINES 20000

typedef struct worker {
  int proc; /* the process, in the fork test */
  int t;
  int nlines;
  pthread_barrier_t *start;
  char user_id[32];
  char request_id[TRAIL_REQUEST_ID_MAX + 1];
  char trace_id[TRAIL_TRACE_ID_LEN + 1];
  char span_id[TRAIL_SPAN_ID_LEN + 1];
  int failed; /* set by the thread: cmocka asserts belong to main */
} worker;

/*
 * A request per thread: its own context with a distinct user id, entered for
 * the whole run, lines "thread" and "seq" 0..nlines-1.
 */
static void *context_worker(void *arg) {
  worker *w = arg;
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  if (trail_ctx_set_user_id(&ctx, w->user_id) != 0)
    w->failed = 1;
  snprintf(w->request_id, sizeof w->request_id, "%s",
           trail_ctx_request_id(&ctx));
  snprintf(w->trace_id, sizeof w->trace_id, "%s", trail_ctx_trace_id(&ctx));
  snprintf(w->span_id, sizeof w->span_id, "%s", trail_ctx_span_id(&ctx));
  if (trail_ctx_current() != NULL)
    w->failed = 1; /* a new thread starts with no context */
  trail_ctx *prev = trail_ctx_enter(&ctx);
  if (prev != NULL)
    w->failed = 1;
  trail_logger *lg = trail_logger_get("worker");
  pthread_barrier_wait(w->start);
  for (int i = 0; i < w->nlines; i++)
    trail_info(lg, "line", TRAIL_INT("proc", w->proc),
               TRAIL_INT("thread", w->t), TRAIL_INT("seq", i));
  trail_ctx_leave(prev);
  if (trail_ctx_current() != NULL)
    w->failed = 1;
  return NULL;
}

typedef struct file_check {
  worker *w;
  int nthreads;
  int nlines;
  unsigned char *seen; /* [thread][seq] */
} file_check;

static void check_file_line(json_t *j, void *arg) {
  file_check *fc = arg;
  json_int_t t = jint(j, "thread"), seq = jint(j, "seq");
  assert_in_range(t, 0, fc->nthreads - 1);
  assert_in_range(seq, 0, fc->nlines - 1);
  const worker *w = &fc->w[t];
  assert_str_field(j, "user_id", w->user_id);
  assert_str_field(j, "request_id", w->request_id);
  assert_str_field(j, "trace_id", w->trace_id);
  assert_str_field(j, "span_id", w->span_id);
  assert_str_field(j, "logger", "worker");
  unsigned char *s = &fc->seen[(size_t)t * (size_t)fc->nlines + (size_t)seq];
  if (*s)
    fail_msg("thread %d seq %d twice", (int)t, (int)seq);
  *s = 1;
}

/*
 * 8 threads x 20,000 lines into one file: exactly 160,000 lines, each whole,
 * each carrying its own thread's ids, each (thread, seq) exactly once.
 */
static void test_threads_one_file(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "threads.log");
  trail_config_error err;
  assert_int_equal(trail_output_set(path, &err), 0);
  trail_counters_reset();
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, FILE_THREADS);
  worker w[FILE_THREADS];
  pthread_t th[FILE_THREADS];
  memset(w, 0, sizeof w);
  for (int t = 0; t < FILE_THREADS; t++) {
    w[t].t = t;
    w[t].nlines = FILE_LINES;
    w[t].start = &start;
    snprintf(w[t].user_id, sizeof w[t].user_id, "user-%d", t);
    assert_int_equal(pthread_create(&th[t], NULL, context_worker, &w[t]), 0);
  }
  for (int t = 0; t < FILE_THREADS; t++)
    assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&start);
  /* The per-thread counters of threads that have exited are all there. */
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.events[TRAIL_LEVEL_INFO],
                   (uint64_t)FILE_THREADS * FILE_LINES);
  assert_int_equal(c.write_errors, 0);
  for (int t = 0; t < FILE_THREADS; t++) {
    assert_int_equal(w[t].failed, 0);
    for (int k = 0; k < t; k++)
      assert_string_not_equal(w[k].request_id, w[t].request_id);
  }
  trail_shutdown();

  file_check fc = {w, FILE_THREADS, FILE_LINES,
                   calloc((size_t)FILE_THREADS * FILE_LINES, 1)};
  assert_non_null(fc.seen);
  size_t n = each_line(path, check_file_line, &fc);
  assert_int_equal(n, (size_t)FILE_THREADS * FILE_LINES);
  for (size_t i = 0; i < (size_t)FILE_THREADS * FILE_LINES; i++)
    assert_int_equal(fc.seen[i], 1);
  free(fc.seen);
}

/* ---- many processes, one file ------------------------------------------- */

#define PROCS 4
#define PROC_THREADS 8
#define PROC_LINES 4000

/* A child's part: its own output_set on the path, 8 threads, exit status. */
static int proc_child(int p, const char *path) {
  if (trail_output_set(path, NULL) != 0)
    return 10;
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, PROC_THREADS);
  worker w[PROC_THREADS];
  pthread_t th[PROC_THREADS];
  memset(w, 0, sizeof w);
  for (int t = 0; t < PROC_THREADS; t++) {
    w[t].proc = p;
    w[t].t = t;
    w[t].nlines = PROC_LINES;
    w[t].start = &start;
    snprintf(w[t].user_id, sizeof w[t].user_id, "user-%d-%d", p, t);
    if (pthread_create(&th[t], NULL, context_worker, &w[t]) != 0)
      return 11;
  }
  int rc = 0;
  for (int t = 0; t < PROC_THREADS; t++) {
    pthread_join(th[t], NULL);
    if (w[t].failed)
      rc = 12;
  }
  pthread_barrier_destroy(&start);
  trail_shutdown();
  return rc;
}

typedef struct proc_check {
  char request_id[PROCS][PROC_THREADS][TRAIL_REQUEST_ID_MAX + 1];
  unsigned char *seen; /* [proc][thread][seq] */
} proc_check;

static void check_proc_line(json_t *j, void *arg) {
  proc_check *pc = arg;
  json_int_t p = jint(j, "proc"), t = jint(j, "thread"), seq = jint(j, "seq");
  assert_in_range(p, 0, PROCS - 1);
  assert_in_range(t, 0, PROC_THREADS - 1);
  assert_in_range(seq, 0, PROC_LINES - 1);
  char uid[32];
  snprintf(uid, sizeof uid, "user-%d-%d", (int)p, (int)t);
  assert_str_field(j, "user_id", uid);
  /* One request id per (process, thread), the same on all its lines. */
  char *rid = pc->request_id[p][t];
  if (rid[0] == '\0')
    snprintf(rid, TRAIL_REQUEST_ID_MAX + 1, "%s", jstr(j, "request_id"));
  else
    assert_str_field(j, "request_id", rid);
  unsigned char *s =
      &pc->seen[((size_t)p * PROC_THREADS + (size_t)t) * PROC_LINES +
                (size_t)seq];
  if (*s)
    fail_msg("proc %d thread %d seq %d twice", (int)p, (int)t, (int)seq);
  *s = 1;
}

/*
 * 4 processes x 8 threads x 4,000 lines, each process opening the file
 * itself (O_APPEND): exactly 128,000 whole lines, each (process, thread,
 * seq) once, each with its own request's ids.
 */
static void test_processes_one_file(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "procs.log");
  fflush(NULL);
  pid_t pids[PROCS];
  for (int p = 0; p < PROCS; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0)
      _exit(proc_child(p, path));
  }
  for (int p = 0; p < PROCS; p++) {
    int status;
    assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
    if (!WIFEXITED(status))
      fail_msg("child %d did not exit (status %#x)", p, status);
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  proc_check *pc = calloc(1, sizeof *pc);
  assert_non_null(pc);
  pc->seen = calloc((size_t)PROCS * PROC_THREADS * PROC_LINES, 1);
  assert_non_null(pc->seen);
  size_t n = each_line(path, check_proc_line, pc);
  assert_int_equal(n, (size_t)PROCS * PROC_THREADS * PROC_LINES);
  for (size_t i = 0; i < (size_t)PROCS * PROC_THREADS * PROC_LINES; i++)
    assert_int_equal(pc->seen[i], 1);
  for (int a = 0; a < PROCS * PROC_THREADS; a++)
    for (int b = 0; b < a; b++)
      assert_string_not_equal(
          pc->request_id[a / PROC_THREADS][a % PROC_THREADS],
          pc->request_id[b / PROC_THREADS][b % PROC_THREADS]);
  free(pc->seen);
  free(pc);
}

/* ---- configuration changed under running loggers ------------------------ */

#define STORM_THREADS 4
#define STORM_ROUNDS 200

static int storm_stop;

typedef struct storm_worker {
  int t;
  pthread_barrier_t *start;
  long logged;
} storm_worker;

/* A second callback sink, at warn; it may be called after its removal. */
static struct {
  pthread_mutex_t lock;
  size_t n;
  int bad; /* a line below warn, or not one whole line */
} side = {PTHREAD_MUTEX_INITIALIZER, 0, 0};

static void side_sink(void *user, trail_level level, const char *line,
                      size_t len) {
  (void)user;
  pthread_mutex_lock(&side.lock);
  side.n++;
  if (level < TRAIL_LEVEL_WARN || len < 2 || line[len - 1] != '\n' ||
      memchr(line, '\n', len) != line + len - 1)
    side.bad = 1;
  pthread_mutex_unlock(&side.lock);
}

static void *storm_worker_main(void *arg) {
  storm_worker *w = arg;
  static const char *const names[] = {"db", "db.pool", "http", NULL};
  trail_logger *lg[4];
  for (int i = 0; i < 4; i++)
    lg[i] = names[i] ? trail_logger_get(names[i]) : NULL;
  pthread_barrier_wait(w->start);
  long i = 0;
  do {
    trail_level lv = (trail_level)(TRAIL_LEVEL_DEBUG + i % 4);
    trail_field f[] = {TRAIL_INT("thread", w->t), TRAIL_INT("seq", i)};
    trail_log(lg[i % 4], lv, "storm", f, 2);
    i++;
  } while (!__atomic_load_n(&storm_stop, __ATOMIC_ACQUIRE));
  w->logged = i;
  return NULL;
}

static void check_storm_file_line(json_t *j, void *arg) {
  (void)arg;
  assert_key_order(j);
  const char *lv = jstr(j, "level");
  if (strcmp(lv, "info") != 0 && strcmp(lv, "warn") != 0 &&
      strcmp(lv, "error") != 0)
    fail_msg("a %s line in a file sink at info", lv);
  assert_in_range(jint(j, "thread"), 0, STORM_THREADS - 1);
}

/*
 * While 4 threads log, the main thread changes levels, caller, maximum line,
 * and adds and removes sinks: nothing crashes, every line that reaches a
 * sink is whole and parses, each sink sees only its levels, and each
 * thread's lines arrive in order.
 */
static void test_config_changes_while_logging(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "storm.log");
  static const char *const specs[] = {"debug", "warn,db=trace",
                                      "info,db.pool=off", "error,http=debug"};
  side.n = 0;
  side.bad = 0;
  storm_stop = 0;
  cap_start(TRAIL_LEVEL_TRACE);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, STORM_THREADS + 1);
  storm_worker w[STORM_THREADS];
  pthread_t th[STORM_THREADS];
  for (int t = 0; t < STORM_THREADS; t++) {
    w[t] = (storm_worker){t, &start, 0};
    assert_int_equal(pthread_create(&th[t], NULL, storm_worker_main, &w[t]), 0);
  }
  pthread_barrier_wait(&start);
  int failures = 0;
  for (int k = 0; k < STORM_ROUNDS; k++) {
    failures += trail_levels_set(specs[k % 4], NULL) != 0;
    int sid = trail_sink_add_callback(side_sink, NULL, TRAIL_LEVEL_WARN);
    int fid = trail_sink_add_file(path, TRAIL_LEVEL_INFO);
    failures += sid < 0 || fid < 0;
    trail_caller_set(k % 2);
    failures += trail_max_line_set(k % 3 ? 2048 : 16384) != 0;
    failures +=
        trail_logger_set_level(trail_logger_get("http"), TRAIL_LEVEL_TRACE);
    failures += trail_sink_remove(sid) != 0;
    failures += trail_sink_remove(fid) != 0;
  }
  __atomic_store_n(&storm_stop, 1, __ATOMIC_RELEASE);
  for (int t = 0; t < STORM_THREADS; t++)
    assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&start);
  assert_int_equal(failures, 0);
  assert_int_equal(side.bad, 0);

  long last[STORM_THREADS];
  long total = 0;
  for (int t = 0; t < STORM_THREADS; t++) {
    last[t] = -1;
    total += w[t].logged;
  }
  size_t n = cap_count();
  assert_true(n <= (size_t)total);
  for (size_t i = 0; i < n; i++) {
    json_t *j = cap_json(i);
    assert_key_order(j);
    json_int_t t = jint(j, "thread"), seq = jint(j, "seq");
    assert_in_range(t, 0, STORM_THREADS - 1);
    assert_true(seq > last[t] && seq < w[t].logged);
    last[t] = (long)seq;
    assert_int_equal(cap.lines[i].level,
                     (trail_level)(TRAIL_LEVEL_DEBUG + seq % 4));
    json_decref(j);
  }

  /* The file sinks came and went; what they wrote is whole and info+. */
  size_t in_file = each_line(path, check_storm_file_line, NULL);
  assert_true(in_file <= (size_t)total);

  /* Once the storm is over, the configuration is the one last set. */
  cap_clear();
  assert_int_equal(trail_levels_set("warn", NULL), 0);
  trail_info(NULL, "no");
  trail_warn(trail_logger_get("db"), "yes");
  assert_int_equal(cap_count(), 1);
}

/* ---- rotation under running loggers ------------------------------------- */

#define ROTATE_THREADS 4
#define ROTATE_LINES 5000
#define ROTATIONS 8

static long rotate_logged;

typedef struct rotate_worker {
  int t;
  pthread_barrier_t *start;
} rotate_worker;

static void *rotate_worker_main(void *arg) {
  rotate_worker *w = arg;
  pthread_barrier_wait(w->start);
  for (int i = 0; i < ROTATE_LINES; i++) {
    trail_info(NULL, "rotating", TRAIL_INT("thread", w->t),
               TRAIL_INT("seq", i));
    __atomic_fetch_add(&rotate_logged, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void check_rotated_line(json_t *j, void *arg) {
  unsigned char *seen = arg;
  json_int_t t = jint(j, "thread"), seq = jint(j, "seq");
  assert_in_range(t, 0, ROTATE_THREADS - 1);
  assert_in_range(seq, 0, ROTATE_LINES - 1);
  unsigned char *s = &seen[(size_t)t * ROTATE_LINES + (size_t)seq];
  if (*s)
    fail_msg("thread %d seq %d twice", (int)t, (int)seq);
  *s = 1;
}

/*
 * Renaming the file and calling trail_reopen() while 4 threads write: every
 * line is in exactly one of the files, whole.
 */
static void test_reopen_while_logging(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "rotate.log");
  trail_sinks_clear();
  assert_true(trail_sink_add_file(path, TRAIL_LEVEL_INFO) >= 0);
  rotate_logged = 0;
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, ROTATE_THREADS + 1);
  rotate_worker w[ROTATE_THREADS];
  pthread_t th[ROTATE_THREADS];
  for (int t = 0; t < ROTATE_THREADS; t++) {
    w[t] = (rotate_worker){t, &start};
    assert_int_equal(pthread_create(&th[t], NULL, rotate_worker_main, &w[t]),
                     0);
  }
  pthread_barrier_wait(&start);
  const long total = (long)ROTATE_THREADS * ROTATE_LINES;
  int failures = 0;
  for (int k = 0; k < ROTATIONS; k++) {
    /* Rotate at evenly spread points of the run (not a timing: a count). */
    while (__atomic_load_n(&rotate_logged, __ATOMIC_ACQUIRE) <
           total * (k + 1) / (ROTATIONS + 1))
      sched_yield();
    char rotated[256];
    char name[32];
    snprintf(name, sizeof name, "rotate.log.%d", k);
    tmp_path(rotated, sizeof rotated, name);
    failures += rename(path, rotated) != 0;
    failures += trail_reopen() != 0;
  }
  for (int t = 0; t < ROTATE_THREADS; t++)
    assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&start);
  assert_int_equal(failures, 0);
  trail_shutdown();

  unsigned char *seen = calloc((size_t)total, 1);
  assert_non_null(seen);
  size_t n = each_line(path, check_rotated_line, seen);
  for (int k = 0; k < ROTATIONS; k++) {
    char rotated[256];
    char name[32];
    snprintf(name, sizeof name, "rotate.log.%d", k);
    tmp_path(rotated, sizeof rotated, name);
    n += each_line(rotated, check_rotated_line, seen);
  }
  assert_int_equal(n, (size_t)total);
  for (long i = 0; i < total; i++)
    assert_int_equal(seen[i], 1);
  free(seen);
}

/* ---- context isolation -------------------------------------------------- */

#define ROUNDS 100

typedef struct turn_worker {
  int who; /* 0 logs first in each round, 1 second */
  trail_ctx ctx;
  pthread_barrier_t *turn;
  int failed;
} turn_worker;

/* Two threads take turns, each with its own context entered throughout. */
static void *turn_worker_main(void *arg) {
  turn_worker *w = arg;
  if (trail_ctx_current() != NULL)
    w->failed = 1; /* the main thread's context is not ours */
  trail_ctx *prev = trail_ctx_enter(&w->ctx);
  for (int r = 0; r < ROUNDS; r++) {
    if (w->who == 1)
      pthread_barrier_wait(w->turn);
    if (trail_ctx_current() != &w->ctx)
      w->failed = 1;
    trail_info(NULL, "turn", TRAIL_INT("who", w->who), TRAIL_INT("round", r));
    if (w->who == 0)
      pthread_barrier_wait(w->turn);
    pthread_barrier_wait(w->turn); /* the round is over for both */
  }
  trail_ctx_leave(prev);
  return NULL;
}

/* The line carries exactly ctx's ids. */
static void assert_ids(json_t *j, const trail_ctx *ctx) {
  assert_str_field(j, "request_id", trail_ctx_request_id(ctx));
  assert_str_field(j, "user_id", trail_ctx_user_id(ctx));
  assert_str_field(j, "trace_id", trail_ctx_trace_id(ctx));
  assert_str_field(j, "span_id", trail_ctx_span_id(ctx));
}

static void assert_no_ids(json_t *j) {
  assert_null(json_object_get(j, "request_id"));
  assert_null(json_object_get(j, "user_id"));
  assert_null(json_object_get(j, "trace_id"));
  assert_null(json_object_get(j, "span_id"));
}

/*
 * Thread A in context A and thread B in context B log in strict alternation
 * (a barrier, no sleeps), while the main thread has a third context
 * entered: every line has its own thread's ids only.
 */
static void test_context_per_thread(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_INFO);
  trail_ctx main_ctx;
  trail_ctx_init(&main_ctx);
  assert_int_equal(trail_ctx_set_user_id(&main_ctx, "main"), 0);
  trail_ctx *main_prev = trail_ctx_enter(&main_ctx);

  pthread_barrier_t turn;
  pthread_barrier_init(&turn, NULL, 2);
  turn_worker w[2];
  pthread_t th[2];
  for (int k = 0; k < 2; k++) {
    w[k].who = k;
    w[k].turn = &turn;
    w[k].failed = 0;
    trail_ctx_init(&w[k].ctx);
    assert_int_equal(trail_ctx_set_user_id(&w[k].ctx, k ? "bob" : "alice"), 0);
  }
  for (int k = 0; k < 2; k++)
    assert_int_equal(pthread_create(&th[k], NULL, turn_worker_main, &w[k]), 0);
  for (int k = 0; k < 2; k++)
    assert_int_equal(pthread_join(th[k], NULL), 0);
  pthread_barrier_destroy(&turn);
  assert_ptr_equal(trail_ctx_current(), &main_ctx);
  trail_ctx_leave(main_prev);
  assert_null(trail_ctx_current());

  assert_int_equal(w[0].failed, 0);
  assert_int_equal(w[1].failed, 0);
  assert_int_equal(cap_count(), 2 * ROUNDS);
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    assert_key_order(j);
    int who = (int)(i % 2);
    assert_int_equal(jint(j, "who"), who);
    assert_int_equal(jint(j, "round"), (json_int_t)(i / 2));
    assert_ids(j, &w[who].ctx);
    json_decref(j);
  }
}

/*
 * One thread interleaving two requests (enter A, log, leave, enter B, log,
 * leave, log with none): each line carries the right ids, none after
 * leaving; nested enters restore the outer context.
 */
static void test_context_interleaved_one_thread(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_INFO);
  trail_ctx a, b;
  trail_ctx_init(&a);
  trail_ctx_init(&b);
  assert_int_equal(trail_ctx_set_user_id(&a, "alice"), 0);
  assert_int_equal(trail_ctx_set_user_id(&b, "bob"), 0);
  assert_int_equal(trail_ctx_set_request_id(&b, "req-b"), 0);
  assert_null(trail_ctx_current());
  for (int r = 0; r < ROUNDS; r++) {
    trail_ctx *prev = trail_ctx_enter(&a);
    assert_null(prev);
    trail_info(NULL, "a", TRAIL_INT("round", r));
    trail_ctx_leave(prev);
    assert_null(trail_ctx_current());
    prev = trail_ctx_enter(&b);
    assert_null(prev);
    trail_info(NULL, "b", TRAIL_INT("round", r));
    trail_ctx_leave(prev);
    trail_info(NULL, "none", TRAIL_INT("round", r));
  }
  assert_int_equal(cap_count(), 3 * ROUNDS);
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    assert_int_equal(jint(j, "round"), (json_int_t)(i / 3));
    switch (i % 3) {
    case 0:
      assert_str_field(j, "message", "a");
      assert_ids(j, &a);
      break;
    case 1:
      assert_str_field(j, "message", "b");
      assert_ids(j, &b);
      assert_str_field(j, "request_id", "req-b");
      break;
    default:
      assert_str_field(j, "message", "none");
      assert_no_ids(j);
    }
    json_decref(j);
  }

  /* Nested: B inside A, then back to A, then to none. */
  cap_clear();
  trail_ctx *outer = trail_ctx_enter(&a);
  trail_ctx *inner = trail_ctx_enter(&b);
  assert_ptr_equal(inner, &a);
  trail_info(NULL, "inner");
  trail_ctx_leave(inner);
  assert_ptr_equal(trail_ctx_current(), &a);
  trail_info(NULL, "outer");
  trail_ctx_leave(outer);
  assert_null(trail_ctx_current());
  trail_info(NULL, "after");
  assert_int_equal(cap_count(), 3);
  json_t *j = cap_json(0);
  assert_ids(j, &b);
  json_decref(j);
  j = cap_json(1);
  assert_ids(j, &a);
  json_decref(j);
  j = cap_json(2);
  assert_no_ids(j);
  assert_str_field(j, "message", "after");
  json_decref(j);
}

/* ---- long lines to a pipe ----------------------------------------------- */

/*
 * A pipe takes a write whole only up to PIPE_BUF (4096 bytes). Two threads
 * write 8 KiB lines and two write short ones to one pipe whose reader is
 * slower than them: every line read must still be whole.
 */
typedef struct pipe_worker {
  int id, big, n;
} pipe_worker;

static void *pipe_writer(void *arg) {
  pipe_worker *w = arg;
  char big[8192];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  for (int i = 0; i < w->n; i++) {
    if (w->big)
      trail_info(NULL, "big", TRAIL_INT("w", w->id), TRAIL_STR("v", big));
    else
      trail_info(NULL, "small", TRAIL_INT("w", w->id), TRAIL_INT("i", i));
  }
  return NULL;
}

typedef struct pipe_check {
  int fd;
  size_t lines, bad;
} pipe_check;

static void *pipe_reader(void *arg) {
  pipe_check *c = arg;
  FILE *f = fdopen(c->fd, "r");
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_error_t e;
    json_t *j = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL)
      c->bad++;
    json_decref(j);
    c->lines++;
  }
  free(line);
  fclose(f);
  return NULL;
}

static void test_pipe_long_lines_whole(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  trail_sinks_clear();
  assert_true(trail_sink_add_fd(fds[1], TRAIL_LEVEL_TRACE) >= 0);
  pipe_check c = {.fd = fds[0]};
  pthread_t reader, th[4];
  pthread_create(&reader, NULL, pipe_reader, &c);
  pipe_worker w[4] = {{0, 1, 2000}, {1, 1, 2000}, {2, 0, 20000}, {3, 0, 20000}};
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, pipe_writer, &w[i]);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  trail_sinks_clear();
  close(fds[1]);
  pthread_join(reader, NULL);
  assert_int_equal(c.bad, 0);
  assert_int_equal(c.lines, 2 * 2000 + 2 * 20000);
  trail_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_threads_one_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_processes_one_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_changes_while_logging, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reopen_while_logging, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_context_per_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_context_interleaved_one_thread,
                                      setup, teardown),
      cmocka_unit_test(test_pipe_long_lines_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
