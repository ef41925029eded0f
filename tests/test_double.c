/*
 * Tests for double formatting: the exact text of edge values, the shortest
 * round trip on random bit patterns, the JSON validity of every output, and
 * independence from the C locale.
 *
 * The expected digits of the tables come from Python's repr(), which prints
 * the shortest digits that read back, the closest to the value among them.
 * trail spells the result the same way except that integral values carry no
 * ".0" and the exponent has no leading zeros ("1e-7" where Python writes
 * "1e-07"). The randomized tests check the text against strtod() and
 * against a slow search for the same digits built on printf and strtod.
 */
#define _GNU_SOURCE

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"

static uint64_t bits_of(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

static double from_bits(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* 2^e for a normal exponent, without libm. */
static double pow2(int e) { return from_bits((uint64_t)(e + 1023) << 52); }

static uint64_t rng_state = UINT64_C(0x2545f4914f6cdd1d);

static uint64_t rng(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static void assert_formats_as(double v, const char *want) {
  char out[32];
  size_t n = trail__format_double(v, out);
  if (n != strlen(want) || strcmp(out, want) != 0)
    fail_msg("%a: got %s, want %s", v, out, want);
}

/* ------------------------------------------------------------------------ */
/* Exact text                                                               */
/* ------------------------------------------------------------------------ */

static void test_edge_values(void **state) {
  static const struct {
    double v;
    const char *want;
  } cases[] = {
      {0.0, "0"},
      {-0.0, "-0"},
      {1.0, "1"},
      {-1.0, "-1"},
      {0.1, "0.1"},
      {0.3, "0.3"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.0 / 3.0, "0.3333333333333333"},
      {2.0 / 3.0, "0.6666666666666666"},
      {100.0, "100"},
      {-1.5, "-1.5"},
      {123.456, "123.456"},
      {4.35, "4.35"},
      {1e21, "1e+21"},
      {1e22, "1e+22"},
      {1e23, "1e+23"},
      {1e-7, "1e-7"},
      {1e-4, "0.0001"}, /* the last positional one below 1 */
      {1e-5, "1e-5"},
      {0.001, "0.001"},
      {1e15, "1000000000000000"},
      {1e16, "1e+16"}, /* the first with an exponent above 1 */
      {1e17, "1e+17"},
      {1e300, "1e+300"},
      {-1e-300, "-1e-300"},
      {5e-324, "5e-324"}, /* the smallest subnormal */
      {1.5e-323, "1.5e-323"},
      {2.225073858507201e-308,
       "2.225073858507201e-308"}, /* largest subnormal */
      {DBL_MIN, "2.2250738585072014e-308"},
      {DBL_MAX, "1.7976931348623157e+308"},
      {-DBL_MAX, "-1.7976931348623157e+308"},
      {9007199254740992.0, "9007199254740992"}, /* 2^53 */
      {9007199254740993.0, "9007199254740992"}, /* 2^53 + 1 rounds down */
      {9007199254740991.0, "9007199254740991"}, /* 2^53 - 1 */
      {9223372036854775808.0, "9.223372036854776e+18"},   /* 2^63 */
      {18446744073709551616.0, "1.8446744073709552e+19"}, /* 2^64 */
      {123456789012345680.0, "1.2345678901234568e+17"},
      {9999999999999998.0, "9999999999999998"},
      {1234567890123456.7, "1234567890123456.8"},
      {0.000123456789012345678, "0.00012345678901234567"},
      {0x1p-1017, "7.120236347223045e-307"}, /* a power of two, see below */
      {0x1p1000, "1.0715086071862673e+301"},
      {0x1.fffffffffffffp-1, "0.9999999999999999"},
      {0x1.0000000000001p0, "1.0000000000000002"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_formats_as(cases[i].v, cases[i].want);
}

static void test_non_finite(void **state) {
  char out[32];
  (void)state;
  assert_formats_as(from_bits(UINT64_C(0x7ff8000000000000)), "NaN");
  assert_formats_as(from_bits(UINT64_C(0xfff8000000000000)), "NaN");
  assert_formats_as(from_bits(UINT64_C(0x7ff0000000000001)), "NaN");
  assert_formats_as(from_bits(UINT64_C(0x7ff0000000000000)), "+Inf");
  assert_formats_as(from_bits(UINT64_C(0xfff0000000000000)), "-Inf");
  assert_int_equal(
      trail__format_double(-from_bits(UINT64_C(0x7ff0000000000000)), out), 4);
}

/* 12.5 + i / 100: the durations a service logs all day. */
static void test_two_decimals(void **state) {
  static const char *const want[100] = {
      "12.5",  "12.51", "12.52", "12.53", "12.54", "12.55", "12.56", "12.57",
      "12.58", "12.59", "12.6",  "12.61", "12.62", "12.63", "12.64", "12.65",
      "12.66", "12.67", "12.68", "12.69", "12.7",  "12.71", "12.72", "12.73",
      "12.74", "12.75", "12.76", "12.77", "12.78", "12.79", "12.8",  "12.81",
      "12.82", "12.83", "12.84", "12.85", "12.86", "12.87", "12.88", "12.89",
      "12.9",  "12.91", "12.92", "12.93", "12.94", "12.95", "12.96", "12.97",
      "12.98", "12.99", "13",    "13.01", "13.02", "13.03", "13.04", "13.05",
      "13.06", "13.07", "13.08", "13.09", "13.1",  "13.11", "13.12", "13.13",
      "13.14", "13.15", "13.16", "13.17", "13.18", "13.19", "13.2",  "13.21",
      "13.22", "13.23", "13.24", "13.25", "13.26", "13.27", "13.28", "13.29",
      "13.3",  "13.31", "13.32", "13.33", "13.34", "13.35", "13.36", "13.37",
      "13.38", "13.39", "13.4",  "13.41", "13.42", "13.43", "13.44", "13.45",
      "13.46", "13.47", "13.48", "13.49"};
  (void)state;
  for (int i = 0; i < 100; i++)
    assert_formats_as(12.5 + (i % 100) / 100.0, want[i]);
}

/*
 * At a power of two the double below is half as far as the double above, so
 * the correctly rounded decimal of the shortest length may not read back
 * while the next one up does. These are all such powers of two.
 */
static void test_powers_of_two_with_a_short_lower_gap(void **state) {
  static const struct {
    int e;
    const char *want;
  } cases[] = {
      {-1017, "7.120236347223045e-307"}, {-1007, "7.291122019556398e-304"},
      {-957, "8.209073602596753e-289"},  {-921, "5.641232424577593e-278"},
      {-808, "5.858190679279809e-244"},  {-791, "7.678447687145631e-239"},
      {-788, "6.142758149716505e-238"},  {-778, "6.290184345309701e-235"},
      {-705, "5.940911144672375e-213"},  {-695, "6.083493012144512e-210"},
      {-662, "5.225680706521042e-200"},  {-652, "5.351097043477547e-197"},
      {-549, "5.426657103235053e-166"},  {-509, "5.966672584960166e-154"},
      {-496, "4.887898181599368e-150"},  {-489, "6.256509672447191e-148"},
      {-383, "5.075883674631299e-116"},  {-366, "6.653062250012736e-111"},
      {-296, "7.854549544476363e-90"},   {-140, "7.174648137343064e-43"},
      {-97, "6.310887241768095e-30"},    {-77, "6.617444900424222e-24"},
      {-44, "5.684341886080802e-14"},    {-24, "5.960464477539063e-8"},
      {89, "6.189700196426902e+26"},     {122, "5.316911983139664e+36"},
      {132, "5.444517870735016e+39"},    {172, "5.986310706507379e+51"},
      {182, "6.129982163463556e+54"},    {275, "6.070840288205404e+82"},
      {305, "6.518515124270356e+91"},    {345, "7.167183174968974e+103"},
      {378, "6.156563468186638e+113"},   {398, "6.455624695217272e+119"},
      {405, "8.263199609878108e+121"},   {481, "6.243497100631985e+144"},
      {534, "5.623642243178996e+160"},   {544, "5.758609657015292e+163"},
      {554, "5.896816288783659e+166"},   {574, "6.183260036827614e+172"},
      {594, "6.483618076376552e+178"},   {710, "5.386379163185535e+213"},
      {803, "5.334411546303884e+241"},   {863, "6.150157786156811e+259"},
      {896, "5.282945311356653e+269"},   {976, "6.386688990511104e+293"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_formats_as(pow2(cases[i].e), cases[i].want);
}

/* ------------------------------------------------------------------------ */
/* Properties                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Splits our text into its significant digits, as an integer without
 * trailing zeros, and a power of ten: |value| = digits * 10^e. Also checks
 * the spelling rules on the way and returns the number of digits.
 */
static int decompose(const char *s, uint64_t *digits, int *e) {
  const char *p = s;
  uint64_t d = 0;
  int k = 0, frac = 0, exp = 0, seen_point = 0, decpt;

  if (*p == '-')
    p++;
  for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
    if (*p == '.') {
      seen_point = 1;
      continue;
    }
    if (seen_point)
      frac++;
    if (d == 0 && *p == '0')
      continue; /* leading zeros are not significant */
    d = d * 10 + (uint64_t)(*p - '0');
    k++;
    if (k > 17)
      fail_msg("%s: more than 17 significant digits", s);
  }
  if (seen_point && p[-1] == '0')
    fail_msg("%s: trailing zero after the point", s);
  if (*p == 'e') {
    p++;
    if (*p != '+' && *p != '-')
      fail_msg("%s: exponent without a sign", s);
    int neg = *p++ == '-';
    if (*p == '0')
      fail_msg("%s: exponent with a leading zero", s);
    for (; *p >= '0' && *p <= '9'; p++)
      exp = exp * 10 + (*p - '0');
    if (neg)
      exp = -exp;
  }
  if (*p != '\0')
    fail_msg("%s: unexpected text", s);
  while (d != 0 && d % 10 == 0) {
    d /= 10;
    k--;
    exp++;
  }
  *digits = d;
  *e = exp - frac;

  /* Positional exactly when the point sits between -4 and 16 (as repr). */
  decpt = k + *e;
  if (d != 0 && (strchr(s, 'e') == NULL) != (decpt > -4 && decpt <= 16))
    fail_msg("%s: positional and exponent forms mixed up", s);
  return k;
}

static int reads_back_to(const char *text, uint64_t bits) {
  return bits_of(strtod(text, NULL)) == bits;
}

/*
 * Checks everything that can be said about the text for v: it reads back to
 * the same bits, it is a JSON number that jansson reads to the same value,
 * and no decimal with one digit fewer reads back (the two closest candidates
 * of that length, on either side of v, are among m - 1, m, m + 1).
 */
static int check_one(double v, char *why, size_t why_size) {
  char out[32], json[40], cand[48];
  uint64_t bits = bits_of(v), digits;
  int e;

  trail__format_double(v, out);
  if (!reads_back_to(out, bits)) {
    snprintf(why, why_size, "%a: %s does not read back", v, out);
    return 0;
  }
  snprintf(json, sizeof json, "[%s]", out);
  json_t *arr = json_loads(json, 0, NULL);
  json_t *num = json_array_get(arr, 0);
  int ok = num != NULL && json_is_number(num) && json_number_value(num) == v;
  json_decref(arr);
  if (!ok) {
    snprintf(why, why_size, "%a: %s is not a JSON number for it", v, out);
    return 0;
  }
  int k = decompose(out, &digits, &e);
  if (k > 1) {
    uint64_t m = digits / 10;
    for (uint64_t c = m - 1; c != m + 2; c++) {
      snprintf(cand, sizeof cand, "%" PRIu64 "e%d", c, e + 1);
      if (reads_back_to(cand, bits & ~(UINT64_C(1) << 63))) {
        snprintf(why, why_size, "%a: %s is not the shortest (%s)", v, out,
                 cand);
        return 0;
      }
    }
  }
  return 1;
}

/* A random double: any bits, a moderate exponent, or few significant bits. */
static double random_double(uint64_t i) {
  uint64_t x = rng();
  switch (i % 4) {
  case 1: /* near 1, where most logged values live */
    x = (x & UINT64_C(0x800fffffffffffff)) |
        (uint64_t)(1023 - 40 + (int)((x >> 52) % 80)) << 52;
    break;
  case 2: /* short mantissas: values with few digits */
    x &= UINT64_C(0xfff0000000000000) | (x >> 40);
    break;
  case 3: /* integers */
    return (double)(int64_t)(x >> (rng() % 64));
  default:
    break;
  }
  return from_bits(x);
}

static void test_random_round_trip(void **state) {
  char why[160];
  (void)state;
  for (uint64_t i = 0; i < 200000; i++) {
    double v = random_double(i);
    if (v != v)
      continue;
    if ((bits_of(v) & UINT64_C(0x7ff0000000000000)) ==
        UINT64_C(0x7ff0000000000000))
      continue;
    if (!check_one(v, why, sizeof why))
      fail_msg("%s", why);
  }
}

/* Every power of two, subnormals included, and its neighbours. */
static void test_powers_of_two(void **state) {
  char why[160];
  (void)state;
  for (int e = -1074; e <= 1023; e++) {
    uint64_t b =
        e < -1022 ? UINT64_C(1) << (e + 1074) : (uint64_t)(e + 1023) << 52;
    for (uint64_t d = b ? b - 1 : 0; d <= b + 1; d++)
      if (!check_one(from_bits(d), why, sizeof why))
        fail_msg("%s", why);
  }
}

/*
 * Decimals of up to 15 significant digits come back as exactly those digits
 * (no shorter text can read back to the same double, and 15 digits always
 * survive the trip through a normal double).
 */
static void test_short_decimals_come_back(void **state) {
  char text[48], out[32];
  (void)state;
  for (int i = 0; i < 100000; i++) {
    int k = 1 + (int)(rng() % 15), e = (int)(rng() % 580) - 300;
    uint64_t d = 0;
    for (int j = 0; j < k; j++)
      d = d * 10 + rng() % 10;
    if (d == 0)
      d = 7;
    while (d % 10 == 0)
      d /= 10;
    snprintf(text, sizeof text, "%" PRIu64 "e%d", d, e);
    double v = strtod(text, NULL);
    trail__format_double(v, out);
    uint64_t got;
    int got_e;
    decompose(out, &got, &got_e);
    if (got != d || got_e != e)
      fail_msg("%s: printed as %s", text, out);
  }
}

/*
 * The slow, obvious search: for each length from 1 digit up, printf's
 * correctly rounded digits of that length, and at a power of two also the
 * next decimal up (the gap below is half the gap above there), until
 * strtod gives the value back. Returns the digits as an integer without
 * trailing zeros and e with v = digits * 10^e.
 */
static void slow_shortest(double v, uint64_t *digits, int *e) {
  int pow2 = (bits_of(v) & UINT64_C(0x000fffffffffffff)) == 0;
  for (int p = 1; p <= 17; p++) {
    char text[48], *end;
    snprintf(text, sizeof text, "%.*e", p - 1, v);
    uint64_t m = 0;
    for (const char *c = text; *c != 'e'; c++)
      if (*c >= '0' && *c <= '9')
        m = m * 10 + (uint64_t)(*c - '0');
    int x = (int)strtol(strchr(text, 'e') + 1, &end, 10) - (p - 1);
    int found = strtod(text, NULL) == v;
    if (!found && pow2) {
      snprintf(text, sizeof text, "%" PRIu64 "e%d", m + 1, x);
      if (strtod(text, NULL) == v) {
        m++;
        found = 1;
      }
    }
    if (found || p == 17) {
      while (m % 10 == 0) {
        m /= 10;
        x++;
      }
      *digits = m;
      *e = x;
      return;
    }
  }
}

/*
 * The range of the fast path (1e-3 up to 1e15): a million decimals of up to
 * 15 digits come back as exactly their digits, and for each its two
 * neighbouring doubles (which are not short decimals, so they go through
 * the general algorithm) still read back and have no shorter form.
 */
static void test_fast_path_range(void **state) {
  char text[48], out[32], why[160];
  (void)state;
  for (int i = 0; i < 1000000; i++) {
    int k = 1 + (int)(rng() % 15);
    uint64_t d = 0;
    for (int j = 0; j < k; j++)
      d = d * 10 + rng() % 10;
    if (d == 0)
      d = 3;
    while (d % 10 == 0)
      d /= 10;
    int digits = 0;
    for (uint64_t t = d; t; t /= 10)
      digits++;
    /* v = d e e, kept within [1e-3, 1e15) */
    int e = -3 - digits + 1 + (int)(rng() % (uint64_t)(18 - 0));
    if (e + digits > 15)
      e = 15 - digits;
    snprintf(text, sizeof text, "%" PRIu64 "e%d", d, e);
    double v = strtod(text, NULL);
    trail__format_double(v, out);
    uint64_t got;
    int got_e;
    decompose(out, &got, &got_e);
    if (got != d || got_e != e)
      fail_msg("%s: printed as %s", text, out);
    if (i % 4 == 0) {
      double nb[2] = {nextafter(v, 0), nextafter(v, INFINITY)};
      for (int n = 0; n < 2; n++)
        if (!check_one(nb[n], why, sizeof why))
          fail_msg("%s", why);
    }
  }
}

static void test_matches_slow_search(void **state) {
  char out[32];
  (void)state;
  for (uint64_t i = 0; i < 100000; i++) {
    double v = random_double(i);
    uint64_t b = bits_of(v) & ~(UINT64_C(1) << 63);
    if ((b & UINT64_C(0x7ff0000000000000)) == UINT64_C(0x7ff0000000000000) ||
        b == 0)
      continue;
    v = from_bits(b);
    uint64_t want, got;
    int want_e, got_e;
    slow_shortest(v, &want, &want_e);
    trail__format_double(v, out);
    decompose(out, &got, &got_e);
    if (got != want || got_e != want_e)
      fail_msg("%a: %s, the search finds %" PRIu64 "e%d", v, out, want, want_e);
  }
}

/* put_double: numbers bare, the three others as JSON strings. */
static void test_put_double(void **state) {
  static const struct {
    uint64_t bits;
    const char *want;
  } cases[] = {{UINT64_C(0x4029000000000000), "12.5"},
               {UINT64_C(0x8000000000000000), "-0"},
               {UINT64_C(0x7ff8000000000000), "\"NaN\""},
               {UINT64_C(0x7ff0000000000000), "\"+Inf\""},
               {UINT64_C(0xfff0000000000000), "\"-Inf\""}};
  char mem[64];
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = strlen(cases[i].want);
    trail__buf b = {mem, 0, n, 0};
    assert_int_equal(trail__put_double(&b, from_bits(cases[i].bits)), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(mem, cases[i].want, n);
    b.len = 1; /* now one byte short */
    assert_int_equal(trail__put_double(&b, from_bits(cases[i].bits)), -1);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.truncated, 1);
  }
}

/* ------------------------------------------------------------------------ */
/* Locale and threads                                                       */
/* ------------------------------------------------------------------------ */

/*
 * With LC_NUMERIC set to a locale whose decimal point is a comma, the text
 * is unchanged. Skipped when no such locale is installed.
 */
static void test_comma_locale(void **state) {
  static const char *const names[] = {
      "de_DE.UTF-8", "de_DE.utf8",  "de_DE",       "fr_FR.UTF-8",
      "fr_FR.utf8",  "fr_FR",       "nl_NL.UTF-8", "ru_RU.UTF-8",
      "es_ES.UTF-8", "it_IT.UTF-8", "pt_BR.UTF-8", "de_DE@euro"};
  const char *found = NULL;
  (void)state;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++)
    if (setlocale(LC_NUMERIC, names[i]) != NULL &&
        strcmp(localeconv()->decimal_point, ",") == 0)
      found = names[i];
  if (found == NULL) {
    setlocale(LC_NUMERIC, "C");
    skip();
  }
  char check[32];
  snprintf(check, sizeof check, "%.1f", 12.5);
  int ok = strcmp(check, "12,5") == 0; /* the locale is really in force */

  char out[5][32];
  trail__format_double(12.5, out[0]);
  trail__format_double(0.1 + 0.2, out[1]);
  trail__format_double(1.5e-300, out[2]);
  trail__format_double(DBL_MAX, out[3]);
  trail__format_double(0x1p-1017, out[4]);
  setlocale(LC_NUMERIC, "C");

  assert_true(ok);
  assert_string_equal(out[0], "12.5");
  assert_string_equal(out[1], "0.30000000000000004");
  assert_string_equal(out[2], "1.5e-300");
  assert_string_equal(out[3], "1.7976931348623157e+308");
  assert_string_equal(out[4], "7.120236347223045e-307");
}

/* Threads formatting at once (the formatter must have no shared state). */
static void *format_many(void *arg) {
  uint64_t x = (uint64_t)(uintptr_t)arg * UINT64_C(0x9e3779b97f4a7c15) + 1;
  uintptr_t bad = 0;
  for (int i = 0; i < 20000; i++) {
    char out[32];
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double v = from_bits((x & UINT64_C(0x800fffffffffffff)) |
                         (uint64_t)(1023 - 30 + (int)((x >> 52) % 60)) << 52);
    trail__format_double(v, out);
    if (bits_of(strtod(out, NULL)) != bits_of(v))
      bad++;
  }
  return (void *)bad;
}

static void test_threads(void **state) {
  pthread_t t[8];
  (void)state;
  for (uintptr_t i = 0; i < 8; i++)
    assert_int_equal(pthread_create(&t[i], NULL, format_many, (void *)i), 0);
  for (int i = 0; i < 8; i++) {
    void *bad;
    assert_int_equal(pthread_join(t[i], &bad), 0);
    assert_true(bad == NULL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* First, so that the threads also race for any first use. */
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_edge_values),
      cmocka_unit_test(test_non_finite),
      cmocka_unit_test(test_two_decimals),
      cmocka_unit_test(test_powers_of_two_with_a_short_lower_gap),
      cmocka_unit_test(test_random_round_trip),
      cmocka_unit_test(test_powers_of_two),
      cmocka_unit_test(test_short_decimals_come_back),
      cmocka_unit_test(test_fast_path_range),
      cmocka_unit_test(test_matches_slow_search),
      cmocka_unit_test(test_put_double),
      cmocka_unit_test(test_comma_locale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
