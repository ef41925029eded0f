/*
 * Sinks (lib/sink.c, trail_output_set in lib/config.c): several sinks with
 * their own minimum levels, descriptors, files (mode, O_APPEND, rotation),
 * callbacks, removal, write failures and SIGPIPE, the counters, and the
 * argument checks.
 */
#define _GNU_SOURCE
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* ---- helpers ------------------------------------------------------------ */

/* The lines of a buffer of JSON lines, each checked and parsed. */
typedef struct lines {
  size_t n;
  json_t **j;
} lines;

static lines parse_lines(const char *buf, size_t len) {
  lines l = {0, NULL};
  if (len > 0)
    assert_int_equal(buf[len - 1], '\n'); /* no partial last line */
  size_t nl = 0;
  for (size_t i = 0; i < len; i++)
    nl += buf[i] == '\n';
  l.j = calloc(nl + 1, sizeof *l.j);
  assert_non_null(l.j);
  for (size_t at = 0; at < len;) {
    const char *end = memchr(buf + at, '\n', len - at);
    size_t n = (size_t)(end - (buf + at)) + 1;
    l.j[l.n++] = parse_line(buf + at, n);
    at += n;
  }
  assert_int_equal(l.n, nl);
  return l;
}

static lines read_lines(const char *path) {
  size_t len;
  char *buf = read_file(path, &len);
  lines l = parse_lines(buf, len);
  free(buf);
  return l;
}

static void lines_free(lines *l) {
  for (size_t i = 0; i < l->n; i++)
    json_decref(l->j[i]);
  free(l->j);
  l->j = NULL;
  l->n = 0;
}

/* A standard descriptor pointed at a file for a while. */

/* The published sink with that id (internal view), or NULL. */
static const trail__sink *find_sink(int id) {
  const trail__conf *c = trail__conf_get();
  for (size_t i = 0; i < c->nsinks; i++)
    if (c->sinks[i]->id == id)
      return c->sinks[i];
  return NULL;
}

/* A callback sink that counts and keeps its last line. */
typedef struct recorder {
  pthread_mutex_t lock;
  size_t n;
  void *user_seen;
  trail_level last_level;
  char last[1024];
  size_t last_len;
} recorder;

static void record_sink(void *user, trail_level level, const char *line,
                        size_t len) {
  recorder *r = user;
  pthread_mutex_lock(&r->lock);
  r->n++;
  r->user_seen = user;
  r->last_level = level;
  r->last_len = len < sizeof r->last ? len : sizeof r->last;
  memcpy(r->last, line, r->last_len);
  pthread_mutex_unlock(&r->lock);
}

static int setup(void **state) {
  (void)state;
  trail_shutdown();
  trail_counters_reset();
  snprintf(tmpdir, sizeof tmpdir, "/tmp/trail-sink-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  trail_counters_reset();
  remove_tree(tmpdir);
  return 0;
}

static const char *const level_names[] = {"trace", "debug", "info",
                                          "warn",  "error", "fatal"};

/* One line at each level trace..fatal on root, message = the level name. */
static void log_every_level(void) {
  for (int l = TRAIL_LEVEL_TRACE; l <= TRAIL_LEVEL_FATAL; l++) {
    trail_field f = TRAIL_INT("n", l);
    trail_log(NULL, (trail_level)l, level_names[l], &f, 1);
  }
}

/* ---- tests -------------------------------------------------------------- */

/*
 * Each sink takes only its own levels: a file at debug gets debug..fatal, a
 * capture sink at warn gets warn..fatal, and a level neither takes is off.
 */
static void test_sinks_own_levels(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "debug.log");
  assert_int_equal(trail_levels_set("trace", NULL), 0);
  cap_start(TRAIL_LEVEL_WARN);
  int id = trail_sink_add_file(path, TRAIL_LEVEL_DEBUG);
  assert_true(id >= 0);
  assert_false(trail_enabled(NULL, TRAIL_LEVEL_TRACE));
  assert_true(trail_enabled(NULL, TRAIL_LEVEL_DEBUG));

  log_every_level();
  trail_debug(NULL, "macro debug");
  trail_warn(NULL, "macro warn");
  trail_trace(NULL, "macro trace"); /* no sink takes it */

  lines l = read_lines(path);
  assert_int_equal(l.n, 7);
  for (size_t i = 0; i < 5; i++) {
    assert_str_field(l.j[i], "level", level_names[i + 1]);
    assert_str_field(l.j[i], "message", level_names[i + 1]);
    assert_int_equal(json_integer_value(json_object_get(l.j[i], "n")), i + 1);
  }
  assert_str_field(l.j[5], "message", "macro debug");
  assert_str_field(l.j[6], "message", "macro warn");
  lines_free(&l);

  assert_int_equal(cap_count(), 4);
  for (size_t i = 0; i < 3; i++) {
    json_t *j = cap_json(i);
    assert_key_order(j);
    assert_str_field(j, "level", level_names[i + 3]);
    assert_str_field(j, "message", level_names[i + 3]);
    assert_int_equal(cap.lines[i].level, (trail_level)(i + 3));
    json_decref(j);
  }
  json_t *j = cap_json(3);
  assert_str_field(j, "message", "macro warn");
  json_decref(j);
}

/*
 * A descriptor sink on a pipe: the lines read back whole and parse, and
 * trail leaves the caller's descriptor open, even through trail_shutdown().
 */
static void test_fd_sink_pipe(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  trail_sinks_clear();
  assert_true(trail_sink_add_fd(p[1], TRAIL_LEVEL_INFO) >= 0);
  assert_int_equal(trail_service_set("pipe-svc"), 0);
  for (int i = 0; i < 10; i++)
    trail_info(NULL, "through the pipe", TRAIL_INT("i", i));
  trail_debug(NULL, "below info");
  trail_shutdown();
  assert_true(fcntl(p[1], F_GETFD) >= 0); /* still the caller's */
  close(p[1]);

  size_t len;
  char *buf = read_all_fd(p[0], &len);
  close(p[0]);
  lines l = parse_lines(buf, len);
  free(buf);
  assert_int_equal(l.n, 10);
  for (size_t i = 0; i < l.n; i++) {
    assert_key_order(l.j[i]);
    assert_str_field(l.j[i], "message", "through the pipe");
    assert_str_field(l.j[i], "level", "info");
    assert_str_field(l.j[i], "service", "pipe-svc");
    assert_int_equal(json_integer_value(json_object_get(l.j[i], "i")), i);
  }
  lines_free(&l);
}

/*
 * trail_sink_add_file creates the file with mode 0640 exactly (umask 0),
 * close-on-exec and O_APPEND.
 */
static void test_file_sink_mode(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "new.log");
  trail_sinks_clear();
  mode_t old = umask(0);
  int id = trail_sink_add_file(path, TRAIL_LEVEL_INFO);
  umask(old);
  assert_true(id >= 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0640);

  const trail__sink *s = find_sink(id);
  assert_non_null(s);
  int fl = fcntl(s->fd, F_GETFL);
  assert_true(fl >= 0);
  assert_true(fl & O_APPEND);
  assert_int_equal(fl & O_ACCMODE, O_WRONLY);
  int fdfl = fcntl(s->fd, F_GETFD);
  assert_true(fdfl >= 0);
  assert_true(fdfl & FD_CLOEXEC);

  trail_info(NULL, "first");
  lines l = read_lines(path);
  assert_int_equal(l.n, 1);
  assert_str_field(l.j[0], "message", "first");
  lines_free(&l);
}

/*
 * A file that exists keeps its content, and trail appends: a line another
 * writer appends between two of trail's stays between them.
 */
static void test_file_sink_appends(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "existing.log");
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  static const char pre[] = "pre-existing line\n";
  static const char ext[] = "external line\n";
  assert_int_equal(write(fd, pre, sizeof pre - 1), sizeof pre - 1);

  trail_sinks_clear();
  assert_true(trail_sink_add_file(path, TRAIL_LEVEL_INFO) >= 0);
  trail_info(NULL, "a");
  assert_int_equal(write(fd, ext, sizeof ext - 1), sizeof ext - 1);
  trail_info(NULL, "b");
  close(fd);

  size_t len;
  char *buf = read_file(path, &len);
  assert_true(len > sizeof pre + sizeof ext);
  assert_memory_equal(buf, pre, sizeof pre - 1);
  const char *a = buf + sizeof pre - 1;
  const char *a_end = strchr(a, '\n');
  assert_non_null(a_end);
  json_t *j = parse_line(a, (size_t)(a_end - a) + 1);
  assert_str_field(j, "message", "a");
  json_decref(j);
  assert_memory_equal(a_end + 1, ext, sizeof ext - 1);
  const char *b = a_end + sizeof ext;
  size_t b_len = len - (size_t)(b - buf);
  assert_int_equal(memchr(b, '\n', b_len), b + b_len - 1); /* the last line */
  j = parse_line(b, b_len);
  assert_str_field(j, "message", "b");
  json_decref(j);
  free(buf);
}

/*
 * A removed sink gets no more lines, the others still do; removing an id
 * that is not (or no longer) a sink gives TRAIL_ENOSINK.
 */
static void test_sink_remove(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "removed.log");
  static recorder rec = {PTHREAD_MUTEX_INITIALIZER, 0, NULL, 0, {0}, 0};
  rec.n = 0;
  cap_start(TRAIL_LEVEL_INFO);
  int rid = trail_sink_add_callback(record_sink, &rec, TRAIL_LEVEL_INFO);
  int fid = trail_sink_add_file(path, TRAIL_LEVEL_INFO);
  assert_true(rid >= 0 && fid >= 0);
  assert_int_not_equal(rid, fid);
  assert_int_not_equal(rid, cap.sink_id);

  trail_info(NULL, "one");
  assert_int_equal(trail_sink_remove(rid), 0);
  assert_int_equal(trail_sink_remove(fid), 0);
  trail_info(NULL, "two");

  assert_int_equal(rec.n, 1);
  assert_int_equal(cap_count(), 2);
  lines l = read_lines(path);
  assert_int_equal(l.n, 1);
  assert_str_field(l.j[0], "message", "one");
  lines_free(&l);

  assert_int_equal(trail_sink_remove(rid), TRAIL_ENOSINK);
  assert_int_equal(trail_sink_remove(fid), TRAIL_ENOSINK);
  assert_int_equal(trail_sink_remove(123456), TRAIL_ENOSINK);
  assert_int_equal(trail_sink_remove(-1), TRAIL_ENOSINK);
  assert_int_equal(trail_sink_remove(INT_MIN), TRAIL_ENOSINK);

  /* The last sink removed: nothing takes any level. */
  assert_int_equal(trail_sink_remove(cap.sink_id), 0);
  assert_false(trail_enabled(NULL, TRAIL_LEVEL_FATAL));
  trail_fatal(NULL, "three");
  assert_int_equal(cap_count(), 2);
}

static int evaluations;
static int64_t side_effect(void) {
  evaluations++;
  return 1;
}

/*
 * With every sink cleared nothing is written or counted, arguments are not
 * evaluated, nothing crashes; a sink added afterwards works again.
 */
static void test_sinks_clear(void **state) {
  (void)state;
  assert_int_equal(trail_levels_set("trace", NULL), 0);
  cap_start(TRAIL_LEVEL_TRACE);
  trail_counters_reset();
  trail_sinks_clear();
  trail_sinks_clear(); /* twice is fine */
  for (int l = TRAIL_LEVEL_TRACE; l <= TRAIL_LEVEL_FATAL; l++)
    assert_false(trail_enabled(NULL, (trail_level)l));
  evaluations = 0;
  log_every_level();
  trail_fatal(NULL, "x", TRAIL_INT("n", side_effect()));
  trail_errorf(NULL, "x %d", (int)side_effect());
  trail_logf(NULL, TRAIL_LEVEL_FATAL, "direct %d", 1);
  assert_int_equal(evaluations, 0);
  assert_int_equal(cap_count(), 0);
  trail_counters c;
  trail_counters_get(&c);
  for (int l = 0; l < TRAIL_LEVEL_COUNT; l++)
    assert_int_equal(c.events[l], 0);
  assert_int_equal(c.bytes, 0);
  assert_int_equal(c.write_errors, 0);

  cap.sink_id = trail_sink_add_callback(cap_sink, NULL, TRAIL_LEVEL_TRACE);
  assert_true(cap.sink_id >= 0);
  trail_info(NULL, "back");
  assert_int_equal(cap_count(), 1);
  json_t *j = cap_json(0);
  assert_str_field(j, "message", "back");
  json_decref(j);
}

/* trail_output_set("stdout") and ("stderr") replace every sink by fd 1 / 2. */
static void test_output_set_std(void **state) {
  (void)state;
  static const struct {
    const char *spec;
    int fd;
  } cases[] = {{"stdout", STDOUT_FILENO}, {"stderr", STDERR_FILENO}};
  for (size_t k = 0; k < 2; k++) {
    char path[256];
    tmp_path(path, sizeof path, cases[k].spec);
    cap_start(TRAIL_LEVEL_TRACE);
    trail_config_error err;
    redirect r = redirect_begin(cases[k].fd, path);
    int rc = trail_output_set(cases[k].spec, &err);
    trail_info(NULL, cases[k].spec, TRAIL_INT("k", k));
    trail_debug(NULL, "below info");
    redirect_end(r);
    assert_int_equal(rc, 0);
    assert_int_equal(cap_count(), 0); /* the capture sink was replaced */
    lines l = read_lines(path);
    assert_int_equal(l.n, 1);
    assert_str_field(l.j[0], "message", cases[k].spec);
    assert_int_equal(json_integer_value(json_object_get(l.j[0], "k")), k);
    lines_free(&l);
    trail_shutdown();
  }
}

/* trail_output_set(path) replaces every sink by that file. */
static void test_output_set_path(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "out.log");
  cap_start(TRAIL_LEVEL_TRACE);
  trail_config_error err;
  assert_int_equal(trail_output_set(path, &err), 0);
  for (int i = 0; i < 3; i++)
    trail_warn(NULL, "to the file", TRAIL_INT("i", i));
  assert_int_equal(cap_count(), 0);
  lines l = read_lines(path);
  assert_int_equal(l.n, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_str_field(l.j[i], "level", "warn");
    assert_int_equal(json_integer_value(json_object_get(l.j[i], "i")), i);
  }
  lines_free(&l);
}

/* What a failed trail_output_set must look like: code, source, text. */
static void check_output_error(const char *spec, int want) {
  trail_config_error err;
  memset(&err, 0x55, sizeof err);
  size_t before = cap_count();
  assert_int_equal(trail_output_set(spec, &err), want);
  assert_int_equal(err.code, want);
  assert_string_equal(err.source, "trail_output_set");
  assert_non_null(memchr(err.text, '\0', sizeof err.text));
  if (spec != NULL && spec[0] != '\0' && strstr(err.text, spec) == NULL)
    fail_msg("error text does not name the path: %s", err.text);
  /* Without err the same code comes back. */
  assert_int_equal(trail_output_set(spec, NULL), want);
  /* The output is as before: the capture sink still gets the lines. */
  trail_info(NULL, "still here");
  assert_int_equal(cap_count(), before + 1);
  json_t *j = cap_json(before);
  assert_str_field(j, "message", "still here");
  json_decref(j);
}

/*
 * A path that cannot be opened: -errno, err filled and naming the path, and
 * the output unchanged. Empty and NULL specs: TRAIL_EINVAL_SPEC.
 */
static void test_output_set_errors(void **state) {
  (void)state;
  char path[256];
  cap_start(TRAIL_LEVEL_INFO);
  tmp_path(path, sizeof path, "missing-dir/app.log");
  check_output_error(path, -ENOENT);
  struct stat st;
  assert_int_equal(stat(path, &st), -1);
  check_output_error(tmpdir, -EISDIR);
  check_output_error("", TRAIL_EINVAL_SPEC);
  check_output_error(NULL, TRAIL_EINVAL_SPEC);
  if (geteuid() != 0) {
    char dir[256];
    tmp_path(dir, sizeof dir, "read-only");
    assert_int_equal(mkdir(dir, 0500), 0);
    tmp_path(path, sizeof path, "read-only/app.log");
    check_output_error(path, -EACCES);
  }
}

/*
 * -EACCES for a directory the process may not enter. Root may enter any
 * directory, so the check runs in a child that drops to an unprivileged user
 * (the exit status says which check failed; 77 when it cannot drop).
 */
static void test_output_set_eacces(void **state) {
  (void)state;
  char path[256];
  char dir[256];
  tmp_path(dir, sizeof dir, "private");
  assert_int_equal(mkdir(dir, 0700), 0);
  tmp_path(path, sizeof path, "private/app.log");
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    static recorder rec = {PTHREAD_MUTEX_INITIALIZER, 0, NULL, 0, {0}, 0};
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
      _exit(77);
    trail_sinks_clear();
    if (trail_sink_add_callback(record_sink, &rec, TRAIL_LEVEL_INFO) < 0)
      _exit(10);
    trail_config_error err;
    memset(&err, 0, sizeof err);
    if (trail_output_set(path, &err) != -EACCES)
      _exit(11);
    if (err.code != -EACCES || strstr(err.text, path) == NULL)
      _exit(12);
    if (strcmp(err.source, "trail_output_set") != 0)
      _exit(13);
    trail_info(NULL, "still here");
    if (rec.n != 1)
      _exit(14);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77)
    skip();
  assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * Rotation: lines before trail_reopen() (and between the rename and it) are
 * in the renamed file, lines after in a new file at the path; none lost. A
 * callback sink alongside sees every line.
 */
/* The flags of the descriptor this process has open on path (-1: none). */
static int fd_flags_of(const char *path) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int flags = -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char link[300], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    if (strcmp(target, path) == 0)
      flags = fcntl(atoi(e->d_name), F_GETFD);
  }
  closedir(d);
  return flags;
}

/* A file sink's descriptor is close-on-exec, before and after a reopen. */
static void test_reopen_keeps_cloexec(void **state) {
  (void)state;
  char path[256], rotated[256], real[PATH_MAX];
  tmp_path(path, sizeof path, "app.log");
  tmp_path(rotated, sizeof rotated, "app.log.1");
  cap_start(TRAIL_LEVEL_INFO);
  assert_true(trail_sink_add_file(path, TRAIL_LEVEL_INFO) >= 0);
  assert_non_null(realpath(path, real));
  int before = fd_flags_of(real);
  assert_true(before >= 0 && (before & FD_CLOEXEC));
  assert_int_equal(rename(path, rotated), 0);
  assert_int_equal(trail_reopen(), 0);
  int after = fd_flags_of(real);
  assert_true(after >= 0);
  assert_true(after & FD_CLOEXEC);
  trail_info(NULL, "after");
  lines cur = read_lines(path);
  assert_int_equal(cur.n, 1);
  lines_free(&cur);
  cap_stop();
}

static void test_reopen_after_rename(void **state) {
  (void)state;
  char path[256], rotated[256];
  tmp_path(path, sizeof path, "app.log");
  tmp_path(rotated, sizeof rotated, "app.log.1");
  cap_start(TRAIL_LEVEL_INFO);
  assert_true(trail_sink_add_file(path, TRAIL_LEVEL_INFO) >= 0);
  for (int i = 0; i < 3; i++)
    trail_info(NULL, "before", TRAIL_INT("i", i));
  struct stat st_old, st_new;
  assert_int_equal(stat(path, &st_old), 0);
  assert_int_equal(rename(path, rotated), 0);
  trail_info(NULL, "between");
  assert_int_equal(trail_reopen(), 0);
  assert_int_equal(stat(path, &st_new), 0);
  assert_true(st_new.st_ino != st_old.st_ino);
  for (int i = 0; i < 4; i++)
    trail_info(NULL, "after", TRAIL_INT("i", i));

  lines old = read_lines(rotated);
  assert_int_equal(old.n, 4);
  for (size_t i = 0; i < 3; i++) {
    assert_str_field(old.j[i], "message", "before");
    assert_int_equal(json_integer_value(json_object_get(old.j[i], "i")), i);
  }
  assert_str_field(old.j[3], "message", "between");
  lines_free(&old);
  lines cur = read_lines(path);
  assert_int_equal(cur.n, 4);
  for (size_t i = 0; i < 4; i++) {
    assert_str_field(cur.j[i], "message", "after");
    assert_int_equal(json_integer_value(json_object_get(cur.j[i], "i")), i);
  }
  lines_free(&cur);
  assert_int_equal(cap_count(), 8);
}

/*
 * A reopen that cannot create the file returns the error, and the sink keeps
 * writing to the file it had.
 */
static void test_reopen_failure_keeps_file(void **state) {
  (void)state;
  char dir[256], moved[256], path[256], moved_path[256];
  tmp_path(dir, sizeof dir, "logs");
  tmp_path(moved, sizeof moved, "logs.old");
  tmp_path(path, sizeof path, "logs/app.log");
  tmp_path(moved_path, sizeof moved_path, "logs.old/app.log");
  assert_int_equal(mkdir(dir, 0700), 0);
  trail_sinks_clear();
  assert_true(trail_sink_add_file(path, TRAIL_LEVEL_INFO) >= 0);
  trail_info(NULL, "one");
  assert_int_equal(rename(dir, moved), 0);
  assert_int_equal(trail_reopen(), -ENOENT);
  trail_info(NULL, "two");
  lines l = read_lines(moved_path);
  assert_int_equal(l.n, 2);
  assert_str_field(l.j[0], "message", "one");
  assert_str_field(l.j[1], "message", "two");
  lines_free(&l);
}

/*
 * A sink on /dev/full fails every write: each failure is counted once, and
 * the sink after it still gets every line.
 */
static void test_write_errors_counted(void **state) {
  (void)state;
  int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (full < 0)
    skip();
  cap_start(TRAIL_LEVEL_INFO);
  trail_sinks_clear(); /* /dev/full first, the capture sink after it */
  assert_true(trail_sink_add_fd(full, TRAIL_LEVEL_INFO) >= 0);
  cap.sink_id = trail_sink_add_callback(cap_sink, NULL, TRAIL_LEVEL_INFO);
  assert_true(cap.sink_id >= 0);
  trail_counters_reset();
  for (int i = 0; i < 5; i++) {
    trail_info(NULL, "to a full device", TRAIL_INT("i", i));
    trail_counters c;
    trail_counters_get(&c);
    assert_int_equal(c.write_errors, (uint64_t)i + 1);
  }
  assert_int_equal(cap_count(), 5);
  for (size_t i = 0; i < 5; i++) {
    json_t *j = cap_json(i);
    assert_int_equal(json_integer_value(json_object_get(j, "i")), i);
    json_decref(j);
  }
  trail_shutdown();
  close(full);
}

/*
 * In a child: log to a pipe whose reader is closed. Returns the exit status
 * the child should use: 0 when the writes failed and were counted, and the
 * signal state is what it was (SIG_DFL, not blocked, not pending).
 */
static int closed_pipe_child(int ignore_first) {
  int p[2];
  if (signal(SIGPIPE, ignore_first ? SIG_IGN : SIG_DFL) == SIG_ERR)
    return 20;
  if (pipe(p) != 0)
    return 21;
  trail_sinks_clear();
  if (trail_sink_add_fd(p[1], TRAIL_LEVEL_INFO) < 0)
    return 22;
  if (ignore_first && signal(SIGPIPE, SIG_DFL) == SIG_ERR)
    return 20;
  close(p[0]);
  trail_counters_reset();
  for (int i = 0; i < 3; i++)
    trail_info(NULL, "nobody reads this", TRAIL_INT("i", i));
  trail_counters c;
  trail_counters_get(&c);
  if (c.write_errors != 3)
    return 23;
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL)
    return 24;
  sigset_t set;
  if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0 || sigismember(&set, SIGPIPE))
    return 25;
  if (sigpending(&set) != 0 || sigismember(&set, SIGPIPE))
    return 26;
  return 0;
}

static void run_closed_pipe_child(int ignore_first) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(closed_pipe_child(ignore_first));
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status))
    fail_msg("the child died of signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A pipe with no reader: SIGPIPE does not kill the process, the process's
 * signal disposition and mask are untouched, and each failure is counted.
 */
static void test_closed_pipe_no_sigpipe(void **state) {
  (void)state;
  run_closed_pipe_child(0);
}

/*
 * The same when the program ignored SIGPIPE while the sink was added and
 * restored the default afterwards: the guard must follow the disposition in
 * force at the write, not the one seen when the sink was made.
 */
static void test_closed_pipe_disposition_restored(void **state) {
  (void)state;
  run_closed_pipe_child(1);
}

/*
 * A callback sink gets its user pointer, the event's level and the whole
 * line: len bytes, one "\n" at the end, the same bytes every sink gets.
 */
static void test_callback_sink(void **state) {
  (void)state;
  static recorder warn_rec = {PTHREAD_MUTEX_INITIALIZER, 0, NULL, 0, {0}, 0};
  static recorder error_rec = {PTHREAD_MUTEX_INITIALIZER, 0, NULL, 0, {0}, 0};
  cap_start(TRAIL_LEVEL_INFO);
  assert_true(
      trail_sink_add_callback(record_sink, &warn_rec, TRAIL_LEVEL_WARN) >= 0);
  assert_true(
      trail_sink_add_callback(record_sink, &error_rec, TRAIL_LEVEL_ERROR) >= 0);
  trail_info(NULL, "info only to capture");
  trail_warn(NULL, "hello", TRAIL_STR("who", "callback"));
  assert_int_equal(cap_count(), 2);
  assert_int_equal(error_rec.n, 0);
  assert_int_equal(warn_rec.n, 1);
  assert_ptr_equal(warn_rec.user_seen, &warn_rec);
  assert_int_equal(warn_rec.last_level, TRAIL_LEVEL_WARN);
  assert_int_equal(cap.lines[1].level, TRAIL_LEVEL_WARN);
  assert_int_equal(warn_rec.last_len, cap.lines[1].len);
  assert_memory_equal(warn_rec.last, cap_text(1), warn_rec.last_len);
  assert_ptr_equal(memchr(warn_rec.last, '\n', warn_rec.last_len),
                   warn_rec.last + warn_rec.last_len - 1);
  json_t *j = parse_line(warn_rec.last, warn_rec.last_len);
  assert_str_field(j, "message", "hello");
  assert_str_field(j, "who", "callback");
  assert_str_field(j, "level", "warn");
  json_decref(j);

  trail_error(NULL, "both");
  assert_int_equal(warn_rec.n, 2);
  assert_int_equal(error_rec.n, 1);
  assert_int_equal(error_rec.last_level, TRAIL_LEVEL_ERROR);
  assert_int_equal(error_rec.last_len, warn_rec.last_len);
  assert_memory_equal(error_rec.last, warn_rec.last, warn_rec.last_len);
}

/*
 * events[] counts lines by level and bytes the bytes handed to the (one)
 * sink; an event that no sink takes is not counted.
 */
static void test_counters(void **state) {
  (void)state;
  assert_int_equal(trail_levels_set("trace", NULL), 0);
  cap_start(TRAIL_LEVEL_TRACE);
  trail_counters_reset();
  for (int l = TRAIL_LEVEL_TRACE; l <= TRAIL_LEVEL_FATAL; l++)
    for (int k = 0; k <= l; k++) {
      trail_field f = TRAIL_INT("k", k);
      trail_log(NULL, (trail_level)l, "counted", &f, 1);
    }
  trail_counters c;
  trail_counters_get(&c);
  size_t bytes = 0;
  assert_int_equal(cap_count(), 21);
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    json_decref(j);
    bytes += cap.lines[i].len;
  }
  for (int l = 0; l < TRAIL_LEVEL_COUNT; l++)
    assert_int_equal(c.events[l], (uint64_t)l + 1);
  assert_int_equal(c.bytes, bytes);
  assert_int_equal(c.write_errors, 0);
  assert_int_equal(c.truncated, 0);
  assert_int_equal(c.dropped, 0);

  /* The capture sink raised to error: warn reaches nobody. */
  assert_int_equal(trail_sink_remove(cap.sink_id), 0);
  cap.sink_id = trail_sink_add_callback(cap_sink, NULL, TRAIL_LEVEL_ERROR);
  assert_true(cap.sink_id >= 0);
  trail_warn(NULL, "nobody");
  trail_counters_get(&c);
  assert_int_equal(c.events[TRAIL_LEVEL_WARN], 4);
  assert_int_equal(c.bytes, bytes);

  trail_counters_reset();
  trail_counters_get(&c);
  for (int l = 0; l < TRAIL_LEVEL_COUNT; l++)
    assert_int_equal(c.events[l], 0);
  assert_int_equal(c.bytes, 0);
  trail_counters_get(NULL); /* ignored */
}

/*
 * Invalid arguments: NULL or empty path -EINVAL, negative or closed
 * descriptor -EBADF, NULL callback -EINVAL, a level outside trace..off
 * TRAIL_EINVAL_LEVEL; nothing is added (or created) by a failed call.
 */
static void test_invalid_arguments(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "never.log");
  cap_start(TRAIL_LEVEL_INFO);

  assert_int_equal(trail_sink_add_file(NULL, TRAIL_LEVEL_INFO), -EINVAL);
  assert_int_equal(trail_sink_add_file("", TRAIL_LEVEL_INFO), -EINVAL);
  assert_int_equal(trail_sink_add_file(path, (trail_level)7),
                   TRAIL_EINVAL_LEVEL);
  assert_int_equal(trail_sink_add_file(path, (trail_level)-1),
                   TRAIL_EINVAL_LEVEL);
  struct stat st;
  assert_int_equal(stat(path, &st), -1); /* not created */

  assert_int_equal(trail_sink_add_fd(-1, TRAIL_LEVEL_INFO), -EBADF);
  assert_int_equal(trail_sink_add_fd(INT_MIN, TRAIL_LEVEL_INFO), -EBADF);
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  close(fd); /* now a number that is not open */
  assert_int_equal(trail_sink_add_fd(fd, TRAIL_LEVEL_INFO), -EBADF);
  assert_int_equal(trail_sink_add_fd(STDERR_FILENO, (trail_level)99),
                   TRAIL_EINVAL_LEVEL);
  assert_int_equal(trail_sink_add_stdout((trail_level)-3), TRAIL_EINVAL_LEVEL);
  assert_int_equal(trail_sink_add_stderr((trail_level)7), TRAIL_EINVAL_LEVEL);

  assert_int_equal(trail_sink_add_callback(NULL, NULL, TRAIL_LEVEL_INFO),
                   -EINVAL);
  assert_int_equal(trail_sink_add_callback(cap_sink, NULL, (trail_level)42),
                   TRAIL_EINVAL_LEVEL);

  /* Only the capture sink is there. */
  assert_int_equal(trail__conf_get()->nsinks, 1);
  trail_info(NULL, "only capture");
  assert_int_equal(cap_count(), 1);

  /* off is a valid minimum: such a sink takes nothing. */
  static recorder rec = {PTHREAD_MUTEX_INITIALIZER, 0, NULL, 0, {0}, 0};
  rec.n = 0;
  assert_true(trail_sink_add_callback(record_sink, &rec, TRAIL_LEVEL_OFF) >= 0);
  trail_fatal(NULL, "not for off");
  assert_int_equal(rec.n, 0);
  assert_int_equal(cap_count(), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sinks_own_levels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fd_sink_pipe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_sink_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_sink_appends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sink_remove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sinks_clear, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_set_std, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_set_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_set_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_set_eacces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_cloexec, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reopen_failure_keeps_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_errors_counted, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_closed_pipe_no_sigpipe, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_closed_pipe_disposition_restored,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_callback_sink, setup, teardown),
      cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
