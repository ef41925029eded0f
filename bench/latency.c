/*
 * Per-call latency of trail's logging call, as the calling thread sees it.
 *
 *   trail_latency [-n CALLS] [-w WARMUP] [-o PATH] [MODE ...]
 *
 * MODE sync:     the workload's trail_info() call, synchronous, to PATH
 * MODE async:    the same with TRAIL_ASYNC=1 set before trail_init()
 * MODE disabled: the same call as trail_debug() with the level at info
 * MODE buffered: that trail_debug() in a context that buffers debug lines
 *                (trail_ctx_buffer, 64 KiB): the line is kept for its
 *                request, which then ends well and drops it. Every 20
 *                calls the request ends and a new one begins, untimed
 *                (trail_ctx_buffer_end, trail_ctx_buffer); the first line
 *                of each request, which makes its ring, is timed.
 * MODE unbuffered: that trail_debug() once some other context has
 *                buffered (the inline level check lets it through) in a
 *                context that does not: the call drops it
 *
 * Default: all five, 1,000,000 calls each after 10,000 warm-up calls, PATH
 * /dev/null. Each mode runs in its own child process (a fresh trail_init()
 * with its own environment). Every call is timed on its own: the time
 * stamp counter on x86-64 (calibrated against CLOCK_MONOTONIC), elsewhere
 * clock_gettime(CLOCK_MONOTONIC). The timer's own cost, an empty timed
 * pair, is printed first: it is included in every figure below it.
 *
 * Prints one line per mode on stdout: p50, p99, p99.9, max and mean in ns.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <trail.h>
#include <unistd.h>

#include "workload.h"

/* ---- the timer ---------------------------------------------------------- */

static double ns_per_tick = 1.0;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TIMER_NAME "rdtsc"
/* lfence first: the earlier instructions have finished when it reads. */
static inline uint64_t ticks(void) {
  __builtin_ia32_lfence();
  uint64_t t = __builtin_ia32_rdtsc();
  __builtin_ia32_lfence();
  return t;
}

static void timer_calibrate(void) {
  uint64_t n0 = mono_ns(), t0 = ticks();
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL);
  uint64_t n1 = mono_ns(), t1 = ticks();
  ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
}
#else
#define TIMER_NAME "clock_gettime"
static inline uint64_t ticks(void) { return mono_ns(); }
static void timer_calibrate(void) { ns_per_tick = 1.0; }
#endif

/* ---- statistics ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct stats {
  double p50, p99, p999, max, mean;
} stats;

/* Nearest-rank percentiles of d[0..n), in ns. Sorts d. */
static stats summarize(uint64_t *d, size_t n) {
  stats s = {0, 0, 0, 0, 0};
  if (n == 0)
    return s;
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += (double)d[i];
  qsort(d, n, sizeof *d, cmp_u64);
#define RANK(p) d[(size_t)ceil((p) * (double)n) - 1]
  s.p50 = (double)RANK(0.50) * ns_per_tick;
  s.p99 = (double)RANK(0.99) * ns_per_tick;
  s.p999 = (double)RANK(0.999) * ns_per_tick;
#undef RANK
  s.max = (double)d[n - 1] * ns_per_tick;
  s.mean = sum / (double)n * ns_per_tick;
  return s;
}

static void print_row(const char *name, size_t n, stats s, const char *note) {
  printf("%-10s %9zu %8.0f %8.0f %8.0f %10.0f %8.0f%s%s\n", name, n, s.p50,
         s.p99, s.p999, s.max, s.mean, note[0] ? "  " : "", note);
  fflush(stdout);
}

/* ---- the modes ----------------------------------------------------------- */

typedef struct options {
  size_t calls;
  size_t warmup;
  const char *path;
} options;

static size_t threads_now(void) {
  DIR *d = opendir("/proc/self/task");
  size_t n = 0;
  if (d == NULL)
    return 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

#define EVENT(macro, lg, i)                                                    \
  macro(lg, "request completed", TRAIL_STR("method", "GET"),                   \
        TRAIL_STR("path", "/api/orders/42"), TRAIL_INT("status", 200),         \
        TRAIL_DOUBLE("duration_ms", 12.5 + ((i) % 100) / 100.0))

/* A buffering request's lines: then it ends, and the next one begins. */
#define BUFFER_LINES 20
#define BUFFER_BYTES (64 * 1024)

/* MODE buffered: the calls, each request of BUFFER_LINES. */
static void time_buffered(trail_logger *lg, trail_ctx *ctx, uint64_t *d,
                          size_t calls) {
  for (size_t i = 0; i < calls; i++) {
    if (i % BUFFER_LINES == 0) {
      trail_ctx_buffer_end(ctx);
      trail_ctx_buffer(ctx, TRAIL_LEVEL_DEBUG, BUFFER_BYTES);
    }
    uint64_t t0 = ticks();
    EVENT(trail_debug, lg, i);
    d[i] = ticks() - t0;
  }
  trail_ctx_buffer_end(ctx);
}

static void time_calls(const char *mode, trail_logger *lg, trail_ctx *ctx,
                       uint64_t *d, size_t calls) {
  if (strcmp(mode, "buffered") == 0) {
    time_buffered(lg, ctx, d, calls);
  } else if (strcmp(mode, "sync") == 0 || strcmp(mode, "async") == 0) {
    for (size_t i = 0; i < calls; i++) {
      uint64_t t0 = ticks();
      EVENT(trail_info, lg, i);
      d[i] = ticks() - t0;
    }
  } else {
    for (size_t i = 0; i < calls; i++) {
      uint64_t t0 = ticks();
      EVENT(trail_debug, lg, i);
      d[i] = ticks() - t0;
    }
  }
}

static int run_mode(const char *mode, const options *o) {
  int async = strcmp(mode, "async") == 0;
  if (async)
    setenv("TRAIL_ASYNC", "1", 1);
  else
    unsetenv("TRAIL_ASYNC");
  unsetenv("TRAIL_LEVEL");
  if (trail_init(WL_SERVICE) != 0)
    return 1;
  trail_config_error err;
  if (trail_output_set(o->path, &err) != 0) {
    fprintf(stderr, "trail_latency: %s: %s\n", err.source, err.text);
    return 1;
  }
  trail_logger *lg = trail_logger_get(WL_LOGGER);
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  if (lg == NULL || trail_ctx_set_request_id(&ctx, WL_REQUEST_ID) != 0 ||
      trail_ctx_set_user_id(&ctx, WL_USER_ID) != 0 ||
      trail_ctx_set_trace_id(&ctx, WL_TRACE_ID) != 0 ||
      trail_ctx_set_span_id(&ctx, WL_SPAN_ID) != 0)
    return 1;
  if (strcmp(mode, "unbuffered") == 0) { /* another context buffers */
    trail_ctx other;
    trail_ctx_init(&other);
    trail_ctx_buffer(&other, TRAIL_LEVEL_DEBUG, BUFFER_BYTES);
    trail_ctx_buffer_end(&other);
  }
  trail_ctx *prev = trail_ctx_enter(&ctx);
  uint64_t *d =
      malloc((o->calls > o->warmup ? o->calls : o->warmup + 1) * sizeof *d);
  if (d == NULL)
    return 1;

  time_calls(mode, lg, &ctx, d, o->warmup);
  /* With the async writer running, the process has a thread of trail's. */
  const char *note = "";
  if (async && threads_now() <= 1)
    note = "async writer not running: TRAIL_ASYNC ignored, this is sync";
  time_calls(mode, lg, &ctx, d, o->calls);

  trail_ctx_leave(prev);
  trail_shutdown();
  print_row(mode, o->calls, summarize(d, o->calls), note);
  free(d);
  return 0;
}

/* The timer alone: what an empty timed pair costs. */
static void run_timer(const options *o) {
  uint64_t *d = malloc((o->calls ? o->calls : 1) * sizeof *d);
  if (d == NULL)
    return;
  for (size_t i = 0; i < o->calls; i++) {
    uint64_t t0 = ticks();
    d[i] = ticks() - t0;
  }
  print_row("(timer)", o->calls, summarize(d, o->calls),
            "an empty timed pair: included in every row");
  free(d);
}

static _Noreturn void usage(void) {
  fprintf(stderr, "usage: trail_latency [-n CALLS] [-w WARMUP] [-o PATH] "
                  "[sync|async|disabled|buffered|unbuffered ...]\n");
  exit(2);
}

static size_t parse_count(const char *s) {
  uint64_t v = 0;
  if (s == NULL || wl_parse_u64(s, &v) != 0 || v > ((uint64_t)1 << 32))
    usage();
  return (size_t)v;
}

int main(int argc, char **argv) {
  options o = {.calls = 1000000, .warmup = 10000, .path = "/dev/null"};
  int opt;
  while ((opt = getopt(argc, argv, "n:w:o:h")) != -1) {
    switch (opt) {
    case 'n':
      o.calls = parse_count(optarg);
      break;
    case 'w':
      o.warmup = parse_count(optarg);
      break;
    case 'o':
      o.path = optarg;
      break;
    default:
      usage();
    }
  }
  static const char *const all[] = {"sync", "async", "disabled", "buffered",
                                    "unbuffered"};
  const size_t nall = sizeof all / sizeof all[0];
  const char *const *modes = all;
  size_t nmodes = nall;
  if (optind < argc) {
    modes = (const char *const *)(argv + optind);
    nmodes = (size_t)(argc - optind);
  }
  for (size_t k = 0; k < nmodes; k++) {
    size_t j = 0;
    while (j < nall && strcmp(modes[k], all[j]) != 0)
      j++;
    if (j == nall)
      usage();
  }

  timer_calibrate();
  printf("# trail_latency: %zu calls after %zu warm-up calls, output %s, "
         "timer %s (%.3f ns/tick)\n",
         o.calls, o.warmup, o.path, TIMER_NAME, ns_per_tick);
  printf("%-10s %9s %8s %8s %8s %10s %8s\n", "mode", "calls", "p50_ns",
         "p99_ns", "p99.9_ns", "max_ns", "mean_ns");
  run_timer(&o);
  int status = 0;
  for (size_t k = 0; k < nmodes; k++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("trail_latency: fork");
      return 1;
    }
    if (pid == 0)
      _exit(run_mode(modes[k], &o));
    int ws;
    if (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
      fprintf(stderr, "trail_latency: mode %s failed\n", modes[k]);
      status = 1;
    }
  }
  return status;
}
