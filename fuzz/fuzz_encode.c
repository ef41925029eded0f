/*
 * Fuzz target: the JSON encoder of lib/encode.h, called directly on a small
 * buffer with a budget the input chooses.
 *
 * Each input is a sequence of appends (a string, a jansson value, a double,
 * an int64, a uint64, a bool), each to a fresh buffer whose storage is
 * exactly limit + TRAIL__BUF_SLACK bytes on the heap and already holds
 * some bytes. What is checked, by the budget rule of encode.h:
 *
 * - nothing is written more than TRAIL__BUF_SCRATCH bytes past the limit
 *   (the rest of the slack is the caller's, and is filled with a canary
 *   that must survive), nor before the start, nor anything at all when
 *   there is no room;
 * - -1 means nothing written and the truncated flag set; 1 means cut and
 *   the flag set; 0 means whole and the flag untouched;
 * - a string is exactly what an independent reference of the rules writes
 *   (docs/log-format.md "Strings"), cut at the same unit when short of room;
 * - a jansson value is valid JSON, equal to the value when whole;
 * - a double is the shortest text that reads back to the same value, its
 *   digits those of the closest such text, in the documented form;
 * - integers and booleans are exact, and refused whole when they do not
 *   fit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "encode.h"

#define CANARY 0xa5

/* A buffer under test: storage of exactly limit + slack bytes. */
typedef struct tbuf {
  trail__buf b;
  size_t start;
  size_t size;
} tbuf;

/*
 * The buffer already holds start bytes (which may exceed the limit: room
 * is then 0), and everything after them is canary.
 */
static void tbuf_open(tbuf *t, size_t limit, size_t start) {
  t->size = limit + TRAIL__BUF_SLACK;
  if (start > t->size)
    start = t->size;
  t->b.data = malloc(t->size);
  FZ_CHECK(t->b.data != NULL, "out of memory");
  memset(t->b.data, 'x', start);
  memset(t->b.data + start, CANARY, t->size - start);
  t->b.len = start;
  t->b.limit = limit;
  t->b.truncated = 0;
  t->start = start;
}

/*
 * The checks every append shares: the budget, the canary, the prefix left
 * alone, and the return value against the truncated flag.
 */
static void tbuf_check(const tbuf *t, int r) {
  const trail__buf *b = &t->b;
  FZ_CHECK(r >= -1 && r <= 1, "return %d", r);
  FZ_CHECK(b->len >= t->start, "len went back from %zu to %zu", t->start,
           b->len);
  if (t->start >= b->limit)
    FZ_CHECK(b->len == t->start, "wrote %zu bytes with no room",
             b->len - t->start);
  else
    FZ_CHECK(b->len <= b->limit, "len %zu past limit %zu", b->len, b->limit);
  for (size_t i = 0; i < t->start; i++)
    FZ_CHECK(b->data[i] == 'x', "byte %zu before the start changed", i);
  /* Past len the bytes are unspecified (a rolled-back member, the string
   * encoder's word stores), but only up to TRAIL__BUF_SCRATCH bytes past
   * the limit, or past the start when there was no room. */
  size_t from =
      (t->start > b->limit ? t->start : b->limit) + TRAIL__BUF_SCRATCH;
  if (t->start >= b->limit)
    from = t->start;
  for (size_t i = from; i < t->size; i++)
    FZ_CHECK((unsigned char)b->data[i] == CANARY,
             "byte %zu past the limit (len %zu, limit %zu) was written", i,
             b->len, b->limit);
  if (r == -1)
    FZ_CHECK(b->len == t->start && b->truncated, "-1 but wrote or no flag");
  else if (r == 1)
    FZ_CHECK(b->truncated, "cut without the truncated flag");
  else
    FZ_CHECK(!b->truncated, "whole but the truncated flag is set");
}

static size_t room_of(const tbuf *t) {
  return t->b.len < t->b.limit ? t->b.limit - t->b.len : 0;
}

/* A string: byte for byte what the reference writes with the same room. */
static void op_string(fz_in *in, tbuf *t) {
  const uint8_t *s;
  size_t n = fz_slice16(in, 8192, &s);
  size_t room = room_of(t);
  char *want = malloc(6 * n + 2);
  FZ_CHECK(want != NULL, "out of memory");
  int cut;
  long wl = fz_json_string(s, n, room, want, &cut);
  int r = trail__put_string(&t->b, (const char *)s, n);
  tbuf_check(t, r);
  if (wl < 0) {
    FZ_CHECK(r == -1, "string into room %zu returned %d", room, r);
  } else {
    size_t got = t->b.len - t->start;
    FZ_CHECK(r == cut, "string returned %d, reference cut=%d", r, cut);
    FZ_CHECK(got == (size_t)wl && memcmp(t->b.data + t->start, want, got) == 0,
             "string differs from the reference (room %zu): got %.*s want %.*s",
             room, (int)got, t->b.data + t->start, (int)wl, want);
  }
  free(want);
}

/* A jansson value: valid JSON always, the same value when whole. */
static void op_json(fz_in *in, tbuf *t) {
  json_t *v = fz_u8(in) == 0xff ? NULL : fz_build_json(in, 0);
  int r = trail__put_json(&t->b, v);
  tbuf_check(t, r);
  if (r >= 0) {
    json_error_t err;
    size_t got = t->b.len - t->start;
    json_t *back = json_loadb(t->b.data + t->start, got,
                              JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    FZ_CHECK(back != NULL, "put_json wrote invalid JSON (%s): %.*s", err.text,
             (int)got, t->b.data + t->start);
    if (r == 0)
      FZ_CHECK(fz_json_same(v, back, 0), "put_json changed the value: %.*s",
               (int)got, t->b.data + t->start);
    json_decref(back);
  }
  json_decref(v);
}

/* The significant digits of a decimal text, without leading/trailing 0s. */
static size_t digits_of(const char *s, char *out) {
  size_t n = 0;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9')
      out[n++] = *s;
  out[n] = '\0';
  size_t lead = 0;
  while (lead < n && out[lead] == '0')
    lead++;
  memmove(out, out + lead, n - lead + 1);
  n -= lead;
  while (n > 0 && out[n - 1] == '0')
    out[--n] = '\0';
  return n;
}

/*
 * The double checks: the text trail__format_double() gives reads back to
 * exactly v; it has no more digits than the shortest %.*e text that reads
 * back, and the same digits when as many (that one is the closest); its
 * form is positional from 1e-4 to below 1e16, else d[.ddd]e<sign>x.
 */
static void check_double_text(double v, const char *text, size_t len) {
  FZ_CHECK(strlen(text) == len, "format_double length %zu for %s", len, text);
  if (isnan(v)) {
    FZ_CHECK(strcmp(text, "NaN") == 0, "NaN written as %s", text);
    return;
  }
  if (isinf(v)) {
    FZ_CHECK(strcmp(text, v > 0 ? "+Inf" : "-Inf") == 0, "inf written as %s",
             text);
    return;
  }
  char *end;
  double back = strtod(text, &end);
  FZ_CHECK(*end == '\0' && back == v && signbit(back) == signbit(v),
           "%s does not read back to %.17g", text, v);
  json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
  FZ_CHECK(j != NULL && json_is_number(j), "%s is not a JSON number", text);
  json_decref(j);

  int pmin = 17;
  char ref[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(ref, sizeof ref, "%.*e", p - 1, v);
    if (strtod(ref, NULL) == v) {
      pmin = p;
      break;
    }
  }
  char dg[40], rd[40];
  size_t nd = digits_of(text, dg), nr = digits_of(ref, rd);
  if (v != 0) {
    FZ_CHECK(nd <= (size_t)pmin, "%s has %zu digits, %s has %d", text, nd, ref,
             pmin);
    if (nd == nr)
      FZ_CHECK(strcmp(dg, rd) == 0, "%s is not the closest (%s)", text, ref);
  }
  double a = fabs(v);
  int expo = strchr(text, 'e') != NULL;
  FZ_CHECK(expo == !(a == 0 || (a >= 1e-4 && a < 1e16)),
           "%s: wrong form for %.17g", text, v);
  if (expo) {
    const char *e = strchr(text, 'e');
    FZ_CHECK((e[1] == '+' || e[1] == '-') && e[2] >= '1' && e[2] <= '9',
             "%s: exponent not signed or zero-padded", text);
  }
  FZ_CHECK(strstr(text, ".e") == NULL && text[len - 1] != '.',
           "%s: empty fraction", text);
}

/* A double through the buffer: the same text, refused whole without room. */
static void op_double(fz_in *in, tbuf *t) {
  uint64_t bits = fz_u64(in);
  double v;
  memcpy(&v, &bits, sizeof v);
  char text[64];
  size_t len = trail__format_double(v, text);
  check_double_text(v, text, len);
  char want[70];
  size_t wl;
  if (isnan(v) || isinf(v))
    wl = (size_t)snprintf(want, sizeof want, "\"%s\"", text);
  else
    wl = (size_t)snprintf(want, sizeof want, "%s", text);
  size_t room = room_of(t);
  int r = trail__put_double(&t->b, v);
  tbuf_check(t, r);
  if (wl > room) {
    FZ_CHECK(r == -1, "double of %zu bytes into %zu room: %d", wl, room, r);
  } else {
    FZ_CHECK(r == 0 && t->b.len - t->start == wl &&
                 memcmp(t->b.data + t->start, want, wl) == 0,
             "put_double wrote %.*s, want %s", (int)(t->b.len - t->start),
             t->b.data + t->start, want);
  }
}

/* Integers and booleans: exact text, or -1 and nothing. */
static void op_scalar(fz_in *in, tbuf *t, int which) {
  char want[32];
  int r;
  uint64_t x = fz_u64(in);
  size_t room = room_of(t);
  if (which == 0) {
    snprintf(want, sizeof want, "%lld", (long long)(int64_t)x);
    r = trail__put_int(&t->b, (int64_t)x);
  } else if (which == 1) {
    snprintf(want, sizeof want, "%llu", (unsigned long long)x);
    r = trail__put_uint(&t->b, x);
  } else {
    snprintf(want, sizeof want, "%s", x & 1 ? "true" : "false");
    r = trail__put_bool(&t->b, (int)(x & 1));
  }
  tbuf_check(t, r);
  size_t wl = strlen(want);
  if (wl > room)
    FZ_CHECK(r == -1, "%s into room %zu: %d", want, room, r);
  else
    FZ_CHECK(r == 0 && t->b.len - t->start == wl &&
                 memcmp(t->b.data + t->start, want, wl) == 0,
             "wrote %.*s, want %s", (int)(t->b.len - t->start),
             t->b.data + t->start, want);
}

/*
 * Up to 16 appends. Each starts with a byte for the kind, two for the limit
 * (mostly small, so that cuts are common) and one for the bytes already in
 * the buffer.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  for (int op = 0; op < 16 && in.n > 0; op++) {
    uint8_t kind = fz_u8(&in);
    uint16_t lim = fz_u16(&in);
    size_t limit = kind & 0x80 ? lim : lim % 300;
    size_t start = fz_u8(&in);
    if (start > limit + 8)
      start %= limit + 9;
    tbuf t;
    tbuf_open(&t, limit, start);
    switch (kind % 6) {
    case 0:
      op_string(&in, &t);
      break;
    case 1:
      op_json(&in, &t);
      break;
    case 2:
      op_double(&in, &t);
      break;
    default:
      op_scalar(&in, &t, kind % 6 - 3);
      break;
    }
    free(t.b.data);
  }
  fz_arena_free();
  return 0;
}
