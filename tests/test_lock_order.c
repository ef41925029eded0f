/*
 * The lock order of lib/state.c, checked in debug builds: a lock taken while
 * one of the same or a higher rank is held aborts with a message naming it.
 * (Release builds do not check: the test says "skipped" there.)
 */
#define _GNU_SOURCE
#include "internal.h"
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t low = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t high = PTHREAD_MUTEX_INITIALIZER;

/* Runs the inversion in a child; returns its status and its stderr. */
static int inverted_child(char *err, size_t size) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    dup2(fds[1], STDERR_FILENO);
    trail__lock_take(&high, TRAIL__RANK_COUNTERS);
    trail__lock_take(&low, TRAIL__RANK_CONFIG); /* lower rank: aborts */
    _exit(0);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < size && (r = read(fds[0], err + n, size - 1 - n)) > 0)
    n += (size_t)r;
  err[n] = '\0';
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

static void test_inversion_aborts(void **state) {
  (void)state;
  if (!TRAIL__LOCK_CHECK)
    skip(); /* a release build: the order is not checked */
  char err[512];
  int status = inverted_child(err, sizeof err);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
  assert_non_null(strstr(err, "trail: lock order violated: taking the config "
                              "lock"));
}

/* In order, and again after release: no complaint, and the cancel state
 * is back to what it was. */
static void test_order_kept(void **state) {
  (void)state;
  trail__lock_take(&low, TRAIL__RANK_CONFIG);
  int st;
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &st);
  pthread_setcancelstate(st, NULL);
  assert_int_equal(st, PTHREAD_CANCEL_DISABLE); /* off while held */
  trail__lock_take(&high, TRAIL__RANK_COUNTERS);
  trail__lock_drop(&high, TRAIL__RANK_COUNTERS);
  trail__lock_drop(&low, TRAIL__RANK_CONFIG);
  trail__lock_take(&high, TRAIL__RANK_COUNTERS);
  trail__lock_drop(&high, TRAIL__RANK_COUNTERS);
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &st);
  assert_int_equal(st, PTHREAD_CANCEL_ENABLE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inversion_aborts),
      cmocka_unit_test(test_order_kept),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
