# Op tests: test_ops (every op in nn/nn.h against naive references and finite differences), the
# vidcap-parity harness later parity tests link, and the PyTorch op fixture with its C check.
add_executable(test_ops test_ops.c)
target_link_libraries(test_ops PRIVATE vidcap-testutil)
add_test(NAME test_ops COMMAND test_ops)
set_tests_properties(test_ops PROPERTIES LABELS unit)

add_library(vidcap-parity STATIC parity/harness.c)
target_include_directories(vidcap-parity PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(vidcap-parity PUBLIC vidcap-testutil)

add_executable(test_ops_parity test_ops_parity.c)
target_link_libraries(test_ops_parity PRIVATE vidcap-parity)
add_test(NAME ops_parity_gen
         COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/parity/gen_ops.py
                 --out ${CMAKE_CURRENT_BINARY_DIR}/ops_parity.safetensors)
set_tests_properties(ops_parity_gen PROPERTIES FIXTURES_SETUP ops_parity LABELS parity)
add_test(NAME ops_parity COMMAND test_ops_parity ${CMAKE_CURRENT_BINARY_DIR}/ops_parity.safetensors)
set_tests_properties(ops_parity PROPERTIES FIXTURES_REQUIRED ops_parity LABELS parity)
