/*
 * Terminal-safe text. Whatever bytes a log line holds, what trail-pretty
 * writes must not drive the terminal: no raw control character (an ESC
 * starts a sequence that can recolour, retitle or rewrite the screen; a CR
 * hides what came before it on the line), no C1 control (U+009B is a CSI of
 * its own on many terminals), no LINE or PARAGRAPH SEPARATOR and no bidi
 * control (which reorders what a reader sees). Each of these is shown as a
 * visible escape. Invalid UTF-8 becomes U+FFFD, one per maximal ill-formed
 * subpart, the rule trail itself follows when it writes a line.
 */
#include <string.h>

#include "pretty.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD in UTF-8 */

/* Whether byte b lies in [lo, hi]. */
static bool in_range(unsigned char b, unsigned char lo, unsigned char hi) {
  return b >= lo && b <= hi;
}

/*
 * Decodes the UTF-8 character at s, of which n > 0 bytes are available.
 * Returns the number of bytes it takes and stores the code point in *cp; for
 * an ill-formed sequence it returns the length of the maximal subpart (at
 * least 1) and stores -1, so that the caller writes one U+FFFD and goes on
 * after it. The ranges are those of the Unicode Standard's table 3-7, which
 * leave out overlong forms, surrogates and code points above U+10FFFF.
 */
size_t pretty_utf8_decode(const unsigned char *s, size_t n, int32_t *cp) {
  unsigned char b = s[0];
  size_t need;
  unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
  int32_t c;

  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (in_range(b, 0xc2, 0xdf)) {
    need = 1;
    c = b & 0x1f;
  } else if (in_range(b, 0xe0, 0xef)) {
    need = 2;
    c = b & 0x0f;
    if (b == 0xe0)
      lo = 0xa0;
    else if (b == 0xed)
      hi = 0x9f;
  } else if (in_range(b, 0xf0, 0xf4)) {
    need = 3;
    c = b & 0x07;
    if (b == 0xf0)
      lo = 0x90;
    else if (b == 0xf4)
      hi = 0x8f;
  } else {
    *cp = -1;
    return 1;
  }
  for (size_t i = 1; i <= need; i++) {
    if (i >= n || !in_range(s[i], i == 1 ? lo : 0x80, i == 1 ? hi : 0xbf)) {
      *cp = -1;
      return i;
    }
    c = (c << 6) | (s[i] & 0x3f);
  }
  *cp = c;
  return need + 1;
}

/* Whether the n bytes at s are well-formed UTF-8 throughout. */
bool pretty_utf8_valid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    int32_t cp;
    i += pretty_utf8_decode(u + i, n - i, &cp);
    if (cp < 0)
      return false;
  }
  return true;
}

/*
 * Copies the n bytes at s to dst with each maximal ill-formed subpart
 * replaced by U+FFFD, and returns the length written. dst must hold 3 * n
 * bytes: the worst case is every byte ill-formed, each becoming 3 bytes.
 */
size_t pretty_utf8_fix(const char *s, size_t n, char *dst) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < n) {
    int32_t cp;
    size_t len = pretty_utf8_decode(u + i, n - i, &cp);
    if (cp < 0) {
      memcpy(dst + o, replacement, 3);
      o += 3;
    } else {
      memcpy(dst + o, s + i, len);
      o += len;
    }
    i += len;
  }
  return o;
}

/* Whether code point cp must never reach the terminal as itself. */
static bool unsafe(int32_t cp) {
  if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
    return true;
  switch (cp) {
  case 0x061c: /* ARABIC LETTER MARK */
  case 0x200e: /* LEFT-TO-RIGHT MARK */
  case 0x200f: /* RIGHT-TO-LEFT MARK */
  case 0x2028: /* LINE SEPARATOR */
  case 0x2029: /* PARAGRAPH SEPARATOR */
    return true;
  default:
    /* The bidi embeddings, overrides and isolates. */
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
  }
}

/* Whether cp is a space of some kind, which a bare value may not hold. */
static bool space(int32_t cp) {
  return cp == 0x20 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000 || cp == 0xfeff;
}

/* Writes the escape that stands for code point cp under flags. */
static void write_escape(FILE *out, int32_t cp, unsigned flags) {
  switch (cp) {
  case '"':
    fputs("\\\"", out);
    return;
  case '\\':
    fputs("\\\\", out);
    return;
  case '\n':
    fputs("\\n", out);
    return;
  case '\r':
    fputs("\\r", out);
    return;
  case '\t':
    fputs("\\t", out);
    return;
  default:
    break;
  }
  if (flags & PRETTY_TEXT_JSON) {
    if (cp == '\b')
      fputs("\\b", out);
    else if (cp == '\f')
      fputs("\\f", out);
    else
      fprintf(out, "\\u%04x", (unsigned)cp);
  } else if (cp < 0x80) {
    fprintf(out, "\\x%02x", (unsigned)cp);
  } else {
    fprintf(out, "\\u%04x", (unsigned)cp);
  }
}

/*
 * Writes the n bytes at s to out, safe for a terminal: every code point that
 * unsafe() names is written as an escape, invalid UTF-8 as U+FFFD, the rest
 * as it is. Text escapes are \n, \r, \t, \xhh for the other ASCII controls
 * and \uhhhh beyond ASCII; PRETTY_TEXT_JSON uses JSON's escapes instead, so
 * that a JSON value stays JSON. Runs of plain bytes go out in one fwrite().
 */
void pretty_text_write(FILE *out, const char *s, size_t n, unsigned flags) {
  const unsigned char *u = (const unsigned char *)s;
  bool quoted = (flags & (PRETTY_TEXT_QUOTED | PRETTY_TEXT_JSON)) != 0;
  size_t run = 0, i = 0;

  while (i < n) {
    int32_t cp;
    size_t len;
    if (u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\') {
      i++; /* the common case, decided without decoding */
      continue;
    }
    len = pretty_utf8_decode(u + i, n - i, &cp);
    bool esc = cp >= 0 && unsafe(cp) &&
               !(cp == '\t' && (flags & PRETTY_TEXT_KEEP_TAB));
    if (quoted && (cp == '"' || cp == '\\'))
      esc = true;
    if (cp >= 0 && !esc) {
      i += len;
      continue;
    }
    fwrite(s + run, 1, i - run, out);
    if (cp < 0)
      fputs(replacement, out);
    else
      write_escape(out, cp, flags);
    i += len;
    run = i;
  }
  fwrite(s + run, 1, n - run, out);
}

/*
 * Whether the n bytes at s can be shown as a value without quotes: not
 * empty, well-formed, and free of anything that would need an escape or
 * would blur where the value ends (a space of any kind, '"', '\', '=').
 */
bool pretty_text_bare(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  if (n == 0)
    return false;
  while (i < n) {
    int32_t cp;
    i += pretty_utf8_decode(u + i, n - i, &cp);
    if (cp < 0 || unsafe(cp) || space(cp) || cp == '"' || cp == '\\' ||
        cp == '=')
      return false;
  }
  return true;
}
