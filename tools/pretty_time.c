/*
 * Times. A line's time is an RFC 3339 text (trail, zerolog, logrus, slog,
 * zap's ISO 8601 encoder) or a number since 1970 (pino and bunyan write
 * milliseconds, zap seconds as a real). Both become a pretty_time, which
 * orders the lines of several files, is compared with --since and --until,
 * and is shown in UTC or, with --local, in the time zone of TZ.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pretty.h"

/* 10000-01-01T00:00:00Z: the first moment after the years shown. */
#define YEAR_10000 253402300800LL
/* 0000-01-01T00:00:00Z. */
#define YEAR_0 (-62167219200LL)
#define NS_PER_S 1000000000L

/* Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's
   days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (long long)doe - 719468;
}

/* The inverse of days_from_civil(). */
static void civil_from_days(long long z, long long *y, unsigned *m,
                            unsigned *d) {
  z += 719468;
  long long era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (long long)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly `width` decimal digits at *p into *v and advances *p. */
static bool digits(const char **p, const char *end, int width, unsigned *v) {
  *v = 0;
  for (int i = 0; i < width; i++, (*p)++) {
    if (*p >= end || **p < '0' || **p > '9')
      return false;
    *v = *v * 10 + (unsigned)(**p - '0');
  }
  return true;
}

/* Whether *p is at the character c, which it then passes. */
static bool expect(const char **p, const char *end, char c) {
  if (*p >= end || **p != c)
    return false;
  (*p)++;
  return true;
}

/* Reads the fraction after a '.', any number of digits, as nanoseconds (the
   digits beyond the ninth are cut). */
static bool fraction(const char **p, const char *end, unsigned *ns) {
  int n_digits = 0;
  *ns = 0;
  for (; *p < end && **p >= '0' && **p <= '9'; (*p)++, n_digits++) {
    if (n_digits < 9)
      *ns = *ns * 10 + (unsigned)(**p - '0');
  }
  for (int i = n_digits; i < 9; i++)
    *ns *= 10;
  return n_digits > 0;
}

/* Reads the offset at the end: "Z", "+hh:mm" or "+hhmm" (zap's development
   encoder), as seconds east of UTC. */
static bool offset(const char **p, const char *end, long long *east) {
  unsigned oh = 0, om = 0;
  if (*p < end && (**p == 'Z' || **p == 'z')) {
    (*p)++;
    *east = 0;
    return true;
  }
  if (*p >= end || (**p != '+' && **p != '-'))
    return false;
  int sign = **p == '+' ? 1 : -1;
  (*p)++;
  if (!digits(p, end, 2, &oh))
    return false;
  if (*p < end && **p == ':')
    (*p)++;
  if (!digits(p, end, 2, &om) || oh > 23 || om > 59)
    return false;
  *east = sign * ((long long)oh * 3600 + (long long)om * 60);
  return true;
}

/*
 * Reads an RFC 3339 timestamp: "2026-11-27T06:22:38.123456Z" as trail
 * writes it, with 't' or ' ' for 'T', any number of fractional digits, and
 * "Z", "+hh:mm" or "+hhmm" at the end. False when s is not one, or when it
 * falls outside the years 0000 to 9999 once taken to UTC.
 */
bool pretty_time_parse(const char *s, size_t n, pretty_time *t) {
  const char *p = s, *end = s + n;
  unsigned y, mo, d, h, mi, sec, ns = 0;
  long long east = 0;

  if (!digits(&p, end, 4, &y) || !expect(&p, end, '-') ||
      !digits(&p, end, 2, &mo) || !expect(&p, end, '-') ||
      !digits(&p, end, 2, &d) || p >= end ||
      (*p != 'T' && *p != 't' && *p != ' '))
    return false;
  p++;
  if (!digits(&p, end, 2, &h) || !expect(&p, end, ':') ||
      !digits(&p, end, 2, &mi) || !expect(&p, end, ':') ||
      !digits(&p, end, 2, &sec))
    return false;
  if (p < end && *p == '.' && (p++, !fraction(&p, end, &ns)))
    return false;
  if (!offset(&p, end, &east) || p != end || mo < 1 || mo > 12 || d < 1 ||
      d > 31 || h > 23 || mi > 59 || sec > 60)
    return false;
  long long v = days_from_civil(y, mo, d) * 86400 + (long long)h * 3600 +
                (long long)mi * 60 + sec - east;
  if (v < YEAR_0 || v >= YEAR_10000)
    return false;
  t->sec = v;
  t->nsec = (int32_t)ns;
  return true;
}

/* An integer count since 1970 as a time: below 10^11 it counts seconds,
   below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds. */
static bool time_from_integer(long long v, pretty_time *t) {
  long long per_s = v < 100000000000LL         ? 1
                    : v < 100000000000000LL    ? 1000
                    : v < 100000000000000000LL ? 1000000
                                               : NS_PER_S;
  if (v < 0 || v / per_s >= YEAR_10000)
    return false;
  t->sec = v / per_s;
  t->nsec = (int32_t)(v % per_s * (NS_PER_S / per_s));
  return true;
}

/* A real count since 1970, of the same units by magnitude, as a time to the
   microsecond (a double holds no more of a time of today in seconds). */
static bool time_from_real(double v, pretty_time *t) {
  if (!isfinite(v) || v < 0)
    return false;
  double per_s = v < 1e11 ? 1 : v < 1e14 ? 1e3 : v < 1e17 ? 1e6 : 1e9;
  double s = v / per_s;
  if (s >= (double)YEAR_10000)
    return false;
  double whole = floor(s);
  long long us = llround((s - whole) * 1e6);
  t->sec = (int64_t)whole;
  if (us >= 1000000) {
    t->sec++;
    us = 0;
  }
  t->nsec = (int32_t)(us * 1000);
  return true;
}

/* Reads a JSON number as a time since 1970 (see above for its unit). False
   for any other value, a negative number, or a time after the year 9999. */
bool pretty_time_number(json_t *v, pretty_time *t) {
  if (json_is_integer(v))
    return time_from_integer(json_integer_value(v), t);
  if (json_is_real(v))
    return time_from_real(json_real_value(v), t);
  return false;
}

/*
 * Reads the value of --since or --until: an RFC 3339 timestamp, or a
 * duration before `now`: a whole number followed by s, m, h or d (seconds,
 * minutes, hours, days), "90s", "10m", "2h", "7d".
 */
bool pretty_time_arg(const char *s, pretty_time now, pretty_time *t) {
  size_t n = strlen(s);
  if (pretty_time_parse(s, n, t))
    return true;
  if (n < 2 || n > 10 || s[0] < '0' || s[0] > '9')
    return false;
  char *end;
  long long count = strtoll(s, &end, 10);
  long long unit;
  switch (*end) {
  case 's':
    unit = 1;
    break;
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86400;
    break;
  default:
    return false;
  }
  if (end[1] != '\0' || count > (now.sec - YEAR_0) / unit)
    return false;
  t->sec = now.sec - count * unit;
  t->nsec = now.nsec;
  return true;
}

/* Negative, zero or positive as a is before, at or after b. */
int pretty_time_cmp(pretty_time a, pretty_time b) {
  if (a.sec != b.sec)
    return a.sec < b.sec ? -1 : 1;
  if (a.nsec != b.nsec)
    return a.nsec < b.nsec ? -1 : 1;
  return 0;
}

/* The broken-down UTC time of t, computed without time_t. */
static void utc_parts(pretty_time t, struct tm *tm) {
  long long days = t.sec >= 0 ? t.sec / 86400 : (t.sec - 86399) / 86400;
  long long secs = t.sec - days * 86400, y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  memset(tm, 0, sizeof *tm);
  tm->tm_year = (int)(y - 1900);
  tm->tm_mon = (int)m - 1;
  tm->tm_mday = (int)d;
  tm->tm_hour = (int)(secs / 3600);
  tm->tm_min = (int)(secs / 60 % 60);
  tm->tm_sec = (int)(secs % 60);
}

/*
 * Writes t as a date, "YYYY-MM-DD", and a time of day, "HH:MM:SS.mmm", in
 * UTC or, when `local`, in the local time zone (TZ, as localtime_r() reads
 * it). The milliseconds are cut, not rounded, so that a time never moves
 * into the next second.
 */
void pretty_time_format(pretty_time t, bool local, char date[PRETTY_TIME_TEXT],
                        char time[PRETTY_TIME_TEXT]) {
  struct tm tm;
  time_t tt = (time_t)t.sec;
  if (!local || localtime_r(&tt, &tm) == NULL)
    utc_parts(t, &tm);
  snprintf(date, PRETTY_TIME_TEXT, "%04d-%02d-%02d", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday);
  snprintf(time, PRETTY_TIME_TEXT, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
           tm.tm_sec, (int)(t.nsec / 1000000));
}
