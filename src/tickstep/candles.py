"""Candle series as numpy arrays, and the bundled sample data.

Inside a computation candles are columns of float64 (prices, volume) and int64 (open time in
ms); at the boundary they become :class:`tickstep.models.Candle` with exact ``Decimal`` values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tickstep.models import Candle, Market

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CSV_HEADER = "timestamp_ms,open,high,low,close,volume"
_FILE_NAME_RE = re.compile(r"^([A-Z0-9]+)-([A-Z0-9]+)_([1-9][0-9]*[mhdw])\.csv$")


@dataclass(frozen=True, slots=True)
class CandleArrays:
    """Column arrays of one market's candles, oldest first, all of the same length."""

    timestamp: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        n = len(self.timestamp)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: length {len(getattr(self, name))} != timestamp's {n}")
        if n > 1 and not bool(np.all(np.diff(self.timestamp) > 0)):
            raise ValueError("timestamp: candles must be strictly increasing in time")

    def __len__(self) -> int:
        return len(self.timestamp)

    def head(self, n: int) -> CandleArrays:
        """The first ``n`` candles (what a live run had seen at candle ``n - 1``)."""
        return CandleArrays(
            self.timestamp[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
        )

    def candle(self, i: int) -> Candle:
        """Candle ``i`` as an exact model (floats go through ``repr`` so 5.29e-05 stays so)."""
        return Candle(
            timestamp=int(self.timestamp[i]),
            open=Decimal(repr(float(self.open[i]))),
            high=Decimal(repr(float(self.high[i]))),
            low=Decimal(repr(float(self.low[i]))),
            close=Decimal(repr(float(self.close[i]))),
            volume=Decimal(repr(float(self.volume[i]))),
        )

    @classmethod
    def from_candles(cls, candles: list[Candle]) -> CandleArrays:
        return cls(
            np.array([c.timestamp for c in candles], dtype=np.int64),
            np.array([float(c.open) for c in candles], dtype=np.float64),
            np.array([float(c.high) for c in candles], dtype=np.float64),
            np.array([float(c.low) for c in candles], dtype=np.float64),
            np.array([float(c.close) for c in candles], dtype=np.float64),
            np.array([float(c.volume) for c in candles], dtype=np.float64),
        )


def market_from_filename(path: str | Path, exchange: str = "paper") -> Market:
    """``ETH-BTC_5m.csv`` is ETH/BTC on 5m candles."""
    name = Path(path).name
    match = _FILE_NAME_RE.match(name)
    if match is None:
        raise ValueError(f"{name}: expected a file name like ETH-BTC_5m.csv (BASE-QUOTE_TIMEFRAME)")
    base, quote, timeframe = match.groups()
    return Market(exchange=exchange, symbol=f"{base}/{quote}", timeframe=timeframe)


def load_csv(path: str | Path) -> CandleArrays:
    """Read a ``timestamp_ms,open,high,low,close,volume`` CSV with a header line."""
    path = Path(path)
    with path.open() as handle:
        header = handle.readline().strip()
        if header != CSV_HEADER:
            raise ValueError(f"{path.name}: header is {header!r}, expected {CSV_HEADER!r}")
        data = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    if data.shape[0] == 0:
        raise ValueError(f"{path.name}: no candles")
    if data.shape[1] != 6:
        raise ValueError(f"{path.name}: expected 6 columns, found {data.shape[1]}")
    return CandleArrays(
        data[:, 0].astype(np.int64),
        np.ascontiguousarray(data[:, 1]),
        np.ascontiguousarray(data[:, 2]),
        np.ascontiguousarray(data[:, 3]),
        np.ascontiguousarray(data[:, 4]),
        np.ascontiguousarray(data[:, 5]),
    )


def bundled_files() -> list[Path]:
    """The sample candle files shipped inside the package (see ``data/README.md``)."""
    root = resources.files("tickstep") / "data"
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".csv"))


def bundled_series(markets: Iterable[Market]) -> dict[Market, CandleArrays]:
    """Each market's bundled candles (``ETH-BTC_5m.csv`` for ETH/BTC on 5m)."""
    return {m: load_csv(bundled_file(f"{m.base}-{m.quote}_{m.timeframe}.csv")) for m in markets}


def bundled_file(name: str) -> Path:
    for path in bundled_files():
        if path.name == name:
            return path
    names = ", ".join(p.name for p in bundled_files())
    raise FileNotFoundError(f"no bundled candle file {name!r}; bundled: {names}")
