/*
 * Timestamps for the "timestamp" key: RFC 3339, UTC, microseconds, "Z";
 * and the monotonic clock for durations (trail_now_ns()).
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "internal.h"

/*
 * Days since 1970-01-01 to a civil date, for the proleptic Gregorian
 * calendar. This is the well-known era arithmetic (400-year cycles of
 * 146097 days); it avoids gmtime_r(), which may take a lock for the time
 * zone and costs far more than the few divisions below.
 */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int)(yoe + era * 400) + (*m <= 2);
}

static void put2(char *p, unsigned v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
}

/*
 * The seconds part "YYYY-MM-DDTHH:MM:SS" is the same for every event within
 * a second, so each thread keeps the last one it formatted and only writes
 * the six digits of microseconds otherwise.
 */
static TRAIL__TLS int64_t cached_sec = INT64_MIN;
static TRAIL__TLS char cached_prefix[19];

static void format_prefix(char out[19], int64_t sec) {
  int64_t days = sec / 86400;
  int64_t rem = sec % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  int y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  if (y < 0)
    y = 0;
  if (y > 9999)
    y = 9999;
  out[0] = (char)('0' + y / 1000);
  out[1] = (char)('0' + y / 100 % 10);
  out[2] = (char)('0' + y / 10 % 10);
  out[3] = (char)('0' + y % 10);
  out[4] = '-';
  put2(out + 5, m);
  out[7] = '-';
  put2(out + 8, d);
  out[10] = 'T';
  put2(out + 11, (unsigned)(rem / 3600));
  out[13] = ':';
  put2(out + 14, (unsigned)(rem / 60 % 60));
  out[16] = ':';
  put2(out + 17, (unsigned)(rem % 60));
}

/*
 * Formats sec.usec as 2026-11-27T06:22:38.123456Z into out (27 bytes, no
 * NUL). Years outside 0000..9999 are clamped: RFC 3339 has four digits.
 */
void trail__timestamp_at(char out[TRAIL__TIMESTAMP_LEN], int64_t sec,
                         long usec) {
  if (sec != cached_sec) {
    format_prefix(cached_prefix, sec);
    cached_sec = sec;
  }
  memcpy(out, cached_prefix, 19);
  out[19] = '.';
  unsigned u = (unsigned)usec;
  for (int i = 25; i >= 20; i--) {
    out[i] = (char)('0' + u % 10);
    u /= 10;
  }
  out[26] = 'Z';
}

/* The current time (trail__now()), formatted. */
void trail__timestamp(char out[TRAIL__TIMESTAMP_LEN]) {
  int64_t sec;
  long usec;
  trail__now(&sec, &usec);
  trail__timestamp_at(out, sec, usec);
}

TRAIL_API int64_t trail_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
