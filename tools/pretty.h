/*
 * trail-pretty's parts: pretty_text.c makes any bytes safe to show on a
 * terminal, pretty_line.c turns one input line into one output line, and
 * trail-pretty.c reads the input and the command line.
 */
#ifndef TRAIL_PRETTY_H
#define TRAIL_PRETTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* ---- pretty_line.c: one line ------------------------------------------ */

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

/* A filter given several times matches when any of its values matches. */
typedef struct pretty_list {
  const char **items;
  size_t len;
} pretty_list;

/* What the command line chose. Zeroed, it prints everything, plainly. */
typedef struct pretty_options {
  bool color;          /* SGR colour sequences in the output */
  bool date;           /* the date on every event, not only when it changes */
  bool full;           /* whole ids, span_id and service */
  int min_level;       /* PRETTY_LEVEL_NONE, or the lowest level shown */
  pretty_list request; /* request_id prefixes */
  pretty_list trace;   /* trace_id prefixes */
  pretty_list logger;  /* logger names, each also a dotted prefix */
} pretty_options;

/* The state kept from one line to the next. */
typedef struct pretty_state {
  pretty_options opt;
  FILE *out;
  char last_date[11]; /* "YYYY-MM-DD" of the last event shown, or "" */
  char *scratch;      /* the line being parsed, repaired */
  size_t scratch_cap;
} pretty_state;

int pretty_level_parse(const char *s, size_t n);
void pretty_line(pretty_state *st, const char *line, size_t len, bool cut);
void pretty_state_free(pretty_state *st);

/* The longest line read whole; the rest of a longer one is dropped. It is
   the largest maximum line length trail can be configured to. */
#define PRETTY_MAX_LINE ((size_t)16 * 1024 * 1024)

#endif
