"""transformers refuses ``torch.load`` on torch < 2.6 (CVE-2025-32434): .bin weights and Trainer resume.

``torch.load(..., weights_only=True)`` can still run code from a crafted file on torch <= 2.5.1, so transformers refuses
every ``torch.load`` it makes without an explicit ``weights_only=False`` unless torch >= 2.6
(``check_torch_load_is_safe``, https://github.com/huggingface/transformers/pull/37785): on an older torch,
``from_pretrained`` of a ``pytorch_model.bin`` folder and ``trainer.train(resume_from_checkpoint=...)``
(``optimizer.pt``, ``scheduler.pt``, ``rng_state.pth`` are torch pickles) raise ``ValueError``; safetensors are not
affected. Variants (tiny model, CPU):
* ``bin_from_pretrained``: ``from_pretrained`` of a folder holding ``pytorch_model.bin``
  (``save_pretrained(safe_serialization=False)``, or on transformers 5, which lacks that argument, ``torch.save`` of the
  state dict beside ``config.json``); twin ``safetensors_from_pretrained``: the model saved as safetensors.
* ``trainer_resume``: 2 optimizer steps with ``save_steps=1``, then a fresh Trainer resumes from ``checkpoint-2`` to
  step 3; twin ``trainer_resume_no_pickles``: the same checkpoint without the three pickles, which resumes without
  ``torch.load``.
Pass: the load gives the saved weights exactly, or the resumed run reaches step 3 with one optimizer step after
resuming. Cells record the files present, torch's version and the exception; the guard shows only on torch < 2.6 (combos
with torch 2.5.1). Boundaries, exact error, the CVE and upstream links: docs/findings/torch_load_guard.md.
"""

from ftcompat.harness import kit, record, setup, step

_PICKLES = ("optimizer.pt", "scheduler.pt", "rng_state.pth")


def _load(model, tmp_path, safetensors):
    import inspect
    import os

    import torch
    from transformers import AutoModelForCausalLM

    with setup("save the tiny model " + ("as safetensors" if safetensors else "as pytorch_model.bin")):
        lm = AutoModelForCausalLM.from_pretrained(model.path)
        folder = str(tmp_path / "saved")
        if safetensors:
            lm.save_pretrained(folder)
            written_by = "save_pretrained()"
        elif "safe_serialization" in inspect.signature(lm.save_pretrained).parameters:
            lm.save_pretrained(folder, safe_serialization=False)
            written_by = "save_pretrained(safe_serialization=False)"
        else:
            lm.config.save_pretrained(folder)
            torch.save(lm.state_dict(), os.path.join(folder, "pytorch_model.bin"))
            written_by = "torch.save(state_dict) + config.save_pretrained()"
        files = sorted(f for f in os.listdir(folder) if f != "generation_config.json")
        weights = [f for f in files if f.endswith((".bin", ".safetensors"))]
        assert weights == (["model.safetensors"] if safetensors else ["pytorch_model.bin"]), f"saved {files}"
        saved = {k: v.clone() for k, v in lm.state_dict().items()}
    facts = dict(torch=torch.__version__, files=files, written_by=written_by)
    try:
        with step(f"AutoModelForCausalLM.from_pretrained({weights[0]} folder)"):
            loaded = AutoModelForCausalLM.from_pretrained(folder)
    except Exception as exc:
        record(**facts, error=kit.exception_summary(exc))
        raise
    state = loaded.state_dict()
    differ = sorted(k for k, v in saved.items() if k not in state or not torch.equal(state[k], v))
    record(**facts, error=None, tensors=len(saved), tensors_differing=len(differ))
    assert not differ, f"{len(differ)} of {len(saved)} tensors differ from the saved model: {differ[:5]}"


def _resume(model, device, tmp_path, drop_pickles):
    import os

    import torch
    from transformers import Trainer, TrainerCallback

    class Count(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            type(self).steps += 1

    with setup("train 2 steps with save_steps=1"):
        lm, ds, args, collator = kit.checkpointing_run(model, device, tmp_path, max_steps=2)
        Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator).train()
        ckpt = os.path.join(str(tmp_path), "checkpoint-2")
        missing = [f for f in _PICKLES if not os.path.isfile(os.path.join(ckpt, f))]
        assert not missing, f"checkpoint-2 lacks {missing}: {sorted(os.listdir(ckpt))}"
        if drop_pickles:
            for f in _PICKLES:
                os.remove(os.path.join(ckpt, f))
        files = sorted(os.listdir(ckpt))
    with setup("a fresh Trainer with max_steps=3"):
        lm, ds, args, collator = kit.checkpointing_run(model, device, tmp_path, max_steps=3)
        count = Count()
        trainer = Trainer(model=lm, args=args, train_dataset=ds, data_collator=collator, callbacks=[count])
    facts = dict(torch=torch.__version__, checkpoint_files=files)
    try:
        with step("trainer.train(resume_from_checkpoint=checkpoint-2)"):
            trainer.train(resume_from_checkpoint=ckpt)
    except Exception as exc:
        record(**facts, error=kit.exception_summary(exc), steps_reached=trainer.state.global_step,
               steps_after_resume=Count.steps)
        raise
    record(**facts, error=None, steps_reached=trainer.state.global_step, steps_after_resume=Count.steps)
    assert trainer.state.global_step == 3, f"resumed training reached step {trainer.state.global_step}, not 3"
    assert Count.steps == 1, f"{Count.steps} steps ran after resuming from step 2 of 3, not 1"


def test_bin_from_pretrained(model, device, tmp_path):
    """from_pretrained of a folder whose weights are pytorch_model.bin (a torch pickle)."""
    _load(model, tmp_path, safetensors=False)


def test_safetensors_from_pretrained(model, device, tmp_path):
    """The twin: from_pretrained of the same model saved as model.safetensors."""
    _load(model, tmp_path, safetensors=True)


def test_trainer_resume(model, device, tmp_path):
    """Resume a Trainer from a full checkpoint (optimizer.pt, scheduler.pt, rng_state.pth are torch pickles)."""
    _resume(model, device, tmp_path, drop_pickles=False)


def test_trainer_resume_no_pickles(model, device, tmp_path):
    """The twin: resume from the same checkpoint without its torch pickles (safetensors weights only)."""
    _resume(model, device, tmp_path, drop_pickles=True)
