/*
 * The benchmark workload shared by the C programs in bench/: the event's
 * fixed values, the command line "PROGRAM MODE N PATH [THREADS]", the output
 * file and the threads. docs/performance.md describes the workload; every
 * program in the comparison (C, C++ and Go) does the same.
 *
 * Header-only, so that each program stays one compiler invocation away from
 * being built by hand: cc -O2 -Ibench bench/floor.c -o floor -pthread -lm.
 */
#ifndef TRAIL_BENCH_WORKLOAD_H
#define TRAIL_BENCH_WORKLOAD_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define WL_SERVICE "orders-api"
#define WL_LOGGER "orders"
#define WL_LEVEL "info"
#define WL_MESSAGE "request completed"
#define WL_REQUEST_ID "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"
#define WL_USER_ID "user-4711"
#define WL_TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define WL_SPAN_ID "00f067aa0ba902b7"
#define WL_METHOD "GET"
#define WL_PATH "/api/orders/42"
#define WL_STATUS 200

/* duration_ms of a thread's i-th event: 12.5, 12.51, ..., 13.49, 12.5, ... */
static inline double wl_duration(uint64_t i) {
  return 12.5 + (double)(i % 100) / 100.0;
}

typedef struct wl_args {
  const char *prog;
  const char *mode; /* "sync", "async", or a program-specific mode */
  uint64_t n;       /* events in total */
  const char *path; /* output file */
  unsigned threads; /* >= 1; each logs n / threads events */
} wl_args;

static inline void wl_usage(const char *prog, const char *modes) {
  fprintf(stderr,
          "usage: %s MODE N PATH [THREADS]\n"
          "  MODE     %s\n"
          "  N        events in total (each thread logs N / THREADS)\n"
          "  PATH     output file, truncated first (or /dev/null)\n"
          "  THREADS  logging threads, default 1\n",
          prog, modes);
}

static inline int wl_parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (s[0] < '0' || s[0] > '9')
    return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return -1;
  *out = (uint64_t)v;
  return 0;
}

/*
 * Parses the command line or exits with status 2. modes is the
 * '|'-separated list of accepted modes, e.g. "sync|async".
 */
static inline void wl_parse_args(int argc, char **argv, const char *modes,
                                 wl_args *a) {
  const char *prog = argc > 0 ? argv[0] : "bench";
  uint64_t threads = 1;
  if (argc < 4 || argc > 5) {
    wl_usage(prog, modes);
    exit(2);
  }
  a->prog = prog;
  a->mode = argv[1];
  a->path = argv[3];
  size_t len = strlen(a->mode);
  const char *m = modes;
  int found = 0;
  while (*m != '\0' && !found) {
    size_t mlen = strcspn(m, "|");
    found = mlen == len && len > 0 && memcmp(m, a->mode, len) == 0;
    m += mlen + (m[mlen] == '|');
  }
  if (!found) {
    fprintf(stderr, "%s: unknown mode '%s' (accepted: %s)\n", prog, a->mode,
            modes);
    exit(2);
  }
  if (wl_parse_u64(argv[2], &a->n) != 0) {
    fprintf(stderr, "%s: N must be a non-negative integer, not '%s'\n", prog,
            argv[2]);
    exit(2);
  }
  if (argc == 5 &&
      (wl_parse_u64(argv[4], &threads) != 0 || threads < 1 || threads > 256)) {
    fprintf(stderr, "%s: THREADS must be 1 to 256, not '%s'\n", prog, argv[4]);
    exit(2);
  }
  a->threads = (unsigned)threads;
  if (a->path[0] == '\0') {
    fprintf(stderr, "%s: PATH is empty\n", prog);
    exit(2);
  }
}

static inline int wl_is_dev_null(const char *path) {
  return strcmp(path, "/dev/null") == 0;
}

/*
 * Opens the output the way every program in the comparison does:
 * O_WRONLY|O_CREAT|O_TRUNC|O_APPEND. Exits with status 1 on failure.
 */
static inline int wl_open(const wl_args *a) {
  int fd;
  do
    fd = open(a->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
              0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    fprintf(stderr, "%s: cannot open %s: %s\n", a->prog, a->path,
            strerror(errno));
    exit(1);
  }
  return fd;
}

/*
 * Empties PATH for a program whose logger opens the file itself (with
 * O_APPEND but without O_TRUNC). /dev/null is left alone.
 */
static inline void wl_truncate(const wl_args *a) {
  if (!wl_is_dev_null(a->path))
    close(wl_open(a));
}

/* Writes all of buf, retrying on EINTR and short writes; -1 on error. */
static inline int wl_write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* ---- threads ------------------------------------------------------------ */

typedef struct wl_thread {
  unsigned index; /* 0 .. threads-1 */
  uint64_t count; /* events this thread logs, its i from 0 */
  void *user;
} wl_thread;

typedef void (*wl_thread_fn)(wl_thread *t);

typedef struct wl_start {
  wl_thread t;
  wl_thread_fn fn;
} wl_start;

static inline void *wl_thread_main(void *arg) {
  wl_start *s = arg;
  s->fn(&s->t);
  return NULL;
}

/*
 * Runs fn once per thread, each with count = n / threads. One thread runs on
 * the calling thread, as a single-threaded service would log.
 */
static inline void wl_run(const wl_args *a, wl_thread_fn fn, void *user) {
  uint64_t per = a->n / a->threads;
  if (a->threads == 1) {
    wl_thread t = {.index = 0, .count = per, .user = user};
    fn(&t);
    return;
  }
  wl_start *s = calloc(a->threads, sizeof *s);
  pthread_t *tid = calloc(a->threads, sizeof *tid);
  if (s == NULL || tid == NULL) {
    fprintf(stderr, "%s: out of memory\n", a->prog);
    exit(1);
  }
  for (unsigned k = 0; k < a->threads; k++) {
    s[k].t = (wl_thread){.index = k, .count = per, .user = user};
    s[k].fn = fn;
    int rc = pthread_create(&tid[k], NULL, wl_thread_main, &s[k]);
    if (rc != 0) {
      fprintf(stderr, "%s: pthread_create: %s\n", a->prog, strerror(rc));
      exit(1);
    }
  }
  for (unsigned k = 0; k < a->threads; k++)
    pthread_join(tid[k], NULL);
  free(s);
  free(tid);
}

#endif /* TRAIL_BENCH_WORKLOAD_H */
