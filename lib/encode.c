/*
 * The JSON encoder: strings, integers, literals and jansson values appended
 * to a bounded buffer. Doubles live in double.c.
 *
 * Nothing here allocates, locks or keeps state between calls: every function
 * works only on the trail__buf it is given, so distinct buffers may be used
 * from distinct threads at the same time.
 */
#define _POSIX_C_SOURCE 200809L

#include "encode.h"
#include "internal.h"

#include <jansson.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Raw bytes                                                                */
/* ------------------------------------------------------------------------ */

/*
 * trail__buf_put() and trail__buf_put_unchecked() are static inline in
 * encode.h: they run a dozen times per line, on pieces of a few bytes.
 */
#define room_left trail__buf_room

/* ------------------------------------------------------------------------ */
/* Strings                                                                  */
/* ------------------------------------------------------------------------ */

static const char hex_digits[] = "0123456789abcdef";

/* U+FFFD, the replacement character, in UTF-8. */
static const char replacement[] = "\xef\xbf\xbd";

/* The length of \u00xx and \u20xx. */
#define UESC_LEN 6u

/* The bytes plain ASCII is checked and copied in at a time. */
#define WORD sizeof(uint64_t)

/* 1 for the bytes that go out as they come: printable ASCII but '"', '\\'. */
#define P4 1, 1, 1, 1
#define P16 P4, P4, P4, P4
const unsigned char trail__plain_table[256] = {
    /* 0x00..0x1f: controls */
    [0x20] = 1,
    [0x21] = 1, /* '"' (0x22) is not plain */
    [0x23] = 1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1, /* 0x23..0x2f */
    [0x30] = P16,
    [0x40] = P16,
    [0x50] = 1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1, /* 0x50..0x5b */
    [0x5d] = 1,
    1,
    1, /* '\\' (0x5c) is not plain */
    [0x60] = P16,
    [0x70] = 1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1, /* DEL is not */
};
#undef P16
#undef P4

static int is_plain(unsigned char c) { return trail__plain_table[c]; }

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/*
 * Nonzero when one of the eight bytes packed in x is not plain. Bytes with
 * the high bit set are caught first; once all bytes are known to be below
 * 0x80, adding or subtracting a per-byte constant cannot carry from one byte
 * into the next unless the byte tested for is present, so each test below is
 * exact for the word as a whole.
 */
static int word_has_special(uint64_t x) {
  if (x & HIGHS)
    return 1;
  uint64_t ctl = (x - ONES * 0x20) & HIGHS; /* a byte below 0x20 */
  uint64_t del = (x + ONES) & HIGHS;        /* a byte equal to 0x7f */
  uint64_t q = x ^ (ONES * '"');
  uint64_t bs = x ^ (ONES * '\\');
  uint64_t zq = (q - ONES) & ~q & HIGHS;    /* a byte equal to '"' */
  uint64_t zbs = (bs - ONES) & ~bs & HIGHS; /* a byte equal to '\\' */
  return (ctl | del | zq | zbs) != 0;
}

/*
 * Looks at the non-ASCII byte sequence starting at p (avail > 0 bytes, the
 * first one >= 0x80) and returns how many bytes it spans. *valid is set to 1
 * when those bytes are one well-formed character, or to 0 when they are a
 * maximal subpart of an ill-formed sequence, to be replaced by one U+FFFD.
 *
 * The lead byte fixes the length and the range its second byte must fall in
 * (Unicode Table 3-7: this is where overlong forms, surrogates and code
 * points above U+10FFFF are refused); every later byte must be 80..BF. The
 * subpart ends at the first byte that cannot continue the sequence, which is
 * left to start the next one.
 */
static size_t utf8_scan(const unsigned char *p, size_t avail, int *valid) {
  unsigned char c = p[0], lo = 0x80, hi = 0xbf;
  size_t need;

  *valid = 0;
  if (c < 0xc2) {
    return 1; /* a stray continuation byte, or an overlong C0/C1 lead */
  } else if (c < 0xe0) {
    need = 2;
  } else if (c < 0xf0) {
    need = 3;
    if (c == 0xe0)
      lo = 0xa0; /* below: overlong */
    else if (c == 0xed)
      hi = 0x9f; /* above: surrogates */
  } else if (c < 0xf5) {
    need = 4;
    if (c == 0xf0)
      lo = 0x90; /* below: overlong */
    else if (c == 0xf4)
      hi = 0x8f; /* above: beyond U+10FFFF */
  } else {
    return 1; /* F5..FF never occur in UTF-8 */
  }

  if (avail < 2 || p[1] < lo || p[1] > hi)
    return 1;
  for (size_t i = 2; i < need; i++)
    if (i >= avail || (p[i] & 0xc0) != 0x80)
      return i;
  *valid = 1;
  return need;
}

/* The letter of the two-byte escape for c ('n' for '\n'), or 0 if none. */
static char short_escape(unsigned char c) {
  static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
  const char *hit = memchr(from, c, sizeof from - 1);
  if (hit == NULL)
    return 0;
  return to[hit - from];
}

/* Writes \u00xx for the byte value c into o (UESC_LEN bytes). */
static void put_u00(char *o, unsigned c) {
  o[0] = '\\';
  o[1] = 'u';
  o[2] = '0';
  o[3] = '0';
  o[4] = hex_digits[(c >> 4) & 0xf];
  o[5] = hex_digits[c & 0xf];
}

/*
 * The last r (1..7) bytes at p as one word, assembled from 4-, 2- and 1-byte
 * loads and padded with a plain byte, so that nothing past the input is read.
 */
static inline uint64_t load_short(const unsigned char *p, size_t r) {
  unsigned char w[WORD] = {'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'};
  size_t at = 0;
  uint64_t x;
  if (r & 4) {
    memcpy(w, p, 4);
    at = 4;
  }
  if (r & 2) {
    memcpy(w + at, p + at, 2);
    at += 2;
  }
  if (r & 1)
    w[at] = p[at];
  memcpy(&x, w, sizeof x);
  return x;
}

/*
 * The last 1..7 bytes before lim, after the whole words up to run, checked
 * and copied in one word too: read as the final eight bytes of the input
 * when there are eight (overlapping what was checked), else assembled by
 * load_short(). Returns lim when they are all plain, else run unchanged,
 * for the byte loop to find where they stop.
 */
static inline size_t plain_tail(const unsigned char *p, char *o, size_t run,
                                size_t lim) {
  uint64_t x;
  if (lim >= WORD) {
    memcpy(&x, p + lim - WORD, sizeof x);
    if (!word_has_special(x)) {
      memcpy(o + lim - WORD, &x, sizeof x);
      return lim;
    }
  } else {
    x = load_short(p + run, lim - run);
    if (!word_has_special(x)) {
      memcpy(o + run, &x, sizeof x);
      return lim;
    }
  }
  return run;
}

/*
 * Copies the run of plain ASCII at the start of the lim bytes at p to o and
 * returns its length. Plain ASCII is checked and copied a word at a time,
 * with no call: a word is stored whole before it is known how much of it
 * counts, which the buffer's slack beyond its limit makes safe.
 */
static inline size_t plain_run(const unsigned char *p, char *o, size_t lim) {
  size_t run = 0;
  while (lim - run >= WORD) {
    uint64_t x;
    memcpy(&x, p + run, sizeof x);
    if (word_has_special(x))
      break;
    memcpy(o + run, &x, sizeof x);
    run += WORD;
  }
  if (run < lim && lim - run < WORD)
    run = plain_tail(p, o, run, lim);
  while (run < lim && trail__plain_table[p[run]]) {
    o[run] = (char)p[run];
    run++;
  }
  return run;
}

/*
 * Writes the escape of the ASCII byte c that ended a plain run (a control
 * byte, DEL, '"' or '\\') to o and returns its length; 0 when the string is
 * to be cut here: the escape does not fit in room, or c is plain and the
 * run stopped only because the room ended.
 */
static inline size_t put_ascii_escape(char *o, size_t room, unsigned char c) {
  char e = short_escape(c);
  if (is_plain(c) || room < (e ? 2u : UESC_LEN))
    return 0;
  if (e) {
    o[0] = '\\';
    o[1] = e;
    return 2;
  }
  put_u00(o, c);
  return UESC_LEN;
}

/*
 * Writes what the non-ASCII sequence at p (avail bytes) becomes to o, sets
 * *used to the input bytes it spans and returns the bytes written; 0 when
 * that does not fit in room and the string is to be cut before it. An
 * ill-formed subpart becomes U+FFFD, the characters listed below an escape,
 * any other character itself.
 */
static inline size_t put_non_ascii(char *o, size_t room, const unsigned char *p,
                                   size_t avail, size_t *used) {
  int valid;
  size_t len = utf8_scan(p, avail, &valid);
  *used = len;
  if (!valid) {
    if (room < sizeof replacement - 1)
      return 0;
    memcpy(o, replacement, sizeof replacement - 1);
    return sizeof replacement - 1;
  }
  if (len == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
    /* C1 controls U+0080..U+009F: invisible and dangerous on terminals. */
    if (room < UESC_LEN)
      return 0;
    put_u00(o, p[1]);
    return UESC_LEN;
  }
  if (len == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
      (p[2] == 0xa8 || p[2] == 0xa9)) {
    /* U+2028 and U+2029 end a line for JavaScript and some readers. */
    if (room < UESC_LEN)
      return 0;
    memcpy(o, p[2] == 0xa8 ? "\\u2028" : "\\u2029", UESC_LEN);
    return UESC_LEN;
  }
  if (room < len)
    return 0;
  memcpy(o, p, len);
  return len;
}

/*
 * Writes a JSON string for the n bytes at s, in one pass over the input
 * that stops where the budget ends.
 *
 * The output is produced in units that are never split: a run of plain ASCII
 * (which may be split anywhere, since every byte is a character), one escape,
 * one valid multi-byte character, or one U+FFFD. The room is computed once
 * with the closing quote already reserved; as soon as a unit does not fit,
 * the string is closed there. Since the loop stops at the cut, a huge input
 * costs no more than the budget.
 *
 * A NULL s is taken as the empty string. n is a byte count: the caller
 * resolves NUL-terminated strings before calling.
 */
int trail__put_string(trail__buf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  const unsigned char *end;
  size_t room = room_left(b);
  char *o;
  int cut = 0;

  if (room < 2) {
    b->truncated = 1;
    return -1;
  }
  if (p == NULL) {
    p = (const unsigned char *)"";
    n = 0;
  }
  end = p + n;
  room -= 2; /* both quotes */
  o = b->data + b->len;
  *o++ = '"';

  while (p < end) {
    size_t avail = (size_t)(end - p);
    size_t run = plain_run(p, o, avail < room ? avail : room);
    o += run;
    p += run;
    room -= run;
    if (p == end)
      break;

    size_t used = 1;
    size_t w = *p < 0x80 ? put_ascii_escape(o, room, *p)
                         : put_non_ascii(o, room, p, (size_t)(end - p), &used);
    if (w == 0) {
      cut = 1;
      break;
    }
    o += w;
    room -= w;
    p += used;
  }

  *o++ = '"';
  b->len = (size_t)(o - b->data);
  if (cut)
    b->truncated = 1;
  return cut;
}

/* ------------------------------------------------------------------------ */
/* Integers and literals                                                    */
/* ------------------------------------------------------------------------ */

const char trail__digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/*
 * Writes the decimal digits of v so that they end just before end, two at a
 * time, and returns where they start. 20 bytes are always enough.
 */
static char *u64_to_dec(uint64_t v, char *end) {
  char *p = end;
  while (v >= 100) {
    unsigned d = (unsigned)(v % 100) * 2;
    v /= 100;
    *--p = trail__digit_pairs[d + 1];
    *--p = trail__digit_pairs[d];
  }
  if (v >= 10) {
    unsigned d = (unsigned)v * 2;
    *--p = trail__digit_pairs[d + 1];
    *--p = trail__digit_pairs[d];
  } else {
    *--p = (char)('0' + v);
  }
  return p;
}

/*
 * A signed 64-bit integer in decimal. The magnitude is taken in unsigned
 * arithmetic, which is what makes INT64_MIN exact. Refused whole (-1) when
 * it does not fit.
 */
int trail__put_int(trail__buf *b, int64_t v) {
  char tmp[24];
  char *end = tmp + sizeof tmp;
  uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char *p = u64_to_dec(mag, end);
  if (v < 0)
    *--p = '-';
  return trail__buf_put(b, p, (size_t)(end - p));
}

/* An unsigned 64-bit integer in decimal; refused whole (-1) when no room. */
int trail__put_uint(trail__buf *b, uint64_t v) {
  char tmp[24];
  char *end = tmp + sizeof tmp;
  char *p = u64_to_dec(v, end);
  return trail__buf_put(b, p, (size_t)(end - p));
}

/* true or false; refused whole (-1) when no room. */
int trail__put_bool(trail__buf *b, int v) {
  return v ? trail__buf_put(b, "true", 4) : trail__buf_put(b, "false", 5);
}

/* ------------------------------------------------------------------------ */
/* jansson values                                                           */
/* ------------------------------------------------------------------------ */

static int put_value(trail__buf *b, json_t *v, int depth);

/*
 * Arrays and objects reserve their closing byte by lowering the limit by one
 * while their members are written, so whatever happens inside, there is
 * always room to close. A member that is refused is rolled back together
 * with its comma (and, in objects, its key); after the first member that is
 * refused or cut, the rest are left out, so the output is a prefix of the
 * value with its containers closed.
 */
static int put_array(trail__buf *b, json_t *v, int depth) {
  size_t n = json_array_size(v);
  int ret = 0;

  if (room_left(b) < 2) {
    b->truncated = 1;
    return -1;
  }
  trail__buf_put_unchecked(b, "[", 1);
  b->limit--;
  for (size_t i = 0; i < n; i++) {
    size_t mark = b->len;
    int r = 0;
    if (i > 0)
      r = trail__buf_put(b, ",", 1);
    if (r == 0)
      r = put_value(b, json_array_get(v, i), depth + 1);
    if (r < 0)
      b->len = mark;
    if (r != 0) {
      ret = 1;
      break;
    }
  }
  b->limit++;
  trail__buf_put_unchecked(b, "]", 1);
  if (ret)
    b->truncated = 1;
  return ret;
}

static int put_object(trail__buf *b, json_t *v, int depth) {
  int ret = 0;
  int first = 1;

  if (room_left(b) < 2) {
    b->truncated = 1;
    return -1;
  }
  trail__buf_put_unchecked(b, "{", 1);
  b->limit--;
  for (void *it = json_object_iter(v); it != NULL;
       it = json_object_iter_next(v, it)) {
    const char *key = json_object_iter_key(it);
#if JANSSON_VERSION_HEX >= 0x020e00
    size_t klen = json_object_iter_key_len(it);
#else
    size_t klen = strlen(key);
#endif
    size_t mark = b->len;
    int r = 0;
    if (!first)
      r = trail__buf_put(b, ",", 1);
    /* A key is kept whole or not at all: a cut key would be another key. */
    if (r == 0 && trail__put_string(b, key, klen) != 0)
      r = -1;
    if (r == 0)
      r = trail__buf_put(b, ":", 1);
    if (r == 0)
      r = trail__maybe_redacted(key, klen)
              ? trail__buf_put(b, TRAIL__REDACTED, sizeof TRAIL__REDACTED - 1)
              : put_value(b, json_object_iter_value(it), depth + 1);
    if (r < 0)
      b->len = mark;
    if (r != 0) {
      ret = 1;
      break;
    }
    first = 0;
  }
  b->limit++;
  trail__buf_put_unchecked(b, "}", 1);
  if (ret)
    b->truncated = 1;
  return ret;
}

/* depth counts the containers around v. */
static int put_value(trail__buf *b, json_t *v, int depth) {
  if (v == NULL)
    return trail__buf_put(b, "null", 4);
  switch (json_typeof(v)) {
  case JSON_OBJECT:
  case JSON_ARRAY:
    if (depth >= TRAIL__JSON_MAX_DEPTH)
      return trail__buf_put(b, "\"[max depth]\"", 13);
    return json_is_object(v) ? put_object(b, v, depth) : put_array(b, v, depth);
  case JSON_STRING:
    return trail__put_string(b, json_string_value(v), json_string_length(v));
  case JSON_INTEGER:
    return trail__put_int(b, (int64_t)json_integer_value(v));
  case JSON_REAL:
    return trail__put_double(b, json_real_value(v));
  case JSON_TRUE:
    return trail__buf_put(b, "true", 4);
  case JSON_FALSE:
    return trail__buf_put(b, "false", 5);
  case JSON_NULL:
  default:
    return trail__buf_put(b, "null", 4);
  }
}

/*
 * A jansson value as compact JSON, written by this encoder rather than by
 * json_dumps(), which allocates. Containers nested deeper than
 * TRAIL__JSON_MAX_DEPTH become the string "[max depth]" (which also stops a
 * value that contains itself); that replacement is not a truncation.
 *
 * Under a tight budget the output is the longest prefix of the value that
 * fits, member by member, with every open container closed: a string member
 * may be cut like any string, a number, literal or key is kept whole or left
 * out. Returns 0 when whole, 1 when cut (truncated flag set), -1 when not
 * even the outermost value could start (nothing written).
 */
int trail__put_json(trail__buf *b, const struct json_t *v) {
  /* jansson's iteration API takes non-const pointers; nothing is modified. */
  return put_value(b, (json_t *)v, 0);
}
