/*
 * One input line in, at most one output line out. A line that holds a JSON
 * object is an event: it is read with jansson, checked against the filters
 * and written as
 *
 *   [DATE ]TIME LEVEL logger  message  key=value ... rid=.. trace=.. user=..
 *
 * Any other line (text, a JSON array or number, broken JSON) is not an
 * event: it is written as it came, made safe for a terminal, and no filter
 * applies to it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "pretty.h"

#define SGR_RESET "\033[0m"
#define SGR_DIM "\033[2m"
#define SGR_LOGGER "\033[36m" /* cyan */
#define SGR_MARKER "\033[33m" /* yellow */
#define SHORT_ID 8            /* bytes of request_id and trace_id shown */
#define MAX_QUOTED_NUMBERS ((size_t)64) /* numbers too big for jansson */

static const char *const level_names[] = {"trace", "debug", "info",
                                          "warn",  "error", "fatal"};
static const char *const level_labels[] = {"TRACE", "DEBUG", "INFO",
                                           "WARN",  "ERROR", "FATAL"};
static const char *const level_colors[] = {
    "\033[2m",    /* trace: dim */
    "\033[2m",    /* debug: dim */
    "\033[32m",   /* info: green */
    "\033[33m",   /* warn: yellow */
    "\033[31m",   /* error: red */
    "\033[1;35m", /* fatal: bold magenta */
};

/*
 * The level named by the n bytes at s, compared without regard to case, with
 * "warning" taken for "warn" as trail's own TRAIL_LEVEL does;
 * PRETTY_LEVEL_NONE for anything else.
 */
int pretty_level_parse(const char *s, size_t n) {
  for (int i = PRETTY_LEVEL_TRACE; i <= PRETTY_LEVEL_FATAL; i++) {
    if (strlen(level_names[i]) == n && strncasecmp(s, level_names[i], n) == 0)
      return i;
  }
  if (n == 7 && strncasecmp(s, "warning", 7) == 0)
    return PRETTY_LEVEL_WARN;
  return PRETTY_LEVEL_NONE;
}

/* Frees what the state allocated (not the state itself). */
void pretty_state_free(pretty_state *st) {
  free(st->scratch);
  st->scratch = NULL;
  st->scratch_cap = 0;
}

/* ---- time ---------------------------------------------------------------- */

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

/*
 * Reads an RFC 3339 timestamp (trail writes "2026-11-27T06:22:38.123456Z";
 * other offsets and any number of fractional digits are read too) and
 * writes its UTC date as "YYYY-MM-DD" and time as "HH:MM:SS.mmm". The
 * milliseconds are cut, not rounded, so that a time never moves into the
 * next second. False when s is not such a timestamp.
 */
static bool parse_time(const char *s, size_t n, char date[32], char time[32]) {
  const char *p = s, *end = s + n;
  unsigned y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0;
  int sign = 0;

  if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' ||
      !digits(&p, end, 2, &mo) || p >= end || *p++ != '-' ||
      !digits(&p, end, 2, &d) || p >= end ||
      (*p != 'T' && *p != 't' && *p != ' '))
    return false;
  p++;
  if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' ||
      !digits(&p, end, 2, &mi) || p >= end || *p++ != ':' ||
      !digits(&p, end, 2, &sec))
    return false;
  if (p < end && *p == '.') {
    int n_digits = 0;
    for (p++; p < end && *p >= '0' && *p <= '9'; p++, n_digits++) {
      if (n_digits < 3)
        ms = ms * 10 + (unsigned)(*p - '0');
    }
    if (n_digits == 0)
      return false;
    for (; n_digits < 3; n_digits++)
      ms *= 10;
  }
  if (p < end && (*p == 'Z' || *p == 'z')) {
    p++;
  } else if (p < end && (*p == '+' || *p == '-')) {
    sign = *p++ == '+' ? 1 : -1;
    if (!digits(&p, end, 2, &oh) || p >= end || *p++ != ':' ||
        !digits(&p, end, 2, &om))
      return false;
  } else {
    return false;
  }
  if (p != end || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
      sec > 60 || oh > 23 || om > 59)
    return false;

  long long t = days_from_civil(y, mo, d) * 86400 + (long long)h * 3600 +
                (long long)mi * 60 + sec -
                sign * ((long long)oh * 3600 + (long long)om * 60);
  long long days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  long long secs = t - days * 86400, yy;
  unsigned mm, dd;
  civil_from_days(days, &yy, &mm, &dd);
  if (yy < 0 || yy > 9999)
    return false;
  snprintf(date, 32, "%04d-%02u-%02u", (int)yy, mm, dd);
  snprintf(time, 32, "%02d:%02d:%02d.%03u", (int)(secs / 3600),
           (int)(secs / 60 % 60), (int)(secs % 60), ms);
  return true;
}

/* ---- reading the line -------------------------------------------------- */

/* Makes room for `need` bytes in the scratch buffer. */
static bool scratch_reserve(pretty_state *st, size_t need) {
  if (need <= st->scratch_cap)
    return true;
  char *p = realloc(st->scratch, need);
  if (p == NULL)
    return false;
  st->scratch = p;
  st->scratch_cap = need;
  return true;
}

/*
 * The event in the n bytes at line, or NULL when the line is not a JSON
 * object. Invalid UTF-8 is replaced by U+FFFD first, since jansson rejects
 * it and a line is better shown with a U+FFFD than not shown as an event.
 * jansson also rejects an integer beyond 64 bits (trail writes uint64
 * values up to 18446744073709551615) and a real beyond a double: such a
 * number is put in quotes, so that it reads as a string and shows exactly as
 * written, and the line is read again.
 */
static json_t *parse(pretty_state *st, const char *line, size_t n) {
  size_t i = 0;
  while (i < n && (line[i] == ' ' || line[i] == '\t'))
    i++;
  if (i == n || line[i] != '{')
    return NULL;

  bool valid = pretty_utf8_valid(line, n);
  size_t room = (valid ? n : 3 * n) + 2 * MAX_QUOTED_NUMBERS;
  if (!scratch_reserve(st, room))
    return NULL;
  char *buf = st->scratch;
  size_t len = n;
  if (valid)
    memcpy(buf, line, n);
  else
    len = pretty_utf8_fix(line, n, buf);

  for (size_t quoted = 0;; quoted++) {
    json_error_t err;
    json_t *v = json_loadb(buf, len, JSON_ALLOW_NUL, &err);
    if (v != NULL) {
      if (json_is_object(v))
        return v;
      json_decref(v);
      return NULL;
    }
    if (json_error_code(&err) != json_error_numeric_overflow ||
        quoted == MAX_QUOTED_NUMBERS || err.position < 1 ||
        (size_t)err.position > len)
      return NULL;
    /* jansson stops right after the number it could not hold. */
    size_t stop = (size_t)err.position, start = stop;
    while (start > 0 && strchr("0123456789+-.eE", buf[start - 1]) != NULL &&
           buf[start - 1] != '\0')
      start--;
    if (start == stop ||
        (buf[start] != '-' && (buf[start] < '0' || buf[start] > '9')))
      return NULL;
    memmove(buf + stop + 2, buf + stop, len - stop);
    memmove(buf + start + 1, buf + start, stop - start);
    buf[start] = '"';
    buf[stop + 1] = '"';
    len += 2;
  }
}

/* ---- filters ----------------------------------------------------------- */

/* The string value of v and its length, or NULL when v is not a string. */
static const char *str_of(json_t *v, size_t *len) {
  if (!json_is_string(v))
    return NULL;
  *len = json_string_length(v);
  return json_string_value(v);
}

/* Whether one of the prefixes in list starts s (n bytes), without regard to
   ASCII case. */
static bool prefix_match(const pretty_list *list, const char *s, size_t n) {
  for (size_t i = 0; i < list->len; i++) {
    size_t plen = strlen(list->items[i]);
    if (s != NULL && plen <= n && strncasecmp(s, list->items[i], plen) == 0)
      return true;
  }
  return false;
}

/* Whether the logger name s (n bytes) is one in list or a dotted descendant
   of one: "db" takes "db" and "db.pool", not "dbx". */
static bool logger_match(const pretty_list *list, const char *s, size_t n) {
  for (size_t i = 0; i < list->len; i++) {
    size_t plen = strlen(list->items[i]);
    if (s != NULL && plen <= n && memcmp(s, list->items[i], plen) == 0 &&
        (plen == n || s[plen] == '.'))
      return true;
  }
  return false;
}

/* ---- writing ----------------------------------------------------------- */

/* Writes a double as the shortest %g text that reads back to it. */
static void write_real(FILE *out, double d) {
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (strtod(buf, NULL) == d)
      break;
  }
  fputs(buf, out);
}

/* Writes a string in double quotes, made safe. */
static void write_quoted(FILE *out, const char *s, size_t n, unsigned flags) {
  putc('"', out);
  pretty_text_write(out, s, n, flags);
  putc('"', out);
}

/* Writes v as compact JSON, its strings made safe with JSON escapes, its
   keys in the order of the line. */
static void write_json(FILE *out, json_t *v) {
  const char *key;
  json_t *item;
  size_t i;
  const char *sep = "";

  switch (json_typeof(v)) {
  case JSON_OBJECT:
    putc('{', out);
    json_object_foreach(v, key, item) {
      fputs(sep, out);
      write_quoted(out, key, strlen(key), PRETTY_TEXT_JSON);
      putc(':', out);
      write_json(out, item);
      sep = ",";
    }
    putc('}', out);
    break;
  case JSON_ARRAY:
    putc('[', out);
    json_array_foreach(v, i, item) {
      fputs(sep, out);
      write_json(out, item);
      sep = ",";
    }
    putc(']', out);
    break;
  case JSON_STRING:
    write_quoted(out, json_string_value(v), json_string_length(v),
                 PRETTY_TEXT_JSON);
    break;
  case JSON_INTEGER:
    fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    break;
  case JSON_REAL:
    write_real(out, json_real_value(v));
    break;
  case JSON_TRUE:
    fputs("true", out);
    break;
  case JSON_FALSE:
    fputs("false", out);
    break;
  case JSON_NULL:
    fputs("null", out);
    break;
  }
}

/* Writes a string bare when it can be read back unambiguously, else in
   quotes with escapes. */
static void write_str(FILE *out, const char *s, size_t n) {
  if (pretty_text_bare(s, n))
    fwrite(s, 1, n, out);
  else
    write_quoted(out, s, n, PRETTY_TEXT_QUOTED);
}

/* Writes the value of a key=value pair: a string bare or quoted, anything
   else as compact JSON. */
static void write_value(FILE *out, json_t *v) {
  if (json_is_string(v))
    write_str(out, json_string_value(v), json_string_length(v));
  else
    write_json(out, v);
}

/* Writes `key=`, dim when in colour. */
static void write_key(const pretty_state *st, const char *key, size_t n) {
  if (st->opt.color)
    fputs(SGR_DIM, st->out);
  write_str(st->out, key, n);
  putc('=', st->out);
  if (st->opt.color)
    fputs(SGR_RESET, st->out);
}

/* Writes an id of the trailer (rid=, trace=), cut to its first SHORT_ID
   bytes unless --full; the cut falls on a UTF-8 boundary, so that the short
   form is a prefix of the id a filter can take. */
static void write_id(const pretty_state *st, const char *name, const char *s,
                     size_t n) {
  if (!st->opt.full && n > SHORT_ID) {
    n = SHORT_ID;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
      n--;
  }
  write_key(st, name, strlen(name));
  write_str(st->out, s, n);
}

/* Writes the text of a column, in colour sgr when colour is on. */
static void write_colored(const pretty_state *st, const char *sgr,
                          const char *s, size_t n) {
  if (st->opt.color && sgr != NULL)
    fputs(sgr, st->out);
  pretty_text_write(st->out, s, n, 0);
  if (st->opt.color && sgr != NULL)
    fputs(SGR_RESET, st->out);
}

/* The keys that have a place of their own when they hold a string. */
static bool reserved_string_key(const char *key) {
  static const char *const keys[] = {"timestamp", "level",    "logger",
                                     "message",   "service",  "request_id",
                                     "user_id",   "trace_id", "span_id"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (strcmp(key, keys[i]) == 0)
      return true;
  }
  return false;
}

/*
 * Writes one event, unless the filters leave it out. The head holds the
 * time, the level, the logger and the message; then come the fields in the
 * order of the line, then the ids (request_id and trace_id shortened,
 * span_id and service only with --full), then the mark of a cut line. A
 * reserved key that does not hold what the contract says (a number for
 * "message", say) is shown as an ordinary field rather than lost.
 */
static void write_event(pretty_state *st, json_t *ev) {
  FILE *out = st->out;
  size_t ts_n = 0, lv_n = 0, lg_n = 0, msg_n = 0, svc_n = 0, rid_n = 0,
         uid_n = 0, tid_n = 0, sid_n = 0;
  const char *ts = str_of(json_object_get(ev, "timestamp"), &ts_n);
  const char *lv = str_of(json_object_get(ev, "level"), &lv_n);
  const char *lg = str_of(json_object_get(ev, "logger"), &lg_n);
  const char *msg = str_of(json_object_get(ev, "message"), &msg_n);
  const char *svc = str_of(json_object_get(ev, "service"), &svc_n);
  const char *rid = str_of(json_object_get(ev, "request_id"), &rid_n);
  const char *uid = str_of(json_object_get(ev, "user_id"), &uid_n);
  const char *tid = str_of(json_object_get(ev, "trace_id"), &tid_n);
  const char *sid = str_of(json_object_get(ev, "span_id"), &sid_n);
  bool truncated = json_is_true(json_object_get(ev, "truncated"));
  int level = lv != NULL ? pretty_level_parse(lv, lv_n) : PRETTY_LEVEL_NONE;

  /* The filters: a level below the threshold, or an id or logger other
     than asked for, leaves the event out. An unknown level is shown. */
  if (st->opt.min_level != PRETTY_LEVEL_NONE && level != PRETTY_LEVEL_NONE &&
      level < st->opt.min_level)
    return;
  if (st->opt.request.len > 0 && !prefix_match(&st->opt.request, rid, rid_n))
    return;
  if (st->opt.trace.len > 0 && !prefix_match(&st->opt.trace, tid, tid_n))
    return;
  if (st->opt.logger.len > 0 && !logger_match(&st->opt.logger, lg, lg_n))
    return;

  /* Each part writes the separator left by the part before it. */
  const char *sep = "";
  if (ts != NULL) {
    char date[32], time[32];
    if (parse_time(ts, ts_n, date, time)) {
      if (st->opt.color)
        fputs(SGR_DIM, out);
      if (st->opt.date || strcmp(date, st->last_date) != 0)
        fprintf(out, "%s ", date);
      fputs(time, out);
      if (st->opt.color)
        fputs(SGR_RESET, out);
      memcpy(st->last_date, date, sizeof st->last_date);
    } else {
      write_colored(st, SGR_DIM, ts, ts_n);
    }
    sep = " ";
  }
  if (lv != NULL) {
    fputs(sep, out);
    if (level != PRETTY_LEVEL_NONE) {
      write_colored(st, level_colors[level], level_labels[level],
                    strlen(level_labels[level]));
      lv_n = strlen(level_labels[level]);
    } else {
      pretty_text_write(out, lv, lv_n, 0);
    }
    for (size_t i = lv_n; i < 5; i++)
      putc(' ', out);
    sep = " ";
  }
  if (lg != NULL) {
    fputs(sep, out);
    write_colored(st, SGR_LOGGER, lg, lg_n);
    sep = "  ";
  }
  if (msg != NULL) {
    fputs(sep, out);
    pretty_text_write(out, msg, msg_n, 0);
    sep = "  ";
  }

  const char *key;
  json_t *v;
  json_object_foreach(ev, key, v) {
    if ((json_is_string(v) && reserved_string_key(key)) ||
        (strcmp(key, "truncated") == 0 && json_is_true(v)))
      continue;
    fputs(sep, out);
    write_key(st, key, strlen(key));
    write_value(out, v);
    sep = " ";
  }

  if (rid != NULL) {
    fputs(sep, out);
    write_id(st, "rid", rid, rid_n);
    sep = " ";
  }
  if (tid != NULL) {
    fputs(sep, out);
    write_id(st, "trace", tid, tid_n);
    sep = " ";
  }
  if (sid != NULL && st->opt.full) {
    fputs(sep, out);
    write_id(st, "span", sid, sid_n);
    sep = " ";
  }
  if (uid != NULL) {
    fputs(sep, out);
    write_key(st, "user", 4);
    write_str(out, uid, uid_n);
    sep = " ";
  }
  if (svc != NULL && st->opt.full) {
    fputs(sep, out);
    write_key(st, "service", 7);
    write_str(out, svc, svc_n);
    sep = " ";
  }
  if (truncated) {
    fputs(sep, out);
    write_colored(st, SGR_MARKER, "[truncated]", 11);
  }
  putc('\n', out);
}

/*
 * Handles one line of input, n bytes without its line ending. `cut` says
 * that the reader kept only the first PRETTY_MAX_LINE bytes of a longer
 * line: such a line is not read as JSON (its end is missing) and is written
 * with a mark.
 */
void pretty_line(pretty_state *st, const char *line, size_t n, bool cut) {
  json_t *ev = cut ? NULL : parse(st, line, n);
  if (ev != NULL) {
    write_event(st, ev);
    json_decref(ev);
    return;
  }
  pretty_text_write(st->out, line, n, PRETTY_TEXT_KEEP_TAB);
  if (cut) {
    char mark[64];
    int len = snprintf(mark, sizeof mark, "[line cut at %zu bytes]",
                       (size_t)PRETTY_MAX_LINE);
    putc(' ', st->out);
    write_colored(st, SGR_MARKER, mark, (size_t)len);
  }
  putc('\n', st->out);
}
