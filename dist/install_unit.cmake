# Run by `cmake --install` and cpack (install(SCRIPT)): writes the systemd
# unit with the paths of the prefix it is being installed to, which is
# chosen then (--prefix, or cpack's /usr), not when the tree was configured.
# GNUInstallDirs' rule for the configuration directory: /etc under /usr.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(SYSCONFDIR /etc)
else()
  set(SYSCONFDIR "${prefix}/etc")
endif()
set(BINDIR "${prefix}/bin")
set(DOCDIR "${prefix}/share/doc/sessiond")
set(unit "$ENV{DESTDIR}${prefix}/lib/systemd/system/sessiond.service")
message(STATUS "Installing: ${unit}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/sessiond.service" "${unit}" @ONLY)
