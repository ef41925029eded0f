# Runs at install time (install(SCRIPT), from trail_install_pc() in
# CMakeLists.txt) and writes a .pc file (trail.pc, trail-static.pc, an
# adapter's) for the prefix being installed to. CMAKE_INSTALL_PREFIX here is
# the install-time prefix, so `cmake --install build --prefix DIR` gives a
# .pc file that points into DIR (and cpack, which installs with DESTDIR,
# one for /usr). The TRAIL_PC_* variables come from the install(CODE) just
# before this script.
set(TRAIL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(_dir LIBDIR INCLUDEDIR)
  # GNUInstallDirs gives relative directories unless the user set absolute
  # ones; relative ones are written against ${prefix}, as pkg-config expects.
  if(NOT IS_ABSOLUTE "${TRAIL_PC_${_dir}}")
    set(TRAIL_PC_${_dir} "\${prefix}/${TRAIL_PC_${_dir}}")
  endif()
endforeach()
configure_file("${TRAIL_PC_IN}" "${TRAIL_PC_OUT}" @ONLY)
