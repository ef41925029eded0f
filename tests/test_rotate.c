/*
 * Files that move under the logger: rotation by size
 * (trail_sink_add_file_rotating, TRAIL_ROTATE) by several processes and
 * threads at once, the files kept, and the reopening after a signal
 * (trail_reopen_on_signal) in sync and async mode.
 */
#include "files.h"
#include "watchdog.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

static int setup(void **state) {
  (void)state;
  tmpdir_make("rotate");
  trail_sinks_clear();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  trail_shutdown();
  remove_tree(tmpdir);
  return 0;
}

/* path, or path.n for n > 0. */
static void numbered_path(char *out, size_t size, const char *path, int n) {
  int r = n == 0 ? snprintf(out, size, "%s", path)
                 : snprintf(out, size, "%s.%d", path, n);
  assert_true(r > 0 && (size_t)r < size);
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* ---- many processes and threads, one path ------------------------------ */

#define PROCS 4
#define THREADS 8
#define MAX_BYTES (64 * 1024)
#define KEEP 1000
/* Per thread; fewer under a sanitizer, which is ~10x slower. */
#define SEQS (UNDER_SANITIZER ? 150 : 400)

static char stress_path[PATH_MAX];
static int child_proc;

/* Lines of varied length: a padding field of 0 to 199 bytes. */
static void *stress_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  char pad[200];
  memset(pad, 'x', sizeof pad);
  for (int seq = 0; seq < SEQS; seq++) {
    size_t n = (size_t)((seq * 37 + t * 11 + child_proc * 5) % 200);
    trail_info(NULL, "line", TRAIL_INT("p", child_proc), TRAIL_INT("t", t),
               TRAIL_INT("seq", seq), TRAIL_STRN("pad", pad, n));
  }
  return NULL;
}

/* A child: waits at the gate, then 8 threads log. Reports by exit status. */
static void stress_child(int gate) {
  alarm(WATCHDOG_SECONDS);
  char c;
  while (read(gate, &c, 1) < 0 && errno == EINTR) {
  }
  CHILD_CHECK(trail_sink_add_file_rotating(stress_path, TRAIL_LEVEL_INFO,
                                           MAX_BYTES, KEEP) >= 0);
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++)
    CHILD_CHECK(
        pthread_create(&th[t], NULL, stress_thread, (void *)(intptr_t)t) == 0);
  for (int t = 0; t < THREADS; t++)
    CHILD_CHECK(pthread_join(th[t], NULL) == 0);
  CHILD_CHECK(trail_flush() == 0);
  trail_counters c2;
  trail_counters_get(&c2);
  CHILD_CHECK(c2.write_errors == 0);
  _exit(0);
}

/* What the files hold, checked file by file. */
typedef struct tally {
  unsigned char seen[PROCS][THREADS][SEQS];
  size_t lines, bytes, longest;
} tally;

/*
 * Reads one file: every line whole JSON with p, t, seq in range and seen
 * once; returns the file's size and the length of its first line.
 */
static size_t tally_file(tally *ty, const char *name, size_t *first_len) {
  size_t len;
  char *text = read_file(name, &len);
  *first_len = 0;
  size_t nlines = 0;
  for (char *p = text, *nl; p < text + len; p = nl + 1) {
    nl = memchr(p, '\n', (size_t)(text + len - p));
    assert_non_null(nl); /* the file ends with a whole line */
    size_t n = (size_t)(nl - p) + 1;
    if (nlines++ == 0)
      *first_len = n;
    json_t *j = parse_line(p, n);
    json_int_t pr = json_integer_value(json_object_get(j, "p"));
    json_int_t t = json_integer_value(json_object_get(j, "t"));
    json_int_t s = json_integer_value(json_object_get(j, "seq"));
    assert_true(pr >= 0 && pr < PROCS && t >= 0 && t < THREADS && s >= 0 &&
                s < SEQS);
    assert_int_equal(ty->seen[pr][t][s]++, 0); /* never twice */
    json_decref(j);
    ty->lines++;
    if (n > ty->longest)
      ty->longest = n;
  }
  /* Over max_bytes only as a single line, which does not happen here. */
  assert_true(len <= MAX_BYTES);
  ty->bytes += len;
  free(text);
  return len;
}

static void test_rotate_processes_threads(void **state) {
  (void)state;
  tmp_path(stress_path, sizeof stress_path, "app.log");
  int gate[2];
  assert_int_equal(pipe(gate), 0);
  fflush(NULL);
  pid_t pids[PROCS];
  for (int p = 0; p < PROCS; p++) { /* before any thread of this process */
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      close(gate[1]);
      child_proc = p;
      stress_child(gate[0]);
    }
  }
  close(gate[0]);
  close(gate[1]); /* opens the gate: every child starts now */
  for (int p = 0; p < PROCS; p++) {
    int status = 0;
    while (waitpid(pids[p], &status, 0) < 0)
      assert_int_equal(errno, EINTR);
    if (WIFSIGNALED(status))
      fprintf(stderr, "child %d: signal %d%s\n", p, WTERMSIG(status),
              WTERMSIG(status) == SIGALRM ? " (hung: watchdog)" : "");
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  tally *ty = calloc(1, sizeof *ty);
  assert_non_null(ty);
  int files = 0;
  size_t newer_first = 0; /* the first line of the next newer file */
  char name[PATH_MAX];
  for (;; files++) {
    numbered_path(name, sizeof name, stress_path, files);
    if (!file_exists(name))
      break;
    size_t first;
    size_t size = tally_file(ty, name, &first);
    /* A rotated file was full: the line that opened the next newer file
     * would not have fitted. Rotated twice, it would be nearly empty. */
    if (files > 0)
      assert_true(size + newer_first > MAX_BYTES);
    newer_first = first;
  }
  assert_true(files >= 2);
  assert_int_equal(ty->lines, (size_t)PROCS * THREADS * SEQS);
  for (int p = 0; p < PROCS; p++)
    for (int t = 0; t < THREADS; t++)
      for (int s = 0; s < SEQS; s++)
        assert_int_equal(ty->seen[p][t][s], 1);
  /* The number of rotated files the bytes imply, within one. */
  size_t rotated = (size_t)files - 1;
  assert_true(rotated + 1 >= ty->bytes / MAX_BYTES);
  assert_true(rotated <= ty->bytes / (MAX_BYTES - ty->longest) + 1);
  free(ty);
}

/* ---- keep, long lines, arguments --------------------------------------- */

/* Logs lines seq from..to-1 of about 100 bytes each. */
static void log_seqs(int from, int to) {
  for (int i = from; i < to; i++)
    trail_info(NULL, "keep", TRAIL_INT("seq", i));
}

/* The seq values in file name, in order, into out; returns how many. */
static size_t file_seqs(const char *name, int *out, size_t room) {
  size_t len, n = 0;
  char *text = read_file(name, &len);
  for (char *p = text, *nl; p < text + len; p = nl + 1) {
    nl = strchr(p, '\n');
    assert_non_null(nl);
    json_t *j = parse_line(p, (size_t)(nl - p) + 1);
    assert_true(n < room);
    out[n++] = (int)json_integer_value(json_object_get(j, "seq"));
    json_decref(j);
  }
  free(text);
  return n;
}

static void test_rotate_keep(void **state) {
  (void)state;
  char path[PATH_MAX], name[PATH_MAX];
  tmp_path(path, sizeof path, "keep.log");
  assert_true(trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 1024, 3) >=
              0);
  log_seqs(0, 200); /* ~20 KiB: many more rotations than kept files */
  for (int n = 1; n <= 3; n++) {
    numbered_path(name, sizeof name, path, n);
    assert_true(file_exists(name));
  }
  numbered_path(name, sizeof name, path, 4);
  assert_false(file_exists(name));
  /* Oldest first: path.3, path.2, path.1, path hold one run of seqs that
   * ends with the last line; what came before path.3 is gone. */
  int seqs[200], next = -1;
  for (int n = 3; n >= 0; n--) {
    numbered_path(name, sizeof name, path, n);
    size_t k = file_seqs(name, seqs, 200);
    assert_true(k > 0);
    for (size_t i = 0; i < k; i++) {
      if (next >= 0)
        assert_int_equal(seqs[i], next);
      next = seqs[i] + 1;
    }
  }
  assert_int_equal(next, 200);
}

static void test_rotate_keep_zero(void **state) {
  (void)state;
  char path[PATH_MAX], name[PATH_MAX];
  tmp_path(path, sizeof path, "zero.log");
  assert_true(trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 1024, 0) >=
              0);
  log_seqs(0, 100);
  numbered_path(name, sizeof name, path, 1);
  assert_false(file_exists(name)); /* nothing kept */
  int seqs[100];
  size_t k = file_seqs(path, seqs, 100);
  assert_true(k > 0 && k < 100);
  assert_int_equal(seqs[k - 1], 99); /* the newest lines, in a new file */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(st.st_size <= 1024);
}

/* A line longer than max_bytes goes alone into a file of its own. */
static void test_rotate_long_line(void **state) {
  (void)state;
  char path[PATH_MAX], name[PATH_MAX];
  tmp_path(path, sizeof path, "long.log");
  assert_true(trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 512, 5) >=
              0);
  char big[1500];
  memset(big, 'y', sizeof big);
  trail_info(NULL, "keep", TRAIL_INT("seq", 0));
  trail_info(NULL, "keep", TRAIL_INT("seq", 1), TRAIL_STRN("big", big, 1500));
  trail_info(NULL, "keep", TRAIL_INT("seq", 2));
  int seqs[8];
  numbered_path(name, sizeof name, path, 2);
  assert_int_equal(file_seqs(name, seqs, 8), 1);
  assert_int_equal(seqs[0], 0);
  numbered_path(name, sizeof name, path, 1);
  assert_int_equal(file_seqs(name, seqs, 8), 1);
  assert_int_equal(seqs[0], 1);
  assert_int_equal(file_seqs(path, seqs, 8), 1);
  assert_int_equal(seqs[0], 2);
}

/* An async batch is split where the file is full. */
static void test_rotate_async_batch(void **state) {
  (void)state;
  char path[PATH_MAX], name[PATH_MAX];
  tmp_path(path, sizeof path, "batch.log");
  assert_true(trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 2048, 100) >=
              0);
  assert_int_equal(trail_async_start(NULL), 0);
  log_seqs(0, 300);
  assert_int_equal(trail_flush(), 0);
  trail_async_stop();
  int seqs[300], next = 0;
  size_t newer_first = 0;
  int n = 0;
  for (;; n++) {
    numbered_path(name, sizeof name, path, n);
    if (!file_exists(name))
      break;
  }
  assert_true(n > 2);
  for (int f = n - 1; f >= 0; f--) { /* oldest first */
    numbered_path(name, sizeof name, path, f);
    struct stat st;
    assert_int_equal(stat(name, &st), 0);
    assert_true(st.st_size <= 2048);
    size_t k = file_seqs(name, seqs, 300);
    for (size_t i = 0; i < k; i++)
      assert_int_equal(seqs[i], next++);
  }
  (void)newer_first;
  assert_int_equal(next, 300);
}

static void test_rotate_arguments(void **state) {
  (void)state;
  char path[PATH_MAX];
  tmp_path(path, sizeof path, "args.log");
  assert_int_equal(trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 0, 1),
                   -EINVAL);
  assert_int_equal(
      trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 1024, 1001),
      -EINVAL);
  assert_int_equal(trail_sink_add_file_rotating(NULL, TRAIL_LEVEL_INFO, 1, 1),
                   -EINVAL);
  assert_int_equal(trail_sink_add_file_rotating(path, (trail_level)99, 1, 1),
                   TRAIL_EINVAL_LEVEL);
  assert_true(
      trail_sink_add_file_rotating(path, TRAIL_LEVEL_INFO, 1024, 1000) >= 0);
}

/* ---- TRAIL_ROTATE ------------------------------------------------------ */

static void test_rotate_parse(void **state) {
  (void)state;
  static const struct {
    const char *v;
    uint64_t max;
    unsigned keep;
  } good[] = {
      {"100m,5", 100u << 20, 5},     {"1,0", 1, 0},
      {"64k,1000", 64u << 10, 1000}, {"2G,3", 2ull << 30, 3},
      {"4096,7", 4096, 7},           {"1K,1", 1024, 1},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    uint64_t max = 0;
    unsigned keep = 99;
    assert_int_equal(trail__rotate_parse(good[i].v, &max, &keep), 0);
    assert_true(max == good[i].max);
    assert_int_equal(keep, good[i].keep);
  }
  static const char *const bad[] = {
      "",
      "100m",
      "100m,",
      "0,5",
      "abc,5",
      "100x,5",
      "100m,5x",
      "100m,-1",
      "100m,1001",
      "-5,1",
      " 1m,1",
      "1m, 1",
      "1m,5,6",
      "99999999999999999999,1",
      "17179869184g,1",
      ",5",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t max;
    unsigned keep;
    if (trail__rotate_parse(bad[i], &max, &keep) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
  }
}

static void test_rotate_env(void **state) {
  (void)state;
  char path[PATH_MAX], name[PATH_MAX], err[PATH_MAX];
  tmp_path(path, sizeof path, "env.log");
  tmp_path(err, sizeof err, "stderr.txt");
  setenv("TRAIL_OUTPUT", path, 1);
  setenv("TRAIL_ROTATE", "1k,2", 1);
  assert_int_equal(trail_config_from_env(), 0);
  log_seqs(0, 50);
  numbered_path(name, sizeof name, path, 2);
  assert_true(file_exists(name));
  numbered_path(name, sizeof name, path, 3);
  assert_false(file_exists(name));
  /* A bad value: one clear line on stderr, the file not rotated. */
  trail_shutdown();
  remove_tree(tmpdir);
  tmpdir_make("rotate");
  tmp_path(path, sizeof path, "env.log");
  tmp_path(err, sizeof err, "stderr.txt");
  setenv("TRAIL_OUTPUT", path, 1);
  setenv("TRAIL_ROTATE", "1k", 1);
  redirect r = redirect_begin(2, err);
  int bad = trail_config_from_env();
  redirect_end(r);
  assert_int_equal(bad, 1);
  char *msg = read_file(err, NULL);
  assert_non_null(strstr(msg, "trail: TRAIL_ROTATE=\"1k\": not SIZE,KEEP"));
  assert_non_null(strstr(msg, "; using no rotation\n"));
  free(msg);
  log_seqs(0, 50);
  numbered_path(name, sizeof name, path, 1);
  assert_false(file_exists(name));
  /* No file to rotate. */
  setenv("TRAIL_OUTPUT", "stderr", 1);
  setenv("TRAIL_ROTATE", "1k,2", 1);
  r = redirect_begin(2, err);
  bad = trail_config_from_env();
  redirect_end(r);
  assert_int_equal(bad, 1);
  msg = read_file(err, NULL);
  assert_non_null(strstr(msg, "TRAIL_ROTATE=\"1k,2\": TRAIL_OUTPUT names no "
                              "file to rotate; using no rotation\n"));
  free(msg);
  unsetenv("TRAIL_OUTPUT");
  unsetenv("TRAIL_ROTATE");
}

/* ---- trail_reopen_on_signal -------------------------------------------- */

static void test_reopen_signal_refused(void **state) {
  (void)state;
  static const int refused[] = {0,       -1,      NSIG,    SIGKILL,
                                SIGSTOP, SIGSEGV, SIGBUS,  SIGILL,
                                SIGFPE,  SIGABRT, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    assert_int_equal(trail_reopen_on_signal(refused[i]), -EINVAL);
  struct sigaction old, now;
  assert_int_equal(sigaction(SIGUSR2, NULL, &old), 0);
  assert_int_equal(trail_reopen_on_signal(SIGUSR2), 0);
  assert_int_equal(sigaction(SIGUSR2, &old, &now), 0);
  assert_true(now.sa_flags & SA_RESTART);
  assert_true(now.sa_handler != SIG_DFL && now.sa_handler != SIG_IGN);
}

/*
 * Lines before the signal in the renamed file, lines after it in the new
 * one at the path: each once, none lost.
 */
static void reopen_by_signal(int async) {
  char path[PATH_MAX], old[PATH_MAX];
  tmp_path(path, sizeof path, "hup.log");
  tmp_path(old, sizeof old, "hup.log.old");
  assert_true(trail_sink_add_file(path, TRAIL_LEVEL_INFO) >= 0);
  assert_int_equal(trail_reopen_on_signal(SIGHUP), 0);
  if (async)
    assert_int_equal(trail_async_start(NULL), 0);
  log_seqs(0, 20);
  assert_int_equal(trail_flush(), 0);
  assert_int_equal(rename(path, old), 0);
  assert_int_equal(kill(getpid(), SIGHUP), 0);
  log_seqs(20, 50);
  assert_int_equal(trail_flush(), 0);
  if (async)
    trail_async_stop();
  int seqs[64];
  size_t k = file_seqs(old, seqs, 64);
  assert_int_equal(k, 20);
  for (size_t i = 0; i < k; i++)
    assert_int_equal(seqs[i], (int)i);
  k = file_seqs(path, seqs, 64);
  assert_int_equal(k, 30);
  for (size_t i = 0; i < k; i++)
    assert_int_equal(seqs[i], (int)i + 20);
  signal(SIGHUP, SIG_DFL);
}

static void test_reopen_signal_sync(void **state) {
  (void)state;
  reopen_by_signal(0);
}

static void test_reopen_signal_async(void **state) {
  (void)state;
  reopen_by_signal(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_rotate_processes_threads, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_rotate_keep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_keep_zero, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_long_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_async_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_parse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_env, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_signal_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reopen_signal_sync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_signal_async, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
