import sys, torch, tempfile, traceback
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
path = sys.argv[1]  # the tiny Llama folder an adhoc run built (models/tiny-llama-*)
cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
def load(**kw):
    return AutoModelForCausalLM.from_pretrained(path, quantization_config=cfg, device_map={"": "cpu"}, dtype=torch.float32)
def tryit(name, fn):
    try:
        r = fn(); print("OK  ", name, r)
    except Exception as e:
        print("FAIL", name, type(e).__name__, str(e)[:200]); traceback.print_exc(limit=-4)
from accelerate import dispatch_model, cpu_offload, disk_offload
ids = torch.tensor([[1, 2, 3, 4]])
ref = load()
with torch.no_grad(): base = ref(ids).logits
def fwd(m):
    with torch.no_grad(): out = m(ids).logits
    return float((out - base).abs().max()), sum(type(p).__name__ == "Params4bit" for p in m.parameters())
def disp_disk():
    m = load()
    dm = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    m = dispatch_model(m, device_map=dm, main_device="cpu", offload_dir=tempfile.mkdtemp())
    return fwd(m)
tryit("dispatch_model disk", disp_disk)
def disp_cpu_offload_map():
    m = load()
    dm = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    m = dispatch_model(m, device_map=dm, main_device="cpu", force_hooks=True)
    return fwd(m)
tryit("dispatch_model force_hooks", disp_cpu_offload_map)
def off():
    m = load(); cpu_offload(m, execution_device="cpu"); return fwd(m)
tryit("cpu_offload", off)
def off_cleared():
    m = load()
    for p in m.parameters(): p.__dict__.pop("_is_hf_initialized", None)
    cpu_offload(m, execution_device="cpu"); return fwd(m)
tryit("cpu_offload cleared", off_cleared)
def dsk():
    m = load(); disk_offload(m, tempfile.mkdtemp(), execution_device="cpu"); return fwd(m)
tryit("disk_offload", dsk)
