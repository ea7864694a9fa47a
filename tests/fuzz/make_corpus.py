#!/usr/bin/env python3
"""make_corpus.py: writes the small seed corpora of the fuzz harnesses (tests/fuzz/corpus/<name>/).
Standard library only; the files are committed too, so this only needs rerunning to change them.
Run from anywhere: python3 tests/fuzz/make_corpus.py"""
import gzip, json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(kind, name, data):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- IDX: big-endian header 00 00 type rank, u32 dims, data
def idx(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload

put("idx", "u8_images", idx(0x08, [2, 3, 3], bytes(range(18))))
put("idx", "u8_labels", idx(0x08, [5], bytes([9, 0, 0, 3, 1])))
put("idx", "u8_labels.gz", gzip.compress(idx(0x08, [5], bytes([9, 0, 0, 3, 1])), mtime=0))
put("idx", "i8", idx(0x09, [4], struct.pack(">4b", -128, -1, 0, 127)))
put("idx", "i16", idx(0x0B, [2, 2], struct.pack(">4h", -32768, -1, 1, 32767)))
put("idx", "i32", idx(0x0C, [3], struct.pack(">3i", -2**31, 0, 2**31 - 1)))
put("idx", "f32", idx(0x0D, [1, 2], struct.pack(">2f", 1.5, -0.25)))
put("idx", "f64.gz", gzip.compress(idx(0x0E, [2], struct.pack(">2d", 3.25, -1e300)), mtime=0))
put("idx", "empty", idx(0x08, [0, 28, 28], b""))
# found by fuzzing: a zero dimension after huge ones is an empty array, not an overflow
put("idx", "zero_after_huge", idx(0x08, [0x360000, 0x9010000, 0x50900, 0, 0x301], b""))


# ---- PNG: hand-made chunks, filter 0 rows
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, bits):
    if bits == 8:
        return bytes(samples)
    if bits == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, n = bytearray(), 0, 0
    for s in samples:
        acc = acc << bits | s
        n += bits
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(w, h, color, bits, pixels, chans, plte=None, trns=None, interlace=0):
    """pixels: rows of w pixels, each a tuple of `chans` samples"""
    raw = bytearray()
    if not interlace:
        for row in pixels:
            raw += b"\0" + pack_row([s for p in row for s in p], bits)
    else:
        for x0, y0, dx, dy in ADAM7:
            for y in range(y0, h, dy):
                xs = range(x0, w, dx)
                if len(xs):
                    raw += b"\0" + pack_row([s for x in xs for s in pixels[y][x]], bits)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, color, 0, 0, interlace))
    if plte:
        out += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


def grid(w, h, f):
    return [[f(x, y) for x in range(w)] for y in range(h)]

put("png", "gray8.png", png(4, 3, 0, 8, grid(4, 3, lambda x, y: (x * 60 + y,)), 1))
put("png", "gray1.png", png(9, 2, 0, 1, grid(9, 2, lambda x, y: ((x + y) & 1,)), 1))
put("png", "gray4_trns.png", png(3, 2, 0, 4, grid(3, 2, lambda x, y: (x * 5,)), 1, trns=struct.pack(">H", 5)))
put("png", "gray16.png", png(2, 2, 0, 16, grid(2, 2, lambda x, y: (x * 40000 + y * 999,)), 1))
put("png", "gray_alpha.png", png(2, 2, 4, 8, grid(2, 2, lambda x, y: (x * 200, y * 255)), 2))
put("png", "rgb.png", png(3, 2, 2, 8, grid(3, 2, lambda x, y: (x * 100, y * 200, 7)), 3))
put("png", "rgba16.png", png(2, 1, 6, 16, grid(2, 1, lambda x, y: (1, 2, 65535, x * 30000)), 4))
put("png", "palette2_trns.png", png(5, 2, 3, 2, grid(5, 2, lambda x, y: ((x + y) % 4,)), 1,
                                    plte=[255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9], trns=bytes([0, 128])))
put("png", "palette8.png", png(2, 2, 3, 8, grid(2, 2, lambda x, y: (x + 2 * y,)), 1,
                               plte=[i * 20 for i in range(12)]))
put("png", "rgb_adam7.png", png(9, 9, 2, 8, grid(9, 9, lambda x, y: (x * 28, y * 28, (x * y) % 256)), 3, interlace=1))
put("png", "gray2_adam7.png", png(5, 6, 0, 2, grid(5, 6, lambda x, y: ((x + y) % 4,)), 1, interlace=1))


# ---- safetensors: u64 LE header size, JSON header, data
def st(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data

put("safetensors", "f32", st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, struct.pack("<2f", 1, -2)))
put("safetensors", "meta_scalar", st({"__metadata__": {"format": "pt"},
                                      "s": {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}}, struct.pack("<d", 0.5)))
put("safetensors", "mixed", st({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
                                "b": {"dtype": "BF16", "shape": [1, 1], "data_offsets": [4, 6]},
                                "c": {"dtype": "I32", "shape": [1], "data_offsets": [6, 10]},
                                "d": {"dtype": "I16", "shape": [1], "data_offsets": [10, 12]},
                                "e": {"dtype": "I8", "shape": [2], "data_offsets": [12, 14]},
                                "f": {"dtype": "BOOL", "shape": [2], "data_offsets": [14, 16]},
                                "g": {"dtype": "U8", "shape": [0, 3], "data_offsets": [16, 16]},
                                "h": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}},
                               struct.pack("<HHHiHbbBBq", 0x3C00, 0x7C00, 0x3F80, -5, 0xFFFF, -1, 7, 0, 1, 2**40), pad=False))
put("safetensors", "empty", st({}, b""))


# ---- JSON
for name, text in [
    ("object", '{"a": [1, 2.5, -3e-7, "x\\u00e9\\n", true, false, null], "b": {"c": {}}}'),
    ("ints", "[0, -0, 9223372036854775807, -9223372036854775808, 92233720368547758070, 1.0, 1e2]"),
    ("string", '"tab\\t quote\\" back\\\\ \\ud83d\\ude00"'),
    ("nested", "[[[[[[[[[[{}]]]]]]]]]]"),
    ("number", "0.1"),
]:
    put("json", name + ".json", text.encode())
