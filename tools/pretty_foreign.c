/*
 * What a JSON line says: its time, level, logger, message, service and ids,
 * whichever logger wrote it. trail's own keys come first; the keys of other
 * JSON loggers are read when trail's are absent, so that one reader serves
 * a fleet that mixes them:
 *
 *   time     "timestamp", "time", "ts", "@timestamp": an RFC 3339 text, or
 *            a number since 1970 (pino and bunyan: milliseconds; zap: a
 *            real number of seconds)
 *   level    "level": a name in any case (slog's "INFO", logrus's
 *            "warning"), or pino's and bunyan's 10, 20, 30, 40, 50, 60;
 *            else "severity" (Google Cloud Logging's "WARNING")
 *   message  "message" (trail, zerolog), "msg" (pino, bunyan, zap, logrus,
 *            slog)
 *   logger   "logger" (trail, zap), "name" on a line whose level is a
 *            number (pino, bunyan)
 *
 * A key that does not hold what its part needs (a "message" that is a
 * number) is not that part: it stays an ordinary field.
 */
#include <string.h>
#include <strings.h>

#include "pretty.h"

const char *const pretty_slot_names[PRETTY_SLOT_COUNT] = {
    "timestamp",  "level",   "logger",   "message", "service",
    "request_id", "user_id", "trace_id", "span_id"};

static const char *const level_names[] = {"trace", "debug", "info",
                                          "warn",  "error", "fatal"};

/*
 * The level named by the n bytes at s, compared without regard to case, with
 * "warning" taken for "warn" as trail's own TRAIL_LEVEL does;
 * PRETTY_LEVEL_NONE for anything else.
 */
int pretty_level_parse(const char *s, size_t n) {
  for (int i = PRETTY_LEVEL_TRACE; i <= PRETTY_LEVEL_FATAL; i++) {
    if (strlen(level_names[i]) == n && strncasecmp(s, level_names[i], n) == 0)
      return i;
  }
  if (n == 7 && strncasecmp(s, "warning", 7) == 0)
    return PRETTY_LEVEL_WARN;
  return PRETTY_LEVEL_NONE;
}

/* Fills the part `slot` with the value v of key. */
static void set_slot(pretty_event *e, int slot, const char *key, json_t *v) {
  e->key[slot] = key;
  e->val[slot] = v;
  if (json_is_string(v)) {
    e->str[slot] = json_string_value(v);
    e->len[slot] = json_string_length(v);
  }
}

/* Fills `slot` from the first of the keys that holds a string. */
static void take_string(pretty_event *e, int slot, const char *const *keys,
                        size_t n_keys) {
  for (size_t i = 0; i < n_keys; i++) {
    json_t *v = json_object_get(e->obj, keys[i]);
    if (json_is_string(v)) {
      set_slot(e, slot, keys[i], v);
      return;
    }
  }
}

/* The time: the first time key that holds a string (shown as it is when it
   is not RFC 3339) or a number that is a time. */
static void read_time(pretty_event *e) {
  static const char *const keys[] = {"timestamp", "time", "ts", "@timestamp"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    json_t *v = json_object_get(e->obj, keys[i]);
    if (json_is_string(v)) {
      set_slot(e, PRETTY_SLOT_TIME, keys[i], v);
      e->has_time = pretty_time_parse(json_string_value(v),
                                      json_string_length(v), &e->time);
      return;
    }
    if (pretty_time_number(v, &e->time)) {
      set_slot(e, PRETTY_SLOT_TIME, keys[i], v);
      e->has_time = true;
      return;
    }
  }
}

/* The level: "level" as a string or as one of pino's and bunyan's numbers,
   else "severity" (Google Cloud Logging) as a string. */
static void read_level(pretty_event *e) {
  json_t *v = json_object_get(e->obj, "level");
  const char *key = "level";
  if (v == NULL) {
    v = json_object_get(e->obj, "severity");
    key = "severity";
  }
  if (json_is_string(v)) {
    set_slot(e, PRETTY_SLOT_LEVEL, key, v);
    e->level = pretty_level_parse(json_string_value(v), json_string_length(v));
  } else if (json_is_integer(v) && strcmp(key, "level") == 0) {
    json_int_t nr = json_integer_value(v);
    if (nr < 10 || nr > 60 || nr % 10 != 0)
      return;
    set_slot(e, PRETTY_SLOT_LEVEL, "level", v);
    e->level = (int)(nr / 10) - 1;
    e->numeric_level = true;
  }
}

/* Reads the parts of the event in obj, which must be a JSON object. */
void pretty_event_read(pretty_event *e, json_t *obj) {
  static const char *const message_keys[] = {"message", "msg"};
  static const char *const logger_keys[] = {"logger", "name"};
  memset(e, 0, sizeof *e);
  e->obj = obj;
  e->level = PRETTY_LEVEL_NONE;
  read_time(e);
  read_level(e);
  take_string(e, PRETTY_SLOT_MESSAGE, message_keys, 2);
  take_string(e, PRETTY_SLOT_LOGGER, logger_keys, e->numeric_level ? 2 : 1);
  for (int slot = PRETTY_SLOT_SERVICE; slot <= PRETTY_SLOT_SPAN; slot++)
    take_string(e, slot, &pretty_slot_names[slot], 1);
  e->truncated = json_is_true(json_object_get(obj, "truncated"));
  if (e->numeric_level && json_is_integer(json_object_get(obj, "v")))
    e->dropped = "v";
}

/* Whether key is shown in a place of its own (or not at all), rather than
   as a field. */
bool pretty_event_owns(const pretty_event *e, const char *key) {
  for (int slot = 0; slot < PRETTY_SLOT_COUNT; slot++) {
    if (e->key[slot] != NULL && strcmp(e->key[slot], key) == 0)
      return true;
  }
  return (e->truncated && strcmp(key, "truncated") == 0) ||
         (e->dropped != NULL && strcmp(key, e->dropped) == 0);
}
