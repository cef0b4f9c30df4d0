"""Random interleavings of expect, bind, flag, expiry, admit and retire against a simple model.

The model is a direct transcription of the documented rules, including the
FIFO forgetting of the oldest (retired or flagged) tombstone, live generation and finished request
once a cap is reached. Invariants checked after every step:

- no frame of a flagged (and still remembered) generation is admitted;
- no frame of a live generation is ever dropped;
- memory stays within the caps;
- every generation's state matches the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import hypothesis.strategies as st
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gate import (
    AlreadyBoundError,
    DropReason,
    GenerationState,
    PcmFrame,
    PlaybackGate,
    UnknownRequestError,
    VirtualClock,
)

MAX_LIVE = 3
MAX_TOMBSTONES = 4
GENERATION_IDS = st.sampled_from([f"g{i}" for i in range(8)])
FLAG_REASONS = st.sampled_from([r for r in DropReason if r.is_flag])
LIVE, FLAGGED, DONE = GenerationState.LIVE, GenerationState.FLAGGED, GenerationState.DONE
FRAME = PcmFrame(np.zeros(240, np.int16), 24_000)


@dataclass
class ModelGeneration:
    state: GenerationState
    request: str | None = None


@dataclass
class ModelRequest:
    deadline: float
    seq: int
    generation: str | None = None
    reason: DropReason | None = None

    @property
    def pending(self) -> bool:
        return self.generation is None and self.reason is None


@dataclass
class Model:
    now: float = 0.0
    seq: int = 0
    gens: dict[str, ModelGeneration] = field(default_factory=dict)
    live_order: list[str] = field(default_factory=list)
    tomb_order: list[str] = field(default_factory=list)
    flagged_order: list[str] = field(default_factory=list)
    reqs: dict[str, ModelRequest] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)

    def new_gen(self, gid: str, state: GenerationState) -> ModelGeneration:
        gen = self.gens[gid] = ModelGeneration(state)
        if state is LIVE:
            self.live_order.append(gid)
            if len(self.live_order) > MAX_LIVE:
                del self.gens[self.live_order.pop(0)]
        else:
            self.entomb(gid)
        return gen

    def entomb(self, gid: str) -> None:
        # Flagged and retired tombstones have FIFOs of their own (max_flagged defaults
        # to max_tombstones): retirements never push a flagged tombstone out.
        if gid in self.live_order:
            self.live_order.remove(gid)
        if self.gens[gid].state is FLAGGED:
            if gid in self.tomb_order:
                self.tomb_order.remove(gid)
            order = self.flagged_order
        else:
            order = self.tomb_order
        if gid not in order:
            order.append(gid)
        if len(order) > MAX_TOMBSTONES:
            del self.gens[order.pop(0)]

    def flag_gen(self, gid: str) -> bool:
        gen = self.gens[gid]
        if gen.state is FLAGGED:
            return False
        gen.state = FLAGGED
        self.entomb(gid)
        return True

    def finish(self, rid: str) -> None:
        if rid not in self.finished:
            self.finished.append(rid)
        if len(self.finished) > MAX_TOMBSTONES:
            self.reqs.pop(self.finished.pop(0), None)

    def expire_due(self) -> list[str]:
        due = sorted(
            (r.deadline, r.seq, rid)
            for rid, r in self.reqs.items()
            if r.pending and r.deadline <= self.now
        )
        for _, _, rid in due:
            self.reqs[rid].reason = DropReason.TIMED_OUT
            self.finish(rid)
        return [rid for _, _, rid in due]


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.clock = VirtualClock()
        self.gate = PlaybackGate(
            clock=self.clock, max_live=MAX_LIVE, max_tombstones=MAX_TOMBSTONES, max_pending=1_000
        )
        self.model = Model()
        self.request_counter = 0

    def known_requests(self) -> list[str]:
        return sorted(self.model.reqs)

    @rule(timeout=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    def expect(self, timeout: float) -> None:
        rid = f"r{self.request_counter}"
        self.request_counter += 1
        self.gate.expect(rid, timeout=timeout)
        self.model.expire_due()
        self.model.seq += 1
        self.model.reqs[rid] = ModelRequest(self.model.now + timeout, self.model.seq)

    @rule(data=st.data(), gid=GENERATION_IDS)
    def bind(self, data: st.DataObject, gid: str) -> None:
        candidates = [f"r{i}" for i in range(self.request_counter)] or ["r-none"]
        rid = data.draw(st.sampled_from(candidates))
        model = self.model
        model.expire_due()
        req = model.reqs.get(rid)
        gen = model.gens.get(gid)
        if req is None:
            expected_error: type[Exception] | None = UnknownRequestError
        elif req.generation is not None or (gen is not None and gen.request not in (None, rid)):
            expected_error = AlreadyBoundError
        else:
            expected_error = None
        try:
            binding = self.gate.bind(rid, gid)
        except (UnknownRequestError, AlreadyBoundError) as e:
            assert type(e) is expected_error, (e, expected_error)
            return
        assert expected_error is None, f"bind({rid}, {gid}) should raise {expected_error}"
        assert req is not None
        req.generation = gid
        model.finish(rid)
        if gen is None:
            gen = model.new_gen(gid, LIVE)
        gen.request = rid
        if req.reason is not None:
            model.flag_gen(gid)
        assert binding.state is model.gens[gid].state
        assert binding.dead_on_arrival == (model.gens[gid].state is FLAGGED)

    @precondition(lambda self: self.request_counter > 0)
    @rule(data=st.data(), reason=FLAG_REASONS)
    def flag_request(self, data: st.DataObject, reason: DropReason) -> None:
        rid = data.draw(st.sampled_from([f"r{i}" for i in range(self.request_counter)]))
        model = self.model
        returned = self.gate.flag_request(rid, reason)
        req = model.reqs.get(rid)
        if req is None:
            req = model.reqs[rid] = ModelRequest(model.now, 0, reason=reason)
            model.finish(rid)
        if req.generation is not None:
            if req.generation not in model.gens:
                model.new_gen(req.generation, LIVE).request = rid
            model.flag_gen(req.generation)
            assert returned == req.generation
        else:
            if req.pending:
                model.finish(rid)
            if req.reason is None:
                req.reason = reason
            assert returned is None

    @rule(gid=GENERATION_IDS, reason=FLAG_REASONS)
    def flag(self, gid: str, reason: DropReason) -> None:
        changed = self.gate.flag(gid, reason)
        if gid not in self.model.gens:
            self.model.new_gen(gid, LIVE)
        assert changed == self.model.flag_gen(gid)

    @rule(gid=GENERATION_IDS)
    def retire(self, gid: str) -> None:
        state = self.gate.retire(gid)
        gen = self.model.gens.get(gid)
        if gen is None:
            gen = self.model.new_gen(gid, DONE)
        elif gen.state is LIVE:
            gen.state = DONE
            self.model.entomb(gid)
        assert state is gen.state

    @rule(gid=GENERATION_IDS)
    def announce(self, gid: str) -> None:
        live = self.gate.announce(gid)
        gen = self.model.gens.get(gid) or self.model.new_gen(gid, LIVE)
        assert live == (gen.state is LIVE)

    @rule(gid=GENERATION_IDS)
    def admit(self, gid: str) -> None:
        gen = self.model.gens.get(gid)
        passed = self.gate.admit(gid, FRAME)
        if gen is None:
            gen = self.model.new_gen(gid, LIVE)
        if gen.state is FLAGGED:
            assert not passed, f"a frame of flagged generation {gid} was admitted"
        elif gen.state is LIVE:
            assert passed, f"a frame of live generation {gid} was dropped"
        else:
            assert not passed, f"a straggler of retired generation {gid} was admitted"

    @rule(gid=GENERATION_IDS)
    def admit_buffered(self, gid: str) -> None:
        gen = self.model.gens.get(gid)
        passed = self.gate.admit_buffered(gid, FRAME)
        if gen is None:
            gen = self.model.new_gen(gid, LIVE)
        assert passed == (gen.state is not FLAGGED), f"{gid} is {gen.state}, passed={passed}"

    @rule(dt=st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    def advance(self, dt: float) -> None:
        self.clock.advance(dt)
        self.model.now += dt

    @rule()
    def expire(self) -> None:
        assert self.gate.expire() == self.model.expire_due()

    @invariant()
    def memory_within_caps(self) -> None:
        footprint = self.gate.footprint()
        assert footprint["live"] <= MAX_LIVE
        assert footprint["tombstones"] <= MAX_TOMBSTONES
        assert footprint["flagged"] <= MAX_TOMBSTONES
        assert footprint["generations"] <= MAX_LIVE + 2 * MAX_TOMBSTONES
        assert footprint["requests"] <= MAX_TOMBSTONES + footprint["pending"]

    @invariant()
    def states_match_model(self) -> None:
        actual = {g.generation_id: g.state for g in self.gate.generations()}
        expected = {gid: g.state for gid, g in self.model.gens.items()}
        assert actual == expected
        expected_pending = sorted(rid for rid, r in self.model.reqs.items() if r.pending)
        assert sorted(self.gate.pending_requests()) == expected_pending


LedgerMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerStateful = LedgerMachine.TestCase
