/*
 * Where trail's random bytes come from: the kernel's pool, directly
 * (trail__random_kernel, one getrandom(2) per call) or through a small
 * per-thread pool refilled from it (trail__random_pooled), which lets a new
 * request's ids cost a hundredth of a system call instead of one.
 *
 * The pool must never hand a forked child the bytes its parent will use.
 * fork() copies every thread-local pool, and neither pthread_atfork()
 * handlers (skipped by _Fork() and by a raw clone(2)) nor getpid() (a system
 * call per draw, the cost the pool removes) tell a child reliably and
 * cheaply. The kernel does: one page of this process is mapped with
 * MADV_WIPEONFORK, so it reads as zero in every child however it was made.
 * The page holds the process's generation, never 0; a thread's pool is good
 * only while the generation it was filled in is the page's. A child finds
 * 0, takes a generation above every one its parent used (the counter that
 * hands them out is ordinary memory, copied by fork) and so refills every
 * inherited pool before drawing from it. Where the kernel cannot wipe (Linux
 * before 4.14) or the page cannot be mapped, every draw asks the kernel.
 *
 * The pool is not async-signal-safe: a signal handler drawing from the pool
 * of the thread it interrupted could get the same bytes. Functions that must
 * be (trail_trace_id_new(), trail_span_id_new()) use trail__random_kernel.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* MADV_WIPEONFORK, MAP_ANONYMOUS under -std=c11 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "internal.h"
#include "random.h"

/*
 * Bytes a thread draws from the kernel at once: a request's ids take 40, so
 * one page serves a hundred requests. The system call, not the bytes, is
 * the cost: on a virtual machine a request's share of a 256-byte draw (a
 * sixth of a call) was a third of what the middleware cost it, of a
 * 4096-byte one too little to measure. A read over 256 bytes can come back
 * short when a signal arrives; trail__random_kernel goes on where it ended.
 */
#define POOL_BYTES 4096

/* The last resort when the kernel has no getrandom(2), or a seccomp filter
 * refuses it: the same pool through /dev/urandom. */
static int urandom_fill(unsigned char *p, size_t n) {
  int fd;
  do {
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return -errno;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      int err = r < 0 ? -errno : -EIO;
      close(fd);
      return err;
    }
    p += r;
    n -= (size_t)r;
  }
  close(fd);
  return 0;
}

int trail__random_kernel(void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == ENOSYS || errno == EPERM)
        return urandom_fill(p, n);
      return -errno;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* The wiped page (NULL until first use, WIPE_NONE when it cannot be had)
 * and the generations handed out so far. */
#define WIPE_NONE ((_Atomic uint64_t *)(uintptr_t)1)
static _Atomic uint64_t *_Atomic wipe_page;
static _Atomic uint64_t generations;

/* The page size, for the mappings of random.c and crash_stack.c. */
size_t trail__page_bytes(void) {
  long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? (size_t)page : 4096;
}

static _Atomic uint64_t *wipe_page_map(void) {
  size_t len = trail__page_bytes();
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED)
    return WIPE_NONE;
#ifdef MADV_WIPEONFORK
  if (madvise(p, len, MADV_WIPEONFORK) == 0)
    return p;
#endif
  munmap(p, len);
  return WIPE_NONE;
}

/* The page, mapped by the first thread to ask; a thread that lost the race
 * to install its own unmaps it. */
static _Atomic uint64_t *wipe_page_get(void) {
  _Atomic uint64_t *p = atomic_load_explicit(&wipe_page, memory_order_acquire);
  if (p != NULL)
    return p;
  _Atomic uint64_t *mine = wipe_page_map();
  if (atomic_compare_exchange_strong_explicit(
          &wipe_page, &p, mine, memory_order_acq_rel, memory_order_acquire))
    return mine;
  if (mine != WIPE_NONE)
    munmap((void *)mine, trail__page_bytes());
  return p;
}

/*
 * This process's generation: 0 when there is no wiped page. In a child the
 * page reads 0 and the first thread to look sets a new one. Relaxed is
 * enough: the value only names the process; each pool is its thread's own.
 */
static uint64_t generation(void) {
  _Atomic uint64_t *page = wipe_page_get();
  if (page == WIPE_NONE)
    return 0;
  uint64_t g = atomic_load_explicit(page, memory_order_relaxed);
  if (g != 0)
    return g;
  uint64_t fresh =
      atomic_fetch_add_explicit(&generations, 1, memory_order_relaxed) + 1;
  if (atomic_compare_exchange_strong_explicit(
          page, &g, fresh, memory_order_relaxed, memory_order_relaxed))
    return fresh;
  return g;
}

typedef struct pool {
  uint64_t generation; /* the process's when filled; 0: empty */
  size_t used;
  unsigned char bytes[POOL_BYTES];
} pool;

/*
 * The thread's pool, on the heap, made at its first draw and freed at its
 * exit: in thread-local storage it would make libtrail's static TLS block
 * too large for dlopen() (glibc keeps a few hundred bytes for libraries
 * loaded later with static TLS), and a plugin linking trail could not load.
 */
static TRAIL__TLS pool *thread_pool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_free(void *p) {
  free(p);
  thread_pool = NULL; /* a later destructor that logs makes a new one */
}

static void pool_key_make(void) { pthread_key_create(&pool_key, pool_free); }

static pool *pool_get(void) {
  if (thread_pool != NULL)
    return thread_pool;
  pthread_once(&pool_once, pool_key_make);
  pool *p = calloc(1, sizeof *p);
  if (p != NULL && pthread_setspecific(pool_key, p) != 0) {
    free(p);
    p = NULL;
  }
  return thread_pool = p;
}

int trail__random_pooled(void *buf, size_t n) {
  uint64_t g = generation();
  pool *p;
  if (g == 0 || n > POOL_BYTES || (p = pool_get()) == NULL)
    return trail__random_kernel(buf, n);
  if (p->generation != g || POOL_BYTES - p->used < n) {
    int rc = trail__random_kernel(p->bytes, POOL_BYTES);
    if (rc < 0)
      return rc;
    p->generation = g;
    p->used = 0;
  }
  memcpy(buf, p->bytes + p->used, n);
  p->used += n;
  return 0;
}
