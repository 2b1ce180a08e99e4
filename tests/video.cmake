# Video: decoding and time-based sampling (video/) on the committed clips in tests/assets/video (made by
# make_clips.sh), against golden sample times and frame hashes (golden.txt) and what each clip was built to
# show; bad inputs with their errors; prefixes and corruptions of valid clips.
add_executable(test_video test_video.c)
target_link_libraries(test_video PRIVATE vidcap-testutil)
add_test(NAME test_video COMMAND test_video ${VIDCAP_SRC}/tests/assets/video)
set_tests_properties(test_video PROPERTIES LABELS unit TIMEOUT 300)
