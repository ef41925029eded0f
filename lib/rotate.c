/*
 * Rotation by size: a file sink that, when a line would take its file past
 * max_bytes, renames path to path.1 (path.1 to path.2 ..., up to keep, the
 * oldest removed) and goes on in a new file at path.
 *
 * Threads of one process take the sink's mutex (rank sink); processes
 * writing the same path take an flock(2) on path.lock, under the mutex.
 * Under both, the file is looked at again: another process may have
 * rotated it already (the inode at the path is then not the descriptor's),
 * in which case the path is reopened and the size decided anew. So a file
 * is rotated once, by whoever finds it full first, and every write goes
 * whole into a file that has room for it.
 *
 * flock() locks belong to the open file description, which fork() shares:
 * each process opens the lock file itself (at the sink's creation, and
 * again in the child of a fork, trail__rotate_fork_child()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

struct trail__rotate {
  uint64_t max_bytes;
  unsigned keep;
  int lock_fd; /* this process's open of path.lock, -1 when none */
};

/* The longest path a rotating sink takes: room for ".lock" and ".N". */
#define ROTATE_PATH_MAX (PATH_MAX - 16)

static int open_lock(const char *path) {
  char name[PATH_MAX];
  snprintf(name, sizeof name, "%s.lock", path);
  int fd;
  do
    fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  while (fd < 0 && errno == EINTR);
  return fd;
}

int trail__sink_open_rotating(const char *path, trail_level min,
                              uint64_t max_bytes, unsigned keep,
                              trail__sink **out) {
  if (path != NULL && strlen(path) > ROTATE_PATH_MAX)
    return -ENAMETOOLONG;
  if (max_bytes == 0 || keep > TRAIL__ROTATE_KEEP_MAX)
    return -EINVAL;
  trail__rotate *r = malloc(sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  int rc = trail__sink_open_file(path, min, out);
  if (rc != 0) {
    free(r);
    return rc;
  }
  r->max_bytes = max_bytes;
  r->keep = keep;
  r->lock_fd = open_lock(path);
  if (r->lock_fd < 0) {
    rc = -errno;
    (*out)->rot = r; /* freed with the sink */
    trail__sink_free(*out);
    return rc;
  }
  (*out)->rot = r;
  (*out)->fast_fd = -1; /* every write through trail__rotate_writev() */
  return 0;
}

void trail__rotate_free(trail__rotate *r) {
  if (r == NULL)
    return;
  if (r->lock_fd >= 0)
    close(r->lock_fd);
  free(r);
}

/* The child of a fork: its own open of the lock file, hence its own lock. */
void trail__rotate_fork_child(trail__sink *s) {
  if (s->rot == NULL)
    return;
  if (s->rot->lock_fd >= 0)
    close(s->rot->lock_fd);
  s->rot->lock_fd = open_lock(s->path);
}

/* Opens the path anew onto the sink's descriptor (as trail_reopen()). */
static int reopen_path(trail__sink *s) {
  int fd;
  do
    fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
              0640);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return -errno;
  int rc = dup3(fd, s->fd, O_CLOEXEC) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

/*
 * The size of the file at the path, once the descriptor is that file: when
 * the path names another inode (rotated by another process, or by hand) or
 * none, the path is reopened first. Returns 0 or -errno.
 */
static int current_size(trail__sink *s, uint64_t *size) {
  struct stat fd_st, path_st;
  for (int tries = 0; tries < 2; tries++) {
    if (fstat(s->fd, &fd_st) != 0)
      return -errno;
    if (stat(s->path, &path_st) == 0 && path_st.st_ino == fd_st.st_ino &&
        path_st.st_dev == fd_st.st_dev)
      break;
    int rc = reopen_path(s);
    if (rc != 0)
      return rc;
    if (fstat(s->fd, &fd_st) != 0)
      return -errno;
  }
  *size = (uint64_t)fd_st.st_size;
  return 0;
}

static void numbered(char *out, size_t cap, const char *path, unsigned i) {
  snprintf(out, cap, "%s.%u", path, i);
}

/*
 * path.1 .. path.N move up by one, from the top: N is the first missing
 * number (a gap takes the shift) or keep, whose file is removed. Then path
 * becomes path.1; with keep 0 it is removed instead.
 */
static int shift_files(const char *path, unsigned keep) {
  char from[PATH_MAX], to[PATH_MAX];
  if (keep == 0)
    return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
  unsigned top = 0;
  for (; top < keep; top++) {
    numbered(from, sizeof from, path, top + 1);
    if (access(from, F_OK) != 0)
      break;
  }
  if (top == keep) {
    numbered(from, sizeof from, path, keep);
    if (unlink(from) != 0 && errno != ENOENT)
      return -errno;
    top--;
  }
  for (unsigned i = top; i >= 1; i--) {
    numbered(from, sizeof from, path, i);
    numbered(to, sizeof to, path, i + 1);
    if (rename(from, to) != 0 && errno != ENOENT)
      return -errno;
  }
  numbered(to, sizeof to, path, 1);
  return rename(path, to) == 0 ? 0 : -errno;
}

/* How many of the lines in iov fit in room bytes, in order. */
static int lines_fitting(const struct iovec *iov, int cnt, uint64_t room) {
  int m = 0;
  while (m < cnt && iov[m].iov_len <= room) {
    room -= iov[m].iov_len;
    m++;
  }
  return m;
}

/*
 * Under both locks: the lines that fit are written, and before a line that
 * does not, the file is rotated. A line longer than max_bytes goes alone
 * into a new file (empty: nothing to rotate). When the file cannot be
 * looked at or rotated, the lines are appended to it as they are: a line
 * is never lost to rotation.
 */
static void write_rotating(trail__sink *s, struct iovec *iov, int cnt) {
  int rotated = 0; /* for the line at iov[0]: at most once */
  while (cnt > 0) {
    uint64_t size;
    if (current_size(s, &size) != 0)
      break;
    uint64_t max = s->rot->max_bytes;
    int m = lines_fitting(iov, cnt, size < max ? max - size : 0);
    if (m == 0 && size > 0 && !rotated) {
      if (shift_files(s->path, s->rot->keep) != 0)
        break;
      rotated = 1;
      continue; /* current_size() reopens the path */
    }
    if (m == 0)
      m = 1;
    trail__sink_writev_unlocked(s, iov, m);
    iov += m;
    cnt -= m;
    rotated = 0;
  }
  if (cnt > 0)
    trail__sink_writev_unlocked(s, iov, cnt);
}

static int flock_retry(int fd, int op) {
  int rc;
  do
    rc = flock(fd, op);
  while (rc != 0 && errno == EINTR);
  return rc;
}

/*
 * Writes cnt lines to a rotating sink: the sink's mutex, then the file
 * lock, both held with cancellation off (trail__lock_take()). Without a
 * lock file (it could not be opened again in a child) the threads of this
 * process still rotate once; other processes are not excluded.
 */
void trail__rotate_writev(trail__sink *s, struct iovec *iov, int cnt) {
  trail__lock_take(&s->lock, TRAIL__RANK_SINK);
  if (s->rot->lock_fd < 0)
    s->rot->lock_fd = open_lock(s->path);
  int locked =
      s->rot->lock_fd >= 0 && flock_retry(s->rot->lock_fd, LOCK_EX) == 0;
  write_rotating(s, iov, cnt);
  if (locked)
    flock_retry(s->rot->lock_fd, LOCK_UN);
  trail__lock_drop(&s->lock, TRAIL__RANK_SINK);
}

/* ---- TRAIL_ROTATE ------------------------------------------------------ */

/* "SIZE,KEEP": 100m,5. Returns 0, or -1 for anything else. */
int trail__rotate_parse(const char *v, uint64_t *max_bytes, unsigned *keep) {
  const char *p;
  uint64_t size;
  if (v == NULL || trail__parse_bytes(v, &p, &size) != 0 || *p != ',')
    return -1;
  p++;
  if (*p < '0' || *p > '9')
    return -1;
  char *e;
  errno = 0;
  unsigned long k = strtoul(p, &e, 10);
  if (errno != 0 || *e != '\0' || k > TRAIL__ROTATE_KEEP_MAX)
    return -1;
  *max_bytes = size;
  *keep = (unsigned)k;
  return 0;
}

/*
 * Makes the output file, the one sink TRAIL_OUTPUT made, a rotating one: a
 * new sink on the same path replaces it in one snapshot. Returns 0, or
 * -EINVAL when the output is not a single file.
 */
int trail__rotate_output(uint64_t max_bytes, unsigned keep) {
  const trail__conf *c = trail__conf_get();
  if (c->nsinks != 1 || c->sinks[0]->kind != TRAIL__SINK_FILE)
    return -EINVAL;
  trail__sink *s;
  int rc = trail__sink_open_rotating(
      c->sinks[0]->path, (trail_level)c->sinks[0]->min, max_bytes, keep, &s);
  if (rc != 0)
    return rc;
  rc = trail__sinks_replace(s);
  return rc < 0 ? rc : 0;
}
