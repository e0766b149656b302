"""Trainer resume from a checkpoint under torch's ``weights_only=True`` default (torch >= 2.6).

torch 2.6's ``torch.load`` defaults to ``weights_only=True``, which refuses the numpy RNG state in a Trainer
checkpoint's ``rng_state.pth`` unless numpy's globals are allowlisted, so ``trainer.train(resume_from_checkpoint=...)``
fails in ``Trainer._load_rng_state`` (https://github.com/huggingface/transformers/issues/34631). The fix's allowlist
names the *running* numpy's module while a pickle names the writer's (numpy 2 renamed ``numpy.core`` to
``numpy._core``), so a checkpoint written under one numpy major can be refused under the other. Variants, each training
the tiny model 2 optimizer steps on CPU with ``save_steps=1``, then resuming a fresh Trainer from ``checkpoint-2`` with
``max_steps=3``:
* ``resume_same_env``: the twin, the checkpoint exactly as this environment wrote it.
* ``resume_other_numpy_checkpoint``: ``rng_state.pth`` as the *other* numpy major writes it (``_reconstruct`` from
  ``numpy.core.multiarray`` under numpy 2, from ``numpy._core.multiarray`` under 1.x); the cell records which.
Emulation: a case runs in one environment, so that variant re-pickles this environment's RNG state naming the other
numpy's module (real files differ in exactly that global; real foreign checkpoints behaved the same, see the findings).
It cannot show a checkpoint whose other files (optimizer, scheduler, weights) another torch or transformers wrote. Pass:
``train()`` reaches global step 3 with one optimizer step after resuming, and numpy's RNG state is the checkpoint's when
that step begins (so it was really loaded). Boundaries, exact errors and upstream links:
docs/findings/checkpoint_resume.md.
"""

from ftcompat.harness import kit, record, setup, step

_MODULES = {1: "numpy.core.multiarray", 2: "numpy._core.multiarray"}


def _callback(numpy_seen):
    """A callback that moves numpy's RNG on before each save and notes numpy's state at each step start."""
    import numpy as np
    from transformers import TrainerCallback

    class Probe(TrainerCallback):
        steps = 0

        def on_step_begin(self, args, state, control, **kwargs):
            numpy_seen.append(np.random.get_state()[1].copy())

        def on_step_end(self, args, state, control, **kwargs):
            type(self).steps += 1
            np.random.random(7)  # so the saved numpy state differs from the one set_seed(0) gives

    return Probe()


def _rewrite_rng_state(path, numpy_major):
    """Re-pickle ``rng_state.pth`` naming numpy ``numpy_major``'s module for ``_reconstruct``."""
    import pickle

    import numpy as np
    import torch

    reconstruct = np.ndarray(0).__reduce__()[0]
    state = torch.load(path, weights_only=False)
    module = _MODULES[numpy_major]

    class ForeignPickler(pickle._Pickler):
        def save_global(self, obj, name=None):
            if obj is reconstruct:
                self.write(pickle.GLOBAL + f"{module}\n_reconstruct\n".encode())
                self.memoize(obj)
            else:
                super().save_global(obj, name)

    class ForeignPickle:
        Pickler = ForeignPickler
        Unpickler = pickle.Unpickler
        __name__ = "pickle"

    torch.save(state, path, pickle_module=ForeignPickle)


def _named_module(path):
    """Which module the checkpoint's pickle names for numpy's ``_reconstruct``."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    return next((m for m in _MODULES.values() if f"{m}\n_reconstruct".encode() in data), None)


def _resume(model, device, tmp_path, numpy_major=None):
    import os

    import numpy as np
    import torch
    from transformers import Trainer

    with setup("train 2 steps with save_steps=1"):
        lm, ds, args, collator = kit.checkpointing_run(model, device, tmp_path, max_steps=2)
        first = Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator,
                        callbacks=[_callback([])])
        first.train()
        ckpt = os.path.join(str(tmp_path), "checkpoint-2")
        rng_file = os.path.join(ckpt, "rng_state.pth")
        files = sorted(os.listdir(ckpt))
        assert "rng_state.pth" in files, f"checkpoint-2 has no rng_state.pth: {files}"
        saved_numpy = torch.load(rng_file, weights_only=False)["numpy"][1]
        if numpy_major is not None:
            _rewrite_rng_state(rng_file, numpy_major)
    with setup("a fresh Trainer with max_steps=3"):
        lm, ds, args, collator = kit.checkpointing_run(model, device, tmp_path, max_steps=3)
        seen = []
        probe = _callback(seen)
        trainer = Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator, callbacks=[probe])
    facts = dict(numpy=np.__version__, torch=torch.__version__, checkpoint_files=files,
                 checkpoint_names=_named_module(rng_file), first_run_steps=first.state.global_step)
    try:
        with step("trainer.train(resume_from_checkpoint=checkpoint-2)"):
            trainer.train(resume_from_checkpoint=ckpt)
    except Exception as exc:
        record(**facts, torch_load_error=kit.exception_summary(exc), steps_reached=trainer.state.global_step,
               steps_after_resume=type(probe).steps)
        raise
    restored = bool(seen) and bool(np.array_equal(seen[0], saved_numpy))
    record(**facts, torch_load_error=None, steps_reached=trainer.state.global_step,
           steps_after_resume=type(probe).steps, numpy_rng_restored=restored)
    assert trainer.state.global_step == 3, f"resumed training reached step {trainer.state.global_step}, not 3"
    assert type(probe).steps == 1, f"{type(probe).steps} steps ran after resuming from step 2 of 3, not 1"
    assert restored, "numpy's RNG state when step 3 began is not the one saved in checkpoint-2"


def test_resume_same_env(model, device, tmp_path):
    """Resume from the checkpoint exactly as this environment wrote it."""
    _resume(model, device, tmp_path)


def test_resume_other_numpy_checkpoint(model, device, tmp_path):
    """Resume from a checkpoint whose rng_state.pth names the other numpy major's module (emulated)."""
    with setup("numpy's major version"):
        import numpy as np

        other = 1 if int(np.__version__.split(".")[0]) >= 2 else 2
    record(written_as_numpy=other)
    _resume(model, device, tmp_path, numpy_major=other)
