"""AdaController (ADA paper section 3): direction and size of p steps, clamping, exact resume, ranks."""
import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.training.ada import AdaController
from stylegan.training.augment import AugmentPipe

from patience import patience


def make(p=0.5, **kwargs):
    pipe = AugmentPipe(xflip=1)
    pipe.set_probability(p)
    return pipe, AdaController(pipe, **kwargs)


def logits_with_signs(positive, negative):
    return torch.cat([torch.rand(positive) + 0.1, -torch.rand(negative) - 0.1])


def test_p_moves_up_when_reals_are_classified_confidently():
    pipe, ada = make(p=0.5, target=0.6, ada_interval=4, ada_kimg=2)
    results = []
    for _ in range(4):
        ada.accumulate(logits_with_signs(7, 1))  # mean sign 0.75 > 0.6
        results.append(ada.update(batch_size=8))
    assert results[:3] == [None, None, None]
    expected = 0.5 + 8 * 4 / (2 * 1000)
    assert results[3] == pytest.approx(expected, abs=1e-7)
    assert float(pipe.p) == results[3] and ada.p == results[3]
    assert ada.r_t == pytest.approx(0.75)


def test_p_moves_down_otherwise_with_the_same_step():
    pipe, ada = make(p=0.5, target=0.6, ada_interval=2, ada_kimg=1)
    ada.accumulate(logits_with_signs(3, 1))  # signs: +3 -1
    assert ada.update(16) is None
    ada.accumulate(logits_with_signs(2, 2)[None, :, None])  # any shape; signs: +2 -2
    new_p = ada.update(16)
    assert ada.r_t == pytest.approx((3 - 1 + 2 - 2) / 8)  # 0.25 < 0.6
    assert new_p == pytest.approx(0.5 - 16 * 2 / 1000, abs=1e-7)


def test_exactly_on_target_leaves_p_alone():
    _, ada = make(p=0.3, target=0.5, ada_interval=1)
    ada.accumulate(logits_with_signs(3, 1))
    assert ada.update(64) == pytest.approx(0.3) and ada.r_t == 0.5


def test_p_stays_in_unit_interval():
    pipe, ada = make(p=0.9, ada_interval=1, ada_kimg=0.1)  # step 0.32 per update
    for _ in range(5):
        ada.accumulate(logits_with_signs(10, 0))
        assert 0 <= ada.update(32) <= 1
    assert float(pipe.p) == 1.0
    for _ in range(6):
        ada.accumulate(logits_with_signs(0, 10))
        assert 0 <= ada.update(32) <= 1
    assert float(pipe.p) == 0.0


def test_interval_without_measurements_keeps_p():
    pipe, ada = make(p=0.4, ada_interval=2)
    assert ada.update(8) is None and ada.update(8) is None
    assert float(pipe.p) == pytest.approx(0.4) and ada.r_t is None


def test_state_dict_round_trip_resumes_identically():
    torch.manual_seed(0)
    batches = [torch.randn(6) + 0.4 for _ in range(23)]
    pipe_a, ada_a = make(p=0.2, ada_interval=4, ada_kimg=0.5)
    for logits in batches[:10]:  # stop mid-interval, with statistics pending
        ada_a.accumulate(logits)
        ada_a.update(6)
    state = ada_a.state_dict()
    assert state["minibatches"] == 2 and state["sign_count"] == 12
    assert all(isinstance(v, (int, float)) for v in state.values())
    state = json.loads(json.dumps(state))  # plain numbers survive any serialisation

    pipe_b, ada_b = make(p=0.9, ada_interval=4, ada_kimg=0.5)
    ada_b.load_state_dict(state)
    assert float(pipe_b.p) == float(pipe_a.p) and ada_b.r_t == ada_a.r_t
    trace_a, trace_b = [], []
    for logits in batches[10:]:
        ada_a.accumulate(logits)
        ada_b.accumulate(logits)
        trace_a.append((ada_a.update(6), ada_a.r_t))
        trace_b.append((ada_b.update(6), ada_b.r_t))
    assert trace_a == trace_b and any(p is not None for p, _ in trace_a)
    assert float(pipe_a.p) == float(pipe_b.p)


def test_fresh_state_has_nan_r_t_and_loads_back():
    _, ada = make(p=0.0)
    state = ada.state_dict()
    assert math.isnan(state["r_t"]) and state["p"] == 0.0
    _, other = make(p=0.7)
    other.load_state_dict(state)
    assert other.r_t is None and other.p == 0.0


def test_bad_input():
    pipe, ada = make()
    with pytest.raises(UserInputError, match="batch_size"):
        ada.update(0)
    with pytest.raises(UserInputError, match="non-empty"):
        ada.accumulate(torch.zeros(0))
    with pytest.raises(UserInputError, match="missing"):
        ada.load_state_dict({"p": 0.1})
    with pytest.raises(UserInputError, match="target"):
        AdaController(pipe, target=2)
    with pytest.raises(UserInputError, match="ada_interval"):
        AdaController(pipe, ada_interval=0)
    with pytest.raises(UserInputError, match="scalar tensor `p`"):
        AdaController(torch.nn.Linear(2, 2))


WORKER = textwrap.dedent("""
    import json, sys, torch
    import torch.distributed as dist
    from stylegan.training.ada import AdaController
    from stylegan.training.augment import AugmentPipe
    rank, init = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    pipe = AugmentPipe(xflip=1)
    pipe.set_probability(0.5)
    ada = AdaController(pipe, target=0.6, ada_interval=1, ada_kimg=1)
    # rank 0: 4 positive logits; rank 1: 12 negative -> global mean sign -0.5 (the mean of means would be 0).
    ada.accumulate(torch.ones(4) if rank == 0 else -torch.ones(12))
    p = ada.update(batch_size=10)
    print(json.dumps({"p": p, "r_t": ada.r_t}))
    dist.destroy_process_group()
""")


def test_statistics_are_summed_over_ranks(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    init = f"file://{tmp_path / 'store'}"
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), init], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=patience(300))
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    for result in outputs:
        assert result["r_t"] == pytest.approx(-0.5)
        assert result["p"] == pytest.approx(0.5 - 10 / 1000, abs=1e-7)  # rank 0 alone would have moved up
