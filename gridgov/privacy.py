"""Reporters' personal data: masked for everyone but managers, in pages and in exports alike."""

from __future__ import annotations

import re

import pandas as pd

_DIGITS = re.compile(r"\d")
#: Columns holding a reporter's personal data.
PERSONAL_COLUMNS = ("reporter_name", "reporter_phone")


def mask_phone(phone: str | None) -> str | None:
    """Keep the first three and last four digits of a phone number.

    Examples
    --------
    >>> mask_phone("13812341234")
    '138****1234'
    >>> mask_phone("021-5555 1234")
    '021****1234'
    >>> mask_phone("12345"), mask_phone(None)
    ('*****', None)
    """
    if phone is None or (isinstance(phone, float) and pd.isna(phone)):
        return None
    digits = "".join(_DIGITS.findall(str(phone)))
    if len(digits) < 8:
        return "*" * len(digits) if digits else "*"
    return f"{digits[:3]}****{digits[-4:]}"


def mask_name(name: str | None) -> str | None:
    """Keep the first character of a name (the family name in Chinese; an initial otherwise).

    Examples
    --------
    >>> mask_name("王小明"), mask_name("Maria Lopez"), mask_name("王先生")
    ('王**', 'M**', '王**')
    """
    if name is None or (isinstance(name, float) and pd.isna(name)):
        return None
    text = str(name).strip()
    return f"{text[0]}**" if text else text


def mask_frame(frame: pd.DataFrame, *, personal: bool) -> pd.DataFrame:
    """A copy of ``frame`` with reporter names and phones masked unless ``personal`` (a manager) is True."""
    if personal:
        return frame
    out = frame.copy()
    for column, mask in (("reporter_name", mask_name), ("reporter_phone", mask_phone)):
        if column in out.columns:
            out[column] = pd.Series([mask(v) for v in out[column].tolist()], index=out.index, dtype=object)
    return out
