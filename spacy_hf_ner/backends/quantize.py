"""int8 quantization of an exported float32 graph (`export-onnx --quantize int8
--int8-mode MODE`), with onnxruntime's quantizers. Measured in
`bench/onnx_int8.py` (README, ONNX Runtime)."""
import tempfile
from pathlib import Path
from typing import Any, Dict

from ..errors import Errors
from ..ty import Int8Mode

# `--int8-mode` (measured in bench/onnx_int8.py, results in bench/results/onnx_int8.json):
# "per-channel", "per-tensor", "reduce-range": quantize_dynamic (int8 weights
#     per output channel or per tensor, 7-bit with reduce_range; activations
#     quantized per tensor on the fly). per-channel, the default: ~2x the
#     float32 graph's speed on the bundled model, per-tensor agrees much less;
# "blockwise": the MatMul weights int8 in blocks of `BLOCK_SIZE` (MatMulNBits,
#     8 bits, symmetric), multiplied at accuracy level 4 (activations int8 in
#     blocks too); embeddings stay float32. Agrees far better, but runs no
#     faster than the float32 graph: a smaller file, not a faster one;
# "blockwise-embeddings": also the embedding tables int8 (a file as small as
#     per-channel's).
INT8_MODES: Dict[Int8Mode, Dict[str, Any]] = {
    "per-channel": {"per_channel": True},
    "per-tensor": {"per_channel": False},
    "reduce-range": {"per_channel": True, "reduce_range": True},
    "blockwise": {"blockwise": True},
    "blockwise-embeddings": {"blockwise": True, "embeddings": True},
}
INT8_MODE: Int8Mode = "per-channel"  # `--int8-mode`
BLOCK_SIZE = 32
ACCURACY_LEVEL = 4  # MatMulNBits: int8 compute


def quantize_int8(fp32: Path, int8: Path, mode: Int8Mode = INT8_MODE) -> None:
    """Quantize the float32 graph to int8 with the settings of `mode` (see
    `INT8_MODES`). The graph first goes through onnxruntime's own
    pre-processing (`quant_pre_process`: shape inference and graph
    optimization), as its quantizer advises."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    settings = dict(INT8_MODES[mode])
    int8.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # symbolic shape inference cannot follow the traced attention mask; ONNX's own suffices
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        if not settings.pop("blockwise", False):
            quantize_dynamic(str(prepared), str(int8), weight_type=QuantType.QInt8, **settings)
        elif not settings.get("embeddings"):
            quantize_blockwise(prepared, int8)
        else:
            blockwise = Path(tmp) / "blockwise.onnx"
            quantize_blockwise(prepared, blockwise)
            quantize_dynamic(str(blockwise), str(int8), weight_type=QuantType.QInt8, op_types_to_quantize=["Gather"])


def quantize_blockwise(source: Path, target: Path) -> None:
    """The MatMul weights of `source` as 8-bit blocks (`MatMulNBits`,
    `BLOCK_SIZE`, `ACCURACY_LEVEL`), written to `target`."""
    import logging

    import onnx

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as e:
        raise SystemExit(Errors.E161.format(error=e)) from None
    finally:  # the module configures the root logger (INFO) when first imported
        root.handlers[:] = handlers
        root.setLevel(level)
    config = DefaultWeightOnlyQuantConfig(
        block_size=BLOCK_SIZE, is_symmetric=True, bits=8, accuracy_level=ACCURACY_LEVEL,
        op_types_to_quantize=("MatMul",),
    )
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), False)
