/*
 * What the two adapters on libmicrohttpd (adapters/mhd and adapters/ulfius,
 * which runs on MHD) share, so that the same request gives the same access
 * line on both. A private header of the adapters, not installed.
 *
 * trail__mhd_end_status(): the status of a request MHD ended, for
 * trail_http_end(), which puts a status reported through trail first. MHD
 * knows what it queued (the application's response, or one of its own such
 * as 400 or 431 when it answered before the application ran), and toe says
 * whether it went out:
 * - completed: what MHD queued;
 * - daemon shutdown: 503, the service stopped first;
 * - otherwise, with no response from the application: 500 when the
 *   application refused the request (MHD's handler said MHD_NO), else MHD's
 *   own error reply if it made one, 408 on a timeout;
 * - otherwise the client left (or its connection broke) first: 499, and the
 *   request is marked so.
 *
 * trail__mhd_end_bytes(): the body bytes for trail_http_end(): the length of
 * the body queued, when MHD says the response went out (completed); 0 for a
 * request that ended any other way, since MHD does not say how much of it
 * reached the client, if any.
 *
 * trail__mhd_read_headers(): every request header, in order, repeated ones
 * included, from MHD (with their lengths where MHD gives them, 0.9.64 on),
 * then trail_http_headers_done().
 */
#ifndef TRAIL_MHD_COMMON_H
#define TRAIL_MHD_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <microhttpd.h>
#include <trail/http.h>
#include <trail/mhd.h> /* TRAIL_MHD_RESULT */

static inline int trail__mhd_end_status(trail_http_request *http,
                                        struct MHD_Connection *conn,
                                        enum MHD_RequestTerminationCode toe,
                                        int answered, int refused) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
  unsigned int sent = ci ? ci->http_status : 0;
  if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
    return sent != 0 ? (int)sent : 500;
  if (toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
    return 503;
  if (!answered) {
    if (refused)
      return 500;
    if (sent != 0)
      return (int)sent;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
      return 408;
  }
  trail_http_client_gone(http);
  return TRAIL_HTTP_CLIENT_GONE;
}

static inline uint64_t trail__mhd_end_bytes(enum MHD_RequestTerminationCode toe,
                                            uint64_t queued) {
  return toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? queued : 0;
}

/*
 * The four bytes of an IPv4 address as inet_ntop() writes them ("a.b.c.d",
 * each in decimal without leading zeros) into out, which has room for 16
 * bytes; returns the length. Done here because inet_ntop() goes through
 * sprintf(): a tenth of what the middleware costs a request, for the one
 * family every request of a loopback or IPv4 service has.
 */
static inline size_t trail__ipv4_text(const unsigned char b[4], char *out) {
  size_t n = 0;
  for (int i = 0; i < 4; i++) {
    unsigned int v = b[i];
    if (i > 0)
      out[n++] = '.';
    if (v >= 100)
      out[n++] = (char)('0' + v / 100);
    if (v >= 10)
      out[n++] = (char)('0' + v / 10 % 10);
    out[n++] = (char)('0' + v % 10);
  }
  out[n] = '\0';
  return n;
}

/* The client's address as text into buf ("" when MHD knows none). */
static inline void trail__mhd_remote_addr(struct MHD_Connection *conn,
                                          char *buf, size_t size) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  buf[0] = '\0';
  if (ci == NULL || ci->client_addr == NULL)
    return;
  /* Copies, not casts: MHD's sockaddr need not be aligned for the family's
   * own struct. */
  if (ci->client_addr->sa_family == AF_INET && size >= INET_ADDRSTRLEN) {
    struct sockaddr_in in;
    memcpy(&in, ci->client_addr, sizeof in);
    trail__ipv4_text((const unsigned char *)&in.sin_addr, buf);
  } else if (ci->client_addr->sa_family == AF_INET6) {
    struct sockaddr_in6 in6;
    memcpy(&in6, ci->client_addr, sizeof in6);
    if (inet_ntop(AF_INET6, &in6.sin6_addr, buf, (socklen_t)size) == NULL)
      buf[0] = '\0';
  }
}

#if MHD_VERSION >= 0x00096400
static inline TRAIL_MHD_RESULT
trail__mhd_feed_header(void *cls, enum MHD_ValueKind kind, const char *key,
                       size_t key_size, const char *value, size_t value_size) {
  (void)kind;
  trail_http_header(cls, key, key_size, value, value ? value_size : 0);
  return MHD_YES;
}
#else
static inline TRAIL_MHD_RESULT trail__mhd_feed_header(void *cls,
                                                      enum MHD_ValueKind kind,
                                                      const char *key,
                                                      const char *value) {
  (void)kind;
  trail_http_header(cls, key, TRAIL_NTS, value, TRAIL_NTS);
  return MHD_YES;
}
#endif

static inline void trail__mhd_read_headers(struct MHD_Connection *conn,
                                           trail_http_request *http) {
#if MHD_VERSION >= 0x00096400
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, trail__mhd_feed_header,
                              http);
#else
  MHD_get_connection_values(conn, MHD_HEADER_KIND, trail__mhd_feed_header,
                            http);
#endif
  trail_http_headers_done(http);
}

#endif /* TRAIL_MHD_COMMON_H */
