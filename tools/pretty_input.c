/*
 * An input cut into lines, each read only when it is asked for, so that
 * several inputs can be merged without holding any of them whole. The input
 * is read with read(2) into a buffer of our own rather than with stdio, so
 * that a follower can keep a half-written last line until its end arrives,
 * and so that the output is flushed exactly when the program is about to
 * wait for input: a line shows as soon as it is written, however the output
 * is buffered. Memory stays bounded whatever the input: a line longer than
 * PRETTY_MAX_LINE is handed out cut, and the rest of it is dropped as it
 * arrives.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pretty.h"

#define PROG "trail-pretty"
#define READ_CHUNK ((size_t)64 * 1024)

/* Makes room for at least READ_CHUNK more bytes in in->buf, after moving
   what is left to its start. */
static bool reserve(pretty_input *in) {
  if (in->start > 0) {
    memmove(in->buf, in->buf + in->start, in->len - in->start);
    in->len -= in->start;
    in->scanned -= in->start;
    in->start = 0;
  }
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

/* Hands out the n bytes at s as a line. A CR just before the '\n' that
   `ended` it belongs to the line ending ("\r\n"), not to the line. A line
   longer than PRETTY_MAX_LINE is cut. */
static void hand_out(pretty_chunk *line, const char *s, size_t n, bool ended) {
  if (ended && n > 0 && s[n - 1] == '\r')
    n--;
  line->s = s;
  line->cut = n > PRETTY_MAX_LINE;
  line->n = line->cut ? PRETTY_MAX_LINE : n;
}

/*
 * Finds the next complete line in the buffer. A line that grows beyond
 * PRETTY_MAX_LINE without ending is handed out cut (one byte more than the
 * maximum may be the CR of a "\r\n" to come), and the rest of it is then
 * dropped up to its '\n'.
 */
static bool scan(pretty_input *in, pretty_chunk *line) {
  if (in->buf == NULL)
    return false; /* nothing read yet */
  for (;;) {
    char *nl = memchr(in->buf + in->scanned, '\n', in->len - in->scanned);
    if (nl == NULL)
      break;
    size_t end = (size_t)(nl - in->buf), start = in->start;
    in->start = in->scanned = end + 1;
    if (in->skipping) {
      in->skipping = false;
      continue;
    }
    hand_out(line, in->buf + start, end - start, true);
    return true;
  }
  in->scanned = in->len;
  if (in->skipping) {
    in->start = in->scanned = in->len;
  } else if (in->len - in->start > PRETTY_MAX_LINE + 1) {
    hand_out(line, in->buf + in->start, in->len - in->start, false);
    in->skipping = true;
    in->start = in->scanned = in->len;
    return true;
  }
  return false;
}

/* Hands out what is left in the buffer as a last line: the input ended, or
   the file it came from was replaced, without a final '\n'. False when
   nothing is left. */
bool pretty_input_rest(pretty_input *in, pretty_chunk *line) {
  bool any = in->len > in->start && !in->skipping;
  if (any)
    hand_out(line, in->buf + in->start, in->len - in->start, false);
  in->start = in->scanned = in->len;
  in->skipping = false;
  return any;
}

/*
 * Hands out the next line of `in`, reading as much as that needs. The output
 * is flushed before each read(), which is where the program may wait.
 * Returns 1 with a line, 0 at the end of what there is, or -1 after
 * reporting a read error. At the end, a last line without '\n' is handed
 * out when `final`, and kept for later otherwise (-f: its end may still be
 * written); once a final end has been met, nothing more is read.
 */
int pretty_input_next(pretty_input *in, FILE *out, bool final,
                      pretty_chunk *line) {
  for (;;) {
    if (scan(in, line))
      return 1;
    if (in->eof)
      return 0;
    if (!reserve(in)) {
      fprintf(stderr, PROG ": %s: out of memory\n", in->name);
      return -1;
    }
    fflush(out);
    ssize_t r = read(in->fd, in->buf + in->len, in->cap - in->len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      fprintf(stderr, PROG ": %s: %s\n", in->name, strerror(errno));
      return -1;
    }
    if (r == 0) {
      if (!final)
        return 0;
      in->eof = true;
      return pretty_input_rest(in, line) ? 1 : 0;
    }
    in->len += (size_t)r;
    in->pos += r;
  }
}

/* Opens in->name ("-" is standard input) and records which file it is.
   False, after reporting it when `report`, when it cannot be opened. */
bool pretty_input_open(pretty_input *in, bool report) {
  struct stat sb;
  int fd = strcmp(in->name, "-") == 0 ? STDIN_FILENO
                                      : open(in->name, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &sb) != 0) {
    if (report)
      fprintf(stderr, PROG ": %s: %s\n", in->name, strerror(errno));
    if (fd > STDIN_FILENO)
      close(fd);
    return false;
  }
  if (S_ISDIR(sb.st_mode)) {
    if (report)
      fprintf(stderr, PROG ": %s: %s\n", in->name, strerror(EISDIR));
    if (fd > STDIN_FILENO)
      close(fd);
    return false;
  }
  in->fd = fd;
  in->dev = sb.st_dev;
  in->ino = sb.st_ino;
  in->pos = 0;
  in->eof = false;
  return true;
}

/* Closes the input's file (never standard input) and frees its buffer. */
void pretty_input_close(pretty_input *in) {
  if (in->fd > STDIN_FILENO)
    close(in->fd);
  in->fd = -1;
  free(in->buf);
  in->buf = NULL;
  in->start = in->len = in->cap = in->scanned = 0;
}
