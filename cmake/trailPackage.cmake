# The Debian packages, made by CPack from the install components of
# CMakeLists.txt and adapters/CMakeLists.txt (scripts/package runs it all):
#
#   cmake -S . -B build-package -DCMAKE_BUILD_TYPE=Release \
#         -DCMAKE_INSTALL_PREFIX=/usr -DTRAIL_BUILD_TESTS=OFF
#   cmake --build build-package
#   (cd build-package && cpack -G DEB)      # build-package/packages/*.deb
#
#   libtrail0           libtrail.so.0*
#   libtrail-dev        headers, libtrail.so, libtrail.a, trail.pc,
#                       trail-static.pc, the CMake package
#   libtrail-NAME0      libtrail-NAME.so.0*, for each adapter built
#   libtrail-NAME-dev   trail/NAME.h, libtrail-NAME.so and .a, trail-NAME.pc,
#                       trail-NAME-static.pc, trail_NAMETargets*.cmake
#   trail-tools         trail-pretty and its man page
#
# The runtime packages' dependencies come from dpkg-shlibdeps; libtrail0
# ships a shlibs file, so that what is built against it depends on it. The
# -dev packages depend on their runtime package of the same version and on
# the -dev packages of what they link. Each package has the project's
# licence as /usr/share/doc/PACKAGE/copyright.
#
# The packages install under /usr whatever CMAKE_INSTALL_PREFIX says;
# configure with -DCMAKE_INSTALL_PREFIX=/usr so that GNUInstallDirs picks
# Debian's multiarch library directory (lib/x86_64-linux-gnu).

if(CMAKE_VERSION VERSION_LESS 3.20)
  # CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS, without which
  # dpkg-shlibdeps cannot find libtrail.so.0 for the adapters' packages.
  message(STATUS "trail: the Debian packages need CMake 3.20 or later: cpack is not configured")
  return()
endif()

set(TRAIL_PACKAGE_MAINTAINER "The trail developers <dev@trail.invalid>"
    CACHE STRING "Maintainer field of the Debian packages")
set(TRAIL_PACKAGE_RELEASE 1 CACHE STRING
    "Debian revision of the packages (VERSION-RELEASE)")

# The Debian -dev packages of what each adapter links (its dev package
# depends on them). libcurl: Debian's GnuTLS flavour or the OpenSSL one,
# which cannot be installed together; the first is what libulfius-dev needs.
set(_trail_deb_mhd "libmicrohttpd-dev")
set(_trail_deb_civetweb "libcivetweb-dev")
set(_trail_deb_evhttp "libevent-dev")
set(_trail_deb_fcgi "libfcgi-dev")
set(_trail_deb_curl "libcurl4-gnutls-dev | libcurl4-openssl-dev")
set(_trail_deb_journald "libsystemd-dev")
set(_trail_deb_ulfius "libulfius-dev, libmicrohttpd-dev")

# Values are written to CPackConfig.cmake as they are here (escaped).
set(CPACK_VERBATIM_VARIABLES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME trail)
set(CPACK_PACKAGE_VENDOR "the trail developers")
set(CPACK_PACKAGE_CONTACT "${TRAIL_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
# CPackDeb puts CPACK_PACKAGE_DESCRIPTION_SUMMARY (by default the project's
# description) before each package's own synopsis (trail_deb_component
# below), unless it is CPack's placeholder, which no package then shows.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
# `make package_source`: the tree without builds and version control.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\.git/" "/build[^/]*/" "/\\.cache/")

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${TRAIL_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TRAIL_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# dpkg-shlibdeps must find libtrail.so.0, which the adapters need and no
# installed package has: it is in the build directory.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${PROJECT_BINARY_DIR}")

set(_trail_deb_version "${PROJECT_VERSION}-${TRAIL_PACKAGE_RELEASE}")
set(_trail_so "${PROJECT_VERSION_MAJOR}")
set(CPACK_COMPONENTS_ALL "")

# _trail_deb_wrap(VAR TEXT): TEXT wrapped at 72 columns, for the extended
# description (CPack indents each line by one space).
function(_trail_deb_wrap var text)
  string(REPLACE " " ";" _words "${text}")
  set(_out "")
  set(_line "")
  foreach(_w IN LISTS _words)
    string(LENGTH "${_line} ${_w}" _len)
    if(_line STREQUAL "")
      set(_line "${_w}")
    elseif(_len GREATER 72)
      string(APPEND _out "${_line}\n")
      set(_line "${_w}")
    else()
      string(APPEND _line " ${_w}")
    endif()
  endforeach()
  set(${var} "${_out}${_line}" PARENT_SCOPE)
endfunction()

# trail_deb_component(COMPONENT PACKAGE SECTION SHLIBDEPS DEPENDS SYNOPSIS
#                     TEXT): one component's package, with the licence as
# its copyright file. The description is SYNOPSIS, then the project's
# description and TEXT.
function(trail_deb_component comp pkg section shlibdeps depends synopsis text)
  string(TOUPPER "${comp}" _up)
  set(CPACK_COMPONENTS_ALL ${CPACK_COMPONENTS_ALL} ${comp} PARENT_SCOPE)
  set(CPACK_DEBIAN_${_up}_PACKAGE_NAME "${pkg}" PARENT_SCOPE)
  set(CPACK_DEBIAN_${_up}_PACKAGE_SECTION "${section}" PARENT_SCOPE)
  set(CPACK_DEBIAN_${_up}_PACKAGE_SHLIBDEPS ${shlibdeps} PARENT_SCOPE)
  set(CPACK_DEBIAN_${_up}_PACKAGE_DEPENDS "${depends}" PARENT_SCOPE)
  _trail_deb_wrap(_body "${PROJECT_DESCRIPTION}. ${_trail_about} ${text}")
  set(CPACK_DEBIAN_${_up}_DESCRIPTION "${synopsis}\n${_body}" PARENT_SCOPE)
  install(FILES "${PROJECT_SOURCE_DIR}/LICENSE"
          DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg}"
          RENAME copyright COMPONENT ${comp} EXCLUDE_FROM_ALL)
endfunction()

set(_trail_about "trail writes each event as one JSON object on one line, and \
every line carries the request it belongs to (request_id, user_id, trace_id, \
span_id), for Promtail, Loki and Grafana.")

trail_deb_component(runtime "libtrail${_trail_so}" libs ON ""
  "trail, structured JSON logs for C services - shared library"
  "This package has the shared library libtrail.so.${_trail_so}.")
trail_deb_component(devel libtrail-dev libdevel OFF
  "libtrail${_trail_so} (= ${_trail_deb_version}), libjansson-dev, uuid-dev, pkgconf | pkg-config"
  "trail, structured JSON logs for C services - development files"
  "This package has the headers, the static library libtrail.a, trail.pc, \
trail-static.pc and the CMake package (find_package(trail), trail::trail).")
trail_deb_component(tools trail-tools utils ON ""
  "trail-pretty, a reader of trail's JSON log lines for people"
  "This package has trail-pretty, which shows trail's lines with coloured \
levels and shortened ids, and filters them by level, request, trace and logger.")

get_property(_trail_built GLOBAL PROPERTY TRAIL_BUILT_ADAPTERS)
foreach(_name IN LISTS _trail_built)
  if(NOT DEFINED _trail_deb_${_name})
    message(FATAL_ERROR "cmake/trailPackage.cmake: no Debian -dev package "
            "named for the adapter ${_name} (set _trail_deb_${_name})")
  endif()
  trail_deb_component(${_name}_runtime "libtrail-${_name}${_trail_so}" libs ON
    "libtrail${_trail_so} (>= ${PROJECT_VERSION})"
    "trail, structured JSON logs for C services - ${_name} adapter"
    "This package has the shared library libtrail-${_name}.so.${_trail_so}, \
trail's adapter for ${_name}.")
  trail_deb_component(${_name}_devel "libtrail-${_name}-dev" libdevel OFF
    "libtrail-${_name}${_trail_so} (= ${_trail_deb_version}), libtrail-dev (= ${_trail_deb_version}), ${_trail_deb_${_name}}"
    "trail, structured JSON logs for C services - ${_name} adapter, dev files"
    "This package has trail/${_name}.h, libtrail-${_name}.a, trail-${_name}.pc, \
trail-${_name}-static.pc and the CMake targets trail::trail_${_name} and \
trail::trail_${_name}_static.")
endforeach()

include(CPack)
