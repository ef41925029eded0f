/*
 * Levels, logger and service names, and the TRAIL_LEVEL grammar.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static const char *const level_names[] = {"trace", "debug", "info", "warn",
                                          "error", "fatal", "off"};

/* The lowercase name of a level, "?" outside the enum. Never NULL. */
TRAIL_API const char *trail_level_name(trail_level level) {
  if ((int)level < 0 || (int)level > (int)TRAIL_LEVEL_OFF)
    return "?";
  return level_names[level];
}

static int level_parse_n(const char *s, size_t n, trail_level *out) {
  for (int i = 0; i <= (int)TRAIL_LEVEL_OFF; i++) {
    if (strlen(level_names[i]) == n && strncasecmp(s, level_names[i], n) == 0) {
      *out = (trail_level)i;
      return 0;
    }
  }
  if (n == 7 && strncasecmp(s, "warning", 7) == 0) {
    *out = TRAIL_LEVEL_WARN;
    return 0;
  }
  return TRAIL_EINVAL_LEVEL;
}

/*
 * Parses a level name, case-insensitively; "warning" is taken for "warn"
 * because syslog and many people spell it so. *out is untouched on error.
 */
TRAIL_API int trail_level_parse(const char *name, trail_level *out) {
  if (name == NULL || out == NULL)
    return TRAIL_EINVAL_LEVEL;
  return level_parse_n(name, strlen(name), out);
}

/*
 * Names of loggers and services go into every line unescaped and into the
 * TRAIL_LEVEL grammar, so they are restricted to printable ASCII without the
 * characters that would need escaping (", \) or that the grammar uses (, =)
 * or that a person would misread (space).
 */
int trail__name_valid(const char *s, size_t len) {
  if (s == NULL || len == 0 || len > TRAIL__NAME_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == ',' || c == '=')
      return 0;
  }
  return 1;
}

static void trim(const char **s, size_t *n) {
  while (*n > 0 && isspace((unsigned char)**s)) {
    (*s)++;
    (*n)--;
  }
  while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
    (*n)--;
}

#define ACCEPTED "trace, debug, info, warn, error, fatal, off"

/*
 * Parses a TRAIL_LEVEL value: comma-separated items, each LEVEL (the default
 * for every logger) or NAME=LEVEL. Empty items are ignored, so "info," is
 * fine. The whole value is rejected on the first bad item, so that a typo
 * never half-applies; err names the item and what is accepted.
 */
int trail__level_spec_parse(const char *spec, trail__level_spec *out,
                            trail_config_error *err, const char *source) {
  trail__level_spec tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.deflt = TRAIL_LEVEL_INFO;
  if (spec == NULL) {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source, "no value given");
    return TRAIL_EINVAL_SPEC;
  }
  const char *p = spec;
  int seen_item = 0;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    const char *item = p;
    trim(&item, &n);
    if (n > 0) {
      seen_item = 1;
      const char *eq = memchr(item, '=', n);
      trail_level lv;
      if (eq == NULL) {
        if (level_parse_n(item, n, &lv) != 0) {
          trail__config_error(err, TRAIL_EINVAL_LEVEL, source,
                              "unknown level \"%.*s\" (accepted: " ACCEPTED
                              ", or NAME=LEVEL)",
                              (int)(n > 64 ? 64 : n), item);
          return TRAIL_EINVAL_LEVEL;
        }
        tmp.deflt = lv;
      } else {
        const char *name = item;
        size_t nl = (size_t)(eq - item);
        const char *lvs = eq + 1;
        size_t ll = n - nl - 1;
        trim(&name, &nl);
        trim(&lvs, &ll);
        if (!trail__name_valid(name, nl)) {
          trail__config_error(err, TRAIL_EINVAL_NAME, source,
                              "invalid logger name \"%.*s\" (1 to 128 "
                              "printable ASCII characters, no space, quote, "
                              "backslash, comma or '=')",
                              (int)(nl > 64 ? 64 : nl), name);
          return TRAIL_EINVAL_NAME;
        }
        if (level_parse_n(lvs, ll, &lv) != 0) {
          trail__config_error(err, TRAIL_EINVAL_LEVEL, source,
                              "unknown level \"%.*s\" for logger \"%.*s\" "
                              "(accepted: " ACCEPTED ")",
                              (int)(ll > 64 ? 64 : ll), lvs, (int)nl, name);
          return TRAIL_EINVAL_LEVEL;
        }
        size_t i;
        for (i = 0; i < tmp.nrules; i++)
          if (tmp.rules[i].len == nl &&
              memcmp(tmp.rules[i].name, name, nl) == 0)
            break;
        if (i == tmp.nrules) {
          if (tmp.nrules == sizeof tmp.rules / sizeof tmp.rules[0]) {
            trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                                "more than 32 NAME=LEVEL items");
            return TRAIL_EINVAL_SPEC;
          }
          tmp.nrules++;
        }
        memcpy(tmp.rules[i].name, name, nl);
        tmp.rules[i].name[nl] = '\0';
        tmp.rules[i].len = nl;
        tmp.rules[i].level = lv;
      }
    }
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  if (!seen_item) {
    trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                        "empty value (accepted: " ACCEPTED
                        ", optionally followed by ,NAME=LEVEL items)");
    return TRAIL_EINVAL_SPEC;
  }
  *out = tmp;
  return 0;
}

/*
 * A rule for "db" covers "db" and "db.pool" but not "dbx"; the longest
 * matching rule wins, so "db=warn,db.pool=debug" does what it says.
 */
trail_level trail__level_spec_lookup(const trail__level_spec *spec,
                                     const char *name, size_t len) {
  trail_level lv = spec->deflt;
  size_t best = 0;
  for (size_t i = 0; i < spec->nrules; i++) {
    const trail__level_rule *r = &spec->rules[i];
    if (r->len > len || r->len <= best)
      continue;
    if (memcmp(r->name, name, r->len) != 0)
      continue;
    if (r->len == len || name[r->len] == '.') {
      lv = r->level;
      best = r->len;
    }
  }
  return lv;
}
