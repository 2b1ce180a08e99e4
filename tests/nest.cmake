# NesT: the C forward against the PyTorch reference (tools/nest_ref.py), for nest_tiny at 224 in timm's
# key layout (recognised without metadata), a small custom configuration, and the shipped model.
add_executable(test_nest_parity test_nest_parity.c)
target_link_libraries(test_nest_parity PRIVATE vidcap-testutil)
set(NEST_FIXTURES ${CMAKE_CURRENT_BINARY_DIR}/nest_parity)
add_test(NAME nest_parity_gen
         COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/parity/gen_nest.py --outdir ${NEST_FIXTURES}
                 --shipped ${VIDCAP_SRC}/models/fashion-nest.safetensors)
set_tests_properties(nest_parity_gen PROPERTIES FIXTURES_SETUP nest_parity LABELS parity TIMEOUT 300)
add_test(NAME nest_parity COMMAND test_nest_parity ${NEST_FIXTURES} small nest_tiny shipped)
set_tests_properties(nest_parity PROPERTIES FIXTURES_REQUIRED nest_parity LABELS parity TIMEOUT 300)

# GradCAT means something: the deletion test on 500 real test images with the shipped model.
add_executable(test_gradcat_deletion test_gradcat_deletion.c)
target_link_libraries(test_gradcat_deletion PRIVATE vidcap-testutil)
add_test(NAME fmnist_subset_gen
         COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/parity/gen_fmnist_subset.py
                 ${CMAKE_CURRENT_BINARY_DIR}/fmnist_test500.safetensors 500)
set_tests_properties(fmnist_subset_gen PROPERTIES FIXTURES_SETUP fmnist_subset LABELS unit)
add_test(NAME gradcat_deletion COMMAND test_gradcat_deletion ${VIDCAP_SRC}/models/fashion-nest.safetensors
         ${CMAKE_CURRENT_BINARY_DIR}/fmnist_test500.safetensors)
set_tests_properties(gradcat_deletion PROPERTIES FIXTURES_REQUIRED fmnist_subset LABELS unit TIMEOUT 600)

add_executable(test_heatmap test_heatmap.c)
target_link_libraries(test_heatmap PRIVATE vidcap-testutil)
add_test(NAME heatmap COMMAND test_heatmap)
set_tests_properties(heatmap PROPERTIES LABELS unit)
