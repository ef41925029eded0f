/*
 * Redaction: the values of sensitive keys (passwords, tokens, cookies) are
 * written as "[REDACTED]", whoever logs them and however deep in a json_t.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static const char default_list[] =
    "password,passwd,secret,token,api_key,authorization,cookie,set-cookie";

/* The last redaction generation given out; 0 is never one. */
static uint32_t last_gen;

/*
 * Parses a comma-separated list of keys into c (NULL: the default list;
 * "": none). Keys are kept lowercase; white space around them is ignored.
 * The whole list is rejected on a bad key, as TRAIL_LEVEL is.
 */
int trail__redact_parse(struct trail__conf *c, const char *list,
                        trail_config_error *err, const char *source) {
  char text[TRAIL__REDACT_TEXT];
  uint16_t off[TRAIL__REDACT_MAX];
  uint8_t len[TRAIL__REDACT_MAX];
  size_t n = 0, used = 0;
  uint64_t sig[64];
  memset(sig, 0, sizeof sig);
  uint32_t by_len[64];
  memset(by_len, 0, sizeof by_len);
  if (list == NULL)
    list = default_list;
  for (const char *p = list;;) {
    const char *comma = strchr(p, ',');
    size_t k = comma ? (size_t)(comma - p) : strlen(p);
    const char *key = p;
    while (k > 0 && isspace((unsigned char)*key)) {
      key++;
      k--;
    }
    while (k > 0 && isspace((unsigned char)key[k - 1]))
      k--;
    if (k > 0) {
      if (k > 63) {
        trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                            "key \"%.20s...\" is longer than 63 bytes", key);
        return TRAIL_EINVAL_SPEC;
      }
      if (n == TRAIL__REDACT_MAX || used + k + 1 > sizeof text) {
        trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                            "more than %d keys or %d bytes of keys in all "
                            "(at \"%.*s\")",
                            TRAIL__REDACT_MAX, TRAIL__REDACT_TEXT, (int)k, key);
        return TRAIL_EINVAL_SPEC;
      }
      for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
          trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                              "invalid key \"%.*s\" (printable ASCII, no "
                              "space, quote or backslash)",
                              (int)k, key);
          return TRAIL_EINVAL_SPEC;
        }
        text[used + i] = (char)tolower(ch);
      }
      text[used + k] = '\0';
      off[n] = (uint16_t)used;
      len[n] = (uint8_t)k;
      sig[k] |= UINT64_C(1)
                << trail__redact_sig((unsigned char)text[used],
                                     (unsigned char)text[used + k - 1]);
      by_len[k] |= UINT32_C(1) << n;
      used += k + 1;
      n++;
    }
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  memcpy(c->redact_text, text, used);
  memcpy(c->redact_off, off, n * sizeof off[0]);
  memcpy(c->redact_len, len, n);
  c->nredact = (uint8_t)n;
  memcpy(c->redact_sig, sig, sizeof sig);
  memcpy(c->redact_by_len, by_len, sizeof by_len);
  c->redact_gen = __atomic_add_fetch(&last_gen, 1, __ATOMIC_RELAXED);
  return 0;
}

/*
 * Called for every field key (through trail__maybe_redacted(), whose filter
 * rejects almost every key with one test, so a line without sensitive keys
 * pays next to nothing).
 */
int trail__redacted(const char *k, size_t len) {
  return trail__redacted_in(trail__conf_get(), k, len);
}

int trail__redacted_in(const trail__conf *c, const char *k, size_t len) {
  if (!trail__redact_filter(c, k, len))
    return 0;
  /* Keys are kept lowercase: compare the first letter before the rest. */
  unsigned char first = (unsigned char)k[0];
  if (first >= 'A' && first <= 'Z')
    first = (unsigned char)(first - 'A' + 'a');
  for (uint32_t m = c->redact_by_len[len]; m != 0; m &= m - 1) {
    const char *r = c->redact_text + c->redact_off[__builtin_ctz(m)];
    if ((unsigned char)r[0] != first)
      continue;
    size_t j = 1;
    for (; j < len; j++) {
      unsigned char a = (unsigned char)k[j];
      if (a >= 'A' && a <= 'Z')
        a = (unsigned char)(a - 'A' + 'a');
      if (a != (unsigned char)r[j])
        break;
    }
    if (j == len)
      return 1;
  }
  return 0;
}

/*
 * Sets the sensitive keys: "password,token,..." (NULL: the default list,
 * "": none). Matched case-insensitively against field keys, bound fields
 * and the keys of objects inside json_t values.
 */
TRAIL_API int trail_redact_set(const char *list, trail_config_error *err) {
  trail__config_lock();
  trail__conf *c = trail__conf_copy_locked();
  int rc = -ENOMEM;
  if (c != NULL) {
    rc = trail__redact_parse(c, list, err, "trail_redact_set");
    if (rc == 0)
      trail__conf_publish_locked(c);
    else
      free(c);
  }
  trail__config_unlock();
  return rc;
}
