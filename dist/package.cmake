# `cpack -G DEB` in a build tree: the Debian package of sessiond, under
# /usr whatever prefix the tree was configured with.  dpkg-shlibdeps
# computes the library dependencies from the binary; the maintainer
# scripts (dist/debian/) make the sessiond user, /etc/sessiond/sessiond.env
# and /var/lib/sessiond, and leave the unit installed but not started.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sessiond)
set(CPACK_PACKAGE_VENDOR "sessiond developers")
set(CPACK_PACKAGE_CONTACT "sessiond developers <sessiond-dev@lists.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "task sessions in MongoDB or SQLite kept in step with task events on Kafka")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "sessiond consumes task lifecycle events from Kafka, keeps one session per task
in MongoDB (or SQLite on a single node) and publishes every session change back
to Kafka, correct under duplicates, reordering, crashes and outages, with
exactly-once delivery through Kafka transactions.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
set(CPACK_STRIP_FILES ON)
# The install runs with DESTDIR and prefix /usr, so the unit written at
# install time (dist/install_unit.cmake) names /usr/bin/sessiond.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/dist/debian/postinst
    ${PROJECT_SOURCE_DIR}/dist/debian/prerm
    ${PROJECT_SOURCE_DIR}/dist/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
