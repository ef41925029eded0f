/*
 * The command line of the example programs, one parser for all of them.
 * Header-only (static functions), like orders.h: each example is one
 * program.
 *
 * Every example answers -h or --help with its usage on stdout and exit
 * status 0, before it starts anything. Anything it does not understand (an
 * unknown option, an option without its value, a value out of range, an
 * argument where none is taken) gets one line on stderr naming the problem
 * and "try --help", and exit status 2. An option's value comes as the next
 * argument or after '=': "--port 8080" or "--port=8080".
 *
 *   cli cl;
 *   cli_init(&cl, "orders_mhd", USAGE, argc, argv);
 *   while (cli_next(&cl)) {
 *     if (cli_port(&cl, &port) || cli_mode(&cl, &threaded))
 *       continue;
 *     cli_unknown(&cl);
 *   }
 */
#ifndef TRAIL_EXAMPLE_CLI_H
#define TRAIL_EXAMPLE_CLI_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli {
  const char *prog;  /* the name in messages */
  const char *usage; /* the text of --help */
  int argc;
  char **argv;
  int next;        /* index of the argument after the current one */
  const char *arg; /* the current argument */
} cli;

static inline void cli_init(cli *c, const char *prog, const char *usage,
                            int argc, char **argv) {
  c->prog = prog;
  c->usage = usage;
  c->argc = argc;
  c->argv = argv;
  c->next = 1;
  c->arg = NULL;
}

/* One line on stderr, then exit status 2: the arguments were wrong. */
__attribute__((format(printf, 2, 3), noreturn)) static inline void
cli_fail(const cli *c, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", c->prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "; try %s --help\n", c->prog);
  exit(2);
}

/*
 * Moves to the next argument; 0 when there is none left. -h and --help
 * print the usage and exit 0 here, so that the caller never sees them.
 */
static inline int cli_next(cli *c) {
  if (c->next >= c->argc)
    return 0;
  c->arg = c->argv[c->next++];
  if (strcmp(c->arg, "-h") == 0 || strcmp(c->arg, "--help") == 0) {
    fputs(c->usage, stdout);
    exit(fflush(stdout) == 0 ? 0 : 1);
  }
  return 1;
}

/* Whether the current argument is the option name with "=value" after. */
static inline const char *cli_inline_value(const cli *c, const char *name) {
  size_t n = strlen(name);
  if (strncmp(c->arg, name, n) == 0 && c->arg[n] == '=')
    return c->arg + n + 1;
  return NULL;
}

/* A flag (an option without a value): 1 if the current argument is it. */
static inline int cli_flag(cli *c, const char *name) {
  if (cli_inline_value(c, name) != NULL)
    cli_fail(c, "%s takes no value", name);
  return strcmp(c->arg, name) == 0;
}

/*
 * An option with a value: 1 and *out set if the current argument is it.
 * A missing value is an error; so is an empty one.
 */
static inline int cli_value(cli *c, const char *name, const char **out) {
  const char *v = cli_inline_value(c, name);
  if (v == NULL) {
    if (strcmp(c->arg, name) != 0)
      return 0;
    if (c->next >= c->argc)
      cli_fail(c, "%s needs a value", name);
    v = c->argv[c->next++];
  }
  if (v[0] == '\0')
    cli_fail(c, "%s needs a value", name);
  *out = v;
  return 1;
}

/*
 * --port N, N from 0 to 65535 (0: the kernel chooses). Only digits: no
 * sign, no spaces, no "8080x".
 */
static inline int cli_port(cli *c, int *port) {
  const char *v;
  if (!cli_value(c, "--port", &v))
    return 0;
  long n = 0;
  for (const char *p = v; *p; p++) {
    if (*p < '0' || *p > '9')
      cli_fail(c, "--port: '%s' is not a number", v);
    if (n <= 65535)
      n = n * 10 + (*p - '0');
  }
  if (n > 65535)
    cli_fail(c, "--port: %s is out of range (0 to 65535)", v);
  *port = (int)n;
  return 1;
}

/*
 * --mode thread|poll, for the examples on libmicrohttpd: *threaded 1 for
 * thread (a thread per connection), 0 for poll (one thread for all).
 */
static inline int cli_mode(cli *c, int *threaded) {
  const char *v;
  if (!cli_value(c, "--mode", &v))
    return 0;
  if (strcmp(v, "thread") != 0 && strcmp(v, "poll") != 0)
    cli_fail(c, "--mode: '%s' is neither thread nor poll", v);
  *threaded = strcmp(v, "thread") == 0;
  return 1;
}

/* The current argument was none of the program's: an error. */
__attribute__((noreturn)) static inline void cli_unknown(const cli *c) {
  if (c->arg[0] == '-')
    cli_fail(c, "unknown option '%s'", c->arg);
  cli_fail(c, "unexpected argument '%s'", c->arg);
}

#endif /* TRAIL_EXAMPLE_CLI_H */
