/*
 * The status of a request libmicrohttpd ended, for trail_http_end(), which
 * puts a status reported through trail first. Shared by the two adapters on
 * MHD (adapters/mhd and adapters/ulfius, which runs on MHD), so that the same
 * end gives the same access line on both. MHD knows what it queued (the
 * application's response, or one of its own such as 400 or 431 when it
 * answered before the application ran), and toe says whether it went out:
 * - completed: what MHD queued;
 * - daemon shutdown: 503, the service stopped first;
 * - otherwise, with no response from the application: 500 when the
 *   application refused the request (MHD's handler said MHD_NO), else MHD's
 *   own error reply if it made one, 408 on a timeout;
 * - otherwise the client left (or its connection broke) first: 499, and the
 *   request is marked so.
 * A private header of the adapters, not installed.
 */
#ifndef TRAIL_MHD_END_STATUS_H
#define TRAIL_MHD_END_STATUS_H

#include <microhttpd.h>
#include <trail/http.h>

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

#endif /* TRAIL_MHD_END_STATUS_H */
