/*
 * Sinks: where finished lines go (descriptors, files, user callbacks). The
 * configuration snapshot that lists them is state.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static trail__sink *sinks_retired; /* removed sinks, closed at shutdown */
static int next_sink_id;

/* Looks at what fd is, to pick the write method that is safe for it. */
static void sink_classify(trail__sink *s) {
  struct stat st;
  s->is_regular = s->is_socket = s->guard_sigpipe = s->needs_lock = 0;
  s->fast_fd = -1;
  if (fstat(s->fd, &st) != 0)
    return;
  s->is_regular = S_ISREG(st.st_mode);
  s->is_socket = S_ISSOCK(st.st_mode);
  /*
   * Every pipe is guarded, even when SIGPIPE is ignored now: the program may
   * restore the default action later, and a write must never kill it.
   */
  s->guard_sigpipe = S_ISFIFO(st.st_mode);
  s->needs_lock = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
  s->fast_fd = s->needs_lock || s->guard_sigpipe || s->is_socket ? -1 : s->fd;
}

static trail__sink *sink_new(int kind, int fd, trail_level min) {
  trail__sink *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->kind = kind;
  s->fd = fd;
  s->fast_fd = -1;
  s->min = (int)min;
  pthread_mutex_init(&s->lock, NULL);
  if (fd >= 0)
    sink_classify(s);
  return s;
}

trail__sink *trail__sink_new_fd(int fd, trail_level min) {
  return sink_new(TRAIL__SINK_FD, fd, min);
}

static int open_log(const char *path) {
  int fd;
  do
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

int trail__sink_open_file(const char *path, trail_level min,
                          trail__sink **out) {
  if (path == NULL || path[0] == '\0')
    return -EINVAL;
  char *copy = strdup(path);
  if (copy == NULL)
    return -ENOMEM;
  int fd = open_log(path);
  if (fd < 0) {
    free(copy);
    return fd;
  }
  trail__sink *s = sink_new(TRAIL__SINK_FILE, fd, min);
  if (s == NULL) {
    close(fd);
    free(copy);
    return -ENOMEM;
  }
  s->path = copy;
  *out = s;
  return 0;
}

void trail__sink_free(trail__sink *s) {
  if (s->kind == TRAIL__SINK_FILE && s->fd >= 0)
    close(s->fd);
  trail__rotate_free(s->rot);
  pthread_mutex_destroy(&s->lock);
  free(s->path);
  free(s);
}

/* ---- the sinks of the snapshots (the snapshot itself: state.c) -------- */

static trail__sink default_stdout;

/* The stdout sink of the defaults: made on the first call, never freed. */
trail__sink *trail__sink_default_stdout(void) {
  if (default_stdout.kind == 0) {
    default_stdout.kind = TRAIL__SINK_FD;
    default_stdout.fd = STDOUT_FILENO;
    default_stdout.min = TRAIL_LEVEL_TRACE;
    default_stdout.id = -1; /* never freed */
    pthread_mutex_init(&default_stdout.lock, NULL);
    sink_classify(&default_stdout);
  }
  return &default_stdout;
}

static int sink_in(const trail__conf *c, const trail__sink *s) {
  for (size_t i = 0; i < c->nsinks; i++)
    if (c->sinks[i] == s)
      return 1;
  return 0;
}

/* Moves the sinks of c that are not in keep to the retired list. */
void trail__sinks_retire_locked(const trail__conf *c, const trail__conf *keep) {
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    if (s != &default_stdout && !sink_in(keep, s)) {
      s->retired_next = sinks_retired;
      sinks_retired = s;
    }
  }
}

/* Closes and frees the retired sinks; no thread may log (trail_shutdown). */
void trail__sinks_free_retired_locked(void) {
  for (trail__sink *s = sinks_retired, *n; s; s = n) {
    n = s->retired_next;
    trail__sink_free(s);
  }
  sinks_retired = NULL;
}

/*
 * The child of a fork(): a sink's lock may have been held by a thread of the
 * parent across a blocking write (the fork handlers do not wait for it);
 * that thread does not exist here, so the lock is made anew. The config
 * lock is held, so the snapshot cannot change meanwhile.
 */
void trail__sinks_fork_child(void) {
  const trail__conf *c = trail__conf_get();
  for (size_t i = 0; i < c->nsinks; i++) {
    pthread_mutex_init(&c->sinks[i]->lock, NULL);
    trail__rotate_fork_child(c->sinks[i]);
    /* No writer of the parent's is stuck in it here. */
    __atomic_store_n(&c->sinks[i]->given_up, 0, __ATOMIC_SEQ_CST);
  }
  __atomic_store_n(&trail__writers_given_up, 0, __ATOMIC_SEQ_CST);
}

/* Whether a stop gave the async writer up in s: see trail__sink. */
static int sink_given_up(const trail__sink *s) {
  return __atomic_load_n(&s->given_up, __ATOMIC_RELAXED);
}

/* The cnt lines a sink did not get, one write error each. */
static void count_lost(int cnt) {
  for (int i = 0; i < cnt; i++)
    trail__count_write_error();
}

/* ---- writing ----------------------------------------------------------- */

/*
 * How long the crash handler waits for a sink that takes no bytes (a pipe
 * or socket whose reader is slow, stalled or gone) before it gives the
 * sink up for the rest of the crash: long enough for a reader that is
 * merely slow, bounded so that a crash never hangs on one that is stuck.
 */
#define CRASH_WRITE_WAIT_MS 1000

/* Whether s takes bytes before the deadline (poll(2): async-signal-safe). */
static int crash_writable(const trail__sink *s, int64_t deadline) {
  for (;;) {
    int64_t now = trail__mono_ms();
    if (now >= deadline)
      return 0;
    struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
    int pr = poll(&pfd, 1, (int)(deadline - now));
    if (pr < 0 && errno == EINTR)
      continue;
    return pr > 0 && !(pfd.revents & (POLLERR | POLLNVAL));
  }
}

/*
 * All of p to s from the crash handler, with async-signal-safe calls only,
 * and never blocked for good, whether s->fd is blocking or not. A regular
 * file is written as it is. Anything else is first polled for room, and
 * then written so that the write cannot block: a socket with
 * MSG_DONTWAIT, a pipe (or terminal) PIPE_BUF bytes at a time, which a pipe
 * that polls writable takes whole. A sink that takes nothing for
 * CRASH_WRITE_WAIT_MS is given up (crash_stalled) for the rest of the
 * crash, so that a stalled reader costs the crash one wait, not one a
 * line. Given up on any error; EINTR retried.
 */
void trail__sink_write_crash(trail__sink *s, const char *p, size_t n) {
  if (s->crash_stalled || sink_given_up(s))
    return;
  int64_t deadline = trail__mono_ms() + CRASH_WRITE_WAIT_MS;
  while (n > 0) {
    if (!s->is_regular && !crash_writable(s, deadline)) {
      s->crash_stalled = 1;
      return;
    }
    ssize_t r;
    if (s->is_socket)
      r = send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    else
      r = write(s->fd, p, s->is_regular || n <= PIPE_BUF ? n : PIPE_BUF);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
      continue; /* polled again, within the same deadline */
    if (r <= 0)
      return;
    p += r;
    n -= (size_t)r;
    deadline = trail__mono_ms() + CRASH_WRITE_WAIT_MS; /* it takes bytes */
  }
}

/*
 * A write on a pipe whose reader is gone raises SIGPIPE, whose default
 * action kills the process. A library must not change the process's signal
 * dispositions, so the signal is blocked on this thread for the write and,
 * if the write raised it, taken off the pending set before unblocking.
 */
static ssize_t writev_guarded(int fd, const struct iovec *iov, int cnt) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigset_t pending;
  int was_pending = 0;
  if (sigpending(&pending) == 0)
    was_pending = sigismember(&pending, SIGPIPE);
  ssize_t r = writev(fd, iov, cnt);
  int saved = errno;
  if (r < 0 && errno == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return r;
}

static ssize_t writev_once(const trail__sink *s, const struct iovec *iov,
                           int cnt) {
  if (s->is_socket) {
    struct msghdr m = {.msg_iov = (struct iovec *)iov,
                       .msg_iovlen = (size_t)cnt};
    return sendmsg(s->fd, &m, MSG_NOSIGNAL);
  }
  if (s->guard_sigpipe)
    return writev_guarded(s->fd, iov, cnt);
  if (cnt == 1)
    return write(s->fd, iov[0].iov_base, iov[0].iov_len);
  return writev(s->fd, iov, cnt);
}

/*
 * The longest write the async writer makes to a pipe or socket: a blocking
 * write returns only once all of it is taken, and the writer's progress
 * (trail__writer_step()), which a stop watches, is counted per write. So
 * that a slow reader is not taken for a stalled one, a write is at most a
 * pipe's default size, and PIPE_BUF bytes once a stop waits. One system
 * call for 64 KiB costs nothing; for 4 KiB it does, but only while stopping.
 */
#define WRITER_WRITE_MAX ((size_t)64 * 1024)

static size_t writer_write_max(void) {
  uint64_t *w = trail__writer_watch;
  return w != NULL &&
                 (__atomic_load_n(w, __ATOMIC_RELAXED) & TRAIL__WATCH_STOPPING)
             ? PIPE_BUF
             : WRITER_WRITE_MAX;
}

/* writev_once() of at most max bytes of iov (a part of its first line if
 * that alone is longer). */
static ssize_t writev_capped(const trail__sink *s, struct iovec *iov, int cnt,
                             size_t max) {
  size_t sum = 0;
  int k = 0;
  while (k < cnt && sum + iov[k].iov_len <= max)
    sum += iov[k++].iov_len;
  if (k > 0)
    return writev_once(s, iov, k);
  size_t whole = iov[0].iov_len;
  iov[0].iov_len = max;
  ssize_t r = writev_once(s, iov, 1);
  iov[0].iov_len = whole;
  return r;
}

/*
 * Writes cnt whole lines, one iovec each, in as few system calls as the
 * kernel allows: one write(2) for a line, one writev(2) for a batch. On an
 * O_APPEND file the kernel appends each call whole, so lines of threads and
 * processes sharing the file never interleave. A partial write (a signal, a
 * full disk) is continued; EINTR retried; EAGAIN (a non-blocking
 * descriptor) waits until writable. Any other error loses the lines not yet
 * written, for this sink only, and counts each of them in write_errors.
 * On the async writer, each write that takes bytes is a step
 * (trail__writer_step()), and a write to a pipe or socket is kept short
 * (WRITER_WRITE_MAX); a writer that a stop has given up finishes the line
 * it began and loses the rest, so that no line is cut. iov is
 * consumed. The caller holds whatever lock the sink needs.
 */
void trail__sink_writev_unlocked(trail__sink *s, struct iovec *iov, int cnt) {
  while (cnt > 0) {
    ssize_t r = trail__writer_watch != NULL && s->needs_lock
                    ? writev_capped(s, iov, cnt, writer_write_max())
                    : writev_once(s, iov, cnt);
    if (r >= 0) {
      size_t n = (size_t)r;
      while (cnt > 0 && n >= iov->iov_len) {
        n -= iov->iov_len;
        iov++;
        cnt--;
      }
      if (cnt > 0) {
        iov->iov_base = (char *)iov->iov_base + n;
        iov->iov_len -= n;
      }
      if (r > 0 && trail__writer_step() && n == 0)
        break; /* given up, at a line's start: the stop counts the rest */
      if (r > 0 || cnt == 0)
        continue;
      errno = EIO; /* nothing written, no error: do not spin */
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
      if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
        continue;
    }
    count_lost(cnt);
    break;
  }
}

/*
 * trail__sink_writev_unlocked() with the sink's lock where one is needed.
 * A pipe or socket takes a write whole only up to PIPE_BUF; a longer one
 * goes in pieces when the reader is slow, and another thread's line could
 * land between them. So every write to one, short or long, holds the
 * sink's lock: a line of this process is never cut by another of its
 * lines. (Regular files are appended whole by the kernel; character
 * devices such as /dev/null or a terminal are not read by a collector.)
 * A rotating file takes its locks in trail__rotate_writev().
 */
void trail__sink_writev(trail__sink *s, struct iovec *iov, int cnt) {
  if (sink_given_up(s)) {
    count_lost(cnt);
    return;
  }
  if (s->rot != NULL) {
    trail__rotate_writev(s, iov, cnt);
    return;
  }
  if (!s->needs_lock) {
    trail__sink_writev_unlocked(s, iov, cnt);
    return;
  }
  trail__lock_take(&s->lock, TRAIL__RANK_SINK);
  trail__sink_writev_unlocked(s, iov, cnt);
  trail__lock_drop(&s->lock, TRAIL__RANK_SINK);
}

/* After a write(2) of p[0..n) to s->fast_fd returned r short of n. */
void trail__sink_write_rest(trail__sink *s, const char *p, size_t n,
                            ssize_t r) {
  if (r > 0) { /* the rest, the careful way */
    p += r;
    n -= (size_t)r;
  }
  struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
  trail__sink_writev(s, &iov, 1);
}

static void sink_write_fd(trail__sink *s, const char *p, size_t n) {
  /* The common case in one call: a whole line to a file or a terminal,
   * written at once. */
  if (s->fast_fd >= 0) {
    ssize_t r = write(s->fast_fd, p, n);
    if (r != (ssize_t)n)
      trail__sink_write_rest(s, p, n, r);
    return;
  }
  struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
  trail__sink_writev(s, &iov, 1);
}

void trail__sinks_write(const trail__conf *c, trail_level level,
                        const char *line, size_t len) {
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    if ((int)level < s->min)
      continue;
    if (sink_given_up(s))
      count_lost(1);
    else if (s->kind == TRAIL__SINK_CALLBACK)
      s->fn(s->user, level, line, len);
    else
      sink_write_fd(s, line, len);
  }
}

/* ---- the public sink calls --------------------------------------------- */

static int valid_min(trail_level min) {
  return (int)min >= (int)TRAIL_LEVEL_TRACE && (int)min <= (int)TRAIL_LEVEL_OFF;
}

/* Adds s to a new snapshot; on failure s is freed. Returns its id. */
static int add_sink(trail__sink *s) {
  trail__config_lock();
  trail__conf *c = trail__conf_copy_locked();
  int rc;
  if (c == NULL) {
    rc = -ENOMEM;
  } else if (c->nsinks == TRAIL__MAX_SINKS) {
    free(c);
    rc = -ENOSPC;
  } else {
    s->id = next_sink_id++;
    c->sinks[c->nsinks++] = s;
    trail__conf_publish_locked(c);
    rc = s->id;
  }
  trail__config_unlock();
  if (rc < 0)
    trail__sink_free(s);
  return rc;
}

/*
 * Makes s the only sink, in one snapshot: no event falls between the old
 * output and the new one. On failure s is freed and nothing changes.
 */
int trail__sinks_replace(trail__sink *s) {
  trail__config_lock();
  trail__conf *c = trail__conf_copy_locked();
  int rc = -ENOMEM;
  if (c != NULL) {
    trail__conf old = *c;
    s->id = next_sink_id++;
    c->sinks[0] = s;
    c->nsinks = 1;
    trail__sinks_retire_locked(&old, c);
    trail__conf_publish_locked(c);
    rc = s->id;
  }
  trail__config_unlock();
  if (rc < 0)
    trail__sink_free(s);
  return rc;
}

TRAIL_API int trail_sink_add_file_rotating(const char *path,
                                           trail_level min_level,
                                           uint64_t max_bytes, unsigned keep) {
  if (!valid_min(min_level))
    return TRAIL_EINVAL_LEVEL;
  trail__sink *s;
  int rc = trail__sink_open_rotating(path, min_level, max_bytes, keep, &s);
  return rc < 0 ? rc : add_sink(s);
}

TRAIL_API int trail_sink_add_fd(int fd, trail_level min) {
  if (fd < 0 || !valid_min(min))
    return fd < 0 ? -EBADF : TRAIL_EINVAL_LEVEL;
  if (fcntl(fd, F_GETFD) < 0)
    return -errno;
  trail__sink *s = sink_new(TRAIL__SINK_FD, fd, min);
  return s ? add_sink(s) : -ENOMEM;
}

TRAIL_API int trail_sink_add_stdout(trail_level min) {
  return trail_sink_add_fd(STDOUT_FILENO, min);
}

TRAIL_API int trail_sink_add_stderr(trail_level min) {
  return trail_sink_add_fd(STDERR_FILENO, min);
}

TRAIL_API int trail_sink_add_file(const char *path, trail_level min) {
  if (!valid_min(min))
    return TRAIL_EINVAL_LEVEL;
  trail__sink *s;
  int rc = trail__sink_open_file(path, min, &s);
  return rc < 0 ? rc : add_sink(s);
}

TRAIL_API int trail_sink_add_callback(trail_sink_fn fn, void *user,
                                      trail_level min) {
  if (fn == NULL)
    return -EINVAL;
  if (!valid_min(min))
    return TRAIL_EINVAL_LEVEL;
  trail__sink *s = sink_new(TRAIL__SINK_CALLBACK, -1, min);
  if (s == NULL)
    return -ENOMEM;
  s->fn = fn;
  s->user = user;
  return add_sink(s);
}

/*
 * Removing publishes a snapshot without the sink. The sink itself (and a
 * file's descriptor) is kept until trail_shutdown(): a thread may be in the
 * middle of writing to it, and closing a descriptor under a writer could
 * send its line to whatever file next gets that number.
 */
TRAIL_API int trail_sink_remove(int id) {
  trail__config_lock();
  trail__conf *c = trail__conf_copy_locked();
  int rc = TRAIL_ENOSINK;
  if (c == NULL) {
    rc = -ENOMEM;
  } else {
    for (size_t i = 0; i < c->nsinks; i++) {
      if (c->sinks[i]->id == id && id >= 0) {
        trail__sink *s = c->sinks[i];
        for (size_t k = i; k + 1 < c->nsinks; k++)
          c->sinks[k] = c->sinks[k + 1];
        c->nsinks--;
        s->retired_next = sinks_retired;
        sinks_retired = s;
        rc = 0;
        break;
      }
    }
    if (rc == 0)
      trail__conf_publish_locked(c);
    else
      free(c);
  }
  trail__config_unlock();
  return rc;
}

TRAIL_API void trail_sinks_clear(void) {
  trail__config_lock();
  trail__conf *c = trail__conf_copy_locked();
  if (c != NULL) {
    trail__conf empty = *c;
    c->nsinks = 0;
    trail__sinks_retire_locked(&empty, c);
    trail__conf_publish_locked(c);
  }
  trail__config_unlock();
}

/*
 * Reopens every file sink by its path. The new descriptor is dup3()'d onto
 * the old number, which the kernel does atomically: a concurrent write goes
 * wholly to the old file or wholly to the new one, never to a closed fd.
 * O_CLOEXEC there, since dup2() would clear it: the log descriptor must not
 * leak into the programs the service executes.
 * Returns 0, or the first error (the other sinks are still reopened).
 */
TRAIL_API int trail_reopen(void) {
  int rc = 0;
  trail__config_lock();
  const trail__conf *c = trail__conf_get();
  for (size_t i = 0; i < c->nsinks; i++) {
    trail__sink *s = c->sinks[i];
    if (s->kind != TRAIL__SINK_FILE)
      continue;
    int fd = open_log(s->path);
    if (fd < 0) {
      if (rc == 0)
        rc = fd;
      continue;
    }
    /* The path keeps its kind (a log file stays a regular file): the
     * sink's write method, read by logging threads, is not changed. */
    if (dup3(fd, s->fd, O_CLOEXEC) < 0 && rc == 0)
      rc = -errno;
    close(fd);
  }
  trail__config_unlock();
  return rc;
}
