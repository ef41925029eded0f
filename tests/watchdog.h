/*
 * Runs a scenario in a child process under a hard timeout: a hang (a
 * deadlock is what these tests look for) ends the child by SIGALRM and
 * fails the test instead of stalling the suite. The child reports failure
 * by its exit status; cmocka assertions are not used inside it.
 */
#ifndef TRAIL_TEST_WATCHDOG_H
#define TRAIL_TEST_WATCHDOG_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Seconds a scenario may take; sanitizer builds run ~10x slower than
 * plain ones, and each scenario needs well under a second plain. */
#define WATCHDOG_SECONDS 60

/* Built with a sanitizer: a fork copies its shadow memory's page tables,
 * so the fork-heavy scenarios do fewer rounds there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* In the child: the scenario's verdict (exit 1 when cond is false). */
#define CHILD_CHECK(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      _exit(1);                                                                \
    }                                                                          \
  } while (0)

/* Runs fn() in a child under the watchdog; asserts it exited 0. */
static inline void run_watched(const char *what, void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL);
    alarm(WATCHDOG_SECONDS);
    fn();
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);
  if (WIFSIGNALED(status))
    fprintf(stderr, "%s: ended by signal %d%s\n", what, WTERMSIG(status),
            WTERMSIG(status) == SIGALRM ? " (hung: watchdog)" : "");
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

#endif /* TRAIL_TEST_WATCHDOG_H */
