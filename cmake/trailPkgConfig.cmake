# Runs at install time (install(SCRIPT) in CMakeLists.txt) and writes
# trail.pc for the prefix being installed to. CMAKE_INSTALL_PREFIX here is
# the install-time prefix, so `cmake --install build --prefix DIR` gives a
# trail.pc that points into DIR. The TRAIL_PC_* variables come from the
# install(CODE) just before this script.
set(TRAIL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(_dir LIBDIR INCLUDEDIR)
  # GNUInstallDirs gives relative directories unless the user set absolute
  # ones; relative ones are written against ${prefix}, as pkg-config expects.
  if(NOT IS_ABSOLUTE "${TRAIL_PC_${_dir}}")
    set(TRAIL_PC_${_dir} "\${prefix}/${TRAIL_PC_${_dir}}")
  endif()
endforeach()
configure_file("${TRAIL_PC_IN}" "${TRAIL_PC_OUT}" @ONLY)
