/*
 * One input line in, at most one output line out. A line that holds a JSON
 * object is an event: it is read with jansson, its parts found by
 * pretty_foreign.c, checked against the filters and written as
 *
 *   [DATE ]TIME LEVEL [service] logger  message  key=value ... rid=.. ...
 *
 * Any other line (text, a JSON array or number, broken JSON) is not an
 * event: it is written as it came, made safe for a terminal, and no filter
 * applies to it.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pretty.h"

#define SGR_RESET "\033[0m"
#define SGR_DIM "\033[2m"
#define SGR_LOGGER "\033[36m"  /* cyan */
#define SGR_SERVICE "\033[34m" /* blue */
#define SGR_MARKER "\033[33m"  /* yellow */
#define SHORT_ID 8             /* bytes of request_id and trace_id shown */
#define MAX_QUOTED_NUMBERS ((size_t)64) /* numbers too big for jansson */

static const char *const level_labels[] = {"TRACE", "DEBUG", "INFO",
                                           "WARN",  "ERROR", "FATAL"};
static const char *const level_colors[] = {
    "\033[2m",    /* trace: dim */
    "\033[2m",    /* debug: dim */
    "\033[32m",   /* info: green */
    "\033[33m",   /* warn: yellow */
    "\033[31m",   /* error: red */
    "\033[1;35m", /* fatal: bold magenta */
};

/* Frees what the state allocated (not the state itself). */
void pretty_state_free(pretty_state *st) {
  free(st->scratch);
  st->scratch = NULL;
  st->scratch_cap = 0;
  free(st->first_service);
  st->first_service = NULL;
  pretty_options_free(&st->opt);
}

/* ---- reading the line -------------------------------------------------- */

/* Makes room for `need` bytes in the scratch buffer. */
static bool scratch_reserve(pretty_state *st, size_t need) {
  if (need <= st->scratch_cap)
    return true;
  char *p = realloc(st->scratch, need);
  if (p == NULL)
    return false;
  st->scratch = p;
  st->scratch_cap = need;
  return true;
}

/*
 * The event in the n bytes at line, or NULL when the line is not a JSON
 * object. Invalid UTF-8 is replaced by U+FFFD first, since jansson rejects
 * it and a line is better shown with a U+FFFD than not shown as an event.
 * jansson also rejects an integer beyond 64 bits (trail writes uint64
 * values up to 18446744073709551615) and a real beyond a double: such a
 * number is put in quotes, so that it reads as a string and shows exactly as
 * written, and the line is read again.
 */
static json_t *parse(pretty_state *st, const char *line, size_t n) {
  size_t i = 0;
  while (i < n && (line[i] == ' ' || line[i] == '\t'))
    i++;
  if (i == n || line[i] != '{')
    return NULL;

  bool valid = pretty_utf8_valid(line, n);
  size_t room = (valid ? n : 3 * n) + 2 * MAX_QUOTED_NUMBERS;
  if (!scratch_reserve(st, room))
    return NULL;
  char *buf = st->scratch;
  size_t len = n;
  if (valid)
    memcpy(buf, line, n);
  else
    len = pretty_utf8_fix(line, n, buf);

  for (size_t quoted = 0;; quoted++) {
    json_error_t err;
    json_t *v = json_loadb(buf, len, JSON_ALLOW_NUL, &err);
    if (v != NULL) {
      if (json_is_object(v))
        return v;
      json_decref(v);
      return NULL;
    }
    if (json_error_code(&err) != json_error_numeric_overflow ||
        quoted == MAX_QUOTED_NUMBERS || err.position < 1 ||
        (size_t)err.position > len)
      return NULL;
    /* jansson stops right after the number it could not hold. */
    size_t stop = (size_t)err.position, start = stop;
    while (start > 0 && strchr("0123456789+-.eE", buf[start - 1]) != NULL &&
           buf[start - 1] != '\0')
      start--;
    if (start == stop ||
        (buf[start] != '-' && (buf[start] < '0' || buf[start] > '9')))
      return NULL;
    memmove(buf + stop + 2, buf + stop, len - stop);
    memmove(buf + start + 1, buf + start, stop - start);
    buf[start] = '"';
    buf[stop + 1] = '"';
    len += 2;
  }
}

/* ---- writing ----------------------------------------------------------- */

/* Writes a double as the shortest %g text that reads back to it. */
static void write_real(FILE *out, double d) {
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (strtod(buf, NULL) == d)
      break;
  }
  fputs(buf, out);
}

/* Writes a string in double quotes, made safe. */
static void write_quoted(FILE *out, const char *s, size_t n, unsigned flags) {
  putc('"', out);
  pretty_text_write(out, s, n, flags);
  putc('"', out);
}

/* Writes v as compact JSON, its strings made safe with JSON escapes, its
   keys in the order of the line. */
void pretty_write_json(FILE *out, json_t *v) {
  const char *key;
  json_t *item;
  size_t i;
  const char *sep = "";

  switch (json_typeof(v)) {
  case JSON_OBJECT:
    putc('{', out);
    json_object_foreach(v, key, item) {
      fputs(sep, out);
      write_quoted(out, key, strlen(key), PRETTY_TEXT_JSON);
      putc(':', out);
      pretty_write_json(out, item);
      sep = ",";
    }
    putc('}', out);
    break;
  case JSON_ARRAY:
    putc('[', out);
    json_array_foreach(v, i, item) {
      fputs(sep, out);
      pretty_write_json(out, item);
      sep = ",";
    }
    putc(']', out);
    break;
  case JSON_STRING:
    write_quoted(out, json_string_value(v), json_string_length(v),
                 PRETTY_TEXT_JSON);
    break;
  case JSON_INTEGER:
    fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    break;
  case JSON_REAL:
    write_real(out, json_real_value(v));
    break;
  case JSON_TRUE:
    fputs("true", out);
    break;
  case JSON_FALSE:
    fputs("false", out);
    break;
  case JSON_NULL:
    fputs("null", out);
    break;
  }
}

/* Writes a string bare when it can be read back unambiguously, else in
   quotes with escapes. */
static void write_str(FILE *out, const char *s, size_t n) {
  if (pretty_text_bare(s, n))
    fwrite(s, 1, n, out);
  else
    write_quoted(out, s, n, PRETTY_TEXT_QUOTED);
}

/* Writes the value of a key=value pair: a string bare or quoted, anything
   else as compact JSON. */
static void write_value(FILE *out, json_t *v) {
  if (json_is_string(v))
    write_str(out, json_string_value(v), json_string_length(v));
  else
    pretty_write_json(out, v);
}

/* Writes `key=`, dim when in colour. */
static void write_key(const pretty_state *st, const char *key, size_t n) {
  if (st->opt.color)
    fputs(SGR_DIM, st->out);
  write_str(st->out, key, n);
  putc('=', st->out);
  if (st->opt.color)
    fputs(SGR_RESET, st->out);
}

/* Writes an id of the trailer (rid=, trace=), cut to its first SHORT_ID
   bytes unless --full; the cut falls on a UTF-8 boundary, so that the short
   form is a prefix of the id a filter can take. */
static void write_id(const pretty_state *st, const char *name, const char *s,
                     size_t n) {
  if (!st->opt.full && n > SHORT_ID) {
    n = SHORT_ID;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
      n--;
  }
  write_key(st, name, strlen(name));
  write_str(st->out, s, n);
}

/* Writes the text of a column, in colour sgr when colour is on. */
static void write_colored(const pretty_state *st, const char *sgr,
                          const char *s, size_t n) {
  if (st->opt.color && sgr != NULL)
    fputs(sgr, st->out);
  pretty_text_write(st->out, s, n, 0);
  if (st->opt.color && sgr != NULL)
    fputs(SGR_RESET, st->out);
}

/* Whether the part `slot` of the event is hidden by --hide: by trail's name
   for it, or by the key it came from. */
static bool hidden(const pretty_state *st, const pretty_event *e, int slot) {
  return pretty_list_has(&st->opt.hide, pretty_slot_names[slot]) ||
         (e->key[slot] != NULL && pretty_list_has(&st->opt.hide, e->key[slot]));
}

/* Notes the service of an event that is to be shown: once a second service
   has been seen, the services are mixed. */
static void note_service(pretty_state *st, const pretty_event *e) {
  const char *svc = e->str[PRETTY_SLOT_SERVICE];
  size_t n = e->len[PRETTY_SLOT_SERVICE];
  if (svc == NULL || st->mixed)
    return;
  if (st->first_service == NULL) {
    st->first_service = malloc(n + 1);
    if (st->first_service != NULL) {
      memcpy(st->first_service, svc, n);
      st->first_service_len = n;
    }
  } else if (n != st->first_service_len ||
             memcmp(svc, st->first_service, n) != 0) {
    st->mixed = true;
  }
}

/* Whether the event's service is shown: with --service=auto, once events of
   two services have been read. */
static bool service_shown(const pretty_state *st, const pretty_event *e) {
  if (e->str[PRETTY_SLOT_SERVICE] == NULL || hidden(st, e, PRETTY_SLOT_SERVICE))
    return false;
  if (st->opt.service == PRETTY_SERVICE_AUTO)
    return st->mixed;
  return st->opt.service == PRETTY_SERVICE_ALWAYS;
}

/* Writes the time: the date first when asked for or when it changed. A
   time that cannot be read is written as it is. */
static void write_time(pretty_state *st, const pretty_event *e) {
  if (!e->has_time) {
    write_colored(st, SGR_DIM, e->str[PRETTY_SLOT_TIME],
                  e->len[PRETTY_SLOT_TIME]);
    return;
  }
  char date[PRETTY_TIME_TEXT], time[PRETTY_TIME_TEXT];
  pretty_time_format(e->time, st->opt.local, date, time);
  if (st->opt.color)
    fputs(SGR_DIM, st->out);
  if (st->opt.date || strcmp(date, st->last_date) != 0)
    fprintf(st->out, "%s ", date);
  fputs(time, st->out);
  if (st->opt.color)
    fputs(SGR_RESET, st->out);
  memcpy(st->last_date, date, sizeof st->last_date);
}

/* Writes the level: one of the six in capitals, any other as it is.
   Returns the separator after it, which pads it to five columns. */
static const char *write_level(const pretty_state *st, const pretty_event *e) {
  static const char spaces[] = "      ";
  size_t n = e->len[PRETTY_SLOT_LEVEL];
  if (e->level != PRETTY_LEVEL_NONE) {
    n = strlen(level_labels[e->level]);
    write_colored(st, level_colors[e->level], level_labels[e->level], n);
  } else {
    pretty_text_write(st->out, e->str[PRETTY_SLOT_LEVEL], n, 0);
  }
  return n < 5 ? spaces + n : " ";
}

/* Writes the head: time, level, service, logger, message. Returns the
   separator the next part needs, so that a line never ends in spaces. */
static const char *write_head(pretty_state *st, const pretty_event *e) {
  const char *sep = "";
  bool svc = service_shown(st, e);
  if (e->key[PRETTY_SLOT_TIME] != NULL && !hidden(st, e, PRETTY_SLOT_TIME)) {
    write_time(st, e);
    sep = " ";
  }
  if (e->key[PRETTY_SLOT_LEVEL] != NULL && !hidden(st, e, PRETTY_SLOT_LEVEL)) {
    fputs(sep, st->out);
    sep = write_level(st, e);
  }
  if (svc) {
    fputs(sep, st->out);
    putc('[', st->out);
    write_colored(st, SGR_SERVICE, e->str[PRETTY_SLOT_SERVICE],
                  e->len[PRETTY_SLOT_SERVICE]);
    putc(']', st->out);
    sep = " ";
  }
  if (e->str[PRETTY_SLOT_LOGGER] != NULL &&
      !hidden(st, e, PRETTY_SLOT_LOGGER)) {
    fputs(sep, st->out);
    write_colored(st, SGR_LOGGER, e->str[PRETTY_SLOT_LOGGER],
                  e->len[PRETTY_SLOT_LOGGER]);
    sep = "  ";
  }
  if (e->str[PRETTY_SLOT_MESSAGE] != NULL &&
      !hidden(st, e, PRETTY_SLOT_MESSAGE)) {
    fputs(sep, st->out);
    pretty_text_write(st->out, e->str[PRETTY_SLOT_MESSAGE],
                      e->len[PRETTY_SLOT_MESSAGE], 0);
    sep = "  ";
  }
  return sep;
}

/* Writes the fields: every key without a place of its own, in the order of
   the line, as --fields and --hide allow. */
static const char *write_fields(const pretty_state *st, const pretty_event *e,
                                const char *sep) {
  const char *key;
  json_t *v;
  json_object_foreach(e->obj, key, v) {
    if (pretty_event_owns(e, key) || pretty_list_has(&st->opt.hide, key) ||
        (st->opt.fields.len > 0 && !pretty_list_has(&st->opt.fields, key)))
      continue;
    fputs(sep, st->out);
    write_key(st, key, strlen(key));
    write_value(st->out, v);
    sep = " ";
  }
  return sep;
}

/* Writes the ids (request_id and trace_id shortened, span_id only with
   --full), then the mark of a line trail cut. */
static void write_ids(const pretty_state *st, const pretty_event *e,
                      const char *sep) {
  static const struct {
    int slot;
    const char *label;
    bool shortened, full_only;
  } ids[] = {{PRETTY_SLOT_REQUEST, "rid", true, false},
             {PRETTY_SLOT_TRACE, "trace", true, false},
             {PRETTY_SLOT_SPAN, "span", true, true},
             {PRETTY_SLOT_USER, "user", false, false}};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    int slot = ids[i].slot;
    if (e->str[slot] == NULL || hidden(st, e, slot) ||
        (ids[i].full_only && !st->opt.full))
      continue;
    fputs(sep, st->out);
    if (ids[i].shortened) {
      write_id(st, ids[i].label, e->str[slot], e->len[slot]);
    } else {
      write_key(st, ids[i].label, strlen(ids[i].label));
      write_str(st->out, e->str[slot], e->len[slot]);
    }
    sep = " ";
  }
  if (e->truncated) {
    fputs(sep, st->out);
    write_colored(st, SGR_MARKER, "[truncated]", 11);
  }
}

/*
 * Writes one event: the head, then the fields in the order of the line,
 * then the ids, then the mark of a cut line. A key that does not hold what
 * its part needs (a number for "message", say) is shown as an ordinary
 * field rather than lost.
 */
static void write_event(pretty_state *st, const pretty_event *e) {
  const char *sep = write_head(st, e);
  sep = write_fields(st, e, sep);
  write_ids(st, e, sep);
  putc('\n', st->out);
}

/*
 * Reads one line of input, n bytes without its line ending, into r. `cut`
 * says that the reader kept only the first PRETTY_MAX_LINE bytes of a longer
 * line: such a line is not read as JSON (its end is missing). The filters
 * are applied here, and the service of an event that passes them is noted,
 * so that an input read ahead (pretty_merge.c) shows the service from its
 * first line when two inputs hold two services.
 */
void pretty_record_read(pretty_state *st, pretty_record *r, const char *line,
                        size_t n, bool cut) {
  r->line = line;
  r->n = n;
  r->cut = cut;
  r->ev = cut ? NULL : parse(st, line, n);
  r->pass = true;
  if (r->ev == NULL)
    return;
  pretty_event_read(&r->e, r->ev);
  r->pass = pretty_filter_pass(&st->opt, &r->e);
  if (r->pass)
    note_service(st, &r->e);
}

/* Writes a record read by pretty_record_read(): an event unless the filters
   leave it out, a line that is not an event always, marked when cut. */
void pretty_record_write(pretty_state *st, const pretty_record *r) {
  if (r->ev != NULL) {
    if (r->pass)
      write_event(st, &r->e);
    return;
  }
  pretty_text_write(st->out, r->line, r->n, PRETTY_TEXT_KEEP_TAB);
  if (r->cut) {
    char mark[64];
    int len = snprintf(mark, sizeof mark, "[line cut at %zu bytes]",
                       (size_t)PRETTY_MAX_LINE);
    putc(' ', st->out);
    write_colored(st, SGR_MARKER, mark, (size_t)len);
  }
  putc('\n', st->out);
}

/* Frees what pretty_record_read() allocated. */
void pretty_record_free(pretty_record *r) {
  json_decref(r->ev);
  r->ev = NULL;
}

/* Reads, writes and frees one line. */
void pretty_line(pretty_state *st, const char *line, size_t n, bool cut) {
  pretty_record r;
  pretty_record_read(st, &r, line, n, cut);
  pretty_record_write(st, &r);
  pretty_record_free(&r);
}
