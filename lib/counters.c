/*
 * Process-wide counters: what was written, what failed, what was cut.
 * Relaxed atomic adds: each is exact, and a snapshot may be a moment old.
 */
#include <string.h>

#include "internal.h"

static struct {
  uint64_t events[TRAIL_LEVEL_COUNT];
  uint64_t bytes;
  uint64_t write_errors;
  uint64_t truncated;
  uint64_t dropped;
  uint64_t high_water;
} counters;

void trail__count_event(trail_level level, size_t bytes) {
  TRAIL__ADD(&counters.events[level], 1);
  TRAIL__ADD(&counters.bytes, (uint64_t)bytes);
}

void trail__count_write_error(void) { TRAIL__ADD(&counters.write_errors, 1); }

void trail__count_truncated(void) { TRAIL__ADD(&counters.truncated, 1); }

void trail__count_dropped(void) { TRAIL__ADD(&counters.dropped, 1); }

void trail__count_high_water(uint64_t bytes) {
  uint64_t cur = TRAIL__LOAD_RELAXED(&counters.high_water);
  while (bytes > cur &&
         !__atomic_compare_exchange_n(&counters.high_water, &cur, bytes, 1,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

/* A snapshot of every counter; callable from any thread at any time. */
TRAIL_API void trail_counters_get(trail_counters *out) {
  if (out == NULL)
    return;
  memset(out, 0, sizeof *out);
  for (int i = 0; i < TRAIL_LEVEL_COUNT; i++)
    out->events[i] = TRAIL__LOAD_RELAXED(&counters.events[i]);
  out->bytes = TRAIL__LOAD_RELAXED(&counters.bytes);
  out->write_errors = TRAIL__LOAD_RELAXED(&counters.write_errors);
  out->truncated = TRAIL__LOAD_RELAXED(&counters.truncated);
  out->dropped = TRAIL__LOAD_RELAXED(&counters.dropped);
  trail__count_high_water(trail__async_high_water());
  out->queue_high_water = TRAIL__LOAD_RELAXED(&counters.high_water);
}

/* Sets every counter to zero (tests, or a process that reports deltas). */
TRAIL_API void trail_counters_reset(void) {
  for (int i = 0; i < TRAIL_LEVEL_COUNT; i++)
    __atomic_store_n(&counters.events[i], 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.bytes, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.write_errors, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.truncated, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.dropped, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counters.high_water, 0, __ATOMIC_RELAXED);
  trail__async_reset_high_water();
}
