/*
 * Redaction: the values of sensitive keys (passwords, tokens, cookies) are
 * written as "[REDACTED]", whoever logs them and however deep in a json_t.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static const char default_list[] =
    "password,passwd,secret,token,api_key,authorization,cookie,set-cookie";

/* The last redaction generation given out; 0 is never one. */
static uint32_t last_gen;

/*
 * The longest key. The conf's redact_sig and redact_by_len have one entry
 * per key length, 0 to KEY_MAX.
 */
#define KEY_MAX 63

/* A list being parsed: the fields of the conf it will be copied into. */
typedef struct key_list {
  char text[TRAIL__REDACT_TEXT];
  uint16_t off[TRAIL__REDACT_MAX];
  uint8_t len[TRAIL__REDACT_MAX];
  size_t n, used;
  uint64_t sig[KEY_MAX + 1];
  uint32_t by_len[KEY_MAX + 1];
} key_list;

_Static_assert(sizeof((trail__conf *)0)->redact_sig ==
                       sizeof((key_list *)0)->sig &&
                   sizeof((trail__conf *)0)->redact_by_len ==
                       sizeof((key_list *)0)->by_len,
               "one redact_sig and redact_by_len entry per key length");

/*
 * Appends key[0..k) to ks, lowercase, and sets its bits in the per-length
 * filters. The checks run in a fixed order (length, room, characters), so
 * that a key wrong in several ways always gets the same message.
 */
static int add_key(key_list *ks, const char *key, size_t k,
                   trail_config_error *err, const char *source) {
  if (k > KEY_MAX) {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                        "key \"%.20s...\" is longer than %d bytes", key,
                        KEY_MAX);
    return TRAIL_EINVAL_SPEC;
  }
  if (ks->n == TRAIL__REDACT_MAX || ks->used + k + 1 > sizeof ks->text) {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                        "more than %d keys or %d bytes of keys in all "
                        "(at \"%.*s\")",
                        TRAIL__REDACT_MAX, TRAIL__REDACT_TEXT, (int)k, key);
    return TRAIL_EINVAL_SPEC;
  }
  char *dst = ks->text + ks->used;
  for (size_t i = 0; i < k; i++) {
    unsigned char ch = (unsigned char)key[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
      trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                          "invalid key \"%.*s\" (printable ASCII, no "
                          "space, quote or backslash)",
                          (int)k, key);
      return TRAIL_EINVAL_SPEC;
    }
    dst[i] = (char)tolower(ch);
  }
  dst[k] = '\0';
  ks->off[ks->n] = (uint16_t)ks->used;
  ks->len[ks->n] = (uint8_t)k;
  ks->sig[k] |= UINT64_C(1) << trail__redact_sig((unsigned char)dst[0],
                                                 (unsigned char)dst[k - 1]);
  ks->by_len[k] |= UINT32_C(1) << ks->n;
  ks->used += k + 1;
  ks->n++;
  return 0;
}

/*
 * Copies a parsed list into c under a new generation: fields encoded ahead
 * of time (a logger's or a context's) carry the generation they were
 * redacted under, and are redone when it is not the current one.
 */
static void store_keys(struct trail__conf *c, const key_list *ks) {
  memcpy(c->redact_text, ks->text, ks->used);
  memcpy(c->redact_off, ks->off, ks->n * sizeof ks->off[0]);
  memcpy(c->redact_len, ks->len, ks->n);
  c->nredact = (uint8_t)ks->n;
  memcpy(c->redact_sig, ks->sig, sizeof ks->sig);
  memcpy(c->redact_by_len, ks->by_len, sizeof ks->by_len);
  c->redact_gen = __atomic_add_fetch(&last_gen, 1, __ATOMIC_RELAXED);
}

/* The comma-separated keys of list into ks, white space around each ignored. */
static int add_keys(key_list *ks, const char *list, trail_config_error *err,
                    const char *source) {
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
      int rc = add_key(ks, key, k, err, source);
      if (rc != 0)
        return rc;
    }
    if (comma == NULL)
      return 0;
    p = comma + 1;
  }
}

/* Where a list that starts with '+' has its keys (after the '+'), or NULL. */
static const char *added_keys(const char *list) {
  while (isspace((unsigned char)*list))
    list++;
  return *list == TRAIL__REDACT_ADD ? list + 1 : NULL;
}

int trail__redact_list_adds(const char *list) {
  return list != NULL && added_keys(list) != NULL;
}

/*
 * Parses a comma-separated list of keys into c (NULL: the default list;
 * "": none; "+KEYS": the default list and KEYS). Keys are kept lowercase;
 * white space around them is ignored. The whole list is rejected on a bad
 * key, as TRAIL_LEVEL is.
 */
int trail__redact_parse(struct trail__conf *c, const char *list,
                        trail_config_error *err, const char *source) {
  key_list ks;
  memset(&ks, 0, sizeof ks);
  const char *added = list ? added_keys(list) : NULL;
  int rc = 0;
  if (list == NULL || added != NULL)
    rc = add_keys(&ks, default_list, err, source);
  if (rc == 0 && list != NULL)
    rc = add_keys(&ks, added ? added : list, err, source);
  if (rc != 0)
    return rc;
  store_keys(c, &ks);
  return 0;
}

/*
 * The keys of the default list that c does not redact, ", "-separated into
 * out (cut to fit). Returns their number.
 */
size_t trail__redact_defaults_dropped(const struct trail__conf *c, char *out,
                                      size_t cap) {
  size_t n = 0, used = 0;
  out[0] = '\0';
  for (const char *p = default_list; *p != '\0';) {
    size_t k = strcspn(p, ",");
    if (!trail__redacted_in(c, p, k)) {
      int w =
          snprintf(out + used, cap - used, "%s%.*s", n ? ", " : "", (int)k, p);
      if (w > 0)
        used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
      n++;
    }
    p += k + (p[k] == ',');
  }
  return n;
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
 * "": none, "+card,...": the default list and those keys). Matched
 * case-insensitively against field keys, bound fields and the keys of objects
 * inside json_t values.
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
