/*
 * The crash handler: on a fatal signal, write what the async queue still
 * holds and one "fatal" line naming the signal, with async-signal-safe calls
 * only, then let the signal take its course (the previous disposition runs,
 * which by default ends the process with a core dump).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "internal.h"
#include "ring.h"

/* A string literal into b, its length the compiler's. */
#define PUT_LIT(b, lit) trail__buf_put((b), (lit), TRAIL__LIT_LEN(lit))

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define NSIG_FATAL (sizeof fatal_signals / sizeof fatal_signals[0])

static struct sigaction previous[NSIG_FATAL];
static int installed;

/*
 * The thread handling the crash (its kernel thread id, from gettid, which
 * is async-signal-safe; pthread_self is not), 0 before any. Claimed with a
 * sequentially consistent compare-and-swap, so exactly one thread drains
 * and writes the fatal line.
 */
int trail__crash_tid;
/* Set (release) once that thread has written its fatal line; read acquire. */
static int fatal_written;

/*
 * A second thread that faults while the first drains waits at most this
 * long for the fatal line before passing its signal on: passing on at once
 * would end the process in the middle of the drain.
 */
#define SECOND_FAULT_WAIT_MS 5000
#define SECOND_FAULT_POLL_MS 1

/* The longest buffered line written on a crash (the line maximum if less). */
#define CRASH_LINE 16384

static const char *signal_name(int sig) {
  switch (sig) {
  case SIGSEGV:
    return "SIGSEGV";
  case SIGBUS:
    return "SIGBUS";
  case SIGILL:
    return "SIGILL";
  case SIGFPE:
    return "SIGFPE";
  case SIGABRT:
    return "SIGABRT";
  default:
    return "signal";
  }
}

/*
 * The process fields of the snapshot in force, then the signal's fields,
 * with the rename rule between them (a process field "signal" keeps its
 * name and the signal's becomes "_signal"). No lock: the set is immutable.
 */
static void put_fields(trail__buf *b, const trail__conf *c, const char *name,
                       int sig, void *addr) {
  trail__key keys[TRAIL__PFIELDS_MAX + 3];
  trail__keyset ks = {.keys = keys, .n = 0, .cap = TRAIL__PFIELDS_MAX + 3};
  const trail__pfields *pf = c->pfields;
  if (pf != NULL)
    trail__copy_fields(b, &ks, pf->seg, pf->len, pf->keys, pf->nkeys,
                       pf->redact_gen != c->redact_gen ? c : NULL);
  trail_field f[] = {TRAIL_STR("signal", name), TRAIL_INT("signo", sig),
                     TRAIL_UINT("fault_addr", (uint64_t)(uintptr_t)addr)};
  for (size_t i = 0; i < (sig != SIGABRT ? 3u : 2u); i++)
    trail__put_field(b, &ks, &f[i]);
}

/*
 * Builds the fatal line in a static buffer with the encoder's pure
 * functions (no allocation, no lock, no stdio) and the crashing thread's
 * context, so the line says which request was being served. It is no
 * longer than the line maximum (or cap), cut like any line.
 */
static size_t fatal_line(char *buf, size_t cap, int sig, void *addr) {
  size_t max = trail_max_line() < cap ? trail_max_line() : cap;
  trail__buf b = {.data = buf, .len = 0, .limit = max - 64};
  char ts[TRAIL__TIMESTAMP_LEN];
  trail__timestamp(ts);
  PUT_LIT(&b, TRAIL__FIRST_SEG(TRAIL__K_TIMESTAMP) "\"");
  trail__buf_put(&b, ts, sizeof ts);
  PUT_LIT(&b, "\"" TRAIL__SEG_STR(TRAIL__K_LEVEL) "fatal\"" TRAIL__SEG_STR(
                  TRAIL__K_LOGGER) "trail\"" TRAIL__SEG_STR(TRAIL__K_MESSAGE));
  const char *name = signal_name(sig);
  PUT_LIT(&b, "fatal signal ");
  trail__buf_put(&b, name, strlen(name));
  PUT_LIT(&b, "\"");
  const trail__conf *c = trail__conf_get();
  trail__buf_put(&b, c->service_seg, c->service_seg_len);
  trail_ctx *ctx = trail__ctx_current();
  if (ctx != NULL)
    trail__buf_put(&b, ctx->ids_, ctx->ids_len_);
  put_fields(&b, c, name, sig, addr);
  if (b.truncated)
    trail__buf_put_unchecked(
        &b, TRAIL__SEG(TRAIL__K_TRUNCATED) "true",
        TRAIL__LIT_LEN(TRAIL__SEG(TRAIL__K_TRUNCATED) "true"));
  trail__buf_put_unchecked(&b, "}\n", TRAIL__LIT_LEN("}\n"));
  return b.len;
}

/*
 * Hands the signal to the disposition that was there before ours, with the
 * original signo, siginfo and context: a crash reporter installed first must
 * see the kernel's si_code and fault address, not SI_TKILL from raise(). A
 * kernel fault under SIG_DFL (or SIG_IGN, which cannot stop a fault) returns
 * with SIG_DFL in place: the instruction re-executes and the kernel delivers
 * the fault again with its original information.
 */
static void pass_on(int sig, siginfo_t *info, void *uctx,
                    const struct sigaction *prev) {
  int fault = info != NULL && info->si_code > 0 && sig != SIGABRT;
  if (prev->sa_flags & SA_SIGINFO) {
    prev->sa_sigaction(sig, info, uctx);
    return;
  }
  if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
    prev->sa_handler(sig);
    return;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  if (prev->sa_handler == SIG_IGN && !fault)
    return;
  sigaction(sig, &dfl, NULL);
  if (!fault)
    raise(sig); /* blocked here: arrives when the handler returns */
}

/* Waits, bounded, until the thread handling the crash has written its
 * fatal line (nanosleep is async-signal-safe). */
static void wait_for_fatal_line(void) {
  struct timespec step = {0, SECOND_FAULT_POLL_MS * 1000000L};
  for (int i = 0; i < SECOND_FAULT_WAIT_MS / SECOND_FAULT_POLL_MS; i++) {
    if (__atomic_load_n(&fatal_written, __ATOMIC_ACQUIRE))
      return;
    nanosleep(&step, NULL);
  }
}

/* line (n bytes, of level) to every descriptor sink that takes it. */
static void write_sinks(const trail__conf *c, trail_level level,
                        const char *line, size_t n) {
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    if (s->kind == TRAIL__SINK_CALLBACK || (int)level < s->min)
      continue;
    trail__sink_write_crash(s, line, n);
  }
}

/* One entry of the crashing thread's request buffer (the count of lines
 * dropped for room is not reported here). */
static void crash_buffered(void *arg, int kind, trail_level level,
                           const char *data, size_t len) {
  static char line[CRASH_LINE + TRAIL__BUF_SLACK];
  const trail__conf *c = arg;
  if (kind == TRAIL__BUF_LINE) {
    write_sinks(c, level, data, len);
  } else if (kind == TRAIL__BUF_RECORD) {
    size_t max = trail_max_line() < CRASH_LINE ? trail_max_line() : CRASH_LINE;
    size_t n = trail__buffer_record_line(c, data, len, line, max);
    if (n > 0)
      write_sinks(c, level, line, n);
  }
}

/*
 * What the crashing thread leaves, in order: the lines of the async queue,
 * the lines its request kept back (a crash is that request failing), then
 * the fatal line.
 */
static void crash_write(int sig, siginfo_t *info) {
  /* A reader gone from a pipe sink must not end us before the line. */
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigprocmask(SIG_BLOCK, &pipe_set, NULL);
  trail__async_crash_drain();
  const trail__conf *c = trail__conf_get();
  trail__buffer_crash_each(trail__ctx_current(), crash_buffered, (void *)c);
  static char line[4096];
  size_t n = fatal_line(line, sizeof line, sig, info ? info->si_addr : NULL);
  write_sinks(c, TRAIL_LEVEL_FATAL, line, n);
}

/*
 * A thread about to write a line in synchronous mode while another handles
 * a crash: the line would follow the fatal line, and the process is dying,
 * so it waits for that (as the async queue's producers do). The crashing
 * thread itself goes on: a handler chained before trail's may log.
 */
void trail__crash_park_others(void) {
  int tid = __atomic_load_n(&trail__crash_tid, __ATOMIC_ACQUIRE);
  if (tid != 0 && tid != (int)syscall(SYS_gettid))
    trail__ring_park_forever();
}

static void handler(int sig, siginfo_t *info, void *uctx) {
  int saved = errno;
  int me = (int)syscall(SYS_gettid);
  int first = 0;
  if (__atomic_compare_exchange_n(&trail__crash_tid, &first, me, 0,
                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    crash_write(sig, info);
    __atomic_store_n(&fatal_written, 1, __ATOMIC_RELEASE);
  } else if (first != me) {
    /* Another thread is draining: let it finish. The same thread again (a
     * fault inside the handler) would wait for itself: it passes on now. */
    wait_for_fatal_line();
  }
  for (size_t i = 0; i < NSIG_FATAL; i++)
    if (fatal_signals[i] == sig)
      pass_on(sig, info, uctx, &previous[i]);
  errno = saved;
}

/*
 * Installs the handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT, on
 * an alternate stack: the calling thread's now, each other thread's when
 * it first logs (crash_stack.c). Returns 0, -EALREADY, or -errno from
 * sigaction.
 */
TRAIL_API int trail_crash_handler_install(void) {
  trail__config_lock();
  if (installed) {
    trail__config_unlock();
    return -EALREADY;
  }
  (void)trail__conf_get(); /* the defaults exist before any signal */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < NSIG_FATAL; i++) {
    if (sigaction(fatal_signals[i], &sa, &previous[i]) != 0) {
      int rc = -errno;
      while (i-- > 0)
        sigaction(fatal_signals[i], &previous[i], NULL);
      trail__config_unlock();
      return rc;
    }
  }
  installed = 1;
  __atomic_store_n(&trail__crash_stacks_on, 1, __ATOMIC_RELAXED);
  trail__config_unlock();
  trail__crash_stack_slow(); /* this thread's, unless it has one */
  return 0;
}

/* Puts back the dispositions that were there before the install. */
TRAIL_API void trail_crash_handler_remove(void) {
  trail__config_lock();
  if (installed) {
    for (size_t i = 0; i < NSIG_FATAL; i++)
      sigaction(fatal_signals[i], &previous[i], NULL);
    installed = 0;
    __atomic_store_n(&trail__crash_stacks_on, 0, __ATOMIC_RELAXED);
  }
  trail__config_unlock();
}
