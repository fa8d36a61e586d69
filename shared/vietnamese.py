"""Vietnamese number formats for what officers read: 1.763 (thousands), 81,1% (decimals), 6,25 điểm."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def format_count(value: int) -> str:
    """1763 -> '1.763'."""
    sign = "-" if value < 0 else ""
    return sign + f"{abs(value):,}".replace(",", ".")


def format_percent(ratio: float | None, decimals: int = 1) -> str:
    """0.8109 -> '81,1%'; 1.0 -> '100%'; None -> '–'. Trailing zeros are dropped like the reports do."""
    if ratio is None:
        return "–"
    text = f"{ratio * 100:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, _, fraction = text.partition(".")
    whole_grouped = format_count(int(whole)) if whole not in ("-0", "") else whole
    return f"{whole_grouped},{fraction}%" if fraction else f"{whole_grouped}%"


def format_points(value: float) -> str:
    """Index points as the API gives them (2 decimals): 6.25 -> '6,25'; 12.0 -> '12'; 0.5 -> '0,5'."""
    text = f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")
