/*
 * Tests for the JSON encoder: strings (escaping, UTF-8 repair, cutting),
 * integers, literals, the refusal rule and jansson values.
 *
 * Every string the encoder produces is also read back with jansson, so each
 * expected output is proven to be valid JSON that decodes to the expected
 * text. The expected outputs of the table were derived from Python's
 * bytes.decode('utf-8', 'replace'); the randomized tests compare with a
 * reference decoder built here from first principles (every scalar value
 * encoded, every prefix of every encoding recorded), which shares no code
 * with the encoder.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "encode.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A buffer over exactly limit bytes of heap plus the 8 bytes of scratch the
 * encoder may use past the limit (encode.h), so that any write further is
 * caught by the sanitizers.
 */
static trail__buf buf_new(size_t limit) {
  trail__buf b = {0};
  b.data = malloc(limit + TRAIL__BUF_SCRATCH);
  assert_non_null(b.data);
  memset(b.data, 0xaa, limit + TRAIL__BUF_SCRATCH);
  b.limit = limit;
  return b;
}

static void buf_free(trail__buf *b) {
  free(b->data);
  b->data = NULL;
}

/* Nothing was written between from and the end of the storage. */
static void assert_untouched(const trail__buf *b, size_t from, size_t size) {
  for (size_t i = from; i < size; i++)
    if ((unsigned char)b->data[i] != 0xaa)
      fail_msg("byte %zu written beyond the reported length", i);
}

/*
 * Parses len bytes of JSON text that must be one string and compares what it
 * decodes to with want.
 */
static void assert_json_string(const char *what, const char *json, size_t len,
                               const char *want, size_t want_len) {
  json_error_t err;
  json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  if (v == NULL)
    fail_msg("%s: not valid JSON (%s): %.*s", what, err.text, (int)len, json);
  if (!json_is_string(v))
    fail_msg("%s: not a JSON string", what);
  if (json_string_length(v) != want_len ||
      memcmp(json_string_value(v), want, want_len) != 0)
    fail_msg("%s: decodes to other text", what);
  json_decref(v);
}

/* Encodes n bytes as a string into a fresh 4 KiB buffer; the caller frees. */
static trail__buf encode_whole(const char *s, size_t n) {
  trail__buf b = buf_new(4096);
  assert_int_equal(trail__put_string(&b, s, n), 0);
  assert_int_equal(b.truncated, 0);
  return b;
}

/* ------------------------------------------------------------------------ */
/* The string table                                                         */
/* ------------------------------------------------------------------------ */

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define R "\xef\xbf\xbd"
/* A literal and its length, NUL bytes included. */
#define B(s) s, sizeof(s) - 1

struct str_case {
  const char *name;
  const char *in;
  size_t in_len;
  const char *json; /* the exact output, quotes included */
  size_t json_len;
  const char *text; /* what the output decodes to */
  size_t text_len;
};

static const struct str_case str_cases[] = {
    {"plain ASCII", B("hello world"), B("\"hello world\""), B("hello world")},
    {"empty", B(""), B("\"\""), B("")},
    {"one byte", B("a"), B("\"a\""), B("a")},
    {"long ASCII, several words and a tail",
     B("The quick brown fox jumps over the lazy dog 0123456789"),
     B("\"The quick brown fox jumps over the lazy dog 0123456789\""),
     B("The quick brown fox jumps over the lazy dog 0123456789")},
    {"slash is not escaped", B("a/b</script>"), B("\"a/b</script>\""),
     B("a/b</script>")},
    {"quote", B("say \"hi\""), B("\"say \\\"hi\\\"\""), B("say \"hi\"")},
    {"backslash", B("C:\\path\\file"), B("\"C:\\\\path\\\\file\""),
     B("C:\\path\\file")},
    {"quote after one full word", B("abcdefgh\"ijklmnop"),
     B("\"abcdefgh\\\"ijklmnop\""), B("abcdefgh\"ijklmnop")},
    {"backslash at the end of two words", B("0123456789abcdef\\"),
     B("\"0123456789abcdef\\\\\""), B("0123456789abcdef\\")},
    {"control inside a word",
     B("abc\x01"
       "defghijk"),
     B("\"abc\\u0001defghijk\""),
     B("abc\x01"
       "defghijk")},
    {"DEL inside a word", B("abcdefg\x7fhij"), B("\"abcdefg\\u007fhij\""),
     B("abcdefg\x7fhij")},
    {"short escapes", B("\b\f\n\r\t"), B("\"\\b\\f\\n\\r\\t\""),
     B("\b\f\n\r\t")},
    {"line break stays escaped", B("line1\nline2\r\n"),
     B("\"line1\\nline2\\r\\n\""), B("line1\nline2\r\n")},
    {"NUL alone", B("\x00"), B("\"\\u0000\""), B("\x00")},
    {"NUL inside",
     B("a\x00"
       "b"),
     B("\"a\\u0000b\""),
     B("a\x00"
       "b")},
    {"NULs and text", B("\x00\x00x\x00"), B("\"\\u0000\\u0000x\\u0000\""),
     B("\x00\x00x\x00")},
    {"2-byte", B("\xc3\xa9"), B("\"\xc3\xa9\""), B("\xc3\xa9")},
    {"2-byte lowest U+0080 is C1", B("\xc2\x80"), B("\"\\u0080\""),
     B("\xc2\x80")},
    {"U+00A0 first after C1", B("\xc2\xa0"), B("\"\xc2\xa0\""), B("\xc2\xa0")},
    {"2-byte highest U+07FF", B("\xdf\xbf"), B("\"\xdf\xbf\""), B("\xdf\xbf")},
    {"3-byte euro", B("\xe2\x82\xac"), B("\"\xe2\x82\xac\""),
     B("\xe2\x82\xac")},
    {"3-byte lowest U+0800", B("\xe0\xa0\x80"), B("\"\xe0\xa0\x80\""),
     B("\xe0\xa0\x80")},
    {"U+D7FF before surrogates", B("\xed\x9f\xbf"), B("\"\xed\x9f\xbf\""),
     B("\xed\x9f\xbf")},
    {"U+E000 after surrogates", B("\xee\x80\x80"), B("\"\xee\x80\x80\""),
     B("\xee\x80\x80")},
    {"U+FFFD itself", B(R), B("\"" R "\""), B(R)},
    {"U+FFFF", B("\xef\xbf\xbf"), B("\"\xef\xbf\xbf\""), B("\xef\xbf\xbf")},
    {"4-byte emoji", B("\xf0\x9f\x98\x80"), B("\"\xf0\x9f\x98\x80\""),
     B("\xf0\x9f\x98\x80")},
    {"4-byte lowest U+10000", B("\xf0\x90\x80\x80"), B("\"\xf0\x90\x80\x80\""),
     B("\xf0\x90\x80\x80")},
    {"4-byte highest U+10FFFF", B("\xf4\x8f\xbf\xbf"),
     B("\"\xf4\x8f\xbf\xbf\""), B("\xf4\x8f\xbf\xbf")},
    {"mixed text",
     B("h\xc3\xa9llo w\xc3\xb6rld, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
       "\xf0\x9f\x98\x80!"),
     B("\"h\xc3\xa9llo w\xc3\xb6rld, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
       "\xf0\x9f\x98\x80!\""),
     B("h\xc3\xa9llo w\xc3\xb6rld, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
       "\xf0\x9f\x98\x80!")},
    {"U+2028", B("\xe2\x80\xa8"), B("\"\\u2028\""), B("\xe2\x80\xa8")},
    {"U+2029", B("\xe2\x80\xa9"), B("\"\\u2029\""), B("\xe2\x80\xa9")},
    {"U+2027 is raw", B("\xe2\x80\xa7"), B("\"\xe2\x80\xa7\""),
     B("\xe2\x80\xa7")},
    {"U+202A is raw", B("\xe2\x80\xaa"), B("\"\xe2\x80\xaa\""),
     B("\xe2\x80\xaa")},
    {"U+2028 in text",
     B("a\xe2\x80\xa8"
       "b\xe2\x80\xa9"
       "c"),
     B("\"a\\u2028b\\u2029c\""),
     B("a\xe2\x80\xa8"
       "b\xe2\x80\xa9"
       "c")},
    {"C1 U+0085 NEL", B("\xc2\x85"), B("\"\\u0085\""), B("\xc2\x85")},
    {"C1 U+009F", B("\xc2\x9f"), B("\"\\u009f\""), B("\xc2\x9f")},
    {"C1 U+009B CSI in text",
     B("x\xc2\x9b"
       "31my"),
     B("\"x\\u009b31my\""),
     B("x\xc2\x9b"
       "31my")},
    {"overlong 2-byte C0 AF", B("\xc0\xaf"), B("\"" R R "\""), B(R R)},
    {"overlong 2-byte C0 80", B("\xc0\x80"), B("\"" R R "\""), B(R R)},
    {"overlong 2-byte C1 BF", B("\xc1\xbf"), B("\"" R R "\""), B(R R)},
    {"overlong 3-byte E0 80 80", B("\xe0\x80\x80"), B("\"" R R R "\""),
     B(R R R)},
    {"overlong 3-byte E0 9F BF", B("\xe0\x9f\xbf"), B("\"" R R R "\""),
     B(R R R)},
    {"overlong 4-byte F0 80 80 80", B("\xf0\x80\x80\x80"), B("\"" R R R R "\""),
     B(R R R R)},
    {"overlong 4-byte F0 8F BF BF", B("\xf0\x8f\xbf\xbf"), B("\"" R R R R "\""),
     B(R R R R)},
    {"surrogate ED A0 80", B("\xed\xa0\x80"), B("\"" R R R "\""), B(R R R)},
    {"surrogate ED BF BF", B("\xed\xbf\xbf"), B("\"" R R R "\""), B(R R R)},
    {"surrogate pair CESU-8", B("\xed\xa0\xbd\xed\xb8\x80"),
     B("\"" R R R R R R "\""), B(R R R R R R)},
    {"above U+10FFFF F4 90 80 80", B("\xf4\x90\x80\x80"), B("\"" R R R R "\""),
     B(R R R R)},
    {"above U+10FFFF F4 BF BF BF", B("\xf4\xbf\xbf\xbf"), B("\"" R R R R "\""),
     B(R R R R)},
    {"F5 lead", B("\xf5\x80\x80\x80"), B("\"" R R R R "\""), B(R R R R)},
    {"F7 lead", B("\xf7\xbf\xbf\xbf"), B("\"" R R R R "\""), B(R R R R)},
    {"5-byte form", B("\xf8\x88\x80\x80\x80"), B("\"" R R R R R "\""),
     B(R R R R R)},
    {"6-byte form", B("\xfc\x84\x80\x80\x80\x80"), B("\"" R R R R R R "\""),
     B(R R R R R R)},
    {"FE", B("\xfe"), B("\"" R "\""), B(R)},
    {"FF", B("\xff"), B("\"" R "\""), B(R)},
    {"FF FE in text",
     B("a\xff\xfe"
       "b"),
     B("\"a" R R "b\""), B("a" R R "b")},
    {"lone continuation 80", B("\x80"), B("\"" R "\""), B(R)},
    {"lone continuation BF", B("\xbf"), B("\"" R "\""), B(R)},
    {"continuations run", B("\x80\xbf\x80"), B("\"" R R R "\""), B(R R R)},
    {"continuation after a valid char", B("\xc3\xa9\xa9"),
     B("\"\xc3\xa9" R "\""), B("\xc3\xa9" R)},
    {"truncated 2-byte at end", B("ab\xc3"), B("\"ab" R "\""), B("ab" R)},
    {"truncated 3-byte at end", B("ab\xe2\x82"), B("\"ab" R "\""), B("ab" R)},
    {"truncated 4-byte at end, 3 of 4", B("\xf0\x9f\x98"), B("\"" R "\""),
     B(R)},
    {"truncated 4-byte at end, 2 of 4", B("\xf0\x9f"), B("\"" R "\""), B(R)},
    {"lead F0 alone", B("\xf0"), B("\"" R "\""), B(R)},
    {"truncated 2-byte then ASCII",
     B("a\xc3"
       "b"),
     B("\"a" R "b\""), B("a" R "b")},
    {"truncated 3-byte then ASCII",
     B("a\xe2\x82"
       "b"),
     B("\"a" R "b\""), B("a" R "b")},
    {"truncated 4-byte then ASCII", B("\xf0\x9f\x98z"), B("\"" R "z\""),
     B(R "z")},
    {"truncated then a valid char", B("\xe2\x82\xe2\x82\xac"),
     B("\"" R "\xe2\x82\xac\""), B(R "\xe2\x82\xac")},
    {"truncated 4-byte then a valid 4-byte", B("\xf0\x9f\x98\xf0\x9f\x98\x80"),
     B("\"" R "\xf0\x9f\x98\x80\""), B(R "\xf0\x9f\x98\x80")},
    {"truncated then quote", B("\xc3\""), B("\"" R "\\\"\""), B(R "\"")},
    {"truncated then NUL", B("\xe2\x82\x00"), B("\"" R "\\u0000\""),
     B(R "\x00")},
    {"E0 A0 at end", B("\xe0\xa0"), B("\"" R "\""), B(R)},
    {"ED 9F at end", B("\xed\x9f"), B("\"" R "\""), B(R)},
    {"F4 8F BF at end", B("\xf4\x8f\xbf"), B("\"" R "\""), B(R)},
    {"F1 80 80 at end", B("\xf1\x80\x80"), B("\"" R "\""), B(R)},
    {"E0 then a bad second byte",
     B("\xe0"
       "A"),
     B("\"" R "A\""), B(R "A")},
    {"ED then a surrogate second byte, then ASCII",
     B("\xed\xa0"
       "A"),
     B("\"" R R "A\""), B(R R "A")},
    {"bad bytes between ASCII",
     B("a\xff"
       "b\xc0"
       "c\xf5"
       "d"),
     B("\"a" R "b" R "c" R "d\""), B("a" R "b" R "c" R "d")},
    {"Unicode Table 3-8 example",
     B("a\xf1\x80\x80\xe1\x80\xc2"
       "b\x80"
       "c\x80\xbf"
       "d"),
     B("\"a" R R R "b" R "c" R R "d\""), B("a" R R R "b" R "c" R R "d")},
};

static void test_string_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof str_cases / sizeof str_cases[0]; i++) {
    const struct str_case *c = &str_cases[i];
    trail__buf b = encode_whole(c->in, c->in_len);
    if (b.len != c->json_len || memcmp(b.data, c->json, b.len) != 0)
      fail_msg("case \"%s\": got %.*s", c->name, (int)b.len, b.data);
    assert_json_string(c->name, b.data, b.len, c->text, c->text_len);
    buf_free(&b);
  }
}

/* Every ASCII byte alone: plain bytes as they are, the rest escaped. */
static void test_string_ascii_bytes(void **state) {
  (void)state;
  for (unsigned c = 0; c < 0x80; c++) {
    char in = (char)c, want[16], name[32];
    switch (c) {
    case '"':
      strcpy(want, "\"\\\"\"");
      break;
    case '\\':
      strcpy(want, "\"\\\\\"");
      break;
    case '\b':
      strcpy(want, "\"\\b\"");
      break;
    case '\f':
      strcpy(want, "\"\\f\"");
      break;
    case '\n':
      strcpy(want, "\"\\n\"");
      break;
    case '\r':
      strcpy(want, "\"\\r\"");
      break;
    case '\t':
      strcpy(want, "\"\\t\"");
      break;
    default:
      if (c < 0x20 || c == 0x7f)
        snprintf(want, sizeof want, "\"\\u%04x\"", c);
      else
        snprintf(want, sizeof want, "\"%c\"", (int)c);
    }
    snprintf(name, sizeof name, "byte 0x%02x", c);
    trail__buf b = encode_whole(&in, 1);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
      fail_msg("%s: got %.*s, want %s", name, (int)b.len, b.data, want);
    assert_json_string(name, b.data, b.len, &in, 1);
    buf_free(&b);
  }
}

/*
 * One special byte at every position of a longer plain string, so that the
 * word-at-a-time scan is seen to notice it in every lane and in the tail.
 */
static void test_string_special_in_every_lane(void **state) {
  static const struct {
    unsigned char byte;
    const char *out;
  } specials[] = {{0x00, "\\u0000"}, {0x1f, "\\u001f"}, {'"', "\\\""},
                  {'\\', "\\\\"},    {0x7f, "\\u007f"}, {0x80, R},
                  {0xff, R},         {' ', " "},        {'~', "~"}};
  (void)state;
  for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
    for (size_t pos = 0; pos < 27; pos++) {
      char in[27], want[64];
      memset(in, 'x', sizeof in);
      in[pos] = (char)specials[k].byte;
      snprintf(want, sizeof want, "\"%.*s%s%.*s\"", (int)pos, in,
               specials[k].out, (int)(sizeof in - pos - 1), in + pos + 1);
      trail__buf b = encode_whole(in, sizeof in);
      if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("byte 0x%02x at %zu: got %.*s", specials[k].byte, pos,
                 (int)b.len, b.data);
      buf_free(&b);
    }
  }
}

static void test_string_null_pointer(void **state) {
  (void)state;
  trail__buf b = encode_whole(NULL, 0);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.data, "\"\"", 2);
  buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Reference model                                                          */
/* ------------------------------------------------------------------------ */

/*
 * The model knows UTF-8 only as "the textbook bit layout of every scalar
 * value": it encodes U+0080..U+10FFFF (surrogates excluded) and records
 * which byte strings begin some encoding. A maximal subpart is then, by
 * definition, the longest run of bytes at a position that still begins an
 * encoding, when it is not a whole one.
 */
static unsigned char ref_lead_len[256]; /* encoding length, 0: not a lead */
static unsigned char *ref_prefix2;      /* [b0 << 8 | b1] */
static unsigned char *ref_prefix3;      /* bit (b0 << 16 | b1 << 8 | b2) */

static size_t ref_encode(uint32_t cp, unsigned char *o) {
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xc0 | cp >> 6);
    o[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xe0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (unsigned char)(0xf0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
  o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
  o[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

static int ref_setup(void **state) {
  (void)state;
  ref_prefix2 = calloc(1, 1u << 16);
  ref_prefix3 = calloc(1, 1u << 21);
  if (!ref_prefix2 || !ref_prefix3)
    return -1;
  for (uint32_t cp = 0x80; cp <= 0x10ffff; cp++) {
    unsigned char o[4];
    if (cp >= 0xd800 && cp <= 0xdfff)
      continue;
    size_t n = ref_encode(cp, o);
    ref_lead_len[o[0]] = (unsigned char)n;
    ref_prefix2[o[0] << 8 | o[1]] = 1;
    if (n >= 3) {
      uint32_t k = (uint32_t)o[0] << 16 | (uint32_t)o[1] << 8 | o[2];
      ref_prefix3[k >> 3] |= (unsigned char)(1u << (k & 7));
    }
  }
  return 0;
}

static int ref_teardown(void **state) {
  (void)state;
  free(ref_prefix2);
  free(ref_prefix3);
  return 0;
}

/* 1 when the k bytes at p begin the encoding of some scalar value. */
static int ref_is_prefix(const unsigned char *p, size_t k) {
  if (k == 1)
    return ref_lead_len[p[0]] != 0;
  if (k == 2)
    return ref_prefix2[p[0] << 8 | p[1]];
  if (k == 3) {
    uint32_t i = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    return (ref_prefix3[i >> 3] >> (i & 7)) & 1;
  }
  /* Four bytes: decode by the layout and see that it encodes back. */
  uint32_t cp = (uint32_t)(p[0] & 7) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
                (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
  unsigned char o[4];
  return cp >= 0x10000 && cp <= 0x10ffff && ref_encode(cp, o) == 4 &&
         memcmp(o, p, 4) == 0;
}

/* One unit of output: what the encoder writes for one character. */
struct unit {
  char json[8];
  size_t json_len;
  char text[4]; /* what it decodes to */
  size_t text_len;
};

static void unit_set(struct unit *u, const char *json, size_t json_len,
                     const void *text, size_t text_len) {
  memcpy(u->json, json, json_len);
  u->json_len = json_len;
  memcpy(u->text, text, text_len);
  u->text_len = text_len;
}

/* Splits n input bytes into units; returns their number (at most n). */
static size_t ref_units(const unsigned char *p, size_t n, struct unit *u) {
  size_t count = 0;
  for (size_t i = 0; i < n;) {
    struct unit *x = &u[count++];
    unsigned c = p[i];
    char esc[8];
    if (c < 0x80) {
      const char *s = NULL;
      switch (c) {
      case '"':
        s = "\\\"";
        break;
      case '\\':
        s = "\\\\";
        break;
      case 8:
        s = "\\b";
        break;
      case 12:
        s = "\\f";
        break;
      case 10:
        s = "\\n";
        break;
      case 13:
        s = "\\r";
        break;
      case 9:
        s = "\\t";
        break;
      }
      if (s == NULL && (c < 0x20 || c == 0x7f)) {
        snprintf(esc, sizeof esc, "\\u%04x", c);
        s = esc;
      }
      if (s)
        unit_set(x, s, strlen(s), p + i, 1);
      else
        unit_set(x, (const char *)p + i, 1, p + i, 1);
      i++;
      continue;
    }
    size_t want = ref_lead_len[c], k = 1;
    while (want && k < want && i + k < n && ref_is_prefix(p + i, k + 1))
      k++;
    if (want == 0 || k < want) {
      unit_set(x, R, 3, R, 3);
      i += k;
      continue;
    }
    uint32_t cp = 0;
    if (k == 2)
      cp = (uint32_t)(c & 0x1f) << 6 | (p[i + 1] & 0x3f);
    else if (k == 3)
      cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(p[i + 1] & 0x3f) << 6 |
           (p[i + 2] & 0x3f);
    if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
      snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
      unit_set(x, esc, 6, p + i, k);
    } else {
      unit_set(x, (const char *)p + i, k, p + i, k);
    }
    i += k;
  }
  return count;
}

/* ------------------------------------------------------------------------ */
/* Random strings                                                           */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rng(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* Fills p with up to max bytes of text meant to hit every encoder path. */
static size_t random_text(unsigned char *p, size_t max) {
  static const unsigned char odd[] = {0xc0, 0xc1, 0xc2, 0xe0, 0xe2, 0xed,
                                      0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x80,
                                      0x8f, 0x90, 0x9f, 0xa0, 0xbf};
  static const uint32_t cps[] = {0x80,    0x85,     0x9f,   0xa0,   0x7ff,
                                 0x800,   0xd7ff,   0xe000, 0xfffd, 0xffff,
                                 0x2027,  0x2028,   0x2029, 0x202a, 0x10000,
                                 0x1f600, 0x10ffff, 0x4e2d, 0xe9};
  size_t n = 0, pieces = rng() % 16;
  for (size_t k = 0; k < pieces && n + 4 <= max; k++) {
    unsigned char o[4];
    size_t len;
    switch (rng() % 7) {
    case 0: /* printable ASCII */
      for (size_t j = rng() % 12; j > 0 && n < max; j--)
        p[n++] = (unsigned char)(0x20 + rng() % 95);
      break;
    case 1: /* controls, quote, backslash, DEL */
      p[n++] = "\x00\x01\x08\x09\x0a\x0c\x0d\x1b\x1f\"\\\x7f"[rng() % 12];
      break;
    case 2: /* a well-formed character */
      len = ref_encode(cps[rng() % (sizeof cps / sizeof cps[0])], o);
      memcpy(p + n, o, len);
      n += len;
      break;
    case 3: { /* any scalar value */
      uint32_t cp = (uint32_t)(rng() % 0x110000);
      if (cp >= 0xd800 && cp <= 0xdfff)
        cp -= 0x800;
      len = ref_encode(cp, o);
      memcpy(p + n, o, len);
      n += len;
      break;
    }
    case 4: /* a well-formed character with its tail cut off */
      len = ref_encode((uint32_t)(0x80 + rng() % 0x10ff80), o);
      len = 1 + rng() % len;
      memcpy(p + n, o, len > 1 ? len - 1 : 1);
      n += len > 1 ? len - 1 : 1;
      break;
    case 5: /* a byte that often starts or breaks a sequence */
      p[n++] = odd[rng() % sizeof odd];
      break;
    default: /* anything */
      p[n++] = (unsigned char)rng();
    }
  }
  return n;
}

/* Random input against the model: exact output and its decoded text. */
static void test_string_random_vs_model(void **state) {
  unsigned char in[80];
  struct unit u[80];
  char want[80 * 8 + 2], text[80 * 4];
  (void)state;
  for (int iter = 0; iter < 200000; iter++) {
    size_t n = random_text(in, sizeof in);
    size_t nu = ref_units(in, n, u), wl = 0, tl = 0;
    want[wl++] = '"';
    for (size_t i = 0; i < nu; i++) {
      memcpy(want + wl, u[i].json, u[i].json_len);
      wl += u[i].json_len;
      memcpy(text + tl, u[i].text, u[i].text_len);
      tl += u[i].text_len;
    }
    want[wl++] = '"';
    trail__buf b = encode_whole((const char *)in, n);
    if (b.len != wl || memcmp(b.data, want, wl) != 0) {
      for (size_t i = 0; i < n; i++)
        print_message("%02x ", in[i]);
      fail_msg("iteration %d: got %.*s, want %.*s", iter, (int)b.len, b.data,
               (int)wl, want);
    }
    assert_json_string("random", b.data, b.len, text, tl);
    buf_free(&b);
  }
}

/* ------------------------------------------------------------------------ */
/* Cutting                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Encodes in under every budget from 0 to past the whole output, with a few
 * bytes already in the buffer, and checks the result against the model: the
 * longest run of whole units that fits, closed by a quote.
 */
static void check_cuts(const unsigned char *in, size_t n) {
  static struct unit u[4096];
  size_t nu = ref_units(in, n, u), whole = 2;
  for (size_t i = 0; i < nu; i++)
    whole += u[i].json_len;

  for (size_t pre = 0; pre <= 3; pre += 3) {
    for (size_t limit = pre; limit <= pre + whole + 1; limit++) {
      trail__buf b = buf_new(limit);
      memcpy(b.data, "abc", pre);
      b.len = pre;
      int r = trail__put_string(&b, (const char *)in, n);

      if (limit - pre < 2) {
        assert_int_equal(r, -1);
        assert_int_equal(b.len, pre);
        assert_int_equal(b.truncated, 1);
        assert_untouched(&b, pre, limit);
        buf_free(&b);
        continue;
      }
      size_t room = limit - pre - 2, used = 0, k = 0, tl = 0;
      char text[4096 * 4];
      while (k < nu && used + u[k].json_len <= room) {
        memcpy(text + tl, u[k].text, u[k].text_len);
        tl += u[k].text_len;
        used += u[k++].json_len;
      }
      assert_int_equal(r, k < nu ? 1 : 0);
      assert_int_equal(b.truncated, k < nu ? 1 : 0);
      assert_int_equal(b.len, pre + used + 2);
      assert_true(b.len <= limit);
      assert_memory_equal(b.data, "abc", pre);
      assert_json_string("cut", b.data + pre, b.len - pre, text, tl);
      buf_free(&b);
    }
  }
}

static void test_string_cut_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof str_cases / sizeof str_cases[0]; i++)
    check_cuts((const unsigned char *)str_cases[i].in, str_cases[i].in_len);
}

static void test_string_cut_random(void **state) {
  unsigned char in[80];
  (void)state;
  for (int iter = 0; iter < 3000; iter++)
    check_cuts(in, random_text(in, sizeof in));
}

/* A cut never ends inside a multi-byte character or an escape. */
static void test_string_cut_examples(void **state) {
  static const struct {
    const char *in;
    size_t limit;
    const char *want;
    int ret;
  } cases[] = {
      {"ab\xf0\x9f\x98\x80", 7, "\"ab\"", 1},
      {"ab\xf0\x9f\x98\x80", 8, "\"ab\xf0\x9f\x98\x80\"", 0},
      {"ab\n", 5, "\"ab\"", 1},
      {"ab\n", 6, "\"ab\\n\"", 0},
      {"ab\x01", 9, "\"ab\"", 1},
      {"ab\x01", 10, "\"ab\\u0001\"", 0},
      {"ab\xc2\x85", 9, "\"ab\"", 1},
      {"ab\xe2\x80\xa8", 10, "\"ab\\u2028\"", 0},
      {"ab\xff", 6, "\"ab\"", 1},
      {"ab\xff", 7, "\"ab" R "\"", 0},
      {"abcdef", 2, "\"\"", 1},
      {"abcdef", 5, "\"abc\"", 1},
      {"", 2, "\"\"", 0},
      {"", 1, "", -1},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    trail__buf b = buf_new(cases[i].limit);
    int r = trail__put_string(&b, cases[i].in, strlen(cases[i].in));
    size_t wl = strlen(cases[i].want);
    if (b.len != wl || memcmp(b.data, cases[i].want, wl) != 0)
      fail_msg("cut example %zu: got %.*s", i, (int)b.len, b.data);
    assert_int_equal(r, cases[i].ret);
    assert_int_equal(b.truncated, cases[i].ret != 0);
    buf_free(&b);
  }
}

/*
 * A 10 MiB string under a small budget. Everything past the first 64 KiB of
 * the input is mapped without access, so an encoder that looked at the rest
 * of the input instead of stopping at its budget would crash here.
 */
static void test_string_huge_input(void **state) {
  const size_t total = 10u << 20, readable = 64u << 10;
  static const struct {
    const char *unit;
    size_t len;
  } fills[] = {{"a", 1},    {"\0", 1},           {"\xc3\xa9", 2},
               {"\xff", 1}, {"\xe2\x80\xa8", 3}, {"x\n", 2}};
  (void)state;
  char *in = mmap(NULL, total, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(in != MAP_FAILED);
  assert_int_equal(mprotect(in + readable, total - readable, PROT_NONE), 0);

  for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
    for (size_t i = 0; i + fills[f].len <= readable; i += fills[f].len)
      memcpy(in + i, fills[f].unit, fills[f].len);
    for (size_t limit = 100; limit <= 16384; limit *= 4) {
      trail__buf b = buf_new(limit);
      assert_int_equal(trail__put_string(&b, in, total), 1);
      assert_int_equal(b.truncated, 1);
      assert_true(b.len <= limit);
      assert_true(b.len + 6 > limit); /* cut at the budget, not before */
      json_t *v =
          json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
      assert_non_null(v);
      assert_true(json_is_string(v));
      json_decref(v);
      buf_free(&b);
    }
  }
  munmap(in, total);
}

/* ------------------------------------------------------------------------ */
/* Integers, literals, refusal                                              */
/* ------------------------------------------------------------------------ */

static void test_int_extremes(void **state) {
  static const struct {
    int64_t v;
    const char *want;
  } ints[] = {{0, "0"},
              {1, "1"},
              {-1, "-1"},
              {9, "9"},
              {10, "10"},
              {-10, "-10"},
              {99, "99"},
              {100, "100"},
              {101, "101"},
              {1000000007, "1000000007"},
              {INT64_MAX, "9223372036854775807"},
              {INT64_MIN, "-9223372036854775808"},
              {INT64_MIN + 1, "-9223372036854775807"}};
  static const struct {
    uint64_t v;
    const char *want;
  } uints[] = {{0, "0"},
               {7, "7"},
               {(uint64_t)INT64_MAX + 1, "9223372036854775808"},
               {UINT64_MAX, "18446744073709551615"},
               {UINT64_MAX - 1, "18446744073709551614"},
               {UINT64_C(10000000000000000000), "10000000000000000000"}};
  (void)state;
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    trail__buf b = buf_new(64);
    assert_int_equal(trail__put_int(&b, ints[i].v), 0);
    assert_int_equal(b.len, strlen(ints[i].want));
    assert_memory_equal(b.data, ints[i].want, b.len);
    buf_free(&b);
  }
  for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
    trail__buf b = buf_new(64);
    assert_int_equal(trail__put_uint(&b, uints[i].v), 0);
    assert_int_equal(b.len, strlen(uints[i].want));
    assert_memory_equal(b.data, uints[i].want, b.len);
    buf_free(&b);
  }
}

/* Every power of ten and its neighbours, and random values, against printf. */
static void test_int_against_printf(void **state) {
  char want[32];
  (void)state;
  for (int iter = 0; iter < 200000; iter++) {
    uint64_t u = rng();
    if (iter < 60) {
      uint64_t p = 1;
      for (int k = 0; k < iter / 3; k++)
        p *= 10;
      u = p + (uint64_t)(iter % 3) - 1;
    } else {
      u >>= rng() % 64; /* all magnitudes */
    }
    trail__buf b = buf_new(64);
    assert_int_equal(trail__put_uint(&b, u), 0);
    snprintf(want, sizeof want, "%" PRIu64, u);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    b.len = 0;
    int64_t s = (int64_t)u;
    assert_int_equal(trail__put_int(&b, s), 0);
    snprintf(want, sizeof want, "%" PRId64, s);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
  }
}

/* The appends that are all or nothing, each with its exact size. */
enum { P_INT, P_UINT, P_TRUE, P_FALSE, P_DOUBLE, P_NAN, P_RAW, P_JSON };

static int put_one(trail__buf *b, int kind) {
  switch (kind) {
  case P_INT:
    return trail__put_int(b, INT64_MIN);
  case P_UINT:
    return trail__put_uint(b, UINT64_MAX);
  case P_TRUE:
    return trail__put_bool(b, 1);
  case P_FALSE:
    return trail__put_bool(b, 0);
  case P_DOUBLE:
    return trail__put_double(b, 0.1 + 0.2);
  case P_NAN:
    return trail__put_double(b, -NAN);
  case P_RAW:
    return trail__buf_put(b, "{\"k\":1}", 7);
  default: {
    json_t *v = json_integer(-42);
    int r = trail__put_json(b, v);
    json_decref(v);
    return r;
  }
  }
}

static void test_refusal(void **state) {
  static const struct {
    int kind;
    const char *want;
  } cases[] = {{P_INT, "-9223372036854775808"},
               {P_UINT, "18446744073709551615"},
               {P_TRUE, "true"},
               {P_FALSE, "false"},
               {P_DOUBLE, "0.30000000000000004"},
               {P_NAN, "\"NaN\""},
               {P_RAW, "{\"k\":1}"},
               {P_JSON, "-42"}};
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = strlen(cases[i].want);
    for (size_t pre = 0; pre <= 5; pre += 5) {
      /* One byte short: nothing written, flag set. */
      trail__buf b = buf_new(pre + n - 1);
      memset(b.data, 'p', pre);
      b.len = pre;
      assert_int_equal(put_one(&b, cases[i].kind), -1);
      assert_int_equal(b.len, pre);
      assert_int_equal(b.truncated, 1);
      assert_untouched(&b, pre, pre + n - 1);
      buf_free(&b);
      /* Exactly enough. */
      b = buf_new(pre + n);
      b.len = pre;
      assert_int_equal(put_one(&b, cases[i].kind), 0);
      assert_int_equal(b.len, pre + n);
      assert_int_equal(b.truncated, 0);
      assert_memory_equal(b.data + pre, cases[i].want, n);
      buf_free(&b);
    }
  }
}

/* A buffer already past its limit refuses everything, without wrapping. */
static void test_refusal_past_limit(void **state) {
  char mem[64];
  trail__buf b = {mem, 20, 10, 0};
  (void)state;
  assert_int_equal(trail__put_int(&b, 1), -1);
  assert_int_equal(trail__put_string(&b, "x", 1), -1);
  assert_int_equal(trail__buf_put(&b, "", 0), 0);
  json_t *v = json_array();
  assert_int_equal(trail__put_json(&b, v), -1);
  json_decref(v);
  assert_int_equal(b.len, 20);
  assert_int_equal(b.truncated, 1);
}

static void test_put_unchecked(void **state) {
  trail__buf b = buf_new(8);
  (void)state;
  b.limit = 2; /* the slack beyond the limit is the caller's business */
  trail__buf_put_unchecked(&b, "}\n", 2);
  trail__buf_put_unchecked(&b, NULL, 0);
  trail__buf_put_unchecked(&b, "abc", 3);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "}\nabc", 5);
  assert_int_equal(b.truncated, 0);
  buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* jansson values                                                           */
/* ------------------------------------------------------------------------ */

/* Encodes v with a large budget and returns the text (caller frees). */
static trail__buf json_whole(const json_t *v) {
  trail__buf b = buf_new(1 << 16);
  assert_int_equal(trail__put_json(&b, v), 0);
  assert_int_equal(b.truncated, 0);
  return b;
}

static void assert_json_text(const json_t *v, const char *want) {
  trail__buf b = json_whole(v);
  if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
    fail_msg("got %.*s, want %s", (int)b.len, b.data, want);
  buf_free(&b);
}

static json_t *sample_value(void) {
  json_t *v = json_pack(
      "{s:i, s:I, s:I, s:f, s:f, s:s, s:[i, s, [], {}, [b, b, n]], "
      "s:{s:{s:[f, f]}, s:s}, s:b, s:n, s:s}",
      "status", 200, "big", (json_int_t)LLONG_MAX, "small",
      (json_int_t)LLONG_MIN, "ms", 12.5, "tiny", 5e-324, "path",
      "/api/orders/42", "list", 1, "two", 1, 0, "nested", "deeper", "xs", 0.1,
      -1e300, "text", "line\nbreak \"quoted\" caf\xc3\xa9 \xf0\x9f\x98\x80",
      "ok", 1, "none", "quote\"key\\", "control\x01\x1f\x7f");
  assert_non_null(v);
  json_object_set_new(v, "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", json_string("v"));
  json_object_set_new(v, "nul", json_stringn("a\0b", 3));
  json_object_set_new(v, "ctl", json_stringn("\xc2\x85\xe2\x80\xa8", 5));
  return v;
}

/* What we write, read back by jansson, is the value we were given. */
static void test_json_round_trip(void **state) {
  (void)state;
  json_t *v = sample_value();
  trail__buf b = json_whole(v);
  json_error_t err;
  json_t *back = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &err);
  if (back == NULL)
    fail_msg("not valid JSON (%s): %.*s", err.text, (int)b.len, b.data);
  assert_true(json_equal(v, back));

  size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII;
  char *d1 = json_dumps(v, flags), *d2 = json_dumps(back, flags);
  assert_non_null(d1);
  assert_non_null(d2);
  assert_string_equal(d1, d2);
  free(d1);
  free(d2);

  /* Compact: no byte of layout outside strings. */
  json_t *small = json_pack("{s:[i,i],s:{s:n}}", "a", 1, 2, "b", "c");
  assert_json_text(small, "{\"a\":[1,2],\"b\":{\"c\":null}}");
  json_decref(small);
  json_decref(back);
  json_decref(v);
  buf_free(&b);
}

static void test_json_scalars(void **state) {
  (void)state;
  json_t *v;
  assert_json_text(NULL, "null");
  v = json_real(13.0); /* integral reals print as integers */
  assert_json_text(v, "13");
  json_decref(v);
  v = json_real(-0.0);
  assert_json_text(v, "-0");
  json_decref(v);
  v = json_real(1e300);
  assert_json_text(v, "1e+300");
  json_decref(v);
  v = json_integer(LLONG_MIN);
  assert_json_text(v, "-9223372036854775808");
  json_decref(v);
  v = json_true();
  assert_json_text(v, "true");
  v = json_false();
  assert_json_text(v, "false");
  v = json_null();
  assert_json_text(v, "null");
  v = json_stringn_nocheck("a\0\xff", 3); /* jansson's own check skipped */
  assert_json_text(v, "\"a\\u0000" R "\"");
  json_decref(v);
  v = json_object();
  assert_json_text(v, "{}");
  json_decref(v);
  v = json_array();
  assert_json_text(v, "[]");
  json_decref(v);
  v = json_pack("[n]");
  assert_json_text(v, "[null]");
  json_decref(v);
}

/* Keys are written with their length: NUL bytes and bad UTF-8 in them too. */
static void test_json_odd_keys(void **state) {
  (void)state;
  json_t *v = json_object();
  json_object_setn_new_nocheck(v, "nul\0key", 7, json_integer(1));
  json_object_setn_new_nocheck(v, "bad\xc3", 4, json_integer(2));
  json_object_set_new(v, "line\nbreak", json_integer(3));
  assert_json_text(v, "{\"nul\\u0000key\":1,\"bad" R "\":2,"
                      "\"line\\nbreak\":3}");
  json_decref(v);
}

/* n nested containers around 1: "[[[...[1]...]]]" or {"k":{"k":...1}}. */
static json_t *nested(int n, int objects) {
  json_t *v = json_integer(1);
  for (int i = 0; i < n; i++) {
    json_t *c;
    if (objects) {
      c = json_object();
      json_object_set_new(c, "k", v);
    } else {
      c = json_array();
      json_array_append_new(c, v);
    }
    v = c;
  }
  return v;
}

static void expect_nested(int n, int objects, const char *inner) {
  char want[1024];
  size_t w = 0;
  int shown = n < TRAIL__JSON_MAX_DEPTH ? n : TRAIL__JSON_MAX_DEPTH;
  for (int i = 0; i < shown; i++)
    w += (size_t)snprintf(want + w, sizeof want - w, "%s",
                          objects ? "{\"k\":" : "[");
  w += (size_t)snprintf(want + w, sizeof want - w, "%s", inner);
  for (int i = 0; i < shown; i++)
    w += (size_t)snprintf(want + w, sizeof want - w, "%s", objects ? "}" : "]");
  json_t *v = nested(n, objects);
  assert_json_text(v, want);
  json_decref(v);
}

static void test_json_depth_limit(void **state) {
  (void)state;
  for (int objects = 0; objects <= 1; objects++) {
    expect_nested(TRAIL__JSON_MAX_DEPTH, objects, "1");
    expect_nested(TRAIL__JSON_MAX_DEPTH + 1, objects, "\"[max depth]\"");
    expect_nested(TRAIL__JSON_MAX_DEPTH + 40, objects, "\"[max depth]\"");
  }
}

/* Two arrays holding each other: the depth limit ends the walk. */
static void test_json_cycle(void **state) {
  (void)state;
  json_t *a = json_array(), *b = json_array();
  json_array_append(a, b);
  json_array_append(b, a);
  trail__buf out = json_whole(a);
  json_t *back = json_loadb(out.data, out.len, 0, NULL);
  assert_non_null(back);
  assert_memory_equal(out.data + TRAIL__JSON_MAX_DEPTH, "\"[max depth]\"", 13);
  json_decref(back);
  buf_free(&out);
  json_array_clear(b); /* break the cycle so both can be freed */
  json_decref(a);
  json_decref(b);
}

/*
 * got is what came back of orig under a budget: the same value with, at
 * each level, a prefix of the members kept, all whole but perhaps the last,
 * which is itself such a prefix (a string: a prefix of its bytes).
 */
static int is_json_prefix(json_t *orig, json_t *got) {
  if (json_equal(orig, got))
    return 1;
  if (json_is_string(orig) && json_is_string(got))
    return json_string_length(got) <= json_string_length(orig) &&
           memcmp(json_string_value(got), json_string_value(orig),
                  json_string_length(got)) == 0;
  if (json_is_array(orig) && json_is_array(got)) {
    size_t n = json_array_size(got);
    if (n > json_array_size(orig))
      return 0;
    for (size_t i = 0; i < n; i++) {
      json_t *o = json_array_get(orig, i), *g = json_array_get(got, i);
      if (!(i + 1 < n ? json_equal(o, g) : is_json_prefix(o, g)))
        return 0;
    }
    return 1;
  }
  if (json_is_object(orig) && json_is_object(got)) {
    void *io = json_object_iter(orig), *ig = json_object_iter(got);
    size_t n = json_object_size(got), i = 0;
    for (; ig != NULL; i++) {
      if (io == NULL ||
          strcmp(json_object_iter_key(io), json_object_iter_key(ig)) != 0)
        return 0;
      json_t *o = json_object_iter_value(io), *g = json_object_iter_value(ig);
      if (!(i + 1 < n ? json_equal(o, g) : is_json_prefix(o, g)))
        return 0;
      io = json_object_iter_next(orig, io);
      ig = json_object_iter_next(got, ig);
    }
    return 1;
  }
  return 0;
}

/*
 * Under every budget from nothing to enough, with a few bytes already in the
 * buffer: valid JSON, within the limit, a prefix of the value, and the
 * return value and flag tell whether it was whole.
 */
static void test_json_cut(void **state) {
  (void)state;
  json_t *v = sample_value();
  trail__buf full = json_whole(v);
  size_t last = 0;

  for (size_t pre = 0; pre <= 2; pre += 2) {
    for (size_t limit = pre; limit <= pre + full.len + 1; limit++) {
      trail__buf b = buf_new(limit);
      memcpy(b.data, "[[", pre);
      b.len = pre;
      int r = trail__put_json(&b, v);
      if (limit - pre < 2) {
        assert_int_equal(r, -1);
        assert_int_equal(b.len, pre);
        assert_int_equal(b.truncated, 1);
        buf_free(&b);
        continue;
      }
      assert_true(b.len <= limit);
      assert_int_equal(r, limit - pre >= full.len ? 0 : 1);
      assert_int_equal(b.truncated, r);
      if (pre == 0) {
        assert_true(b.len >= last); /* more room never gives less */
        last = b.len;
      }
      if (r == 0)
        assert_memory_equal(b.data + pre, full.data, full.len);
      json_error_t err;
      json_t *back =
          json_loadb(b.data + pre, b.len - pre, JSON_ALLOW_NUL, &err);
      if (back == NULL)
        fail_msg("limit %zu: not valid JSON (%s): %.*s", limit, err.text,
                 (int)(b.len - pre), b.data + pre);
      if (!is_json_prefix(v, back))
        fail_msg("limit %zu: not a prefix: %.*s", limit, (int)(b.len - pre),
                 b.data + pre);
      json_decref(back);
      buf_free(&b);
    }
  }
  json_decref(v);
  buf_free(&full);
}

/* What is left out under a budget: keys are never cut, strings may be. */
static void test_json_cut_examples(void **state) {
  static const struct {
    size_t limit;
    const char *want;
  } cases[] = {
      {1, ""},
      {2, "{}"},
      {10, "{}"},
      {11, "{\"alpha\":1}"},
      {20, "{\"alpha\":1}"},
      {21, "{\"alpha\":1,\"beta\":\"\"}"}, /* a string member is cut */
      {24, "{\"alpha\":1,\"beta\":\"xyz\"}"},
      {31, "{\"alpha\":1,\"beta\":\"xyzw\"}"},
      {32, "{\"alpha\":1,\"beta\":\"xyzw\",\"c\":[]}"},
      {37, "{\"alpha\":1,\"beta\":\"xyzw\",\"c\":[12]}"},
      {38, "{\"alpha\":1,\"beta\":\"xyzw\",\"c\":[12,345]}"},
  };
  (void)state;
  json_t *v =
      json_pack("{s:i,s:s,s:[i,i]}", "alpha", 1, "beta", "xyzw", "c", 12, 345);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    trail__buf b = buf_new(cases[i].limit);
    int r = trail__put_json(&b, v);
    size_t wl = strlen(cases[i].want);
    if (b.len != wl || memcmp(b.data, cases[i].want, wl) != 0)
      fail_msg("limit %zu: got %.*s, want %s", cases[i].limit, (int)b.len,
               b.data, cases[i].want);
    assert_int_equal(r, i == 0 ? -1 : i + 1 < sizeof cases / sizeof cases[0]);
    buf_free(&b);
  }
  json_decref(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_string_table),
      cmocka_unit_test(test_string_ascii_bytes),
      cmocka_unit_test(test_string_special_in_every_lane),
      cmocka_unit_test(test_string_null_pointer),
      cmocka_unit_test(test_string_random_vs_model),
      cmocka_unit_test(test_string_cut_table),
      cmocka_unit_test(test_string_cut_random),
      cmocka_unit_test(test_string_cut_examples),
      cmocka_unit_test(test_string_huge_input),
      cmocka_unit_test(test_int_extremes),
      cmocka_unit_test(test_int_against_printf),
      cmocka_unit_test(test_refusal),
      cmocka_unit_test(test_refusal_past_limit),
      cmocka_unit_test(test_put_unchecked),
      cmocka_unit_test(test_json_round_trip),
      cmocka_unit_test(test_json_scalars),
      cmocka_unit_test(test_json_odd_keys),
      cmocka_unit_test(test_json_depth_limit),
      cmocka_unit_test(test_json_cycle),
      cmocka_unit_test(test_json_cut),
      cmocka_unit_test(test_json_cut_examples),
  };
  return cmocka_run_group_tests(tests, ref_setup, ref_teardown);
}
