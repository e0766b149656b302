"""SFTConfig(max_seq_length=77) is accepted and 77 reaches the config (our training script passes it)."""

from ftcompat.harness import record, setup, step


def test_config(tmp_path):
    """SFTConfig(max_seq_length=77) lands in the config."""
    with setup("import trl"):
        from trl import SFTConfig
    with step("SFTConfig(max_seq_length=77)"):
        cfg = SFTConfig(output_dir=str(tmp_path), max_seq_length=77, report_to="none", use_cpu=True, bf16=False)
    record(max_seq_length=getattr(cfg, "max_seq_length", None))
    assert getattr(cfg, "max_seq_length", None) == 77
