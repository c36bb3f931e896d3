# CMake package configuration for libuclock, for find_package(uclock).
#
# Installed as <libdir>/cmake/uclock/uclockConfig.cmake; every path is
# computed from this file's location, so the installed tree can be moved
# (or staged under DESTDIR) and still be found through CMAKE_PREFIX_PATH.
#
# Imported targets:
#   uclock::uclock         the shared library (libuclock.so.0)
#   uclock::uclock_static  the static archive (libuclock.a), if installed
# Both carry the include directory and link Threads::Threads.
#
# Also sets uclock_INCLUDE_DIRS and uclock_LIBRARIES (= uclock::uclock).

# Before the policy push: on failure find_dependency() returns from this file
# (with uclock_FOUND set to FALSE), which must not leave a policy scope open.
include(CMakeFindDependencyMacro)
find_dependency(Threads)

cmake_policy(PUSH)
cmake_policy(VERSION 3.1...3.28)

# <libdir>/cmake/uclock -> <libdir>
get_filename_component(_uclock_libdir "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

# The headers are in <prefix>/include; <libdir> is <prefix>/lib, or one level
# deeper for multiarch/lib64-style layouts (<prefix>/lib/x86_64-linux-gnu).
set(_uclock_includedir "")
set(_uclock_dir "${_uclock_libdir}")
foreach(_uclock_up 1 2 3)
  get_filename_component(_uclock_dir "${_uclock_dir}" DIRECTORY)
  if(EXISTS "${_uclock_dir}/include/uclock.h")
    set(_uclock_includedir "${_uclock_dir}/include")
    break()
  endif()
endforeach()

if(_uclock_includedir STREQUAL "")
  set(uclock_FOUND FALSE)
  set(uclock_NOT_FOUND_MESSAGE
      "uclock.h not found in an include/ directory above ${_uclock_libdir}")
elseif(NOT EXISTS "${_uclock_libdir}/libuclock.so.0")
  set(uclock_FOUND FALSE)
  set(uclock_NOT_FOUND_MESSAGE
      "${_uclock_libdir}/libuclock.so.0 not found")
else()
  # IMPORTED targets are scoped to a directory: a second find_package(uclock)
  # in the same directory (or below) must not define them again.
  if(NOT TARGET uclock::uclock)
    add_library(uclock::uclock SHARED IMPORTED)
    set_target_properties(uclock::uclock PROPERTIES
      IMPORTED_LOCATION "${_uclock_libdir}/libuclock.so.0"
      IMPORTED_SONAME "libuclock.so.0"
      INTERFACE_INCLUDE_DIRECTORIES "${_uclock_includedir}"
      INTERFACE_LINK_LIBRARIES "Threads::Threads")
  endif()

  if(NOT TARGET uclock::uclock_static
     AND EXISTS "${_uclock_libdir}/libuclock.a")
    add_library(uclock::uclock_static STATIC IMPORTED)
    set_target_properties(uclock::uclock_static PROPERTIES
      IMPORTED_LOCATION "${_uclock_libdir}/libuclock.a"
      IMPORTED_LINK_INTERFACE_LANGUAGES "C"
      INTERFACE_INCLUDE_DIRECTORIES "${_uclock_includedir}"
      INTERFACE_LINK_LIBRARIES "Threads::Threads")
  endif()

  set(uclock_INCLUDE_DIRS "${_uclock_includedir}")
  set(uclock_LIBRARIES uclock::uclock)
endif()

unset(_uclock_libdir)
unset(_uclock_includedir)
unset(_uclock_dir)
unset(_uclock_up)

cmake_policy(POP)
