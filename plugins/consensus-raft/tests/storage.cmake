# Storage tests (WAL + snapshots): round trip, damage, crash recovery and the sync contract.
# Included from plugins/consensus-raft/CMakeLists.txt. storage_syscalls.cpp interposes the file
# system calls the storage library makes, which is why the library is linked statically here.
# SWARM_RAFT_STORAGE_CRASH_SEEDS=<n> runs more kill -9 seeds, SWARM_RAFT_STORAGE_SEED=<seed>
# replays one, SWARM_RAFT_STORAGE_CRASH_OPS=<n> lengthens the crash-point workload.
include(Catch)
add_executable(raft_storage_test
  ${CMAKE_CURRENT_LIST_DIR}/storage_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/storage_damage_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/storage_crash_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/storage_crash_points_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/storage_sync_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/storage_syscalls.cpp)
target_link_libraries(raft_storage_test PRIVATE swarm_raft_storage Catch2::Catch2WithMain)
catch_discover_tests(raft_storage_test TEST_PREFIX "consensus-raft/storage: "
  PROPERTIES TIMEOUT 120)
