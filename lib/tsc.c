/*
 * The time stamp counter clock of the async writer (trail__tsc() is inline
 * in internal.h): when it can be used, and how its readings become time.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/*
 * The time stamp counter, for events queued to the async writer: reading
 * it costs a third of clock_gettime(), and a queued event only needs its
 * wall-clock time when the writer encodes it. The writer converts counter
 * values with a map it refreshes before every batch (trail__tsc_map_update),
 * so a converted time agrees with clock_gettime() to a fraction of a
 * microsecond: the records of a batch were stamped moments before the
 * map's newest point, and the slope is measured over 10 ms or more at
 * first, then over a second or more.
 *
 * The counter is used only where the kernel itself keeps time with it (the
 * clock source "tsc"): then it runs at a constant rate, through sleep
 * states, in step on every CPU. Elsewhere trail__tsc_usable() is 0 and the
 * logging thread calls clock_gettime() as in sync mode. A build with
 * -DTRAIL_TSC=OFF (TRAIL_NO_TSC) never uses it.
 */
#if TRAIL__TSC

int trail__tsc_usable(void) {
  static int usable = -1;
  int u = __atomic_load_n(&usable, __ATOMIC_RELAXED);
  if (u >= 0)
    return u;
  u = 0;
  int fd = open("/sys/devices/system/clocksource/clocksource0/"
                "current_clocksource",
                O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char b[16];
    ssize_t n = read(fd, b, sizeof b);
    u = n == 4 && memcmp(b, "tsc\n", 4) == 0;
    close(fd);
  }
  __atomic_store_n(&usable, u, __ATOMIC_RELAXED);
  return u;
}

/*
 * A counter reading and the wall-clock time at the same moment: the
 * closest of PAIR_TRIES reads, since an interrupt between the counter's two
 * readings would put their midpoint off by up to the gap.
 */
#define PAIR_TRIES 3

static void tsc_pair(uint64_t *tsc, int64_t *ns) {
  uint64_t best = UINT64_MAX;
  *tsc = 0;
  *ns = 0;
  for (int i = 0; i < PAIR_TRIES; i++) {
    struct timespec ts;
    uint64_t a = trail__tsc();
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t b = trail__tsc();
    if (b - a < best) {
      best = b - a;
      *tsc = a + (b - a) / 2;
      *ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
  }
}

void trail__tsc_map_init(trail__tsc_map *m) {
  /* A first slope from 200 us of spinning, refined after a second. */
  uint64_t t0, t1;
  int64_t n0, n1;
  tsc_pair(&t0, &n0);
  do
    tsc_pair(&t1, &n1);
  while (n1 - n0 < 200000);
  m->ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
  m->slope_ns = n1 - n0;
  m->anchor_tsc = t0;
  m->anchor_ns = n0;
  m->tsc = t1;
  m->ns = n1;
}

/*
 * Each batch's fresh point; the slope measured again whenever the span
 * from the anchor is longer than the one it was measured over: within the
 * first second over 10 ms, 20 ms, ... (the first 200 us slope is off by a
 * few hundred parts per million, microseconds over a batch), then over a
 * second or more, the anchor moving on each time, so that a rate the
 * kernel's clock is slewed to is followed.
 */
void trail__tsc_map_update(trail__tsc_map *m) {
  tsc_pair(&m->tsc, &m->ns);
  int64_t span = m->ns - m->anchor_ns;
  if (span > m->slope_ns && m->tsc > m->anchor_tsc) {
    m->ns_per_tick = (double)span / (double)(m->tsc - m->anchor_tsc);
    m->slope_ns = span;
    if (span >= 1000000000) {
      m->anchor_tsc = m->tsc;
      m->anchor_ns = m->ns;
    }
  }
}
#else
int trail__tsc_usable(void) { return 0; }
void trail__tsc_map_init(trail__tsc_map *m) { memset(m, 0, sizeof *m); }
void trail__tsc_map_update(trail__tsc_map *m) { (void)m; }
#endif

/* Async-signal-safe: arithmetic only. */
void trail__tsc_to_time(const trail__tsc_map *m, uint64_t tsc, int64_t *sec,
                        long *usec) {
  int64_t d = (int64_t)(tsc - m->tsc);
  int64_t ns = m->ns + (int64_t)((double)d * m->ns_per_tick);
  int64_t s = ns / 1000000000, r = ns % 1000000000;
  if (r < 0) {
    r += 1000000000;
    s--;
  }
  *sec = s;
  *usec = (long)(r / 1000);
}
