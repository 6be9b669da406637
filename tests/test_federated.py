"""bench/federated.py: a tiny federated-learning run with 2-bit updates sent packed, with bzip2
and with tinycabac; the server must decode exactly what the clients quantized."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_bench_module

import tinycabac

TINY_ROUNDS = 3

fl = load_bench_module("federated")


@pytest.fixture(scope="module")
def first_updates():
    """Round-0 base model and the quantized updates of the first three clients."""
    data = fl.load_dataset()
    base = fl.initial_model()
    updates = []
    for client in range(3):
        trained = fl.train_locally(base, data.client_images[client], data.client_labels[client],
                                   fl.client_rng(fl.SEED, 0, client))
        residual = {name: np.zeros(value.shape) for name, value in base.items()}
        wanted = {name: trained[name].astype(np.float64) - base[name] for name in base}
        updates.append((fl.quantize_update(base, trained, residual), wanted, residual))
    return base, updates


@pytest.fixture(scope="module")
def tiny_run():
    return fl.run_experiment(rounds=TINY_ROUNDS)


def test_quantizer_lands_on_the_ternary_grid_and_keeps_the_rest(first_updates):
    base, updates = first_updates
    for update, wanted, residual in updates:
        for name, levels in update.levels.items():
            assert levels.dtype == np.int8 and set(np.unique(levels)) <= {-1, 0, 1}
            step = np.float64(update.steps[name])
            # nearest neighbour: no grid point is closer than the chosen one
            difference = update.target[name].astype(np.float64) - base[name]
            assert np.all(np.abs(difference - levels * step) <= step / 2)
            # error feedback carries exactly what the grid dropped
            np.testing.assert_allclose(residual[name] + levels * step, wanted[name], rtol=0, atol=1e-6)
        assert any(np.any(levels) for levels in update.levels.values())


def test_server_decodes_exactly_the_clients_quantized_update(first_updates):
    base, updates = first_updates
    for update, _, _ in updates:
        intended = fl.apply_levels(base, update.levels, update.steps)
        deliveries = fl.deliver_two_bit(base, update)
        assert set(deliveries) == set(fl.TWO_BIT_METHODS)
        for method, delivery in deliveries.items():
            assert fl.same_bits(delivery.decoded, intended), method
        decoded_levels = tinycabac.decode(tinycabac.encode(update.levels))
        for name, levels in update.levels.items():
            assert decoded_levels[name].dtype == np.int8
            np.testing.assert_array_equal(decoded_levels[name], levels)
            # the update stream's reconstruction is base + level * step, so it carries the same levels
            applied = deliveries[fl.TINYCABAC_UPDATE].decoded[name]
            recovered = np.rint((applied.astype(np.float64) - base[name]) / np.float64(update.steps[name]))
            np.testing.assert_array_equal(recovered, levels)


def test_deliver_refuses_a_transport_that_changes_the_update(first_updates, monkeypatch):
    base, updates = first_updates

    def drop_first_level(model_base, update):
        delivery = fl.send_packed(model_base, update)
        delivery.decoded["fc1_w"].flat[0] += update.steps["fc1_w"]
        return delivery

    monkeypatch.setitem(fl.TRANSPORTS, fl.PACKED, drop_first_level)
    with pytest.raises(AssertionError, match="different update"):
        fl.deliver_two_bit(base, updates[0][0])


def test_update_stream_refuses_another_base(first_updates):
    base, updates = first_updates
    update = updates[0][0]
    stream = tinycabac.encode(update.target, base=base, step={n: float(s) for n, s in update.steps.items()})
    other_base = {name: value.copy() for name, value in base.items()}
    other_base["fc2_b"][0] += np.float32(0.5)
    with pytest.raises(tinycabac.native.BaseMismatchError):
        tinycabac.apply(other_base, stream)


def test_packed_messages_round_trip_odd_sizes():
    rng = np.random.default_rng(3)
    levels = {"a": rng.integers(-1, 2, size=(3, 7)).astype(np.int8), "b": rng.integers(-1, 2, size=5).astype(np.int8)}
    steps = {"a": np.float32(0.25), "b": np.float32(3.0)}
    message = fl.pack_two_bit(levels, steps)
    assert len(message) == 4 + 6 + 4 + 2
    unpacked, unpacked_steps = fl.unpack_two_bit(message, {"a": (3, 7), "b": (5,)})
    for name in levels:
        np.testing.assert_array_equal(unpacked[name], levels[name])
        assert unpacked_steps[name] == steps[name]


def test_tinycabac_sends_fewer_bits_than_bzip2_than_uncompressed(tiny_run):
    total = {method: int(tiny_run.cumulative_bits(method)[-1]) for method in fl.METHODS}
    messages = TINY_ROUNDS * fl.NUM_CLIENTS
    assert total[fl.PACKED] == messages * sum(4 + (v.size + 3) // 4 for v in fl.initial_model().values()) * 8
    assert total[fl.TINYCABAC_FLAT] < total[fl.BZIP2] < total[fl.PACKED] < total[fl.FLOAT32]
    # Per-layer streams and update streams carry a directory entry per tensor; their entropy-coded
    # payloads alone must still beat bzip2.
    for method in (fl.TINYCABAC_LEVELS, fl.TINYCABAC_UPDATE):
        assert 0 < tiny_run.container_bits[method] < total[method]
        assert total[method] - tiny_run.container_bits[method] < total[fl.BZIP2], method
        assert total[method] < total[fl.PACKED], method


def test_accuracy_improves_over_rounds(tiny_run):
    for method in fl.METHODS:
        curve = tiny_run.accuracy[method]
        assert len(curve) == TINY_ROUNDS
        assert curve[-1] > curve[0] + 0.1, method
        assert curve[-1] > tiny_run.initial_accuracy + 0.3, method
    # all 2-bit transports delivered the same models, so they share one training run
    assert len({tuple(tiny_run.accuracy[m]) for m in fl.TWO_BIT_METHODS}) == 1
