"""Accelerator(split_batches=True): the setting must take effect, not be accepted and dropped.

accelerate 1.0 kept ``split_batches`` in ``Accelerator.__init__`` (moved to ``DataLoaderConfiguration`` in 0.28) with
nothing reading it, so ``Accelerator(split_batches=True)`` is accepted and batches are silently not split
(https://github.com/huggingface/accelerate/issues/3177): a multi-GPU user trains with N times the batch asked for.
Variants, each building an ``Accelerator`` on CPU and preparing a DataLoader of batch size 4:
* ``init_kwarg``: ``Accelerator(split_batches=True)``, the idiom of accelerate < 0.28;
* ``dataloader_config``: the twin, ``Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True))``.
Pass: the accelerator reports ``split_batches`` true and a process of a two-process run would see half the batch.
Emulation: this machine runs one process, so the check calls accelerate's own ``prepare_data_loader`` for process 0 of 2
with the accelerator's ``split_batches`` and dispatch settings, as ``Accelerator.prepare_data_loader`` passes them in a
real two-process run; only the process count is stood in for. Boundaries and upstream links:
docs/findings/accelerate_split_batches.md.
"""

from ftcompat.harness import record, setup, step


def _check(accelerator) -> None:
    """Record what the accelerator will do with a batch of 4 on 2 processes, and assert it splits."""
    import torch
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader

    with step("prepare_data_loader for process 0 of 2 with the accelerator's settings"):
        loader = DataLoader(list(range(8)), batch_size=4)
        shard = prepare_data_loader(loader, num_processes=2, process_index=0, split_batches=accelerator.split_batches,
                                    put_on_device=False, device=torch.device("cpu"))
        first = next(iter(shard))
    record(split_batches=accelerator.split_batches, per_process_batch=len(first), global_batch=4)
    assert accelerator.split_batches is True, "the accelerator's split_batches is False after asking for True"
    assert len(first) == 2, f"process 0 of 2 sees a batch of {len(first)}, not half of 4"


def test_init_kwarg():
    """``Accelerator(split_batches=True)`` splits batches (or refuses the argument)."""
    with setup("import accelerate"):
        from accelerate import Accelerator
    with step("Accelerator(split_batches=True)"):
        accelerator = Accelerator(split_batches=True, cpu=True)
    _check(accelerator)


def test_dataloader_config():
    """The twin: ``DataLoaderConfiguration(split_batches=True)`` passed as ``dataloader_config=`` splits batches."""
    with setup("import accelerate"):
        from accelerate import Accelerator
    with step("Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True))"):
        from accelerate.utils import DataLoaderConfiguration

        accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True), cpu=True)
    _check(accelerator)
