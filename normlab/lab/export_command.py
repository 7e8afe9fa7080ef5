"""``normlab export RUN_FOLDER --onnx OUT``: a trained run's model as an ONNX file.

The model is rebuilt from the run's ``config.json`` (as ``normlab train`` built it) and
loaded from its checkpoint: the best-validation weights that ``summary.json`` reports
(the ``BestModel`` copy in the checkpoint) when there are any, else the latest state.
BatchNorms are folded unless ``--no-fold-bn``. With onnxruntime installed the file is
run once on a random batch and compared with normlab's eval output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from normlab.errors import MissingPathError

__all__ = ["export_run", "add_export_parser", "cmd_export"]


def _model_from_run(run_dir: Path):
    from normlab.lab.train_command import build_model  # noqa: PLC0415
    from normlab.train.checkpoint import load_checkpoint  # noqa: PLC0415

    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise MissingPathError(f"export: expected a run folder of `normlab train` with a "
                                f"config.json, got {str(run_dir)!r} without one.")
    cfg = json.loads(cfg_path.read_text())
    shape, k = cfg.get("input_shape"), cfg.get("num_classes")
    if shape is None or k is None:  # run folders written before these keys existed
        from normlab.data import load_dataset  # noqa: PLC0415

        ds = load_dataset(cfg["data"], seed=cfg["seed"])
        shape, k = ds.input_shape, ds.num_classes
    net = build_model(cfg["model"], norm=cfg["norm"], hidden=cfg.get("hidden") or (),
                      input_shape=shape, num_classes=k, rng=np.random.default_rng(0))
    meta = load_checkpoint(run_dir / "checkpoint", model=net)
    best = [cb.get("best_state") for cb in meta["trainer_state"].get("callbacks", [])
            if isinstance(cb, dict) and cb.get("best_state") is not None]
    if best:
        net.load_state_dict(best[0])
    return net.eval(), tuple(shape)


def export_run(run_dir, out, *, fold_bn: bool = True, batch: int = 1):
    """Export the model of ``normlab train`` run folder ``run_dir`` to ``out``.

    Returns
    -------
    (onnx.ModelProto, float or None)
        The model, and the largest |onnxruntime - normlab| on a random batch (None
        without onnxruntime).

    Raises
    ------
    FileNotFoundError
        Not a run folder, or no checkpoint in it.
    """
    from normlab.interop import export_onnx  # noqa: PLC0415

    net, shape = _model_from_run(Path(run_dir))
    proto = export_onnx(net, out, (batch, *shape), fold_bn=fold_bn)
    try:
        import onnxruntime as ort  # noqa: PLC0415
    except ImportError:
        return proto, None
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return proto, float(np.max(np.abs(got - net(x))))


def cmd_export(args) -> int:
    if not args.onnx:
        print("normlab export: error: expected --onnx OUT (the only format), got none",
              file=sys.stderr)
        return 2
    try:
        proto, diff = export_run(args.run, args.onnx, fold_bn=not args.no_fold_bn)
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        print(f"normlab export: {e}", file=sys.stderr)
        return 1
    ops = sorted({n.op_type for n in proto.graph.node})
    print(f"wrote {args.onnx} ({len(proto.graph.node)} nodes: {', '.join(ops)})")
    if diff is not None:
        print(f"onnxruntime vs normlab on a random batch: max |diff| = {diff:.2e}")
    return 0


def add_export_parser(sub) -> None:
    """Register ``normlab export RUN_FOLDER --onnx OUT [--no-fold-bn]``."""
    e = sub.add_parser("export", help="write a trained run's model as ONNX (BatchNorm folded)")
    e.add_argument("run", metavar="RUN_FOLDER", help="a run folder written by `normlab train`")
    e.add_argument("--onnx", default=None, metavar="OUT", help="output .onnx file")
    e.add_argument("--no-fold-bn", action="store_true",
                   help="keep BatchNorm as BatchNormalization nodes")
    e.set_defaults(func=cmd_export)
