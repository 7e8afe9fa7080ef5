"""Subprocess helper of the checkpoint/resume tests (run as a script, never collected).

python _train_worker.py resume first|second|full CKPT_DIR OUT_NPZ K
    Train the reference setup for K steps (``first``, checkpointing), resume from CKPT_DIR
    to 2K steps (``second``, a fresh process), or run 2K steps in one go (``full``); write
    the final state to OUT_NPZ.
python _train_worker.py spam CKPT_DIR
    Save checkpoints forever (arrays filled with the save counter), printing each counter
    once its save has returned; the test SIGKILLs it at a random moment.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from normlab import nn  # noqa: E402
from normlab.train import BestModel, EarlyStopping, Trainer, load_checkpoint  # noqa: E402
from normlab.train import save_checkpoint  # noqa: E402

import _train_parts as parts  # noqa: E402


def build(ckpt_dir=None, checkpoint_every=None):
    """The reference run: BN + Dropout MLP, momentum SGD, StepLR, shuffling loaders."""
    X, y = parts.make_data(n=50, seed=0)
    Xv, yv = parts.make_data(n=20, seed=1)
    model = parts.make_mlp(seed=0, dropout=0.25)
    opt = parts.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = parts.StepLR(opt, step_size=2, gamma=0.5)
    train = parts.DataLoader(X, y, batch_size=16, shuffle=True, drop_last=False, rng=5)
    val = parts.DataLoader(Xv, yv, batch_size=8, shuffle=True, drop_last=False, rng=6)
    trainer = Trainer(model, opt, loss_fn=parts.CrossEntropyLoss(), scheduler=sched,
                      callbacks=[EarlyStopping(patience=100), BestModel(restore=False)],
                      progress=False, checkpoint_dir=ckpt_dir,
                      checkpoint_every=checkpoint_every, rng=3)
    return trainer, train, val


def final_state(trainer, train, val) -> dict:
    out = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    for i, s in trainer.optimizer.state_dict()["state"].items():
        for k, v in s.items():
            out[f"optim/{i}/{k}"] = np.asarray(v)
    out["lr"] = np.array(trainer.current_lr())
    rec = [{k: v for k, v in r.items() if k != "time"} for r in trainer.history.records]
    out["history"] = np.array(json.dumps(rec))
    gens = {"train": train.rng, "val": val.rng, "trainer": trainer.rng,
            **dict(trainer.model.named_generators())}
    out["rngs"] = np.array(json.dumps({k: g.bit_generator.state for k, g in gens.items()}))
    out["best"] = np.array(json.dumps(trainer.callbacks[1].best))
    return out


def resume(phase: str, ckpt_dir: str, out_npz: str, k: int) -> None:
    if phase == "first":
        trainer, train, val = build(ckpt_dir, checkpoint_every=3)
        trainer.fit(train, val, steps=k)
    elif phase == "second":
        trainer, train, val = build(ckpt_dir, checkpoint_every=3)
        trainer.fit(train, val, steps=2 * k, resume_from=ckpt_dir)
    else:
        trainer, train, val = build()
        trainer.fit(train, val, steps=2 * k)
    np.savez(out_npz, **final_state(trainer, train, val))


def spam_model():
    return nn.Sequential(nn.Linear(512, 1024, rng=0), parts.Dropout(0.5, rng=1))


def spam(ckpt_dir: str) -> None:
    model = spam_model()
    i = 0
    if os.path.exists(os.path.join(ckpt_dir, "latest")):
        i = load_checkpoint(ckpt_dir, model=model)["trainer_state"]["i"]
    while True:
        i += 1
        model.load_state_dict({k: np.full_like(v, i) for k, v in model.state_dict().items()})
        model[1].rng = np.random.default_rng(i)
        save_checkpoint(ckpt_dir, model=model, trainer_state={"i": i})
        print(i, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "resume":
        resume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        spam(sys.argv[2])
