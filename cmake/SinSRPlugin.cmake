# sinsr_add_plugin(<target> SOURCES <src>... [LIBRARIES <lib>...] [NO_SDK] [TEST])
# NO_SDK: a plugin that only needs the C headers. TEST: built into the test-plugin folder, not installed.
#
# Builds one plugin library: a MODULE whose only exported symbol is sinsr_plugin_entry
# (LibTorch leaks weak template symbols through -fvisibility=hidden alone, so a version
# script is used). Shipped with the installed package for out-of-tree plugins.
set(_SINSR_PLUGIN_MAP ${CMAKE_CURRENT_LIST_DIR}/sinsr_plugin.map)

function(sinsr_add_plugin target)
  cmake_parse_arguments(P "NO_SDK;TEST" "" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden)
  if(P_NO_SDK)
    target_link_libraries(${target} PRIVATE SinSR::abi ${P_LIBRARIES})
  else()
    target_link_libraries(${target} PRIVATE SinSR::sdk ${P_LIBRARIES})
  endif()
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    target_link_options(${target} PRIVATE "LINKER:--version-script=${_SINSR_PLUGIN_MAP}")
    if(NOT SINSR_TSAN)  # TSan's runtime is in the executable (cmake/SinSRTsan.cmake)
      target_link_options(${target} PRIVATE "LINKER:--no-undefined")
    endif()
  endif()
  if(P_TEST)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/test-plugins)
  elseif(DEFINED SINSR_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SINSR_PLUGIN_OUTPUT_DIR})
  endif()
  if(DEFINED SINSR_PLUGIN_SUBDIR AND NOT P_TEST)
    install(TARGETS ${target} LIBRARY DESTINATION ${SINSR_PLUGIN_SUBDIR})
  endif()
endfunction()
