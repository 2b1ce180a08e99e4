#!/usr/bin/env python3
"""Writes vidcap's safetensors test corpus: bad/ (each file breaks one rule; bad/EXPECTED says how st_open
must fail) and good/ (edge cases that must load). Stdlib only and deterministic: after editing a case,
rerun `python3 tests/assets/safetensors/make_corpus.py` and commit what changed."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def st(header, data=b"", pad=True):
    """A file: 8-byte LE header length, the header (a dict, or raw str/bytes kept as written), data."""
    if isinstance(header, dict):
        h = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        h = header.encode()
    else:
        h = header
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def t(dtype="F32", shape=(2,), offsets=(0, 8)):
    """One tensor entry; shape and offsets are taken as given when they are not tuples or lists."""
    listed = lambda v: list(v) if isinstance(v, (list, tuple)) else v
    return {"dtype": dtype, "shape": listed(shape), "data_offsets": listed(offsets)}


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


W = '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'  # a valid entry, for raw-text headers
D = f32(1.0, 2.0)

# (file name, bytes, substring the error must contain, expected code)
BAD = [
    ("empty.safetensors", b"", "file is empty", "FORMAT"),
    ("short_4_bytes.safetensors", b"\x08\x00\x00\x00", "too short for the 8-byte header length", "FORMAT"),
    ("header_past_eof.safetensors", struct.pack("<Q", 64) + b"{}      ", "runs past the end of the file", "FORMAT"),
    ("header_over_100mb.safetensors", struct.pack("<Q", 100_000_001) + b"{}      ",
     "exceeds the 100000000-byte limit", "FORMAT"),
    ("header_len_u64_max.safetensors", b"\xff" * 8 + b"{}      ", "exceeds the 100000000-byte limit", "FORMAT"),
    ("header_only_spaces.safetensors", st(b" " * 8), "not a JSON object: it is empty", "FORMAT"),
    ("truncated_data.safetensors", st({"w": t(shape=[4], offsets=[0, 16])}, D), "file is truncated", "FORMAT"),
    ("non_utf8.safetensors", st(b'{"w\xff":' + W[4:].encode() + b"}", D), "not valid UTF-8", "FORMAT"),
    ("utf8_overlong.safetensors", st(b'{"\xc0\xaf":' + W[4:].encode() + b"}", D), "not valid UTF-8", "FORMAT"),
    ("utf8_overlong_3byte.safetensors", st(b'{"\xe0\x80\xaf":' + W[4:].encode() + b"}", D), "not valid UTF-8",
     "FORMAT"),
    ("utf8_above_10ffff.safetensors", st(b'{"\xf4\x90\x80\x80":' + W[4:].encode() + b"}", D), "not valid UTF-8",
     "FORMAT"),
    ("utf8_truncated_sequence.safetensors", st(b'{"\xe2\x9c":' + W[4:].encode() + b"}", D), "not valid UTF-8",
     "FORMAT"),
    # the sequence would complete only with the first data bytes: the check must stop at the header's end
    ("utf8_split_at_header_end.safetensors", st(b"{" + W.encode() + b"}\xe2", b"\x9c\x93" + b"\x00" * 6, pad=False),
     "not valid UTF-8", "FORMAT"),
    ("utf8_surrogate.safetensors", st(b'{"\xed\xa0\x80":' + W[4:].encode() + b"}", D), "not valid UTF-8",
     "FORMAT"),
    ("control_byte.safetensors", st(b'{\x01' + W.encode() + b"}", D), "raw control byte 0x01", "FORMAT"),
    ("raw_newline_in_name.safetensors", st(b'{"a\nb":' + W[4:].encode() + b"}", D), "raw control byte 0x0a",
     "FORMAT"),
    ("nul_escape_in_name.safetensors", st('{"a\\u0000b":' + W[4:] + "}", D), "\\u0000 escape", "UNSUPPORTED"),
    ("not_json.safetensors", st('{"w": nope}', D), "not valid JSON", "FORMAT"),
    ("lone_surrogate_escape.safetensors", st('{"\\ud800":' + W[4:] + "}", D), "not valid JSON", "FORMAT"),
    ("array_header.safetensors", st("[{" + W + "}]", D), "not a JSON object: it starts with '['", "FORMAT"),
    ("bom_header.safetensors", st(b"\xef\xbb\xbf{" + W.encode() + b"}", D), "not a JSON object: it starts with byte 0xef",
     "FORMAT"),
    ("garbage_after_json.safetensors", st("{" + W + "}x", D), "unexpected bytes after the JSON object", "FORMAT"),
    ("two_objects.safetensors", st("{" + W + "}{}", D), "unexpected bytes after the JSON object", "FORMAT"),
    ("duplicate_tensor.safetensors", st("{" + W + "," + W + "}", D), 'duplicate key "w"', "FORMAT"),
    ("duplicate_tensor_apart.safetensors",
     st("{" + W + ',"x":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},' + W + "}", D), 'duplicate key "w"',
     "FORMAT"),
    ("duplicate_field.safetensors",
     st('{"w":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', D), 'duplicate key "dtype"',
     "FORMAT"),
    ("duplicate_metadata_key.safetensors", st('{"__metadata__":{"k":"a","k":"b"},' + W + "}", D),
     'duplicate key "k"', "FORMAT"),
    ("entry_not_object.safetensors", st({"w": [0, 8]}, D), "entry is not a JSON object", "FORMAT"),
    ("missing_dtype.safetensors", st({"w": {"shape": [2], "data_offsets": [0, 8]}}, D), 'missing "dtype"', "FORMAT"),
    ("missing_shape.safetensors", st({"w": {"dtype": "F32", "data_offsets": [0, 8]}}, D), 'missing "shape"',
     "FORMAT"),
    ("missing_data_offsets.safetensors", st({"w": {"dtype": "F32", "shape": [2]}}, D), 'missing "data_offsets"',
     "FORMAT"),
    ("dtype_key_uppercase.safetensors", st({"w": {"DTYPE": "F32", "shape": [2], "data_offsets": [0, 8]}}, D),
     'missing "dtype"', "FORMAT"),
    ("dtype_not_string.safetensors", st({"w": t(dtype=32)}, D), '"dtype" is not a string', "FORMAT"),
    ("unknown_dtype.safetensors", st({"w": t(dtype="F33")}, D), 'unknown dtype "F33"', "FORMAT"),
    ("dtype_lowercase.safetensors", st({"w": t(dtype="f32")}, D), 'unknown dtype "f32"', "FORMAT"),
    ("unsupported_i64.safetensors", st({"w": t(dtype="I64", shape=[1])}, D), "dtype I64 is not supported",
     "UNSUPPORTED"),
    ("unsupported_f64.safetensors", st({"w": t(dtype="F64", shape=[1])}, D), "dtype F64 is not supported",
     "UNSUPPORTED"),
    ("too_many_dims.safetensors", st({"w": t(shape=[1] * 8 + [2])}, D), "9 dims, vidcap supports at most 8",
     "UNSUPPORTED"),
    ("shape_not_array.safetensors", st({"w": t(shape=2)}, D), '"shape" is not an array', "FORMAT"),
    ("shape_negative_dim.safetensors", st({"w": t(shape=[2, -1])}, D), "shape[1] is -1, not an integer in [0, 2^53)",
     "FORMAT"),
    ("shape_fractional_dim.safetensors", st({"w": t(shape=[2.5])}, D), "shape[0] is 2.5, not an integer", "FORMAT"),
    ("shape_string_dim.safetensors", st({"w": t(shape=["2"])}, D), "shape[0] is not a number", "FORMAT"),
    ("shape_dim_2p53.safetensors", st({"w": t(shape=[2 ** 53, 0])}, D), "shape[0] is 9007199254740992, not an integer", "FORMAT"),
    ("shape_dim_1e999.safetensors", st('{"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,8]}}', D),
     "shape[0] is inf, not an integer", "FORMAT"),
    ("shape_product_overflow.safetensors", st({"w": t(shape=[2 ** 32, 2 ** 32, 0])}, D),
     "shape product overflows 64 bits", "FORMAT"),
    ("byte_size_overflow.safetensors", st({"w": t(shape=[2 ** 31, 2 ** 31])}, D), "byte size overflows 64 bits",
     "FORMAT"),
    ("byte_length_mismatch.safetensors", st({"w": t(shape=[2, 2], offsets=[0, 12])}, f32(1, 2, 3)),
     "data_offsets span 12 bytes but shape [2, 2] of F32 needs 16", "FORMAT"),
    ("partial_byte_f4.safetensors", st({"w": t(dtype="F4", shape=[3], offsets=[0, 2])}, b"\x00\x00"),
     "ends in a partial byte", "FORMAT"),
    ("offsets_not_pair.safetensors", st({"w": t(offsets=[0])}, D), '"data_offsets" is not a [begin, end] array',
     "FORMAT"),
    ("offset_non_integer.safetensors", st({"w": t(offsets=[0, 8.5])}, D), "data_offsets[1] is 8.5, not an integer",
     "FORMAT"),
    ("offset_negative.safetensors", st({"w": t(offsets=[-8, 0])}, D), "data_offsets[0] is -8, not an integer",
     "FORMAT"),
    ("offset_string.safetensors", st({"w": t(offsets=["0", 8])}, D), "data_offsets[0] is not a number", "FORMAT"),
    ("end_before_begin.safetensors", st({"a": t(shape=[0], offsets=[8, 0]), "w": t()}, D),
     "data_offsets end 0 is before begin 8", "FORMAT"),
    ("first_offset_not_zero.safetensors", st({"w": t(offsets=[4, 12])}, f32(0, 1, 2)), "data starts at 4, expected 0",
     "FORMAT"),
    ("hole_between_tensors.safetensors", st({"a": t(), "b": t(offsets=[12, 20])}, f32(1, 2, 0, 3, 4)),
     "data starts at 12 but the previous tensor ends at 8 (hole)", "FORMAT"),
    ("overlapping_tensors.safetensors", st({"a": t(), "b": t(offsets=[4, 12])}, f32(1, 2, 3)),
     "data starts at 4 but the previous tensor ends at 8 (overlap)", "FORMAT"),
    ("same_offsets_twice.safetensors", st({"a": t(), "b": t()}, D), "(overlap)", "FORMAT"),
    ("trailing_bytes.safetensors", st({"w": t()}, D + b"\x00" * 4), "4 trailing bytes after the last tensor's data",
     "FORMAT"),
    ("data_without_tensors.safetensors", st({}, D), "8 trailing bytes", "FORMAT"),
    ("metadata_not_map.safetensors", st({"__metadata__": ["a", "b"], "w": t()}, D),
     '"__metadata__" is not an object of strings', "FORMAT"),
    ("metadata_string.safetensors", st({"__metadata__": "a", "w": t()}, D), '"__metadata__" is not an object',
     "FORMAT"),
    ("metadata_value_not_string.safetensors", st({"__metadata__": {"epochs": 3}, "w": t()}, D),
     '"__metadata__" value for "epochs" is not a string', "FORMAT"),
    ("metadata_value_object.safetensors", st({"__metadata__": {"k": {"a": "b"}}, "w": t()}, D),
     'value for "k" is not a string', "FORMAT"),
]


def f16_bits(*bits):
    return struct.pack("<%dH" % len(bits), *bits)


# F16 and BF16 bit patterns the C test checks against their exact F32 widening.
F16 = [0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0400, 0x0001, 0x03FF,
       0x8001, 0x0200, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x3555]
BF16 = [0x3F80, 0x0001, 0x7F80, 0xFF80, 0x7FC1, 0x8000, 0x4049, 0x7F7F, 0x0000]


def widening_file():
    """F32 'a' aligned in the mapping, then F16 'h' and BF16 'b', then F32 'f' at data offset 58, which is
    not 4-aligned, so the reader must copy it."""
    a, h, b, f = f32(0.5, -1.5), f16_bits(*F16), f16_bits(*BF16), f32(3.0, -0.0, 1e-45)
    o1, o2, o3 = len(a), len(a) + len(h), len(a) + len(h) + len(b)
    header = {"__metadata__": {"note": "widening"},
              "a": t(shape=[2], offsets=[0, o1]),
              "h": t(dtype="F16", shape=[4, 4], offsets=[o1, o2]),
              "b": t(dtype="BF16", shape=[9], offsets=[o2, o3]),
              "f": t(shape=[3], offsets=[o3, o3 + len(f)])}
    return st(header, a + h + b + f)


W_JSON = json.dumps({"w": t()}, separators=(",", ":"))
GOOD = [
    # JSON whitespace on both sides of the object; length 8k+6 also leaves the data 2 bytes off alignment
    ("whitespace_padded.safetensors", st(" \t\r\n" + W_JSON + "\n\t\r ", D, pad=False)),
    ("zero_size_and_scalar.safetensors",
     st({"__metadata__": {"zeta": "1", "alpha": "2", "mu": ""},  # unsorted on purpose
         "empty": t(shape=[0, 3], offsets=[0, 0]), "s": t(shape=[], offsets=[0, 4]),
         "w": t(offsets=[4, 12]), "z_end": t(shape=[5, 0], offsets=[12, 12])}, f32(7.0, 1.0, 2.0))),
    ("only_zero_size.safetensors", st({"e": t(shape=[0], offsets=[0, 0])})),
    ("no_tensors.safetensors", st({"__metadata__": {"k": "v"}})),
    ("widening.safetensors", widening_file()),
    # escaped quotes and backslashes must not confuse the string-aware header scan: raw newlines between
    # tokens are whitespace, and \\u0000 (an escaped backslash, then text) is not a NUL escape
    ("escapes_pretty_printed.safetensors",
     st(json.dumps({"__metadata__": {"q": 'say "hi"\n\ttab\\'}, 'a"b\\': t(),
                    "x\\u0000": t(shape=[0], offsets=[8, 8])}, indent=1), D)),
]


def main():
    written = {}
    for sub, cases in (("bad", BAD), ("good", [(n, b, None, None) for n, b in GOOD])):
        d = os.path.join(HERE, sub)
        os.makedirs(d, exist_ok=True)
        written[sub] = set()
        for name, data, _, _ in cases:
            assert name not in written[sub], name
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
            written[sub].add(name)
    with open(os.path.join(HERE, "bad", "EXPECTED"), "w") as fh:
        fh.write("# Generated by make_corpus.py: file<TAB>substring of the error<TAB>code (FORMAT if absent).\n")
        for name, _, sub, code in BAD:
            fh.write("%s\t%s\t%s\n" % (name, sub, code))
    written["bad"].add("EXPECTED")
    for sub in written:
        extra = sorted(set(os.listdir(os.path.join(HERE, sub))) - written[sub])
        if extra:
            print("warning: %s/ holds files this script does not write: %s" % (sub, " ".join(extra)))
    print("%d bad and %d good files in %s" % (len(BAD), len(GOOD), HERE))


if __name__ == "__main__":
    main()
