"""PNG charts for the HTML reports, drawn with matplotlib's object API.

Every chart is a :class:`matplotlib.figure.Figure` rendered by ``FigureCanvasAgg``:
no ``pyplot``, no global backend switch, nothing changed in the importing program.
matplotlib is imported inside the functions, so importing this module costs nothing
and the core install (without the ``report`` extra) keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeguard.errors import InvalidConfig
from tradeguard.trace import BUY_KINDS, Trace

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EpisodePath",
    "distribution_png",
    "equity_png",
    "require_matplotlib",
    "sequences_png",
]

_BUY = "#2a9d3f"
_SELL = "#d62728"
_REJECTED = "#ff7f0e"
_PRICE = "#1f4e79"
_EQUITY = "#444444"
_PREDICTED = "#5b7fb3"
_EXECUTED = "#2a9d3f"
_LABEL_STEPS = 16
"""Episodes up to this many steps get each non-HOLD action written next to its marker."""

_SELL_KINDS = frozenset({"reduce", "close"})


def require_matplotlib() -> None:
    """Raise a clear error when matplotlib (the ``report`` extra) is missing.

    Raises:
        InvalidConfig: matplotlib cannot be imported.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidConfig(
            "writing a report needs matplotlib, which is not installed: "
            "pip install 'tradeguard[report]' (or pip install 'matplotlib>=3.8')."
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodePath:
    """One episode as the charts need it: prices, equity and what each step did.

    Attributes:
        prices: The price at each step, then the price the last step is marked to
            (``steps + 1`` prices, minor units).
        equity: Equity before each step, then after the last (``steps + 1`` values,
            minor units).
        predicted: The action predicted at each step, by name.
        executed: The action executed at each step, by name.
        rejected: Whether each step's prediction was rejected.
        kinds: What each step's *executed* action did: ``hold``, ``open``, ``reduce``,
            ``close`` or ``add``.
        minor_unit: Currency value of one minor unit (0.01 = cents).
        initial_cash: Starting cash, minor units.
        cash: Cash before each step, then after the last (minor units), or ``None``
            when the trace does not report it.
    """

    prices: tuple[float, ...]
    equity: tuple[float, ...]
    predicted: tuple[str, ...]
    executed: tuple[str, ...]
    rejected: tuple[bool, ...]
    kinds: tuple[str, ...]
    minor_unit: float
    initial_cash: float
    cash: tuple[float, ...] | None = None

    @property
    def steps(self) -> int:
        """Number of steps."""
        return len(self.predicted)

    @classmethod
    def from_trace(cls, trace: Trace) -> EpisodePath | None:
        """The path of ``trace``, or ``None`` when it is empty or lacks prices or equity.

        An adapter that does not supply prices, positions or equity (the generic
        gymnasium adapter) leaves placeholders in those fields: no chart is drawn
        from placeholders.
        """
        meta = trace.meta
        needed = {"price", "next_price", "equity_before", "equity_after", "executed", "rejected"}
        if not trace.records or not needed <= meta.supplies:
            return None
        recs = trace.records
        n = len(meta.action_names)

        def kind(a: int) -> str:
            return meta.action_kinds[a] if 0 <= a < n else "hold"

        return cls(
            prices=(*(r.price for r in recs), recs[-1].next_price),
            equity=(*(r.equity_before for r in recs), recs[-1].equity_after),
            predicted=tuple(meta.action_name(r.predicted) for r in recs),
            executed=tuple(meta.action_name(r.executed) for r in recs),
            rejected=tuple(bool(r.rejected) for r in recs),
            kinds=tuple(kind(r.executed) for r in recs),
            minor_unit=meta.minor_unit,
            initial_cash=meta.initial_cash or recs[0].equity_before,
            cash=(*(r.cash_before for r in recs), recs[-1].cash_after)
            if {"cash_before", "cash_after"} <= meta.supplies
            else None,
        )


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _plain_numbers(*axes: Axes) -> None:
    """Prices and equity as numbers, never as an offset ("+1e4") the reader must add back."""
    for ax in axes:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def _save(fig: Figure, path: Path) -> None:
    # No "Software" text chunk: the same report gives the same bytes on every machine.
    fig.savefig(path, format="png", metadata={"Software": None})


def distribution_png(
    path: Path,
    names: Sequence[str],
    predicted: Sequence[float],
    executed: Sequence[float],
    *,
    rejected: float,
    title: str,
    total: int | None = None,
) -> None:
    """Predicted and executed action distributions, side by side, as shares of the steps.

    The executed panel splits HOLD in two: HOLD that was predicted, and HOLD that a
    rejected prediction turned into (hatched). An agent that "sells all day" and never
    trades shows as a full SELL bar on the left and a full hatched HOLD bar on the right.

    Args:
        path: Where to write the PNG.
        names: Action names, in action-id order (HOLD first).
        predicted: Share of steps each action was predicted, in [0, 1].
        executed: Share of steps each action executed, in [0, 1].
        rejected: Share of steps whose prediction was rejected (executed as HOLD).
        title: The chart's title.
        total: Steps the shares are of; when given, bars are labelled with counts too.
    """
    fig = _new_figure(10.0, 0.45 * len(names) + 1.6)
    left, right = fig.subplots(1, 2, sharey=True)
    ys = list(range(len(names)))
    rej = min(max(rejected, 0.0), executed[0] if executed else 0.0)

    def label(share: float) -> str:
        if total:
            return f"{share:.0%} ({round(share * total)})"
        return f"{share:.0%}"

    left.barh(ys, predicted, color=_PREDICTED)
    chosen = [executed[0] - rej, *executed[1:]]
    right.barh(ys, chosen, color=_EXECUTED, label="executed as predicted")
    if rej > 0:
        right.barh([0], [rej], left=[chosen[0]], color="#f4c28f", edgecolor=_REJECTED, hatch="//",
                   label="rejected, executed as HOLD")
        right.legend(loc="lower right", fontsize=8, frameon=False)
    for ax, shares, head in (
        (left, predicted, "predicted (what the policy asked for)"),
        (right, executed, "executed (what the ledger did)"),
    ):
        ax.set_xlim(0, 1.18)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
        ax.set_title(head, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        for y, s in zip(ys, shares, strict=True):
            if s > 0:
                ax.text(s + 0.01, y, label(s), va="center", fontsize=8)
    left.set_yticks(ys, list(names))
    left.invert_yaxis()
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


def _mark_actions(ax: Axes, ep: EpisodePath, *, legend: bool) -> None:
    """Buys, sells and rejected predictions on a price panel (currency units)."""
    u = ep.minor_unit
    xs = range(ep.steps)
    groups: dict[str, tuple[list[int], list[float]]] = {"buy": ([], []), "sell": ([], []), "rejected": ([], [])}
    for t in xs:
        p = ep.prices[t] * u
        if ep.rejected[t]:
            groups["rejected"][0].append(t)
            groups["rejected"][1].append(p)
        elif ep.kinds[t] in BUY_KINDS:
            groups["buy"][0].append(t)
            groups["buy"][1].append(p)
        elif ep.kinds[t] in _SELL_KINDS:
            groups["sell"][0].append(t)
            groups["sell"][1].append(p)
    size = 70 if ep.steps <= 60 else 25
    styles = {
        "buy": {"marker": "^", "color": _BUY, "label": "buy / add (executed)"},
        "sell": {"marker": "v", "color": _SELL, "label": "sell (executed)"},
        "rejected": {"marker": "x", "color": _REJECTED, "label": "rejected (executed as HOLD)"},
    }
    for key, (tx, py) in groups.items():
        if tx:
            ax.scatter(tx, py, s=size, zorder=3, linewidths=2 if key == "rejected" else 0.5, **styles[key])  # type: ignore[arg-type]
    if ep.steps <= _LABEL_STEPS:
        for t in xs:
            if ep.predicted[t] == "HOLD" and not ep.rejected[t]:
                continue
            if ep.kinds[t] == "hold" and not ep.rejected[t]:
                continue
            text = ep.predicted[t] + (" (rejected)" if ep.rejected[t] else "")
            if not ep.rejected[t] and ep.executed[t] != ep.predicted[t]:
                text = f"{ep.predicted[t]} -> {ep.executed[t]}"
            below = ep.rejected[t] or ep.kinds[t] in _SELL_KINDS
            ax.annotate(text, (t, ep.prices[t] * u), textcoords="offset points", xytext=(0, -9 if below else 9),
                        ha="center", va="top" if below else "bottom", fontsize=7, rotation=12,
                        color=_REJECTED if ep.rejected[t] else "#222222")
    if legend and any(g[0] for g in groups.values()):
        ax.legend(loc="best", fontsize=8, frameon=False)


def equity_png(path: Path, episode: EpisodePath, *, title: str, subtitle: str = "") -> None:
    """The price path with buys, sells and rejected actions marked, and the equity curve below.

    Step ``t`` executes at the price at ``t`` and is marked to the price at ``t + 1``;
    the equity panel shows equity (and cash, dotted, when the trace reports it) before
    each step and after the last one.

    Args:
        path: Where to write the PNG.
        episode: The episode to draw.
        title: The chart's title.
        subtitle: One line under the title (where the episode came from).
    """
    u = episode.minor_unit
    fig = _new_figure(10.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    xs = list(range(len(episode.prices)))
    top.plot(xs, [p * u for p in episode.prices], color=_PRICE, lw=1.3, label="price")
    _mark_actions(top, episode, legend=True)
    top.set_ylabel("price")
    top.grid(alpha=0.3)
    top.margins(x=0.04, y=0.25)
    bottom.plot(xs, [e * u for e in episode.equity], color=_EQUITY, lw=1.5, label="equity")
    if episode.cash is not None:
        bottom.plot(xs, [c * u for c in episode.cash], color="#8c564b", lw=1, ls=":", label="cash")
    bottom.axhline(episode.initial_cash * u, color="#999999", ls="--", lw=1, label="starting cash")
    bottom.set_ylabel("equity, cash" if episode.cash is not None else "equity")
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="best", fontsize=8, frameon=False)
    if episode.steps <= 30:
        bottom.set_xticks(xs)
    _plain_numbers(top, bottom)
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    _save(fig, path)


def sequences_png(
    path: Path,
    sequences: Sequence[tuple[str, EpisodePath]],
    *,
    title: str,
    notes: Sequence[str] = (),
) -> None:
    """Several action sequences drawn on one market, one panel each, and their equity curves.

    Used for the reward audit: the shaped-optimal sequence (what an agent trained on
    the reward learns) against the PnL-optimal one on the same prices.

    Args:
        path: Where to write the PNG.
        sequences: ``(label, episode)`` pairs, all on the same prices.
        title: The chart's title.
        notes: One line per sequence, shown in its panel's title (returns, PnL).
    """
    if not sequences:
        raise InvalidConfig("sequences_png needs at least one (label, episode) pair; got none.")
    n = len(sequences)
    fig = _new_figure(10.0, 2.6 * n + 2.4)
    axes: Any = fig.subplots(n + 1, 1, sharex=True, height_ratios=[3] * n + [2.4])
    first = sequences[0][1]
    u = first.minor_unit
    xs = list(range(len(first.prices)))
    colors = ["#1f77b4", "#9467bd", "#8c564b", "#17becf", "#bcbd22"]
    for i, (label, ep) in enumerate(sequences):
        ax = axes[i]
        ax.plot(xs, [p * u for p in ep.prices], color=_PRICE, lw=1.3)
        _mark_actions(ax, ep, legend=i == 0)
        note = notes[i] if i < len(notes) else ""
        ax.set_title(f"{label}" + (f": {note}" if note else ""), fontsize=10, loc="left")
        ax.set_ylabel("price")
        ax.grid(alpha=0.3)
        ax.margins(x=0.04, y=0.35)
    eq = axes[n]
    for i, (label, ep) in enumerate(sequences):
        eq.plot(xs, [e * u for e in ep.equity], lw=1.6, color=colors[i % len(colors)], label=label,
                marker="o", ms=3)
    eq.axhline(first.initial_cash * u, color="#999999", ls="--", lw=1, label="starting cash")
    eq.set_title("equity of each sequence", fontsize=10, loc="left")
    eq.set_ylabel("equity")
    eq.set_xlabel("step")
    eq.grid(alpha=0.3)
    eq.legend(loc="best", fontsize=8, frameon=False)
    if len(xs) <= 30:
        eq.set_xticks(xs)
    _plain_numbers(*axes)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)
