# swarm_add_plugin(<target> SOURCES <files...> [LINK <libs...>])
#
# Builds a swarm-kernel plugin: a MODULE library named <target>.so that exports exactly one
# symbol, swarm_plugin_entry. Hidden visibility alone leaks weak std:: instantiations into the
# dynamic symbol table, so inline visibility and a version script are both applied
# (reference: stack.md §2). Links the SDK helper (swarm::sdk / SwarmKernelSDK::sdk).
include_guard(GLOBAL)

set(_SWARM_PLUGIN_MODULE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(swarm_add_plugin target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET SwarmKernelSDK::sdk)
    set(_sdk SwarmKernelSDK::sdk)
  else()
    set(_sdk swarm::sdk)
  endif()
  target_link_libraries(${target} PRIVATE ${_sdk} ${ARG_LINK})
  target_link_options(${target} PRIVATE
    "-Wl,--version-script=${_SWARM_PLUGIN_MODULE_DIR}/plugin.map"
    "-Wl,--no-undefined")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${_SWARM_PLUGIN_MODULE_DIR}/plugin.map)
endfunction()
