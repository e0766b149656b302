"""My LoRA step: one optimizer step on a LoRA adapter moves the adapter's weights and nothing else.

An example of a case of your own; replace it with the idiom your training code relies on. Each
``test_*`` function is a variant; one that takes ``model`` runs on every model the project file
lists for this case. Name each call with ``step`` (a failure then says which call raised), put
preparation in ``setup`` (its failure is an error, not a verdict) and ``record`` what you measured.
"""

from ftcompat.harness import record, setup, step


def test_adapter_moves(model, device):
    """A LoRA adapter on the model trains: its weights move, the base weights do not."""
    with setup("load the model and tokenizer, add a LoRA adapter"):
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model.path)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        base = AutoModelForCausalLM.from_pretrained(model.path)
        lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               task_type="CAUSAL_LM"))
        before = {n: p.detach().clone() for n, p in lora.named_parameters()}
        batch = tok(["the cat sat on the mat", "one two three four five"], return_tensors="pt", padding=True)
    with step("forward and backward with labels"):
        loss = lora(**batch, labels=batch["input_ids"]).loss
        loss.backward()
    with step("one AdamW step"):
        torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2).step()
    moved = sorted(n for n, p in lora.named_parameters() if not torch.equal(p.detach(), before[n]))
    record(loss=round(float(loss), 4), moved=len(moved), trainable=sum(p.requires_grad for p in lora.parameters()))
    assert moved, "no weight moved after an optimizer step"
    assert all("lora_" in n for n in moved), f"base weights moved: {[n for n in moved if 'lora_' not in n][:3]}"
