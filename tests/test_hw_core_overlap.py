"""Steps back to back on the core alone (Amaranth simulator): a random sequence of layer-steps (any
layer, any mode, random input spikes) handed to the core as fast as it takes them gives exactly the
output spikes, final states and counters of the same steps run one at a time.

The accelerator's schedule runs the layers of a step in order, but the core does not rely on it:
this sequence repeats layers (the ``same`` rule of ``hw/core/core.py``; a step's first word after
the write-back of the last word before it when that updated the same layer) and runs encoder steps
next to weight layers whose accumulator words they alias (a core sized by ``params_for``: the banks
hold only the weight layers' words). On 4 lanes the core overlaps its steps (``CoreParams.overlap``):
the next step's config and events come in behind the end marker."""

from functools import partial

import numpy as np
import pytest

from cssnn.hw.params import CoreParams, HostMem, Mode, event_layout, pack, unpack
from cssnn.sw.mapping.image import place_network, unpack_state
from cssnn.sw.mapping.sizing import params_for
from cssnn.verif.netgen import random_network
from cssnn.verif.pysim import run_with_core


def _sequence(rng, img, count):
    """``count`` random steps: (config, input events as (slot, sign)); half of them repeat the layer
    of the step before."""
    L = len(img.layers) - 1
    steps, layer = [], 0
    for _ in range(count):
        if rng.random() >= 0.5:
            layer = int(rng.integers(L + 1))
        pl = img.layers[layer]
        if layer == 0:
            mode = Mode.SILENT if rng.random() < 0.3 else Mode.FIRE
        elif layer == L:
            mode = Mode.OUT_FIRST if rng.random() < 0.3 else Mode.OUT
        else:
            mode = Mode.SILENT if rng.random() < 0.3 else Mode.FIRE
        events = []
        if layer > 0:
            prev = img.layers[layer - 1].count
            slots = np.flatnonzero(rng.random(prev) < rng.uniform(0.1, 1.0))
            events = [(int(s), 1 if rng.random() < 0.7 else -1) for s in slots]
        steps.append((pl.config(mode), events))
    return steps


async def _state(drv, img):
    p = img.params
    raws = await drv.host_read_many([(HostMem.STATE, w, k) for w in range(img.words_used) for k in range(p.lanes)])
    acc = await drv.host_read_many([(HostMem.ACC, w, k) for w in range(img.words_used) for k in range(p.lanes)])
    return [unpack_state(p, r) for r in raws], acc


async def _one_at_a_time(drv, steps):
    return [(await drv.run_step(cfg, events)).events for cfg, events in steps]


async def _back_to_back(drv, steps, rng, ready_prob):
    """Every config offered as soon as the last one is taken, every event as soon as the last one is
    taken (with random gaps), the output taken with random back-pressure (ready with
    ``ready_prob``); the outputs split at the end markers."""
    io, p = drv.io, drv.p
    ev_layout = event_layout(p)
    evs = []
    for _, events in steps:
        evs += [pack(ev_layout, {"index": i, "neg": int(s < 0)}) for i, s in events]
        evs.append(pack(ev_layout, {"end": 1}))
    k_cfg, k_ev, outs, cur = 0, 0, [], []
    for _ in range(200_000):
        if k_cfg < len(steps):
            io.set("step__payload", pack(drv.cfg_layout, steps[k_cfg][0]))
        io.set("step__valid", int(k_cfg < len(steps)))
        offer = k_ev < len(evs) and rng.random() < 0.8
        if offer:
            io.set("events__payload", evs[k_ev])
        io.set("events__valid", int(offer))
        ready = rng.random() < ready_prob
        io.set("out__ready", int(ready))
        await io.settle()
        if k_cfg < len(steps) and io.get("step__ready"):
            k_cfg += 1
        if offer and io.get("events__ready"):
            k_ev += 1
        if ready and io.get("out__valid"):
            ev = unpack(ev_layout, io.get("out__payload"))
            if ev["end"]:
                outs.append(cur)
                cur = []
            else:
                cur.append((ev["index"], -1 if ev["neg"] else 1))
        await io.tick()
        if len(outs) == len(steps):
            break
    io.set("step__valid", 0)
    io.set("events__valid", 0)
    io.set("out__ready", 0)
    assert len(outs) == len(steps), f"{len(outs)} of {len(steps)} steps finished"
    for _ in range(8):
        await io.tick()
    return outs


def _run(p, img, x, body):
    async def run(drv):
        await drv.load(img)
        for w in img.input_writes(x):
            await drv.host_write(*w)
        await drv.clear_counters()
        outs = await body(drv)
        counters = await drv.counters()
        counters.pop("cycles")
        return outs, await _state(drv, img), counters

    return run_with_core(p, run)


def _room(lanes):
    return CoreParams(lanes=lanes, weight_bits=6, membrane_bits=11, output_bits=24, acc_bits=12, bias_bits=12,
                      threshold_bits=10, neurons=64, synapse_rows=512)


#: 2 lanes: steps apart in the update stage; 4 lanes: overlapped (``CoreParams.overlap``), both walks;
#: with strong back-pressure (ready 0.2) a step's words wait for credits between them, so the next
#: step of its layer may catch up with its words in the update stage (``UpdateStage.hazard``)
@pytest.mark.parametrize("lanes, seed, walk, ready_prob", [(2, 1, "rows", 0.7), (4, 2, "rows", 0.7), (4, 3, "lanes", 0.7),
                                                           (4, 4, "rows", 0.2)])
def test_steps_back_to_back_equal_steps_one_at_a_time(lanes, seed, walk, ready_prob):
    rng = np.random.default_rng(seed)
    for _ in range(8):
        net = random_network(rng, _room(lanes), max_layers=3, max_size=12)
        p = params_for(net, lanes=lanes, walk=walk).core
        img = place_network(net, p)
        x = rng.integers(0, net.input_limit + 1, size=net.n_inputs)
        steps = _sequence(rng, img, 60)
        want = _run(p, img, x, partial(_one_at_a_time, steps=steps))
        got = _run(p, img, x, partial(_back_to_back, steps=steps, rng=np.random.default_rng(seed), ready_prob=ready_prob))
        assert got[0] == want[0], "output spikes differ"
        assert got[1] == want[1], "final states or accumulators differ"
        assert got[2] == want[2], "counters differ"

