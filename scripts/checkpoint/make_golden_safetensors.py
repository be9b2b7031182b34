#!/usr/bin/python3
"""Write toolkit-core/src/test/resources/checkpoint/golden.safetensors from the safetensors format description.

Usage: python3 make_golden_safetensors.py OUTPUT_FILE

Kept beside the golden file's test (SafetensorsTest) so the file can be re-made; it uses only the standard library,
so it is written independently of the Java SafetensorsWriter it checks: an 8-byte little-endian header length, a
compact JSON header in insertion order padded with spaces to a multiple of 8, then little-endian data.
"""
import json
import struct
import sys

header = {"__metadata__": {"k": "v"},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "a": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]}}
raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
raw += b" " * (-len(raw) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(raw)) + raw + struct.pack("<ffq", 1.0, -2.0, 3))
