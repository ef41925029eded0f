/*
 * trail-pretty: trail's JSON lines, and other JSON loggers', for people.
 *
 *   ./service | trail-pretty
 *   trail-pretty --level warn app.log
 *   trail-pretty gateway.log orders.log        # merged in time order
 *   trail-pretty -f /var/log/orders/app.log --request-id 3f2b8c1e
 *
 * This file reads the command line and runs the inputs: merged in time
 * order (pretty_merge.c), then, with -f, followed as they grow.
 */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pretty.h"

#ifndef TRAIL_PRETTY_VERSION
#define TRAIL_PRETTY_VERSION "unknown"
#endif

#define PROG "trail-pretty"
#define FOLLOW_POLL_NS 200000000L /* -f looks for new data 5 times a second */

static const char usage_text[] =
    "usage: " PROG " [OPTION]... [FILE]...\n"
    "Show JSON log lines (from FILEs, merged in time order, or standard\n"
    "input) for people: trail's, and those of pino, bunyan, zap, zerolog,\n"
    "logrus and slog.\n"
    "\n"
    "  -f, --follow          after the end of each FILE, wait for more lines\n"
    "                        (and follow the name across log rotation)\n"
    "      --level LEVEL     only events at LEVEL or above: trace, debug,\n"
    "                        info, warn, error, fatal\n"
    "      --request-id ID   only events whose request_id starts with ID\n"
    "      --trace-id ID     only events whose trace_id starts with ID\n"
    "      --logger NAME     only events of logger NAME or NAME.*\n"
    "      --where KEY=VALUE only events whose KEY is VALUE\n"
    "      --where KEY~REGEX only events whose KEY matches the extended\n"
    "                        regular expression REGEX\n"
    "      --since TIME      only events at TIME or later\n"
    "      --until TIME      only events at TIME or earlier; TIME is RFC\n"
    "                        3339 (2026-11-27T06:22:38Z) or a time ago:\n"
    "                        90s, 10m, 2h, 7d\n"
    "      --fields KEY,...  show only these fields\n"
    "      --hide KEY,...    never show these keys\n"
    "      --service[=WHEN]  show the service: auto (the default: once\n"
    "                        events of two services have been read),\n"
    "                        always or never; alone means always\n"
    "      --local           times in the local time zone (TZ), not UTC\n"
    "      --color[=WHEN]    colour: auto (the default), always or never;\n"
    "                        --color alone means always\n"
    "      --date            the date on every line, not only when it "
    "changes\n"
    "      --full            whole ids, the span_id, and the service always\n"
    "  -h, --help            show this help and exit\n"
    "  -V, --version         show the version and exit\n"
    "\n"
    "A filter given twice takes either value; different filters, and every\n"
    "--where, must all match. Lines that are not JSON objects are shown as\n"
    "they are (control characters escaped), whatever the filters. With\n"
    "--color=auto, colour is used when standard output is a terminal,\n"
    "NO_COLOR is unset or empty and TERM is not \"dumb\".\n"
    "\n"
    "Exit status: 0 on success, 1 when an input could not be read or the\n"
    "output could not be written, 2 on a usage error.\n";

/* Prints the usage error `what` (with its argument, if any) and the usual
   pointer to --help on standard error, and exits with status 2. */
_Noreturn static void usage_error(const char *what, const char *arg) {
  if (arg != NULL)
    fprintf(stderr, PROG ": %s '%s'\n", what, arg);
  else
    fprintf(stderr, PROG ": %s\n", what);
  fputs("usage: " PROG " [OPTION]... [FILE]...\n"
        "Try '" PROG " --help' for more information.\n",
        stderr);
  exit(2);
}

/* Reports that memory ran out, and exits with status 1. */
_Noreturn static void out_of_memory(void) {
  fputs(PROG ": out of memory\n", stderr);
  exit(1);
}

/* Whether the variable NO_COLOR asks for no colour: set and not empty, as
   https://no-color.org says. */
static bool no_color_env(void) {
  const char *v = getenv("NO_COLOR");
  return v != NULL && v[0] != '\0';
}

/* ---- -f ------------------------------------------------------------------ */

/* Writes every line of `in` up to the end of what is there now (with its
   last line, when `final`). Returns the bytes read, or -1 on a read error,
   which closes the input. */
static long long drain(pretty_state *st, pretty_input *in, bool final) {
  off_t before = in->pos;
  pretty_chunk line;
  int rc;
  while ((rc = pretty_input_next(in, st->out, final, &line)) > 0)
    pretty_line(st, line.s, line.n, line.cut);
  if (rc < 0) {
    pretty_input_close(in);
    return -1;
  }
  return (long long)(in->pos - before);
}

/*
 * Notices that the file was truncated in place (copytruncate rotation), and
 * starts again from its beginning, or that its name now belongs to another
 * file (rename-and-create rotation, as with trail_reopen()), and moves to
 * that file after reading the old one to its end. A name that is gone for
 * now keeps the old file open: its writer may still be writing there.
 */
static void check_rotation(pretty_state *st, pretty_input *in) {
  struct stat now;
  pretty_chunk line;
  if (stat(in->name, &now) != 0)
    return;
  if (now.st_dev != in->dev || now.st_ino != in->ino) {
    pretty_input old = *in;
    if (!pretty_input_open(in, false)) {
      *in = old;
      return;
    }
    /* The old file, read to its end, with a last line that will never be
       finished written as it is. */
    int new_fd = in->fd;
    in->fd = old.fd;
    if (drain(st, in, true) < 0) {
      close(new_fd);
      return;
    }
    close(old.fd);
    in->fd = new_fd;
    in->pos = 0;
    in->eof = false;
  } else if (now.st_size < in->pos) {
    if (pretty_input_rest(in, &line))
      pretty_line(st, line.s, line.n, line.cut);
    if (lseek(in->fd, 0, SEEK_SET) == 0)
      in->pos = 0;
  }
}

/* Sleeps for one -f polling interval. */
static void follow_wait(void) {
  struct timespec ts = {0, FOLLOW_POLL_NS};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Shows what each file holds, merged in time order, then waits for more,
   forever (-f): new lines are shown as they arrive. Returns only when no
   file is left to follow. */
static int run_follow(pretty_state *st, pretty_input *inputs, size_t n) {
  int status = pretty_merge(st, inputs, n, false);
  for (;;) {
    long long got = 0;
    size_t open_inputs = 0;
    for (size_t i = 0; i < n; i++) {
      pretty_input *in = &inputs[i];
      if (in->fd < 0)
        continue;
      long long r = drain(st, in, false);
      if (r < 0) {
        status = 1;
        continue;
      }
      got += r;
      open_inputs++;
      check_rotation(st, in);
    }
    if (open_inputs == 0)
      return status;
    if (got == 0) {
      if (fflush(st->out) != 0 || ferror(st->out))
        return 1;
      follow_wait();
    }
  }
}

/* ---- the command line ---------------------------------------------------- */

enum {
  OPT_LEVEL = 256,
  OPT_REQUEST,
  OPT_TRACE,
  OPT_LOGGER,
  OPT_WHERE,
  OPT_SINCE,
  OPT_UNTIL,
  OPT_FIELDS,
  OPT_HIDE,
  OPT_SERVICE,
  OPT_LOCAL,
  OPT_COLOR,
  OPT_DATE,
  OPT_FULL
};

/* Adds a filter value, refusing an empty one. */
static void list_add(pretty_list *list, const char *opt, const char *value) {
  if (value[0] == '\0') {
    char what[64];
    snprintf(what, sizeof what, "%s needs a value that is not empty", opt);
    usage_error(what, NULL);
  }
  if (!pretty_list_add(list, value, strlen(value)))
    out_of_memory();
}

/* Adds each key of a comma-separated list, refusing an empty one. */
static void keys_add(pretty_list *list, const char *opt, const char *value) {
  const char *p = value;
  for (;;) {
    size_t n = strcspn(p, ",");
    if (n == 0) {
      char what[64];
      snprintf(what, sizeof what, "%s: an empty key in", opt);
      usage_error(what, value);
    }
    if (!pretty_list_add(list, p, n))
      out_of_memory();
    if (p[n] == '\0')
      return;
    p += n + 1;
  }
}

/* Reads the TIME of --since or --until. */
static pretty_time time_arg(const char *opt, const char *value) {
  struct timespec ts;
  pretty_time now = {0, 0}, t;
  if (clock_gettime(CLOCK_REALTIME, &ts) == 0) {
    now.sec = ts.tv_sec;
    now.nsec = (int32_t)ts.tv_nsec;
  }
  if (!pretty_time_arg(value, now, &t)) {
    char what[128];
    snprintf(what, sizeof what,
             "%s: not an RFC 3339 time or a count of s, m, h or d:", opt);
    usage_error(what, value);
  }
  return t;
}

/* Reads WHEN of --color or --service: auto, always, never, or nothing (for
   always). */
static int when_arg(const char *opt, const char *value) {
  if (value == NULL || strcmp(value, "always") == 0)
    return PRETTY_SERVICE_ALWAYS;
  if (strcmp(value, "never") == 0)
    return PRETTY_SERVICE_NEVER;
  if (strcmp(value, "auto") == 0)
    return PRETTY_SERVICE_AUTO;
  char what[64];
  snprintf(what, sizeof what, "%s: not one of auto, always, never:", opt);
  usage_error(what, value);
}

/* Handles one option of the filters; false when c is not one of them. */
static bool filter_option(int c, pretty_options *opt) {
  char err[320];
  switch (c) {
  case OPT_LEVEL:
    opt->min_level = pretty_level_parse(optarg, strlen(optarg));
    if (opt->min_level == PRETTY_LEVEL_NONE)
      usage_error("--level: not one of trace, debug, info, warn, error, "
                  "fatal:",
                  optarg);
    return true;
  case OPT_REQUEST:
    list_add(&opt->request, "--request-id", optarg);
    return true;
  case OPT_TRACE:
    list_add(&opt->trace, "--trace-id", optarg);
    return true;
  case OPT_LOGGER:
    list_add(&opt->logger, "--logger", optarg);
    return true;
  case OPT_WHERE:
    if (pretty_where_add(opt, optarg, err, sizeof err) != 0)
      usage_error(err, optarg);
    return true;
  case OPT_SINCE:
    opt->since = time_arg("--since", optarg);
    opt->has_since = true;
    return true;
  case OPT_UNTIL:
    opt->until = time_arg("--until", optarg);
    opt->has_until = true;
    return true;
  default:
    return false;
  }
}

/* Handles one option of the display; false when c is not one of them. */
static bool display_option(int c, pretty_options *opt, int *color,
                           int *service) {
  switch (c) {
  case OPT_FIELDS:
    keys_add(&opt->fields, "--fields", optarg);
    return true;
  case OPT_HIDE:
    keys_add(&opt->hide, "--hide", optarg);
    return true;
  case OPT_SERVICE:
    *service = when_arg("--service", optarg);
    return true;
  case OPT_LOCAL:
    opt->local = true;
    return true;
  case OPT_COLOR:
    *color = when_arg("--color", optarg);
    return true;
  case OPT_DATE:
    opt->date = true;
    return true;
  case OPT_FULL:
    opt->full = true;
    return true;
  default:
    return false;
  }
}

/* Handles what getopt_long() reports that is not an option of ours. */
_Noreturn static void other_option(int c, char **argv) {
  if (c == 'h') {
    fputs(usage_text, stdout);
    exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1);
  }
  if (c == 'V') {
    puts(PROG " " TRAIL_PRETTY_VERSION);
    exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1);
  }
  if (c == ':')
    usage_error("option needs a value:", argv[optind - 1]);
  /* A long option given a value it does not take ("--date=x") comes back
     with its own code in optopt, which need not be a character. */
  if (optopt != 0 && strncmp(argv[optind - 1], "--", 2) == 0)
    usage_error("option takes no value:", argv[optind - 1]);
  if (optopt != 0) {
    char opt[3] = {'-', (char)optopt, '\0'};
    usage_error("unknown option", opt);
  }
  usage_error("unknown option", argv[optind - 1]);
}

/*
 * Colour is decided here: --color=always or never wins; with auto (the
 * default) colour needs a terminal on standard output, NO_COLOR unset or
 * empty, and TERM other than "dumb". A command-line flag beats NO_COLOR
 * because the person typing it is the more specific voice, the order the
 * NO_COLOR convention itself gives.
 */
static bool decide_color(int color) {
  if (color != PRETTY_SERVICE_AUTO)
    return color == PRETTY_SERVICE_ALWAYS;
  const char *term = getenv("TERM");
  return isatty(STDOUT_FILENO) && !no_color_env() &&
         !(term != NULL && strcmp(term, "dumb") == 0);
}

/* Reads the options into st->opt and returns the index of the first FILE. */
static int parse_options(int argc, char **argv, pretty_state *st,
                         bool *follow) {
  static const struct option longopts[] = {
      {"follow", no_argument, NULL, 'f'},
      {"level", required_argument, NULL, OPT_LEVEL},
      {"request-id", required_argument, NULL, OPT_REQUEST},
      {"trace-id", required_argument, NULL, OPT_TRACE},
      {"logger", required_argument, NULL, OPT_LOGGER},
      {"where", required_argument, NULL, OPT_WHERE},
      {"since", required_argument, NULL, OPT_SINCE},
      {"until", required_argument, NULL, OPT_UNTIL},
      {"fields", required_argument, NULL, OPT_FIELDS},
      {"hide", required_argument, NULL, OPT_HIDE},
      {"service", optional_argument, NULL, OPT_SERVICE},
      {"local", no_argument, NULL, OPT_LOCAL},
      {"color", optional_argument, NULL, OPT_COLOR},
      {"colour", optional_argument, NULL, OPT_COLOR},
      {"date", no_argument, NULL, OPT_DATE},
      {"full", no_argument, NULL, OPT_FULL},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  int color = PRETTY_SERVICE_AUTO, service = -1, c;

  st->opt.min_level = PRETTY_LEVEL_NONE;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":fhV", longopts, NULL)) != -1) {
    if (c == 'f')
      *follow = true;
    else if (!filter_option(c, &st->opt) &&
             !display_option(c, &st->opt, &color, &service))
      other_option(c, argv);
  }
  st->opt.color = decide_color(color);
  /* --full shows the service always, unless --service says otherwise. */
  if (service < 0)
    service = st->opt.full ? PRETTY_SERVICE_ALWAYS : PRETTY_SERVICE_AUTO;
  st->opt.service = service;
  return optind;
}

/* ---- main ---------------------------------------------------------------- */

/* Opens every input, reporting those that cannot be. Returns 0, or 1 when
   one could not be opened. */
static int open_inputs(pretty_input *inputs, size_t n) {
  int status = 0;
  for (size_t i = 0; i < n; i++) {
    if (!pretty_input_open(&inputs[i], true))
      status = 1;
  }
  return status;
}

/* The inputs the FILE arguments name (standard input when there is none),
   checked against -f, which cannot follow standard input. */
static pretty_input *make_inputs(int argc, char **argv, int first, bool follow,
                                 size_t *count) {
  size_t n = first < argc ? (size_t)(argc - first) : 0;
  if (follow && n == 0)
    usage_error("-f needs a FILE to follow", NULL);
  static char dash[] = "-";
  char **names = n > 0 ? argv + first : (char *[]){dash};
  if (n == 0)
    n = 1;
  for (size_t i = 0; follow && i < n; i++) {
    if (strcmp(names[i], "-") == 0)
      usage_error("-f cannot follow standard input", NULL);
  }
  pretty_input *inputs = calloc(n, sizeof *inputs);
  if (inputs == NULL)
    out_of_memory();
  for (size_t i = 0; i < n; i++) {
    inputs[i].name = names[i];
    inputs[i].fd = -1;
  }
  *count = n;
  return inputs;
}

int main(int argc, char **argv) {
  static char outbuf[64 * 1024];
  pretty_state st = {0};
  bool follow = false;
  size_t n;

  st.out = stdout;
  /* A --where REGEX matches characters, not bytes: "." takes one "é". The
     C.UTF-8 locale changes nothing else here (and nothing where it is
     missing: the regular expressions then work on bytes). */
  (void)setlocale(LC_CTYPE, "C.UTF-8");
  int first = parse_options(argc, argv, &st, &follow);
  if (st.opt.local)
    tzset();
  pretty_input *inputs = make_inputs(argc, argv, first, follow, &n);

  /* Fully buffered even on a terminal: pretty_input_next() flushes before
     each read, which is the moment a line must be visible. */
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  int status = open_inputs(inputs, n);
  int run =
      follow ? run_follow(&st, inputs, n) : pretty_merge(&st, inputs, n, true);
  if (run != 0)
    status = run;

  for (size_t i = 0; i < n; i++)
    pretty_input_close(&inputs[i]);
  free(inputs);
  pretty_state_free(&st);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, PROG ": standard output: %s\n", strerror(errno));
    status = 1;
  }
  return status;
}
