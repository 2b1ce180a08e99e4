# The vidcap binary end to end: results on the samples, output formats, bad inputs and bad models.
add_test(NAME cli_classify
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/classify.sh $<TARGET_FILE:vidcap> ${VIDCAP_SRC}
                 ${CMAKE_CURRENT_BINARY_DIR}/cli_classify)
set_tests_properties(cli_classify PROPERTIES LABELS cli TIMEOUT 300)
add_test(NAME cli_version COMMAND vidcap version)
set_tests_properties(cli_version PROPERTIES LABELS cli PASS_REGULAR_EXPRESSION "vidcap [0-9]+\\.[0-9]+\\.[0-9]+")
add_test(NAME cli_explain
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/explain.sh $<TARGET_FILE:vidcap> ${VIDCAP_SRC}
                 ${CMAKE_CURRENT_BINARY_DIR}/cli_explain)
set_tests_properties(cli_explain PROPERTIES LABELS cli TIMEOUT 300)
add_test(NAME cli_filter
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/filter.sh $<TARGET_FILE:vidcap> ${VIDCAP_SRC}
                 ${CMAKE_CURRENT_BINARY_DIR}/cli_filter)
set_tests_properties(cli_filter PROPERTIES LABELS cli TIMEOUT 600)
add_test(NAME cli_features
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/features.sh $<TARGET_FILE:vidcap> ${VIDCAP_SRC}
                 ${CMAKE_CURRENT_BINARY_DIR}/cli_features ${VIDCAP_SRC}/models/fashion-nest.safetensors)
set_tests_properties(cli_features PROPERTIES LABELS cli TIMEOUT 300)
# Dense captioning with the shipped bundle: outputs, bad inputs, bad bundles; a 20-minute video (slow)
set(VIDCAP_BUNDLE ${VIDCAP_SRC}/models/moving-fashion.safetensors)
add_test(NAME cli_caption
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/caption.sh $<TARGET_FILE:vidcap> ${VIDCAP_SRC}
                 ${CMAKE_CURRENT_BINARY_DIR}/cli_caption ${VIDCAP_BUNDLE})
set_tests_properties(cli_caption PROPERTIES LABELS cli TIMEOUT 600 SKIP_RETURN_CODE 77)
add_test(NAME cli_long_video
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/long_video.sh $<TARGET_FILE:vidcap> ${VIDCAP_SRC}
                 ${CMAKE_CURRENT_BINARY_DIR}/cli_long_video ${VIDCAP_BUNDLE})
set_tests_properties(cli_long_video PROPERTIES LABELS "cli;slow" TIMEOUT 900 SKIP_RETURN_CODE 77)
