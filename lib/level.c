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
 * Service names go into every line unescaped, so they are restricted to
 * printable ASCII without the characters that would need escaping (", \)
 * or that a person would misread (space), and without the separators of the
 * TRAIL_LEVEL grammar (, =), which logger names share.
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

/*
 * Logger names are narrower than service names: they are what TRAIL_LEVEL
 * addresses, so a character that could be a mistyped separator (';', ':',
 * space) or a pattern ('*') would make a name no logger has and no error.
 */
int trail__logger_name_valid(const char *s, size_t len) {
  if (s == NULL || len == 0 || len > TRAIL__NAME_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9');
    if (!alnum && c != '.' && c != '_' && c != '-')
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

/* How much of a bad item a message quotes: enough to find it, no more. */
#define QUOTE_MAX 64

static int quoted(size_t n) { return (int)(n > QUOTE_MAX ? QUOTE_MAX : n); }

/*
 * Sets the level of the rule for name, adding the rule when name has none
 * yet, so that a later "db=debug" overrides an earlier "db=warn" rather than
 * taking a second slot.
 */
static int spec_set_rule(trail__level_spec *spec, const char *name, size_t nl,
                         trail_level lv, trail_config_error *err,
                         const char *source) {
  const size_t max = sizeof spec->rules / sizeof spec->rules[0];
  size_t i;
  for (i = 0; i < spec->nrules; i++)
    if (spec->rules[i].len == nl && memcmp(spec->rules[i].name, name, nl) == 0)
      break;
  if (i == spec->nrules) {
    if (spec->nrules == max) {
      trail__config_error(err, TRAIL_EINVAL_SPEC, source,
                          "more than %zu NAME=LEVEL items", max);
      return TRAIL_EINVAL_SPEC;
    }
    spec->nrules++;
  }
  memcpy(spec->rules[i].name, name, nl);
  spec->rules[i].name[nl] = '\0';
  spec->rules[i].len = nl;
  spec->rules[i].level = lv;
  return 0;
}

/*
 * One NAME=LEVEL item (eq is its '='), white space around the name and the
 * level ignored. The name is checked before the level, so that a message
 * about the level can quote a name known to be printable.
 */
static int parse_rule_item(trail__level_spec *spec, const char *item, size_t n,
                           const char *eq, trail_config_error *err,
                           const char *source) {
  const char *name = item;
  size_t nl = (size_t)(eq - item);
  const char *lvs = eq + 1;
  size_t ll = n - nl - 1;
  trail_level lv;
  trim(&name, &nl);
  trim(&lvs, &ll);
  if (!trail__logger_name_valid(name, nl)) {
    trail__config_error(err, TRAIL_EINVAL_NAME, source,
                        "invalid logger name \"%.*s\" (" TRAIL__LOGGER_NAME_RULE
                        "; items are separated by ',')",
                        quoted(nl), name);
    return TRAIL_EINVAL_NAME;
  }
  if (level_parse_n(lvs, ll, &lv) != 0) {
    trail__config_error(err, TRAIL_EINVAL_LEVEL, source,
                        "unknown level \"%.*s\" for logger \"%.*s\" "
                        "(accepted: " ACCEPTED ")",
                        quoted(ll), lvs, (int)nl, name);
    return TRAIL_EINVAL_LEVEL;
  }
  return spec_set_rule(spec, name, nl, lv, err, source);
}

/* One trimmed, non-empty item: LEVEL, the default, or NAME=LEVEL. */
static int parse_item(trail__level_spec *spec, const char *item, size_t n,
                      trail_config_error *err, const char *source) {
  const char *eq = memchr(item, '=', n);
  if (eq != NULL)
    return parse_rule_item(spec, item, n, eq, err, source);
  trail_level lv;
  if (level_parse_n(item, n, &lv) != 0) {
    trail__config_error(err, TRAIL_EINVAL_LEVEL, source,
                        "unknown level \"%.*s\" (accepted: " ACCEPTED
                        ", or NAME=LEVEL)",
                        quoted(n), item);
    return TRAIL_EINVAL_LEVEL;
  }
  spec->deflt = lv;
  return 0;
}

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
  int seen_item = 0;
  for (const char *p = spec;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    const char *item = p;
    trim(&item, &n);
    if (n > 0) {
      seen_item = 1;
      int rc = parse_item(&tmp, item, n, err, source);
      if (rc != 0)
        return rc;
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
