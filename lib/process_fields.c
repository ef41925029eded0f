/*
 * Process fields: one set of fields on every line of the process, right
 * after the reserved keys (docs/log-format.md). A set is checked and encoded
 * once, here, into an immutable trail__pfields; it is published as part of
 * the configuration snapshot, so that a logging call reads it with the
 * snapshot it already loads and copies its bytes, and a replaced set is
 * kept, like a replaced snapshot, until trail_shutdown().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Every set made, newest first: pushed under the config lock, read without. */
static trail__pfields *all_sets;
/*
 * The newest sets by number, slot gen % RECENT_SETS: a queued line finds its
 * set here in one load, however many replacements happened since it was
 * logged (up to RECENT_SETS), and walks the list only when it lags further.
 */
#define RECENT_SETS 64
static trail__pfields *recent[RECENT_SETS];
/* The last set's number; never reset, so that no number is used twice. */
static uint32_t last_gen;

const trail__pfields *trail__pfields_find(uint32_t gen) {
  if (gen == 0)
    return NULL;
  const trail__pfields *p = TRAIL__LOAD(&recent[gen % RECENT_SETS]);
  if (p != NULL && p->gen == gen)
    return p;
  for (p = TRAIL__LOAD(&all_sets); p != NULL; p = p->all_next)
    if (p->gen == gen)
      return p;
  return NULL;
}

void trail__pfields_free_all_locked(void) {
  trail__pfields *p = all_sets;
  TRAIL__STORE(&all_sets, NULL);
  for (size_t i = 0; i < RECENT_SETS; i++)
    TRAIL__STORE(&recent[i], NULL);
  while (p != NULL) {
    trail__pfields *next = p->all_next;
    free(p);
    p = next;
  }
}

/* 0 when every key is given, not empty and not given twice; else -EINVAL. */
static int check_keys(const trail_field *fields, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t klen;
    if (fields[i].key == NULL)
      return -EINVAL;
    const char *k = trail__field_key(&fields[i], &klen);
    if (klen == 0)
      return -EINVAL;
    for (size_t j = 0; j < i; j++) {
      size_t olen;
      const char *o = trail__field_key(&fields[j], &olen);
      if (olen == klen && memcmp(o, k, klen) == 0)
        return -EINVAL;
    }
  }
  return 0;
}

/*
 * Encodes the set into p under the redaction list in force (config lock
 * held, so that the list cannot change meanwhile): -ENOSPC when it does not
 * fit whole in TRAIL__PFIELDS_BYTES.
 */
static int encode_set(trail__pfields *p, const trail_field *fields, size_t n) {
  trail__buf b = {.data = p->seg, .len = 0, .limit = TRAIL__PFIELDS_BYTES};
  trail__keyset ks = {.keys = p->keys, .n = 0, .cap = TRAIL__PFIELDS_MAX};
  for (size_t i = 0; i < n; i++)
    if (trail__put_field(&b, &ks, &fields[i]) != 0 || b.truncated)
      return -ENOSPC;
  p->len = b.len;
  p->nkeys = ks.n;
  p->redact_gen = trail__conf_get()->redact_gen;
  return 0;
}

/* Publishes p (NULL: no fields) in a new snapshot (config lock held). */
static int publish_locked(trail__pfields *p) {
  trail__conf *c = trail__conf_copy_locked();
  if (c == NULL)
    return -ENOMEM;
  if (p != NULL) {
    p->gen = ++last_gen == 0 ? ++last_gen : last_gen;
    p->all_next = all_sets;
    TRAIL__STORE(&all_sets, p);
    TRAIL__STORE(&recent[p->gen % RECENT_SETS], p);
  }
  c->pfields = p;
  trail__conf_publish_locked(c);
  return 0;
}

TRAIL_API int trail_fields_set(const trail_field *fields, size_t n) {
  if (n > 0 && fields == NULL)
    return -EINVAL;
  if (n > TRAIL__PFIELDS_MAX)
    return -ENOSPC;
  int rc = check_keys(fields, n);
  if (rc != 0)
    return rc;
  trail__pfields *p = NULL;
  if (n > 0 && (p = calloc(1, sizeof *p)) == NULL)
    return -ENOMEM;
  trail__config_lock();
  if (p != NULL)
    rc = encode_set(p, fields, n);
  if (rc == 0)
    rc = publish_locked(p);
  trail__config_unlock();
  if (rc != 0)
    free(p);
  return rc;
}

/* ---- TRAIL_FIELDS ------------------------------------------------------ */

/* The parsed pairs: keys and values unescaped into text, NUL-terminated. */
typedef struct spec_parse {
  trail_field fields[TRAIL__PFIELDS_MAX];
  size_t n;
  char text[TRAIL__PFIELDS_BYTES * 2];
  size_t used;
} spec_parse;

/*
 * Copies one key or value from *s into the text, up to an unescaped stop
 * byte ('=' for a key, ',' for a value; both end a key) or the end, taking
 * "\c" as c. Returns the copy, or NULL for a trailing backslash or a text
 * too long; *s is left at the byte that stopped it.
 */
static const char *take_part(spec_parse *sp, const char **s, char stop) {
  const char *p = *s;
  char *out = sp->text + sp->used;
  size_t room = sizeof sp->text - sp->used;
  size_t len = 0;
  for (; *p != '\0' && *p != stop && *p != ','; p++) {
    if (*p == '\\' && *++p == '\0')
      return NULL;
    if (len + 1 >= room)
      return NULL;
    out[len++] = *p;
  }
  out[len] = '\0';
  sp->used += len + 1;
  *s = p;
  return out;
}

/* One key=value pair at *s; 0, or -1 with the complaint in err. */
static int take_pair(spec_parse *sp, const char **s, trail_config_error *err,
                     const char *source) {
  size_t at = sp->n + 1;
  if (sp->n == TRAIL__PFIELDS_MAX) {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source, "more than %d fields",
                        TRAIL__PFIELDS_MAX);
    return -1;
  }
  const char *key = take_part(sp, s, '=');
  if (key != NULL && **s != '=') {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                        "field %zu (\"%.64s\") has no '='", at, key);
    return -1;
  }
  const char *value = NULL;
  if (key != NULL) {
    (*s)++;
    value = take_part(sp, s, ',');
  }
  if (value == NULL) {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                        "field %zu: a '\\' at the end, or too long", at);
    return -1;
  }
  if (key[0] == '\0') {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                        "field %zu has an empty key", at);
    return -1;
  }
  sp->fields[sp->n++] = TRAIL_STR(key, value);
  return 0;
}

/* What trail_fields_set() refused, for the message. */
static const char *refusal(int rc) {
  if (rc == -EINVAL)
    return "a key given twice";
  if (rc == -ENOSPC)
    return "longer than 1024 bytes as JSON";
  return trail_strerror(rc);
}

int trail__fields_parse(const char *spec, trail_config_error *err,
                        const char *source) {
  spec_parse *sp = calloc(1, sizeof *sp);
  if (sp == NULL)
    return -ENOMEM;
  int rc = 0;
  const char *s = spec;
  while (rc == 0 && *s != '\0') {
    rc = take_pair(sp, &s, err, source) != 0 ? TRAIL_EINVAL_SPEC : 0;
    if (rc == 0 && *s == ',' && *++s == '\0') {
      trail__config_error(err, TRAIL_EINVAL_SPEC, source, "a ',' at the end");
      rc = TRAIL_EINVAL_SPEC;
    }
  }
  if (rc == 0 && (rc = trail_fields_set(sp->fields, sp->n)) != 0) {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source, "%s", refusal(rc));
    rc = TRAIL_EINVAL_SPEC;
  }
  free(sp);
  return rc;
}
