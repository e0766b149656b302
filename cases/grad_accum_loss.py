"""Gradient accumulation: the logged loss and the gradient equal those of the same batch taken at once.

Symptom (silent): with the same data and seed, ``per_device_train_batch_size=4, gradient_accumulation_steps=1`` and ``1
x 4`` should be the same optimizer step, but on padded sequences of different lengths the Trainer averaged
per-micro-batch means (https://github.com/huggingface/transformers/issues/34263), and after the fix logged a loss or
stepped with a gradient off by the accumulation factor or the token count. Setup: four right-padded examples of 3 to 17
tokens (labels ``-100`` on padding), the tiny model in float32 with output embeddings scaled so per-token losses vary
(else every token's loss is ln(V) and no averaging error shows); one plain ``Trainer`` step at learning rate 0,
``max_grad_norm=1e9`` (nothing clipped). The reference, computed independently, is the token-mean cross-entropy over the
non-masked shifted targets of one forward of the four examples, and its gradient norm; the compared norm is the one the
optimizer receives (the logged ``grad_norm`` is recorded beside it). Variants (relative tolerance 1e-3; cells record
losses, norms and ratios):
* ``accum_loss``: with ``bs=1, ga=4`` the logged loss equals the reference and the ``bs=4, ga=1`` log.
* ``accum_grad_norm``: with ``bs=1, ga=4`` the optimizer's gradient norm equals the reference's.
* ``single_batch_loss`` / ``single_batch_grad_norm``: the twins, ``bs=4, ga=1`` against the reference.
A pass means the Trainer trains on (and reports) the token-mean loss of the whole batch. Measured ranges and upstream
links: docs/findings/grad_accum_loss.md.
"""

import functools
import tempfile

from ftcompat.harness import kit, record, setup, step

_TEXTS = [
    "hi there",
    "the cat sat on the mat today",
    "one two three four five six seven eight nine ten eleven",
    "red green blue yellow orange purple black white grey brown pink gold silver cyan teal",
]
_RTOL = 1e-3
_LOGIT_SCALE = 40.0


def _close(a, b):
    return a is not None and b is not None and abs(a - b) <= _RTOL * max(abs(a), abs(b))


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


@functools.cache
def _tokenizer_and_examples(path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    examples = [{"input_ids": list(tok(t)["input_ids"])} for t in _TEXTS]
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    return examples, pad


def _collate(pad_id, features):
    """Right-pad; attention 0 and label -100 on the padding (what DataCollatorForLanguageModeling does)."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    ids, mask, labels = [], [], []
    for f in features:
        n = len(f["input_ids"])
        ids.append(f["input_ids"] + [pad_id] * (width - n))
        mask.append([1] * n + [0] * (width - n))
        labels.append(f["input_ids"] + [-100] * (width - n))
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


def _load(path, device):
    """The tiny model in float32, its logits scaled (deterministically) so per-token losses differ."""
    import torch
    from transformers import AutoModelForCausalLM

    from ftcompat.harness.compat import dtype_kwarg

    lm = AutoModelForCausalLM.from_pretrained(path, **dtype_kwarg(torch.float32)).to(device)
    with torch.no_grad():
        lm.get_output_embeddings().weight.mul_(_LOGIT_SCALE)
    return lm


def _grad_norm(params):
    import torch

    grads = [p.grad.detach().float() for p in params if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))) if grads else 0.0


@functools.cache
def _reference(path, device):
    """One forward of the four padded examples: token-mean CE over non-masked shifted targets, and its gradient."""
    import torch

    examples, pad = _tokenizer_and_examples(path)
    batch = {k: v.to(device) for k, v in _collate(pad, examples).items()}
    lm = _load(path, device)
    lm.train()
    logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    shift_logits, shift_labels = logits[:, :-1, :], batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                                           ignore_index=-100, reduction="none").view(shift_labels.shape)
    valid = shift_labels.ne(-100)
    loss = ce.sum() / valid.sum()
    loss.backward()
    per_example = (ce.sum(1) / valid.sum(1)).tolist()
    return {
        "true_loss": float(loss),
        "true_grad_norm": _grad_norm(lm.parameters()),
        "mean_of_example_means": sum(per_example) / len(per_example),
        "example_losses": [round(x, 4) for x in per_example],
        "example_targets": valid.sum(1).tolist(),
    }


@functools.cache
def _train(path, device, batch_size, accum):
    """One Trainer optimizer step over the four examples; what it logged and what its optimizer received."""
    from transformers import Trainer, TrainingArguments

    seen = {"optimizer_norms": [], "micro_losses": []}
    what = f"per_device_train_batch_size={batch_size}, gradient_accumulation_steps={accum}"
    with setup(f"TrainingArguments and Trainer with {what}"):
        examples, pad = _tokenizer_and_examples(path)
        args = kit.training_args(TrainingArguments, tempfile.mkdtemp(prefix="grad_accum_"), device,
                                 per_device_train_batch_size=batch_size, gradient_accumulation_steps=accum,
                                 max_steps=1, learning_rate=0.0, max_grad_norm=1e9, logging_steps=1, report_to=[],
                                 save_strategy="no", seed=0, remove_unused_columns=False)

        class ProbeTrainer(Trainer):
            def create_optimizer(self, *a, **k):
                out = super().create_optimizer(*a, **k)
                model = self.model
                self.optimizer.register_step_pre_hook(
                    lambda *_: seen["optimizer_norms"].append(_grad_norm(model.parameters())))
                return out

            def training_step(self, *a, **k):
                out = super().training_step(*a, **k)
                seen["micro_losses"].append(round(float(out), 5))
                return out

        trainer = ProbeTrainer(model=_load(path, device), args=args, train_dataset=examples,
                               data_collator=functools.partial(_collate, pad))
    with step(f"Trainer.train() with {what}"):
        trainer.train()
    logged = next((h for h in trainer.state.log_history if "loss" in h), {})
    return {
        "loss": logged.get("loss"),
        "logged_grad_norm": logged.get("grad_norm"),
        "grad_norm": seen["optimizer_norms"][-1] if seen["optimizer_norms"] else None,
        "optimizer_steps": len(seen["optimizer_norms"]),
        "micro_losses": seen["micro_losses"],
        "global_step": trainer.state.global_step,
    }


def _measure(model, device, runs):
    """Reference first (setup), then the Trainer runs asked for; record everything."""
    with setup("reference loss and gradient of the four padded examples"):
        ref = _reference(model.path, device)
        sensitivity = ref["mean_of_example_means"] / ref["true_loss"]
        if abs(sensitivity - 1) < 0.02:
            raise RuntimeError(f"mean of example means / token mean = {sensitivity:.4f}: the data cannot tell them "
                               "apart")
    out = {}
    for name, (bs, ga) in runs.items():
        out[name] = _train(model.path, device, bs, ga)
    facts = {"true_loss": round(ref["true_loss"], 5), "true_grad_norm": round(ref["true_grad_norm"], 5),
             "mean_of_example_means": round(ref["mean_of_example_means"], 5),
             "example_losses": ref["example_losses"], "example_targets": ref["example_targets"]}
    for name, r in out.items():
        facts[name] = r
        facts[f"{name}_loss_over_true"] = _ratio(r["loss"], ref["true_loss"])
        facts[f"{name}_grad_norm_over_true"] = _ratio(r["grad_norm"], ref["true_grad_norm"])
        facts[f"{name}_logged_grad_norm_over_true"] = _ratio(r["logged_grad_norm"], ref["true_grad_norm"])
    if len(out) == 2:
        facts["ga4_loss_over_ga1"] = _ratio(out["ga4"]["loss"], out["ga1"]["loss"])
        facts["ga4_grad_norm_over_ga1"] = _ratio(out["ga4"]["grad_norm"], out["ga1"]["grad_norm"])
    record(**facts)
    for name, r in out.items():
        assert r["optimizer_steps"] == 1 and r["global_step"] == 1, f"{name}: {r['optimizer_steps']} optimizer steps"
        assert r["loss"] is not None, f"{name}: no loss in log_history"
    return ref, out


_BOTH = {"ga1": (4, 1), "ga4": (1, 4)}


def _check(what, ga4, ga1, true, extra):
    """ga=4 against ga=1 first (the accumulation itself), then both against the reference."""
    assert _close(ga4, ga1), (f"ga=4 {what} {ga4:.5f} != ga=1 {ga1:.5f} (ratio {ga4 / ga1:.4f}); "
                              f"reference {true:.5f}{extra}")
    assert _close(ga4, true), (f"ga=4 and ga=1 {what} agree ({ga4:.5f}, {ga1:.5f}) but != reference {true:.5f} "
                               f"(ratio {ga4 / true:.4f}){extra}")


def test_accum_loss(model, device):
    """bs=1, ga=4 logs the token-mean loss of the four examples, the same as bs=4, ga=1."""
    ref, out = _measure(model, device, _BOTH)
    _check("logged loss", out["ga4"]["loss"], out["ga1"]["loss"], ref["true_loss"],
           f"; mean of example means {ref['mean_of_example_means']:.5f}")


def test_accum_grad_norm(model, device):
    """bs=1, ga=4 steps with the gradient of the token-mean loss: its norm equals the reference's and ga=1's."""
    ref, out = _measure(model, device, _BOTH)
    _check("optimizer grad norm", out["ga4"]["grad_norm"], out["ga1"]["grad_norm"], ref["true_grad_norm"],
           f"; logged grad_norm {out['ga4']['logged_grad_norm']}")


def test_single_batch_loss(model, device):
    """The twin: bs=4, ga=1 logs the token-mean loss of the four examples."""
    ref, out = _measure(model, device, {"ga1": (4, 1)})
    ga1, true = out["ga1"]["loss"], ref["true_loss"]
    assert _close(ga1, true), f"ga=1 logged loss {ga1:.5f} != reference {true:.5f} (ratio {ga1 / true:.4f})"


def test_single_batch_grad_norm(model, device):
    """The twin: bs=4, ga=1 steps with the gradient of the token-mean loss."""
    ref, out = _measure(model, device, {"ga1": (4, 1)})
    ga1, true = out["ga1"]["grad_norm"], ref["true_grad_norm"]
    assert _close(ga1, true), (f"ga=1 optimizer grad norm {ga1:.5f} != reference {true:.5f} (ratio {ga1 / true:.4f});"
                               f" logged grad_norm {out['ga1']['logged_grad_norm']}")
