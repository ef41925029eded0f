/*
 * W3C tracestate: validation and normalisation of the vendor list a trace
 * carries, kept in the request context for propagation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

/*
 * The rules here are W3C Trace Context Level 2 (Candidate Recommendation
 * Draft, 28 March 2024, https://www.w3.org/TR/trace-context-2/); section
 * numbers are that text's. The Recommendation, Level 1 of 23 November
 * 2021, has a narrower key grammar (tenant "@" system): every Level 1 key
 * is a Level 2 key, so what Level 1 senders write is still accepted.
 */

/* W3C Trace Context, section 3.3.1.2 (list): at most 32 list-members. */
#define MAX_MEMBERS 32
/* Section 3.3.1.3.1 (Key): up to 256 characters. */
#define MAX_KEY 256
/* Section 3.3.1.3.2 (Value): up to 256 characters. */
#define MAX_VALUE 256

static int lcalpha(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int digit(unsigned char c) { return c >= '0' && c <= '9'; }
/* keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" */
static int key_char(unsigned char c) {
  return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' ||
         c == '/' || c == '@';
}

/*
 * W3C Trace Context, section 3.3.1.3.1 (Key):
 * key = ( lcalpha / DIGIT ) 0*255 ( keychar )
 * One form for every key: '@' is a key character like the others, anywhere
 * but first, any number of times ("foo@", "foo@@bar", "t@vvvvvvvvvvvvvvv").
 * The former tenant "@" system split, with its 241 and 14 limits, is gone.
 */
static int key_valid(const char *k, size_t n) {
  if (n < 1 || n > MAX_KEY)
    return 0;
  if (!lcalpha((unsigned char)k[0]) && !digit((unsigned char)k[0]))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!key_char((unsigned char)k[i]))
      return 0;
  return 1;
}

/*
 * W3C Trace Context, section 3.3.1.3.2 (Value):
 * value = 0*255(chr) nblk-chr
 * nblk-chr = %x21-2B / %x2D-3C / %x3E-7E ; chr = %x20 / nblk-chr
 * Leading and inner spaces belong to the value; a trailing space cannot
 * (the member was trimmed, so it is the list's optional white space).
 */
static int value_valid(const char *v, size_t n) {
  if (n < 1 || n > MAX_VALUE)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
      return 0;
  }
  return v[n - 1] != ' ';
}

/* OWS, RFC 9110 section 5.6.3: SP / HTAB. */
static int ows(char c) { return c == ' ' || c == '\t'; }

typedef struct member {
  const char *p; /* key=value, white space trimmed */
  size_t n;
} member;

/*
 * W3C Trace Context, section 3.3.1.5 (tracestate Limits): a list too long
 * loses its members longer than this first.
 */
#define LONG_MEMBER 128

/*
 * Appends the member a..b (trimmed, not empty) to m[0..*nm), or refuses the
 * list: a member without '=', one member too many (section 3.3.1.2), a bad
 * key or value. A key already seen is kept as it came: section 3.3.1.4
 * (Combined Header Value) makes one entry per key the writer's duty, as it
 * overwrites its own entry; a receiver dropping the list, or entries it did
 * not write, would break correlation for the vendors that did (section 3.5).
 */
static int add_member(member *m, size_t *nm, const char *a, const char *b) {
  const char *eq = memchr(a, '=', (size_t)(b - a));
  if (eq == NULL || *nm == MAX_MEMBERS || !key_valid(a, (size_t)(eq - a)) ||
      !value_valid(eq + 1, (size_t)(b - eq - 1)))
    return TRAIL_EINVAL_TRACESTATE;
  m[*nm].p = a;
  m[*nm].n = (size_t)(b - a);
  (*nm)++;
  return 0;
}

/*
 * Splits value[0..len) at its commas into m. W3C Trace Context, section
 * 3.3.1.1 (tracestate Header Field Values): spaces and horizontal tabs
 * around a list-member are ignored, and empty or white-space-only members
 * are allowed (they come from joined headers); they are skipped and do not
 * count towards the 32, so the commas joining leaves spoil no list.
 */
static int split_members(const char *value, size_t len, member *m, size_t *nm) {
  const char *p = value, *end = value + len;
  *nm = 0;
  while (p <= end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *a = p, *b = comma ? comma : end;
    while (a < b && ows(*a))
      a++;
    while (b > a && ows(b[-1]))
      b--;
    if (a < b) {
      int rc = add_member(m, nm, a, b);
      if (rc != 0)
        return rc;
    }
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  return 0;
}

/* The length of the members keep marks, joined by commas. */
static size_t kept_length(const member *m, size_t nm, const int *keep) {
  size_t total = 0, kept = 0;
  for (size_t i = 0; i < nm; i++)
    if (keep[i]) {
      total += m[i].n;
      kept++;
    }
  if (kept > 1)
    total += kept - 1;
  return total;
}

/*
 * The member to drop next: in pass 0 the first kept member longer than
 * LONG_MEMBER, in pass 1 the last kept member. nm when there is none.
 */
static size_t next_drop(const member *m, size_t nm, const int *keep, int pass) {
  size_t drop = nm;
  for (size_t i = 0; i < nm; i++)
    if (keep[i] && (pass == 1 || m[i].n > LONG_MEMBER)) {
      drop = i;
      if (pass == 0)
        break;
    }
  return drop;
}

/*
 * Marks in keep the members that stay when the list is shortened to
 * TRAIL_TRACESTATE_MAX (512: section 3.3.1.5 asks to propagate at least
 * 512 characters) the way section 3.3.1.5 says: whole entries only, those
 * longer than 128 characters first, then from the end, until it fits.
 */
static void shorten(const member *m, size_t nm, int *keep) {
  for (size_t i = 0; i < nm; i++)
    keep[i] = 1;
  for (int pass = 0; pass < 2; pass++) {
    for (size_t k = 0; k < nm; k++) {
      if (kept_length(m, nm, keep) <= TRAIL_TRACESTATE_MAX)
        break;
      size_t drop = next_drop(m, nm, keep, pass);
      if (drop == nm)
        break;
      keep[drop] = 0;
    }
  }
}

/* Writes the kept members, comma-separated, and a NUL; returns the length. */
static size_t join_kept(char *out, const member *m, size_t nm,
                        const int *keep) {
  size_t o = 0;
  for (size_t i = 0; i < nm; i++) {
    if (!keep[i])
      continue;
    if (o > 0)
      out[o++] = ',';
    memcpy(out + o, m[i].p, m[i].n);
    o += m[i].n;
  }
  out[o] = '\0';
  return o;
}

/*
 * Validates the whole list before anything is kept: a list with one bad
 * member or more than 32 members cannot be parsed, and W3C Trace Context,
 * section 4.3 (A traceparent is Received) lets the vendor discard the
 * entire header then; passing on what it cannot vouch for is worse. A key
 * twice is kept as it came (see add_member()). A valid list longer than
 * TRAIL_TRACESTATE_MAX is shortened the way section 3.3.1.5 says. An empty
 * value is accepted and clears the kept list (section 3.3.1.1: vendors MUST
 * accept empty tracestate headers).
 */
TRAIL_API int trail_ctx_set_tracestate(trail_ctx *ctx, const char *value,
                                       size_t len) {
  if (ctx == NULL)
    return -EINVAL;
  if (value == NULL) {
    ctx->tracestate_[0] = '\0';
    return 0;
  }
  if (len == TRAIL_NTS)
    len = strlen(value);
  member m[MAX_MEMBERS];
  size_t nm;
  int rc = split_members(value, len, m, &nm);
  if (rc != 0)
    return rc;
  int keep[MAX_MEMBERS];
  shorten(m, nm, keep);
  /* Joined aside first: value may be this context's own tracestate. */
  char out[TRAIL_TRACESTATE_MAX + 1];
  size_t o = join_kept(out, m, nm, keep);
  memcpy(ctx->tracestate_, out, o + 1);
  return 0;
}

TRAIL_API const char *trail_ctx_tracestate(const trail_ctx *ctx) {
  return ctx ? ctx->tracestate_ : "";
}
