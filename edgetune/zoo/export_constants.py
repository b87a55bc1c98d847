"""Fold constant subgraphs the legacy exporter leaves behind, so zoo files hold plain Pad/Slice/Clip.

``F.pad`` and static-"SAME" padding export as ConstantOfShape/Concat/Transpose/Slice/Cast chains that
only compute pad amounts. Folding them at export time keeps the zoo's ONNX files readable for any
tool (Netron, ONNX Runtime, edgetune's importer) instead of relying on every consumer to fold.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every node whose inputs are all constants by initializers; drops unused initializers."""
    g = model.graph
    const = {init.name for init in g.initializer}
    folded, kept = [], []
    for node in g.node:
        if all(not i or i in const for i in node.input):
            folded.append(node)
            const.update(node.output)
        else:
            kept.append(node)
    if not folded:
        return model
    needed = {i for n in kept for i in n.input} | {o.name for o in g.output}
    produced = {o for n in folded for o in n.output}
    wanted = [o for n in folded for o in n.output if o in needed]
    used_inits = {i for n in folded for i in n.input}
    sub = onnx.helper.make_graph(
        folded, "fold", [], [onnx.helper.make_value_info(o, onnx.TypeProto()) for o in wanted],
        [init for init in g.initializer if init.name in used_inits])
    sub_model = onnx.helper.make_model(sub, opset_imports=model.opset_import)
    values = ReferenceEvaluator(sub_model).run(None, {}) if wanted else []
    new_inits = [numpy_helper.from_array(np.asarray(v), o) for o, v in zip(wanted, values, strict=True)]
    del g.node[:]
    g.node.extend(kept)
    live = needed - produced
    keep_inits = [init for init in g.initializer if init.name in live]
    del g.initializer[:]
    g.initializer.extend(keep_inits + new_inits)
    return model
