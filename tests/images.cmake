# Images: decoding against the committed corpus (tests/assets/images, made by make_bad.py), preprocessing
# parameters and geometry, and preprocessing parity with PIL + torchvision on every image in samples/.
add_executable(test_images test_images.c)
target_link_libraries(test_images PRIVATE vidcap-testutil)
add_test(NAME test_images COMMAND test_images ${VIDCAP_SRC}/tests/assets/images ${VIDCAP_SRC}/samples)
set_tests_properties(test_images PROPERTIES LABELS unit)

add_executable(test_preprocess test_preprocess.c)
target_link_libraries(test_preprocess PRIVATE vidcap-testutil)
add_test(NAME test_preprocess COMMAND test_preprocess)
set_tests_properties(test_preprocess PROPERTIES LABELS unit)

add_executable(test_preprocess_parity test_preprocess_parity.c)
target_link_libraries(test_preprocess_parity PRIVATE vidcap-testutil)
set(PREPROCESS_FIXTURES ${CMAKE_CURRENT_BINARY_DIR}/preprocess_parity)
add_test(NAME preprocess_parity_gen
         COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/parity/gen_preprocess.py
                 --samples ${VIDCAP_SRC}/samples --outdir ${PREPROCESS_FIXTURES})
set_tests_properties(preprocess_parity_gen PROPERTIES FIXTURES_SETUP preprocess_parity LABELS parity)
add_test(NAME preprocess_parity
         COMMAND test_preprocess_parity ${PREPROCESS_FIXTURES}/preprocess.safetensors)
set_tests_properties(preprocess_parity PROPERTIES FIXTURES_REQUIRED preprocess_parity LABELS parity)
