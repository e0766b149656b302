"""Handoff: a Trainer checkpoint written in one environment and resumed in another (another numpy major).

``checkpoint_resume`` emulates a checkpoint from the other numpy major; this is the real thing. Under torch's
``weights_only=True`` default (torch >= 2.6), transformers' ``Trainer._load_rng_state`` allowlists the
*running* numpy's ``_reconstruct`` while ``rng_state.pth`` names the *writer's* (numpy 2 renamed
``numpy.core`` to ``numpy._core``), so a checkpoint written under numpy 1 can be refused under numpy 2 and
the reverse (https://github.com/huggingface/transformers/issues/34631,
https://github.com/huggingface/transformers/pull/34632). Each producer trains the tiny Llama 2 optimizer
steps on CPU with ``save_steps=1`` into the handoff folder; its consumer, in the other environment,
resumes a fresh Trainer from ``checkpoint-2`` with ``max_steps=3``:
* ``resume``: ``trainer.train(resume_from_checkpoint=...)`` on the checkpoint exactly as written.
* ``resume_rewritten``: the twin, the workarounds, on a copy of the checkpoint: ``rng_state.pth`` removed (the
  Trainer then resumes without restoring the RNG, and says so), and ``trainer_state.json`` cut to the fields
  this ``TrainerState`` takes (a checkpoint from transformers >= 4.50 names ``best_global_step``, which older
  releases refuse: ``TypeError: TrainerState.__init__() got an unexpected keyword argument``).
Pass: step 3 is reached with one optimizer step after resuming (``resume``: and numpy's RNG state is the
checkpoint's when that step begins). Boundaries, exact errors: docs/findings/checkpoint_resume_handoff.md.
"""

from ftcompat.harness import kit, record, setup, step


def _train(model, device, folder):
    """Train 2 steps with save_steps=1 into ``folder``; record the numpy that wrote the checkpoint."""
    import json

    import numpy as np
    import torch
    from transformers import Trainer, TrainerCallback

    class MoveNumpy(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            np.random.random(7)  # so the saved numpy state differs from the one set_seed(0) gives the consumer

    with setup("train 2 steps with save_steps=1"):
        lm, ds, args, collator = kit.checkpointing_run(model, device, folder, max_steps=2)
        Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator, callbacks=[MoveNumpy()]).train()
    rng_file = folder / "checkpoint-2" / "rng_state.pth"
    assert rng_file.is_file(), "the Trainer wrote no checkpoint-2/rng_state.pth"
    # Read back here, by the numpy that wrote it: the consumer's numpy may not unpickle it at all.
    state = torch.load(rng_file, weights_only=False)["numpy"][1]
    (folder / "numpy_rng.json").write_text(json.dumps([int(x) for x in state]))
    record(written_by_numpy=np.__version__)


def _rewrite(folder, dest) -> list[str]:
    """Copy ``folder`` to ``dest`` without ``rng_state.pth``, its trainer state cut to the fields this release
    takes; return the fields dropped."""
    import json
    import shutil

    from transformers import TrainerState

    shutil.copytree(folder, dest)
    (dest / "rng_state.pth").unlink()
    state = json.loads((dest / "trainer_state.json").read_text())
    known = kit.accepted(TrainerState)
    (dest / "trainer_state.json").write_text(json.dumps({k: v for k, v in state.items() if k in known}))
    return sorted(k for k in state if k not in known)


def _resume(model, device, folder, tmp_path, keep_rng: bool):
    """Resume a fresh Trainer from the other environment's ``checkpoint-2`` and check it really resumed."""
    import json

    import numpy as np
    from transformers import Trainer, TrainerCallback

    with setup("a fresh Trainer with max_steps=3" + ("" if keep_rng else ", a rewritten copy of the checkpoint")):
        ckpt = folder / "checkpoint-2"
        saved = np.array(json.loads((folder / "numpy_rng.json").read_text()), dtype=np.uint32)
        if not keep_rng:
            ckpt = tmp_path / "checkpoint-2"
            record(dropped_state_fields=_rewrite(folder / "checkpoint-2", ckpt))
        lm, ds, args, collator = kit.checkpointing_run(model, device, tmp_path / "out", max_steps=3)
        seen: list = []

        class Probe(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                seen.append(np.random.get_state()[1].copy())

        trainer = Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator, callbacks=[Probe()])
    record(resumed_by_numpy=np.__version__, rng_state_kept=keep_rng)
    try:
        with step("trainer.train(resume_from_checkpoint=checkpoint-2)"):
            trainer.train(resume_from_checkpoint=str(ckpt))
    except Exception as exc:
        record(torch_load_error=kit.exception_summary(exc), steps_reached=trainer.state.global_step)
        raise
    restored = bool(seen) and bool(np.array_equal(seen[0], saved))
    record(steps_reached=trainer.state.global_step, steps_after_resume=len(seen), numpy_rng_restored=restored)
    assert trainer.state.global_step == 3, f"resumed training reached step {trainer.state.global_step}, not 3"
    assert len(seen) == 1, f"{len(seen)} steps ran after resuming from step 2 of 3, not 1"
    if keep_rng:
        assert restored, "numpy's RNG state when step 3 began is not the one saved in checkpoint-2"
    else:  # the twin resumes without the RNG: the state must be another, or `restored` proves nothing above
        assert not restored, "numpy's RNG state is the checkpoint's although rng_state.pth was removed"


def produce_resume(model, device, handoff):
    """Write the checkpoint."""
    _train(model, device, handoff)


def test_resume(model, device, handoff, tmp_path):
    """Resume from the other environment's checkpoint exactly as written."""
    _resume(model, device, handoff, tmp_path, keep_rng=True)


def produce_resume_rewritten(model, device, handoff):
    """Write the checkpoint."""
    _train(model, device, handoff)


def test_resume_rewritten(model, device, handoff, tmp_path):
    """The workarounds: resume from a copy without rng_state.pth, its trainer state cut to the known fields."""
    _resume(model, device, handoff, tmp_path, keep_rng=False)
