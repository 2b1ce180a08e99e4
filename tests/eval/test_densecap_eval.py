"""Unit tests of tools/densecap_eval.py: every expected number below is worked out by hand in the comments
(tIoU, the 2018 pairing and detection rules, BLEU-4, ROUGE-L, CIDEr-D), plus the baseline files and refusals.

    /usr/bin/python3 tests/eval/test_densecap_eval.py
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "densecap_eval.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import densecap_eval as dce  # noqa: E402

SUBMISSION_HEAD = {"version": "VERSION 1.0", "external_data": {"used": False, "details": ""}}

# Three reference videos used by the detection and pairing tests.
REF_A_B_C = {
    "v_A": {"duration": 60, "timestamps": [[0, 10], [10, 20], [20, 40]], "sentences": ["s1", "s2", "s3"]},
    "v_B": {"duration": 50, "timestamps": [[0, 50]], "sentences": ["b1"]},
    "v_C": {"duration": 30, "timestamps": [[0, 30]], "sentences": ["c1"]},  # never predicted
}
# tIoU of A's predictions with A's events g1 [0,10], g2 [10,20], g3 [20,40]:
#   p1 [0,9.5]:  9.5/10 = 0.95 with g1, 0 with g2 and g3
#   p2 [12,20]:  0 with g1, 8/10 = 0.8 with g2, 0 with g3 (they only touch)
#   p3 [0,40]:   10/40 = 0.25 with g1 and g2, 20/40 = 0.5 with g3 (all just under, because of the +1e-8)
#   p4 [50,60]:  0 with all
# B's predictions with b1 [0,50]: [5,45] 40/50 = 0.8, [10,20] 10/50 = 0.2.
SUB_A_B = {
    "A": [
        {"sentence": "p1", "timestamp": [0, 9.5]},
        {"sentence": "p2", "timestamp": [12, 20]},
        {"sentence": "p3", "timestamp": [0, 40]},
        {"sentence": "p4", "timestamp": [50, 60]},
    ],
    "B": [{"sentence": "q1", "timestamp": [5, 45]}, {"sentence": "q2", "timestamp": [10, 20]}],
    "Z": [{"sentence": "not a reference video", "timestamp": [0, 1]}],
}


class TempFiles(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, obj):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def submission(self, name, results, **head):
        return self.write(name, dict(SUBMISSION_HEAD, results=results, **head))

    def cli(self, *args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=120)


class Tokenize(unittest.TestCase):
    def test_ptb_rules(self):
        # lower case, clitics split off ('s, n't), final period dropped
        self.assertEqual(dce.ptb_tokenize("A man's dog doesn't run."),
                         ["a", "man", "'s", "dog", "does", "n't", "run"])
        # '!' is in coco-caption's punctuation list, '@' and '#' are not: the garbage reference is 3 tokens
        self.assertEqual(dce.ptb_tokenize("abc123!@#"), ["abc123", "@", "#"])
        # non-ASCII characters become spaces before tokenising; commas, parentheses and quotes go
        self.assertEqual(dce.ptb_tokenize(' Caf\u00e9, (3.5) "T-shirt" '), ["caf", "3.5", "t-shirt"])


class Tiou(unittest.TestCase):
    def test_pairs(self):
        # [0,10] & [5,15]: intersection 5, union min(hull 15, 10+10) = 15 -> 5/15
        self.assertAlmostEqual(dce.tiou((0, 10), (5, 15)), 1 / 3, places=8)
        self.assertAlmostEqual(dce.tiou((5, 15), (0, 10)), 1 / 3, places=8)
        # [2,4] inside [0,10]: 2 / min(10, 2+10) = 0.2
        self.assertAlmostEqual(dce.tiou((2, 4), (0, 10)), 0.2, places=8)
        # disjoint and touching: no intersection
        self.assertEqual(dce.tiou((0, 2), (5, 9)), 0.0)
        self.assertEqual(dce.tiou((0, 5), (5, 10)), 0.0)
        # identical [3,7]: 4 / (4 + 1e-8), a hair under 1
        self.assertAlmostEqual(dce.tiou((3, 7), (3, 7)), 4 / (4 + 1e-8), places=12)
        self.assertLess(dce.tiou((3, 7), (3, 7)), 1.0)

    def test_epsilon_at_boundary(self):
        # [0,10] & [0,20] is 10 / (20 + 1e-8): just under 0.5, so it fails ">= 0.5" as in the 2018 script
        t = dce.tiou((0, 10), (0, 20))
        self.assertLess(t, 0.5)
        self.assertGreater(t, 0.5 - 1e-9)


class Detection(TempFiles):
    def load(self, results, refs=(REF_A_B_C,), max_proposals=1000):
        paths = [self.write(f"ref{i}.json", r) for i, r in enumerate(refs)]
        references = dce.References(paths)
        preds, ignored = dce.load_submission(self.submission("sub.json", results), references, max_proposals)
        return references, preds, ignored

    def test_recall_precision_per_threshold(self):
        refs, preds, ignored = self.load(SUB_A_B)
        self.assertEqual(ignored, 1)  # Z is in no reference file
        # strict tIoU > t. Per video (recall, precision):
        #   t=0.3: A: g1,g2,g3 hit by p1,p2,p3 -> (3/3, 3/4); B: (1, 1/2); C: (0, 0)
        #   t=0.5: A: p3-g3 is 0.5-eps, not > 0.5 -> (2/3, 2/4); B: (1, 1/2)
        #   t=0.7: A: (2/3, 2/4); B: 0.8 > 0.7 -> (1, 1/2)
        #   t=0.9: A: only p1-g1 (0.95) -> (1/3, 1/4); B: (0, 0)
        # averaged over the 3 reference videos (C counts as 0):
        expected = {
            0.3: ((1 + 1 + 0) / 3, (3 / 4 + 1 / 2) / 3),  # 2/3, 5/12
            0.5: ((2 / 3 + 1) / 3, (1 / 2 + 1 / 2) / 3),  # 5/9, 1/3
            0.7: ((2 / 3 + 1) / 3, (1 / 2 + 1 / 2) / 3),
            0.9: ((1 / 3) / 3, (1 / 4) / 3),  # 1/9, 1/12
        }
        for t, (r, p) in expected.items():
            got = dce.detection(refs, preds, t)
            self.assertAlmostEqual(got[0], r, places=12, msg=f"recall at {t}")
            self.assertAlmostEqual(got[1], p, places=12, msg=f"precision at {t}")

    def test_strictly_above_threshold(self):
        # at t=0 only the strict ">" separates a disjoint prediction from an overlapping one: A's p4 [50,60]
        # overlaps nothing, so A is (3/3, 3/4); B (1, 2/2); C (0, 0) -> recall 2/3, precision (3/4 + 1)/3
        refs, preds, _ = self.load(SUB_A_B)
        r, p = dce.detection(refs, preds, 0.0)
        self.assertAlmostEqual(r, 2 / 3, places=12)
        self.assertAlmostEqual(p, (3 / 4 + 1) / 3, places=12)
        # while caption pairing uses ">=": at t=0 every prediction is paired with every event, p4 included
        self.assertEqual([s for c, s in dce.caption_pairs(refs, preds["A"], "A", 0.0) if c == "p4"],
                         ["s1", "s2", "s3"])

    def test_cli_means_over_thresholds(self):
        # mean recall (2/3 + 5/9 + 5/9 + 1/9) / 4 = 17/36, mean precision (5/12 + 4/12 + 4/12 + 1/12) / 4 = 7/24
        ref = self.write("ref.json", REF_A_B_C)
        sub = self.submission("sub.json", SUB_A_B)
        out = os.path.join(self.dir, "scores.json")
        res = self.cli("-r", ref, "-s", sub, "--json", out)
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(out) as f:
            scores = json.load(f)
        self.assertAlmostEqual(scores["mean"]["Recall"], 100 * 17 / 36, places=9)
        self.assertAlmostEqual(scores["mean"]["Precision"], 100 * 7 / 24, places=9)
        self.assertIn("47.22", res.stdout)  # 100 * 17/36 in the printed table
        self.assertIn("29.17", res.stdout)  # 100 * 7/24

    def test_v_prefix_either_way(self):
        # the same predictions keyed "v_A" / "v_B" score exactly as keyed "A" / "B" (t=0.3: 2/3 and 5/12)
        refs, preds, _ = self.load({"v_" + k: v for k, v in SUB_A_B.items()})
        r, p = dce.detection(refs, preds, 0.3)
        self.assertAlmostEqual(r, 2 / 3, places=12)
        self.assertAlmostEqual(p, 5 / 12, places=12)

    def test_max_proposals_truncates_in_file_order(self):
        # keep 2: A has p1, p2 -> t=0.3: (2/3, 2/2); B unchanged (1, 1/2); C (0, 0)
        refs, preds, _ = self.load(SUB_A_B, max_proposals=2)
        r, p = dce.detection(refs, preds, 0.3)
        self.assertAlmostEqual(r, (2 / 3 + 1) / 3, places=12)  # 5/9
        self.assertAlmostEqual(p, (1 + 1 / 2) / 3, places=12)  # 1/2

    def test_best_file_for_recall_and_precision_independently(self):
        # a second file where A has the single event [0,40]: p3 matches it (~1), no other prediction does, so
        # that file gives A (1/1, 1/4) at every threshold. At t=0.5 file 1 gives (2/3, 2/4): A takes recall 1
        # from file 2 and precision 1/2 from file 1. Mean: recall (1 + 1 + 0)/3, precision (1/2 + 1/2 + 0)/3.
        second = {"v_A": {"duration": 60, "timestamps": [[0, 40]], "sentences": ["t1"]}}
        refs, preds, _ = self.load(SUB_A_B, refs=(REF_A_B_C, second))
        r, p = dce.detection(refs, preds, 0.5)
        self.assertAlmostEqual(r, 2 / 3, places=12)
        self.assertAlmostEqual(p, 1 / 3, places=12)
        # t=0.9: A (max(1/3, 1), max(1/4, 1/4)) = (1, 1/4); B (0, 0); C (0, 0)
        r, p = dce.detection(refs, preds, 0.9)
        self.assertAlmostEqual(r, 1 / 3, places=12)
        self.assertAlmostEqual(p, 1 / 12, places=12)

    def test_caption_pairs(self):
        second = {"v_A": {"duration": 60, "timestamps": [[0, 40]], "sentences": ["t1"]}}
        refs, preds, _ = self.load(SUB_A_B, refs=(REF_A_B_C, second))
        g = dce.GARBAGE_REFERENCE
        a = preds["A"]
        # t=0.5 (tIoU >= t): p1-s1 0.95, p2-s2 0.8, p3-t1 ~1 (file 2; p3-s3 is 0.5-eps), p4 nothing
        self.assertEqual(dce.caption_pairs(refs, a, "A", 0.5), [("p1", "s1"), ("p2", "s2"), ("p3", "t1"), ("p4", g)])
        # t=0.2: p1 also with t1 (9.5/40 = 0.2375); p3 with s1 and s2 (0.25), s3 (0.5) and t1; p2 not with t1
        # (8/40 is 0.2 - eps); file 1's events come before file 2's
        self.assertEqual(
            dce.caption_pairs(refs, a, "A", 0.2),
            [("p1", "s1"), ("p1", "t1"), ("p2", "s2"), ("p3", "s1"), ("p3", "s2"), ("p3", "s3"), ("p3", "t1"),
             ("p4", g)],
        )
        # a video without predictions has no pairs
        self.assertEqual(dce.caption_pairs(refs, [], "C", 0.5), [])


class Bleu(unittest.TestCase):
    def test_corpus_bleu_with_brevity_penalty(self):
        tok = str.split
        items = [
            (tok("the the man is riding a horse"), [tok("a man is riding a horse"),
                                                    tok("the man rides a brown horse fast today")]),
            (tok("a dog runs"), [tok("a dog runs on the grass")]),
        ]
        # item 1 (7 words): "the" twice, clipped to 1 (R2 has one "the") -> 1-grams 6/7;
        #   2-grams: the-the no, the-man (R2), man-is, is-riding, riding-a, a-horse -> 5/6;
        #   3-grams: man-is-riding, is-riding-a, riding-a-horse -> 3/5; 4-grams: man..a, is..horse -> 2/4;
        #   refs of 6 and 8 words are both 1 away from 7: the tie goes to the shorter, r = 6.
        # item 2 (3 words): 3/3, 2/2, 1/1, 0/0; r = 6.
        # corpus: 9/10, 7/8, 4/6, 2/4; c = 10, r = 12 -> BP = exp(1 - 12/10) = exp(-0.2)
        bp = math.exp(-0.2)
        got = dce.bleu(items)
        self.assertAlmostEqual(got[0], 0.9 * bp, places=9)
        self.assertAlmostEqual(got[1], math.sqrt(0.9 * 7 / 8) * bp, places=9)
        self.assertAlmostEqual(got[3], (0.9 * 7 / 8 * 4 / 6 * 2 / 4) ** 0.25 * bp, places=9)  # 0.58604

    def test_no_penalty_when_longer_and_smoothing_when_no_match(self):
        # "a b c d e" vs "a b c d": 4/5, 3/4, 2/3, 1/2, c = 5 > r = 4 -> (0.2)^(1/4) = 0.66874
        self.assertAlmostEqual(dce.bleu([("a b c d e".split(), ["a b c d".split()])])[3], 0.2**0.25, places=9)
        # nothing shared: every precision is (0 + 1e-15) / guess -> BLEU-4 ~ 1e-15, not exactly 0
        self.assertLess(dce.bleu([("w x y z".split(), ["a b c d".split()])])[3], 1e-12)


class Rouge(unittest.TestCase):
    def test_f_beta(self):
        # LCS("a man rides a horse", "a man is riding a brown horse on a beach") = a man a horse = 4
        # P = 4/5, R = 4/10, F = (1 + 1.44) * 0.8 * 0.4 / (0.4 + 1.44 * 0.8) = 0.7808 / 1.552 = 0.503093
        got = dce.rouge_l("a man rides a horse".split(), ["a man is riding a brown horse on a beach".split()])
        self.assertAlmostEqual(got, 0.7808 / 1.552, places=12)

    def test_lcs_is_not_greedy(self):
        # LCS(a b c d, b c d a) = b c d = 3 (matching "a" first would give 1): P = R = 3/4 -> F = 3/4
        self.assertAlmostEqual(dce.rouge_l("a b c d".split(), ["b c d a".split()]), 0.75, places=12)


def cider_items(*pairs):
    return [(c.split(), [r.split()]) for c, r in pairs]


class CiderD(unittest.TestCase):
    def test_perfect_match_distinct_references(self):
        # 2 items with disjoint references: every reference n-gram has df 1, idf log 2; the candidate vector equals
        # the reference vector for n = 1..4 (4 words), cos = 1 each, no length gap -> 10 * mean(1,1,1,1) = 10
        got = dce.cider_d(cider_items(("a b c d", "a b c d"), ("e f g h", "e f g h")))
        self.assertAlmostEqual(got[0], 10.0, places=12)
        self.assertAlmostEqual(got[1], 10.0, places=12)

    def test_identical_references_everywhere_score_zero(self):
        # the same reference in both items: df = 2 = #items, idf = log 2 - log 2 = 0 -> every vector is 0
        got = dce.cider_d(cider_items(("a b c d", "a b c d"), ("a b c d", "a b c d")))
        self.assertEqual(got, [0.0, 0.0])
        # one item alone: idf = log 1 - log 1 = 0 -> a perfect caption scores 0 (what per-video CIDEr does)
        self.assertEqual(dce.cider_d(cider_items(("a b c d", "a b c d"))), [0.0])

    def test_no_shared_ngram_scores_zero(self):
        got = dce.cider_d(cider_items(("p q r s", "a b c d"), ("e f g h", "e f g h")))
        self.assertEqual(got[0], 0.0)
        self.assertAlmostEqual(got[1], 10.0, places=12)

    def test_repeated_words_are_clipped(self):
        # item 1: cand "a a" vs ref "a b", L = log 2. 1-grams: cand a = 2L (norm 2L); ref a = L, b = L (norm L*sqrt2);
        #   clipped dot min(2L, L) * L = L^2 -> 1/(2 sqrt 2); 2-grams: "a a" not in the ref -> 0; no 3-, 4-grams.
        #   Both have 1 bigram: no length penalty. Score 10 * (1/(2 sqrt 2)) / 4 = 0.883883 (unclipped: 1.767767)
        # item 2: "c d" vs "c d": 1-grams 1, 2-grams 1, no 3-, 4-grams -> 10 * 2/4 = 5
        got = dce.cider_d(cider_items(("a a", "a b"), ("c d", "c d")))
        self.assertAlmostEqual(got[0], 10 / (2 * math.sqrt(2)) / 4, places=12)
        self.assertAlmostEqual(got[1], 5.0, places=12)

    def test_length_penalty_in_bigrams(self):
        # cand "a b c" vs ref "a b c d e f g h i", every weight L: 1-grams 3L^2/(sqrt3 L * 3L) = 1/sqrt3;
        # 2-grams 2/(sqrt2 * sqrt8) = 1/2; 3-grams 1/sqrt7; 4-grams none -> 0.
        # lengths in bigrams 2 vs 8: exp(-(6^2) / (2 * 6^2)) = exp(-0.5)
        got = dce.cider_d(cider_items(("a b c", "a b c d e f g h i"), ("x y", "x y")))
        self.assertAlmostEqual(got[0], 10 * math.exp(-0.5) * (1 / math.sqrt(3) + 0.5 + 1 / math.sqrt(7)) / 4,
                               places=12)


class CaptionMetricsEndToEnd(TempFiles):
    def test_per_video_scores_with_garbage_and_missing_video(self):
        ref = self.write("ref.json", {
            "v_1": {"duration": 60, "timestamps": [[0, 10], [20, 30]],
                    "sentences": ["A man is riding a horse.", "A dog runs in a field."]},
            "v_2": {"duration": 9, "timestamps": [[0, 5]], "sentences": ["Someone cooks."]},
        })
        sub = self.submission("sub.json", {"v_1": [
            {"sentence": "a man is riding a horse", "timestamp": [0, 10]},
            {"sentence": "Dog runs", "timestamp": [40, 50]},
        ]})
        out = os.path.join(self.dir, "scores.json")
        res = self.cli("-r", ref, "-s", sub, "--tious", "0.5", "--json", out, "-v")
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(out) as f:
            got = json.load(f)["mean"]
        # video 1 items: ("a man is riding a horse" | same), ("dog runs" | garbage "abc123 @ #"); video 2: none.
        # detection: v_1 (1/2, 1/2), v_2 (0, 0) -> 25 and 25
        self.assertAlmostEqual(got["Recall"], 25.0, places=9)
        self.assertAlmostEqual(got["Precision"], 25.0, places=9)
        # ROUGE-L: v_1 (1 + 0)/2, v_2 0 -> 0.25
        self.assertAlmostEqual(got["ROUGE_L"], 25.0, places=9)
        # BLEU-4 of v_1: correct 6,5,4,3 (item 1) + 0; guess 6,5,4,3 + 2,1,0,0 = 8,6,4,3;
        # c = 8, r = 6 + 3 (the garbage is 3 tokens) = 9 -> BP exp(1 - 9/8); v_2 0
        b4 = (6 / 8 * 5 / 6 * 4 / 4 * 3 / 3) ** 0.25 * math.exp(1 - 9 / 8)
        self.assertAlmostEqual(got["Bleu_4"], 100 * b4 / 2, places=6)
        # CIDEr-D of v_1: two items with disjoint references (idf log 2): item 1 identical -> 10, item 2 shares
        # nothing -> 0; video 5, v_2 0 -> 2.5, printed x100
        self.assertAlmostEqual(got["CIDEr-D"], 250.0, places=9)


class Baselines(TempFiles):
    TEST = {
        "v_1": {"duration": 30, "timestamps": [[0, 30], [10, 20]], "sentences": ["x", "y"]},
        "v_2": {"duration": 12.5, "timestamps": [[0, 5]], "sentences": ["z"]},
    }

    def test_whole_video(self):
        # "a bag enters" 3 times (as tokens), "a shoe leaves" twice: the first spelling met wins, trimmed
        train = self.write("train.json", {
            "t1": {"duration": 9, "timestamps": [[0, 1], [1, 2]], "sentences": ["A bag enters.", "a shoe leaves"]},
            "t2": {"duration": 9, "timestamps": [[0, 1], [1, 2], [2, 3]],
                   "sentences": ["a bag enters", " A shoe leaves. ", "A bag enters!"]},
        })
        test = self.write("test.json", self.TEST)
        out = os.path.join(self.dir, "baseline.json")
        res = self.cli("--make-baseline", "whole-video", "--train-references", train, "-r", test, "-o", out)
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(out) as f:
            sub = json.load(f)
        self.assertEqual(set(sub), {"version", "results", "external_data"})
        self.assertEqual(sub["results"], {
            "v_1": [{"sentence": "A bag enters.", "timestamp": [0.0, 30.0]}],
            "v_2": [{"sentence": "A bag enters.", "timestamp": [0.0, 12.5]}],
        })
        # scoring it: t=0.3: v_1 [0,30] hits [0,30] (~1) and [10,20] (10/30) -> (1, 1); v_2 [0,12.5]-[0,5] is
        # 5/12.5 = 0.4 -> (1, 1). t=0.5: v_1 (1/2, 1), v_2 (0, 0). Means: recall (1 + 1/4)/2, precision (1 + 1/2)/2
        scores = os.path.join(self.dir, "scores.json")
        res = self.cli("-r", test, "-s", out, "--tious", "0.3", "0.5", "--json", scores)
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(scores) as f:
            got = json.load(f)["mean"]
        self.assertAlmostEqual(got["Recall"], 62.5, places=9)
        self.assertAlmostEqual(got["Precision"], 75.0, places=9)

    def test_gt_segments(self):
        test = self.write("test.json", self.TEST)
        out = os.path.join(self.dir, "segments.json")
        res = self.cli("--make-gt-segments", "-r", test, "-o", out)
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(out) as f:
            sub = json.load(f)
        self.assertEqual(set(sub), {"version", "results", "external_data"})
        self.assertEqual(sub["results"], {
            "v_1": [{"sentence": "", "timestamp": [0.0, 30.0]}, {"sentence": "", "timestamp": [10.0, 20.0]}],
            "v_2": [{"sentence": "", "timestamp": [0.0, 5.0]}],
        })
        # every segment is a reference segment (tIoU 1 - 1e-9 > 0.9): recall and precision 100 at every threshold
        scores = os.path.join(self.dir, "scores.json")
        self.assertEqual(self.cli("-r", test, "-s", out, "--json", scores).returncode, 0)
        with open(scores) as f:
            per = json.load(f)["per_tiou"]
        self.assertEqual([round(x, 9) for x in per["Recall"] + per["Precision"]], [100.0] * 8)


class Refusals(TempFiles):
    def refused(self, *args):
        res = self.cli(*args)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertEqual(res.stdout, "")
        self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
        return res.stderr

    def test_missing_top_level_key(self):
        ref = self.write("ref.json", REF_A_B_C)
        sub = self.write("sub.json", {"version": "VERSION 1.0", "results": {}})
        err = self.refused("-r", ref, "-s", sub)
        self.assertIn("sub.json", err)
        self.assertIn("external_data", err)

    def test_malformed_inputs(self):
        ref = self.write("ref.json", REF_A_B_C)
        self.assertIn("not valid JSON", self.refused("-r", ref, "-s", self.write("bad.json", "{\"results\": ")))
        bad_stamp = self.submission("stamp.json", {"A": [{"sentence": "x", "timestamp": [5]}]})
        self.assertIn("A: event 0", self.refused("-r", ref, "-s", bad_stamp))
        twice = self.submission("twice.json", {"A": [], "v_A": []})
        self.assertIn("same video", self.refused("-r", ref, "-s", twice))
        no_events = self.write("empty.json", {"v_A": {"duration": 5, "timestamps": [], "sentences": []}})
        self.assertIn("no events", self.refused("-r", no_events, "-s", twice))

    def test_failed_baseline_leaves_no_file(self):
        test = self.write("test.json", Baselines.TEST)
        out = os.path.join(self.dir, "never.json")
        self.refused("--make-baseline", "whole-video", "--train-references", os.path.join(self.dir, "nope.json"),
                     "-r", test, "-o", out)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
