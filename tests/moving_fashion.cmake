# Moving Fashion generator (tools/moving_fashion.py): determinism, split pools, event timing and geometry,
# sentences against their items, and one encoded MP4 checked with ffprobe.
add_test(NAME moving_fashion_generator
         COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/moving_fashion/test_generator.py ${VIDCAP_SRC})
set_tests_properties(moving_fashion_generator PROPERTIES LABELS unit TIMEOUT 120)
