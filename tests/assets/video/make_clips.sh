#!/bin/sh
# Makes the video test clips in this folder from FFmpeg's own sources (Debian 12, FFmpeg 5.1 with libx264).
# The clips are committed; rerun only to change them, then rewrite golden.txt with
#   test_video tests/assets/video --write-golden > tests/assets/video/golden.txt
# and check the semantic tests in tests/test_video.c still pass (they do not trust the golden).
set -eu
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
# byte offset of the middle of packet N (0-based) of the video stream
packet_field() { ffprobe -v error -select_streams v -show_entries packet="$2" -of csv=p=0 "$1" | sed -n "$(($3 + 1))p"; }
mid_of_packet() { echo $(($(packet_field "$1" pos "$2") + $(packet_field "$1" size "$2") / 2)); }

# Constant rate H.264: testsrc2 changes every frame, 25 fps, 2 s, 4:2:0, no colour tags (BT.601 limited).
ff -f lavfi -i "testsrc2=s=64x48:r=25:d=2" -c:v libx264 -preset veryslow -crf 28 -pix_fmt yuv420p cfr.mp4

# The same frames as a raw H.264 stream: no container, no timestamps, no duration (the reader counts frame
# intervals from the stream's frame rate).
ff -i cfr.mp4 -c copy -f h264 cfr.h264

# "Numbered" frames: frame N is a flat grey of 20 + 20 N (full-range grey, converted to limited YUV), so a
# test can tell which frame a sample shows.
NUMBERED="color=black:s=64x48:r=10:d=1,format=gray,geq=lum='20+20*N'"

# Variable frame rate: frame N at 0.02 N^2 s (0, 0.02, 0.08, 0.18, 0.32, 0.50, 0.72, 0.98, 1.28, 1.62), in a
# 1/1000 time base end to end (-enc_time_base, else ffmpeg rounds to the source's 1/10); no B-frames so
# the packets keep those times; the last frame lasts 0.1 s (the source's rate).
ff -f lavfi -i "$NUMBERED" -vf "settb=1/1000,setpts='N*N*0.02/TB',format=yuv420p" -fps_mode vfr \
   -enc_time_base 1:1000 -c:v libx264 -bf 0 -preset veryslow -crf 10 -video_track_timescale 1000 vfr.mp4

# Non-zero start: MPEG-TS shifted by 5 s (plus the muxer's own 1.4 s delay): the stream starts at 6.4 s.
ff -f lavfi -i "$NUMBERED,format=yuv420p" -c:v libx264 -preset veryslow -crf 10 -output_ts_offset 5 offset.ts

# Rotated: a 64x32 blue frame with a red 16x8 block in its top-left corner, the display matrix written by
# a stream copy. FFmpeg 5.1's mov muxer turns rotate=N into a matrix of N degrees counter-clockwise
# (av_display_rotation_get = N): players show the stored top-left corner at bottom-left for 90,
# bottom-right for 180, top-right for 270.
ff -f lavfi -i "color=blue:s=64x32:r=10:d=0.3,drawbox=x=0:y=0:w=16:h=8:color=red:t=fill" -c:v libx264 \
   -pix_fmt yuv444p rot-src.tmp.mp4
for r in 90 180 270; do
    ff -i rot-src.tmp.mp4 -c copy -metadata:s:v rotate=$r rot$r.mp4
done
rm -f rot-src.tmp.mp4

# 10-bit 4:2:0, BT.709 limited (tagged and converted so), x264 High 10: the 75% SMPTE bars.
ff -f lavfi -i "smptebars=s=112x64:r=10:d=0.3" -vf "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p10le" \
   -c:v libx264 -profile:v high10 -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv \
   bars10.mp4
# 8-bit 4:4:4, BT.601 full range, x264 High 4:4:4: the same bars.
ff -f lavfi -i "smptebars=s=112x64:r=10:d=0.3" -vf "scale=out_color_matrix=bt601:out_range=pc,format=yuv444p" \
   -c:v libx264 -profile:v high444 -colorspace smpte170m -color_range pc bars444.mp4

# Bad inputs.
ff -f lavfi -i "sine=f=440:d=0.5" -c:a aac -b:a 32k audio.m4a
# an MP3 whose only picture is its ID3 cover (a video stream with the attached-pic disposition)
ff -f lavfi -i "sine=f=440:d=0.5" -f lavfi -i "color=red:s=16x16:d=0.1" -map 0:a -map 1:v -c:a libmp3lame \
   -b:a 32k -c:v png -frames:v 1 -disposition:v:0 attached_pic -id3v2_version 3 cover.mp3
ff -f lavfi -i "testsrc2=s=64x48" -frames:v 0 -c:v libx264 zero-streams.mp4
printf 'YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n' > zero-frames.y4m
printf 'YUV4MPEG2 W16385 H16 F25:1 Ip A1:1 C420jpeg\nFRAME\n' > huge-side.y4m
printf 'YUV4MPEG2 W9000 H9000 F25:1 Ip A1:1 C420jpeg\nFRAME\n' > huge-area.y4m
printf 'this is a text file, not a video\n' > not-a-video.mp4
: > empty.mp4
# the moov atom is at the end of cfr.mp4: its first half has none
head -c "$(($(wc -c < cfr.mp4) / 2))" cfr.mp4 > truncated-nomoov.mp4
# moov first, then cut in the middle of packet 20: 20 whole frames, one partial packet, nothing after
ff -i cfr.mp4 -c copy -movflags +faststart faststart.tmp.mp4
head -c "$(mid_of_packet faststart.tmp.mp4 20)" faststart.tmp.mp4 > truncated.mp4
rm -f faststart.tmp.mp4
# packet 10's first NAL length overwritten with 0xffffffff: the decoder rejects that packet, and the
# frames that refer to it are decoded from what is left
cp cfr.mp4 corrupt.mp4
printf '\377\377\377\377' | dd of=corrupt.mp4 bs=1 seek="$(packet_field cfr.mp4 pos 10)" conv=notrunc status=none
ls -l
