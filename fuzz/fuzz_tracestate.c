/*
 * Fuzz target: the W3C tracestate check and normalisation of
 * trail_ctx_set_tracestate().
 *
 * The input's first byte picks how the value is passed (with its length or
 * NUL-terminated); the rest is the value. Checks:
 *
 * - accepted exactly when an independent checker written here from the W3C
 *   Trace Context Level 2 grammar (sections 3.3.1.1 to 3.3.1.3) accepts:
 *   list members separated by commas and optional white space, empty
 *   members allowed, each key "=" value by the key and value rules, at most
 *   32 members; a key twice is allowed (section 3.3.1.4 makes uniqueness
 *   the sender's duty) and kept;
 * - a rejected value leaves the context as it was;
 * - an accepted value is kept normalised: the members in order, joined by
 *   "," without white space, at most TRAIL_TRACESTATE_MAX bytes, shortened
 *   the spec's way (members longer than 128 first, then from the end);
 * - the kept value is accepted again and kept unchanged (a fixed point).
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define MAX_MEMBERS 32

typedef struct member {
  const uint8_t *p; /* key=value, trimmed */
  size_t n;
} member;

static int lcalpha(uint8_t c) { return c >= 'a' && c <= 'z'; }
static int digit(uint8_t c) { return c >= '0' && c <= '9'; }
/* keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" */
static int kchar(uint8_t c) {
  return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' ||
         c == '/' || c == '@';
}

/* key = ( lcalpha / DIGIT ) 0*255 ( keychar ) */
static int key_ok(const uint8_t *k, size_t n) {
  if (n < 1 || n > 256 || !(lcalpha(k[0]) || digit(k[0])))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!kchar(k[i]))
      return 0;
  return 1;
}

/*
 * value = 0*255(chr) nblk-chr
 * nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
 * chr = %x20 / nblk-chr
 */
static int value_ok(const uint8_t *v, size_t n) {
  if (n < 1 || n > 256)
    return 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = v[i];
    int nblk = (c >= 0x21 && c <= 0x2b) || (c >= 0x2d && c <= 0x3c) ||
               (c >= 0x3e && c <= 0x7e);
    if (!(nblk || (c == 0x20 && i + 1 < n)))
      return 0;
  }
  return 1;
}

/*
 * list = list-member 0*31( OWS "," OWS list-member ), where a member may be
 * empty; OWS is spaces and tabs. Returns the number of members, or -1.
 */
static int reference(const uint8_t *p, size_t n, member *m) {
  int nm = 0;
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < n && p[j] != ',')
      j++;
    size_t a = i, b = j;
    while (a < b && (p[a] == ' ' || p[a] == '\t'))
      a++;
    while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
      b--;
    if (a < b) {
      size_t eq = a;
      while (eq < b && p[eq] != '=')
        eq++;
      if (eq == b || nm == MAX_MEMBERS || !key_ok(p + a, eq - a) ||
          !value_ok(p + eq + 1, b - eq - 1))
        return -1;
      m[nm].p = p + a;
      m[nm].n = b - a;
      nm++;
    }
    if (j == n)
      break;
    i = j + 1;
  }
  return nm;
}

/* The normalised list, shortened as the spec says; returns its length. */
static size_t normalise(const member *m, int nm, char *out) {
  int keep[MAX_MEMBERS];
  for (int i = 0; i < nm; i++)
    keep[i] = 1;
  for (;;) {
    size_t total = 0;
    int kept = 0, first_long = -1, last = -1;
    for (int i = 0; i < nm; i++) {
      if (!keep[i])
        continue;
      total += m[i].n + (kept ? 1 : 0);
      kept++;
      if (first_long < 0 && m[i].n > 128)
        first_long = i;
      last = i;
    }
    if (total <= TRAIL_TRACESTATE_MAX)
      break;
    keep[first_long >= 0 ? first_long : last] = 0;
  }
  size_t o = 0;
  for (int i = 0; i < nm; i++) {
    if (!keep[i])
      continue;
    if (o)
      out[o++] = ',';
    memcpy(out + o, m[i].p, m[i].n);
    o += m[i].n;
  }
  out[o] = '\0';
  return o;
}

/*
 * First byte: bit 0 passes the value NUL-terminated; bit 1 starts from a
 * context that already keeps a tracestate. The rest is the value.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const uint8_t *v = data + 1;
  size_t n = size - 1, len = n;
  const char *arg = (const char *)v;
  if (data[0] & 1) {
    arg = fz_strndup(v, n);
    len = TRAIL_NTS;
    n = strlen(arg);
    v = (const uint8_t *)arg;
  }

  trail_ctx ctx, before;
  trail_ctx_clear(&ctx);
  if (data[0] & 2)
    FZ_CHECK(trail_ctx_set_tracestate(&ctx, "congo=t61rcWkgMzE", TRAIL_NTS) ==
                 0,
             "a valid tracestate was rejected");
  memcpy(&before, &ctx, sizeof ctx);

  member m[MAX_MEMBERS];
  int nm = reference(v, n, m);
  int rc = trail_ctx_set_tracestate(&ctx, arg, len);
  FZ_CHECK((rc == 0) == (nm >= 0), "returned %d, reference %d for %.*s", rc, nm,
           (int)n, (const char *)v);
  if (rc != 0) {
    FZ_CHECK(rc == TRAIL_EINVAL_TRACESTATE, "error code %d", rc);
    FZ_CHECK(memcmp(&ctx, &before, sizeof ctx) == 0,
             "a rejected tracestate changed the context");
    fz_arena_free();
    return 0;
  }

  char want[TRAIL_TRACESTATE_MAX + 2 * 257 + 2];
  size_t wl = normalise(m, nm, want);
  const char *kept = trail_ctx_tracestate(&ctx);
  size_t kl = strlen(kept);
  FZ_CHECK(kl <= TRAIL_TRACESTATE_MAX, "kept %zu bytes", kl);
  FZ_CHECK(kl == wl && memcmp(kept, want, wl) == 0,
           "kept \"%s\", the spec's normalisation gives \"%s\"", kept, want);

  /* A fixed point: the kept value is valid, and kept unchanged. */
  char copy[TRAIL_TRACESTATE_MAX + 1];
  memcpy(copy, kept, kl + 1);
  member again[MAX_MEMBERS];
  int na = reference((const uint8_t *)copy, kl, again);
  FZ_CHECK(na >= 0, "the kept value is not valid: %s", copy);
  FZ_CHECK(na <= nm, "the kept value has %d members of %d", na, nm);
  FZ_CHECK(trail_ctx_set_tracestate(&ctx, copy, kl) == 0,
           "the kept value is rejected: %s", copy);
  FZ_CHECK(strcmp(trail_ctx_tracestate(&ctx), copy) == 0,
           "the kept value changed when set again: %s", copy);
  fz_arena_free();
  return 0;
}
