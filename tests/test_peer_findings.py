"""What `check_trading_env` finds in gym-anytrading 2.0.0 and gym-trading-env 0.3.5, pinned.

Each finding of docs/findings.md is pinned twice: by its minimal reproduction, using
the package directly (no tradeguard), and by the check that found it. Both *expect the
defect*: when a release fixes one, its test fails here, and the finding (and the test)
should be updated. Source lines cited in docs/findings.md were read in the installed
packages.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeguard.invariants._gate import check_trading_env
from tradeguard.invariants.peers._anytrading import make_forex_env, make_stocks_env
from tradeguard.invariants.peers._gym_trading_env import make_margin_trading_env, make_trading_env

pytestmark = pytest.mark.filterwarnings("default")


def stocks() -> Any:
    from gym_anytrading.envs import StocksEnv

    return StocksEnv(df=pd.DataFrame({"Close": np.arange(1.0, 41.0)}), window_size=4, frame_bound=(4, 40))


def trading_env(**kwargs: Any) -> Any:
    with warnings.catch_warnings():  # the import runs warnings.filterwarnings("error")
        from gym_trading_env.environments import TradingEnv
    df = pd.DataFrame({"close": np.arange(1.0, 41.0), "feature_x": 0.0})
    return TradingEnv(df=df, verbose=0, **kwargs)


def violations(make_env: Any, invariant: str, **kw: Any) -> list[str]:
    report = check_trading_env(make_env, only=[invariant], examples=10, max_steps=6, seed=0, **kw)
    (result,) = report.results
    assert result.status == "fail", report.format()
    return [v.message for v in result.violations]


# --------------------------------------------------------------------------- gym-anytrading
def test_anytrading_observation_is_a_view_of_the_envs_feature_array() -> None:
    env = stocks()
    obs, _ = env.reset(seed=0)
    obs[:] = 0.0
    assert env.step(0)[0][:, 0].tolist() == [0.0, 0.0, 0.0, 6.0]
    assert env.reset(seed=0)[0][:, 0].tolist() == [0.0, 0.0, 0.0, 0.0]  # corrupted for good


def test_check_finds_the_anytrading_observation_view() -> None:
    for make in (lambda: make_stocks_env(steps=6), lambda: make_forex_env(steps=6)):
        assert violations(make, "returned-data-not-reused") == [
            "observation from step 0 shares memory with observation from reset: a caller keeping one sees it change"
        ]


def test_anytrading_takes_actions_outside_its_space_silently() -> None:
    env = stocks()
    taken = {}
    for action in (2, -1, 1.5, None, 1.0):
        assert not env.action_space.contains(action)
        env.reset(seed=0)
        env.step(action)  # no error
        taken[repr(action)] = env._position.name
    assert taken == {"2": "Short", "-1": "Short", "1.5": "Short", "None": "Short", "1.0": "Long"}


def test_check_finds_anytrading_silent_coercions() -> None:
    found = violations(lambda: make_stocks_env(steps=6), "action-range-enforced")
    assert [m.split(" (")[0] for m in found] == ["step(2)", "step(-1)", "step(1.5)", "step(1.0)", "step(None)"]
    assert found[0].endswith("the action was silently taken as something else; it executed as (no trade)")
    assert found[3].endswith("it executed as Buy")


def test_anytrading_steps_on_after_the_end_of_its_data() -> None:
    env = stocks()
    env.reset(seed=0)
    truncated = False
    while not truncated:
        *_, truncated, _ = env.step(0)
    obs, _, terminated, truncated, _ = env.step(0)  # no error
    assert (terminated, truncated) == (False, False)
    assert obs.shape == (3, 2) and env.observation_space.shape == (4, 2)


def test_check_finds_anytrading_stepping_past_the_end() -> None:
    (message,) = violations(lambda: make_stocks_env(steps=6), "step-after-end-refused")
    assert message == (
        "step() after the episode ended at step 5 returned normally instead of raising: an agent can keep "
        "trading past the end of the data"
    )


def test_anytrading_unseeded_reset_reseeds_the_action_space_with_zero() -> None:
    # Found reading the source (trading_env.py:60); seeding-honored finds it since issue 14.
    env = stocks()
    episodes = []
    for _ in range(3):
        env.reset()
        episodes.append([int(env.action_space.sample()) for _ in range(16)])
    assert episodes[0] == episodes[1] == episodes[2]


def test_check_finds_anytrading_unseeded_reset_reseeding_the_action_space() -> None:
    (message,) = violations(lambda: make_stocks_env(steps=6), "seeding-honored")
    assert re.fullmatch(r"two fresh envs, their action spaces seeded differently \(\d+ and \d+\) and reset with "
                        r"seed=None, sampled the same 32 actions: reset\(seed=None\) reseeds the action space to a "
                        r"constant, .*", message), message


def test_check_warns_that_anytrading_observations_hide_the_position() -> None:
    report = check_trading_env(lambda: make_stocks_env(steps=6), only=["position-observable"], examples=10,
                               max_steps=6, seed=0)
    (result,) = report.results
    assert result.status == "warn" and report.passed, report.format()
    assert "the agent cannot see its own position" in result.violations[0].message


# --------------------------------------------------------------------------- gym-trading-env
@pytest.mark.slow
def test_gym_trading_env_import_turns_every_warning_into_an_error() -> None:
    code = (
        "import warnings\n"
        "import gym_trading_env.environments\n"
        "print(warnings.filters[0][:3])\n"
        "try:\n"
        "    warnings.warn('old API', DeprecationWarning)\n"
        "except DeprecationWarning:\n"
        "    print('raised')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.splitlines() == ["('error', None, <class 'Warning'>)", "raised"]


def test_gym_trading_env_reset_draws_from_the_global_rng() -> None:
    env = trading_env()
    assert {int(env.reset(seed=0)[1]["position"]) for _ in range(30)} == {0, 1}
    np.random.seed(1)
    env.reset(seed=0)
    after = np.random.rand()
    np.random.seed(1)
    assert after != np.random.rand()


def test_check_finds_gym_trading_env_irreproducible_reset() -> None:
    report = check_trading_env(lambda: make_trading_env(steps=6), only=["replay-determinism"], examples=10, max_steps=6, seed=0)
    assert report.results[0].status == "fail"
    assert any(f.startswith("reset(seed=0) draws from numpy's global random generator (np.random.*)") for f in report.findings)


def test_gym_trading_env_observation_is_a_view_of_the_envs_feature_array() -> None:
    env = trading_env(initial_position=0)
    obs, _ = env.reset(seed=0)
    obs[0] = 123.0
    obs2, _ = env.reset(seed=0)
    assert obs2[0] == 123.0 and np.shares_memory(obs, obs2)


def test_check_finds_the_gym_trading_env_observation_view() -> None:
    found = violations(lambda: make_trading_env(steps=6, initial_position=0), "returned-data-not-reused")
    assert found == [
        "observation from the second reset shares memory with observation from reset: a caller keeping one sees it change"
    ]


def test_gym_trading_env_takes_minus_one_as_the_last_position() -> None:
    env = trading_env(positions=[-1, 0, 1], initial_position=0)
    env.reset(seed=0)
    *_, info = env.step(-1)
    assert not env.action_space.contains(-1)
    assert (info["position"], info["position_index"]) == (1, -1)


def test_check_finds_gym_trading_env_silent_coercions() -> None:
    found = violations(lambda: make_trading_env(steps=6, initial_position=0), "action-range-enforced")
    assert [m.split(" (")[0] for m in found] == ["step(-1)", "step(None)"]
    assert found[0].endswith("it executed as position 1")


def test_gym_trading_env_trades_on_after_max_episode_duration() -> None:
    env = trading_env(initial_position=0, max_episode_duration=10)
    env.reset(seed=0)
    truncated, steps = False, 0
    while not truncated:
        *_, truncated, _ = env.step(1)
        steps += 1
    *_, info = env.step(0)  # no error: trades on
    assert (steps, info["step"], info["position"]) == (9, 10, 0)


def test_check_finds_gym_trading_env_stepping_past_max_episode_duration() -> None:
    (message,) = violations(lambda: make_trading_env(steps=12, max_episode_duration=5), "step-after-end-refused")
    assert message.startswith("step() after the episode ended at step 3 returned normally instead of raising")


def test_check_finds_gym_trading_env_max_episode_duration_one_step_short() -> None:
    (message,) = violations(lambda: make_trading_env(steps=12, max_episode_duration=5), "episode-length-as-configured")
    assert message.startswith("the env's settings declare episodes of 5 steps (TraceMeta.episode_length); this "
                              "episode ended after 4 steps (1 step short), with no ruin to end it early"), message


def test_check_finds_gym_trading_env_crashing_past_the_end_of_its_data() -> None:
    # With max_episode_duration="max", the step past the end dies on an IndexError in the data: a crash, not a refusal.
    messages = violations(lambda: make_trading_env(steps=6), "step-after-end-refused")
    assert re.fullmatch(r"step\(\) after the episode ended at step 5 raised IndexError: .*; an IndexError is a crash "
                        r"by the default rule .*", messages[0]), messages[0]


def test_check_finds_gym_trading_env_drawing_from_the_global_rng() -> None:
    # Only that: the wrapper that rebuilds the env on each market keeps one action space, so a
    # seeded action space samples the same after reset(seed=s) (the package's reset leaves it alone).
    (message,) = violations(lambda: make_trading_env(steps=6), "seeding-honored")
    assert message.startswith("reset(seed=") and "changed numpy's global generator (np.random)" in message, message


def test_gym_trading_env_borrow_interest_does_not_accrue() -> None:
    # utils/portfolio.py:44-46: update_interest *sets* the interest owed to one step's worth.
    df = pd.DataFrame({"close": np.full(40, 100.0), "feature_x": 0.0})

    def values(actions: list[int]) -> list[float]:
        with warnings.catch_warnings():
            from gym_trading_env.environments import TradingEnv
        env = TradingEnv(df=df, verbose=0, positions=[-1, 0, 1], initial_position=0, borrow_interest_rate=0.01)
        env.reset(seed=0)
        return [float(env.step(a)[4]["portfolio_valuation"]) for a in actions]

    assert values([0] * 10) == [990.0] * 10  # short 10 steps at 1% a step: 1% paid, not 10%
    assert values([0, 1]) == values([0] * 10 + [1])[-2:] == [990.0, 990.0]  # closing after 1 or 10 steps: the same
    assert values([0] * 5 + [2])[-1] == pytest.approx(1000.0, rel=1e-12)  # flipped to long: the interest is forgiven


def test_check_finds_gym_trading_env_interest_that_does_not_accrue() -> None:
    found = violations(make_margin_trading_env, "financing-as-declared")
    assert re.fullmatch(r"(no interest or borrow cost|financing of -?[\d,.]+) charged on step \d+ with cash -?[\d,.]+; "
                        r"the declared schedule charges [\d,.]+", found[0]), found[0]


def test_gym_trading_env_trades_on_after_ruin() -> None:
    # environments.py:246-247 ends the episode when the portfolio is worth <= 0; step() never refuses.
    with warnings.catch_warnings():
        from gym_trading_env.environments import TradingEnv
    df = pd.DataFrame({"close": [100.0, 100.0] + [250.0] * 38, "feature_x": 0.0})
    env = TradingEnv(df=df, verbose=0, positions=[-1, 0, 1], initial_position=0)
    env.reset(seed=0)
    env.step(0)
    _, _, terminated, _, info = env.step(0)
    assert terminated and info["portfolio_valuation"] == -500.0
    *_, info = env.step(2)  # no error: goes long with a ruined account
    assert info["position"] == 1


def test_check_finds_gym_trading_env_stepping_past_ruin() -> None:
    # The gate's shrunk counterexample for this env is now the IndexError at the end of its data
    # (test_check_finds_gym_trading_env_crashing_past_the_end_of_its_data), simpler than a ruin;
    # the ruin it found before (a short at 0.01 that the price then multiplies by ten) is replayed here.
    from tradeguard.env import Market
    from tradeguard.invariants._contract import check_step_after_end_refused
    from tradeguard.invariants.peers import GymTradingEnvAdapter

    market = Market(np.array([1] + [10] * 25, dtype=np.int64))
    found = check_step_after_end_refused(make_margin_trading_env, [0], seed=0, options={"market": market},
                                         adapter=GymTradingEnvAdapter())
    assert [v.message for v in found] == [
        "step() after the episode ended at step 0 returned normally instead of raising: an agent can keep trading "
        "past the end of the data"]
