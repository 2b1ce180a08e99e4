"""Dense-captioning evaluator: the 2018 ActivityNet Captions protocol with BLEU-4, CIDEr-D and ROUGE-L written
from their definitions (no Java, no pycocoevalcap), plus the two baselines every captioner is reported beside.

    /usr/bin/python3 tools/densecap_eval.py -r val.json [-r val_2.json] -s sub.json [--tious ...] [-v] [--json out]
    /usr/bin/python3 tools/densecap_eval.py --make-baseline whole-video --train-references train.json \
        -r test.json -o sub.json
    /usr/bin/python3 tools/densecap_eval.py --make-gt-segments -r test.json -o segments.json

Protocol (ranjaykrishna/densevid_eval at deba7d7, as copied into ttengwang/PDVC densevid_eval3/evaluate2018.py):
- Each video's predictions are cut to the first --max-proposals (1000) before anything else, in file order.
- tIoU of two segments is intersection / (union + 1e-8), where the union is the smaller of the hull length and
  the sum of the two lengths. The 1e-8 matters at boundaries: [0,10] against [0,20] is just under 0.5.
- The videos scored are the union of the ids of all reference files. A video absent from the submission scores
  0 on every number; predictions for videos absent from every reference file are ignored.
- Detection at threshold t, per video and per reference file holding it: a GT event is recalled, and a
  prediction is correct, when some pair of them has tIoU strictly above t. Recall = recalled / #GT events,
  precision = correct predictions / #predictions. Recall and precision are each the best over the reference
  files, independently (they may come from different files), then averaged over videos.
- Captions at threshold t: every prediction is paired with every GT event, of every reference file, whose tIoU
  with it is at least t (each pairing is its own one-reference item); a prediction with no such event is paired
  once with the garbage reference "abc123!@#". Sentences lose non-ASCII characters and are tokenised.
  Each metric is computed per video over that video's items, as coco-caption would on that set alone (so
  CIDEr-D's document frequencies come from that video's references); a video with no items scores 0; scores
  are averaged over all reference videos.
- Every number is then the plain mean over the thresholds (0.3, 0.5, 0.7, 0.9), and printed x100 as the
  2018 evaluator prints it (CIDEr-D 0.28 shows as 28.00).
Metrics (as pycocoevalcap defines them):
- Tokens: a regex stand-in for the Stanford PTB tokenizer with -lowerCase: lower case; clitics split off
  (don't -> do n't, man's -> man 's); words keep inner hyphens and apostrophes, numbers their . , :; every other
  symbol is a token of its own; then the punctuation coco-caption drops (. , ; : ! ? - -- ... quotes) and, here,
  brackets are dropped. The garbage reference becomes "abc123 @ #", three tokens, as with PTB.
- BLEU-n: corpus BLEU over the items, counts clipped by the largest count in any reference of the item, the
  reference length of an item is the one closest to the candidate's (ties go to the shorter), brevity penalty
  exp(1 - r/c) when c < r, with coco-caption's 1e-15 / 1e-9 smoothing of every precision.
- CIDEr-D: n = 1..4 tf-idf vectors, idf = log(#items) - log(max(1, df)) with df = the number of items whose
  references contain the n-gram; per n, sum of min(cand, ref) * ref over the cand's n-grams, divided by both norms;
  times exp(-(d^2) / (2 * 6^2)) where d is the difference of the *bigram* counts (coco-caption's length, i.e. word
  counts minus one); averaged over n and references, x10. A video with one item has log(1) = 0: CIDEr-D 0.
- ROUGE-L: LCS precision P and recall R, best over references, F = (1 + 1.2^2) P R / (R + 1.2^2 P).
- METEOR is not computed: it needs the METEOR 1.5 jar with its paraphrase tables and function-word lists.
Not mirrored from the 2018 script: an empty prediction list scores precision 0 (the script reuses a stale loop
variable or crashes); a reference video with no events is refused (the script divides by zero); submission ids
match reference ids with or without the "v_" prefix (the script needs them spelled alike); malformed entries are
refused with a message instead of a traceback.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile
from collections import Counter

GARBAGE_REFERENCE = "abc123!@#"
DEFAULT_TIOUS = [0.3, 0.5, 0.7, 0.9]
SUBMISSION_KEYS = ("version", "results", "external_data")


class EvalError(Exception):
    """An input problem, reported as one line 'file: reason'."""


# ---------------------------------------------------------------------------------------------- tokenisation

_TOKEN_RE = re.compile(
    r"(?:[a-z]\.){2,}"  # abbreviations (u.s., a.m.) keep their periods, as PTB does
    r"|\d+(?:[.,:]\d+)+"  # 3.5, 1,000, 10:30
    r"|[a-z0-9]+(?:[-'&][a-z0-9]+)*"  # words with inner hyphens, apostrophes (split below) and AT&T
    r"|\.\.\.|--"
    r"|\S"
)
_CLITIC_RE = re.compile(r"^(.+?)('s|'re|'ve|'ll|'d|'m)$")
_PTB_SPLITS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"), "wanna": ("wan", "na")}
# coco-caption's PUNCTUATIONS (quotes come out of PTB as `` and ''), plus brackets, which PTB escapes as -LRB-...
_DROPPED = {"''", "'", "``", "`", '"', ".", "?", "!", ",", ":", "-", "--", "...", ";", "(", ")", "[", "]", "{", "}"}


def ptb_tokenize(text):
    """Returns the coco-caption token list of a sentence (see the header for what differs from Java PTB)."""
    text = "".join(ch if ord(ch) < 128 else " " for ch in text).lower()
    out = []
    for tok in _TOKEN_RE.findall(text):
        if tok in _DROPPED:
            continue
        if tok in _PTB_SPLITS:
            out.extend(_PTB_SPLITS[tok])
        elif "'" in tok and tok.endswith("n't") and len(tok) > 3:
            out.extend((tok[:-3], "n't"))
        else:
            m = _CLITIC_RE.match(tok) if "'" in tok else None
            out.extend(m.groups() if m else (tok,))
    return out


# ---------------------------------------------------------------------------------------------- metrics


def ngram_counts(tokens, n=4):
    counts = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i : i + k])] += 1
    return counts


def bleu(items, n=4):
    """Corpus BLEU-1..n over items [(cand_tokens, [ref_tokens, ...]), ...], coco-caption's 'closest' option."""
    tiny, small = 1e-15, 1e-9
    correct, guess = [0] * n, [0] * n
    testlen = reflen = 0
    for cand, refs in items:
        clip = {}
        for ref in refs:
            for g, c in ngram_counts(ref, n).items():
                if c > clip.get(g, 0):
                    clip[g] = c
        c_len = len(cand)
        testlen += c_len
        reflen += min((abs(len(r) - c_len), len(r)) for r in refs)[1]
        for g, c in ngram_counts(cand, n).items():
            correct[len(g) - 1] += min(c, clip.get(g, 0))
        for k in range(n):
            guess[k] += max(0, c_len - k)
    scores, prod = [], 1.0
    for k in range(n):
        prod *= (correct[k] + tiny) / (guess[k] + small)
        scores.append(prod ** (1.0 / (k + 1)))
    ratio = (testlen + tiny) / (reflen + small)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def cider_d(items, n=4, sigma=6.0):
    """CIDEr-D of each item, with document frequencies over the references of these items only."""
    if not items:
        return []
    cands = [ngram_counts(c, n) for c, _ in items]
    refs = [[ngram_counts(r, n) for r in rs] for _, rs in items]
    df = Counter()
    for rs in refs:
        df.update({g for r in rs for g in r})
    log_items = math.log(len(items))

    def vector(counts):
        vec, norm, length = [{} for _ in range(n)], [0.0] * n, 0
        for g, tf in counts.items():
            k = len(g) - 1
            w = tf * (log_items - math.log(max(1.0, df[g])))
            vec[k][g] = w
            norm[k] += w * w
            if k == 1:  # coco-caption measures length in bigrams
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    scores = []
    for cand, rs in zip(cands, refs):
        vh, nh, lh = vector(cand)
        total = 0.0
        for r in rs:
            vr, nr, lr = vector(r)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma * sigma))
            for k in range(n):
                ref_k = vr[k]
                val = 0.0
                for g, w in vh[k].items():
                    wr = ref_k.get(g, 0.0)
                    val += min(w, wr) * wr  # clipping: a repeated n-gram earns no more than the reference has
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total += val * penalty
        scores.append(10.0 * total / n / len(rs))
    return scores


def lcs_length(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(cand, refs, beta=1.2):
    # coco-caption splits on " ", so an empty sentence is one empty token
    cand = cand or [""]
    prec, rec = [], []
    for ref in refs:
        ref = ref or [""]
        lcs = lcs_length(ref, cand)
        prec.append(lcs / len(cand))
        rec.append(lcs / len(ref))
    p, r = max(prec), max(rec)
    if p == 0 or r == 0:
        return 0.0
    return (1 + beta**2) * p * r / (r + beta**2 * p)


# ---------------------------------------------------------------------------------------------- protocol


def tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = min(max(a[1], b[1]) - min(a[0], b[0]), (a[1] - a[0]) + (b[1] - b[0]))
    return inter / (union + 1e-8)


def canonical_id(vid):
    return vid[2:] if vid.startswith("v_") else vid


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _segment(x, where):
    if not (isinstance(x, (list, tuple)) and len(x) == 2 and _number(x[0]) and _number(x[1])):
        raise EvalError(f"{where}: a timestamp must be [start, end] in seconds, got {json.dumps(x)[:60]}")
    return (float(x[0]), float(x[1]))


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise EvalError(f"{path}: {e.strerror or e}")
    except (ValueError, UnicodeDecodeError) as e:
        raise EvalError(f"{path}: not valid JSON ({e})")


class References:
    """One or more ActivityNet Captions reference files. Videos are keyed by their id without "v_"."""

    def __init__(self, paths):
        self.paths = list(paths)
        self.files = []  # per file: {canonical id: ([(start, end)], [sentence])}
        self.names = {}  # canonical id -> the id as the first reference file spells it
        self.durations = {}
        for path in self.paths:
            data = load_json(path)
            if not isinstance(data, dict):
                raise EvalError(f"{path}: a reference file is an object of videos")
            videos = {}
            for vid, entry in data.items():
                where = f"{path}: {vid}"
                cid = canonical_id(vid)
                if cid in videos:
                    raise EvalError(f"{where}: names the same video as another id (with or without 'v_')")
                if not isinstance(entry, dict):
                    raise EvalError(f"{where}: not an object")
                stamps, sents = entry.get("timestamps"), entry.get("sentences")
                if not isinstance(stamps, list) or not isinstance(sents, list) or len(stamps) != len(sents):
                    raise EvalError(f"{where}: needs 'timestamps' and 'sentences' lists of the same length")
                if not stamps:
                    raise EvalError(f"{where}: no events (recall would be undefined)")
                if not all(isinstance(s, str) for s in sents):
                    raise EvalError(f"{where}: every sentence must be a string")
                segs = [_segment(s, where) for s in stamps]
                videos[cid] = (segs, sents)
                self.names.setdefault(cid, vid)
                if _number(entry.get("duration")):
                    self.durations.setdefault(cid, float(entry["duration"]))
            self.files.append(videos)
        self.order = sorted(self.names)

    def events(self, cid):
        """(segments, sentences) of each reference file holding the video."""
        return [f[cid] for f in self.files if cid in f]


def load_submission(path, refs, max_proposals):
    """Returns ({canonical id: [(start, end, sentence)]} for the reference videos, #ids not in the references)."""
    sub = load_json(path)
    if not isinstance(sub, dict):
        raise EvalError(f"{path}: a submission is an object with {', '.join(SUBMISSION_KEYS)}")
    missing = [k for k in SUBMISSION_KEYS if k not in sub]
    if missing:
        raise EvalError(f"{path}: missing top-level key(s) {', '.join(missing)}")
    results = sub["results"]
    if not isinstance(results, dict):
        raise EvalError(f"{path}: 'results' must map video ids to lists of events")
    preds, spelled, ignored = {}, {}, 0
    for vid, events in results.items():
        where = f"{path}: {vid}"
        cid = canonical_id(vid)
        if cid in spelled:
            raise EvalError(f"{where}: names the same video as '{spelled[cid]}'")
        spelled[cid] = vid
        if not isinstance(events, list):
            raise EvalError(f"{where}: must be a list of events")
        kept = []
        for i, ev in enumerate(events):
            if not isinstance(ev, dict) or not isinstance(ev.get("sentence"), str):
                raise EvalError(f"{where}: event {i} needs a 'sentence' string and a 'timestamp'")
            seg = _segment(ev.get("timestamp"), f"{where}: event {i}")
            if i < max_proposals:
                kept.append((seg[0], seg[1], ev["sentence"]))
        if cid in refs.names:
            preds[cid] = kept
        else:
            ignored += 1
    return preds, ignored


def detection(refs, preds, thr):
    """(recall, precision) at one threshold, averaged over all reference videos."""
    recall = precision = 0.0
    for cid in refs.order:
        best_r = best_p = 0.0
        plist = preds.get(cid, [])
        for segs, _ in refs.events(cid):
            hit_ref, hit_pred = set(), set()
            for i, p in enumerate(plist):
                for j, g in enumerate(segs):
                    if tiou(p, g) > thr:
                        hit_ref.add(j)
                        hit_pred.add(i)
            best_r = max(best_r, len(hit_ref) / len(segs))
            if plist:
                best_p = max(best_p, len(hit_pred) / len(plist))
        recall += best_r
        precision += best_p
    return recall / len(refs.order), precision / len(refs.order)


def caption_pairs(refs, plist, cid, thr):
    """[(predicted sentence, reference sentence)] of one video at one threshold, garbage for unmatched ones."""
    pairs = []
    for p in plist:
        matched = False
        for segs, sents in refs.events(cid):
            for g, s in zip(segs, sents):
                if tiou(p, g) >= thr:
                    pairs.append((p[2], s))
                    matched = True
        if not matched:
            pairs.append((p[2], GARBAGE_REFERENCE))
    return pairs


METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr-D", "ROUGE_L")


def video_scores(pairs, tokens):
    """Every caption metric of one video's pairs (0 when there are none)."""
    if not pairs:
        return dict.fromkeys(METRICS, 0.0)
    items = [(tokens(c), [tokens(r)]) for c, r in pairs]
    out = dict(zip(METRICS[:4], bleu(items)))
    cider = cider_d(items)
    out["CIDEr-D"] = sum(cider) / len(cider)
    out["ROUGE_L"] = sum(rouge_l(c, rs) for c, rs in items) / len(items)
    return out


def evaluate(refs, preds, tious):
    """{metric: [value per threshold]} for Recall, Precision and the caption metrics, as fractions."""
    cache = {}

    def tokens(s):
        t = cache.get(s)
        if t is None:
            t = cache[s] = ptb_tokenize(s)
        return t

    scores = {m: [] for m in ("Recall", "Precision") + METRICS}
    for thr in tious:
        r, p = detection(refs, preds, thr)
        scores["Recall"].append(r)
        scores["Precision"].append(p)
        sums = dict.fromkeys(METRICS, 0.0)
        for cid in refs.order:
            for m, v in video_scores(caption_pairs(refs, preds.get(cid, []), cid, thr), tokens).items():
                sums[m] += v
        for m in METRICS:
            scores[m].append(sums[m] / len(refs.order))
    return scores


# ---------------------------------------------------------------------------------------------- baselines


def whole_video_baseline(train, test):
    """One event per test video over [0, duration] with the most frequent training sentence (compared as tokens;
    ties go to the one met first; the sentence is written as first met, trimmed)."""
    counts, first_text = Counter(), {}
    for videos in train.files:
        for cid in videos:
            for s in videos[cid][1]:
                key = " ".join(ptb_tokenize(s))
                counts[key] += 1
                first_text.setdefault(key, s.strip())
    if not counts:
        raise EvalError(f"{train.paths[0]}: no training sentences")
    best = max(counts.values())
    sentence = next(first_text[k] for k in first_text if counts[k] == best)
    results = {}
    for cid in test.order:
        if cid not in test.durations:
            raise EvalError(f"{test.paths[0]}: {test.names[cid]}: no numeric 'duration'")
        results[test.names[cid]] = [{"sentence": sentence, "timestamp": [0.0, test.durations[cid]]}]
    details = f"whole-video baseline: most frequent training sentence ({best} of {sum(counts.values())})"
    return {"version": "VERSION 1.0", "results": results, "external_data": {"used": False, "details": details}}


def gt_segments(refs):
    """The reference segments of every video (all files, duplicates once), sentences left empty for a captioner."""
    results = {}
    for cid in refs.order:
        seen, events = set(), []
        for segs, _ in refs.events(cid):
            for seg in segs:
                if seg not in seen:
                    seen.add(seg)
                    events.append({"sentence": "", "timestamp": [seg[0], seg[1]]})
        results[refs.names[cid]] = events
    details = "ground-truth segments of " + ", ".join(os.path.basename(p) for p in refs.paths)
    return {"version": "VERSION 1.0", "results": results, "external_data": {"used": False, "details": details}}


def write_json(path, obj):
    """Writes through a temporary file and a rename, so a failure leaves no partial file."""
    d = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".densecap_eval.", dir=d)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        raise EvalError(f"{path}: {e.strerror or e}")


# ---------------------------------------------------------------------------------------------- CLI


def format_report(scores, tious, verbose):
    def pct(v):
        return f"{100 * v:10.2f}"

    mean = {m: sum(v) / len(v) for m, v in scores.items()}
    cols = ["Recall", "Precision"] + (list(METRICS) if verbose else [])
    head = {"Bleu_1": "BLEU-1", "Bleu_2": "BLEU-2", "Bleu_3": "BLEU-3", "Bleu_4": "BLEU-4", "ROUGE_L": "ROUGE-L"}
    lines = ["tIoU  " + "".join(f"{head.get(c, c):>10}" for c in cols)]
    for i, t in enumerate(tious):
        lines.append(f"{t:<6g}" + "".join(pct(scores[c][i]) for c in cols))
    lines.append("mean  " + "".join(pct(mean[c]) for c in cols))
    lines.append("")
    lines.append("caption metrics, mean over tIoU " + " ".join(f"{t:g}" for t in tious) + ":")
    lines.append("      " + "".join(f"{h:>10}" for h in ("BLEU-4", "CIDEr-D", "ROUGE-L")))
    lines.append("mean  " + pct(mean["Bleu_4"]) + pct(mean["CIDEr-D"]) + pct(mean["ROUGE_L"]))
    lines.append("METEOR: not computed (needs the METEOR 1.5 jar and its paraphrase tables)")
    return "\n".join(lines)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="densecap_eval.py",
        description="Dense-captioning evaluation with the 2018 ActivityNet Captions protocol (scores x100).",
    )
    ap.add_argument("-r", "--references", action="append", nargs="+", metavar="REF.json",
                    help="reference file(s) in ActivityNet Captions format; repeat for several")
    ap.add_argument("-s", "--submission", metavar="SUB.json", help="submission to score")
    ap.add_argument("--tious", type=float, nargs="+", default=DEFAULT_TIOUS, metavar="T")
    ap.add_argument("--max-proposals", type=int, default=1000, metavar="N",
                    help="keep the first N predictions of each video (default 1000)")
    ap.add_argument("--json", metavar="OUT.json", help="also write the scores (x100) as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="every metric at every threshold")
    ap.add_argument("--make-baseline", choices=["whole-video"],
                    help="write a baseline submission for the -r videos to -o")
    ap.add_argument("--train-references", metavar="TRAIN.json", help="training references for --make-baseline")
    ap.add_argument("--make-gt-segments", action="store_true",
                    help="write the -r segments, with empty sentences, as a submission to -o")
    ap.add_argument("-o", "--output", metavar="OUT.json", help="output of --make-baseline / --make-gt-segments")
    args = ap.parse_args(argv)
    args.references = [p for group in (args.references or []) for p in group]
    if not args.references:
        ap.error("at least one -r REF.json is needed")
    if args.make_baseline or args.make_gt_segments:
        if not args.output:
            ap.error("--make-baseline and --make-gt-segments need -o OUT.json")
        if args.make_baseline and not args.train_references:
            ap.error("--make-baseline whole-video needs --train-references TRAIN.json")
    elif not args.submission:
        ap.error("-s SUBMISSION.json is needed")
    if args.max_proposals < 1:
        ap.error("--max-proposals must be at least 1")
    if any(not 0 <= t <= 1 for t in args.tious):
        ap.error("--tious must lie in [0, 1]")
    return args


def run(args):
    refs = References(args.references)
    if not refs.order:
        raise EvalError(f"{args.references[0]}: no videos")
    if args.make_gt_segments:
        write_json(args.output, gt_segments(refs))
        return
    if args.make_baseline:
        write_json(args.output, whole_video_baseline(References([args.train_references]), refs))
        return
    preds, ignored = load_submission(args.submission, refs, args.max_proposals)
    scores = evaluate(refs, preds, args.tious)
    print(f"densecap_eval: ActivityNet 2018 protocol, scores x100; {len(refs.order)} reference videos "
          f"in {len(refs.paths)} file(s), {len(preds)} of them in the submission"
          + (f", {ignored} submitted videos not in the references ignored" if ignored else ""))
    print(format_report(scores, args.tious, args.verbose))
    if args.json:
        write_json(args.json, {
            "protocol": "ActivityNet dense captioning, 2018 evaluator (densevid_eval deba7d7) rules",
            "scale": 100,
            "references": args.references,
            "submission": args.submission,
            "tious": args.tious,
            "max_proposals": args.max_proposals,
            "videos": len(refs.order),
            "videos_predicted": len(preds),
            "per_tiou": {m: [100 * x for x in v] for m, v in scores.items()},
            "mean": {m: 100 * sum(v) / len(v) for m, v in scores.items()},
        })


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except EvalError as e:
        print(f"densecap_eval: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
