"""Search strategies against brute force on small synthetic spaces whose optimum is known."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from edgetune.errors import EdgetuneError
from edgetune.search import (
    META_KEYS,
    RESIDUAL_CONCAT,
    STRATEGIES,
    CostModel,
    DesignSpace,
    Objective,
    Option,
    SearchResult,
    Strategy,
    chain_dp,
    compared_strategies,
    comparison_budget,
    get_strategy,
    pareto_front,
    strategy_help,
    strategy_names,
    synthetic_space,
)
from edgetune.search._base import Evaluator
from edgetune.search._qlearning import QLearning, _QTable, _Walk, qsdnn_schedule


def all_plans(space: DesignSpace) -> np.ndarray:
    """Every plan of a small space, one per row."""
    return np.array(list(itertools.product(*[range(k) for k in space.n_options])), dtype=np.int64)


def brute(space: DesignSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(plans, latency of each, memory of each) by enumeration."""
    plans = all_plans(space)
    lat = space.cost_model.predict_many(plans)
    w, ws = space.weight_table(), space.workspace_table()
    mem = sum(w[i][plans[:, i]] for i in range(len(w))) + np.max([ws[i][plans[:, i]] for i in range(len(ws))], axis=0)
    return plans, lat, mem


def instances(count: int = 20) -> list[DesignSpace]:
    """Chains of 6 x 3 and residual + 3-way concat DAGs of 7 x 3, with conversions and gains."""
    out = []
    for s in range(count):
        if s % 2:
            out.append(synthetic_space(7, 3, RESIDUAL_CONCAT, seed=s, negative=0.2))
        else:
            out.append(synthetic_space(6, 3, "chain", seed=s, negative=0.2))
    return out


def test_space_has_negative_costs_and_branches() -> None:
    sp = synthetic_space(7, 3, RESIDUAL_CONCAT, seed=1, negative=0.2)
    assert any((m < 0).any() for m in sp.edge_cost)
    assert len(sp.predecessors(6)) == 3 and sp.predecessors(2)[0] == (1, 1)
    assert sp.size() == 3**7 and abs(sp.log10_size() - 7 * np.log10(3)) < 1e-12
    assert not sp.is_chain() and synthetic_space(6, 3).is_chain()


@pytest.mark.parametrize("method", ["auto", "milp", "ve"])
def test_exact_equals_brute_force(method: str) -> None:
    for sp in instances():
        _, lat, _ = brute(sp)
        r = get_strategy("exact", method=method).search(sp, 1)
        assert abs(r.best_cost - lat.min()) < 1e-9
        assert abs(sp.plan_cost(r.best_choice) - r.best_cost) < 1e-12
        assert r.evaluations == 1 and r.meta["proven_optimal"]


def test_exact_without_pruning_and_on_random_dags() -> None:
    for s in range(6):
        sp = synthetic_space(8, 3, "dag", seed=100 + s, negative=0.2)
        best = brute(sp)[1].min()
        for method in ("milp", "ve"):
            r = get_strategy("exact", method=method, prune=False).search(sp, 1)
            assert abs(r.best_cost - best) < 1e-9


def test_dp_and_milp_agree_on_chains() -> None:
    for s in range(8):
        sp = synthetic_space(12, 4, "chain", seed=s, negative=0.2)
        dp = get_strategy("exact", method="dp").search(sp, 1)
        mi = get_strategy("exact", method="milp").search(sp, 1)
        assert dp.meta["method"] == "dp" and mi.meta["method"] == "milp"
        assert abs(dp.best_cost - mi.best_cost) < 1e-9
        assert abs(chain_dp(sp)[1] - dp.best_cost) < 1e-9
        assert mi.meta["milp_status"] == "optimal" and mi.meta["mip_gap"] <= 1e-9


def test_ve_equals_milp_on_larger_dag() -> None:
    sp = synthetic_space(40, 6, "dag", seed=3)
    ve = get_strategy("exact").search(sp, 1)
    mi = get_strategy("exact", method="milp").search(sp, 1)
    assert ve.meta["method"] == "ve"
    assert abs(ve.best_cost - mi.best_cost) < 1e-9


def test_milp_with_format_only_costs_and_dispatch() -> None:
    """Edge costs that depend only on formats (rows/columns merged in the MILP) plus dispatch."""
    rng = np.random.default_rng(0)
    fmts = ["NCHW", "NHWC", "BLOCKED"]
    names = [f"n{i}" for i in range(7)]
    options = {
        n: [
            Option(f"{n}.{a}", float(rng.uniform(1, 2)), out_format=fmts[a % 3], in_formats=[fmts[(a + 1) % 3]])
            for a in range(4)
        ]
        for n in names
    }
    edges = [(names[i], names[j]) for i, j in RESIDUAL_CONCAT]

    def conv(p: Option, c: Option) -> float:
        return 0.0 if p.out_format == c.in_formats[0] else 0.3 + 0.1 * fmts.index(p.out_format)

    sp = DesignSpace.from_dicts(names, options, edges, conversion=conv, dispatch_ms_per_step=0.05)
    _, lat, _ = brute(sp)
    for method in ("milp", "ve"):
        r = get_strategy("exact", method=method, prune=False).search(sp, 1)
        assert abs(r.best_cost - lat.min()) < 1e-9
    choice = [0] * 7
    steps = 7 + sum(conv(options[a][0], options[b][0]) > 0 for a, b in edges)
    manual = sum(options[n][0].time_ms for n in names) + sum(conv(options[a][0], options[b][0]) for a, b in edges)
    assert sp.cost_model.steps(choice) == steps
    assert abs(sp.plan_cost(choice) - (manual + 0.05 * steps)) < 1e-12


def test_greedy_optimal_without_conversions() -> None:
    for s in range(5):
        sp = synthetic_space(7, 3, RESIDUAL_CONCAT, seed=s, conversion=False)
        g = get_strategy("greedy").search(sp, 5)
        assert g.evaluations == 1
        assert abs(g.best_cost - brute(sp)[1].min()) < 1e-9


def test_qlearning_near_optimal_and_beats_random() -> None:
    sp = synthetic_space(20, 5, "chain", seed=1)
    opt = get_strategy("exact").search(sp, 1).best_cost
    ql, rnd = [], []
    for seed in range(5):
        q = get_strategy("qlearning").search(sp, 1000, seed=seed)
        assert q.evaluations == 1000
        assert q.best_cost <= 1.02 * opt
        ql.append(q.best_cost)
        rnd.append(get_strategy("random").search(sp, 1000, seed=seed).best_cost)
    assert np.mean(ql) < np.mean(rnd)
    assert (q.meta["alpha"], q.meta["gamma"], q.meta["schedule"], q.meta["q_init"], q.meta["state"]) == (
        1.0, 1.0, [[0.0, 1.0]], "greedy", "frontier")


def test_qlearning_on_dag_and_schedule() -> None:
    sp = synthetic_space(7, 3, RESIDUAL_CONCAT, seed=5)
    opt = brute(sp)[1].min()
    for kw in ({"alpha": 0.1, "replay_batch": 4}, {"schedule": qsdnn_schedule(), "gamma": 0.9, "q_init": 0.0},
               {"state": "inputs", "replay_best": False}):
        r = get_strategy("qlearning", **kw).search(sp, 300, seed=0)
        assert r.best_cost <= 1.02 * opt and all(r.meta[k] == (list(map(list, v)) if k == "schedule" else v)
                                                 for k, v in kw.items())
    eps = QLearning(schedule=qsdnn_schedule())._epsilons(100)
    assert (eps[:30] == 1.0).all() and eps[-1] == 0.1 and len(set(eps.tolist())) == 10
    assert (get_strategy("qlearning")._episode_epsilons(10) == 0.0).all()


def residual_concat_blocks(blocks: int) -> list[tuple[int, int]]:
    """`blocks` copies of RESIDUAL_CONCAT in a row, each block's concat the next one's input."""
    return [(i + 6 * b, j + 6 * b) for b in range(blocks) for i, j in RESIDUAL_CONCAT]


@pytest.mark.parametrize(("blocks", "options", "seed"), [(3, 4, 0), (3, 4, 1), (4, 6, 1)])
def test_qlearning_near_exact_on_merges(blocks: int, options: int, seed: int) -> None:
    """Residual Adds and 3-way Concats in a row (10^8..10^19 plans): the agent's state carries the options
    the merges' costs depend on, so 1000 episodes reach within 1 % of the optimum (issue 11)."""
    sp = synthetic_space(6 * blocks + 1, options, residual_concat_blocks(blocks), seed=seed, negative=0.2)
    opt = get_strategy("exact").search(sp, 1).best_cost
    for s in (0, 1):
        assert get_strategy("qlearning").search(sp, 1000, seed=s).best_cost <= 1.01 * opt


def test_qlearning_state_and_reward_follow_the_cost_model() -> None:
    """The rewards of an episode sum to minus the cost model's prediction (ms) or the plan's bytes, and
    the frontier state determines the cost of the rest of the plan (the process is Markov)."""
    sp = synthetic_space(30, 4, "dag", seed=7, negative=0.2, dispatch_ms_per_step=0.05)
    rng = np.random.default_rng(0)
    for memory in (False, True):
        walk = _Walk.of(sp, memory, "frontier")
        for _ in range(20):
            _, choice, reward = QLearning()._episode(walk, _QTable(walk.counts), 1.0, rng)
            want = sp.plan_memory(choice) if memory else sp.cost_model.predict(choice)
            assert abs(-reward.sum() - want) < 1e-9 * max(1.0, want)
    walk = _Walk.of(sp, False, "frontier")
    n, k = len(sp.nodes), sp.n_options

    def rest(t: int, c: np.ndarray) -> float:
        return sum(float(walk.costs(u, c, 0)[c[u]]) for u in range(t, n))

    for _ in range(200):
        t = int(rng.integers(1, n))
        a = np.array([rng.integers(x) for x in k])
        b = np.array([rng.integers(x) for x in k])
        b[t:] = a[t:]
        for u, klass, _ in walk.signature[t]:  # same classes, not necessarily the same options
            b[u] = rng.choice(np.flatnonzero(klass == klass[a[u]]))
        assert walk.key(t, a, 0) == walk.key(t, b, 0)
        assert abs(rest(t, a) - rest(t, b)) < 1e-9


def check_result(sp: DesignSpace, r: SearchResult, name: str, budget: int, seed: int, objective: str,
                 max_memory: int | None) -> None:
    """What every SearchResult promises: a valid plan, an honest count, cost, trace and meta."""
    sp.check_choice(r.best_choice)
    assert len(r.best_choice) == len(sp.nodes)
    assert all(0 <= c < k for c, k in zip(r.best_choice, sp.n_options, strict=True))
    fixed = STRATEGIES[name].fixed_evaluations
    assert 1 <= r.evaluations <= budget and (fixed is None or r.evaluations == fixed)
    latency, memory = sp.plan_cost(r.best_choice), sp.plan_memory(r.best_choice)
    assert abs(r.best_cost - (latency if objective == "latency" else memory)) < 1e-12
    scores = [s for _, s in r.trace]
    assert scores == sorted(scores, reverse=True) and r.trace[-1][0] == r.evaluations
    assert set(META_KEYS) <= set(r.meta)
    assert (r.meta["strategy"], r.meta["objective"], r.meta["max_memory"], r.meta["seed"]) == (
        name, objective, max_memory, seed)
    assert abs(r.meta["latency_ms"] - latency) < 1e-12 and r.meta["memory_bytes"] == memory
    assert r.meta["feasible"] == (max_memory is None or memory <= max_memory)


def check_contract(name: str) -> None:
    """The contract of a registered strategy, on synthetic spaces whose optimum is known by enumeration."""
    cls = STRATEGIES[name]
    assert cls.name == name and cls.summary and "\n" not in cls.summary
    assert cls.comparison_budget_cap is None or cls.comparison_budget_cap >= 1
    assert cls.fixed_evaluations is None or cls.fixed_evaluations >= 1
    sp = synthetic_space(7, 3, RESIDUAL_CONCAT, seed=2)
    _, lat, mem = brute(sp)
    for objective, optimum in (("latency", lat.min()), ("memory", mem.min())):
        for budget in (1, 7, 40):
            r = get_strategy(name).search(sp, budget, seed=1, objective=objective)
            check_result(sp, r, name, budget, 1, objective, None)
            assert r.best_cost >= optimum - 1e-9  # nothing beats the optimum: the costs are honest
        again = get_strategy(name).search(sp, 40, seed=1, objective=objective)
        assert (again.best_choice, again.best_cost, again.evaluations, again.trace) == (
            r.best_choice, r.best_cost, r.evaluations, r.trace)  # deterministic for a seed
        if not cls.seeded:
            other = get_strategy(name).search(sp, 40, seed=2, objective=objective)
            assert (other.best_choice, other.evaluations) == (r.best_choice, r.evaluations)
    sp = synthetic_space(7, 3, RESIDUAL_CONCAT, seed=4)
    _, lat, mem = brute(sp)
    limit = int(np.percentile(mem, 40))
    r = get_strategy(name).search(sp, 60, seed=0, max_memory=limit)
    check_result(sp, r, name, 60, 0, "latency", limit)
    if cls.fixed_evaluations is None:  # one that spends its budget finds a plan that fits (40 % of all do)
        assert r.meta["feasible"]
    if r.meta["feasible"]:
        assert r.best_cost >= lat[mem <= limit].min() - 1e-9


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_contract(name: str) -> None:
    check_contract(name)


class FirstPlan(Strategy):
    """A stand-in for a strategy added later: option 0 everywhere."""

    name = "first-plan"
    summary = "option 0 on every layer (test double)"
    compared = False
    comparison_budget_cap = 3
    fixed_evaluations = 1
    seeded = False

    def _run(self, space: DesignSpace, evaluate: Evaluator, rng: np.random.Generator) -> dict[str, Any]:
        evaluate([0] * len(space.nodes))
        return {}


def test_registry_derives_lists_from_class_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    names = tuple(STRATEGIES)
    assert strategy_names() == names
    assert strategy_help("qlearning") == ", ".join(["qlearning (default)"] + [n for n in names if n != "qlearning"])
    assert compared_strategies() == tuple(n for n in names if STRATEGIES[n].compared)
    assert "exact" not in compared_strategies()  # the reference, run by tune anyway
    for n in names:
        cap = STRATEGIES[n].comparison_budget_cap
        assert comparison_budget(n, 1000) == (1000 if cap is None else min(1000, cap))
    with pytest.raises(EdgetuneError, match="valid: "):
        strategy_help("bogus")
    with pytest.raises(EdgetuneError, match="valid: "):
        comparison_budget("bogus", 10)

    monkeypatch.setitem(STRATEGIES, FirstPlan.name, FirstPlan)
    assert strategy_names() == (*names, "first-plan")
    assert strategy_help("qlearning").endswith(", optuna, first-plan")
    assert strategy_help("first-plan").startswith("first-plan (default), exact, ")
    assert "; first-plan: option 0 on every layer (test double)" in strategy_help("qlearning", summaries=True)
    assert "first-plan" not in compared_strategies()
    assert comparison_budget("first-plan", 1000) == 3 and comparison_budget("first-plan", 2) == 2
    monkeypatch.setattr(FirstPlan, "compared", True)
    assert compared_strategies() == (*[n for n in names if STRATEGIES[n].compared], "first-plan")
    check_contract("first-plan")


def test_memory_objective_and_limit_exact() -> None:
    for sp in instances(10):
        _, lat, mem = brute(sp)
        r = get_strategy("exact").search(sp, 1, objective="memory")
        assert r.best_cost == mem.min() and sp.plan_memory(r.best_choice) == mem.min()
        # among the smallest plans it picks the fastest
        assert abs(r.meta["latency_ms"] - lat[mem == mem.min()].min()) < 1e-9
        limit = int(np.percentile(mem, 30))
        c = get_strategy("exact").search(sp, 1, max_memory=limit)
        assert c.meta["feasible"] and sp.plan_memory(c.best_choice) <= limit
        assert abs(c.best_cost - lat[mem <= limit].min()) < 1e-9
        c2 = get_strategy("exact").search(sp, 1, objective=Objective("latency", limit))
        assert c2.best_cost == c.best_cost


def test_pareto_front() -> None:
    for sp in instances(6):
        _, lat, mem = brute(sp)
        for exhaustive in (False, True):
            front = pareto_front(sp, points=6, exhaustive=exhaustive)
            for a, b in itertools.combinations(front, 2):
                assert not (a[0] <= b[0] and a[1] <= b[1]) and not (b[0] <= a[0] and b[1] <= a[1])
            for latency, memory, choice in front:
                assert abs(sp.plan_cost(choice) - latency) < 1e-12 and sp.plan_memory(choice) == memory
                # truly non-dominated: no plan is at least as good in both and better in one
                assert not (
                    (lat <= latency + 1e-12) & (mem <= memory) & ((lat < latency - 1e-9) | (mem < memory))
                ).any()
            assert abs(front[0][0] - lat.min()) < 1e-9 and front[-1][1] == mem.min()
        # the exhaustive walk finds every Pareto point of the brute-force front
        order = np.lexsort((mem, lat))
        truth, best_mem = [], np.inf
        for k in order:
            if mem[k] < best_mem:
                truth.append((lat[k], mem[k]))
                best_mem = mem[k]
        assert len(front) == len(truth)


def test_json_roundtrip_and_keys() -> None:
    sp = synthetic_space(7, 3, RESIDUAL_CONCAT, seed=3, dispatch_ms_per_step=0.02)
    back = DesignSpace.from_json(sp.to_json())
    plans = all_plans(sp)[:50]
    assert np.allclose(back.cost_model.predict_many(plans), sp.cost_model.predict_many(plans), rtol=0, atol=0)
    assert back.nodes == sp.nodes and back.edges == sp.edges and back.options[2][1] == sp.options[2][1]
    assert sp.keys([0] * 7)["n0"] == "n0.opt0"


def test_cost_model_is_linear_in_tables() -> None:
    cm = CostModel([[1.0, 2.0], [3.0, 4.0]], [(0, 1)], [np.array([[0.0, 0.5], [-0.25, 0.0]])], dispatch_ms_per_step=0.1)
    assert abs(cm.predict([0, 1]) - (1 + 4 + 0.5 + 0.1 * 3)) < 1e-12
    assert abs(cm.predict([1, 0]) - (2 + 3 - 0.25 + 0.1 * 2)) < 1e-12
    assert cm.steps([0, 0]) == 2 and cm.steps([0, 1]) == 3


def test_bad_input_raises() -> None:
    sp = synthetic_space(6, 3, seed=0)
    with pytest.raises(EdgetuneError, match="budget"):
        get_strategy("random").search(sp, 0)
    with pytest.raises(EdgetuneError, match="budget"):
        get_strategy("exact").search(sp, -3)
    with pytest.raises(EdgetuneError, match="valid: " + ", ".join(STRATEGIES)):
        get_strategy("bogus")
    with pytest.raises(EdgetuneError, match="unknown objective"):
        get_strategy("greedy").search(sp, 1, objective="energy")
    with pytest.raises(EdgetuneError, match="max_memory"):
        get_strategy("exact").search(sp, 1, max_memory=1)
    with pytest.raises(EdgetuneError, match="hyper-parameters"):
        get_strategy("qlearning", alpah=0.1)
    with pytest.raises(EdgetuneError, match="valid: frontier, inputs"):
        get_strategy("qlearning", state="previous")
    with pytest.raises(EdgetuneError, match="q_init"):
        get_strategy("qlearning", q_init="zero")
    with pytest.raises(EdgetuneError):
        sp.plan_cost([0, 0, 7, 0, 0, 0])
    with pytest.raises(EdgetuneError):
        DesignSpace(["a", "b"], [[Option("x", 1.0)], [Option("y", 1.0)]], [(1, 0)], [np.zeros((1, 1))])
    for msg in ("one line",):
        with pytest.raises(EdgetuneError) as info:
            get_strategy("nope")
        assert "\n" not in str(info.value), msg
