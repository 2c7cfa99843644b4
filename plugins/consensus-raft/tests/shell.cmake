# Tests of the I/O shell (src/shell) and of the plugin as a whole: the conformance suite in and
# out of process, the shell's own cases through the real plugin boundary (shell_*), and real
# three-process clusters of raft-node (cluster_*). Included from the plugin's CMakeLists.txt.
include(Catch)

set(_raft_seed 20261125)
add_test(NAME consensus-raft.conformance.in-process
  COMMAND swarm_conformance --kind consensus --plugin $<TARGET_FILE:consensus-raft> --seed ${_raft_seed})
add_test(NAME consensus-raft.conformance.out-of-process
  COMMAND swarm_conformance --kind consensus --plugin $<TARGET_FILE:consensus-raft> --out-of-process
          --runner $<TARGET_FILE:swarm_plugin_runner> --seed ${_raft_seed})
set_tests_properties(consensus-raft.conformance.in-process consensus-raft.conformance.out-of-process
  PROPERTIES TIMEOUT 300)

add_executable(raft_shell_test ${CMAKE_CURRENT_LIST_DIR}/shell_test.cpp)
target_link_libraries(raft_shell_test PRIVATE raft_node_client swarm_host Catch2::Catch2WithMain)
target_compile_definitions(raft_shell_test PRIVATE
  CONSENSUS_RAFT_PLUGIN="$<TARGET_FILE:consensus-raft>")
add_dependencies(raft_shell_test consensus-raft)
catch_discover_tests(raft_shell_test TEST_PREFIX "consensus-raft/shell: " PROPERTIES TIMEOUT 120)

add_executable(raft_cluster_test ${CMAKE_CURRENT_LIST_DIR}/cluster_test.cpp)
target_link_libraries(raft_cluster_test PRIVATE raft_node_client Catch2::Catch2WithMain)
target_compile_definitions(raft_cluster_test PRIVATE
  RAFT_NODE_PATH="$<TARGET_FILE:raft_node>"
  CONSENSUS_RAFT_PLUGIN="$<TARGET_FILE:consensus-raft>")
add_dependencies(raft_cluster_test raft_node consensus-raft)
catch_discover_tests(raft_cluster_test TEST_PREFIX "consensus-raft/cluster: " PROPERTIES TIMEOUT 180)
