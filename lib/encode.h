/*
 * The JSON encoder: appends JSON text to a bounded buffer.
 *
 * Internal to trail (names trail__*, hidden from the shared library's
 * exports). Everything here is allocation-free and thread-safe on distinct
 * buffers.
 *
 * The budget rule: a trail__buf has a content limit. An append that would go
 * past it is either refused whole (numbers, literals: nothing is written and
 * -1 is returned) or cut (strings: cut at a character or escape boundary, the
 * closing quote written, the buffer's truncated flag set, 1 returned). The
 * storage behind data must hold at least limit + TRAIL__BUF_SLACK bytes, so
 * that the caller can always close a line ("}", ",\"truncated\":true}\n").
 */
#ifndef TRAIL_ENCODE_H
#define TRAIL_ENCODE_H

#include <stddef.h>
#include <stdint.h>

struct json_t;

#define TRAIL__BUF_SLACK 64
/*
 * The string encoder copies plain ASCII a word at a time and may store up
 * to this many bytes past what it finally writes (and past the limit),
 * inside the slack; bytes past b->len are unspecified.
 */
#define TRAIL__BUF_SCRATCH 8
/* Nesting deeper than this in a json_t value is written as a string. */
#define TRAIL__JSON_MAX_DEPTH 32

typedef struct trail__buf {
  char *data;    /* storage: at least limit + TRAIL__BUF_SLACK bytes */
  size_t len;    /* bytes written */
  size_t limit;  /* content budget */
  int truncated; /* set when a value was cut or refused for lack of room */
} trail__buf;

#include <string.h>

/* 1 for the bytes a JSON string takes as they are: printable ASCII but '"'
 * and '\\'. */
extern const unsigned char trail__plain_table[256];

/* "00" "01" ... "99": the two digits of n at 2 * n (encode.c). */
extern const char trail__digit_pairs[201];

/*
 * Copies n bytes and returns p + n. The pieces of a line or a queue record
 * are mostly a few bytes long (keys, short values, the logger's name), where
 * a call to memcpy() costs more than the copy: up to
 * 32 bytes are moved inline, in two overlapping loads and stores, reading
 * nothing outside s[0..n).
 */
static inline char *trail__copy(char *p, const void *src, size_t n) {
  const char *s = src;
  if (n <= 16) {
    if (n >= 8) {
      uint64_t a, b;
      __builtin_memcpy(&a, s, 8);
      __builtin_memcpy(&b, s + n - 8, 8);
      __builtin_memcpy(p, &a, 8);
      __builtin_memcpy(p + n - 8, &b, 8);
    } else if (n >= 4) {
      uint32_t a, b;
      __builtin_memcpy(&a, s, 4);
      __builtin_memcpy(&b, s + n - 4, 4);
      __builtin_memcpy(p, &a, 4);
      __builtin_memcpy(p + n - 4, &b, 4);
    } else if (n > 0) {
      char a = s[0], b = s[n / 2], c = s[n - 1];
      p[0] = a;
      p[n / 2] = b;
      p[n - 1] = c;
    }
    return p + n;
  }
  if (n <= 32) {
    char a[16], b[16];
    __builtin_memcpy(a, s, 16);
    __builtin_memcpy(b, s + n - 16, 16);
    __builtin_memcpy(p, a, 16);
    __builtin_memcpy(p + n - 16, b, 16);
    return p + n;
  }
  memcpy(p, s, n);
  return p + n;
}

/* Free content bytes left in b; 0 when the buffer is already past its limit. */
static inline size_t trail__buf_room(const trail__buf *b) {
  return b->len < b->limit ? b->limit - b->len : 0;
}

/*
 * Appends n bytes of ready-made JSON text, or nothing at all: when the bytes
 * do not fit in what is left of the budget the buffer is unchanged except
 * for its truncated flag, and -1 is returned. Numbers and literals go
 * through here, because half a number is a different number. Inline: it
 * runs a dozen times per line, on pieces of a few bytes.
 */
static inline int trail__buf_put(trail__buf *b, const char *s, size_t n) {
  if (n > trail__buf_room(b)) {
    b->truncated = 1;
    return -1;
  }
  trail__copy(b->data + b->len, s, n);
  b->len += n;
  return 0;
}

/*
 * Appends n bytes without looking at the limit. For the caller that has
 * reserved the room beforehand, typically the closing bytes of a line, which
 * live in the TRAIL__BUF_SLACK bytes behind the limit.
 */
static inline void trail__buf_put_unchecked(trail__buf *b, const char *s,
                                            size_t n) {
  trail__copy(b->data + b->len, s, n);
  b->len += n;
}

/*
 * A JSON string, quotes included, from n bytes at s (NUL bytes are data):
 * '"' and '\\' escaped; \b \f \n \r \t short forms; every other C0 control,
 * DEL, the C1 controls U+0080..U+009F, U+2028 and U+2029 as \u00xx / \u20xx
 * (lowercase hex); invalid UTF-8 (overlong forms, surrogates, > U+10FFFF,
 * truncated sequences, stray continuation bytes) replaced by U+FFFD, one per
 * maximal ill-formed subpart (Unicode ch. 3, "U+FFFD substitution of maximal
 * subparts"; Python's decode('utf-8', 'replace')).
 * Returns 0 when written whole, 1 when cut (truncated flag set), -1 when not
 * even "" fits (nothing written, truncated flag set). A cut falls between
 * two characters or escapes, never inside one, and reads no input beyond
 * the budget. n is a byte count (TRAIL_NTS is not understood here); a NULL
 * s is the empty string.
 */
int trail__put_string(trail__buf *b, const char *s, size_t n);

/* Decimal integers, exact over the whole range. -1 and nothing when no room. */
int trail__put_int(trail__buf *b, int64_t v);
int trail__put_uint(trail__buf *b, uint64_t v);

/*
 * The shortest decimal text that strtod() reads back to exactly v (valid
 * JSON number: "12.5", "13", "-0", "1e+300", "5e-324"); NaN, +Inf and -Inf as
 * the JSON strings "NaN", "+Inf", "-Inf". Independent of the C locale.
 * -1 and nothing when no room.
 *
 * The digits are Python's repr() digits (the closest of the shortest); the
 * text is positional from 1e-4 up to below 1e16 ("0.0001",
 * "9007199254740992"), else one digit, the rest after a point and a signed
 * exponent without zero padding ("1e+16", "1.5e-5"). Integral values have
 * no ".0", so a JSON reader may take them for integers.
 */
int trail__put_double(trail__buf *b, double v);
/* The same text into out (at least 32 bytes), NUL-terminated; returns length.
 * NaN and infinities give NaN, +Inf, -Inf without quotes. */
size_t trail__format_double(double v, char *out);

/* true / false. -1 and nothing when no room. */
int trail__put_bool(trail__buf *b, int v);

/*
 * A jansson value, compact (no spaces), keys in the object's iteration order,
 * strings through trail__put_string, reals through trail__put_double, NULL as
 * null. Nesting deeper than TRAIL__JSON_MAX_DEPTH is replaced by the string
 * "[max depth]" (not a truncation). When the value does not fit, as much as
 * fits is kept and the open arrays and objects are closed so the output
 * stays valid JSON; the truncated flag is set and 1 returned. 0 when whole;
 * -1 when nothing fits. What is kept is a prefix of the value: members in
 * order, up to the first that does not fit, which is left out whole (with
 * its comma, and its key) unless it is a string or a container, which is
 * cut in turn. Keys are never cut.
 */
int trail__put_json(trail__buf *b, const struct json_t *v);

#endif /* TRAIL_ENCODE_H */
