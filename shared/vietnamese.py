"""Vietnamese number formats for what officers read: 1.763 (thousands), 81,1% (decimals), 6,25 điểm.

Every percentage any surface prints (the annual report, the demo, the tests' expectations) comes
from `format_percent`: rounded half up from the exact value, so 4223/8411 reads the same everywhere.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

NO_FIGURE = "–"


def format_count(value: int) -> str:
    """1763 -> '1.763'."""
    sign = "-" if value < 0 else ""
    return sign + f"{abs(value):,}".replace(",", ".")


def format_percent(ratio: Fraction | float | None, decimals: int = 1) -> str:
    """0.8109 -> '81,1%'; 1.0 -> '100%'; None -> '–'. Trailing zeros are dropped like the reports do.

    Rounded half up from the exact ratio (a float is taken at its shortest decimal form: 0.8105
    is 81,05, not the binary 81,04999…), so 0,8105 at 1 decimal is 81,1%.
    """
    if ratio is None:
        return NO_FIGURE
    exact = Fraction(ratio) if isinstance(ratio, Fraction) else Fraction(Decimal(str(ratio)))
    hundred = exact * 100
    rounded = (Decimal(hundred.numerator) / Decimal(hundred.denominator)).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP
    )
    text = f"{rounded:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, _, fraction = text.partition(".")
    whole_grouped = format_count(int(whole)) if whole not in ("-0", "") else whole
    return f"{whole_grouped},{fraction}%" if fraction else f"{whole_grouped}%"


def format_share(numerator: int, denominator: int, decimals: int = 1) -> str:
    """4223/8411 at 2 decimals -> '50,21%' (exactly, half up); '–' when there is no denominator."""
    return format_percent(Fraction(numerator, denominator) if denominator else None, decimals)


def format_points(value: float) -> str:
    """Index points as the API gives them (2 decimals): 6.25 -> '6,25'; 12.0 -> '12'; 0.5 -> '0,5'."""
    text = f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")
