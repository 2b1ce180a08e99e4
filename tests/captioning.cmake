# Masked Transformer captioner: the C inference (captioning/) against tools/masked_transformer.py, stage by
# stage and to identical captions, greedy and beam, full and zero-padded windows, a bundle prefix and zero
# events; then cap_model_bind's errors on broken variants of a fixture model and cap_run_window's on bad
# arguments. The fixtures come from tests/parity/gen_captioner.py (a few seconds of PyTorch).
add_executable(test_captioner_parity test_captioner_parity.c)
target_link_libraries(test_captioner_parity PRIVATE vidcap-parity)
set(CAP_FIXTURES ${CMAKE_CURRENT_BINARY_DIR}/captioner_parity)
add_test(NAME captioner_parity_gen
         COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/parity/gen_captioner.py --outdir ${CAP_FIXTURES})
set_tests_properties(captioner_parity_gen PROPERTIES FIXTURES_SETUP captioner_parity LABELS parity TIMEOUT 300)
add_test(NAME captioner_parity COMMAND test_captioner_parity ${CAP_FIXTURES} greedy beam pad empty short odd)
set_tests_properties(captioner_parity PROPERTIES FIXTURES_REQUIRED captioner_parity LABELS parity TIMEOUT 300)
add_test(NAME captioner_bad_models COMMAND test_captioner_parity --bad ${CAP_FIXTURES})
set_tests_properties(captioner_bad_models PROPERTIES FIXTURES_REQUIRED captioner_parity LABELS parity TIMEOUT 120)

# The shipped bundle end to end on the sample video: vidcap against the PyTorch reference on vidcap's own
# frame features (skipped until models/moving-fashion.safetensors exists).
if(EXISTS ${VIDCAP_SRC}/models/moving-fashion.safetensors)
  add_test(NAME caption_sample_parity
           COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/parity/check_caption_sample.py $<TARGET_FILE:vidcap>
                   ${VIDCAP_SRC}/models/moving-fashion.safetensors ${VIDCAP_SRC}/samples/moving-fashion.mp4
                   ${CMAKE_CURRENT_BINARY_DIR}/caption_sample_parity)
  set_tests_properties(caption_sample_parity PROPERTIES LABELS parity TIMEOUT 300)
endif()
