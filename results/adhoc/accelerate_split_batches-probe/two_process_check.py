import sys
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from torch.utils.data import DataLoader
mode = sys.argv[1]
acc = Accelerator(split_batches=True, cpu=True) if mode == "kwarg" else Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True), cpu=True)
dl = acc.prepare(DataLoader(list(range(8)), batch_size=4))
print(f"RESULT {mode} rank {acc.process_index}/{acc.num_processes} split_batches={acc.split_batches} batch={len(next(iter(dl)))}", flush=True)
