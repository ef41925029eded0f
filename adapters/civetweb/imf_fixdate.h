/*
 * The Date header's value for now, in RFC 9110's IMF-fixdate ("Sun, 06 Nov
 * 1994 08:49:37 GMT"), with the English names the format requires whatever
 * the process's locale. civetweb writes its own Date only through its
 * header API, which trail_civetweb_send() does not use. Private to the
 * civetweb adapter; bench/http_civetweb.c uses it too, so that its plain
 * mode writes the same head.
 */
#ifndef TRAIL_CIVETWEB_IMF_FIXDATE_H
#define TRAIL_CIVETWEB_IMF_FIXDATE_H

#include <stdio.h>
#include <string.h>
#include <time.h>

static inline void trail__imf_fixdate(char *out, size_t cap) {
  static const char *const days[7] = {"Sun", "Mon", "Tue", "Wed",
                                      "Thu", "Fri", "Sat"};
  static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm) == NULL)
    memset(&tm, 0, sizeof tm);
  snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT",
           days[(unsigned)tm.tm_wday % 7u], tm.tm_mday,
           months[(unsigned)tm.tm_mon % 12u], tm.tm_year + 1900, tm.tm_hour,
           tm.tm_min, tm.tm_sec);
}

#endif /* TRAIL_CIVETWEB_IMF_FIXDATE_H */
