# sinsr_add_model(<target> NAME <component> BASE <component> SUMMARY <text> WEIGHTS <file>
#                 CONFIG <json file> PIPELINE <json file> [VERSION <version>])
#
# A shipped model: a plain-C plugin with no code of its own (ABI 1.1 `base`), generated from
# cmake/model_plugin.c.in. It names the component that implements it, the config to build it
# with (CONFIG), the weights beside the library (WEIGHTS, copied there in the build tree and
# installed beside it) and the pipeline it was trained for (PIPELINE). Without the weights
# file the model is skipped with a note, so a checkout without them still builds.
set(_SINSR_MODEL_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/model_plugin.c.in)

function(_sinsr_c_string out file)
  file(READ ${file} text)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "\"" "\\\"" text "${text}")
  string(REGEX REPLACE "[\r\n]+ *" " " text "${text}")
  string(STRIP "${text}" text)
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

function(sinsr_add_model target)
  cmake_parse_arguments(M "" "NAME;BASE;SUMMARY;WEIGHTS;CONFIG;PIPELINE;VERSION" "" ${ARGN})
  foreach(required NAME BASE SUMMARY WEIGHTS CONFIG PIPELINE)
    if(NOT M_${required})
      message(FATAL_ERROR "sinsr_add_model(${target}): ${required} is required")
    endif()
  endforeach()
  if(NOT M_VERSION)
    set(M_VERSION 1.0.0)
  endif()
  get_filename_component(weights ${M_WEIGHTS} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  if(NOT EXISTS ${weights})
    message(STATUS "model '${M_NAME}': no ${M_WEIGHTS}; not built")
    return()
  endif()
  get_filename_component(weights_name ${weights} NAME)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${M_CONFIG} ${M_PIPELINE})
  _sinsr_c_string(SINSR_MODEL_CONFIG ${CMAKE_CURRENT_SOURCE_DIR}/${M_CONFIG})
  _sinsr_c_string(SINSR_MODEL_PIPELINE ${CMAKE_CURRENT_SOURCE_DIR}/${M_PIPELINE})
  set(SINSR_MODEL_NAME ${M_NAME})
  set(SINSR_MODEL_BASE ${M_BASE})
  set(SINSR_MODEL_SUMMARY ${M_SUMMARY})
  set(SINSR_MODEL_VERSION ${M_VERSION})
  set(SINSR_MODEL_WEIGHTS ${weights_name})
  configure_file(${_SINSR_MODEL_TEMPLATE} ${CMAKE_CURRENT_BINARY_DIR}/${target}_model.c @ONLY)
  sinsr_add_plugin(${target} SOURCES ${CMAKE_CURRENT_BINARY_DIR}/${target}_model.c NO_SDK)
  # New weights rebuild the plugin, so the copy below follows them (it runs after each link).
  set_property(SOURCE ${CMAKE_CURRENT_BINARY_DIR}/${target}_model.c APPEND PROPERTY OBJECT_DEPENDS ${weights})
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${weights} $<TARGET_FILE_DIR:${target}>/${weights_name})
  install(FILES ${weights} DESTINATION ${SINSR_PLUGIN_SUBDIR})
endfunction()
