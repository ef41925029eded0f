/*
 * Which events are shown. An event is shown when it passes every filter
 * given; a filter given more than once (--request-id, --trace-id, --logger)
 * passes an event that matches any of its values, while each --where must
 * hold. Lines that are not events are not filtered at all.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pretty.h"

/* Adds a copy of the n bytes at value to list. False when out of memory. */
bool pretty_list_add(pretty_list *list, const char *value, size_t n) {
  if (list->len == list->cap) {
    size_t cap = list->cap ? 2 * list->cap : 8;
    char **items = realloc(list->items, cap * sizeof *items);
    if (items == NULL)
      return false;
    list->items = items;
    list->cap = cap;
  }
  char *copy = strndup(value, n);
  if (copy == NULL)
    return false;
  list->items[list->len++] = copy;
  return true;
}

/* Whether s is one of the values of list. */
bool pretty_list_has(const pretty_list *list, const char *s) {
  for (size_t i = 0; i < list->len; i++) {
    if (strcmp(list->items[i], s) == 0)
      return true;
  }
  return false;
}

/* Frees the values of list and the list's array. */
void pretty_list_free(pretty_list *list) {
  for (size_t i = 0; i < list->len; i++)
    free(list->items[i]);
  free(list->items);
  memset(list, 0, sizeof *list);
}

/*
 * Adds the --where condition arg: KEY=VALUE or KEY~REGEX, split at the
 * first '=' or '~'. Returns 0, or -1 with a message in err: no operator, an
 * empty key, a regular expression regcomp() refuses, or no memory.
 */
int pretty_where_add(pretty_options *opt, const char *arg, char *err,
                     size_t err_len) {
  size_t k = strcspn(arg, "=~");
  if (arg[k] == '\0' || k == 0) {
    snprintf(err, err_len, "--where: not KEY=VALUE or KEY~REGEX:");
    return -1;
  }
  pretty_where *w = realloc(opt->where, (opt->where_len + 1) * sizeof *w);
  if (w == NULL) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  opt->where = w;
  w += opt->where_len;
  memset(w, 0, sizeof *w);
  w->is_regex = arg[k] == '~';
  w->key = strndup(arg, k);
  w->value = strdup(arg + k + 1);
  if (w->key == NULL || w->value == NULL) {
    free(w->key);
    free(w->value);
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  int rc =
      w->is_regex ? regcomp(&w->re, w->value, REG_EXTENDED | REG_NOSUB) : 0;
  if (rc != 0) {
    char why[256];
    regerror(rc, &w->re, why, sizeof why);
    snprintf(err, err_len, "--where: %s in the regular expression of", why);
    free(w->key);
    free(w->value);
    return -1;
  }
  opt->where_len++;
  return 0;
}

/* Frees what the options hold (not the options themselves). */
void pretty_options_free(pretty_options *opt) {
  pretty_list_free(&opt->request);
  pretty_list_free(&opt->trace);
  pretty_list_free(&opt->logger);
  pretty_list_free(&opt->fields);
  pretty_list_free(&opt->hide);
  for (size_t i = 0; i < opt->where_len; i++) {
    free(opt->where[i].key);
    free(opt->where[i].value);
    if (opt->where[i].is_regex)
      regfree(&opt->where[i].re);
  }
  free(opt->where);
  opt->where = NULL;
  opt->where_len = 0;
}

/* Whether one of the prefixes in list starts s (n bytes), without regard to
   ASCII case. */
static bool prefix_match(const pretty_list *list, const char *s, size_t n) {
  for (size_t i = 0; i < list->len; i++) {
    size_t plen = strlen(list->items[i]);
    if (s != NULL && plen <= n && strncasecmp(s, list->items[i], plen) == 0)
      return true;
  }
  return false;
}

/* Whether the logger name s (n bytes) is one in list or a dotted descendant
   of one: "db" takes "db" and "db.pool", not "dbx". */
static bool logger_match(const pretty_list *list, const char *s, size_t n) {
  for (size_t i = 0; i < list->len; i++) {
    size_t plen = strlen(list->items[i]);
    if (s != NULL && plen <= n && memcmp(s, list->items[i], plen) == 0 &&
        (plen == n || s[plen] == '.'))
      return true;
  }
  return false;
}

/*
 * The value --where KEY looks at: the key of the line; else, for one of
 * trail's names of the parts (message, timestamp, ...), the key the part
 * came from (msg, time, ...); else, when KEY holds dots, the path through
 * nested objects ("http.status" is "status" inside "http").
 */
static json_t *lookup(const pretty_event *e, const char *key) {
  json_t *v = json_object_get(e->obj, key);
  if (v != NULL)
    return v;
  for (int slot = 0; slot < PRETTY_SLOT_COUNT; slot++) {
    if (e->val[slot] != NULL && strcmp(key, pretty_slot_names[slot]) == 0)
      return e->val[slot];
  }
  json_t *obj = e->obj;
  const char *p = key, *dot;
  if (strchr(key, '.') == NULL)
    return NULL;
  while ((dot = strchr(p, '.')) != NULL) {
    obj = json_object_getn(obj, p, (size_t)(dot - p));
    if (!json_is_object(obj))
      return NULL;
    p = dot + 1;
  }
  return json_object_get(obj, p);
}

/*
 * The text a --where compares with: a string's own characters, anything
 * else as compact JSON, as trail-pretty shows it (42, 12.5, true, null,
 * {"a":1}). Returns a string to free, or NULL when out of memory.
 */
char *pretty_value_text(json_t *v, size_t *len) {
  if (json_is_string(v)) {
    *len = json_string_length(v);
    char *copy = malloc(*len + 1);
    if (copy != NULL) {
      memcpy(copy, json_string_value(v), *len);
      copy[*len] = '\0';
    }
    return copy;
  }
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if (f == NULL)
    return NULL;
  pretty_write_json(f, v);
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}

/* Whether the event holds what one --where asks for. */
static bool where_match(const pretty_where *w, const pretty_event *e) {
  json_t *v = lookup(e, w->key);
  size_t len = 0;
  if (v == NULL)
    return false;
  char *text = pretty_value_text(v, &len);
  if (text == NULL)
    return false;
  bool ok = w->is_regex
                ? regexec(&w->re, text, 0, NULL, 0) == 0
                : len == strlen(w->value) && memcmp(text, w->value, len) == 0;
  free(text);
  return ok;
}

/* Whether the event's time lies within --since and --until. An event
   without a time that can be read is outside any such window. */
static bool time_pass(const pretty_options *opt, const pretty_event *e) {
  if (!opt->has_since && !opt->has_until)
    return true;
  if (!e->has_time)
    return false;
  return (!opt->has_since || pretty_time_cmp(e->time, opt->since) >= 0) &&
         (!opt->has_until || pretty_time_cmp(e->time, opt->until) <= 0);
}

/*
 * Whether the event passes every filter. A level below --level leaves it
 * out, but a level that cannot be ranked does not; an event without the id
 * or logger a filter asks for is left out.
 */
bool pretty_filter_pass(const pretty_options *opt, const pretty_event *e) {
  if (opt->min_level != PRETTY_LEVEL_NONE && e->level != PRETTY_LEVEL_NONE &&
      e->level < opt->min_level)
    return false;
  if (opt->request.len > 0 &&
      !prefix_match(&opt->request, e->str[PRETTY_SLOT_REQUEST],
                    e->len[PRETTY_SLOT_REQUEST]))
    return false;
  if (opt->trace.len > 0 &&
      !prefix_match(&opt->trace, e->str[PRETTY_SLOT_TRACE],
                    e->len[PRETTY_SLOT_TRACE]))
    return false;
  if (opt->logger.len > 0 &&
      !logger_match(&opt->logger, e->str[PRETTY_SLOT_LOGGER],
                    e->len[PRETTY_SLOT_LOGGER]))
    return false;
  if (!time_pass(opt, e))
    return false;
  for (size_t i = 0; i < opt->where_len; i++) {
    if (!where_match(&opt->where[i], e))
      return false;
  }
  return true;
}
