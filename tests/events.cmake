# Caption events: the list, sorting, merging across windows, and the writers (byte-exact stdout, txt, SRT,
# WebVTT and ActivityNet JSON, atomic files, output names). The argument is a scratch directory.
add_executable(test_events test_events.c)
target_link_libraries(test_events PRIVATE vidcap-testutil)
add_test(NAME test_events COMMAND test_events ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_events PROPERTIES LABELS unit)
