/*
 * Fuzz target: trail-pretty's reading and writing of lines (tools/).
 *
 * The first bytes choose the options a command line can give: colour,
 * --full, --date, --local, --service, --level, up to three --where (equal
 * and regular expressions, on reserved, foreign, nested and plain keys),
 * --since/--until, --fields and --hide. The rest is the input, cut at
 * '\n' into lines (a CR before it dropped), each read and written as
 * trail-pretty does, into memory. Whatever the bytes, the output must be:
 *
 * - well-formed UTF-8 with no raw control character but '\n', no DEL, no C1
 *   control, no U+2028/U+2029 and no bidi control, once the SGR colour
 *   sequences the program writes itself (ESC [ digits and ';' m) are taken
 *   out;
 * - one line for each input line when no filter is given, and at most one
 *   for each input line otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "pretty.h"

static const char *const where_table[] = {
    "level=info",   "message~^a", "status=404",  "msg~[0-9]+$",
    "a.b=1",        "time~Z$",    "service=gw",  "x~(a|b)*c",
    "level~^[0-9]", "k=",         "err.type~^E", "timestamp~\\."};
#define WHERE_N (sizeof where_table / sizeof where_table[0])

static const char *const key_table[] = {
    "timestamp", "level", "msg",  "message", "service", "request_id",
    "trace_id",  "a",     "time", "name",    "k",       "logger"};
#define KEY_N (sizeof key_table / sizeof key_table[0])

/* Sets the options from the first bytes of the input. Returns whether a
   filter that can leave an event out was given. */
static int set_options(fz_in *in, pretty_options *opt) {
  uint8_t a = fz_u8(in), b = fz_u8(in), c = fz_u8(in);
  char err[320];
  opt->color = a & 1;
  opt->full = (a >> 1) & 1;
  opt->date = (a >> 2) & 1;
  opt->local = (a >> 3) & 1;
  opt->service = (a >> 4) % 3;
  opt->min_level = (b & 7) < 6 ? (b & 7) : PRETTY_LEVEL_NONE;
  for (int i = 0; i < (b >> 3 & 3); i++) {
    int rc = pretty_where_add(opt, where_table[fz_u8(in) % WHERE_N], err,
                              sizeof err);
    FZ_CHECK(rc == 0, "a --where of the table refused: %s", err);
  }
  if (c & 1) {
    opt->has_since = 1;
    opt->since.sec = (int64_t)fz_u32(in) * 4 - 62167219200LL;
  }
  if (c & 2) {
    opt->has_until = 1;
    opt->until.sec = (int64_t)fz_u32(in) * 60;
  }
  for (int i = 0; i < (c >> 2 & 3); i++) {
    const char *key = key_table[fz_u8(in) % KEY_N];
    FZ_CHECK(pretty_list_add(&opt->fields, key, strlen(key)), "no memory");
  }
  for (int i = 0; i < (c >> 4 & 3); i++) {
    const char *key = key_table[fz_u8(in) % KEY_N];
    FZ_CHECK(pretty_list_add(&opt->hide, key, strlen(key)), "no memory");
  }
  return opt->min_level != PRETTY_LEVEL_NONE || opt->where_len > 0 ||
         opt->has_since || opt->has_until;
}

/* The length of the SGR sequence at p (n bytes), or 0 when there is none. */
static size_t sgr_len(const uint8_t *p, size_t n) {
  size_t i = 2;
  if (n < 3 || p[0] != 0x1b || p[1] != '[')
    return 0;
  while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == ';'))
    i++;
  return i < n && p[i] == 'm' ? i + 1 : 0;
}

/* Aborts when the output holds a character that could act on a terminal,
   or invalid UTF-8. Returns the number of lines. */
static size_t check_output(const uint8_t *p, size_t n) {
  size_t lines = 0, i = 0, bad;
  while (i < n) {
    size_t len = sgr_len(p + i, n - i);
    if (len > 0) {
      i += len;
      continue;
    }
    len = fz_utf8_char(p + i, n - i, &bad);
    FZ_CHECK(len > 0, "invalid UTF-8 at byte %zu", i);
    uint32_t cp = p[i];
    if (len == 2)
      cp = (uint32_t)(p[i] & 0x1f) << 6 | (p[i + 1] & 0x3f);
    else if (len == 3)
      cp = (uint32_t)(p[i] & 0x0f) << 12 | (uint32_t)(p[i + 1] & 0x3f) << 6 |
           (p[i + 2] & 0x3f);
    FZ_CHECK(cp == '\n' || cp == '\t' ||
                 (cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f)),
             "control character U+%04X at byte %zu", (unsigned)cp, i);
    FZ_CHECK(cp != 0x2028 && cp != 0x2029 && cp != 0x061c && cp != 0x200e &&
                 cp != 0x200f && !(cp >= 0x202a && cp <= 0x202e) &&
                 !(cp >= 0x2066 && cp <= 0x2069),
             "U+%04X at byte %zu", (unsigned)cp, i);
    lines += cp == '\n';
    i += len;
  }
  FZ_CHECK(n == 0 || p[n - 1] == '\n', "the output does not end a line");
  return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  pretty_state st;
  memset(&st, 0, sizeof st);
  int filtered = set_options(&in, &st.opt);

  const uint8_t *rest;
  size_t n = fz_rest(&in, &rest), lines_in = 0;
  char *text = NULL;
  size_t text_len = 0;
  st.out = open_memstream(&text, &text_len);
  FZ_CHECK(st.out != NULL, "open_memstream failed");
  for (size_t start = 0; start < n;) {
    const uint8_t *nl = memchr(rest + start, '\n', n - start);
    size_t end = nl != NULL ? (size_t)(nl - rest) : n, len = end - start;
    if (nl != NULL && len > 0 && rest[end - 1] == '\r')
      len--;
    pretty_line(&st, (const char *)rest + start, len, 0);
    lines_in++;
    start = end + 1;
  }
  FZ_CHECK(fclose(st.out) == 0, "the memory stream failed");
  size_t lines_out = check_output((const uint8_t *)text, text_len);
  if (filtered)
    FZ_CHECK(lines_out <= lines_in, "%zu lines out of %zu", lines_out,
             lines_in);
  else
    FZ_CHECK(lines_out == lines_in, "%zu lines out of %zu", lines_out,
             lines_in);
  free(text);
  pretty_state_free(&st);
  return 0;
}
