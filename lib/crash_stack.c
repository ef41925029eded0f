/*
 * The crash handler's alternate signal stacks. A stack overflow raises
 * SIGSEGV with no stack left to run a handler on, unless the thread has an
 * alternate stack: the install gives one to its own thread, and each
 * thread that logs after the install gets one at its first line or
 * request, so that an overflow in a server's worker thread is reported
 * too. A thread that already has one (its own, a sanitizer's) keeps it.
 * The stack is freed at the thread's exit.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* The handler's need: it encodes at most one line at a time on its stack. */
#define CRASH_STACK_BYTES ((size_t)64 * 1024)

int trail__crash_stacks_on;

TRAIL__TLS char trail__crash_stack_seen;
static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;

/* The stack's size: ours, or the system's minimum when that is larger,
 * whole pages; a guard page lies below it. */
static size_t stack_bytes(void) {
  size_t n = CRASH_STACK_BYTES, page = trail__page_bytes();
#ifdef _SC_SIGSTKSZ
  long min = sysconf(_SC_SIGSTKSZ);
  if (min > 0 && (size_t)min > n)
    n = (size_t)min;
#endif
  return (n + page - 1) / page * page;
}

/* At the thread's exit: off, then unmapped (unless another took its place
 * and is still on it, which cannot be while a destructor runs). */
static void stack_release(void *base) {
  size_t page = trail__page_bytes();
  stack_t cur;
  if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == (char *)base + page) {
    if (cur.ss_flags & SS_ONSTACK)
      return;
    stack_t off = {.ss_flags = SS_DISABLE};
    (void)sigaltstack(&off, NULL);
  }
  munmap(base, page + stack_bytes());
}

static void stack_key_make(void) {
  pthread_key_create(&stack_key, stack_release);
}

void trail__crash_stack_slow(void) {
  trail__crash_stack_seen = 1;
  stack_t cur;
  if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
    return; /* the thread has one already */
  size_t page = trail__page_bytes(), n = stack_bytes();
  char *base =
      mmap(NULL, page + n, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED)
    return;
  (void)mprotect(base, page, PROT_NONE); /* the handler's own overflow faults */
  stack_t ss = {.ss_sp = base + page, .ss_size = n};
  pthread_once(&stack_once, stack_key_make);
  if (sigaltstack(&ss, NULL) != 0 ||
      pthread_setspecific(stack_key, base) != 0) {
    stack_t off = {.ss_flags = SS_DISABLE};
    (void)sigaltstack(&off, NULL);
    munmap(base, page + n);
  }
}
