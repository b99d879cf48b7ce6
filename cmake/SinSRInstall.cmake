# Exported package: find_package(SinSR) gives SinSR::abi, SinSR::sdk, SinSR::host and
# sinsr_add_plugin() / sinsr_add_model() to out-of-tree plugins.
include(CMakePackageConfigHelpers)
set(SINSR_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/SinSR)
install(TARGETS sinsr_abi sinsr_sdk EXPORT SinSRTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT SinSRTargets NAMESPACE SinSR:: DESTINATION ${SINSR_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/SinSRConfig.cmake.in
  ${PROJECT_BINARY_DIR}/SinSRConfig.cmake INSTALL_DESTINATION ${SINSR_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/SinSRConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/SinSRConfig.cmake ${PROJECT_BINARY_DIR}/SinSRConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/SinSRPlugin.cmake ${PROJECT_SOURCE_DIR}/cmake/sinsr_plugin.map
  ${PROJECT_SOURCE_DIR}/cmake/SinSRModel.cmake ${PROJECT_SOURCE_DIR}/cmake/model_plugin.c.in
  DESTINATION ${SINSR_CMAKE_DIR})
# The same package from the build tree (CMAKE_PREFIX_PATH=<build>): the targets exported in place
# and the helper files copied beside SinSRConfig.cmake, so an out-of-tree plugin needs no install.
export(EXPORT SinSRTargets NAMESPACE SinSR:: FILE ${PROJECT_BINARY_DIR}/SinSRTargets.cmake)
foreach(f SinSRPlugin.cmake sinsr_plugin.map SinSRModel.cmake model_plugin.c.in)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/${f} ${PROJECT_BINARY_DIR}/${f} COPYONLY)
endforeach()
