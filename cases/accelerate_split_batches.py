"""Accelerator(split_batches=True): the setting must take effect, not be accepted and dropped.

accelerate 0.28 moved ``split_batches``, ``dispatch_batches``, ``even_batches`` and
``use_seedable_sampler`` into ``DataLoaderConfiguration``
(https://github.com/huggingface/accelerate/pull/2441). accelerate 1.0 removed three of them from
``Accelerator.__init__`` (passing them raises ``TypeError``, see ``trainer_compute_loss``'s
``dispatch_batches`` finding) but kept ``split_batches`` in the signature with nothing reading it, so
``Accelerator(split_batches=True)`` is accepted and batches are silently not split
(https://github.com/huggingface/accelerate/issues/3177). A multi-GPU user then trains with N times the
batch they asked for.

Variants, each building an ``Accelerator`` on CPU and preparing a DataLoader of batch size 4:
* ``init_kwarg``: ``Accelerator(split_batches=True)``, the idiom of accelerate < 0.28;
* ``dataloader_config``: the twin, ``Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True))``.

A pass means the accelerator reports ``split_batches`` true and that a process of a two-process run
would see half the batch. This machine runs one process, so the second check calls accelerate's own
``prepare_data_loader`` for process 0 of 2 with the accelerator's ``split_batches`` and dispatch
settings, as ``Accelerator.prepare_data_loader`` passes them in a real two-process run; only the process
count is stood in for. Boundaries, each run on both sides: docs/findings/accelerate_split_batches.md.
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
