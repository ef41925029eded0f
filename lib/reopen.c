/*
 * trail_reopen_on_signal(): the files are reopened before the next line
 * after a signal (logrotate's SIGHUP). The handler only sets a flag; the
 * logging call and the async writer look at it before each write, with
 * one relaxed load, and the one that finds it set reopens.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "internal.h"

int trail__reopen_pending;

/* Async-signal-safe: one lock-free atomic store; errno untouched. */
static void on_reopen_signal(int sig) {
  (void)sig;
  __atomic_store_n(&trail__reopen_pending, 1, __ATOMIC_RELAXED);
}

void trail__reopen_run(void) {
  if (__atomic_exchange_n(&trail__reopen_pending, 0, __ATOMIC_RELAXED))
    trail_reopen();
}

/*
 * Signals that cannot or must not carry it: SIGKILL and SIGSTOP cannot be
 * caught, and the synchronous fault signals (and SIGABRT) belong to the
 * crash handler and to the program's own fault handling.
 */
static int refused(int signo) {
  static const int no[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL,
                           SIGFPE,  SIGABRT, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (signo == no[i])
      return 1;
  return signo <= 0 || signo >= NSIG;
}

TRAIL_API int trail_reopen_on_signal(int signo) {
  if (refused(signo))
    return -EINVAL;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_reopen_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  return sigaction(signo, &sa, NULL) == 0 ? 0 : -errno;
}
