#!/bin/sh
# Video front end, measured side by side in one run: `vidcap features` (decode thread + filtered backbone)
# against `ffmpeg -i X -f null -` decoding the same file, on a Moving Fashion video and on a 720p H.264
# clip; and peak RSS of `vidcap features` on a 1-minute and a 20-minute video of the same resolution.
# Target: the pipeline takes at most 1.2 x max(decode time, backbone time), i.e. decode and compute overlap.
#   sh tools/bench/bench_video.sh [BUILD_DIR [MODEL]]     (make bench-video)
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build}
model=${2:-models/moving-fashion.safetensors}
work=tools/bench/.work/video
mkdir -p "$work"
threads=${THREADS:-2}

# inputs: the Moving Fashion sample, a 720p H.264 clip (testsrc2, 30 s at 30 fps), and 1- and 20-minute
# Moving Fashion videos (generated test videos joined by the concat demuxer, tools/make_long_video.py)
mf=samples/moving-fashion.mp4
[ -f "$work/720p.mp4" ] || ffmpeg -v error -f lavfi -i testsrc2=size=1280x720:rate=30:duration=30 \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p "$work/720p.mp4"
if [ ! -f "$work/long20.mp4" ]; then
    /usr/bin/python3 tools/make_long_video.py --minutes 20 --out "$work/long20.mp4" --work "$work/parts"
    ffmpeg -v error -y -i "$work/long20.mp4" -c copy -t 60 "$work/long1.mp4"
fi

run_pair() { # label file
    t0=$(date +%s.%N)
    ffmpeg -v error -threads "$threads" -i "$2" -f null - 
    t1=$(date +%s.%N)
    "$build/vidcap" features -np -pp -t "$threads" -m "$model" "$2" -o "$work/out.safetensors" 2> "$work/log.txt" || {
        cat "$work/log.txt" >&2; exit 1; }
    line=$(grep 'timings:' "$work/log.txt")
    awk -v label="$1" -v ff="$(awk -v a="$t0" -v b="$t1" "BEGIN { print b - a }")" -v line="$line" 'BEGIN {
        split(line, w, " ");
        for (i = 1; i <= length(w); i++) {
            if (w[i] == "decode") dec = w[i + 1];
            if (w[i] == "backbone") bb = w[i + 1];
            if (w[i] == "total") tot = w[i + 1];
            if (w[i] == "frames/s,") fps = w[i - 1];
            if (w[i] == "real") rt = w[i - 1];
        }
        m = dec > bb ? dec : bb;
        printf "| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f | %s | %s | %.2fx |\n",
               label, ff, dec, bb, tot, tot / m, fps, rt, ff / tot }'
}
echo "| input | ffmpeg -f null (decode all) | vidcap decode (own thread) | vidcap backbone | vidcap total | total / max(decode, backbone) | sampled frames/s | x real time | ffmpeg time / vidcap time |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
run_pair "Moving Fashion 96x96, 32 s (the sample)" "$mf"
run_pair "testsrc2 1280x720 H.264, 30 s" "$work/720p.mp4"
run_pair "Moving Fashion, 20 min" "$work/long20.mp4"

rss() { /usr/bin/time -f "%M" "$build/vidcap" features -np -t "$threads" -m "$model" "$1" -o "$work/$2" 2>&1 | tail -1; }
r1=$(rss "$work/long1.mp4" rss1.safetensors); r20=$(rss "$work/long20.mp4" rss20.safetensors)
rows=$(stat -c %s "$work/rss20.safetensors")   # the 20-minute feature sequence as written (rows + times + header)
echo
echo "| video | peak RSS |"
echo "|---|---:|"
echo "| 1 min | $((r1 / 1024)) MiB |"
echo "| 20 min | $((r20 / 1024)) MiB |"
awk -v a="$r1" -v b="$r20" -v rows="$rows" 'BEGIN {
    printf "20 min / 1 min = %.2fx; allowed: 1.2 x %.0f MiB + the 20-minute feature sequence (%.1f MiB) = %.0f MiB\n",
           b / a, a / 1024, rows / 1048576, (1.2 * a * 1024 + rows) / 1048576 }'
