"""A TFLite model written with the `tflite` package's flatbuffer builder functions.

Why our own writer: the TFLite converter lives in TensorFlow, which edgetune does not depend on (it is a
multi-GB install and has no role here). The model format is a flatbuffer whose schema the `tflite`
package ships as generated builder functions; a model is a list of tensors (constant ones point at a
buffer), operators reading and writing tensor indices, and the subgraph's inputs and outputs. This module
knows nothing of ONNX: `convert.py` decides what to write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
import tflite

SCHEMA_VERSION = 3  # the TFLite schema version every current runtime reads
_GREATER_OP_CODES = 127  # deprecated_builtin_code of operators whose code does not fit an int8
_BUFFER_ALIGN = 16  # constant data starts on 16 bytes: kernels may read it in place
_TYPES = {np.dtype(np.float32): tflite.TensorType.FLOAT32, np.dtype(np.int32): tflite.TensorType.INT32}


@dataclass
class _Tensor:
    shape: tuple[int, ...]
    dtype: np.dtype
    name: str
    buffer: int = 0  # 0: no data (an activation)


@dataclass
class _Operator:
    opcode: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[str, dict[str, Any]] | None = None


@dataclass
class ModelWriter:
    """Collects tensors and operators, then `serialize`s them as one TFLite model (one subgraph)."""

    tensors: list[_Tensor] = field(default_factory=list)
    buffers: list[np.ndarray] = field(default_factory=lambda: [np.empty(0, np.uint8)])  # buffer 0: empty, by convention
    opcodes: dict[int, int] = field(default_factory=dict)  # builtin code -> index in operator_codes
    operators: list[_Operator] = field(default_factory=list)

    def tensor(self, shape: tuple[int, ...], name: str, dtype: Any = np.float32) -> int:
        """A new activation tensor; returns its index."""
        self.tensors.append(_Tensor(tuple(int(d) for d in shape), np.dtype(dtype), name))
        return len(self.tensors) - 1

    def constant(self, array: np.ndarray, name: str) -> int:
        """A new constant tensor holding `array` (float32 or int32); returns its index."""
        a = np.ascontiguousarray(array)
        if a.dtype not in _TYPES:
            raise ValueError(f"constant {name}: dtype {a.dtype} is not written")
        self.buffers.append(a)
        self.tensors.append(_Tensor(tuple(a.shape), a.dtype, name, buffer=len(self.buffers) - 1))
        return len(self.tensors) - 1

    def shape(self, index: int) -> tuple[int, ...]:
        return self.tensors[index].shape

    def operator(self, code: int, inputs: list[int], outputs: list[int],
                 options: tuple[str, dict[str, Any]] | None = None) -> None:
        """Append one builtin operator; `options` is (options table name, {field: value}), e.g.
        ("Conv2DOptions", {"StrideW": 1, ...}), field names as the generated `...Add<Field>` functions."""
        self.opcodes.setdefault(code, len(self.opcodes))
        self.operators.append(_Operator(self.opcodes[code], list(inputs), list(outputs), options))

    def serialize(self, inputs: list[int], outputs: list[int], description: str = "edgetune") -> bytes:
        """The model as flatbuffer bytes (children are written before their parents, as flatbuffers need)."""
        b = flatbuffers.Builder(self._size_hint())  # no regrowth: a regrowth copies all the weights
        buffers = [self._buffer(b, data) for data in self.buffers]
        tensors = [self._tensor(b, t) for t in self.tensors]
        operators = [self._operator(b, op) for op in self.operators]
        name = b.CreateString("main")
        tensors_vec = _table_vector(b, tflite.SubGraphStartTensorsVector, tensors)
        operators_vec = _table_vector(b, tflite.SubGraphStartOperatorsVector, operators)
        inputs_vec, outputs_vec = _ints(b, inputs), _ints(b, outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_vec)
        tflite.SubGraphAddInputs(b, inputs_vec)
        tflite.SubGraphAddOutputs(b, outputs_vec)
        tflite.SubGraphAddOperators(b, operators_vec)
        tflite.SubGraphAddName(b, name)
        subgraph = tflite.SubGraphEnd(b)
        codes = [self._opcode(b, code) for code, _ in sorted(self.opcodes.items(), key=lambda kv: kv[1])]
        codes_vec = _table_vector(b, tflite.ModelStartOperatorCodesVector, codes)
        subgraphs_vec = _table_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = _table_vector(b, tflite.ModelStartBuffersVector, buffers)
        desc = b.CreateString(description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, SCHEMA_VERSION)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, buffers_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(memoryview(b.Bytes)[b.Head():])  # one copy (Output() would make two)

    def _size_hint(self) -> int:
        """A generous bound of the serialized size: data plus alignment, and a few hundred bytes per table."""
        data = sum(d.nbytes + _BUFFER_ALIGN + 16 for d in self.buffers)
        return data + 512 * (len(self.tensors) + len(self.operators) + len(self.opcodes)) + 65536

    # ---- one table each ---------------------------------------------------------------------------

    @staticmethod
    def _buffer(b: flatbuffers.Builder, data: np.ndarray) -> int:
        vec = _aligned_bytes(b, data) if data.nbytes else None
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        return tflite.BufferEnd(b)

    @staticmethod
    def _tensor(b: flatbuffers.Builder, t: _Tensor) -> int:
        name, shape = b.CreateString(t.name), _ints(b, list(t.shape))
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TYPES[t.dtype])
        tflite.TensorAddBuffer(b, t.buffer)
        tflite.TensorAddName(b, name)
        return tflite.TensorEnd(b)

    @staticmethod
    def _operator(b: flatbuffers.Builder, op: _Operator) -> int:
        options = _options_table(b, *op.options) if op.options else None
        ins, outs = _ints(b, op.inputs), _ints(b, op.outputs)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, op.opcode)
        tflite.OperatorAddInputs(b, ins)
        tflite.OperatorAddOutputs(b, outs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options[0]))
            tflite.OperatorAddBuiltinOptions(b, options)
        return tflite.OperatorEnd(b)

    @staticmethod
    def _opcode(b: flatbuffers.Builder, code: int) -> int:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, _GREATER_OP_CODES))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        return tflite.OperatorCodeEnd(b)


def _options_table(b: flatbuffers.Builder, table: str, fields: dict[str, Any]) -> int:
    """One builtin-options table through its generated functions (`<table>Start`, `<table>Add<Field>`);
    int-vector fields (ReshapeOptions.NewShape) are written first, as flatbuffers need."""
    vectors = {k: _ints(b, list(v)) for k, v in fields.items() if isinstance(v, (list, tuple))}
    getattr(tflite, f"{table}Start")(b)
    for key, value in fields.items():
        getattr(tflite, f"{table}Add{key}")(b, vectors.get(key, value))
    return getattr(tflite, f"{table}End")(b)


def _ints(b: flatbuffers.Builder, values: list[int]) -> int:
    return b.CreateNumpyVector(np.asarray(values, np.int32).reshape(-1))


def _aligned_bytes(b: flatbuffers.Builder, data: np.ndarray) -> int:
    """A ubyte vector of `data`'s bytes (little-endian, as every target is), starting on `_BUFFER_ALIGN` bytes
    (CreateNumpyVector aligns to the element only), copied once into the builder."""
    n = data.nbytes
    b.StartVector(1, n, _BUFFER_ALIGN)
    b.head = b.head - n
    b.Bytes[b.head:b.head + n] = memoryview(data.reshape(-1)).cast("B")
    return b.EndVector()


def _table_vector(b: flatbuffers.Builder, start: Any, offsets: list[int]) -> int:
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()
