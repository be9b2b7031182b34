#!/usr/bin/python3
"""Checks ONNX files with the ONNX project's own checker (Debian's python3-onnx): the full check, which runs shape
inference too, on each file given.

    /usr/bin/python3 scripts/reference/onnx_check.py FILE.onnx [...]

Prints "checked FILE" per file; exits non-zero on the first file the checker rejects.
"""
import sys

import onnx

for path in sys.argv[1:]:
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    out = inferred.graph.output[0].type.tensor_type.shape
    print("checked %s (opset %d, output %s)" % (path, model.opset_import[0].version,
                                                [d.dim_param or d.dim_value for d in out.dim]))
