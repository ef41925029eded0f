/*
 * Test harness for services behind nginx: starts a real nginx as a child
 * process, in the foreground (daemon off, no master process), on a loopback
 * port of its own, with a configuration generated in a fresh temporary
 * directory (its pid file, logs and temporary paths all in there), and
 * stops it and removes the directory afterwards.
 *
 *   nginx_require();                       // skips the test (77) without nginx
 *   nginx ng;
 *   nginx_start_fastcgi(&ng, service_port); // location / -> fastcgi_pass
 *   ... HTTP to 127.0.0.1:ng.port ...
 *   nginx_stop(&ng);
 *
 * Readiness without sleeping: nginx writes its pid file once its listening
 * socket is open, so the harness waits (inotify) for the pid file to be
 * closed after writing; nginx's standard output is a pipe whose end of file
 * says nginx exited instead. The nginx binary is $TRAIL_NGINX, else nginx
 * in PATH, /usr/sbin or /usr/local/sbin.
 *
 * Header-only, like http_harness.h; Linux (inotify).
 */
#ifndef TRAIL_TEST_NGINX_HARNESS_H
#define TRAIL_TEST_NGINX_HARNESS_H

#include "support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A bound on a broken start, not a timing assumption. */
#define NGINX_START_BOUND_MS 120000

typedef struct nginx {
  pid_t pid;
  int port;      /* nginx's HTTP port on 127.0.0.1 */
  int out_fd;    /* read end of nginx's stdout: end of file when it exits */
  char dir[256]; /* the temporary directory */
} nginx;

/* The nginx program, or NULL when there is none. */
static inline const char *nginx_binary(void) {
  static char found[1024];
  const char *env = getenv("TRAIL_NGINX");
  if (env != NULL && env[0] != '\0')
    return access(env, X_OK) == 0 ? env : NULL;
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin",
           path ? path : "/usr/bin:/bin");
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d != NULL;
       d = strtok_r(NULL, ":", &save)) {
    snprintf(found, sizeof found, "%s/nginx", d);
    if (access(found, X_OK) == 0)
      return found;
  }
  return NULL;
}

/* Skips the whole test program when nginx is missing. */
static inline void nginx_require(void) {
  if (nginx_binary() == NULL) {
    fprintf(stderr, "skipped: nginx not found\n");
    exit(77);
  }
}

/* A loopback port free right now: bind port 0, read it back, release. */
static inline int nginx_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* nginx's error log, on stderr: what a failed start or test needs seen. */
static inline void nginx_dump_log(const nginx *n) {
  char path[512];
  snprintf(path, sizeof path, "%s/error.log", n->dir);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  char line[1024];
  while (fgets(line, sizeof line, f) != NULL)
    fprintf(stderr, "nginx: %s", line);
  fclose(f);
}

static inline void nginx_write_config(const nginx *n, const char *location) {
  char path[512];
  snprintf(path, sizeof path, "%s/nginx.conf", n->dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  const char *d = n->dir;
  fprintf(f,
          "daemon off;\nmaster_process off;\nworker_processes 1;\n"
          "pid %s/nginx.pid;\nerror_log %s/error.log notice;\n"
          "events { worker_connections 1024; }\n"
          "http {\n  access_log off;\n"
          "  client_body_temp_path %s/body;\n"
          "  fastcgi_temp_path %s/fastcgi;\n  proxy_temp_path %s/proxy;\n"
          "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
          "  server {\n    listen 127.0.0.1:%d;\n"
          "    location / {\n%s\n    }\n  }\n}\n",
          d, d, d, d, d, d, d, n->port, location);
  assert_int_equal(fclose(f), 0);
}

/*
 * Waits until nginx has closed its pid file after writing it (its socket
 * is listening then) or has exited; returns whether it is up.
 */
static inline int nginx_wait_ready(nginx *n, int ino) {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  char pidfile[512];
  snprintf(pidfile, sizeof pidfile, "%s/nginx.pid", n->dir);
  for (;;) {
    struct stat st;
    if (stat(pidfile, &st) == 0 && st.st_size > 0)
      return 1;
    struct pollfd p[2] = {{ino, POLLIN, 0}, {n->out_fd, POLLIN, 0}};
    if (poll(p, 2, NGINX_START_BOUND_MS) <= 0)
      return 0;
    if (p[1].revents != 0) {
      char c;
      if (read(n->out_fd, &c, 1) <= 0)
        return 0; /* nginx exited */
    }
    if (p[0].revents != 0 && read(ino, buf, sizeof buf) < 0 && errno != EINTR &&
        errno != EAGAIN)
      return 0;
  }
}

/*
 * Starts nginx on a free loopback port, serving location / with the given
 * directives (e.g. "include fastcgi_params; fastcgi_pass ...;"). Fails the
 * test when nginx does not come up, with its error log on stderr.
 */
static inline void nginx_start(nginx *n, const char *location) {
  const char *bin = nginx_binary();
  if (bin == NULL) {
    fprintf(stderr, "skipped: nginx not found\n");
    exit(77);
  }
  memset(n, 0, sizeof *n);
  const char *tmp = getenv("TMPDIR");
  snprintf(n->dir, sizeof n->dir, "%s/trail-nginx-XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  assert_non_null(mkdtemp(n->dir));
  n->port = nginx_free_port();
  nginx_write_config(n, location);
  int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  assert_true(ino >= 0);
  assert_true(inotify_add_watch(ino, n->dir, IN_CLOSE_WRITE | IN_MOVED_TO) >=
              0);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    char conf[512], log[512];
    snprintf(conf, sizeof conf, "%s/nginx.conf", n->dir);
    snprintf(log, sizeof log, "%s/error.log", n->dir);
    execl(bin, bin, "-p", n->dir, "-e", log, "-c", conf, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  n->pid = pid;
  n->out_fd = fds[0];
  int up = nginx_wait_ready(n, ino);
  close(ino);
  if (!up) {
    nginx_dump_log(n);
    fail_msg("nginx did not start (binary %s, directory %s)", bin, n->dir);
  }
}

/* The FastCGI location nginx users write: the stock params, then the pass. */
static inline void nginx_start_fastcgi(nginx *n, int fastcgi_port) {
  char location[512];
  const char *params = "/etc/nginx/fastcgi_params";
  if (access(params, R_OK) == 0)
    snprintf(location, sizeof location,
             "      include %s;\n      fastcgi_pass 127.0.0.1:%d;", params,
             fastcgi_port);
  else /* the params trail's adapter reads, for an nginx without the file */
    snprintf(location, sizeof location,
             "      fastcgi_param REQUEST_METHOD $request_method;\n"
             "      fastcgi_param REQUEST_URI $request_uri;\n"
             "      fastcgi_param QUERY_STRING $query_string;\n"
             "      fastcgi_param CONTENT_TYPE $content_type;\n"
             "      fastcgi_param CONTENT_LENGTH $content_length;\n"
             "      fastcgi_param REMOTE_ADDR $remote_addr;\n"
             "      fastcgi_pass 127.0.0.1:%d;",
             fastcgi_port);
  nginx_start(n, location);
}

/* Removes path, a directory with what it holds (nginx's files, its
 * temporary directories), or a file. */
static inline void nginx_rm_tree(const char *path) {
  DIR *d = opendir(path);
  if (d == NULL) {
    remove(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char sub[1024];
    size_t pl = strlen(path), nl = strlen(e->d_name);
    if (pl + nl + 2 > sizeof sub)
      continue;
    memcpy(sub, path, pl);
    sub[pl] = '/';
    memcpy(sub + pl + 1, e->d_name, nl + 1);
    nginx_rm_tree(sub);
  }
  closedir(d);
  rmdir(path);
}

/*
 * Stops nginx (SIGTERM: its fast shutdown; every request the test sent has
 * been answered by then), waits for it, removes the directory. Idempotent.
 */
static inline void nginx_stop(nginx *n) {
  if (n->pid > 0) {
    kill(n->pid, SIGTERM);
    int status = 0;
    waitpid(n->pid, &status, 0);
    n->pid = 0;
    close(n->out_fd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      nginx_dump_log(n);
      fprintf(stderr, "nginx ended with status 0x%x\n", status);
    }
  }
  if (n->dir[0] != '\0') {
    nginx_rm_tree(n->dir);
    n->dir[0] = '\0';
  }
}

#endif /* TRAIL_TEST_NGINX_HARNESS_H */
