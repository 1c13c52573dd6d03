"""What ``tickstep train`` prints."""

from __future__ import annotations

from tickstep.training.data import TrainResult


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def _auc(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def render_train_summary(result: TrainResult) -> str:
    m = result.model
    t, v, h = m.training, m.validation, m.holdout
    candles = sum(w.candles for w in t.windows)
    lines = [
        f"tickstep train: {len(t.windows)} file(s), {candles:,} candles, {len(m.features)} "
        f"features, horizon {m.horizon} candles, seed {t.seed}, {result.seconds:.2f}s",
        "",
        f"walk-forward ({len(v.folds)} folds, expanding window, gap {v.gap} candles; the last "
        f"{t.holdout_fraction:.0%} of each file held out):",
        f"  {'fold':<8}{'train rows':>11}{'eval rows':>11}{'accuracy':>10}{'AUC':>7}"
        f"{'majority':>10}",
    ]
    for fold in v.folds:
        f = fold.metrics
        lines.append(
            f"  {fold.fold:<8}{fold.train_rows:>11,}{f.rows:>11,}{f.accuracy:>10.3f}"
            f"{_auc(f.auc):>7}{f.majority_baseline:>10.3f}"
        )
    p = v.pooled
    lines += [
        f"  {'pooled':<8}{'':>11}{p.rows:>11,}{p.accuracy:>10.3f}{_auc(p.auc):>7}"
        f"{p.majority_baseline:>10.3f}",
        "",
        v.verdict,
        "",
        f"final model: fit on {t.rows:,} rows before the held-out period; held-out "
        f"{h.metrics.rows:,} rows:",
        h.verdict,
        "",
        f"held-out backtest (stake {h.backtest.stake} per trade per market, fee "
        f"{h.backtest.fee} per side; thresholds buy above {m.thresholds.buy_above}, "
        f"sell below {m.thresholds.sell_below}):",
        f"  {'strategy':<14}{'trades':>7}{'return':>10}{'max dd':>9}{'exposure':>10}{'pnl':>14}",
    ]
    for figures in (h.backtest.ml, h.backtest.buy_and_hold, h.backtest.sma_cross):
        lines.append(
            f"  {figures.strategy:<14}{figures.trades:>7}{_pct(figures.total_return):>10}"
            f"{figures.max_drawdown * 100:>8.2f}%{figures.exposure * 100:>9.1f}%"
            f"{float(figures.total_pnl):>14.8f}"
        )
    ml = h.backtest.ml
    beaten = [
        f.strategy
        for f in (h.backtest.buy_and_hold, h.backtest.sma_cross)
        if (f.total_return or 0.0) >= (ml.total_return or 0.0)
    ]
    lines.append(
        f"ml before fees {float(ml.total_pnl) + float(ml.fees_paid):+.8f}, fees "
        f"{float(ml.fees_paid):.8f}; "
        + (
            f"ml does not beat {' or '.join(beaten)} on the held-out period"
            if beaten
            else "ml beats buy_and_hold and sma_cross on the held-out period"
        )
    )
    return "\n".join(lines)
