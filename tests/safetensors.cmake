# safetensors reader/writer: round trip, F16/BF16 widening, edge files that must load, and the malformed
# corpus in assets/safetensors/bad (regenerate with assets/safetensors/make_corpus.py).
add_executable(test_safetensors test_safetensors.c)
target_link_libraries(test_safetensors PRIVATE vidcap-testutil)
add_test(NAME safetensors COMMAND test_safetensors ${CMAKE_CURRENT_SOURCE_DIR}/assets/safetensors)
set_tests_properties(safetensors PROPERTIES LABELS unit)
