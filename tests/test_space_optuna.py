"""SearchSpace.suggest: Optuna's sampler sees exactly the space's decisions, and invalid
candidates are pruned before anything is built."""

from __future__ import annotations

import pytest

from archbuilder import load_space

from .test_space import SMALL

optuna = pytest.importorskip("optuna")


def test_optunas_sampler_sees_exactly_the_decisions():
    from optuna.distributions import CategoricalDistribution, IntDistribution

    expected = {  # written from SMALL by hand
        "w": CategoricalDistribution([8, 16, 64]),
        "blocks.c1.kernel": CategoricalDistribution([1, 3, 9]),
        "blocks.b": CategoricalDistribution(["conv", "inception", "null"]),
        "blocks.b[conv].out": IntDistribution(8, 24, step=8),
    }
    space = load_space(SMALL)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    reached = []

    def objective(trial):
        spec = space.suggest(trial)
        reached.append(trial.number)  # past suggest: the model could be built now
        assert spec.blocks[0].out == trial.params["w"]
        return trial.user_attrs["params"]

    study.optimize(objective, n_trials=40)
    for trial in study.trials:
        active = {"w", "blocks.c1.kernel", "blocks.b"}
        if trial.params["blocks.b"] == "conv":
            active.add("blocks.b[conv].out")
        assert trial.distributions == {name: expected[name] for name in active}
        verdict = space.evaluate(trial.params)
        assert (trial.state == optuna.trial.TrialState.COMPLETE) == verdict.valid
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and not {t.number for t in pruned} & set(reached)
    assert all(t.user_attrs["rejected"] for t in pruned)
    assert all(300 <= t.value <= 20_000 for t in study.trials if t.value is not None)


def test_a_tied_decision_is_asked_once():
    space = load_space(
        """
name: tied
input: {channels: 3, height: 16, width: 16}
blocks:
  - {name: 3a, kind: inception, ch1x1: {choice: [8, 16], id: w3}, ch3x3: 8, ch5x5: 4}
  - {name: 3b, kind: inception, ch1x1: {same: w3}, ch3x3: {range: {low: 8, high: 64, log: true}}, ch5x5: 4}
"""
    )
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    spec = space.suggest(trial)
    assert set(trial.params) == {"w3", "blocks.3b.ch3x3"}
    assert spec.blocks[0].ch1x1 == spec.blocks[1].ch1x1 == trial.params["w3"]
    assert trial.distributions["blocks.3b.ch3x3"] == optuna.distributions.IntDistribution(8, 64, log=True)
