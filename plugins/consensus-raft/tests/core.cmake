# Tests of the pure Raft core (src/raft): unit tests (core_*), named cases from the Raft paper
# and thesis (paper_*), and the deterministic simulation (sim_*). Included from the plugin's
# CMakeLists.txt; paths are relative to the plugin directory.
include(Catch)

set(_raft_tests ${CMAKE_CURRENT_LIST_DIR})

add_executable(raft_core_test
  ${_raft_tests}/core_message_test.cpp
  ${_raft_tests}/core_log_test.cpp
  ${_raft_tests}/core_test.cpp)
target_link_libraries(raft_core_test PRIVATE swarm_raft_core Catch2::Catch2WithMain)
catch_discover_tests(raft_core_test TEST_PREFIX "consensus-raft/core/")

add_executable(raft_paper_test ${_raft_tests}/paper_test.cpp)
target_link_libraries(raft_paper_test PRIVATE swarm_raft_core Catch2::Catch2WithMain)
catch_discover_tests(raft_paper_test TEST_PREFIX "consensus-raft/paper/")

add_executable(raft_sim_test
  ${_raft_tests}/sim_harness.cpp
  ${_raft_tests}/sim_test.cpp)
target_link_libraries(raft_sim_test PRIVATE swarm_raft_core Catch2::Catch2WithMain)
catch_discover_tests(raft_sim_test TEST_PREFIX "consensus-raft/sim/")
