"""Real cross-numpy checkpoints for checkpoint_resume (see README.md here).

    python real_foreign.py write  MODEL_DIR OUT_DIR    # train 2 steps, save_steps=1, as the case does
    python real_foreign.py resume MODEL_DIR CKPT_DIR   # copy CKPT_DIR, resume to step 3, print JSON

Uses the case's own helpers (cases/checkpoint_resume.py) so the training and the resume are the
case's, with the one difference under test: the checkpoint was written by a real other numpy.
"""

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "src"))
for cand in (ROOT / "cases" / "checkpoint_resume.py", ROOT / ".ftcompat/wip/resume/cases/checkpoint_resume.py"):
    if cand.exists():
        spec = importlib.util.spec_from_file_location("checkpoint_resume", cand)
        case = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(case)
        break


def write(model_dir, out_dir):
    """Train 2 steps with save_steps=1 into out_dir, as the case does."""
    from transformers import Trainer

    lm, ds, args, collator = case._parts(types.SimpleNamespace(path=model_dir), "cpu", out_dir, max_steps=2)
    Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator, callbacks=[case._callback([])]).train()
    ckpt = os.path.join(out_dir, "checkpoint-2")
    print(json.dumps({"wrote": ckpt, "names": case._named_module(os.path.join(ckpt, "rng_state.pth"))}))


def resume(model_dir, ckpt_src):
    """Resume a copy of ckpt_src to step 3 and print what happened."""
    import numpy as np
    import torch
    import transformers
    from transformers import Trainer

    out = tempfile.mkdtemp()
    ckpt = os.path.join(out, "checkpoint-2")
    shutil.copytree(ckpt_src, ckpt)
    lm, ds, args, collator = case._parts(types.SimpleNamespace(path=model_dir), "cpu", out, max_steps=3)
    probe = case._callback([])
    trainer = Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator, callbacks=[probe])
    res = {"numpy": np.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
           "checkpoint": ckpt_src, "checkpoint_names": case._named_module(os.path.join(ckpt, "rng_state.pth"))}
    try:
        trainer.train(resume_from_checkpoint=ckpt)
        res["torch_load_error"] = None
    except Exception as exc:
        res["torch_load_error"] = case._load_error(exc)
    res.update(steps_reached=trainer.state.global_step, steps_after_resume=type(probe).steps)
    print("RESULT " + json.dumps(res))


if __name__ == "__main__":
    {"write": write, "resume": resume}[sys.argv[1]](*sys.argv[2:])
