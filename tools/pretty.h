/*
 * trail-pretty's parts, one concern to a file:
 *
 *   pretty_text.c     makes any bytes safe to show on a terminal
 *   pretty_time.c     reads and writes times (RFC 3339, epoch numbers)
 *   pretty_foreign.c  finds the time, level, message... of a JSON line,
 *                     trail's own or another logger's (pino, zap, ...)
 *   pretty_filter.c   decides whether an event is shown
 *   pretty_line.c     turns one input line into one output line
 *   pretty_input.c    cuts an input into lines, read as they are needed
 *   pretty_merge.c    interleaves several inputs in time order
 *   trail-pretty.c    reads the command line and runs the rest
 */
#ifndef TRAIL_PRETTY_H
#define TRAIL_PRETTY_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

/* ---- pretty_text.c: terminal-safe text ---------------------------------- */

/* How pretty_text_write() shows what it must escape. */
enum {
  /* Write a tab as itself rather than as \t. */
  PRETTY_TEXT_KEEP_TAB = 1,
  /* Also escape '"' and '\' as \" and \\: the text is inside quotes. */
  PRETTY_TEXT_QUOTED = 2,
  /* JSON string escapes only (\u001b, not \x1b): the result stays valid
     JSON. Implies PRETTY_TEXT_QUOTED. */
  PRETTY_TEXT_JSON = 4
};

size_t pretty_utf8_decode(const unsigned char *s, size_t n, int32_t *cp);
bool pretty_utf8_valid(const char *s, size_t n);
size_t pretty_utf8_fix(const char *s, size_t n, char *dst);
void pretty_text_write(FILE *out, const char *s, size_t n, unsigned flags);
bool pretty_text_bare(const char *s, size_t n);

/* ---- pretty_time.c: times ------------------------------------------------ */

/* The room pretty_time_format() needs for each of its texts. */
#define PRETTY_TIME_TEXT 48

/* A moment: seconds since 1970-01-01T00:00:00Z and nanoseconds in the
   second. Only years 0000 to 9999 are represented. */
typedef struct pretty_time {
  int64_t sec;
  int32_t nsec;
} pretty_time;

bool pretty_time_parse(const char *s, size_t n, pretty_time *t);
bool pretty_time_number(json_t *v, pretty_time *t);
bool pretty_time_arg(const char *s, pretty_time now, pretty_time *t);
int pretty_time_cmp(pretty_time a, pretty_time b);
void pretty_time_format(pretty_time t, bool local, char date[PRETTY_TIME_TEXT],
                        char time[PRETTY_TIME_TEXT]);

/* ---- pretty_foreign.c: what a JSON line says ----------------------------- */

/* The levels of the line contract, in order; PRETTY_LEVEL_NONE is "no
   threshold" or "not a level". */
enum {
  PRETTY_LEVEL_NONE = -1,
  PRETTY_LEVEL_TRACE,
  PRETTY_LEVEL_DEBUG,
  PRETTY_LEVEL_INFO,
  PRETTY_LEVEL_WARN,
  PRETTY_LEVEL_ERROR,
  PRETTY_LEVEL_FATAL
};

/* The parts of an event that have a place of their own on the output line,
   named by trail's keys. */
enum {
  PRETTY_SLOT_TIME,
  PRETTY_SLOT_LEVEL,
  PRETTY_SLOT_LOGGER,
  PRETTY_SLOT_MESSAGE,
  PRETTY_SLOT_SERVICE,
  PRETTY_SLOT_REQUEST,
  PRETTY_SLOT_USER,
  PRETTY_SLOT_TRACE,
  PRETTY_SLOT_SPAN,
  PRETTY_SLOT_COUNT
};

/* One event: the JSON object of a line, and where its parts are. */
typedef struct pretty_event {
  json_t *obj;
  const char *key[PRETTY_SLOT_COUNT]; /* the key each part came from */
  json_t *val[PRETTY_SLOT_COUNT];     /* its value; NULL when absent */
  const char *str[PRETTY_SLOT_COUNT]; /* the value, when a string */
  size_t len[PRETTY_SLOT_COUNT];
  bool has_time; /* time holds the time of the event */
  pretty_time time;
  int level;           /* PRETTY_LEVEL_NONE when not one of the six */
  bool numeric_level;  /* the level was a number (pino, bunyan) */
  bool truncated;      /* "truncated":true */
  const char *dropped; /* a key not shown at all (bunyan's "v"), or NULL */
} pretty_event;

extern const char *const pretty_slot_names[PRETTY_SLOT_COUNT];

int pretty_level_parse(const char *s, size_t n);
void pretty_event_read(pretty_event *e, json_t *obj);
bool pretty_event_owns(const pretty_event *e, const char *key);

/* ---- pretty_filter.c: which events are shown ----------------------------- */

/* A list of values given on the command line; each is owned. */
typedef struct pretty_list {
  char **items;
  size_t len, cap;
} pretty_list;

/* One --where: KEY=VALUE or KEY~REGEX. */
typedef struct pretty_where {
  char *key;
  char *value;
  bool is_regex;
  regex_t re;
} pretty_where;

/* When the service is shown. */
enum { PRETTY_SERVICE_AUTO, PRETTY_SERVICE_ALWAYS, PRETTY_SERVICE_NEVER };

/* What the command line chose. Zeroed, it prints everything, plainly. */
typedef struct pretty_options {
  bool color;          /* SGR colour sequences in the output */
  bool date;           /* the date on every event, not only when it changes */
  bool full;           /* whole ids and span_id */
  bool local;          /* times in the local time zone, not UTC */
  int service;         /* PRETTY_SERVICE_* */
  int min_level;       /* PRETTY_LEVEL_NONE, or the lowest level shown */
  pretty_list request; /* request_id prefixes */
  pretty_list trace;   /* trace_id prefixes */
  pretty_list logger;  /* logger names, each also a dotted prefix */
  pretty_list fields;  /* the only fields shown, when not empty */
  pretty_list hide;    /* keys never shown */
  pretty_where *where;
  size_t where_len;
  bool has_since, has_until;
  pretty_time since, until;
} pretty_options;

bool pretty_list_add(pretty_list *list, const char *value, size_t n);
bool pretty_list_has(const pretty_list *list, const char *s);
void pretty_list_free(pretty_list *list);
int pretty_where_add(pretty_options *opt, const char *arg, char *err,
                     size_t err_len);
void pretty_options_free(pretty_options *opt);
bool pretty_filter_pass(const pretty_options *opt, const pretty_event *e);
char *pretty_value_text(json_t *v, size_t *len);

/* ---- pretty_line.c: one line ------------------------------------------- */

/* The state kept from one line to the next. */
typedef struct pretty_state {
  pretty_options opt;
  FILE *out;
  char last_date[PRETTY_TIME_TEXT]; /* "YYYY-MM-DD" of the last event shown, or
                                       "" */
  char *first_service; /* the service of the first event shown with one */
  size_t first_service_len;
  bool mixed;    /* an event of another service has been shown */
  char *scratch; /* the line being parsed, repaired */
  size_t scratch_cap;
} pretty_state;

/* One line of input, read: an event, or text when ev is NULL. The text
   stays where the reader keeps it until the record is written. */
typedef struct pretty_record {
  const char *line;
  size_t n;
  bool cut; /* only the first PRETTY_MAX_LINE bytes of a longer line */
  json_t *ev;
  pretty_event e;
  bool pass; /* shown: not an event, or an event the filters let through */
} pretty_record;

void pretty_record_read(pretty_state *st, pretty_record *r, const char *line,
                        size_t n, bool cut);
void pretty_record_write(pretty_state *st, const pretty_record *r);
void pretty_record_free(pretty_record *r);
void pretty_line(pretty_state *st, const char *line, size_t n, bool cut);
void pretty_write_json(FILE *out, json_t *v);
void pretty_state_free(pretty_state *st);

/* The longest line read whole; the rest of a longer one is dropped. It is
   the largest maximum line length trail can be configured to. */
#define PRETTY_MAX_LINE ((size_t)16 * 1024 * 1024)

/* ---- pretty_input.c: lines, as they are needed ------------------------- */

/* One input: a file named on the command line, or standard input. */
typedef struct pretty_input {
  const char *name; /* as given; "-" for standard input */
  int fd;           /* -1 once closed */
  dev_t dev;        /* identity of the open file, for -f */
  ino_t ino;
  off_t pos; /* bytes read from the open file */
  char *buf; /* buf[start, len) is read and not yet handed out */
  size_t start, len, cap;
  size_t scanned; /* buf[start, scanned) holds no '\n' */
  bool skipping;  /* dropping the rest of a line longer than the maximum */
  bool eof;       /* the end was reached and the last line handed out */
} pretty_input;

/* A line handed out: valid until the next call on the same input. */
typedef struct pretty_chunk {
  const char *s;
  size_t n;
  bool cut;
} pretty_chunk;

int pretty_input_next(pretty_input *in, FILE *out, bool final,
                      pretty_chunk *line);
bool pretty_input_rest(pretty_input *in, pretty_chunk *line);
bool pretty_input_open(pretty_input *in, bool report);
void pretty_input_close(pretty_input *in);

/* ---- pretty_merge.c: several inputs in time order ----------------------- */

int pretty_merge(pretty_state *st, pretty_input *inputs, size_t n, bool final);

#endif
