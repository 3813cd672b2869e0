"""Batch planning for the forward pass: pure logic, no model."""
import numpy as np
import pytest

from spacy_hf_ner.batching import plan_batches


def padding_share(lengths, batches):
    padded = sum(lengths[b].max() * len(b) for b in batches)
    return 1 - sum(lengths[b].sum() for b in batches) / padded


@pytest.mark.parametrize("seed", range(5))
def test_every_window_once_longest_first_within_batch_size(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 130, size=rng.integers(1, 700))
    batches = plan_batches(lengths, 64)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 64 for b in batches)
    order = lengths[flat]
    assert (np.diff(order) <= 0).all()  # longest first, across and within batches


def test_batches_close_before_padding_dominates():
    # 10 long windows and 200 short ones: a fixed 64 would pad 54 short windows to 120
    lengths = np.array([120] * 10 + [10] * 200)
    fixed = [np.arange(i, min(i + 64, 210)) for i in range(0, 210, 64)]
    planned = plan_batches(lengths, 64)
    assert padding_share(lengths, fixed) > 0.5
    # the long batch takes short windows only while padding stays within 20%
    assert [len(b) for b in planned] == [12, 64, 64, 64, 6]
    assert all(padding_share(lengths, [b]) <= 0.2 for b in planned)
    assert padding_share(lengths, planned) < 0.1


def test_min_fill_keeps_batches_from_getting_tiny():
    # steadily falling lengths: every next window adds padding, but batches stay >= 8
    lengths = np.arange(200, 0, -1)
    batches = plan_batches(lengths, 64, max_padding=0.0, min_fill=0.125)
    assert all(len(b) == 8 for b in batches)
    assert padding_share(lengths, batches) < padding_share(lengths, plan_batches(lengths, 64, max_padding=1.0))


def test_equal_lengths_fill_whole_batches_and_empty_input():
    assert [len(b) for b in plan_batches(np.full(130, 7), 64)] == [64, 64, 2]
    assert plan_batches(np.zeros(0, dtype=np.int64), 64) == []
    assert [b.tolist() for b in plan_batches(np.array([5]), 1)] == [[0]]
