"""The CUDA path of pretraining and of screening with the bundled checkpoint (marked gpu: run
on the GPU machine when one is lent, skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_pretrain, write_config

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

# The tests' tiny pretraining, trained on the GPU.
PRETRAIN = {**tiny_pretrain(), "name": "tiny-cuda", "chemical_systems": ["Cu-Au"]}
PRETRAIN["model"] = {**PRETRAIN["model"], "device": "cuda"}


def test_pretraining_trains_on_cuda_and_its_checkpoint_screens_alike_on_cpu(tmp_path):
    from discovery.config import load_pretrain_config
    from discovery.engine.pretraining.pretrain_run import run_pretraining
    from models import Ensemble

    config = load_pretrain_config(write_config(tmp_path / "p.yaml", PRETRAIN))
    result = run_pretraining(config, tmp_path / "out")
    on_gpu = Ensemble.load(result.checkpoint, device="cuda")
    on_cpu = Ensemble.load(result.checkpoint, device="cpu")
    assert next(on_gpu.members[0].parameters()).device.type == "cuda"
    from pymatgen.core import Lattice, Structure

    fcc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    probe = [
        Structure(Lattice.cubic(3.7), ["Cu", "Au", "Cu", "Au"], fcc),
        Structure(Lattice.cubic(3.6), ["Cu"] * 4, fcc),
    ]
    gpu = [p.mean for p in on_gpu.predict(probe)]
    cpu = [p.mean for p in on_cpu.predict(probe)]
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


def test_the_bundled_checkpoint_screens_on_cuda_as_on_cpu():
    from pymatgen.core import Lattice, Structure

    from discovery.engine.initial_model import bundled_checkpoint
    from models import Ensemble

    fm3m = "Fm-3m"
    rocksalt = Structure.from_spacegroup(
        fm3m, Lattice.cubic(4.45), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    li2o = Structure.from_spacegroup(
        fm3m, Lattice.cubic(4.62), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )
    results = []
    for device in ("cpu", "cuda"):
        ensemble = Ensemble.load(bundled_checkpoint(), device=device)
        results.append([(p.mean, p.std) for p in ensemble.predict([rocksalt, li2o])])
    np.testing.assert_allclose(results[1], results[0], atol=1e-4)
