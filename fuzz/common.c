/*
 * The helpers of common.h: input reading, the arena, the capture sink, the
 * reference string rules and the line contract check.
 */
#include "common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- failing ----------------------------------------------------------- */

/*
 * The one way a check fails: a message a person can act on, then abort(),
 * which both libFuzzer and the replay program treat as a finding.
 */
void fz_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "fuzz check failed at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

/* ---- reading the input ------------------------------------------------- */

/*
 * The next byte, or 0 when the input is used up: a short input then reads
 * as zeros, so every input decodes to some call and none is wasted.
 */
uint8_t fz_u8(fz_in *in) {
  if (in->n == 0)
    return 0;
  in->n--;
  return *in->p++;
}

/* Two bytes, little-endian. */
uint16_t fz_u16(fz_in *in) {
  uint16_t lo = fz_u8(in);
  return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

/* Four bytes, little-endian. */
uint32_t fz_u32(fz_in *in) {
  uint32_t lo = fz_u16(in);
  return lo | (uint32_t)fz_u16(in) << 16;
}

/* Eight bytes, little-endian. */
uint64_t fz_u64(fz_in *in) {
  uint64_t lo = fz_u32(in);
  return lo | (uint64_t)fz_u32(in) << 32;
}

/*
 * A slice whose length is the next byte, cut to what is left. The slice
 * points into the fuzzer's own buffer, so a read past its end is one that
 * AddressSanitizer sees.
 */
size_t fz_slice8(fz_in *in, const uint8_t **out) {
  size_t n = fz_u8(in);
  if (n > in->n)
    n = in->n;
  *out = in->p;
  in->p += n;
  in->n -= n;
  return n;
}

/* The same with a two-byte length, at most max. */
size_t fz_slice16(fz_in *in, size_t max, const uint8_t **out) {
  size_t n = fz_u16(in);
  if (n > max)
    n = max;
  if (n > in->n)
    n = in->n;
  *out = in->p;
  in->p += n;
  in->n -= n;
  return n;
}

/* What is left of the input, which is then empty. */
size_t fz_rest(fz_in *in, const uint8_t **out) {
  size_t n = in->n;
  *out = in->p;
  in->p += n;
  in->n = 0;
  return n;
}

/* ---- the arena --------------------------------------------------------- */

static char **arena;
static size_t arena_n, arena_cap;

/*
 * A NUL-terminated copy, exactly n + 1 bytes long so that a read past its
 * NUL is caught. Aborts on ENOMEM: a fuzz run has no use for half an input.
 */
char *fz_strndup(const uint8_t *p, size_t n) {
  if (arena_n == arena_cap) {
    arena_cap = arena_cap ? 2 * arena_cap : 64;
    arena = realloc(arena, arena_cap * sizeof *arena);
    FZ_CHECK(arena != NULL, "out of memory");
  }
  char *s = malloc(n + 1);
  FZ_CHECK(s != NULL, "out of memory");
  if (n)
    memcpy(s, p, n);
  s[n] = '\0';
  arena[arena_n++] = s;
  return s;
}

/* Frees the copies of the input just run. */
void fz_arena_free(void) {
  for (size_t i = 0; i < arena_n; i++)
    free(arena[i]);
  arena_n = 0;
}

/* ---- capturing lines --------------------------------------------------- */

fz_line fz_lines[FZ_MAX_LINES];
size_t fz_nlines;

/*
 * The callback sink: keeps a copy of each line of the current input. More
 * than FZ_MAX_LINES lines for one input is itself a failure: no target
 * makes that many calls.
 */
static void capture(void *user, trail_level level, const char *line,
                    size_t len) {
  (void)user;
  FZ_CHECK(fz_nlines < FZ_MAX_LINES, "more lines than any target writes");
  char *copy = malloc(len + 1);
  FZ_CHECK(copy != NULL, "out of memory");
  memcpy(copy, line, len);
  copy[len] = '\0';
  fz_lines[fz_nlines].text = copy;
  fz_lines[fz_nlines].len = len;
  fz_lines[fz_nlines].level = level;
  fz_nlines++;
}

/*
 * Sends every level to the capture sink and nowhere else. The TRAIL_*
 * variables of whoever runs the fuzzer are removed first: they would change
 * what the library writes.
 */
void fz_capture_install(void) {
  static const char *const vars[] = {
      "TRAIL_LEVEL",          "TRAIL_OUTPUT",      "TRAIL_SERVICE",
      "TRAIL_ASYNC",          "TRAIL_CALLER",      "TRAIL_MAX_LINE",
      "TRAIL_ASYNC_OVERFLOW", "TRAIL_ASYNC_QUEUE", "TRAIL_ASYNC_STOP_WAIT"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
  trail_sinks_clear();
  FZ_CHECK(trail_sink_add_callback(capture, NULL, TRAIL_LEVEL_TRACE) >= 0);
  FZ_CHECK(trail_levels_set("trace", NULL) == 0);
  FZ_CHECK(trail_service_set("fuzz") == 0);
}

/* Forgets the lines captured so far. */
void fz_capture_reset(void) {
  for (size_t i = 0; i < fz_nlines; i++)
    free(fz_lines[i].text);
  fz_nlines = 0;
}

/* ---- the reference string rules ---------------------------------------- */

/*
 * Unicode table 3-7, "Well-Formed UTF-8 Byte Sequences", one row per line:
 * the range each byte of a sequence must fall in.
 */
static const struct {
  uint8_t lo[4], hi[4];
  size_t len;
} wf_rows[] = {
    {{0x00}, {0x7f}, 1},
    {{0xc2, 0x80}, {0xdf, 0xbf}, 2},
    {{0xe0, 0xa0, 0x80}, {0xe0, 0xbf, 0xbf}, 3},
    {{0xe1, 0x80, 0x80}, {0xec, 0xbf, 0xbf}, 3},
    {{0xed, 0x80, 0x80}, {0xed, 0x9f, 0xbf}, 3},
    {{0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbf}, 3},
    {{0xf0, 0x90, 0x80, 0x80}, {0xf0, 0xbf, 0xbf, 0xbf}, 4},
    {{0xf1, 0x80, 0x80, 0x80}, {0xf3, 0xbf, 0xbf, 0xbf}, 4},
    {{0xf4, 0x80, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}, 4},
};

/*
 * By the definitions of section 3.9: a maximal subpart is the longest
 * prefix that is an initial part of some well-formed sequence, and at
 * least one byte. Each row is tried and the longest match kept.
 */
size_t fz_utf8_char(const uint8_t *p, size_t n, size_t *bad) {
  size_t best = 1;
  for (size_t r = 0; r < sizeof wf_rows / sizeof wf_rows[0]; r++) {
    size_t k = 0;
    while (k < wf_rows[r].len && k < n && p[k] >= wf_rows[r].lo[k] &&
           p[k] <= wf_rows[r].hi[k])
      k++;
    if (k == wf_rows[r].len)
      return k;
    if (k > best)
      best = k;
  }
  *bad = best;
  return 0;
}

/* Python's bytes.decode("utf-8", "replace"), re-encoded as UTF-8. */
size_t fz_utf8_fix(const uint8_t *p, size_t n, char *out) {
  size_t o = 0, i = 0;
  while (i < n) {
    size_t bad = 0, len = fz_utf8_char(p + i, n - i, &bad);
    if (len) {
      memcpy(out + o, p + i, len);
      o += len;
      i += len;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i += bad;
    }
  }
  return o;
}

/*
 * The next output unit of a JSON string for the input at p, by the rules
 * of docs/log-format.md "Strings"; *used gets the input bytes it takes.
 */
static size_t json_unit(const uint8_t *p, size_t n, char *out, size_t *used) {
  static const char hex[] = "0123456789abcdef";
  size_t bad = 0, len = fz_utf8_char(p, n, &bad);
  uint32_t cp;
  if (len == 0) {
    *used = bad;
    memcpy(out, "\xef\xbf\xbd", 3);
    return 3;
  }
  *used = len;
  switch (len) {
  case 1:
    cp = p[0];
    break;
  case 2:
    cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
    break;
  case 3:
    cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
         (p[2] & 0x3f);
    break;
  default:
    cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
         (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
    break;
  }
  const char *two = NULL;
  switch (cp) {
  case '"':
    two = "\\\"";
    break;
  case '\\':
    two = "\\\\";
    break;
  case '\b':
    two = "\\b";
    break;
  case '\f':
    two = "\\f";
    break;
  case '\n':
    two = "\\n";
    break;
  case '\r':
    two = "\\r";
    break;
  case '\t':
    two = "\\t";
    break;
  default:
    break;
  }
  if (two) {
    memcpy(out, two, 2);
    return 2;
  }
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
    out[0] = '\\';
    out[1] = 'u';
    out[2] = hex[(cp >> 12) & 0xf];
    out[3] = hex[(cp >> 8) & 0xf];
    out[4] = hex[(cp >> 4) & 0xf];
    out[5] = hex[cp & 0xf];
    return 6;
  }
  memcpy(out, p, len);
  return len;
}

/*
 * Builds the expected string unit by unit and stops at the first unit that
 * would leave no room for the closing quote, which is where encode.h says
 * trail cuts.
 */
long fz_json_string(const uint8_t *p, size_t n, size_t room, char *out,
                    int *cut) {
  *cut = 0;
  if (room < 2)
    return -1;
  size_t o = 0, i = 0, left = room - 2;
  out[o++] = '"';
  while (i < n) {
    char unit[8];
    size_t used, len = json_unit(p + i, n - i, unit, &used);
    if (len > left) {
      *cut = 1;
      break;
    }
    memcpy(out + o, unit, len);
    o += len;
    left -= len;
    i += used;
  }
  out[o++] = '"';
  return (long)o;
}

/* 1 when a starts with b. */
int fz_has_prefix(const char *a, size_t alen, const char *b, size_t blen) {
  return blen <= alen && (blen == 0 || memcmp(a, b, blen) == 0);
}

/* ---- the line contract ------------------------------------------------- */

/* The i-th member of obj in iteration order (jansson keeps insertion). */
const char *fz_key_at(json_t *obj, size_t i, size_t *klen, json_t **value) {
  void *it = json_object_iter(obj);
  while (it != NULL && i > 0) {
    it = json_object_iter_next(obj, it);
    i--;
  }
  if (it == NULL)
    return NULL;
  *klen = json_object_iter_key_len(it);
  *value = json_object_iter_value(it);
  return json_object_iter_key(it);
}

/* Where key sits among obj's members, or -1. */
long fz_key_index(json_t *obj, const char *key) {
  long i = 0;
  for (void *it = json_object_iter(obj); it != NULL;
       it = json_object_iter_next(obj, it), i++)
    if (strcmp(json_object_iter_key(it), key) == 0)
      return i;
  return -1;
}

/* n lowercase hex digits, not all zero. */
static int hex_id(const char *s, size_t len, size_t n) {
  int nonzero = 0;
  if (len != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
    nonzero |= s[i] != '0';
  }
  return nonzero;
}

/* 2026-11-27T06:22:38.123456Z, digit by digit. */
static int timestamp_ok(const char *s, size_t len) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (len != sizeof shape - 1)
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
      return 0;
  }
  return 1;
}

static const char *const reserved_keys[] = {
    "timestamp", "level",    "logger",  "message", "service",  "request_id",
    "user_id",   "trace_id", "span_id", "caller",  "truncated"};

static int is_reserved(const char *k, size_t len) {
  for (size_t i = 0; i < sizeof reserved_keys / sizeof reserved_keys[0]; i++)
    if (strlen(reserved_keys[i]) == len &&
        memcmp(reserved_keys[i], k, len) == 0)
      return 1;
  return 0;
}

/*
 * Bytes that must never appear raw in a line: the JSON grammar forbids raw
 * C0 controls, and docs/log-format.md adds DEL, the C1 controls (U+0080 to
 * U+009F, C2 80..C2 9F in UTF-8) and U+2028/U+2029 (E2 80 A8/A9).
 */
static void check_bytes(const char *line, size_t len) {
  const unsigned char *p = (const unsigned char *)line;
  FZ_CHECK(len >= 3, "line of %zu bytes", len);
  FZ_CHECK(p[len - 1] == '\n', "line does not end in \\n: %.*s", (int)len,
           line);
  for (size_t i = 0; i + 1 < len; i++) {
    FZ_CHECK(p[i] >= 0x20 && p[i] != 0x7f, "raw byte 0x%02x at %zu: %.*s", p[i],
             i, (int)len, line);
    if (p[i] == 0xc2 && i + 2 < len)
      FZ_CHECK(p[i + 1] < 0x80 || p[i + 1] > 0x9f, "raw C1 control at %zu", i);
    if (p[i] == 0xe2 && i + 3 < len)
      FZ_CHECK(!(p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)),
               "raw U+2028/U+2029 at %zu", i);
  }
}

/*
 * jansson reads integers into json_int_t, so a uint64 field above
 * INT64_MAX fails with a numeric overflow error. Only for that error the
 * line is read again with integers as reals; every other error stands.
 */
static json_t *parse(const char *line, size_t len) {
  json_error_t err;
  size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
  json_t *root = json_loadb(line, len, flags, &err);
  if (root == NULL && json_error_code(&err) == json_error_numeric_overflow)
    root = json_loadb(line, len, flags | JSON_DECODE_INT_AS_REAL, &err);
  FZ_CHECK(root != NULL, "not JSON (%s at column %d): %.*s", err.text,
           err.column, (int)len, line);
  FZ_CHECK(json_is_object(root), "not an object: %.*s", (int)len, line);
  return root;
}

/*
 * The order contract: the five fixed keys, then the context keys in their
 * order, then caller, then fields; "truncated" only last. The fixed values
 * are checked for their form; what they hold is the target's business.
 */
void fz_check_line(const char *line, size_t len, size_t max_line,
                   fz_parsed *out) {
  static const char *const head[] = {"timestamp", "level", "logger", "message",
                                     "service"};
  static const char *const ctx_keys[] = {"request_id", "user_id", "trace_id",
                                         "span_id", "caller"};
  static const char *const levels[] = {"trace", "debug", "info",
                                       "warn",  "error", "fatal"};

  check_bytes(line, len);
  FZ_CHECK(len <= max_line, "line of %zu bytes, maximum %zu", len, max_line);
  json_t *root = parse(line, len);
  size_t n = json_object_size(root), i = 0, klen;
  json_t *v;
  const char *k;

  for (; i < 5; i++) {
    k = fz_key_at(root, i, &klen, &v);
    FZ_CHECK(k && strcmp(k, head[i]) == 0, "key %zu is not %s: %.*s", i,
             head[i], (int)len, line);
    FZ_CHECK(json_is_string(v), "%s is not a string", head[i]);
  }
  const char *ts = json_string_value(json_object_get(root, "timestamp"));
  FZ_CHECK(timestamp_ok(ts, strlen(ts)), "bad timestamp %s", ts);
  const char *lv = json_string_value(json_object_get(root, "level"));
  int level_ok = 0;
  for (size_t j = 0; j < 6; j++)
    level_ok |= strcmp(lv, levels[j]) == 0;
  FZ_CHECK(level_ok, "bad level %s", lv);

  /* The context keys and caller: each at most once, in this order. */
  size_t want = 0;
  while (i < n && (k = fz_key_at(root, i, &klen, &v)) != NULL) {
    size_t j = want;
    while (j < 5 && strcmp(k, ctx_keys[j]) != 0)
      j++;
    if (j == 5)
      break;
    FZ_CHECK(json_is_string(v), "%s is not a string", k);
    const char *s = json_string_value(v);
    size_t sl = json_string_length(v);
    if (j == 0)
      FZ_CHECK(trail_request_id_check(s, sl) == 0, "bad request_id %s", s);
    else if (j == 1)
      FZ_CHECK(sl >= 1 && sl <= 3 * TRAIL_USER_ID_MAX, "bad user_id length");
    else if (j == 2)
      FZ_CHECK(hex_id(s, sl, 32), "bad trace_id %s", s);
    else if (j == 3)
      FZ_CHECK(hex_id(s, sl, 16), "bad span_id %s", s);
    want = j + 1;
    i++;
  }
  out->first_free = i;

  /* The fields: no reserved key, and "truncated" last. */
  out->truncated = 0;
  for (; i < n; i++) {
    k = fz_key_at(root, i, &klen, &v);
    if (strcmp(k, "truncated") == 0) {
      FZ_CHECK(i == n - 1, "truncated is not the last key: %.*s", (int)len,
               line);
      FZ_CHECK(json_is_true(v), "truncated is not true");
      out->truncated = 1;
    } else {
      FZ_CHECK(!is_reserved(k, klen), "reserved key %s among the fields: %.*s",
               k, (int)len, line);
    }
  }
  out->root = root;
  out->nkeys = n;
}

/* ---- jansson values ---------------------------------------------------- */

/*
 * The default list of sensitive keys (include/trail.h, trail_redact_set):
 * a value under one of them, in any case, is written as "[REDACTED]".
 */
int fz_redacted(const char *k, size_t n) {
  static const char *const keys[] = {"password", "passwd",    "secret",
                                     "token",    "api_key",   "authorization",
                                     "cookie",   "set-cookie"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strlen(keys[i]) == n && strncasecmp(k, keys[i], n) == 0)
      return 1;
  return 0;
}

static int is_redacted_value(json_t *v) {
  return json_is_string(v) && strcmp(json_string_value(v), "[REDACTED]") == 0;
}

/*
 * A jansson value from the input, up to 40 levels deep (trail writes
 * deeper than 32 as "[max depth]"). Strings are made without jansson's
 * UTF-8 check, so trail's own replacement is exercised; object keys stay
 * valid UTF-8 without NUL bytes, as jansson requires of keys.
 */
json_t *fz_build_json(fz_in *in, int depth) {
  const uint8_t *s;
  size_t n;
  uint8_t sel = fz_u8(in);
  if (depth >= 40)
    sel = 0;
  switch (sel % 12) {
  case 0:
    return json_null();
  case 1:
    return json_true();
  case 2:
    return json_false();
  case 3:
    return json_integer((json_int_t)fz_u64(in));
  case 4: {
    uint64_t bits = fz_u64(in);
    double d;
    memcpy(&d, &bits, sizeof d);
    json_t *r = json_real(d); /* NULL for NaN and infinities */
    return r ? r : json_null();
  }
  case 5:
    n = fz_slice8(in, &s);
    return json_stringn_nocheck((const char *)s, n);
  case 6: {
    n = fz_slice8(in, &s);
    json_t *r =
        json_loadb((const char *)s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return r ? r : json_string("unparsed");
  }
  case 7: {
    json_t *a = json_array();
    size_t count = fz_u8(in) % 5;
    for (size_t i = 0; i < count; i++)
      json_array_append_new(a, fz_build_json(in, depth + 1));
    return a;
  }
  case 8: {
    json_t *o = json_object();
    size_t count = fz_u8(in) % 5;
    for (size_t i = 0; i < count; i++) {
      char key[3 * 256];
      n = fz_slice8(in, &s);
      size_t kl = fz_utf8_fix(s, n, key);
      for (size_t j = 0; j < kl; j++)
        if (key[j] == '\0')
          key[j] = '?';
      json_object_setn_new(o, key, kl, fz_build_json(in, depth + 1));
    }
    return o;
  }
  case 9: {
    /* A tower of arrays around one leaf, to cross the depth limit. */
    size_t levels = fz_u8(in) % 40;
    json_t *v = json_integer(42);
    for (size_t i = 0; i < levels; i++) {
      json_t *a = json_array();
      json_array_append_new(a, v);
      v = a;
    }
    return v;
  }
  case 10:
    n = fz_slice16(in, 20000, &s);
    return json_stringn_nocheck((const char *)s, n);
  default:
    return json_integer(fz_u8(in) & 1 ? INT64_MIN : INT64_MAX);
  }
}

/* A parsed string equals the reference reading of the bytes passed. */
int fz_string_is(json_t *v, const uint8_t *p, size_t n) {
  if (!json_is_string(v))
    return 0;
  char *fixed = malloc(3 * n + 1);
  FZ_CHECK(fixed != NULL, "out of memory");
  size_t fl = fz_utf8_fix(p, n, fixed);
  int ok = json_string_length(v) == fl &&
           (fl == 0 || memcmp(json_string_value(v), fixed, fl) == 0);
  free(fixed);
  return ok;
}

/* A parsed number equals x (the line may have been read ints-as-reals). */
int fz_number_is(json_t *v, double x) {
  return json_is_number(v) && json_number_value(v) == x;
}

/*
 * A TRAIL_JSON value as the line holds it, against the value passed:
 * containers member by member in order, strings by the reference rules,
 * reals by value (an integral real reads back as an integer), and
 * containers at depth 32 replaced by the string "[max depth]".
 */
int fz_json_same(json_t *orig, json_t *got, int depth) {
  if (orig == NULL)
    return json_is_null(got);
  switch (json_typeof(orig)) {
  case JSON_OBJECT:
  case JSON_ARRAY:
    if (depth >= 32)
      return json_is_string(got) &&
             strcmp(json_string_value(got), "[max depth]") == 0;
    if (json_is_array(orig)) {
      if (!json_is_array(got) || json_array_size(got) != json_array_size(orig))
        return 0;
      for (size_t i = 0; i < json_array_size(orig); i++)
        if (!fz_json_same(json_array_get(orig, i), json_array_get(got, i),
                          depth + 1))
          return 0;
      return 1;
    }
    if (!json_is_object(got) || json_object_size(got) != json_object_size(orig))
      return 0;
    for (void *a = json_object_iter(orig), *b = json_object_iter(got); a;
         a = json_object_iter_next(orig, a),
              b = json_object_iter_next(got, b)) {
      const char *ka = json_object_iter_key(a);
      size_t kl = json_object_iter_key_len(a);
      if (b == NULL || json_object_iter_key_len(b) != kl ||
          memcmp(ka, json_object_iter_key(b), kl) != 0)
        return 0;
      json_t *vb = json_object_iter_value(b);
      if (fz_redacted(ka, kl)
              ? !is_redacted_value(vb)
              : !fz_json_same(json_object_iter_value(a), vb, depth + 1))
        return 0;
    }
    return 1;
  case JSON_STRING:
    return fz_string_is(got, (const uint8_t *)json_string_value(orig),
                        json_string_length(orig));
  case JSON_INTEGER:
    if (json_is_integer(got))
      return json_integer_value(got) == json_integer_value(orig);
    return fz_number_is(got, (double)json_integer_value(orig));
  case JSON_REAL:
    return fz_number_is(got, json_real_value(orig));
  case JSON_TRUE:
    return json_is_true(got);
  case JSON_FALSE:
    return json_is_false(got);
  default:
    return json_is_null(got);
  }
}
