/*
 * TRAIL_MSGF and TRAIL_STRF: a printf-style text into the caller's storage,
 * cut at a UTF-8 character boundary when it does not fit.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

/* The length of the UTF-8 sequence a lead byte starts (1 for others). */
static size_t utf8_seq_len(unsigned char lead) {
  if (lead >= 0xf0 && lead < 0xf8)
    return 4;
  if (lead >= 0xe0)
    return lead < 0xf0 ? 3 : 1;
  if (lead >= 0xc0)
    return 2;
  return 1;
}

/*
 * Ends the text at n bytes, or before the last character when it does not
 * fit whole in them (its lead byte says how long it is).
 */
static void cut_at_boundary(char *buf, size_t n) {
  size_t i = n;
  while (i > 0 && ((unsigned char)buf[i - 1] & 0xc0) == 0x80)
    i--;
  if (i > 0 && (unsigned char)buf[i - 1] >= 0xc0 &&
      i - 1 + utf8_seq_len((unsigned char)buf[i - 1]) > n)
    n = i - 1;
  buf[n] = '\0';
}

TRAIL_API const char *trail__msgf(char *buf, size_t size, const char *fmt,
                                  ...) {
  if (buf == NULL || size == 0)
    return "";
  va_list ap;
  va_start(ap, fmt);
  int n = fmt != NULL ? vsnprintf(buf, size, fmt, ap) : -1;
  va_end(ap);
  if (n < 0)
    buf[0] = '\0';
  else if ((size_t)n >= size)
    cut_at_boundary(buf, size - 1);
  return buf;
}
