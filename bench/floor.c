/*
 * The floor: what a hand-written C program costs for the same line, so that
 * every logger can be read against it. "floor MODE N PATH [THREADS]".
 *
 * Per event it does the work any correct encoder must do and nothing more:
 * a fresh clock reading formatted as RFC 3339 (the date part cached per
 * second), every per-event string quoted and scanned for characters that
 * need escaping, the integer and the double formatted, the line assembled in
 * a stack buffer in trail's key order. What is bound once (the logger name,
 * the service) is pre-encoded, as a logger would.
 *
 * MODE sync:  one write(2) per line, as a synchronous logger does.
 * MODE async: a 64 KiB buffer per thread, written out when the next line
 *             does not fit (whole lines only, so threads never interleave).
 */
#include <math.h>
#include <time.h>

#include "workload.h"

#define FLOOR_BUF_SIZE (64 * 1024)
#define FLOOR_LINE_MAX 1024

typedef struct floor_out {
  int fd;
  int buffered;
} floor_out;

typedef struct floor_clock {
  time_t sec;
  char prefix[20]; /* "2026-11-27T06:34:40." */
} floor_clock;

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* A JSON string: quoted, with '"', '\\' and control characters escaped. */
static char *put_str(char *p, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t start = 0;
  *p++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    p = put(p, s + start, i - start);
    *p++ = '\\';
    switch (c) {
    case '"':
    case '\\':
      *p++ = (char)c;
      break;
    case '\n':
      *p++ = 'n';
      break;
    case '\r':
      *p++ = 'r';
      break;
    case '\t':
      *p++ = 't';
      break;
    default:
      p = PUT_LIT(p, "u00");
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
    }
    start = i + 1;
  }
  p = put(p, s + start, n - start);
  *p++ = '"';
  return p;
}

static char *put_u64(char *p, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0)
    *p++ = tmp[--n];
  return p;
}

static char *put_i64(char *p, int64_t v) {
  if (v < 0) {
    *p++ = '-';
    return put_u64(p, 0 - (uint64_t)v);
  }
  return put_u64(p, (uint64_t)v);
}

/*
 * The shortest decimal that reads back to x. In the range where JSON readers
 * and Python print fixed notation it tries 0, 1, 2, ... decimals: q / 10^k
 * with q and 10^k exact doubles is correctly rounded, as strtod of the text
 * is, so the first k whose quotient equals x gives the shortest text.
 * Elsewhere %.17g, which always reads back.
 */
static char *put_double(char *p, double x) {
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                 1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
  double a = fabs(x);
  if (a >= 1e-4 && a < 1e15) {
    for (int k = 0; k < 18; k++) {
      double m = a * pow10[k];
      if (m >= 9007199254740992.0)
        break;
      uint64_t q = (uint64_t)(m + 0.5);
      if ((double)q / pow10[k] != a)
        continue;
      char digits[24];
      char *d = put_u64(digits, q);
      size_t nd = (size_t)(d - digits);
      if (x < 0)
        *p++ = '-';
      if (nd <= (size_t)k) {
        p = PUT_LIT(p, "0.");
        for (size_t z = nd; z < (size_t)k; z++)
          *p++ = '0';
        return put(p, digits, nd);
      }
      p = put(p, digits, nd - (size_t)k);
      if (k > 0) {
        *p++ = '.';
        p = put(p, digits + nd - (size_t)k, (size_t)k);
      }
      return p;
    }
  }
  if (!isfinite(x))
    return x != x ? PUT_LIT(p, "\"NaN\"")
                  : (x > 0 ? PUT_LIT(p, "\"+Inf\"") : PUT_LIT(p, "\"-Inf\""));
  return p + snprintf(p, 32, "%.17g", x);
}

static void put2(char *p, int v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
}

/* "2026-11-27T06:34:40.953948Z": the part up to the seconds is cached. */
static char *put_timestamp(char *p, floor_clock *c) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != c->sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int y = tm.tm_year + 1900;
    put2(c->prefix, y / 100);
    put2(c->prefix + 2, y % 100);
    c->prefix[4] = '-';
    put2(c->prefix + 5, tm.tm_mon + 1);
    c->prefix[7] = '-';
    put2(c->prefix + 8, tm.tm_mday);
    c->prefix[10] = 'T';
    put2(c->prefix + 11, tm.tm_hour);
    c->prefix[13] = ':';
    put2(c->prefix + 14, tm.tm_min);
    c->prefix[16] = ':';
    put2(c->prefix + 17, tm.tm_sec);
    c->prefix[19] = '.';
    c->sec = ts.tv_sec;
  }
  p = put(p, c->prefix, sizeof c->prefix);
  unsigned us = (unsigned)(ts.tv_nsec / 1000);
  for (int k = 5; k >= 0; k--) {
    p[k] = (char)('0' + us % 10);
    us /= 10;
  }
  p[6] = 'Z';
  return p + 7;
}

static void flush_or_die(int fd, const char *buf, size_t len) {
  if (wl_write_all(fd, buf, len) != 0) {
    perror("floor: write");
    exit(1);
  }
}

static void log_events(wl_thread *t) {
  const floor_out *out = t->user;
  floor_clock clock = {.sec = -1};
  /* What the logger binds once: its name, the service. */
  static const char head[] = "\",\"level\":\"info\",\"logger\":\"orders\"";
  static const char service[] = ",\"service\":\"orders-api\"";
  /* The per-event values, as a caller holds them. */
  const char *request_id = WL_REQUEST_ID, *user_id = WL_USER_ID;
  const char *trace_id = WL_TRACE_ID, *span_id = WL_SPAN_ID;
  const char *method = WL_METHOD, *path = WL_PATH;
  size_t request_id_len = strlen(request_id), user_id_len = strlen(user_id);
  size_t trace_id_len = strlen(trace_id), span_id_len = strlen(span_id);
  size_t method_len = strlen(method), path_len = strlen(path);
  char *buf = NULL;
  size_t used = 0;
  if (out->buffered && (buf = malloc(FLOOR_BUF_SIZE)) == NULL) {
    perror("floor: malloc");
    exit(1);
  }

  for (uint64_t i = 0; i < t->count; i++) {
    char line[FLOOR_LINE_MAX];
    char *p = line;
    p = PUT_LIT(p, "{\"timestamp\":\"");
    p = put_timestamp(p, &clock);
    p = put(p, head, sizeof head - 1);
    p = PUT_LIT(p, ",\"message\":");
    p = put_str(p, WL_MESSAGE, sizeof WL_MESSAGE - 1);
    p = put(p, service, sizeof service - 1);
    p = PUT_LIT(p, ",\"request_id\":");
    p = put_str(p, request_id, request_id_len);
    p = PUT_LIT(p, ",\"user_id\":");
    p = put_str(p, user_id, user_id_len);
    p = PUT_LIT(p, ",\"trace_id\":");
    p = put_str(p, trace_id, trace_id_len);
    p = PUT_LIT(p, ",\"span_id\":");
    p = put_str(p, span_id, span_id_len);
    p = PUT_LIT(p, ",\"method\":");
    p = put_str(p, method, method_len);
    p = PUT_LIT(p, ",\"path\":");
    p = put_str(p, path, path_len);
    p = PUT_LIT(p, ",\"status\":");
    p = put_i64(p, WL_STATUS);
    p = PUT_LIT(p, ",\"duration_ms\":");
    p = put_double(p, 12.5 + (i % 100) / 100.0);
    p = PUT_LIT(p, "}\n");
    size_t len = (size_t)(p - line);

    if (!out->buffered) {
      flush_or_die(out->fd, line, len);
      continue;
    }
    if (used + len > FLOOR_BUF_SIZE) {
      flush_or_die(out->fd, buf, used);
      used = 0;
    }
    memcpy(buf + used, line, len);
    used += len;
  }
  if (used > 0)
    flush_or_die(out->fd, buf, used);
  free(buf);
}

int main(int argc, char **argv) {
  wl_args a;
  wl_parse_args(argc, argv, "sync|async", &a);
  floor_out out = {.fd = wl_open(&a), .buffered = strcmp(a.mode, "async") == 0};
  wl_run(&a, log_events, &out);
  if (close(out.fd) != 0) {
    perror("floor: close");
    return 1;
  }
  return 0;
}
