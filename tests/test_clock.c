/*
 * Timestamps (lib/clock.c): RFC 3339 UTC with microseconds, checked against
 * the C library's gmtime_r for known instants and a sweep of days.
 */
#define _GNU_SOURCE
#include "support.h"

#include <time.h>

#include "internal.h"

static void check(int64_t sec, long usec, const char *want) {
  char out[TRAIL__TIMESTAMP_LEN + 1];
  trail__timestamp_at(out, sec, usec);
  out[TRAIL__TIMESTAMP_LEN] = '\0';
  assert_string_equal(out, want);
}

static void test_known_instants(void **state) {
  (void)state;
  check(0, 0, "1970-01-01T00:00:00.000000Z");
  check(951782400, 1, "2000-02-29T00:00:00.000001Z");
  check(1795760558, 123456, "2026-11-27T06:22:38.123456Z");
  check(4107542399, 999999, "2100-02-28T23:59:59.999999Z");
  check(-1, 500000, "1969-12-31T23:59:59.500000Z");
  /* the per-thread cache must not reuse another second's text */
  check(1795760558, 1, "2026-11-27T06:22:38.000001Z");
  check(1795760559, 1, "2026-11-27T06:22:39.000001Z");
}

/* Every day from 1970 to 2200 agrees with gmtime_r. */
static void test_sweep_against_gmtime(void **state) {
  (void)state;
  for (int64_t sec = 0; sec < 7258118400; sec += 86400 + 3671) {
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char want[96];
    snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.000042Z",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    check(sec, 42, want);
  }
}

/* The current time is now, within the second gmtime_r sees. */
static void test_now(void **state) {
  (void)state;
  struct timespec before, after;
  char out[TRAIL__TIMESTAMP_LEN + 1];
  clock_gettime(CLOCK_REALTIME, &before);
  trail__timestamp(out);
  clock_gettime(CLOCK_REALTIME, &after);
  out[TRAIL__TIMESTAMP_LEN] = '\0';
  char lo[40], hi[40];
  struct tm tm;
  gmtime_r(&before.tv_sec, &tm);
  strftime(lo, sizeof lo, "%Y-%m-%dT%H:%M:%S", &tm);
  gmtime_r(&after.tv_sec, &tm);
  strftime(hi, sizeof hi, "%Y-%m-%dT%H:%M:%S", &tm);
  assert_true(strncmp(out, lo, 19) >= 0 && strncmp(out, hi, 19) <= 0);
  assert_int_equal(out[19], '.');
  assert_int_equal(out[26], 'Z');
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_instants),
      cmocka_unit_test(test_sweep_against_gmtime),
      cmocka_unit_test(test_now),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
