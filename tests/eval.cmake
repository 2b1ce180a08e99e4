# Evaluation tools: the dense-captioning evaluator (tools/densecap_eval.py) against hand-computed numbers.
add_test(NAME densecap_eval COMMAND ${VIDCAP_PY} ${VIDCAP_SRC}/tests/eval/test_densecap_eval.py)
set_tests_properties(densecap_eval PROPERTIES LABELS unit TIMEOUT 120)
