/*
 * trail-pretty: trail's JSON lines, for people.
 *
 *   ./service | trail-pretty
 *   trail-pretty --level warn app.log
 *   trail-pretty -f /var/log/orders/app.log --request-id 3f2b8c1e
 *
 * This file reads the command line and the input, and cuts the input into
 * lines; pretty_line.c writes each line. The input is read with read(2)
 * into a buffer of our own rather than with stdio, so that a follower can
 * keep a half-written last line until its end arrives, and so that the
 * output is flushed exactly when the program is about to wait for input:
 * a line shows as soon as it is written, however the output is buffered.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#define READ_CHUNK ((size_t)64 * 1024)
#define FOLLOW_POLL_NS 200000000L /* -f looks for new data 5 times a second */

/* One input: a file named on the command line, or standard input. */
typedef struct input {
  const char *name; /* as given; "-" for standard input */
  int fd;           /* -1 once closed */
  dev_t dev;        /* identity of the open file, for -f */
  ino_t ino;
  off_t pos; /* bytes read from the open file */
  char *buf; /* bytes read and not yet written as lines */
  size_t len, cap;
  size_t scanned; /* buf[0, scanned) holds no '\n' */
  bool skipping;  /* dropping the rest of a line longer than the maximum */
} input;

static const char usage_text[] =
    "usage: " PROG " [OPTION]... [FILE]...\n"
    "Show trail's JSON log lines (from FILEs, or standard input) for people.\n"
    "\n"
    "  -f, --follow          after the end of each FILE, wait for more lines\n"
    "                        (and follow the name across log rotation)\n"
    "      --level LEVEL     only events at LEVEL or above: trace, debug,\n"
    "                        info, warn, error, fatal\n"
    "      --request-id ID   only events whose request_id starts with ID\n"
    "      --trace-id ID     only events whose trace_id starts with ID\n"
    "      --logger NAME     only events of logger NAME or NAME.*\n"
    "      --color[=WHEN]    colour: auto (the default), always or never;\n"
    "                        --color alone means always\n"
    "      --date            the date on every line, not only when it "
    "changes\n"
    "      --full            whole ids, and the span_id and service keys\n"
    "  -h, --help            show this help and exit\n"
    "  -V, --version         show the version and exit\n"
    "\n"
    "A filter given twice takes either value; different filters must all\n"
    "match. Lines that are not JSON objects are shown as they are (control\n"
    "characters escaped), whatever the filters. With --color=auto, colour is\n"
    "used when standard output is a terminal, NO_COLOR is unset or empty and\n"
    "TERM is not \"dumb\".\n"
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

/* Whether the variable NO_COLOR asks for no colour: set and not empty, as
   https://no-color.org says. */
static bool no_color_env(void) {
  const char *v = getenv("NO_COLOR");
  return v != NULL && v[0] != '\0';
}

/* ---- reading lines ------------------------------------------------------ */

/* Makes room for at least READ_CHUNK more bytes in in->buf. */
static bool input_reserve(input *in) {
  if (in->cap - in->len >= READ_CHUNK)
    return true;
  size_t cap = in->cap ? in->cap : READ_CHUNK;
  while (cap - in->len < READ_CHUNK)
    cap *= 2;
  char *p = realloc(in->buf, cap);
  if (p == NULL)
    return false;
  in->buf = p;
  in->cap = cap;
  return true;
}

/*
 * Hands one line to pretty_line(): n bytes at s, without the '\n' that
 * `ended` it, if any. A CR just before that '\n' belongs to the line ending
 * ("\r\n"), not to the line. A line longer than PRETTY_MAX_LINE is cut.
 */
static void emit(pretty_state *st, const char *s, size_t n, bool ended) {
  if (ended && n > 0 && s[n - 1] == '\r')
    n--;
  if (n > PRETTY_MAX_LINE)
    pretty_line(st, s, PRETTY_MAX_LINE, true);
  else
    pretty_line(st, s, n, false);
}

/*
 * Writes every complete line in in->buf and keeps the incomplete rest. A
 * line that grows beyond PRETTY_MAX_LINE without ending is written cut, and
 * the rest of it is dropped as it arrives, so that memory stays bounded
 * whatever the input.
 */
static void input_lines(pretty_state *st, input *in) {
  size_t start = 0;
  for (;;) {
    char *nl = memchr(in->buf + in->scanned, '\n', in->len - in->scanned);
    if (nl == NULL)
      break;
    size_t end = (size_t)(nl - in->buf);
    if (in->skipping)
      in->skipping = false;
    else
      emit(st, in->buf + start, end - start, true);
    start = end + 1;
    in->scanned = start;
  }
  memmove(in->buf, in->buf + start, in->len - start);
  in->len -= start;
  in->scanned = in->len;
  /* One byte more than the maximum may be the CR of a "\r\n" to come. */
  if (in->skipping) {
    in->len = in->scanned = 0;
  } else if (in->len > PRETTY_MAX_LINE + 1) {
    emit(st, in->buf, in->len, false);
    in->skipping = true;
    in->len = in->scanned = 0;
  }
}

/* Writes what is left in the buffer as a last line: the input ended, or the
   file it came from was replaced, without a final '\n'. */
static void input_rest(pretty_state *st, input *in) {
  if (in->len > 0 && !in->skipping)
    emit(st, in->buf, in->len, false);
  in->len = in->scanned = 0;
  in->skipping = false;
}

/*
 * Reads from `in` until the end of what is there now, writing each complete
 * line as it comes. The output is flushed before each read(), which is where
 * the program may wait. Returns the number of bytes read, or -1 after
 * reporting a read error.
 */
static long long input_read(pretty_state *st, input *in) {
  long long total = 0;
  for (;;) {
    if (!input_reserve(in)) {
      fprintf(stderr, PROG ": %s: out of memory\n", in->name);
      return -1;
    }
    fflush(st->out);
    ssize_t r = read(in->fd, in->buf + in->len, in->cap - in->len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      fprintf(stderr, PROG ": %s: %s\n", in->name, strerror(errno));
      return -1;
    }
    if (r == 0)
      return total;
    in->len += (size_t)r;
    in->pos += r;
    total += r;
    input_lines(st, in);
  }
}

/* Opens in->name and records which file it is. False, after reporting it
   when `report`, when it cannot be opened. */
static bool input_open(input *in, bool report) {
  struct stat sb;
  int fd = open(in->name, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &sb) != 0) {
    if (report)
      fprintf(stderr, PROG ": %s: %s\n", in->name, strerror(errno));
    if (fd >= 0)
      close(fd);
    return false;
  }
  if (S_ISDIR(sb.st_mode)) {
    if (report)
      fprintf(stderr, PROG ": %s: %s\n", in->name, strerror(EISDIR));
    close(fd);
    return false;
  }
  in->fd = fd;
  in->dev = sb.st_dev;
  in->ino = sb.st_ino;
  in->pos = 0;
  return true;
}

/* Closes the input's file (never standard input) and frees its buffer. */
static void input_close(input *in) {
  if (in->fd > STDIN_FILENO)
    close(in->fd);
  in->fd = -1;
  free(in->buf);
  in->buf = NULL;
  in->len = in->cap = in->scanned = 0;
}

/*
 * For -f: notices that the file was truncated in place (copytruncate
 * rotation), and starts again from its beginning, or that its name now
 * belongs to another file (rename-and-create rotation, as with
 * trail_reopen()), and moves to that file after reading the old one to its
 * end. A name that is gone for now keeps the old file open: its writer may
 * still be writing there.
 */
static void input_check_rotation(pretty_state *st, input *in) {
  struct stat now;
  if (stat(in->name, &now) != 0)
    return;
  if (now.st_dev != in->dev || now.st_ino != in->ino) {
    input old = *in;
    if (!input_open(in, false)) {
      *in = old;
      return;
    }
    /* The old file, read to its end, with a last line that will never be
       finished written as it is. */
    int new_fd = in->fd;
    in->fd = old.fd;
    (void)input_read(st, in);
    input_rest(st, in);
    close(old.fd);
    in->fd = new_fd;
    in->pos = 0;
  } else if (now.st_size < in->pos) {
    input_rest(st, in);
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

/* ---- main -----------------------------------------------------------------
 */

enum {
  OPT_LEVEL = 256,
  OPT_REQUEST,
  OPT_TRACE,
  OPT_LOGGER,
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
  list->items[list->len++] = value;
}

/*
 * Reads the options into st->opt and returns the index of the first FILE.
 * Colour is decided here: --color=always or never wins; with auto (the
 * default) colour needs a terminal on standard output, NO_COLOR unset or
 * empty, and TERM other than "dumb". A command-line flag beats NO_COLOR
 * because the person typing it is the more specific voice, the order the
 * NO_COLOR convention itself gives.
 */
static int parse_options(int argc, char **argv, pretty_state *st,
                         bool *follow) {
  static const struct option longopts[] = {
      {"follow", no_argument, NULL, 'f'},
      {"level", required_argument, NULL, OPT_LEVEL},
      {"request-id", required_argument, NULL, OPT_REQUEST},
      {"trace-id", required_argument, NULL, OPT_TRACE},
      {"logger", required_argument, NULL, OPT_LOGGER},
      {"color", optional_argument, NULL, OPT_COLOR},
      {"colour", optional_argument, NULL, OPT_COLOR},
      {"date", no_argument, NULL, OPT_DATE},
      {"full", no_argument, NULL, OPT_FULL},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  enum { AUTO, ALWAYS, NEVER } color = AUTO;
  int c;

  st->opt.min_level = PRETTY_LEVEL_NONE;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":fhV", longopts, NULL)) != -1) {
    switch (c) {
    case 'f':
      *follow = true;
      break;
    case OPT_LEVEL:
      st->opt.min_level = pretty_level_parse(optarg, strlen(optarg));
      if (st->opt.min_level == PRETTY_LEVEL_NONE)
        usage_error("--level: not one of trace, debug, info, warn, error, "
                    "fatal:",
                    optarg);
      break;
    case OPT_REQUEST:
      list_add(&st->opt.request, "--request-id", optarg);
      break;
    case OPT_TRACE:
      list_add(&st->opt.trace, "--trace-id", optarg);
      break;
    case OPT_LOGGER:
      list_add(&st->opt.logger, "--logger", optarg);
      break;
    case OPT_COLOR:
      if (optarg == NULL || strcmp(optarg, "always") == 0)
        color = ALWAYS;
      else if (strcmp(optarg, "never") == 0)
        color = NEVER;
      else if (strcmp(optarg, "auto") == 0)
        color = AUTO;
      else
        usage_error("--color: not one of auto, always, never:", optarg);
      break;
    case OPT_DATE:
      st->opt.date = true;
      break;
    case OPT_FULL:
      st->opt.full = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1);
    case 'V':
      puts(PROG " " TRAIL_PRETTY_VERSION);
      exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1);
    case ':':
      usage_error("option needs a value:", argv[optind - 1]);
    default:
      if (optopt != 0) {
        char opt[3] = {'-', (char)optopt, '\0'};
        usage_error("unknown option", opt);
      }
      usage_error("unknown option", argv[optind - 1]);
    }
  }

  if (color == AUTO) {
    const char *term = getenv("TERM");
    st->opt.color = isatty(STDOUT_FILENO) && !no_color_env() &&
                    !(term != NULL && strcmp(term, "dumb") == 0);
  } else {
    st->opt.color = color == ALWAYS;
  }
  return optind;
}

/* Reads each input to its end, in order. Returns the exit status. */
static int run_once(pretty_state *st, input *inputs, size_t n) {
  int status = 0;
  for (size_t i = 0; i < n; i++) {
    input *in = &inputs[i];
    if (strcmp(in->name, "-") == 0) {
      in->fd = STDIN_FILENO;
    } else if (!input_open(in, true)) {
      status = 1;
      continue;
    }
    if (input_read(st, in) < 0)
      status = 1;
    input_rest(st, in);
    input_close(in);
  }
  return status;
}

/* Reads each file to its end, then waits for more, forever (-f). Returns
   only when no file is left to follow. */
static int run_follow(pretty_state *st, input *inputs, size_t n) {
  size_t open_inputs = 0;
  int status = 0;
  for (size_t i = 0; i < n; i++) {
    if (input_open(&inputs[i], true))
      open_inputs++;
    else
      status = 1;
  }
  while (open_inputs > 0) {
    long long got = 0;
    for (size_t i = 0; i < n; i++) {
      input *in = &inputs[i];
      if (in->fd < 0)
        continue;
      long long r = input_read(st, in);
      if (r < 0) {
        input_close(in);
        open_inputs--;
        status = 1;
        continue;
      }
      got += r;
      input_check_rotation(st, in);
    }
    if (got == 0) {
      if (fflush(st->out) != 0 || ferror(st->out))
        return 1;
      follow_wait();
    }
  }
  return status;
}

int main(int argc, char **argv) {
  static char outbuf[64 * 1024];
  pretty_state st = {0};
  bool follow = false;

  /* Each of the three lists of filter values has room for every argument. */
  size_t nargs = argc > 0 ? (size_t)argc : 1;
  const char **lists = calloc(nargs * 3, sizeof *lists);
  if (lists == NULL) {
    fputs(PROG ": out of memory\n", stderr);
    return 1;
  }
  st.opt.request.items = lists;
  st.opt.trace.items = lists + nargs;
  st.opt.logger.items = lists + 2 * nargs;
  st.out = stdout;

  int first = parse_options(argc, argv, &st, &follow);
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

  input *inputs = calloc(n, sizeof *inputs);
  if (inputs == NULL) {
    fputs(PROG ": out of memory\n", stderr);
    free(lists);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    inputs[i].name = names[i];
    inputs[i].fd = -1;
  }

  /* Fully buffered even on a terminal: input_read() flushes before each
     read, which is the moment a line must be visible. */
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  int status = follow ? run_follow(&st, inputs, n) : run_once(&st, inputs, n);

  for (size_t i = 0; i < n; i++)
    input_close(&inputs[i]);
  free(inputs);
  free(lists);
  pretty_state_free(&st);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, PROG ": standard output: %s\n", strerror(errno));
    status = 1;
  }
  return status;
}
